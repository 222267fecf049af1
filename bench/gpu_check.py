"""GPU check of the paper-scale recipe, in one script and under 10 minutes, on one CUDA GPU.

1. ``reverso study --dry-run`` of the recipe (params, launcher, accelerate/DeepSpeed config, backends);
2. the recipe's own training launcher (``study.train_launcher``: accelerate + DeepSpeed ZeRO-3) with
   ``--num_processes 1``, training a random-init ~1B Llama (bench/random_model.py, the real
   tokenizer) for a few optimizer steps on long pairs: ZeRO-3 init, the reference cache key and the
   ``ranks_agree`` digest over partitioned parameters (gathered), LoRA saving under ZeRO-3;
3. greedy evaluation throughput of the same model, ``hf`` then ``vllm`` (the recipe's evaluate backend),
   through the project's own samplers (generation/factory.py), same prompts and settings.

Writes bench/results/gpu_check.json (with reverso.machine's CPU flags and versions, plus the GPU). Not a
test: without CUDA (or without vllm/deepspeed, requirements-gpu.lock) it stops at once saying so.

    pip install -r requirements-gpu.lock            # the GPU box (infra/Dockerfile.cuda does it)
    python bench/gpu_check.py --tokenizer models/base --out bench/results/gpu_check.json
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 600
RULES = "You are helpful.\n\nFollow these rules in every reply:\n1. Do not use any commas.\n2. Answer in English."


def stop(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def preflight() -> dict[str, Any]:
    """CUDA, vllm and deepspeed, or a clear stop (exit 2) before anything is built."""
    import torch

    if not torch.cuda.is_available():
        stop(f"gpu_check needs a CUDA GPU: torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'}) "
             "sees none here. Run it on the GPU box after `pip install -r requirements-gpu.lock` "
             "(docs/benchmarks.md, 'GPU check').")
    missing = [m for m in ("vllm", "deepspeed") if importlib.util.find_spec(m) is None]
    if missing:
        stop(f"gpu_check needs {' and '.join(missing)}: pip install -r requirements-gpu.lock")
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda}


def write_pairs(root: Path, count: int, words: int) -> None:
    """Long RPO pairs in the pair contract (chosen passes its rule: no commas; rejected breaks it)."""
    from reverso.contracts import Pair

    filler = " ".join(f"point {k} about the topic" for k in range(words // 5))
    for split, n in (("train", count), ("eval", 0)):
        path = root / "data/pairs/rpo" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [Pair.model_validate({
            "prompt": [{"role": "system", "content": RULES}, {"role": "user", "content": f"Tell me about topic {i}."}],
            "chosen": [{"role": "assistant", "content": f"Topic {i} matters for many reasons. {filler}"}],
            "rejected": [{"role": "assistant",
                          "content": f"Well, topic {i}, as you know, is, in short, fine. {filler}"}],
            "margin": 1 + i % 3, "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}],
            "session_id": f"s{i}", "turn": 0, "builder": "rpo"}).model_dump_json() for i in range(n)]
        path.write_text("".join(r + "\n" for r in rows))


def launcher_argv(launcher: str) -> list[str]:
    """The recipe's launcher on one GPU: ``--num_processes 1`` right after ``accelerate launch``."""
    argv = shlex.split(launcher)
    if argv[:2] == ["accelerate", "launch"]:
        argv = [*argv[:2], "--num_processes", "1", *argv[2:]]
    return argv


def train_check(recipe: Path, model_dir: Path, work: Path, steps: int, timeout_s: float) -> dict[str, Any]:
    from reverso.config import load_params, recipe_overrides

    overrides = recipe_overrides(recipe) + [
        f"train.max_steps={steps}", "train.pairs_per_step=8", "train.max_length=1024", "pairs.max_length=1024",
        f"train.save_steps={steps * 10}", "train.logging_steps=1"]
    params = load_params(REPO / "params.yaml", overrides)
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "params.yaml", work / "params.yaml")
    write_pairs(work, count=8 * steps, words=400)
    command = [*launcher_argv(params.study.train_launcher), "train", "--model", str(model_dir)]
    for text in overrides:
        command += ["-S", text]
    # the launcher's relative config path is the repository's
    command = [str(REPO / a) if a.startswith("configs/") else a for a in command]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=timeout_s)
    wall = round(time.perf_counter() - started, 1)
    record: dict[str, Any] = {"command": command, "returncode": result.returncode, "wall_s": wall}
    metrics = work / "metrics/train.json"
    if result.returncode != 0 or not metrics.exists():
        record["output_tail"] = (result.stdout + result.stderr)[-4000:]
        return record
    found = json.loads(metrics.read_text())
    keep = ("steps", "train_loss", "world_size", "ranks_agree", "rank_weight_digests", "train_pairs", "regime",
            "final")
    record.update({k: found[k] for k in keep if k in found})
    record["adapter_saved"] = (work / "models/policy/adapter_model.safetensors").exists()
    record["reference_cache_entries"] = len(list((work / ".reverso/ref-cache").glob("ref-logps-*.json")))
    return record


