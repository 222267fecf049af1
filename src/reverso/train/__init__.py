"""train: one ablation arm (rpo, dpo, rpo_no_margin) with LoRA; MLflow run, registered version, @challenger.

``train(params, registry, model_dir, pairs_dir, output_dir, ...)`` is the one entry point the CLI,
DVC and a study runner call; ``params.arm`` picks the pair set and whether the margin applies.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from reverso.config import ConfigError, RegistryParams, TrainParams
from reverso.io import DataError, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TRAIN_INFO = "reverso_train.json"
REF_CACHE = Path(".reverso/ref-cache")  # pair datasets + TRL's cached reference log-probs
# TRL scores accuracy on the RPO-shifted margin: a pair counts when β·Δ beats the margin term
# (γ·g in paper mode, β·γ·g in released mode; 0 for the arms without a margin).
TITLES = {"rewards/accuracies": "rewards/accuracies (β·Δ > margin term)"}
CURVE_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")


def load_pair_dataset(path: Path, cache_root: Path) -> Any:
    """Pairs as an on-disk HF Dataset with exactly the columns the trainer reads (TRL format).

    The dataset lives in ``cache_root/pairs-<md5>``, shared by every rank and every rerun: TRL
    writes its precomputed reference log-probs beside it, keyed by the data and the model, so a
    rerun with another beta/gamma/lr (or a second DDP rank) reuses them instead of recomputing.
    """
    from datasets import Dataset, load_from_disk

    from reverso.registry import file_md5

    from reverso.validate import require_clean_pairs

    # the pairs gate's properties (chosen != rejected, no duplicates, RPO chosen passes every rule),
    # checked again here so hand-made pair files get them too
    result = require_clean_pairs(path)
    if not result.rows:
        return None
    target = cache_root / f"pairs-{file_md5(path)}"
    if not (target / "state.json").exists():
        rows = [{"prompt": [m.model_dump() for m in p.prompt], "chosen": [p.chosen[0].model_dump()],
                 "rejected": [p.rejected[0].model_dump()], "margin": p.margin} for p in result.rows]
        staging = Path(tempfile.mkdtemp(dir=cache_root.parent if cache_root.exists() else None))
        cache_root.mkdir(parents=True, exist_ok=True)
        Dataset.from_list(rows).save_to_disk(str(staging / "data"))
        try:
            os.rename(staging / "data", target)
        except OSError:  # another rank got there first with the same content
            pass
        shutil.rmtree(staging, ignore_errors=True)
    return load_from_disk(str(target))


def curated_params(params: TrainParams, model_dir: Path, pairs_hash: str) -> dict[str, Any]:
    """The params worth comparing across runs (not the whole TrainingArguments dump)."""
    return {
        "base_model": str(model_dir), "arm": params.arm, "pairs": params.pair_set, "pairs_md5": pairs_hash,
        "beta": params.beta, "gamma": params.margin_gamma, "margin_mode": params.margin_mode,
        "learning_rate": params.learning_rate,
        "epochs": params.epochs, "max_steps": params.max_steps, "batch_size": params.batch_size,
        "grad_accum": params.gradient_accumulation_steps, "max_length": params.max_length,
        "lora": params.lora.enabled, "lora_r": params.lora.r, "lora_alpha": params.lora.alpha,
        "lora_dropout": params.lora.dropout, "seed": params.seed, "git_commit": _git_commit(),
        "precompute_ref_log_probs": params.precompute_ref_log_probs,
    }


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _mlflow_callback() -> Any:
    from transformers import TrainerCallback

    class MlflowMetrics(TrainerCallback):
        """Step metrics to the active MLflow run (TRL's MLflowCallback would dump every argument)."""

        def __init__(self) -> None:
            self.last: tuple[float, float] | None = None  # (tokens seen, time) at the previous log

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            import mlflow

            if not state.is_world_process_zero or mlflow.active_run() is None:
                return
            logs = dict(logs or {})
            now = time.perf_counter()
            if "num_tokens" in logs and self.last is not None and now > self.last[1]:
                logs["tokens_per_s"] = (float(logs["num_tokens"]) - self.last[0]) / (now - self.last[1])
            if "num_tokens" in logs:
                self.last = (float(logs["num_tokens"]), now)
            numbers = {k: float(v) for k, v in (logs or {}).items()
                       if isinstance(v, (int, float)) and math.isfinite(float(v))}
            if numbers:
                mlflow.log_metrics({k.replace("/", "_"): v for k, v in numbers.items()}, step=state.global_step)

    return MlflowMetrics()


def _build_trainer(params: TrainParams, model_dir: Path, train_set: Any, eval_set: Any, work_dir: Path,
                   ref_cache_dir: Path | None = None) -> Any:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from reverso.train.trainer import MarginCollator, RPOTrainer

    from transformers import set_seed

    set_seed(params.seed)  # LoRA init included: reproducible runs and a stable reference-cache key
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    extra = {"attn_implementation": params.attn_implementation} if params.attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True, **extra)
    lora = None
    if params.lora.enabled:
        lora = LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                          target_modules=params.lora.target_modules, task_type="CAUSAL_LM")
    args = DPOConfig(
        output_dir=str(work_dir), beta=params.beta, loss_type=["sigmoid"], learning_rate=params.learning_rate,
        num_train_epochs=params.epochs, max_steps=params.max_steps,
        per_device_train_batch_size=params.batch_size, per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps, max_length=params.max_length,
        precompute_ref_log_probs=params.precompute_ref_log_probs, bf16=params.bf16,
        gradient_checkpointing=params.gradient_checkpointing, logging_steps=params.logging_steps,
        seed=params.seed, report_to="none", save_strategy="steps", save_steps=params.save_steps,
        save_total_limit=2,
        eval_strategy="epoch" if eval_set is not None else "no", disable_tqdm=False,
        eval_on_start=eval_set is not None,  # the held-out baseline: policy == reference before step 1
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    collator = MarginCollator(pad_token_id=tokenizer.pad_token_id, max_length=params.max_length)
    return RPOTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, processing_class=tokenizer,
        peft_config=lora, data_collator=collator, gamma=params.margin_gamma, margin_mode=params.margin_mode,
        ref_cache_dir=ref_cache_dir,
    )


