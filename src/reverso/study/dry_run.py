"""``reverso study --recipe FILE --dry-run``: resolve a whole recipe on any machine, train nothing.

What it resolves: the merged params (workspace params.yaml, then the recipe, then ``-S``; validated
by the params models, an error naming the file it came from and the field), the command line DVC
runs for every ``study-train`` item (``study.train_launcher`` + ``study train-arm ...``, an argument
list), the accelerate/DeepSpeed config it names (processes, mixed precision against ``train.bf16``,
gradient accumulation against what params derive), and the packages each configured backend needs.

Verdicts: an *error* is the recipe contradicting itself (exit 1); a *need* is what the target machine
must have (a GPU, a package of requirements-gpu.lock, the weights). Needs never fail on a machine
without CUDA (the recipe is for another box); on a CUDA machine a missing package is an error.
"""

from __future__ import annotations

import importlib.util
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

GPU_LOCK = "pip install -r requirements-gpu.lock"
# backend -> (python module, what installs it)
BACKEND_MODULES = {"vllm": ("vllm", GPU_LOCK), "openvino": ("openvino_genai", "make setup (requirements.lock)"),
                   "hf": ("transformers", "make setup (requirements.lock)")}
LAUNCHER_OPTIONS = {"--config_file": "config_file", "--config-file": "config_file",
                    "--num_processes": "num_processes", "--num-processes": "num_processes",
                    "--mixed_precision": "mixed_precision", "--mixed-precision": "mixed_precision",
                    "--gradient_accumulation_steps": "gradient_accumulation_steps",
                    "--gradient-accumulation-steps": "gradient_accumulation_steps",
                    "--nproc_per_node": "num_processes", "--nproc-per-node": "num_processes"}


@dataclass
class DryRun:
    """What a recipe resolves to; ``errors`` make it inconsistent, ``needs`` are the target machine's."""

    source: str
    errors: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    cuda: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def render(self) -> str:
        lines = [f"dry run of {self.source}: " + ("INCONSISTENT" if self.errors else "consistent")]
        lines += [f"error: {e}" for e in self.errors]
        lines += [f"  {f}" for f in self.facts]
        if self.commands:
            lines.append(f"train launcher, one command per study-train item ({len(self.commands)}), the first:")
            lines.append(f"  {self.commands[0]!r}")
        if self.needs:
            where = "this machine lacks" if self.cuda else "a GPU box must have"
            lines.append(f"{where}:")
            lines += [f"  - {n}" for n in self.needs]
        lines.append("nothing was run or written")
        return "\n".join(lines)


def _origin(loc: str, recipe: Path | None, recipe_keys: list[str], set_keys: list[str], params: Path) -> str:
    def hits(keys: list[str]) -> bool:
        return any(k == loc or k.startswith(f"{loc}.") or loc.startswith(f"{k}.") for k in keys)

    if loc and hits(set_keys):
        return "-S"
    if recipe is not None and (hits(recipe_keys) or not loc):
        return f"{recipe}" if loc else f"{recipe} over {params}"
    return str(params)


