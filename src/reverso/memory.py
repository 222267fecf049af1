"""Process-wide glibc allocator settings: one per workload, because the two want opposite things.

glibc serves allocations above its mmap threshold with fresh pages and returns them on free; below
it, freed memory stays in the heap for reuse. Its threshold is dynamic: after the first large free
it rises to 32 MB, so later large buffers stay on the heap and fragment it. Linux/glibc only; on
anything else both calls do nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def _mallopt(settings: dict[int, int]) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return False
    return all(libc.mallopt(option, value) == 1 for option, value in settings.items())


def keep_large_buffers_on_heap() -> bool:
    """Inference engine: stop glibc from mmap-ing (and unmapping) every large buffer it allocates per step.

    The engine reallocates its KV cache each decoding step; above glibc's mmap threshold every such
    buffer is fresh pages, so at 20 rows x 250-token prompts 2/3 of the time went to page faults
    (11M minor faults, 40 s system time; 3x slower). Raising the threshold to glibc's maximum and
    not trimming the heap keeps those buffers on the reused heap.
    """
    return _mallopt({M_MMAP_THRESHOLD: 32 << 20, M_TRIM_THRESHOLD: 512 << 20, M_TOP_PAD: 64 << 20})


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Training: give the activations of each step back to the OS when the step frees them.

    A training step's activations are hundreds of buffers of 1-100 MB that live for one step. With
    the dynamic threshold they land on the heap, which fragments: the train process kept 5.2 GB
    resident between steps (1.3 GB live) and peaked at 6.9 GB; with a fixed 1 MB threshold they go
    to mmap and back, and it peaked at 5.3 GB (docs/results.md, "Train memory").
    """
    return _mallopt({M_MMAP_THRESHOLD: threshold, M_TRIM_THRESHOLD: threshold})
