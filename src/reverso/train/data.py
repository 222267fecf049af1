"""The training data as HF Datasets in TRL's formats: preference pairs, or SFT examples (sft.py).

Datasets live on disk under the reference cache (``pairs-<md5>``, ``examples-<md5>``), shared by every
rank and every rerun, so TRL's precomputed reference log-probs beside them are found again.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from reverso.io import DataError

DATASET_FORMAT = 2  # bump when the columns of the cached pair datasets change


def saved_once(target: Path, rows: Any) -> None:
    """Write ``rows()`` as an HF Dataset at ``target`` unless it is there; atomic, so ranks may race."""
    from datasets import Dataset

    if (target / "state.json").exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent))
    Dataset.from_list(rows()).save_to_disk(str(staging / "data"))
    try:
        os.rename(staging / "data", target)
    except OSError:  # another rank got there first with the same content
        pass
    shutil.rmtree(staging, ignore_errors=True)


def load_pair_dataset(path: Path, cache_root: Path) -> tuple[Any, list[Any]]:
    """Pairs as an on-disk HF Dataset with exactly the columns the trainer reads (TRL format), and the rows.

    The dataset lives in ``cache_root/pairs-<md5>``, shared by every rank and every rerun: TRL
    writes its precomputed reference log-probs beside it, keyed by the data and the model, so a
    rerun with another beta/gamma/lr (or a second DDP rank) reuses them instead of recomputing.
    """
    from datasets import load_from_disk

    from reverso.registry import file_md5
    from reverso.validate import require_clean_pairs

    # the pairs gate's properties (chosen != rejected, no duplicates, RPO chosen passes every rule),
    # checked again here so hand-made pair files get them too
    result = require_clean_pairs(path)
    if not result.rows:
        return None, []
    target = cache_root / f"pairs-v{DATASET_FORMAT}-{file_md5(path)}"
    saved_once(target, lambda: [{"prompt": [m.model_dump() for m in p.prompt], "chosen": [p.chosen[0].model_dump()],
                                 "rejected": [p.rejected[0].model_dump()], "margin": p.margin, "pair_index": i}
                                for i, p in enumerate(result.rows)])
    return load_from_disk(str(target)), list(result.rows)


def held_out_subset(pairs: list[Any], limit: int | None, seed: int) -> list[int] | None:
    """Row indices of at most ``limit`` held-out pairs, whole couples drawn reproducibly (None: keep all)."""
    from reverso.pairs.builders import couple_key

    if limit is None or len(pairs) <= limit:
        return None
    units: dict[Any, list[int]] = {}
    for index, pair in enumerate(pairs):
        units.setdefault(couple_key(pair), []).append(index)
    order = list(units.values())
    random.Random(f"{seed}-held-out").shuffle(order)
    kept: list[int] = []
    for rows in order:
        if len(kept) + len(rows) <= limit:
            kept += rows
    return sorted(kept)


def load_training_data(params: Any, pairs_dir: Path, cache_root: Path) -> tuple[Any, Any, list[Any]]:
    """(train set, held-out set or None, held-out rows) of ``params.pair_set``: pairs or SFT examples.

    ``train.held_out_pairs`` caps the held-out pairs (couples kept whole) or examples scored at each
    evaluation; the rows stay complete, so the diagnostic's facts keep each pair's index in its file.
    """
    folder = pairs_dir / params.pair_set
    if params.sft_only:
        from reverso.train.sft import load_example_dataset

        train_set, _ = load_example_dataset(folder / "train.jsonl", cache_root)
        eval_set, eval_rows = load_example_dataset(folder / "eval.jsonl", cache_root)
        if train_set is None:
            raise DataError(f"{folder / 'train.jsonl'}: no training examples; collect more samples")
        if eval_set is not None and params.held_out_pairs and len(eval_rows) > params.held_out_pairs:
            keep = sorted(random.Random(f"{params.seed}-held-out").sample(range(len(eval_rows)), params.held_out_pairs))
            eval_set = eval_set.select(keep)  # held-out NLL on a seeded subset: each evaluation costs a forward a row
        return train_set, eval_set, eval_rows
    train_set, _ = load_pair_dataset(folder / "train.jsonl", cache_root)
    if train_set is None:
        raise DataError(f"{folder / 'train.jsonl'}: no training pairs; collect more samples or lower pairs.g_min")
    eval_set, eval_pairs = load_pair_dataset(folder / "eval.jsonl", cache_root)
    keep = held_out_subset(eval_pairs, params.held_out_pairs, params.seed) if eval_set is not None else None
    if keep is not None:
        eval_set = eval_set.select(keep)
    return train_set, eval_set, eval_pairs
