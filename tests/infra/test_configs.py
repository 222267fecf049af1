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
