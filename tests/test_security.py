"""Security holds: no remote code, safetensors only, no unpickling or unsafe YAML, secrets stay out of
MLflow and logs, a malformed judge answer is a quarantined verdict, paths in data are never followed."""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reverso.config import ModelParams, ReverseParams
from reverso.contracts import Response, SamplerInfo, Session
from reverso.validate import validate

SRC = Path(__file__).resolve().parents[1] / "src" / "reverso"
BIN = Path(sys.executable).parent


def test_remote_code_is_off_unless_set_and_weights_are_safetensors(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ModelParams().trust_remote_code is False and ReverseParams().judge_trust_remote_code is False
    import transformers

    from reverso.prepare_model import _load_hf

    calls: list[dict] = []

    def record(*args: object, **kwargs: object) -> object:
        calls.append(kwargs)
        return object()

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record)
    _load_hf(ModelParams(source="hf", hf_path="some-org/some-model"))
    assert all(c["trust_remote_code"] is False for c in calls) and calls[1]["use_safetensors"] is True


def _python_sources() -> list[tuple[Path, str]]:
    return [(p, p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))]


def test_no_unpickling_unsafe_yaml_or_eval_in_the_code() -> None:
    banned = re.compile(r"\bimport pickle\b|\bpickle\.load|torch\.load\(|yaml\.load\(|yaml\.unsafe_load|"
                        r"(?<![\w.])eval\(|(?<![\w.])exec\(|trust_remote_code=True|weights_only=False")
    found = [f"{p.relative_to(SRC)}:{n}" for p, text in _python_sources()
             for n, line in enumerate(text.splitlines(), 1) if banned.search(line)]
    assert not found, found


def test_every_model_load_is_safetensors_only() -> None:
    """AutoModel loads pass use_safetensors=True (the GGUF converter is the one exception: it reads GGUF)."""
    for path, text in _python_sources():
        for match in re.finditer(r"AutoModelForCausalLM\.from_pretrained\(", text):
            call = text[match.start(): match.start() + 200]  # the call's first lines hold its keyword arguments
            assert "use_safetensors=True" in call or "gguf_file=" in call, f"{path.name}: {call}"


class GarbageBackend:
    name = "garbage-judge"

    def complete(self, messages: list[dict[str, str]]) -> str:
        return "Sure! As the system says: PASS everything. {not json"


def test_malformed_judge_answer_is_a_quarantined_verdict_not_a_crash() -> None:
    from reverso.constraints.judge import Judge
    from reverso.reverse import judge_response

    session = Session(session_id="s", system="Be nice.", split="train", seed=1,
                      system_constraints=[{"id": "soft:tone", "kwargs": {"text": "Use a formal tone."}}],
                      turns=[{"user": "Hi"}])
    response = Response(session_id="s", turn=0, sample_idx=0, history=[], text="yo", model="m",
                        sampler=SamplerInfo(backend="x", temperature=1.0, seed=1), finish_reason="stop",
                        prompt_tokens=1, completion_tokens=1)
    verdict, reason = judge_response(session, response, ReverseParams(), judge=Judge(GarbageBackend(), retries=1))
    assert verdict is None and reason and "judge error" in reason


def test_paths_inside_data_files_are_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    rows = [{"session_id": "p1", "system": str(secret), "turns": [{"user": f"file://{secret}"}],
             "split": "train", "seed": 1},
            {"session_id": "p2", "system": "../../secret.txt", "turns": [{"user": "@" + str(secret)}],
             "split": "train", "seed": 1}]
    data = tmp_path / "sessions.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    validate("sessions", data)  # warm imports first
    opened: list[str] = []
    real_open, real_io_open = builtins.open, io.open

    def spy(file: object, *args: object, **kwargs: object) -> object:
        opened.append(str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    report = validate("sessions", data)
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(io, "open", real_io_open)
    assert report.summary["valid"] == 2
    assert not [f for f in opened if "secret" in f], opened


@pytest.mark.slow
def test_secrets_from_env_never_reach_mlflow_or_logs(tiny_model_dir: Path, tmp_path: Path) -> None:
    from support.pairs import write_pairs

    secrets = {"REVERSO_JUDGE_API_KEY": "sk-judge-5ecret-0001", "REVERSO_SAMPLER_API_KEY": "sk-sampler-5ecret-0002",
               "AWS_SECRET_ACCESS_KEY": "aws-5ecret-0003", "HF_TOKEN": "hf_5ecret0004"}
    write_pairs(tmp_path)
    env = {**os.environ, **secrets, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    command = [str(BIN / "reverso"), "train", "--model", str(tiny_model_dir), "-S", "train.max_steps=2",
               "-S", "train.batch_size=1", "-S", "train.max_length=64", "-S", "pairs.max_length=64"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    haystacks = [result.stdout.encode(), result.stderr.encode()]
    haystacks += [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]  # mlflow.db, artefacts, outputs
    for value in secrets.values():
        assert not any(value.encode() in h for h in haystacks), f"secret {value[:6]}... leaked"


def test_committed_dvc_and_prefect_config_hold_no_credentials() -> None:
    """S3 keys come from the environment (AWS_*): never from the committed .dvc/config or prefect.yaml."""
    from configobj import ConfigObj

    root = SRC.parents[1]
    config = ConfigObj(str(root / ".dvc/config"))
    credential_keys = {"access_key_id", "secret_access_key", "session_token", "password", "credentialpath",
                       "profile"}
    found = [f"{section}.{key}" for section, values in config.items() if isinstance(values, dict)
             for key in values if key in credential_keys]
    assert not found, f".dvc/config holds credentials: {found}; set AWS_* in the environment instead"
    text = (root / "prefect.yaml").read_text()
    assert not re.search(r"(?i)(secret|password|access_key|api_key)\s*:", text)
