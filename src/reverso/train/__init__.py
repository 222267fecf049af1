"""train: RPO (or DPO) with LoRA on the pair set; MLflow run, registered version, alias @challenger."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from reverso.config import RegistryParams, TrainParams
from reverso.contracts import Pair
from reverso.io import DataError, read_rows, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TRAIN_INFO = "reverso_train.json"
CURVE_KEYS = ("loss", "rewards/margins", "rewards/accuracies", "rewards/chosen", "rewards/rejected")


def load_pair_dataset(path: Path) -> Any:
    """Pairs as a HF Dataset with exactly the columns the trainer reads (TRL conversational format)."""
    from datasets import Dataset

    result = read_rows(path, Pair)
    if result.quarantined:
        first = result.quarantined[0]
        raise DataError(f"{first.source} line {first.line}: {first.reason}")
    rows = [{"prompt": [m.model_dump() for m in p.prompt], "chosen": [p.chosen[0].model_dump()],
             "rejected": [p.rejected[0].model_dump()], "margin": p.margin} for p in result.rows]
    return Dataset.from_list(rows) if rows else None


def curated_params(params: TrainParams, model_dir: Path, pairs_hash: str) -> dict[str, Any]:
    """The params worth comparing across runs (not the whole TrainingArguments dump)."""
    return {
        "base_model": str(model_dir), "pairs": params.pairs, "pairs_md5": pairs_hash, "beta": params.beta,
        "gamma": params.gamma, "margin_mode": params.margin_mode, "learning_rate": params.learning_rate,
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
            self.history: list[dict[str, float]] = []

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
            import mlflow

            numbers = {k: float(v) for k, v in (logs or {}).items()
                       if isinstance(v, (int, float)) and math.isfinite(float(v))}
            if numbers:
                self.history.append({"step": state.global_step, **numbers})
                mlflow.log_metrics({k.replace("/", "_"): v for k, v in numbers.items()}, step=state.global_step)

    return MlflowMetrics()


def _build_trainer(params: TrainParams, model_dir: Path, train_set: Any, eval_set: Any, work_dir: Path) -> Any:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    from reverso.train.trainer import MarginCollator, RPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True)
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
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    collator = MarginCollator(pad_token_id=tokenizer.pad_token_id, max_length=params.max_length)
    return RPOTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, processing_class=tokenizer,
        peft_config=lora, data_collator=collator, gamma=params.gamma, margin_mode=params.margin_mode,
    )


def plot_curves(history: list[dict[str, float]], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in ("loss", "rewards/margins", "rewards/accuracies") if any(k in h for h in history)]
    fig, axes = plt.subplots(1, max(len(keys), 1), figsize=(4 * max(len(keys), 1), 3))
    for axis, key in zip(axes if len(keys) > 1 else [axes], keys, strict=False):
        points = [(h["step"], h[key]) for h in history if key in h]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        axis.set_title(key)
        axis.set_xlabel("step")
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


def _start_run(ckpt: Path, pairs: str) -> Any:
    """A resumed training continues the MLflow run of the attempt that was killed."""
    import mlflow

    marker = ckpt / "mlflow_run_id"
    if marker.exists() and latest_checkpoint(ckpt) is not None:
        return mlflow.start_run(run_id=marker.read_text().strip())
    run = mlflow.start_run(run_name=f"train-{pairs}")
    ckpt.mkdir(parents=True, exist_ok=True)
    marker.write_text(run.info.run_id)
    return run


def train(
    params: TrainParams,
    registry: RegistryParams,
    model_dir: str | Path,
    pairs_dir: str | Path,
    output_dir: str | Path,
    metrics_out: str | Path,
    plots_dir: str | Path,
    workspace: str | Path = ".",
) -> dict[str, Any]:
    """Train, save the adapter atomically, log to MLflow and register a version as @challenger."""
    import mlflow

    from reverso import registry as reg

    model_dir, output_dir, plots_dir = Path(model_dir), Path(output_dir), Path(plots_dir)
    train_file = Path(pairs_dir) / params.pairs / "train.jsonl"
    train_set = load_pair_dataset(train_file)
    if train_set is None:
        raise DataError(f"{train_file}: no training pairs; collect more samples or lower pairs.g_min")
    eval_set = load_pair_dataset(Path(pairs_dir) / params.pairs / "eval.jsonl")
    pairs_hash = reg.file_md5(train_file)

    reg.setup(registry.experiment, workspace)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.parent.glob(f".{output_dir.name}.*"):  # half-written dirs of killed runs
        shutil.rmtree(stale, ignore_errors=True)
    ckpt = checkpoint_dir(Path(workspace), params, model_dir, pairs_hash)
    staging = Path(tempfile.mkdtemp(dir=output_dir.parent, prefix=f".{output_dir.name}."))
    try:
        with _start_run(ckpt, params.pairs) as run:
            resume = latest_checkpoint(ckpt)
            if resume is None:
                mlflow.log_params(curated_params(params, model_dir, pairs_hash))
            else:
                print(f"resuming training from {resume}")
            mlflow.set_tags({"reverso.stage": "train", "reverso.pairs_md5": pairs_hash})
            trainer = _build_trainer(params, model_dir, train_set, eval_set, ckpt)
            callback = _mlflow_callback()
            trainer.add_callback(callback)
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            trainer.save_model(str(staging))
            # The trainer state holds the whole history, including steps before a resume.
            history = [{k: float(v) for k, v in h.items() if isinstance(v, (int, float))}
                       for h in trainer.state.log_history]
            train_log = [h for h in history if "loss" in h]
            final = {k: train_log[-1][k] for k in CURVE_KEYS if train_log and k in train_log[-1]}
            metrics = {"train_loss": float(result.training_loss), "steps": int(result.global_step),
                       "resumed_from": resume.name if resume else None,
                       "train_pairs": len(train_set), "eval_pairs": len(eval_set) if eval_set else 0,
                       "final": final, "first": {k: train_log[0][k] for k in CURVE_KEYS
                                                 if train_log and k in train_log[0]}}
            mlflow.log_metric("train_loss_mean", metrics["train_loss"])
            mlflow.log_artifacts(str(staging), artifact_path="adapter")
            version = reg.register_version(
                registry.model_name, run.info.run_id, mlflow.get_artifact_uri("adapter"),
                tags={"pairs_md5": pairs_hash, "pairs": params.pairs, "base_model": str(model_dir)})
            reg.set_alias(registry.model_name, reg.CHALLENGER, version)
            info = {"run_id": run.info.run_id, "model_name": registry.model_name, "version": version,
                    "base_model": str(model_dir), "pairs_md5": pairs_hash}
            (staging / TRAIN_INFO).write_text(json.dumps(info, indent=2) + "\n")
        if output_dir.exists():
            shutil.rmtree(output_dir)
        staging.rename(output_dir)
        shutil.rmtree(ckpt, ignore_errors=True)  # finished: the checkpoints are no longer needed
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    metrics.update(version=version, run_id=info["run_id"])
    write_json(metrics_out, metrics)
    write_json(plots_dir / "train_curves.json", {"curves": [
        {"step": h["step"], **{k.replace("/", "_"): h[k] for k in CURVE_KEYS if k in h}} for h in train_log]})
    plot_curves(train_log, plots_dir / "train_curves.png")
    return metrics
