"""The base of every params section, the error a bad params file raises, and the held-out type check
``collect`` and ``evaluate`` share (each verb's config.py builds on these)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from reverso.errors import ReversoError


class ConfigError(ReversoError, ValueError):
    """Raised when params.yaml (or an override) is invalid; the message names file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _sampleable(ids: list[str]) -> list[str]:
    """Held-out type ids must be types collect could sample (constraints.sampleable_types)."""
    from reverso.constraints import sampleable_types

    unknown = sorted(set(ids) - set(sampleable_types()))
    if unknown:
        raise ValueError(f"{unknown} are not sampleable constraint types; choose from `reverso constraints`")
    return sorted(set(ids))


# Held-out constraint type ids (collect.held_out_types, evaluate.held_out_types): sampleable, sorted, unique.
HeldOutTypes = Annotated[list[str], AfterValidator(_sampleable)]
