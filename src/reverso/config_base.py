"""The base of every params section and the error a bad params file raises (shared by config modules)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from reverso.errors import ReversoError


class ConfigError(ReversoError, ValueError):
    """Raised when params.yaml (or an override) is invalid; the message names file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
