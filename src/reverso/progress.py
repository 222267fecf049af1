"""Carry an unfinished study or improve campaign to a new machine: pack what finished, unpack it there.

A powered study or a multi-round improve campaign on 2 CPU cores runs for hours longer than a
session. Their items are DVC stage items of their own pipeline (study/dvc.yaml, improve/dvc.yaml),
so a rerun on the *same* workspace skips what finished; a new machine has none of those outputs.
``pack`` writes them into one ``.tar.gz`` that can be committed (``<pipeline>/progress/<name>.tar.gz``
by default) with a manifest (pipeline, commit, workspace path, finished items, machine, versions);
``unpack`` restores them into a clone and ``dvc checkout``s the cached outputs, after which
``reverso study`` / ``reverso improve`` skip every packed item, because its outputs, dependencies
and params hash as the pipeline's ``dvc.lock`` recorded them.

What travels: the DVC cache objects of the finished items' outputs (DVC reruns an item whose outputs
are not in its cache), the pipeline's lock and uncached outputs (reports, decisions), the applied
params, the MLflow store (runs, registered versions and aliases) and the reference log-prob cache.
What does not: ``models/base`` (``prepare-model`` rebuilds it bit for bit from the pinned package),
OpenVINO exports, the A/A copy, checkpoints and the datasets' map caches (rebuilt on demand), the rest of the
DVC cache.

Resume at the same absolute path and at the packed commit (``git worktree add <path> <commit>``):
MLflow stores absolute artefact paths, and any change under an item's code dependencies makes DVC
rerun the items that depend on it (correctly, but for hours).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

from reverso.io import DataError
from reverso.machine import git_commit, machine_info

MANIFEST = "progress.json"
COMMON = ("dvc.lock", "params.yaml", "mlflow.db", "mlartifacts", ".reverso/ref-cache")
# pipeline -> the uncached files and folders it writes besides its DVC-cached outputs
PIPELINES: dict[str, tuple[str, ...]] = {
    "study": ("reports/study", "metrics/study.json", ".reverso/study/parent_run.json"),
    "improve": ("improve", "metrics/improve.json", "plots/improve_curve.png", ".reverso/improve"),
}
CACHE = Path(".dvc/cache/files/md5")
REBUILT = {"checkpoints", "openvino", "aa-model", "progress"}  # rebuilt on demand (or the archives themselves)
# HF datasets' map caches beside a tokenized pair or example set (.reverso/ref-cache/<set>/cache-*.arrow): the
# tokenized copies, rebuilt in seconds, several times the set itself; the sets and reference log-probs travel
MAP_CACHE = "cache-*.arrow"


def lock_path(pipeline: str) -> Path:
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; one of {sorted(PIPELINES)}")
    return Path(pipeline) / "dvc.lock"


def default_archive(pipeline: str, name: str) -> Path:
    return Path(pipeline) / "progress" / f"{name}.tar.gz"


def _stages(workspace: Path, pipeline: str) -> dict[str, Any]:
    import yaml

    lock = workspace / lock_path(pipeline)
    return (yaml.safe_load(lock.read_text()) or {}).get("stages", {}) if lock.exists() else {}


def finished_stages(workspace: Path, pipeline: str) -> dict[str, Any]:
    """The lock's entries for the items that ran here (the ones a resume will skip): every output is in
    this workspace. A lock copied from another run (a committed record, a clone) lists items whose
    outputs never existed here, and those are not finished here."""
    return {name: stage for name, stage in _stages(workspace, pipeline).items()
            if all((workspace / str(out["path"])).exists() for out in stage.get("outs", []))}


def uncached_outputs(workspace: Path, pipeline: str) -> dict[str, list[re.Pattern[str]]]:
    """Per stage of the pipeline's dvc.yaml (the name before any ``@``), the paths of the outputs it declares
    ``cache: false``, as patterns (a ``${...}`` of a matrix or foreach stage matches one path part)."""
    import yaml

    spec = workspace / pipeline / "dvc.yaml"
    stages = (yaml.safe_load(spec.read_text()) or {}).get("stages", {}) if spec.exists() else {}
    found: dict[str, list[re.Pattern[str]]] = {}
    for name, stage in stages.items():
        for out in (stage.get("do") or stage).get("outs", []):
            for path, options in (out.items() if isinstance(out, dict) else ()):
                if (options or {}).get("cache") is False:
                    pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\$\{[^}]*\}", str(path)))
                    found.setdefault(name, []).append(re.compile(pattern))
    return found


def _object(workspace: Path, md5: str) -> Path:
    return workspace / CACHE / md5[:2] / md5[2:]


def cached_outputs(workspace: Path, name: str, stage: dict[str, Any],
                   uncached: dict[str, list[re.Pattern[str]]]) -> tuple[list[str], list[Path]]:
    """One lock entry's cached outputs whose DVC cache objects exist, and those objects (a directory's
    listing and its files). An output its dvc.yaml declares ``cache: false`` (``uncached``) travels as a
    file, even where its bytes equal some cached object's."""
    paths: list[str] = []
    found: list[Path] = []
    for out in stage.get("outs", []):
        if any(p.fullmatch(str(out["path"])) for p in uncached.get(name.split("@")[0], [])):
            continue
        listing = _object(workspace, str(out.get("md5", "")))
        if not out.get("md5") or not listing.exists():
            continue
        paths.append(str(out["path"]))
        found.append(listing)
        if listing.name.endswith(".dir"):
            found += [_object(workspace, entry["md5"]) for entry in json.loads(listing.read_text())]
    return paths, found


