"""``improve``: the self-improving loop (``reverso improve``): K rounds of sample -> reverse -> pairs ->
train -> evaluate -> promote, each round sampling with the current ``@champion`` (docs/architecture.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from reverso.config_base import _Section


class ImproveParams(_Section):
    """``improve``: rounds, their sampling seeds, the DPO reference and the validation draw."""

    # Rounds `reverso improve` runs (the scheduled deployment runs one more round per trigger instead).
    rounds: int = Field(3, ge=1, le=100)
    # Round k samples fresh training sessions with collect.seed = seed + k (recorded in each round's
    # champion.json and on the registered version); sessions come from the corpus' train split only.
    seed: int = 7000
    # The DPO reference of each round: base (fixed, as RLHFlow/OpenRLHF's iterative DPO) or champion
    # (the round's starting policy: a KL anchor that moves with the loop).
    reference: Literal["base", "champion"] = "base"
    # Validation draw of the evaluate suites the gate decides on each round (evaluate.seed is the test
    # draw, used once at the end); both come from the corpus' eval split (docs/evaluation.md).
    validation_seed: int = 4242
    # Per-round promote.min_delta (round -> value); rounds not listed use promote.min_delta.
    min_delta: dict[int, float] = {}
    # The final comparison of the last champion vs base on the test draw, once after the last round.
    final_test: bool = True

    @field_validator("min_delta")
    @classmethod
    def _rounds_and_deltas(cls, value: dict[int, float]) -> dict[int, float]:
        bad = {k: v for k, v in value.items() if k < 1 or v < 0}
        if bad:
            raise ValueError(f"improve.min_delta {bad}: rounds start at 1 and a min_delta is >= 0")
        return value