def plot_curves(history: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("loss", "rewards/margins", "rewards/accuracies") if any(k in h for h in history)]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3))
    for axis, key in zip(axes if len(keys) > 1 else [axes], keys, strict=False):
        for prefix, label in (("", "train batch"), ("eval_", "held-out pairs")):
            points = [(h["step"], h[prefix + key]) for h in history if prefix + key in h]
            if points:
                axis.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=label)
        axis.set_title(TITLES.get(key, key))
        axis.set_xlabel("step")
        axis.legend(fontsize="small")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)


def checkpoint_dir(workspace: Path, params: TrainParams, model_dir: Path, pairs_hash: str) -> Path:
    """Checkpoints are keyed by everything that shapes the run, so a resume never mixes runs."""
    fingerprint = {k: v for k, v in curated_params(params, model_dir, pairs_hash).items() if k != "git_commit"}
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return workspace / ".reverso" / "checkpoints" / f"train-{digest}"


def latest_checkpoint(directory: Path) -> Path | None:
    found = [p for p in directory.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)


def _start_run(ckpt: Path, run_name: str, parent_run_id: str | None = None) -> Any:
    """A resumed training continues the MLflow run of the attempt that was killed."""
    import mlflow

    marker = ckpt / "mlflow_run_id"
    if marker.exists() and latest_checkpoint(ckpt) is not None:
        return mlflow.start_run(run_id=marker.read_text().strip())
    run = mlflow.start_run(run_name=run_name, parent_run_id=parent_run_id)
    ckpt.mkdir(parents=True, exist_ok=True)
    marker.write_text(run.info.run_id)
    return run


