"""The pipeline's stage verbs: prepare-model, collect, reverse, pairs, train, evaluate, promote, inspect.

Each is one DVC stage of dvc.yaml and calls the stage's plain function; heavy libraries are imported
inside the commands, so ``reverso --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reverso.cli.common import (
    BASE, PAIRS, POLICY, RESPONSES, SEED, SESSIONS, VERDICTS, ParamsOpt, SetOpt, friendly, read_params, stage_locked,
    tracking_reachable,
)

app = typer.Typer()  # no name: main.py adds these commands to the top level


@app.command("prepare-model")
@friendly
@stage_locked
def prepare_model_cmd(params: ParamsOpt = Path("params.yaml"), out: Path = BASE, set_: SetOpt = None) -> None:
    """Convert the configured base model into a plain safetensors folder (offline)."""
    from reverso.prepare_model import prepare_model

    summary = prepare_model(read_params(params, set_).model, out)
    typer.echo(f"prepared {summary['model_type']} ({summary['parameters']:,} parameters) -> {out}")


@app.command()
@friendly
@stage_locked
def collect(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
            sessions: Path = SESSIONS, responses: Path = RESPONSES, metrics: Path = Path("metrics/collect.json"),
            set_: SetOpt = None) -> None:
    """Build multi-constraint sessions and sample n responses per turn."""
    from reverso.collect import collect as run

    from reverso.collect import PROGRESS_DIR

    result = run(read_params(params, set_).collect, model, seed_dir, sessions, responses, metrics,
                 progress_dir=PROGRESS_DIR)
    typer.echo(f"collect: {result['sessions']} sessions, {result['responses']} responses "
               f"({result['tokens_per_second']} tokens/s)")


@app.command()
@friendly
@stage_locked
def reverse(params: ParamsOpt = Path("params.yaml"), sessions: Path = SESSIONS, responses: Path = RESPONSES,
            verdicts: Path = VERDICTS, metrics: Path = Path("metrics/reverse.json"), set_: SetOpt = None) -> None:
    """Judge every response against every active constraint; write reversed instructions."""
    from reverso.reverse import reverse as run

    result = run(read_params(params, set_).reverse, sessions, responses, verdicts, metrics)
    typer.echo(f"reverse: {result['verdicts_out']} verdicts, {result['quarantined']} quarantined")


@app.command()
@friendly
@stage_locked
def pairs(params: ParamsOpt = Path("params.yaml"), sessions: Path = SESSIONS, responses: Path = RESPONSES,
          verdicts: Path = VERDICTS, out: Path = PAIRS, model: Path = BASE,
          metrics: Path = Path("metrics/pairs.json"), reports: Path = Path("reports/validation"),
          set_: SetOpt = None) -> None:
    """Build RPO and DPO-baseline pairs and run the Great Expectations gate."""
    from reverso.pairs import pairs as run

    loaded = read_params(params, set_)
    result = run(loaded.pairs, sessions, responses, verdicts, out, metrics, reports, model,
                 max_tokens=loaded.pairs.max_length)
    typer.echo(f"pairs: {result['rpo']['pairs']} RPO pairs, {result['dpo']['pairs']} DPO pairs (gate passed)")


@app.command()
@friendly
@stage_locked
def train(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, pairs_dir: Path = PAIRS,
          out: Path = POLICY, metrics: Path = Path("metrics/train.json"), plots: Path = Path("plots"),
          set_: SetOpt = None) -> None:
    """Train the policy with the RPO objective (LoRA) and register it as @challenger."""
    from reverso.train import train as run

    loaded = read_params(params, set_)
    tracking_reachable()
    result = run(loaded.train, loaded.registry, model, pairs_dir, out, metrics, plots)
    if result:  # empty on non-zero ranks under accelerate launch
        typer.echo(f"train: {result['steps']} steps, loss {result['train_loss']:.4f}, "
                   f"registered version {result['version']} as @challenger")


@app.command()
@friendly
@stage_locked
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

    loaded = read_params(params, set_)
    tracking_reachable()
    if compare:
        compare_versions(loaded.evaluate, loaded.registry, model, compare, seed_dir, compare_out)
        typer.echo(f"comparison written to {compare_out}/compare.md")
        return
    result = run(loaded.evaluate, loaded.registry, model, policy, seed_dir, metrics, plots, outputs)
    base, pol = flatten(result["base"]), flatten(result["policy"])
    paired = result.get("paired", {}).get("policy-base", {})
    for metric in HEADLINE.values():
        if metric in base and metric in pol:
            diff = paired.get(metric) or {}
            ci = f"  diff {diff['mean']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]" if diff.get("ci_low") is not None else ""
            typer.echo(f"{metric:>24}: base {base[metric]:.3f}  policy {pol[metric]:.3f}{ci}")
    for suite, reason in result.get("not_scored", {}).items():
        typer.echo(f"{suite:>24}: not scored: {reason}")


@app.command()
@friendly
@stage_locked
def promote(params: ParamsOpt = Path("params.yaml"), out: Path = Path("metrics/promotion.json"),
            dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and print; change nothing.")] = False,
            set_: SetOpt = None) -> None:
    """Move @champion to the challenger only if it wins."""
    from reverso.promote import promote as run

    loaded = read_params(params, set_)
    tracking_reachable()
    decision = run(loaded.promote, loaded.registry, out, dry_run=dry_run)
    verb = "would promote" if dry_run and decision.promote else ("promoted" if decision.promote else "kept champion")
    typer.echo(f"promote: {verb}: {decision.reason}")


@app.command()
@friendly
@stage_locked
def inspect(params: ParamsOpt = Path("params.yaml"), out: Path = Path("reports"),
            headline: Path = Path("metrics/headline.json"), plots: Path = Path("plots"),
            set_: SetOpt = None) -> None:
    """Write the offline inspector site (reports/index.html) and metrics/headline.json."""
    from reverso.inspect import inspect as run

    result = run(read_params(params, set_).inspect, Path("."), out, headline, plots)
    size = sum(result["page_bytes"].values())
    typer.echo(f"inspect: {result['site']} ({len(result['page_bytes'])} pages, {size / 1e6:.2f} MB), "
               f"{result['pairs']} pairs, {result['quarantined_rows']} quarantined rows; {result['mlflow']}")
    if result["count_mismatches"]:
        typer.secho(f"inspect: {result['count_mismatches']} count(s) in the pair files differ from metrics/pairs.json "
                    "(see the pairs page)", fg=typer.colors.YELLOW, err=True)
