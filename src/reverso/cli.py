"""The ``reverso`` command line: one subcommand per pipeline stage, plus pipeline/constraints/promote.

Heavy libraries are imported inside the commands so ``reverso --help`` stays instant. Known
failures (bad params, bad data, failed gate, unreachable registry) print one clear message and
exit non-zero instead of a traceback.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from reverso import __version__
from reverso.telemetry import disable_telemetry

disable_telemetry()
F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(help="Reverse Preference Optimization pipeline for multi-constraint instruction following.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
constraints_app = typer.Typer(help="Inspect the constraint engine.", no_args_is_help=True)
app.add_typer(constraints_app, name="constraints")

ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-S", help="override, e.g. -S train.beta=0.2")]
BASE, POLICY, SEED = Path("models/base"), Path("models/policy"), Path("data/seed")
SESSIONS, RESPONSES, VERDICTS = Path("data/sessions.jsonl"), Path("data/responses.jsonl"), Path("data/verdicts.jsonl")
PAIRS = Path("data/pairs")


def _friendly(func: F) -> F:
    """Turn the project's own error types into one readable line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reverso.errors import KNOWN_ERRORS

        try:
            return func(*args, **kwargs)
        except KNOWN_ERRORS() as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _params(path: Path, overrides: list[str] | None) -> Any:
    from reverso.config import load_params

    return load_params(path, overrides)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reverso {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")] = False,
) -> None:
    """reverso: collect -> reverse -> pairs -> train -> evaluate -> promote."""


@app.command("prepare-model")
@_friendly
def prepare_model_cmd(params: ParamsOpt = Path("params.yaml"), out: Path = BASE, set_: SetOpt = None) -> None:
    """Convert the configured base model into a plain safetensors folder (offline)."""
    from reverso.prepare_model import prepare_model

    summary = prepare_model(_params(params, set_).model, out)
    typer.echo(f"prepared {summary['model_type']} ({summary['parameters']:,} parameters) -> {out}")


@app.command()
@_friendly
def collect(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
            sessions: Path = SESSIONS, responses: Path = RESPONSES, metrics: Path = Path("metrics/collect.json"),
            set_: SetOpt = None) -> None:
    """Build multi-constraint sessions and sample n responses per turn."""
    from reverso.collect import collect as run

    result = run(_params(params, set_).collect, model, seed_dir, sessions, responses, metrics)
    typer.echo(f"collect: {result['sessions']} sessions, {result['responses']} responses "
               f"({result['tokens_per_second']} tokens/s)")


@app.command()
@_friendly
def reverse(params: ParamsOpt = Path("params.yaml"), sessions: Path = SESSIONS, responses: Path = RESPONSES,
            verdicts: Path = VERDICTS, metrics: Path = Path("metrics/reverse.json"), set_: SetOpt = None) -> None:
    """Judge every response against every active constraint; write reversed instructions."""
    from reverso.reverse import reverse as run

    result = run(_params(params, set_).reverse, sessions, responses, verdicts, metrics)
    typer.echo(f"reverse: {result['verdicts_out']} verdicts, {result['quarantined']} quarantined")


@app.command()
@_friendly
def pairs(params: ParamsOpt = Path("params.yaml"), sessions: Path = SESSIONS, responses: Path = RESPONSES,
          verdicts: Path = VERDICTS, out: Path = PAIRS, model: Path = BASE,
          metrics: Path = Path("metrics/pairs.json"), reports: Path = Path("reports/validation"),
          set_: SetOpt = None) -> None:
    """Build RPO and DPO-baseline pairs and run the Great Expectations gate."""
    from reverso.pairs import pairs as run

    loaded = _params(params, set_)
    result = run(loaded.pairs, sessions, responses, verdicts, out, metrics, reports, model,
                 max_tokens=loaded.pairs.max_length)
    typer.echo(f"pairs: {result['rpo']['pairs']} RPO pairs, {result['dpo']['pairs']} DPO pairs (gate passed)")


