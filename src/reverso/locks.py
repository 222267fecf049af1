"""Workspace locks: one pipeline, and one stage command, at a time in a checkout.

OS file locks (``flock``), so a killed holder releases them at once. The holder writes who it is
into the lock file; a second run prints what it waits for (command, pid, since when) and for how
long, then either gets the lock or stops with a clear message. It never reaches DVC's own lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reverso.errors import ReversoError

STAGE_LOCK = Path(".reverso/stage.lock")
DEFAULT_TIMEOUT_S = 3600.0


class WorkspaceBusy(ReversoError, RuntimeError):
    """Another reverso run holds the workspace; the message says which and what to do."""


def lock_timeout() -> float:
    """``REVERSO_LOCK_TIMEOUT`` seconds to wait for a busy workspace (0: refuse at once)."""
    raw = os.environ.get("REVERSO_LOCK_TIMEOUT", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S


def describe_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another reverso run"
    since = time.strftime("%H:%M:%S", time.localtime(float(info.get("started", 0))))
    return f"`{info.get('command', 'reverso')}` (pid {info.get('pid', '?')}, running since {since})"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def hold(path: Path, command: str, wait: bool = True, timeout_s: float | None = None,
         busy: Callable[[str], str] | None = None, notify: Callable[[str], None] = _stderr,
         poll_s: float = 1.0) -> Iterator[None]:
    """Hold the lock at ``path`` for the block; wait (telling ``notify`` for what) or refuse when busy."""
    timeout_s = lock_timeout() if timeout_s is None else timeout_s
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        started = time.monotonic()
        next_note = started
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = describe_holder(path)
                waited = time.monotonic() - started
                if not wait or waited >= timeout_s:
                    message = busy(holder) if busy else f"workspace busy: {holder} holds {path}"
                    if wait:
                        message += f" (gave up after waiting {waited:.0f} s; REVERSO_LOCK_TIMEOUT={timeout_s:.0f})"
                    raise WorkspaceBusy(message) from None
                if time.monotonic() >= next_note:
                    verb = "waiting" if waited < poll_s else f"still waiting ({waited:.0f} s)"
                    notify(f"{verb} for {holder} to finish: it holds {path}; "
                           f"giving up after {timeout_s:.0f} s (REVERSO_LOCK_TIMEOUT)")
                    next_note = time.monotonic() + 60
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "command": command, "started": time.time()}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def stage_lock(command: str) -> Iterator[None]:
    """The lock every stage command takes in the current workspace (the repository root).

    Under ``accelerate launch`` / ``torchrun`` only rank 0 takes it: the other ranks are the same run.
    """
    if int(os.environ.get("RANK", "0") or 0) != 0:
        yield
        return
    with hold(STAGE_LOCK, command,
              busy=lambda holder: f"another reverso stage is running in {Path.cwd()}: {holder}; "
                                  "wait for it to finish, or raise REVERSO_LOCK_TIMEOUT"):
        yield
