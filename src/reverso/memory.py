"""Process-wide glibc allocator setting for training (and evaluate between models): give freed memory back.

glibc serves allocations above its mmap threshold with fresh pages and returns them on free; below
it, freed memory stays in the heap for reuse. Its threshold is dynamic: after the first large free
it rises to 32 MB, so later large buffers stay on the heap and fragment it. Linux/glibc only; on
anything else the call does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def _mallopt(settings: dict[int, int]) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): nothing to tune
        return False
    return all(libc.mallopt(option, value) == 1 for option, value in settings.items())


def return_freed_memory(threshold: int = 1 << 20) -> bool:
    """Training: give the activations of each step back to the OS when the step frees them.

    A training step's activations are hundreds of buffers of 1-100 MB that live for one step. With
    the dynamic threshold they land on the heap, which fragments: the train process kept 5.2 GB
    resident between steps (1.3 GB live) and peaked at 6.9 GB; with a fixed 1 MB threshold they go
    to mmap and back, and it peaked at 5.3 GB (docs/results.md, "Train memory").
    """
    return _mallopt({M_MMAP_THRESHOLD: threshold, M_TRIM_THRESHOLD: threshold})