@app.command()
@_friendly
def train(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, pairs_dir: Path = PAIRS,
          out: Path = POLICY, metrics: Path = Path("metrics/train.json"), plots: Path = Path("plots"),
          set_: SetOpt = None) -> None:
    """Train the policy with the RPO objective (LoRA) and register it as @challenger."""
    from reverso.train import train as run

    loaded = _params(params, set_)
    result = run(loaded.train, loaded.registry, model, pairs_dir, out, metrics, plots)
    if result:  # empty on non-zero ranks under accelerate launch
        typer.echo(f"train: {result['steps']} steps, loss {result['train_loss']:.4f}, "
                   f"registered version {result['version']} as @challenger")


@app.command()
@_friendly
def evaluate(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, policy: Path = POLICY,
             seed_dir: Path = SEED, metrics: Path = Path("metrics/eval.json"), plots: Path = Path("plots"),
             outputs: Path = Path("reports/eval_outputs.jsonl"),
             compare: Annotated[list[str] | None, typer.Option(
                 "--compare", help="registered versions to compare in one table (e.g. --compare 1 --compare 2)")] = None,
             compare_out: Path = Path("reports/compare"), set_: SetOpt = None) -> None:
    """Score base and policy on the held-out suites (or compare registered versions)."""
    from reverso.evaluate import compare_versions
    from reverso.evaluate import evaluate as run
    from reverso.evaluate.metrics import HEADLINE, flatten

    loaded = _params(params, set_)
    if compare:
        compare_versions(loaded.evaluate, loaded.registry, model, compare, seed_dir, compare_out)
        typer.echo(f"comparison written to {compare_out}/compare.md")
        return
    result = run(loaded.evaluate, loaded.registry, model, policy, seed_dir, metrics, plots, outputs)
    base, pol = flatten(result["base"]), flatten(result["policy"])
    for metric in HEADLINE.values():
        if metric in base:
            typer.echo(f"{metric:>24}: base {base[metric]:.3f}  policy {pol[metric]:.3f}")


@app.command()
@_friendly
def promote(params: ParamsOpt = Path("params.yaml"), out: Path = Path("metrics/promotion.json"),
            dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and print; change nothing.")] = False,
            set_: SetOpt = None) -> None:
    """Move @champion to the challenger only if it wins."""
    from reverso.promote import promote as run

    loaded = _params(params, set_)
    decision = run(loaded.promote, loaded.registry, out, dry_run=dry_run)
    verb = "would promote" if dry_run and decision.promote else ("promoted" if decision.promote else "kept champion")
    typer.echo(f"promote: {verb}: {decision.reason}")


@app.command()
@_friendly
def pipeline(stages: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages")] = None,
             force: Annotated[bool, typer.Option("--force", help="rerun even if up to date")] = False,
             set_: SetOpt = None, workspace: Path = Path(".")) -> None:
    """Run the whole pipeline as a Prefect flow over the DVC stages, then print a summary."""
    from reverso.orchestration import run_pipeline_flow
    from reverso.summary import render_summary

    run_pipeline_flow(workspace=workspace, stages=stages, force=force, overrides=set_ or [])
    typer.echo(render_summary(workspace))


@constraints_app.command("list")
@_friendly
def constraints_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every registered constraint type with an example description and its reverse id."""
    from reverso.constraints import list_types

    rows = list_types()
    if as_json:
        typer.echo(json.dumps([{"id": i, "description": d, "reverse": r} for i, d, r in rows], indent=2))
        return
    width = max(len(r[0]) for r in rows)
    typer.echo(f"{'id':<{width}}  {'reverse id':<{width + 4}}  example")
    for cid, description, reverse_id in rows:
        typer.echo(f"{cid:<{width}}  {reverse_id:<{width + 4}}  {description}")
    typer.echo(f"\n{len(rows)} constraint types")


if __name__ == "__main__":
    app()
