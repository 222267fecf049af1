"""SFT-only arms: ``train.loss: [sft]`` on an SFT builder's examples (pairs/builders.py), with TRL's SFTTrainer.

An example is a prompt and the one reply that passes every rule of it (``hindsight_sft``: a finished reply
under its reversed instruction; ``verified_sft``: a reply that passed its original instruction). The loss
is the NLL of the reply alone (TRL's completion-only loss on prompt-completion data): no rejected side,
so no second forward and no reference model.

After training, the couple-margin diagnostic of diagnostics.py is measured on the held-out RPO pairs of
the same data (``rule_reading``), so an SFT arm reports whether it reads rules like any preference arm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reverso.contracts import Example
from reverso.io import DataError, ReadResult, read_rows

EXAMPLES_FORMAT = 1  # bump when the columns of the cached example datasets change


def _example_checker() -> Any:
    """The SFT gate's properties, checked again on any example file: known rules the reply passes, no repeats."""
    import json

    from reverso import constraints as engine
    from reverso.pairs.validate import reverify_example

    seen: set[str] = set()

    def check(example: Example) -> str | None:
        key = json.dumps([[m.model_dump() for m in example.prompt], example.completion[0].content])
        if key in seen:
            return "duplicate example: same prompt and completion as an earlier row"
        seen.add(key)
        try:
            fails = reverify_example(example)
        except engine.ConstraintError as exc:
            return f"constraints: {str(exc)[:300]}"
        if fails:
            return f"completion: fails {', '.join(fails)} (an SFT reply must satisfy every rule of its prompt)"
        return None

    return check


def read_examples(path: str | Path) -> ReadResult[Example]:
    """Examples with the contract and the SFT gate's properties (bad rows quarantined, with the reason)."""
    return read_rows(path, Example, check=_example_checker())


def load_example_dataset(path: Path, cache_root: Path) -> tuple[Any, list[Example]]:
    """Examples as an on-disk HF Dataset in TRL's conversational prompt-completion format, and the rows.

    Any bad row stops the stage, naming its line (as train does for pairs).
    """
    from datasets import load_from_disk

    from reverso.registry import file_md5
    from reverso.train.data import saved_once

    result = read_examples(path)
    if result.quarantined:
        shown = "; ".join(f"line {q.line}: {q.reason}" for q in result.quarantined[:5])
        raise DataError(f"{path}: {len(result.quarantined)} bad examples: {shown}")
    if not result.rows:
        return None, []
    target = cache_root / f"examples-v{EXAMPLES_FORMAT}-{file_md5(path)}"
    saved_once(target, lambda: [{"prompt": [m.model_dump() for m in e.prompt],
                                 "completion": [e.completion[0].model_dump()]} for e in result.rows])
    return load_from_disk(str(target)), list(result.rows)


def sft_config(params: Any, common: dict[str, Any]) -> Any:
    """SFTConfig with the run's shared regime (``common``: optimiser, schedule, steps, precision)."""
    from trl import SFTConfig

    return SFTConfig(**common, max_length=params.max_length, completion_only_loss=True, packing=False)


def sft_trainer(args: Any, model: Any, tokenizer: Any, lora: Any, train_set: Any, eval_set: Any) -> Any:
    from trl import SFTTrainer

    return SFTTrainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                      processing_class=tokenizer, peft_config=lora)


def rule_reading(params: Any, model_dir: Path, adapter: Path, pairs_file: Path, cache_root: Path,
                 work_dir: Path) -> dict[str, Any]:
    """The couple-margin diagnostic of a trained adapter on held-out RPO pairs (reference: the base model).

    Runs RPOTrainer's evaluation on ``pairs_file`` with the adapter loaded and the base as the reference,
    the same code that scores preference arms during training. {} when there are no such pairs.
    """
    from reverso.config import TrainParams
    from reverso.train.run import StartFrom, _build_trainer
    from reverso.train.data import held_out_subset, load_pair_dataset
    from reverso.train.diagnostics import held_out_facts, rule_reading as reading
    from reverso.train.report import _pick

    pair_set, pairs = load_pair_dataset(pairs_file, cache_root) if pairs_file.exists() else (None, [])
    if pair_set is None:
        return {}
    keep = held_out_subset(pairs, params.held_out_pairs, params.seed)
    if keep is not None:
        pair_set = pair_set.select(keep)
    scoring = TrainParams.model_validate(params.model_dump() | {
        "builder": "rpo", "loss": [{"type": "sigmoid"}], "margin_mode": "none", "max_steps": 1})
    trainer = _build_trainer(scoring, model_dir, pair_set, pair_set, work_dir, cache_root,
                             StartFrom(adapter, reference="base"))
    trainer.held_out_facts = None
    trainer.evaluate()
    found = reading(held_out_facts(pairs), trainer.take_held_out(), scoring.beta)
    logged = trainer.state.log_history[-1] if trainer.state.log_history else {}
    return {**found, "held_out": _pick({k: float(v) for k, v in logged.items() if isinstance(v, (int, float))},
                                       "eval_"), "pairs_file": str(pairs_file)}
