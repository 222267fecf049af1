"""train: one arm (pair builder x loss x margin) with LoRA; MLflow run, registered version, @challenger.

``train(params, registry, model_dir, pairs_dir, output_dir, ...)`` is the one entry point the CLI,
DVC and a study runner call; ``params.builder`` picks the pair set, ``params.loss`` and
``params.margin_mode`` the objective (train/config.py), and the regime (cosine schedule, warm-up,
pairs per optimizer step, epochs) is recorded in metrics/train.json.
"""

from reverso.lazy import exports

__all__ = ["train", "StartFrom", "TRAIN_INFO", "accumulation", "checked_params", "is_main_process", "use_bf16", "weights_digest"]
__getattr__ = exports(__name__, "run", __all__)
