"""Fail fast when the MLflow tracking server is down, instead of a silent multi-minute hang.

MLflow's HTTP client retries each call for minutes by default (7 retries, backoff factor 2, 120 s
timeout). Stages bound those retries (the project's own ``registry.with_retries`` adds backoff on
top) and probe the server before any long work, so an unreachable server is reported within
``PROBE_BUDGET_S`` seconds of the stage starting, naming the URI.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request

from reverso.errors import ReversoError

# setdefault: a user's own values win.
HTTP_BOUNDS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
PROBE_BUDGET_S = 15.0


class TrackingUnreachable(ReversoError, RuntimeError):
    """The tracking server did not answer; the message names the URI and what to do."""


def bound_http_retries() -> None:
    for key, value in HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)


def _probe(uri: str, timeout: float) -> str | None:
    """None when something answers HTTP at ``uri`` (any status: auth and routing are MLflow's job)."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            return None
    except urllib.error.HTTPError:
        return None  # the server answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc))


def ensure_reachable(uri: str | None = None, budget_s: float = PROBE_BUDGET_S) -> None:
    """Bound MLflow's HTTP retries, then probe an http(s) tracking URI for up to ``budget_s`` seconds."""
    bound_http_retries()
    from reverso.registry import tracking_uri

    uri = uri or tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return  # sqlite / file stores need no server
    deadline = time.monotonic() + budget_s
    while True:
        problem = _probe(uri, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
        if problem is None:
            return
        if time.monotonic() + 2 > deadline:
            break
        time.sleep(2)
    raise TrackingUnreachable(
        f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) is unreachable: {problem}. Start the server or "
        "point MLFLOW_TRACKING_URI at a running one, then rerun; nothing was trained or logged.")


def is_tracking_failure(exc: BaseException) -> bool:
    """An error raised from MLflow's client or its HTTP stack (server down mid-run, refused, timed out)."""
    for item in (exc, exc.__cause__, exc.__context__):
        module = type(item).__module__ if item is not None else ""
        if module.startswith(("mlflow", "requests", "urllib3")):
            return True
    return False
