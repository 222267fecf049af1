"""What machine and stack produced a figure: CPU flags, core count, package versions and the git commit.

Runs on one commit and seed differ between CPUs (AVX-512 vs AVX2-only kernels round differently),
so every benchmark JSON and every reference run records this, and comparisons say when two runs
came from different machines.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# The instruction-set features that change which kernels torch and OpenVINO pick (and so the numbers).
RELEVANT_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                  "amx_bf16", "amx_int8", "amx_tile", "avx_vnni")
PACKAGES = ("torch", "transformers", "trl", "peft", "openvino", "openvino-genai")


def _cpuinfo(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _field(cpuinfo: str, name: str) -> str:
    return next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith(name)), "")


def _relevant_flags(cpuinfo_text: str) -> list[str]:
    present = set(_field(cpuinfo_text, "flags").split())
    return [flag for flag in RELEVANT_FLAGS if flag in present]


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> list[str]:
    """The relevant instruction-set flags this CPU reports (empty where /proc/cpuinfo is absent)."""
    return _relevant_flags(_cpuinfo(cpuinfo))


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def machine_info(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """``cpu_flags``, ``cpus``, ``cpu_model``, ``python`` and package ``versions``: stored beside every figure."""
    text = _cpuinfo(cpuinfo)
    return {"cpu_flags": _relevant_flags(text), "cpus": os.cpu_count(), "cpu_model": _field(text, "model name"),
            "python": platform.python_version(), "versions": versions()}


def same_machine(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool | None:
    """Whether two recorded machines would run the same kernels; None when either record is missing."""
    if not a or not b or "cpu_flags" not in a or "cpu_flags" not in b:
        return None
    return sorted(a["cpu_flags"]) == sorted(b["cpu_flags"]) and a.get("versions") == b.get("versions")


def git_commit(cwd: str | Path = ".") -> str | None:
    """HEAD of the git checkout at ``cwd``; None outside one (or without git)."""
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10,
                               check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (found.stdout.strip() or None) if found.returncode == 0 else None
