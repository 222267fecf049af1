"""The whole pipeline through the Prefect flow and DVC, on a tiny random-init Llama, in a copy of the repo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reverso.contracts import Pair, Response, Session, Verdict
from reverso.io import read_rows
from reverso.pairs.validate import reverify

from support.workspace import OVERRIDES, copied_workspace, run


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path: Path) -> None:
    workspace, env, bin_dir = copied_workspace(tmp_path)
    output = run([str(bin_dir / "reverso"), "pipeline", *sum((["-S", o] for o in OVERRIDES), [])], workspace, env)
    assert "reverso pipeline summary" in output and "@challenger" in output

    sessions = read_rows(workspace / "data/sessions.jsonl", Session)
    responses = read_rows(workspace / "data/responses.jsonl", Response)
    verdicts = read_rows(workspace / "data/verdicts.jsonl", Verdict)
    assert len(sessions.rows) == 10 and not sessions.quarantined
    assert len(responses.rows) == 10 * 2 * 4 and not responses.quarantined
    assert not verdicts.quarantined and len(verdicts.rows) > 0

    pairs = []
    for split in ("train", "eval"):
        result = read_rows(workspace / f"data/pairs/rpo/{split}.jsonl", Pair)
        assert not result.quarantined
        pairs += result.rows
    assert pairs, "the tiny run produced no RPO pairs"
    for pair in pairs:
        chosen_fails, rejected_fails = reverify(pair)
        assert chosen_fails == [] and len(rejected_fails) == pair.margin

    from safetensors.torch import load_file

    adapter = load_file(workspace / "models/policy/adapter_model.safetensors")
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)  # LoRA B starts at zero: training moved it
    trained = json.loads((workspace / "metrics/train.json").read_text())
    if trained["eval_pairs"]:  # held-out margins before (policy == reference: exactly 0) and after training
        assert trained["held_out"]["before"]["rewards/margins"] == pytest.approx(0.0, abs=1e-5)
        assert trained["held_out"]["after"]["rewards/margins"] != trained["held_out"]["before"]["rewards/margins"]

    import mlflow
    import mlflow.pyfunc

    mlflow.set_tracking_uri(f"sqlite:///{workspace / 'mlflow.db'}")
    version = mlflow.MlflowClient().get_model_version_by_alias("reverso-policy", "challenger")
    assert version.tags["pairs_md5"] and "eval.policy.multi_if.average" in version.tags
    assert (workspace / "plots/train_curves.png").exists() and (workspace / "plots/eval_per_constraint.png").exists()
    assert (workspace / "reports/validation/data_docs/index.html").exists()

    # The registered model reloads with its base and answers.
    policy = mlflow.pyfunc.load_model("models:/reverso-policy@challenger")
    import pandas as pd

    conversations = pd.DataFrame({"messages": [[{"role": "user", "content": "Say hi."}],
                                               [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"},
                                                {"role": "user", "content": "Count to three."}]]})
    answers = policy.predict(conversations, params={"max_new_tokens": 4})
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)

    from datasets import load_dataset  # TRL-ready: the pair files load with datasets as they are

    loaded = load_dataset("json", data_files=str(workspace / "data/pairs/rpo/train.jsonl"), split="train")
    assert {"prompt", "chosen", "rejected", "margin"} <= set(loaded.column_names)

    status = run([str(bin_dir / "dvc"), "status", "dvc.yaml"], workspace, env)  # the pipeline (study/ is separate)
    assert "up to date" in status, status
    again = run([str(bin_dir / "dvc"), "repro"], workspace, env)
    assert "Running stage" not in again, again

    # Experiments and plots work with our params; only the affected stages rerun.
    run(["git", "add", "-A"], workspace, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "run"], workspace, env)
    experiment = run([str(bin_dir / "dvc"), "exp", "run", "-S", "train.beta=0.2"], workspace, env)
    assert "Running stage 'train'" in experiment and "Running stage 'collect'" not in experiment
    shown = run([str(bin_dir / "dvc"), "exp", "show", "--no-pager", "--csv"], workspace, env)
    assert "train.beta" in shown and "0.2" in shown
    plots = run([str(bin_dir / "dvc"), "plots", "show", "-o", str(tmp_path / "plots")], workspace, env)
    assert (tmp_path / "plots" / "index.html").exists(), plots

    # Comparison mode: registered versions side by side with the base.
    compare_args = ["-S", "evaluate.suites.ifeval=2", "-S", "evaluate.suites.multi_if=1", "-S",
                    "evaluate.suites.sysbench=0", "-S", "evaluate.max_new_tokens=8"]
    run([str(bin_dir / "reverso"), "evaluate", "--compare", "1", "--compare", "2", *compare_args], workspace, env)
    report = (workspace / "reports/compare/compare.md").read_text()
    assert "v1 (rpo)" in report and "v2 (rpo)" in report and "base" in report
