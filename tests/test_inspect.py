"""The inspector's data (pairs joined to verdicts, won/lost ranking), headline metrics and site files.

The browser behaviour (filters, diff highlighting, ordering, charts) is tested in
test_inspect_browser.py; these tests need no browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reverso.config import InspectParams
from reverso.inspect import inspect
from reverso.inspect.eval_view import build_eval_view, ranked, unit_record
from reverso.inspect.pairs_view import build_pairs_view

RUN = Path(__file__).parent / "fixtures" / "inspect" / "run"


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    shutil.copytree(RUN, tmp_path / "ws")
    return tmp_path / "ws"


def pairs_view(root: Path) -> dict:
    return build_pairs_view(root, root / "data/pairs", root / "data/responses.jsonl", root / "data/verdicts.jsonl",
                            root / "metrics/pairs.json")


def test_every_rpo_pair_reverses_exactly_the_rules_its_chosen_response_failed() -> None:
    view = pairs_view(RUN)
    rpo = [p for p in view["pairs"] if p["builder"] == "rpo"]
    assert len(rpo) == 60 and all(p["rules"] for p in rpo)
    for pair in rpo:
        assert [r["changed"] for r in pair["rules"]] == [r["c"] is False for r in pair["rules"]]
        assert all(r["c_under"] for r in pair["rules"]), "chosen satisfies every rule of its prompt"
        assert sum(r["r_under"] is False for r in pair["rules"]) == pair["g"] == pair["margin"]
        assert pair["warnings"] == []
    strings = view["strings"]
    reversed_rule = next(r for p in rpo for r in p["rules"] if r["changed"])
    assert strings[reversed_rule["rule"]].startswith("not:") or strings[reversed_rule["rule"]] != strings[reversed_rule["orig"]]


def test_dpo_pairs_keep_the_original_rules_and_counts_match_metrics() -> None:
    view = pairs_view(RUN)
    dpo = [p for p in view["pairs"] if p["builder"] == "dpo"]
    assert len(dpo) == 8 and not any(r["changed"] for p in dpo for r in p["rules"])
    assert view["checks"] and all(c["ok"] for c in view["checks"])
    assert {q["file"] for q in view["quarantine"]} == {"data/sessions.quarantine.jsonl", "data/verdicts.quarantine.jsonl"}


def test_a_pair_file_that_disagrees_with_metrics_is_flagged(workspace: Path) -> None:
    train = workspace / "data/pairs/dpo/train.jsonl"
    lines = train.read_text().splitlines(keepends=True)
    train.write_text("".join(lines[1:]) + "not json\n")
    view = pairs_view(workspace)
    bad = {(c["builder"], c["what"]) for c in view["checks"] if not c["ok"]}
    assert ("dpo", "pairs") in bad and ("dpo", "train") in bad
    assert view["unreadable"] == ["data/pairs/dpo/train.jsonl:6"]


def unit(session: str, base: list[list[bool]], policy: list[list[bool]]) -> dict:
    def verdicts(passes: list[list[bool]]) -> list[dict]:
        return [{"constraint_ids": [f"c{i}" for i in range(len(p))], "strict": p} for p in passes]
    return unit_record({"suite": "s", "session_id": session, "turns": ["q"] * len(base),
                        "base": ["b"] * len(base), "policy": ["p"] * len(base),
                        "verdicts": {"base": verdicts(base), "policy": verdicts(policy)}})


def test_won_units_come_first_by_gain_then_lost_by_loss_then_ties() -> None:
    units = [unit("tie", [[True]], [[True]]), unit("lost-small", [[True, True]], [[True, False]]),
             unit("won-small", [[True, False]], [[True, True]]),
             unit("won-turn", [[False, False], [True, True]], [[True, True], [True, True]]),
             unit("lost-turn", [[True, True]], [[False, False]]),
             unit_record({"suite": "s", "session_id": "unscored", "turns": ["q"], "base": ["b"], "policy": ["p"]})]
    order = [(u["session"], u["outcome"]) for u in ranked(units)]
    assert order == [("won-turn", "won"), ("won-small", "won"), ("lost-turn", "lost"), ("lost-small", "lost"),
                     ("tie", "tie"), ("unscored", "unscored")]


def test_eval_view_reads_evaluates_intervals_and_per_turn_dicts(tmp_path: Path) -> None:
    view = build_eval_view(RUN / "reports/eval_outputs.jsonl", RUN / "metrics/eval.json")
    multi_if = next(s for s in view["summary"] if s["suite"] == "multi_if")
    assert multi_if["base"] == pytest.approx(0.6667) and multi_if["policy_ci"] == (0.3, 0.7)
    assert multi_if["diff"] == pytest.approx(-0.1667) and multi_if["diff_ci"] == (-0.4167, 0.0833)
    assert {s["name"]: s["counts"]["won"] for s in view["suites"]} == {"ifeval": 2, "multi_if": 1}
    # An evaluation that puts text and verdicts together per turn, and intervals inline.
    outputs = tmp_path / "outputs.jsonl"
    outputs.write_text(json.dumps({"suite": "ifeval", "session_id": "x", "turns": ["q"],
                                   "base": [{"text": "b", "constraints": [{"id": "a"}], "passed": [False]}],
                                   "policy": [{"text": "p", "constraints": [{"id": "a"}], "passed": [True]}]}) + "\n")
    metrics = tmp_path / "eval.json"
    metrics.write_text(json.dumps({"base": {"ifeval": {"prompt_strict": {"mean": 0.1, "ci_low": 0.0, "ci_high": 0.2}}},
                                   "policy": {"ifeval": {"prompt_strict": 0.3}}}))
    view = build_eval_view(outputs, metrics)
    assert view["suites"][0]["units"][0]["outcome"] == "won"
    assert view["summary"][0]["base_ci"] == (0.0, 0.2) and view["summary"][0]["diff"] == pytest.approx(0.2)


def test_inspect_writes_an_offline_site_headline_and_plot_files(workspace: Path) -> None:
    result = inspect(InspectParams(log_to_mlflow=False), workspace)
    pages = {name: (workspace / "reports" / name).read_text() for name in ("index.html", "pairs.html", "evaluation.html")}
    for name, html in pages.items():
        assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", html), f"{name} loads a remote asset"
    assert "window.vegaEmbed" in pages["evaluation.html"]  # the Vega bundle is inlined
    assert sum(result["page_bytes"].values()) < 3_000_000
    headline = json.loads((workspace / "metrics/headline.json").read_text())
    assert len(headline) <= 15 and all(not isinstance(v, (dict, list)) for v in headline.values())
    assert headline["pairs"] == 60 and headline["promoted"] is False and headline["multi_if"] == 0.5
    assert headline["truncated"] == pytest.approx(0.031)
    suites = json.loads((workspace / "plots/eval_suites.json").read_text())["suites"]
    assert {s["suite"]: s["diff_ci_low"] for s in suites} == {"ifeval": -0.05, "multi_if": -0.4167}
    per_constraint = json.loads((workspace / "plots/eval_per_constraint.json").read_text())["per_constraint"]
    assert {r["constraint"]: r["change"] for r in per_constraint} == {"punctuation:no_comma": 0.1, "reverso:no_digits": 0.1}


def test_inspect_on_an_empty_workspace_still_writes_the_site(tmp_path: Path) -> None:
    result = inspect(InspectParams(log_to_mlflow=False), tmp_path)
    assert result["pairs"] == 0 and (tmp_path / "reports/pairs.html").exists()
    assert json.loads((tmp_path / "metrics/headline.json").read_text()) == {}


def test_site_is_logged_to_the_training_run(workspace: Path, isolated_mlflow: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(isolated_mlflow)
    with mlflow.start_run() as run:
        pass
    train = json.loads((workspace / "metrics/train.json").read_text())
    (workspace / "metrics/train.json").write_text(json.dumps({**train, "run_id": run.info.run_id}))
    result = inspect(InspectParams(), workspace)
    assert result["mlflow"].startswith("logged to MLflow run")
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "inspector")}
    assert logged == {"inspector/index.html", "inspector/pairs.html", "inspector/evaluation.html"}


def test_dvc_metrics_show_fits_120_columns(workspace: Path) -> None:
    inspect(InspectParams(log_to_mlflow=False), workspace)
    repo = workspace.parent / "repo"
    (repo / "metrics").mkdir(parents=True)
    headline = json.loads((workspace / "metrics/headline.json").read_text())
    # the widest row a default run gives: all three generated suites, a 5-digit pair count, negative margin
    headline.update(pairs=12345, margin=-0.138, sysbench=0.333, quarantine=0.049)
    (repo / "metrics/headline.json").write_text(json.dumps(headline))
    (repo / "dvc.yaml").write_text("stages:\n  inspect:\n    cmd: 'true'\n    metrics:\n"
                                   "      - metrics/headline.json:\n          cache: false\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    dvc = str(Path(sys.executable).parent / "dvc")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=repo, check=True, env=env)
    shown = subprocess.run([dvc, "metrics", "show"], cwd=repo, check=True, env=env, capture_output=True, text=True)
    lines = shown.stdout.splitlines()
    assert len(lines) == 2 and "multi_if" in lines[0] and "sysbench" in lines[0]
    assert max(len(line) for line in lines) <= 120, shown.stdout


def test_the_cli_verb_builds_the_site_and_says_where(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from reverso.cli import app

    (workspace / "params.yaml").write_text("inspect:\n  log_to_mlflow: false\n")
    monkeypatch.chdir(workspace)
    result = CliRunner().invoke(app, ["inspect"])
    assert result.exit_code == 0, result.output
    assert "inspect: reports/index.html (3 pages" in result.output and "68 pairs, 2 quarantined rows" in result.output
    assert (workspace / "reports/evaluation.html").exists() and (workspace / "metrics/headline.json").exists()


def test_evaluation_page_shows_the_rule_reading_diagnostic(workspace: Path) -> None:
    train = json.loads((workspace / "metrics/train.json").read_text()) if (workspace / "metrics/train.json").exists() else {}
    reading = {"before": {"couples": 4, "couple_margin_sum": 0.0, "couples_reading": 0.0},
               "after": {"couples": 4, "couple_margin_sum": 0.0123, "couples_reading": 0.75,
                         "type_accuracy": {"punctuation:no_comma": {"accuracy": 0.5, "pairs": 2}}}}
    train.update(arm="rpo_sft", loss="sigmoid+0.2*sft", rule_reading=reading,
                 regime={"builder": "rpo", "epochs": 3, "pairs_per_step": 16, "optimizer_steps": 6,
                         "lr_scheduler": "cosine", "warmup_ratio": 0.1, "bf16": True})
    (workspace / "metrics/train.json").write_text(json.dumps(train))
    (workspace / "plots").mkdir(exist_ok=True)
    (workspace / "plots/train_curves.json").write_text(json.dumps({"curves": [
        {"step": 0, "eval_rule_reading_couple_margin_sum": 0.0}, {"step": 1, "loss": 0.69},
        {"step": 2, "eval_rule_reading_couple_margin_sum": 0.0123}]}))
    inspect(InspectParams(log_to_mlflow=False), workspace)
    html = (workspace / "reports/evaluation.html").read_text()
    table = html[html.index('id="rule-reading"'):html.index("</table>", html.index('id="rule-reading"'))]
    assert "0.0123" in table and "0.75" in table and "before training (4)" in table
    assert "punctuation:no_comma" in html[html.index('id="type-accuracy"'):] and "sigmoid+0.2*sft" in html
    assert "rule_reading_couple_margin_sum" in html and "held-out pairs" in html  # the curve's chart spec
