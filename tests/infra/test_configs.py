"""Accelerate configs, prefect.yaml and the Kubernetes job template parse and point at real things."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((REPO / "configs/accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_load(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig

    config = ClusterConfig.from_yaml_file(str(path))
    assert config.num_processes >= 1
    if config.distributed_type == "DEEPSPEED":
        assert config.deepspeed_config["zero_stage"] == 3
    if config.distributed_type == "FSDP":
        assert config.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"


def test_accelerate_configs_cover_the_scale_out_paths() -> None:
    kinds = {yaml.safe_load(p.read_text())["distributed_type"] for p in (REPO / "configs/accelerate").glob("*.yaml")}
    assert {"NO", "MULTI_GPU", "DEEPSPEED", "FSDP"} <= kinds


@pytest.mark.parametrize("name", ["prefect.yaml", "infra/k8s/prefect-gpu.yaml"])
def test_prefect_deployments_point_at_existing_flows(name: str) -> None:
    spec = yaml.safe_load((REPO / name).read_text())
    for deployment in spec["deployments"]:
        file, function = deployment["entrypoint"].split(":")
        assert f"def {function}(" in (REPO / file).read_text() or function in (REPO / file).read_text()
        assert deployment["work_pool"]["name"]


def test_gpu_job_template_requests_gpus_and_mounts_the_dvc_cache() -> None:
    template = json.loads((REPO / "infra/k8s/gpu-work-pool-job-template.json").read_text())
    spec = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert "nvidia.com/gpu" in container["resources"]["limits"]
    assert any(m["mountPath"].endswith(".dvc/cache") for m in container["volumeMounts"])
    assert spec["nodeSelector"] and template["variables"]["properties"]["gpus"]["default"] >= 1


def _pins(path: Path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {canonicalize_name(n): v for n, v in (line.split("==", 1) for line in lines if line)}


# Where the GPU lock must differ from requirements.lock for vllm 0.32.0 (its header says why).
GPU_LOCK_DIFFERS = {"transformers", "fastapi", "prefect", "numpy", "packaging", "python-slugify"}


def test_gpu_lock_is_the_cpu_lock_plus_vllm_and_deepspeed() -> None:
    """requirements-gpu.lock keeps every runtime pin of requirements.lock (but the documented few) and adds the
    GPU engines on the same torch, so a package added to one lock and not the other fails here."""
    cpu, gpu = _pins(REPO / "requirements.lock"), _pins(REPO / "requirements-gpu.lock")
    assert gpu["torch"] == cpu["torch"] == "2.13.0"
    assert gpu["vllm"] == "0.32.0" and gpu["deepspeed"] == "0.19.8"
    assert not set(cpu) - set(gpu), "in requirements.lock but not in requirements-gpu.lock"
    differing = {name for name in cpu if gpu[name] != cpu[name]}
    assert differing == GPU_LOCK_DIFFERS, differing
    header = "\n".join(line for line in (REPO / "requirements-gpu.lock").read_text().splitlines() if line.startswith("#"))
    assert all(name in header for name in GPU_LOCK_DIFFERS)


def test_deepspeed_accumulation_comes_from_params() -> None:
    """A fixed accumulation in the DeepSpeed config would contradict train.pairs_per_step (the trainer stops)."""
    config = yaml.safe_load((REPO / "configs/accelerate/deepspeed_zero3.yaml").read_text())
    assert config["deepspeed_config"]["gradient_accumulation_steps"] == "auto"
