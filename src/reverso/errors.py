"""The project's own error types: the CLI prints these as one line instead of a traceback."""

from __future__ import annotations


def KNOWN_ERRORS() -> tuple[type[BaseException], ...]:  # noqa: N802 - reads like a constant at call sites
    from reverso.config import ConfigError
    from reverso.constraints.base import ConstraintError
    from reverso.generation.base import GenerationError
    from reverso.improve import ImproveError
    from reverso.io import DataError
    from reverso.pairs.validate import ValidationFailed
    from reverso.prepare_model import ModelSourceError
    from reverso.registry import RegistryError

    from reverso.orchestration import PipelineError
    from reverso.locks import WorkspaceBusy
    from reverso.tracking import TrackingUnreachable

    return (ConfigError, ConstraintError, DataError, ValidationFailed, ModelSourceError, RegistryError,
            PipelineError, FileNotFoundError, WorkspaceBusy, TrackingUnreachable, GenerationError,
            ImproveError)