def is_main_process() -> bool:
    """Rank 0 (or a single process): the only one that writes outputs and talks to MLflow."""
    return int(os.environ.get("RANK", "0")) == 0


def weights_digest(model: Any) -> str:
    """A digest of the trainable weights, to check that every DDP rank ends with the same model."""
    digest = hashlib.sha256()
    for name, tensor in sorted((n, p) for n, p in model.named_parameters() if p.requires_grad):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().round(6).tobytes())
    return digest.hexdigest()[:16]


def _fit(params: TrainParams, model_dir: Path, train_set: Any, eval_set: Any, ckpt: Path,
         staging: Path, ref_cache: Path) -> tuple[Any, Any, Path | None, list[str]]:
    """Train (on every rank under accelerate), save the adapter into ``staging``."""
    resume = latest_checkpoint(ckpt)
    if resume is not None:
        print(f"resuming training from {resume}")
    trainer = _build_trainer(params, model_dir, train_set, eval_set, ckpt, ref_cache)
    trainer.add_callback(_mlflow_callback())
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    trainer.save_model(str(staging))
    digests = trainer.accelerator.gather_for_metrics([weights_digest(trainer.model)], use_gather_object=True)
    return trainer, result, resume, list(digests)


def _summarise(trainer: Any, result: Any, resume: Path | None, train_set: Any, eval_set: Any,
               digests: list[str]) -> tuple[dict[str, Any], list[dict[str, float]]]:
    # The trainer state holds the whole history, including steps before a resume.
    history = [{k: float(v) for k, v in h.items() if isinstance(v, (int, float))} for h in trainer.state.log_history]
    train_log = [h for h in history if "loss" in h]
    eval_log = [h for h in history if "eval_loss" in h]
    pick = (lambda row, prefix="": {k: row[prefix + k] for k in CURVE_KEYS if prefix + k in row})
    metrics = {"train_loss": float(result.training_loss), "steps": int(result.global_step),
               "resumed_from": resume.name if resume else None, "world_size": len(digests),
               "ranks_agree": len(set(digests)) == 1, "rank_weight_digests": digests,
               "train_pairs": len(train_set), "eval_pairs": len(eval_set) if eval_set else 0,
               "final": pick(train_log[-1]) if train_log else {}, "first": pick(train_log[0]) if train_log else {},
               # In-epoch batch margins are taken before each update and, with RPO's mirrored pairs, often
               # negative; the held-out pairs before and after training are the honest before/after.
               "held_out": {"before": pick(eval_log[0], "eval_"), "after": pick(eval_log[-1], "eval_")}
               if len(eval_log) >= 2 else {}}
    return metrics, [*train_log, *eval_log]


def checked_params(params: TrainParams) -> TrainParams:
    """Revalidate: ``model_copy(update=...)`` skips validation, so a retired key (``pairs``) would do nothing."""
    unknown = sorted(set(vars(params)) - set(TrainParams.model_fields))
    if unknown:
        raise ConfigError(f"train: unknown field(s) {unknown}; choose the pair set and margin with "
                          "train.arm (rpo | dpo | rpo_no_margin)")
    return TrainParams.model_validate(params.model_dump())


