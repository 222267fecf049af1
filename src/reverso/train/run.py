"""The train entry point; what it does is in the package docstring (reverso/train/__init__.py)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverso.config import ConfigError, RegistryParams, TrainParams
from reverso.io import DataError, write_json
from reverso.machine import git_commit
from reverso.train.data import load_pair_dataset, load_training_data

__all__ = ["REF_CACHE", "TRAIN_INFO", "StartFrom", "load_pair_dataset", "load_training_data", "train"]

TRAIN_INFO = "reverso_train.json"
REF_CACHE = Path(".reverso/ref-cache")  # pair datasets + TRL's cached reference log-probs


@dataclass(frozen=True)
class StartFrom:
    """Continue training a trained LoRA adapter (the improve loop's champion) instead of a fresh one."""

    adapter: Path
    reference: str = "base"  # base: adapters disabled · champion: a frozen copy of ``adapter``

    def facts(self) -> dict[str, str]:
        from reverso.registry import file_md5

        return {"start_adapter_md5": file_md5(self.adapter / "adapter_model.safetensors"),
                "reference": self.reference}


def curated_params(params: TrainParams, model_dir: Path, pairs_hash: str) -> dict[str, Any]:
    """The params worth comparing across runs (not the whole TrainingArguments dump)."""
    return {
        "base_model": str(model_dir), "arm": params.arm, "pairs": params.pair_set, "pairs_md5": pairs_hash,
        "loss": loss_label(params), "beta": params.beta, "gamma": params.margin_gamma,
        "margin_mode": params.margin_mode, "label_smoothing": params.label_smoothing,
        "simpo_gamma": params.simpo_gamma, "learning_rate": params.learning_rate,
        "lr_scheduler": params.lr_scheduler_type, "warmup_ratio": params.warmup_ratio,
        "epochs": params.epochs, "max_steps": params.max_steps, "batch_size": params.batch_size,
        "pairs_per_step": params.pairs_per_step, "grad_accum": params.gradient_accumulation_steps,
        "max_length": params.max_length, "bf16": str(params.bf16), "group_by_length": params.group_by_length,
        "lora": params.lora.enabled, "lora_r": params.lora.r, "lora_alpha": params.lora.alpha,
        "lora_dropout": params.lora.dropout, "seed": params.seed, "git_commit": git_commit() or "unknown",
        "precompute_ref_log_probs": params.precompute_ref_log_probs, "forward": params.forward,
    }


def loss_label(params: TrainParams) -> str:
    """``sigmoid+0.2*sft`` style name of the loss."""
    return "+".join(t.type if t.weight == 1 else f"{t.weight:g}*{t.type}" for t in params.loss)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def accumulation(params: TrainParams, train_pairs: int, processes: int | None = None) -> int:
    """Micro-batches per optimizer step: pairs_per_step (at most the training set) over batch x processes.

    ``processes`` defaults to this launch's WORLD_SIZE (``reverso study --dry-run`` passes the launcher's).
    """
    if params.gradient_accumulation_steps:
        return params.gradient_accumulation_steps
    per_step = max(1, min(params.pairs_per_step, train_pairs))
    return max(1, math.ceil(per_step / (params.batch_size * (processes or world_size()))))


def use_bf16(setting: bool | str) -> bool:
    """bf16 autocast: as set, or for "auto" where the hardware computes bf16 natively."""
    if setting != "auto":
        return bool(setting)
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    from reverso.machine import cpu_flags

    return bool({"amx_bf16", "avx512_bf16"} & set(cpu_flags()))


def regime(params: TrainParams, train_pairs: int) -> dict[str, Any]:
    """The training regime as it runs (recorded in metrics/train.json and compared across arms)."""
    accum = accumulation(params, train_pairs)
    per_step = params.batch_size * world_size() * accum
    steps_per_epoch = math.ceil(train_pairs / per_step) if train_pairs else 0
    steps = params.max_steps if params.max_steps > 0 else math.ceil(steps_per_epoch * params.epochs)
    return {"builder": params.builder, "loss": loss_label(params), "margin_mode": params.margin_mode,
            "epochs": params.epochs, "pairs_per_step": per_step, "gradient_accumulation_steps": accum,
            "optimizer_steps": steps, "lr_scheduler": params.lr_scheduler_type, "warmup_ratio": params.warmup_ratio,
            "learning_rate": params.learning_rate, "bf16": use_bf16(params.bf16),
            "group_by_length": params.group_by_length, "gradient_checkpointing": params.gradient_checkpointing,
            "forward": params.forward}


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
                   ref_cache_dir: Path | None = None, start: StartFrom | None = None) -> Any:
    import torch
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import DPOConfig

    from reverso.train.trainer import MarginCollator, RPOTrainer, trl_loss

    from transformers import set_seed

    set_seed(params.seed)  # LoRA init included: reproducible runs and a stable reference-cache key
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lora = None
    if start is None and params.lora.enabled:
        lora = LoraConfig(r=params.lora.r, lora_alpha=params.lora.alpha, lora_dropout=params.lora.dropout,
                          target_modules=params.lora.target_modules, task_type="CAUSAL_LM")
    common = dict(
        output_dir=str(work_dir), learning_rate=params.learning_rate,
        lr_scheduler_type=params.lr_scheduler_type, warmup_steps=params.warmup_ratio,
        num_train_epochs=params.epochs, max_steps=params.max_steps,
        per_device_train_batch_size=params.batch_size, per_device_eval_batch_size=params.batch_size,
        gradient_accumulation_steps=accumulation(params, len(train_set)),
        train_sampling_strategy="group_by_length" if params.group_by_length and not params.sft_only else "random",
        bf16=use_bf16(params.bf16),
        use_cpu=not torch.cuda.is_available(),  # bf16 autocast on CPU needs it said explicitly
        gradient_checkpointing=params.gradient_checkpointing, logging_steps=params.logging_steps,
        seed=params.seed, report_to="none", save_strategy="steps", save_steps=params.save_steps,
        save_total_limit=2,
        eval_strategy="epoch" if eval_set is not None else "no", disable_tqdm=False,
        eval_on_start=eval_set is not None,  # the held-out baseline: policy == reference before step 1
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    if params.sft_only:
        from reverso.train.sft import sft_config, sft_trainer

        sft_args = sft_config(params, common)  # before the weights load, as below
        return sft_trainer(sft_args, _load_model(params, model_dir, start), tokenizer, lora, train_set, eval_set)
    loss_types, loss_weights = trl_loss(params.loss)
    args = DPOConfig(**common, beta=params.beta, loss_type=loss_types, loss_weights=loss_weights,
                     label_smoothing=params.label_smoothing, max_length=params.max_length,
                     precompute_ref_log_probs=params.precompute_ref_log_probs)
    # After the training arguments: under accelerate + DeepSpeed ZeRO-3 they register the DeepSpeed
    # config, so the weights load already partitioned across ranks (zero3_init_flag), not whole on each.
    model = _load_model(params, model_dir, start)
    collator = MarginCollator(pad_token_id=tokenizer.pad_token_id, max_length=params.max_length)
    return RPOTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=eval_set, processing_class=tokenizer,
        peft_config=lora, data_collator=collator, gamma=params.margin_gamma, margin_mode=params.margin_mode,
        loss_names=[t.type for t in params.loss], simpo_gamma=params.simpo_gamma, ref_cache_dir=ref_cache_dir,
        base_reference=start is not None and start.reference == "base",
        forward=params.forward,
    )


