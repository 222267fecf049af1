"""Allocator settings (reverso.memory): training's setting gives a step's freed buffers back to the OS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
import psutil
from reverso import memory
setting = sys.argv[1]
warm = b"\\x01" * (4 << 20)
del warm  # a large free: glibc's dynamic threshold now keeps later buffers of this size on the heap
applied = getattr(memory, setting)() if setting != "none" else None
process = psutil.Process()
before = process.memory_info().rss
big, small = [], []
for _ in range(64):  # 64 x 2 MB "activations", each followed by a 100 KB object that stays alive (6 MB in all)
    big.append(bytes(range(256)) * 8192)
    small.append(bytearray(b"\\x02" * 100_000))
peak = process.memory_info().rss
del big
after = process.memory_info().rss
print(json.dumps({"applied": applied, "grown_mb": (peak - before) / 2**20, "kept_mb": (after - before) / 2**20}))
"""


def _run(setting: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, setting], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator settings are Linux-only")
def test_training_setting_returns_freed_buffers_and_the_default_keeps_them() -> None:
    default, training = _run("none"), _run("return_freed_memory")
    assert training["applied"] is True
    assert default["grown_mb"] > 100 and training["grown_mb"] > 100
    assert training["kept_mb"] < 20  # given back as each buffer was freed
    assert default["kept_mb"] > 100  # stuck on the fragmented heap: what the train process showed
