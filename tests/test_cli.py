import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from reverso.cli import app

runner = CliRunner()


def test_help_lists_every_stage() -> None:
    # Speed is the next test's job (no heavy import); the measured time is in docs/results.md.
    out = subprocess.run([sys.executable, "-m", "reverso.cli", "--help"], capture_output=True, text=True, check=True)
    for verb in ("prepare-model", "collect", "reverse", "pairs", "train", "evaluate", "promote", "inspect", "pipeline"):
        assert verb in out.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = "import sys; import reverso.cli; print(sorted(m for m in ('torch','trl','mlflow','prefect','great_expectations') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "reverso" in result.stdout


def test_bad_params_give_one_clear_line(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("collect:\n  samples_per_turn: one\n")
    result = runner.invoke(app, ["collect", "--params", str(params)])
    assert result.exit_code == 1
    assert "collect.samples_per_turn" in result.output and "Traceback" not in result.output


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["reverse", "--sessions", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_constraints_list() -> None:
    result = runner.invoke(app, ["constraints", "list"])
    assert result.exit_code == 0 and "punctuation:no_comma" in result.output and "not:punctuation:no_comma" in result.output