def _load_model(params: TrainParams, model_dir: Path, start: StartFrom | None) -> Any:
    """The base model (safetensors only), with ``start``'s trained adapter loaded trainable when given."""
    from transformers import AutoModelForCausalLM

    extra = {"attn_implementation": params.attn_implementation} if params.attn_implementation else {}
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True, **extra)
    if start is not None:  # continue training a trained adapter (its LoRA shape is the adapter's own)
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(start.adapter), is_trainable=True)
    return model


def checkpoint_dir(workspace: Path, params: TrainParams, model_dir: Path, pairs_hash: str,
                   start: StartFrom | None = None) -> Path:
    """Checkpoints are keyed by everything that shapes the run, so a resume never mixes runs."""
    fingerprint = {k: v for k, v in curated_params(params, model_dir, pairs_hash).items() if k != "git_commit"}
    if start is not None:
        fingerprint.update(start.facts())
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
    """A digest of the trainable weights, to check that every rank ends with the same model.

    Under DeepSpeed ZeRO-3 each rank holds an empty shard of every parameter: they are gathered
    first (ref_cache.full_tensors), or the ranks would agree on nothing but empty tensors.
    """
    from reverso.train.ref_cache import full_tensors

    digest = hashlib.sha256()
    for name, tensor in full_tensors(model, trainable_only=True):
        digest.update(name.encode())
        digest.update(tensor.float().cpu().numpy().round(6).tobytes())
    return digest.hexdigest()[:16]


def _fit(params: TrainParams, model_dir: Path, train_set: Any, eval_set: Any, ckpt: Path,
         staging: Path, ref_cache: Path, eval_pairs: list[Any],
         start: StartFrom | None = None) -> tuple[Any, Any, Path | None, list[str]]:
    """Train (on every rank under accelerate), save the adapter into ``staging``."""
    from reverso.train.diagnostics import held_out_facts

    resume = latest_checkpoint(ckpt)
    if resume is not None:
        print(f"resuming training from {resume}")
    trainer = _build_trainer(params, model_dir, train_set, eval_set, ckpt, ref_cache, start)
    trainer.held_out_facts = held_out_facts(eval_pairs) if eval_pairs and not params.sft_only else None
    trainer.add_callback(_mlflow_callback())
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if hasattr(trainer, "drop_reference_adapter"):
        trainer.drop_reference_adapter()
    trainer.save_model(str(staging))
    digests = trainer.accelerator.gather_for_metrics([weights_digest(trainer.model)], use_gather_object=True)
    return trainer, result, resume, list(digests)


