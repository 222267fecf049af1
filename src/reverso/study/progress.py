"""Carry an unfinished study to a new machine: pack what finished into one archive, unpack it there.

A powered study on 2 CPU cores runs for hours longer than a session. Its items are DVC stage items,
so a rerun on the *same* workspace skips what finished; a new machine has none of those outputs.
``pack`` writes them into one ``.tar.gz`` that can be committed (``study/progress/<study.name>.tar.gz``
by default) with a manifest (commit, workspace path, finished items, machine, versions); ``unpack``
restores them into a clone, and ``reverso study`` then skips every packed item, because its outputs,
dependencies and params hash as ``study/dvc.lock`` recorded them.

What travels: the DVC cache objects of the study's outputs (``dvc checkout`` puts them back: DVC reruns
an item whose outputs are not in its cache), its lock and uncached outputs (the reports), the applied
params, the MLflow store the training runs were logged to (the report registers each replicate under
its own run) and the reference log-prob cache. What does not: ``models/base`` (``prepare-model``
rebuilds it bit for bit from the pinned package), the OpenVINO exports and the A/A copy (rebuilt on
demand), the rest of the DVC cache.

Resume in the same absolute path and at the packed commit (``git worktree add <path> <commit>``):
MLflow stores absolute artefact paths, and any change under a study stage's code dependencies
makes DVC rerun the items that depend on it (correctly, but for hours).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

MANIFEST = "study-progress.json"
PACKED = ("study/dvc.lock", "dvc.lock", "params.yaml", "reports/study", "metrics/study.json",
          "mlflow.db", "mlartifacts", ".reverso/study/parent_run.json", ".reverso/ref-cache")
CACHE = Path(".dvc/cache/files/md5")


def default_archive(name: str) -> Path:
    return Path("study/progress") / f"{name}.tar.gz"


def _commit(workspace: Path) -> str | None:
    found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=workspace, capture_output=True, text=True, check=False)
    if found.returncode != 0:
        return None
    return found.stdout.strip() or None


def finished_items(workspace: Path) -> list[str]:
    """The study stage items ``study/dvc.lock`` records as run (the ones a resume will skip)."""
    import yaml

    lock = workspace / "study/dvc.lock"
    if not lock.exists():
        return []
    return sorted((yaml.safe_load(lock.read_text()) or {}).get("stages", {}))


def _object(workspace: Path, md5: str) -> Path:
    return workspace / CACHE / md5[:2] / md5[2:]


def cache_objects(workspace: Path) -> list[Path]:
    """The DVC cache objects of every output ``study/dvc.lock`` records (a directory's listing and its files);
    uncached outputs have none and travel as files."""
    import yaml

    found: list[Path] = []
    stages = (yaml.safe_load((workspace / "study/dvc.lock").read_text()) or {}).get("stages", {})
    for stage in stages.values():
        for out in stage.get("outs", []):
            listing = _object(workspace, str(out.get("md5", "")))
            if not out.get("md5") or not listing.exists():
                continue
            found.append(listing)
            if listing.name.endswith(".dir"):
                found += [_object(workspace, entry["md5"]) for entry in json.loads(listing.read_text())]
    return sorted(set(found))


def pack(workspace: Path, archive: Path) -> dict[str, Any]:
    """Write the finished part of the study in ``workspace`` to ``archive``; returns the manifest."""
    from reverso.machine import machine_info

    workspace = workspace.resolve()
    items = finished_items(workspace)
    if not items:
        raise FileNotFoundError(f"{workspace / 'study/dvc.lock'}: no finished study item to pack")
    manifest = {"commit": _commit(workspace), "workspace": str(workspace), "items": items,
                "machine": machine_info()}
    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = archive.with_name(archive.name + ".partial")
    with tarfile.open(staging, "w:gz") as tar:
        for rel in PACKED:
            if (workspace / rel).exists():
                tar.add(workspace / rel, arcname=rel)
        for path in cache_objects(workspace):
            tar.add(path, arcname=str(path.relative_to(workspace)))
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    staging.replace(archive)
    return manifest


def read_manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(MANIFEST)
        if member is None:
            raise ValueError(f"{archive}: not a study progress archive (no {MANIFEST})")
        return json.loads(member.read())


def unpack(archive: Path, workspace: Path) -> tuple[dict[str, Any], list[str]]:
    """Restore a packed study into ``workspace``; returns the manifest and what the resume should know."""
    workspace = workspace.resolve()
    manifest = read_manifest(archive)
    notes = []
    if manifest["workspace"] != str(workspace):
        raise ValueError(f"{archive} was packed in {manifest['workspace']}; unpack it there (MLflow keeps absolute "
                         f"artefact paths): git worktree add {manifest['workspace']} {manifest['commit'] or '<commit>'}")
    commit = _commit(workspace)
    if manifest["commit"] and commit != manifest["commit"]:
        notes.append(f"packed at commit {manifest['commit'][:12]}, this checkout is {(commit or '?')[:12]}: items whose "
                     "code changed since will rerun")
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name != MANIFEST]
        for member in members:
            if member.issym() or member.islnk() or Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                raise ValueError(f"{archive}: refusing member {member.name!r} (a link or outside the workspace)")
        tar.extractall(workspace, members=members, filter="data")
    dvc = Path(sys.executable).parent / "dvc"
    subprocess.run([str(dvc) if dvc.exists() else "dvc", "checkout", "--quiet", "study/dvc.yaml"], cwd=workspace,
                   check=True)  # the cached outputs (replicate data, adapters) back from the restored objects
    return manifest, notes