def train(
    params: TrainParams,
    registry: RegistryParams,
    model_dir: str | Path,
    pairs_dir: str | Path,
    output_dir: str | Path,
    metrics_out: str | Path,
    plots_dir: str | Path,
    workspace: str | Path = ".",
    register: bool = True,
    run_name: str | None = None,
    parent_run_id: str | None = None,
    ref_cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train one arm, save the adapter atomically, log to MLflow and register a version as @challenger.

    ``params.arm`` picks the pair set (``pairs_dir/<set>/``) and whether the margin applies; a study
    passes ``params.model_copy(update={"arm": ..., "seed": ...})`` and its own output paths.
    ``register=False`` (study arms) logs the run only; ``parent_run_id`` nests it under a study run.
    Reference log-probs are cached in ``ref_cache_dir`` (default ``<workspace>/.reverso/ref-cache``)
    keyed by what they depend on only, so every arm and seed on the same pairs shares them.

    Works as one process or under ``accelerate launch`` (DDP, DeepSpeed, FSDP): every rank trains;
    rank 0 alone writes outputs and talks to MLflow.
    """
    import mlflow

    from reverso import registry as reg

    params = checked_params(params)
    if params.return_freed_memory:
        from reverso.memory import return_freed_memory

        return_freed_memory()
    model_dir, output_dir, plots_dir = Path(model_dir), Path(output_dir), Path(plots_dir)
    train_file = Path(pairs_dir) / params.pair_set / "train.jsonl"
    cache_root = Path(ref_cache_dir) if ref_cache_dir is not None else Path(workspace) / REF_CACHE
    train_set = load_pair_dataset(train_file, cache_root)
    if train_set is None:
        raise DataError(f"{train_file}: no training pairs; collect more samples or lower pairs.g_min")
    eval_set = load_pair_dataset(Path(pairs_dir) / params.pair_set / "eval.jsonl", cache_root)
    pairs_hash = reg.file_md5(train_file)
    ckpt = checkpoint_dir(Path(workspace), params, model_dir, pairs_hash)
    main = is_main_process()
    if not main:
        staging = Path(tempfile.mkdtemp(prefix="reverso-rank-"))
        try:
            _fit(params, model_dir, train_set, eval_set, ckpt, staging, cache_root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return {}

    reg.setup(registry.experiment, workspace)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.parent.glob(f".{output_dir.name}.*"):  # half-written dirs of killed runs
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}."))
    try:
        with _start_run(ckpt, run_name or f"train-{params.arm}", parent_run_id) as run:
            if latest_checkpoint(ckpt) is None:
                mlflow.log_params(curated_params(params, model_dir, pairs_hash))
            mlflow.set_tags({"reverso.stage": "train", "reverso.pairs_md5": pairs_hash, "reverso.arm": params.arm})
            trainer, result, resume, digests = _fit(params, model_dir, train_set, eval_set, ckpt, staging, cache_root)
            metrics, history = _summarise(trainer, result, resume, train_set, eval_set, digests)
            mlflow.log_metrics({"train_loss_mean": metrics["train_loss"], "world_size": metrics["world_size"]})
            version = None
            if register:
                from reverso.train.mlflow_model import log_policy

                logged = reg.with_retries(lambda: log_policy(str(staging), str(model_dir.resolve())),
                                          "model logging")
                version = reg.register_version(
                    registry.model_name, run.info.run_id, logged.model_uri,
                    tags={"pairs_md5": pairs_hash, "pairs": params.pair_set, "arm": params.arm,
                          "base_model": str(model_dir)},
                    model_id=logged.model_id)
                reg.set_alias(registry.model_name, reg.CHALLENGER, version)
            info = {"run_id": run.info.run_id, "model_name": registry.model_name, "version": version,
                    "base_model": str(model_dir), "pairs_md5": pairs_hash, "arm": params.arm, "seed": params.seed}
            (staging / TRAIN_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: the checkpoints are no longer needed
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    metrics.update(version=version, run_id=info["run_id"], arm=params.arm, pairs=params.pair_set,
                   gamma=params.margin_gamma, margin_mode=params.margin_mode, seed=params.seed)
    write_json(metrics_out, metrics)
    write_json(plots_dir / "train_curves.json", {"curves": [
        {"step": h["step"], **{k.replace("/", "_"): h[k] for k in CURVE_KEYS if k in h}}
        for h in history if "loss" in h]})
    plot_curves(history, plots_dir / "train_curves.png")
    return metrics
