"""A study replicate's own data draw, and the A/A model that measures the evaluation's noise floor.

Replicates differ in training seed *and* data: replicate ``s`` collects its own sessions with
``collect.seed + s`` (``study.vary_data``), reverses them (``data/study/data-<s>/samples/``) and builds
its own pairs (``data/study/data-<s>/pairs/``), so the spread between replicates includes what a different draw of
training prompts and samples does, not only a different LoRA init and data order.

The A/A model is the base model with every weight multiplied by ``1 + study.aa_scale * N(0, 1)``
(seeded). It is as good as the base by construction, so its paired difference from the base on the
same suites is what greedy decoding alone moves each suite: the noise floor printed beside every
real difference.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from reverso.config import Params
from reverso.io import write_json

STUDY_DATA = Path("data/study")
AA_MODEL = Path(".reverso/study/aa-model")
AA_NAME = "aa"


def replicate_dir(seed: int, workspace: str | Path = ".") -> Path:
    return Path(workspace) / STUDY_DATA / f"data-{seed}"


def replicate_collect_seed(params: Params, seed: int) -> int:
    """The collect seed of replicate ``seed``: its own draw (``study.vary_data``), else the pipeline's."""
    return params.collect.seed + seed if params.study.vary_data else params.collect.seed


def replicate_pairs(params: Params, seed: int, workspace: str | Path = ".") -> Path:
    return replicate_dir(seed, workspace) / "pairs"


def replicate_samples(seed: int, workspace: str | Path = ".") -> Path:
    """The replicate's judged samples (sessions, responses, verdicts): study-collect@SEED's output."""
    return replicate_dir(seed, workspace) / "samples"


def replicate_summary(seed: int, workspace: str | Path = ".") -> Path:
    """What the replicate's data holds (collect seed, sessions, pairs per builder), written by study-pairs."""
    return replicate_dir(seed, workspace) / "pairs" / "replicate.json"


def collect_replicate(params: Params, seed: int, model_dir: Path, seed_dir: Path,
                      workspace: str | Path = ".") -> dict[str, Any]:
    """collect -> reverse for one replicate, into ``data/study/data-<seed>/samples/``.

    Its own DVC stage item (study-collect@SEED), apart from the pairs, so a change to a pair builder
    rebuilds the pairs from the same samples instead of sampling them again.
    """
    from reverso.collect import collect
    from reverso.reverse import reverse

    started = time.perf_counter()
    out = replicate_samples(seed, workspace)
    out.mkdir(parents=True, exist_ok=True)
    collect_params = params.collect.model_copy(update={"seed": replicate_collect_seed(params, seed)})
    sessions, responses, verdicts = out / "sessions.jsonl", out / "responses.jsonl", out / "verdicts.jsonl"
    collected = collect(collect_params, model_dir, seed_dir, sessions, responses, out / "collect.json",
                        progress_dir=Path(workspace) / ".reverso/study" / f"collect-progress-{seed}")
    reversed_ = reverse(params.reverse, sessions, responses, verdicts, out / "reverse.json")
    summary = {"seed": seed, "collect_seed": collect_params.seed, "sessions": collected["sessions"],
               "responses": collected["responses"], "verdicts": reversed_["verdicts_out"],
               "collect_wall_s": round(time.perf_counter() - started, 1)}
    write_json(out / "samples.json", summary)
    return summary


def pair_replicate(params: Params, seed: int, model_dir: Path, workspace: str | Path = ".") -> dict[str, Any]:
    """Every builder's pairs (with the GX gate) from one replicate's samples, into ``data-<seed>/pairs/``."""
    from reverso.pairs import pairs

    started = time.perf_counter()
    samples = replicate_samples(seed, workspace)
    out = replicate_pairs(params, seed, workspace)
    built = pairs(params.pairs, samples / "sessions.jsonl", samples / "responses.jsonl", samples / "verdicts.jsonl",
                  out, out / "pairs.json", out / "validation", model_dir, max_tokens=params.pairs.max_length)
    summary = json.loads((samples / "samples.json").read_text())
    summary["pairs"] = {builder: built[builder]["pairs"] for builder in built
                        if isinstance(built[builder], dict) and "pairs" in built[builder]}
    summary["pairs_wall_s"] = round(time.perf_counter() - started, 1)
    write_json(replicate_summary(seed, workspace), summary)
    return summary


def perturbed_copy(model_dir: Path, out: Path, scale: float, seed: int) -> dict[str, Any]:
    """``model_dir`` with every floating weight multiplied by ``1 + scale * N(0, 1)`` (seeded), as safetensors.

    Tokenizer and config files are copied as they are; the record says how many weights moved.
    """
    import torch
    from safetensors.torch import load_file, save_file

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    generator = torch.Generator().manual_seed(seed)
    changed = total = 0
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{model_dir}: no *.safetensors weights to perturb (weights load from safetensors only)")
    for path in model_dir.iterdir():
        if path.is_file() and path.suffix != ".safetensors":
            shutil.copy2(path, out / path.name)
    for path in files:
        tensors = load_file(str(path))
        for name, tensor in tensors.items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator, dtype=torch.float32)
                moved = (tensor.float() * (1 + scale * noise)).to(tensor.dtype)
                changed += int((moved != tensor).sum())
                total += tensor.numel()
                tensors[name] = moved.contiguous()
        save_file(tensors, str(out / path.name), metadata={"format": "pt"})
    record = {"source": str(model_dir), "scale": scale, "seed": seed, "weights": total, "weights_changed": changed}
    (out / "aa_perturbation.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
