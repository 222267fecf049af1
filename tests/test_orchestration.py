from pathlib import Path

import pytest
import yaml

from reverso.orchestration import PipelineError, apply_overrides, stage_env, workspace_lock


def test_second_run_in_same_workspace_fails_fast(tmp_path: Path) -> None:
    with workspace_lock(tmp_path, wait=False):
        with pytest.raises(PipelineError, match="another reverso pipeline is running"):
            with workspace_lock(tmp_path, wait=False):
                pass
    with workspace_lock(tmp_path, wait=False):  # released after the first run ends
        pass


def test_overrides_are_validated_then_written(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  beta: 0.1   # the DPO temperature\n  lora:\n    r: 8\n")
    apply_overrides(tmp_path, ["train.beta=0.3", "pairs.g_min=2", "study.seeds=[1, 2]"])
    tree = yaml.safe_load(params.read_text())
    assert tree["train"]["beta"] == 0.3 and tree["pairs"]["g_min"] == 2 and tree["study"]["seeds"] == [1, 2]
    assert tree["train"]["lora"]["r"] == 8
    assert "# the DPO temperature" in params.read_text()  # a recipe keeps the user's comments
    from reverso.config import ConfigError

    with pytest.raises(ConfigError):
        apply_overrides(tmp_path, ["train.beta=-1"])
    assert yaml.safe_load(params.read_text())["train"]["beta"] == 0.3  # untouched on error


def test_stage_env_turns_telemetry_off() -> None:
    env = stage_env()
    assert env["DVC_NO_ANALYTICS"] == "1" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert env["GX_ANALYTICS_ENABLED"] == "false"