def eval_throughput(backend: str, model_dir: Path, prompts: int, max_new_tokens: int) -> dict[str, Any]:
    import torch

    from reverso.generation.base import GenerationSettings
    from reverso.generation.factory import make_sampler

    conversations = [[{"role": "system", "content": RULES},
                      {"role": "user", "content": f"Write a short story about city number {i}."}]
                     for i in range(prompts)]
    greedy = GenerationSettings(temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens, seed=0)
    started = time.perf_counter()
    sampler = make_sampler(backend, model_dir, batch_size=prompts, progress=False)
    load_s = time.perf_counter() - started
    sampler.generate(conversations[:2], 1, GenerationSettings(0.0, 1.0, 8, 0))  # warm-up
    started = time.perf_counter()
    outputs = sampler.generate(conversations, 1, greedy)
    wall = time.perf_counter() - started
    tokens = sum(c.completion_tokens for row in outputs for c in row)
    record = {"backend": backend, "prompts": prompts, "max_new_tokens": max_new_tokens, "load_s": round(load_s, 1),
              "wall_s": round(wall, 2), "tokens": tokens, "tokens_per_s": round(tokens / wall, 1),
              "truncated_share": round(sum(c.finish_reason == "length" for row in outputs for c in row) / prompts, 3)}
    del sampler, outputs
    gc.collect()
    torch.cuda.empty_cache()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipe", type=Path, default=Path("configs/study/paper-8b.yaml"))
    parser.add_argument("--tokenizer", type=Path, default=Path("models/base"), help="a folder with the tokenizer")
    parser.add_argument("--shape", default="1b")
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps of the training check")
    parser.add_argument("--prompts", type=int, default=256, help="prompts per evaluation backend")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_check.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    gpu = preflight()
    import random_model

    from reverso.machine import machine_info
    from reverso.study.dry_run import dry_run

    report: dict[str, Any] = {"recipe": str(args.recipe), "gpu": gpu, "machine": machine_info(), "budget_s": BUDGET_S}
    extra = ("vllm", "deepspeed", "accelerate")
    report["machine"]["versions"].update({m: importlib.metadata.version(m) for m in extra})
    checked = dry_run(REPO, args.recipe, [])
    report["dry_run"] = {"errors": checked.errors, "needs": checked.needs, "facts": checked.facts}
    if checked.errors:
        raise SystemExit("the recipe is inconsistent:\n" + checked.render())
    work = Path(tempfile.mkdtemp(prefix="reverso-gpu-check-"))
    model_dir = random_model.build(args.shape, args.tokenizer, work / f"model-{args.shape}")
    report["model"] = {"shape": args.shape, "weights": "random init",
                       "build_s": round(time.perf_counter() - started, 1)}
    remaining = BUDGET_S - (time.perf_counter() - started)
    report["train"] = train_check(args.recipe, model_dir, work / "train", args.steps, timeout_s=0.5 * remaining)
    print(json.dumps({k: v for k, v in report["train"].items() if k != "output_tail"}, indent=2), flush=True)
    report["evaluate"] = {}
    for backend in ("hf", "vllm"):
        try:
            report["evaluate"][backend] = eval_throughput(backend, model_dir, args.prompts, args.max_new_tokens)
        except Exception as exc:  # one backend's failure is a finding, not the end of the check
            report["evaluate"][backend] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        print(json.dumps(report["evaluate"][backend]), flush=True)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["within_budget"] = report["wall_s"] <= BUDGET_S
    report["ok"] = bool(report["train"].get("ranks_agree") and report["train"].get("adapter_saved")
                        and all("tokens_per_s" in r for r in report["evaluate"].values()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"gpu_check: {'ok' if report['ok'] else 'FAILED'} in {report['wall_s']} s -> {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    raise SystemExit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
