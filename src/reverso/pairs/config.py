"""The ``pairs`` section: how every builder's pair set is built, capped and split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reverso.config_base import _Section


class PairsParams(_Section):
    """``pairs``: build RPO pairs and the count-based DPO baseline."""

    g_min: int = Field(3, ge=1)  # paper: 3
    # dpo_paper builder: pass counts on the original instruction must differ by at least this (authors: > 2)
    dpo_paper_gap: int = Field(3, ge=1)
    # Caps apply to both builders alike, so the arms differ only in how pairs are chosen.
    max_pairs_per_turn: int | None = Field(None, ge=1)
    # balance long sessions against short ones; caps count reply pairs, so an RPO couple is never split
    max_pairs_per_session: int | None = Field(3, ge=1)
    # Token budget of prompt + response; at most train.max_length (checked at load: the trainer would
    # silently truncate longer pairs). Longer pairs are set aside in the quarantine file with their length.
    max_length: int = Field(512, ge=16)
    # A reply cut off by max_new_tokens (finish_reason "length") is judged on a fragment and would be
    # trained with an end-of-turn token; such replies are left out (and counted) unless this is true.
    allow_truncated: bool = False
    # Equal budgets for the ablation: subsample these pair sets (per split, with seed) to the smallest
    # one's size, so their arms train on as many pairs (and steps); true = [rpo, dpo]. Otherwise arms
    # compare at equal epochs over their own sets (train.epochs).
    equalize: list[Literal["rpo", "dpo", "dpo_paper", "rpo_one_way", "rpo_finish", "hindsight_sft", "verified_sft"]] = []
    seed: int = 7
    max_quarantine_fraction: float = Field(0.05, ge=0.0, le=1.0)