def _left_out(cached: dict[str, tuple[list[str], list[Path]]], max_output_mb: float | None,
              named: tuple[str, ...]) -> dict[str, float]:
    """The finished items (``cached``: each one's cached outputs) to leave behind, with their MB of cached
    outputs: those named, and those whose cached outputs hold more than ``max_output_mb``."""
    unknown = sorted(set(named) - set(cached))
    if unknown:
        raise DataError(f"--leave-out {', '.join(unknown)}: not a finished item here (finished: "
                        f"{', '.join(sorted(cached)) or 'none'})")
    sizes = {name: sum(p.stat().st_size for p in set(objects)) / 2**20 for name, (_, objects) in cached.items()}
    return {name: round(size, 1) for name, size in sizes.items()
            if name in named or (max_output_mb is not None and size > max_output_mb)}


def pack(workspace: Path, archive: Path, pipeline: str, max_output_mb: float | None = None,
         leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the finished part of ``pipeline`` in ``workspace`` to ``archive``; returns the manifest.

    An item named in ``leave_out``, or whose cached outputs exceed ``max_output_mb`` (a fully fine-tuned
    model: ~0.5 GB), stays behind, named in the manifest's ``left_out``: its lock entry and uncached reports
    travel, so what was measured from it does too, but a resume that needs its outputs runs it again.
    """
    workspace = workspace.resolve()
    finished = finished_stages(workspace, pipeline)
    if not finished:
        raise FileNotFoundError(f"{workspace / lock_path(pipeline)}: no finished {pipeline} item to pack")
    uncached = uncached_outputs(workspace, pipeline)
    cached = {name: cached_outputs(workspace, name, stage, uncached) for name, stage in finished.items()}
    left_out = _left_out(cached, max_output_mb, tuple(leave_out))
    items = sorted(name for name in finished if name not in left_out)
    outputs = [path for paths, _ in cached.values() for path in paths]  # left-out items' too: not packed
    objects = sorted({obj for name in items for obj in cached[name][1]})
    manifest = {"pipeline": pipeline, "commit": git_commit(workspace), "workspace": str(workspace), "items": items,
                "left_out": left_out, "machine": machine_info()}

    def travels(member: tarfile.TarInfo) -> tarfile.TarInfo | None:  # cached outputs travel as DVC objects
        name = member.name
        if REBUILT & set(Path(name).parts) or any(name == out or name.startswith(f"{out}/") for out in outputs):
            return None
        if name.startswith(".reverso/ref-cache/") and Path(name).match(MAP_CACHE):
            return None
        return member

    archive.parent.mkdir(parents=True, exist_ok=True)
    staging = archive.with_name(archive.name + ".partial")
    with tarfile.open(staging, "w:gz") as tar:
        for rel in (str(lock_path(pipeline)), *COMMON, *PIPELINES[pipeline]):
            if (workspace / rel).exists():
                tar.add(workspace / rel, arcname=rel, filter=travels)
        for path in objects:
            tar.add(path, arcname=str(path.relative_to(workspace)))
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    staging.replace(archive)
    return manifest


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            return json.loads(member.read())
    except (tarfile.TarError, KeyError, json.JSONDecodeError) as exc:
        raise DataError(f"{archive}: not a progress archive written by `pack` ({type(exc).__name__}: {exc})") from None


def unpack(archive: Path, workspace: Path) -> tuple[dict[str, Any], list[str]]:
    """Restore a packed pipeline into ``workspace``; returns the manifest and what the resume should know."""
    workspace = workspace.resolve()
    manifest = read_manifest(archive)
    notes = []
    if manifest["workspace"] != str(workspace):
        raise DataError(f"{archive} was packed in {manifest['workspace']}; unpack it there (MLflow keeps absolute "
                         f"artefact paths): git worktree add {manifest['workspace']} {manifest['commit'] or '<commit>'}")
    commit = git_commit(workspace)
    if manifest["commit"] and commit != manifest["commit"]:
        notes.append(f"packed at commit {manifest['commit'][:12]}, this checkout is {(commit or '?')[:12]}: items whose "
                     "code changed since will rerun")
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name != MANIFEST]
        for member in members:
            if member.issym() or member.islnk() or Path(member.name).is_absolute() or ".." in Path(member.name).parts:
                raise DataError(f"{archive}: refusing member {member.name!r} (a link or outside the workspace)")
        tar.extractall(workspace, members=members, filter="data")
    dvc = Path(sys.executable).parent / "dvc"
    # the finished items' cached outputs back from the restored objects (the unfinished ones have none)
    targets = [f"{manifest['pipeline']}/dvc.yaml:{item}" for item in manifest["items"]]
    checkout = subprocess.run([str(dvc) if dvc.exists() else "dvc", "checkout", "--quiet", *targets], cwd=workspace,
                              capture_output=True, text=True)
    if checkout.returncode != 0:
        said = (checkout.stderr or checkout.stdout).strip().splitlines()
        raise DataError(f"{archive}: `dvc checkout` of the packed items failed in {workspace}: "
                        f"{said[-1] if said else f'exit {checkout.returncode}'}")
    return manifest, notes
