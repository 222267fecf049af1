"""Package entry points loaded on first use.

A verb's package (``reverso.train``, ``reverso.evaluate``, ...) re-exports the entry points of its
``run.py`` without importing it, so importing the package, or its ``config.py`` (which
``reverso.config`` does for every section), never pulls in torch, MLflow or the verb's own imports.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


def exports(package: str, module: str, names: Iterable[str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that serves ``names`` from ``package.module`` (imported on first use)."""
    served = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name in served:
            return getattr(importlib.import_module(f"{package}.{module}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
