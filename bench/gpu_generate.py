"""Benchmark (GPU): the project's HF sampler on the pipeline's own prompts, by rows in flight.

Runs the default model's architecture (random weights, bf16, see bench/random_model.py) through
``HFSampler`` exactly as collect drives it: n samples per prompt, collect's temperature/top-p and
length. Each batch size also runs once with ``max_new_tokens=1`` to split prefill from decode.
Prompts come from ``--prompts-json`` (written here with ``--write-prompts`` on a machine that has
the seed corpus and the constraint engine) so the GPU side needs only torch/transformers.

    .venv/bin/python bench/gpu_generate.py --write-prompts .gpu/prompts.json --count 256
    python3 bench/gpu_generate.py --prompts-json .gpu/prompts.json --tokenizer .gpu/tokenizer \\
        --out bench/results/gpu_generate.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import random_model
from sampler import timed  # returns after .tolist(): GPU-synchronised


def write_prompts(out: Path, count: int) -> None:
    from sampler import pipeline_conversations

    from reverso.config import load_params

    collect = load_params(Path("params.yaml")).collect
    settings = {"temperature": collect.sampler.temperature, "top_p": collect.sampler.top_p,
                "max_new_tokens": collect.sampler.max_new_tokens, "n": collect.samples_per_turn}
    conversations = pipeline_conversations(Path("params.yaml"), Path("data/seed"), count)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": settings, "conversations": conversations}) + "\n")
    print(f"wrote {len(conversations)} prompts to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write-prompts", type=Path, help="write the pipeline's prompts to this file and stop")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--prompts-json", type=Path, default=Path(".gpu/prompts.json"))
    parser.add_argument("--tokenizer", type=Path, default=Path("models/base"))
    parser.add_argument("--shape", default="smollm2-135m", choices=sorted(random_model.SHAPES))
    parser.add_argument("--rows", default="20,80,320,1280", help="rows in flight (prompts x n) per batch")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu_generate.json"))
    args = parser.parse_args()
    if args.write_prompts:
        write_prompts(args.write_prompts, args.count)
        return

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reverso.generation import GenerationSettings
    from reverso.generation.base import prompt_ids
    from reverso.generation.hf import HFSampler

    spec = json.loads(args.prompts_json.read_text())
    conversations, s = spec["conversations"], spec["settings"]
    n = s["n"]
    folder = random_model.build(args.shape, args.tokenizer, Path(tempfile.mkdtemp()) / args.shape)
    model = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True, dtype=torch.bfloat16)
    model = model.to("cuda" if torch.cuda.is_available() else "cpu")  # CPU only for a dry run
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    full = GenerationSettings(s["temperature"], s["top_p"], s["max_new_tokens"], seed=0)
    one = GenerationSettings(s["temperature"], s["top_p"], 1, seed=0)
    warm = HFSampler(model, tokenizer, batch_size=20, progress=False)
    timed(warm, conversations[:4], n, GenerationSettings(s["temperature"], s["top_p"], 16, seed=0))
    results: list[dict[str, Any]] = []
    for rows in (int(r) for r in args.rows.split(",")):
        batch = conversations[: max(1, rows // n)]
        sampler = HFSampler(model, tokenizer, batch_size=rows, progress=False)
        prefill = timed(sampler, batch, n, one)
        full_run = timed(sampler, batch, n, full)
        decode_s = max(full_run["wall_s"] - prefill["wall_s"], 1e-9)
        results.append({"rows_in_flight": len(batch) * n, "prompts": len(batch),
                        "tokens": full_run["tokens"], "wall_s": round(full_run["wall_s"], 3),
                        "tokens_per_s": round(full_run["tokens"] / full_run["wall_s"], 1),
                        "prefill_s": round(prefill["wall_s"], 3),
                        "decode_tokens_per_s": round((full_run["tokens"] - prefill["tokens"]) / decode_s, 1),
                        "truncated_share": round(full_run["truncated"] / full_run["rows"], 3)})
        print(json.dumps(results[-1]), flush=True)
    best = max(results, key=lambda r: r["tokens_per_s"])
    report = {"backend": "hf generate (HFSampler)", "shape": args.shape, "weights": "random init (bf16)",
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__, "settings": s,
              "prompt_tokens_mean": round(sum(len(prompt_ids(tokenizer, c)) for c in conversations)
                                        / len(conversations), 1),
              "best_tokens_per_s": best["tokens_per_s"], "best_rows_in_flight": best["rows_in_flight"],
              "runs": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
