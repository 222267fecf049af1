from pathlib import Path

import pytest

from reverso.config import ConfigError, Params, load_params

REPO = Path(__file__).resolve().parents[1]


def test_repo_params_load_and_match_defaults_shape() -> None:
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert params.pairs.g_min == 3 and params.train.beta == 0.1 and params.train.gamma == 0.05
    assert params.model.trust_remote_code is False


def test_overrides_apply_and_are_typed(tmp_path: Path) -> None:
    params = load_params(REPO / "params.yaml", ["train.beta=0.2", "collect.sampler.temperature=0.7"])
    assert params.train.beta == 0.2
    assert params.collect.sampler.temperature == 0.7


def test_invalid_value_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  margin_mode: sideways\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and "train.margin_mode" in message and "paper" in message


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("pairs:\n  gmin: 2\n")
    with pytest.raises(ConfigError, match="pairs.gmin"):
        load_params(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  beta: [0.1\n")
    with pytest.raises(ConfigError, match="line"):
        load_params(path)


def test_hf_source_requires_path() -> None:
    with pytest.raises(ConfigError, match="hf_path"):
        load_params(Path("/nonexistent.yaml"), ["model.source=hf"])


@pytest.mark.parametrize(("yaml_text", "names"), [
    ("collect:\n  sampler:\n    repetition_penalty: 1.2\n", ["collect.sampler.repetition_penalty", "not permitted"]),
    ("collect:\n  sampler:\n    backend: engine\n", ["collect.sampler.backend", "'openvino'"]),
    ("evaluate:\n  engine:\n    compute_type: int8\n", ["evaluate.engine", "not permitted"]),
    ("train:\n  pairs: dpo\n", ["train.pairs", "not permitted"]),
])
def test_unknown_or_retired_fields_are_refused_naming_the_field(tmp_path: Path, yaml_text: str,
                                                                     names: list[str]) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert all(name in str(err.value) for name in names)


def test_collect_and_evaluate_default_to_their_own_openvino_precision(tmp_path: Path) -> None:
    """A partial openvino section keeps its stage's defaults: int8 sampling for collect, f32 for evaluate."""
    path = tmp_path / "params.yaml"
    path.write_text("collect:\n  sampler:\n    openvino:\n      threads: 1\nevaluate:\n  openvino:\n      threads: 1\n")
    params = load_params(path)
    assert (params.collect.sampler.openvino.weight_format, params.collect.sampler.openvino.precision) == ("int8", "default")
    assert (params.evaluate.openvino.weight_format, params.evaluate.openvino.precision) == ("fp16", "f32")
    assert params.collect.sampler.backend == params.evaluate.backend == "openvino"