def resolve_params(workspace: Path, recipe: Path | None, sets: list[str], report: DryRun) -> Any:
    """The merged, validated params, or None with errors naming the file and field."""
    from reverso.config import ConfigError, Params, _set_dotted, parse_override, recipe_overrides

    path = workspace / "params.yaml"
    try:
        tree = (yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
        recipe_items = recipe_overrides(recipe) if recipe else []
        recipe_keys = [parse_override(t)[0] for t in recipe_items]
        set_keys = [parse_override(t)[0] for t in sets]
        for text in [*recipe_items, *sets]:
            _set_dotted(tree, *parse_override(text))
    except (ConfigError, yaml.YAMLError, OSError) as exc:
        report.errors.append(str(exc))
        return None
    try:
        params = Params.model_validate(tree)
    except ValidationError as err:
        for item in err.errors():
            loc = ".".join(str(p) for p in item["loc"])
            origin = _origin(loc, recipe, recipe_keys, set_keys, path)
            report.errors.append(f"{origin}: {loc or 'params'}: {item['msg'].removeprefix('Value error, ')}")
        return None
    if recipe_items or sets:
        report.facts.append(f"params: {path} + {len(recipe_items)} recipe value(s)"
                            + (f" + {len(sets)} -S override(s)" if sets else "") + ", validated")
    return params


def parse_launcher(launcher: str) -> tuple[str, dict[str, str], str | None]:
    """``study.train_launcher`` -> (kind, options, module): kind is reverso | accelerate | torchrun | python."""
    argv = shlex.split(launcher)
    if not argv:
        return "", {}, None
    head = Path(argv[0]).name
    kind = {"reverso": "reverso", "accelerate": "accelerate", "torchrun": "torchrun"}.get(head, "")
    if head.startswith("python"):
        kind = "python"
    rest = argv[2:] if kind == "accelerate" and argv[1:2] == ["launch"] else argv[1:]
    if kind == "accelerate" and argv[1:2] != ["launch"]:
        kind = ""
    options: dict[str, str] = {}
    module = None
    i = 0
    while i < len(rest):
        token = rest[i]
        name, _, inline = token.partition("=")
        if token == "-m" and i + 1 < len(rest):
            module = rest[i + 1]
            i += 2
            continue
        if name in LAUNCHER_OPTIONS:
            value = inline or (rest[i + 1] if i + 1 < len(rest) else "")
            options[LAUNCHER_OPTIONS[name]] = value
            i += 1 if inline else 2
            continue
        i += 1
    return kind, options, module


def _int_or(value: Any, default: int) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default if value in (None, "") else str(value)


def check_launcher(params: Any, workspace: Path, report: DryRun) -> dict[str, Any]:
    """The launcher's command lines and its accelerate config's consistency with params."""
    from reverso.study import item_name
    from reverso.train import accumulation

    launcher = params.study.train_launcher
    kind, options, module = parse_launcher(launcher)
    base = shlex.split(launcher)
    report.commands = [[*base, "study", "train-arm", "--arm", arm, "--seed", str(seed)]
                       for arm in params.study.arms for seed in params.study.seeds]
    field_name = "study.train_launcher"
    if not kind:
        report.errors.append(f"{field_name}: {launcher!r} is not a launcher reverso knows: use `reverso`, "
                             "`accelerate launch [options] -m reverso.cli` or `torchrun [options] -m reverso.cli`")
        return {"processes": 1}
    if kind != "reverso" and module != "reverso.cli":
        report.errors.append(f"{field_name}: {launcher!r} must run the module reverso.cli (end with `-m reverso.cli`)"
                             f", found module {module!r}")
    processes: int | str = _int_or(options.get("num_processes"), 1)
    info: dict[str, Any] = {"kind": kind, "distributed_type": "NO", "mixed_precision": options.get("mixed_precision")}
    config_file = options.get("config_file")
    if kind == "accelerate" and not config_file:
        report.errors.append(f"{field_name}: accelerate launch without --config_file would use whatever default "
                             "config the machine has; name one of configs/accelerate/")
    if kind == "accelerate" and config_file:
        config_path = workspace / config_file
        config = _accelerate_config(config_path, report)
        if config is None:
            return {"processes": 1}
        info.update(config=config_file, distributed_type=str(config.get("distributed_type", "NO")))
        if "num_processes" not in options:
            processes = _int_or(config.get("num_processes"), 1)
        if info["mixed_precision"] is None:
            info["mixed_precision"] = str(config.get("mixed_precision") or "no")
        ds = config.get("deepspeed_config") or {}
        declared = options.get("gradient_accumulation_steps", ds.get("gradient_accumulation_steps"))
        where = ("--gradient_accumulation_steps in study.train_launcher" if "gradient_accumulation_steps" in options
                 else f"{config_file}: deepspeed_config.gradient_accumulation_steps")
        info["declared_accumulation"], info["accumulation_field"] = declared, where
        info["zero_stage"] = ds.get("zero_stage")
    if not isinstance(processes, int) or processes < 1:
        report.errors.append(f"{config_file or field_name}: num_processes must be a whole number >= 1, "
                             f"got {processes!r}")
        processes = 1
    info["processes"] = processes
    expected = accumulation(params.train, params.train.pairs_per_step, processes)
    info["accumulation"] = expected
    declared = info.get("declared_accumulation")
    if info["distributed_type"] == "DEEPSPEED" and declared not in (None, "auto") and _int_or(declared, -1) != expected:
        report.errors.append(
            f"{info['accumulation_field']} is {declared}, but params give {expected} micro-batches per step "
            f"(train.pairs_per_step {params.train.pairs_per_step} / (train.batch_size {params.train.batch_size} x "
            f"{processes} processes)); the trainer would stop on the mismatch: set it to auto")
    _check_precision(params, info, report)
    per_step = params.train.batch_size * processes * expected
    report.facts.append(
        f"train: {kind}" + (f" with {info['config']} ({info['distributed_type']}"
                            + (f" ZeRO-{info['zero_stage']}" if info.get("zero_stage") else "") + ")"
                            if info.get("config") else "")
        + f", {processes} process(es), mixed precision {info['mixed_precision'] or 'no'} (train.bf16 "
        f"{params.train.bf16}), accumulation {expected} -> {per_step} pairs per optimizer step"
        + ("" if per_step == params.train.pairs_per_step or params.train.gradient_accumulation_steps
           else f" (train.pairs_per_step {params.train.pairs_per_step} rounded up)"))
    return info


def _accelerate_config(path: Path, report: DryRun) -> dict[str, Any] | None:
    if not path.is_file():
        report.errors.append(f"study.train_launcher: accelerate config {path} does not exist")
        return None
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        from accelerate.commands.config.config_args import ClusterConfig

        ClusterConfig.from_yaml_file(str(path))  # accelerate's own parser: unknown keys, bad enums
    except (yaml.YAMLError, TypeError, ValueError, KeyError) as exc:
        report.errors.append(f"{path}: not a valid accelerate config: {exc}")
        return None
    return config


def _check_precision(params: Any, info: dict[str, Any], report: DryRun) -> None:
    precision = (info.get("mixed_precision") or "no").lower()
    where = (f"{info['config']}: mixed_precision" if info.get("config") and "--mixed_precision" not in
             params.study.train_launcher else "study.train_launcher --mixed_precision")
    bf16 = params.train.bf16
    if precision in ("fp16", "fp8"):
        report.errors.append(f"{where} is {precision}: training runs in bf16 or fp32 (train.bf16); use bf16 or no")
    elif precision == "bf16" and bf16 is False:
        report.errors.append(f"{where} is bf16 but train.bf16 is false: set train.bf16: true (or mixed_precision: no)")
    elif precision == "no" and bf16 is True and info.get("kind") == "accelerate":
        report.errors.append(f"{where} is no but train.bf16 is true: set mixed_precision: bf16 (or train.bf16: false)")


def _needs_module(module: str, what: str, how: str, report: DryRun) -> None:
    if importlib.util.find_spec(module) is None:
        report.needs.append(f"{what} needs {module}: {how} (not installed here)")
    else:
        report.facts.append(f"{what}: {module} installed")


def check_backends(params: Any, launcher: dict[str, Any], report: DryRun) -> None:
    """Which packages, servers and devices the configured backends need."""
    sampler, evaluate = params.collect.sampler, params.evaluate
    for what, backend, section in (("collect.sampler.backend", sampler.backend, sampler),
                                   ("evaluate.backend", evaluate.backend, evaluate)):
        if backend in BACKEND_MODULES:
            module, how = BACKEND_MODULES[backend]
            _needs_module(module, f"{what} {backend}", how, report)
        elif backend == "openai":
            base_url, model_name = getattr(section, "base_url", None), getattr(section, "model_name", None)
            prefix = what.rsplit(".", 1)[0]
            if hasattr(section, "base_url") and not (base_url and model_name):
                report.errors.append(f"{what} openai needs {prefix}.base_url and {prefix}.model_name")
            elif base_url:
                report.needs.append(f"{what} openai: an OpenAI-compatible server at {base_url} serving {model_name}"
                                    f" (key, if any, in ${getattr(section, 'api_key_env', 'its api_key_env')})")
    if launcher.get("distributed_type") == "DEEPSPEED":
        _needs_module("deepspeed", f"study.train_launcher ({launcher.get('config')})", GPU_LOCK, report)
    gpu_backends = [w for w, b in (("collect.sampler.backend", sampler.backend), ("evaluate.backend", evaluate.backend))
                    if b == "vllm"]
    if launcher.get("distributed_type") in ("DEEPSPEED", "FSDP", "MULTI_GPU") or gpu_backends:
        gpus = launcher.get("processes", 1) if launcher.get("distributed_type") not in (None, "NO") else 1
        report.needs.append(f"{gpus} CUDA GPU(s) (num_processes of the train launcher; vLLM uses one), an NVIDIA "
                            "driver for CUDA 13.0 (>= 580): torch 2.13.0 of requirements-gpu.lock brings the rest")
    if params.model.source == "hf":
        path = Path(params.model.hf_path or "")
        if path.is_dir():
            report.facts.append(f"model.hf_path {path}: present here")
        else:
            report.needs.append(f"model.hf_path {params.model.hf_path}: the weights (safetensors) in a local folder "
                                "(reverso runs offline: download once, then -S model.hf_path=/models/...)")


def dry_run(workspace: Path, recipe: Path | None, sets: list[str]) -> DryRun:
    """Resolve the recipe as ``reverso study`` would run it; nothing is run or written."""
    report = DryRun(source=f"{recipe} over {workspace / 'params.yaml'}" if recipe else str(workspace / "params.yaml"))
    params = resolve_params(workspace, recipe, sets, report)
    if params is None:
        return report
    c = params.collect
    report.facts.append(
        f"collect: {c.sessions} sessions x {c.turns} turns x {c.samples_per_turn} samples = "
        f"{c.sessions * c.turns * c.samples_per_turn:,} responses of at most {c.sampler.max_new_tokens} tokens "
        f"({c.sampler.backend}; T {c.sampler.temperature}, presence/frequency penalty "
        f"{c.sampler.presence_penalty}/{c.sampler.frequency_penalty})")
    p = params.pairs
    report.facts.append(f"pairs: g_min {p.g_min}, cap per turn {p.max_pairs_per_turn or 'none'}, per session "
                        f"{p.max_pairs_per_session or 'none'}, max_length {p.max_length}")
    t = params.train
    report.facts.append(f"study: {len(params.study.arms)} arms ({', '.join(params.study.arms)}) x "
                        f"{len(params.study.seeds)} seeds; {t.epochs:g} epochs, {t.lr_scheduler_type} after "
                        f"{t.warmup_ratio:.0%} warm-up, lr {t.learning_rate:g}")
    e = params.evaluate
    report.facts.append(f"evaluate: {e.backend}, suites {e.suites.model_dump()}, max_new_tokens {e.max_new_tokens}")
    launcher = check_launcher(params, workspace, report)
    check_backends(params, launcher, report)
    report.cuda = _cuda()
    if report.cuda and any("not installed here" in n for n in report.needs):
        report.errors += [f"this machine has CUDA but: {n}" for n in report.needs if "not installed here" in n]
    return report


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())