def checked_params(params: TrainParams) -> TrainParams:
    """Revalidate: ``model_copy(update=...)`` skips validation, so an unknown key would do nothing."""
    unknown = sorted(set(vars(params)) - set(TrainParams.model_fields))
    if unknown:
        raise ConfigError(f"train: unknown field(s) {unknown}; choose the pair set, loss and margin with "
                          "train.builder, train.loss and train.margin_mode (docs/params.md)")
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
    start: StartFrom | None = None,
) -> dict[str, Any]:
    """Train one arm, save the adapter atomically, log to MLflow and register a version as @challenger.

    ``params.arm`` picks the pair set (``pairs_dir/<set>/``) and whether the margin applies; a study
    passes ``params.model_copy(update={"arm": ..., "seed": ...})`` and its own output paths.
    ``register=False`` (study arms) logs the run only; ``parent_run_id`` nests it under a study run.
    Reference log-probs are cached in ``ref_cache_dir`` (default ``<workspace>/.reverso/ref-cache``)
    keyed by what they depend on only, so every arm and seed on the same pairs shares them.
    ``start`` (the improve loop) continues training a trained adapter instead of a fresh LoRA, against
    the base model or that adapter as the DPO reference.

    Works as one process or under ``accelerate launch`` (DDP, DeepSpeed, FSDP): every rank trains;
    rank 0 alone writes outputs and talks to MLflow.
    """
    import mlflow

    from reverso import registry as reg
    from reverso.train import report

    params = checked_params(params)
    if params.return_freed_memory:
        from reverso.memory import return_freed_memory

        return_freed_memory()
    model_dir, output_dir, plots_dir = Path(model_dir), Path(output_dir), Path(plots_dir)
    train_file = Path(pairs_dir) / params.pair_set / "train.jsonl"
    cache_root = Path(ref_cache_dir) if ref_cache_dir is not None else Path(workspace) / REF_CACHE
    train_set, eval_set, eval_pairs = load_training_data(params, Path(pairs_dir), cache_root)
    pairs_hash = reg.file_md5(train_file)
    ckpt = checkpoint_dir(Path(workspace), params, model_dir, pairs_hash, start)
    main = is_main_process()
    if not main:
        staging = Path(tempfile.mkdtemp(prefix="reverso-rank-"))
        try:
            _fit(params, model_dir, train_set, eval_set, ckpt, staging, cache_root, eval_pairs, start)
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
                mlflow.log_params({**curated_params(params, model_dir, pairs_hash), **(start.facts() if start else {})})
            mlflow.set_tags({"reverso.stage": "train", "reverso.pairs_md5": pairs_hash, "reverso.arm": params.arm})
            trainer, result, resume, digests = _fit(params, model_dir, train_set, eval_set, ckpt, staging,
                                                    cache_root, eval_pairs, start)
            metrics, history = report.summarise(trainer, result, resume, train_set, eval_set, digests,
                                                regime(params, len(train_set)))
            if params.sft_only and params.lora.enabled:  # does SFT teach rule reading? the held-out RPO couples
                from reverso.train.diagnostics import flat_metrics
                from reverso.train.sft import rule_reading

                found = rule_reading(params, model_dir, staging, Path(pairs_dir) / "rpo" / "eval.jsonl", cache_root,
                                     ckpt / "rule-reading")
                metrics["rule_reading"] = {"after": found} if found else {}
                if found:
                    mlflow.log_metrics({k.replace("/", "_"): v for k, v in flat_metrics(
                        {k: v for k, v in found.items() if k not in ("held_out", "pairs_file")}).items()})
            mlflow.log_metrics({"train_loss_mean": metrics["train_loss"], "world_size": metrics["world_size"]})
            version = None
            if register:
                from reverso.train.mlflow_model import log_policy

                logged = reg.with_retries(lambda: log_policy(str(staging), str(model_dir.resolve())),
                                          "model logging")
                version = reg.register_version(
                    registry.model_name, run.info.run_id, logged.model_uri,
                    tags={"pairs_md5": pairs_hash, "pairs": params.pair_set, "arm": params.arm,
                          "loss": loss_label(params), "margin_mode": params.margin_mode,
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
                   loss=loss_label(params), gamma=params.margin_gamma, margin_mode=params.margin_mode,
                   seed=params.seed)
    write_json(metrics_out, metrics)
    write_json(plots_dir / "train_curves.json", report.curves(history))
    report.plot_curves(history, plots_dir / "train_curves.png")
    return metrics
