"""``reverso improve``: the self-improving loop as a Prefect flow, and the round stages improve/dvc.yaml runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reverso.cli_common import (
    ParamsOpt, RecipeOpt, SetOpt, _friendly, _params, _stage, _tracking_reachable, add_progress_commands,
)

improve_app = typer.Typer(help="The self-improving loop: sample with @champion, train a challenger, promote on evidence.",
                          invoke_without_command=True)
RoundOpt = Annotated[int, typer.Option("--round", min=1, help="the round (improve/round-<k>/)")]
HERE = Path(".")
add_progress_commands(improve_app, "improve", lambda params: "campaign")


@improve_app.callback()
@_friendly
def improve(ctx: typer.Context, set_: SetOpt = None, workspace: Path = HERE, recipe: RecipeOpt = None,
            rounds: Annotated[int | None, typer.Option("--rounds", min=1, help="rounds to run (default improve.rounds)")] = None,
            next_round: Annotated[bool, typer.Option("--next", help="one more round than have finished")] = False,
            final: Annotated[bool | None, typer.Option("--final/--no-final",
                                                       help="last champion vs base on the test draw")] = None,
            restart: Annotated[bool, typer.Option("--restart", help="a new campaign from the current @champion")] = False,
            on_busy: Annotated[str, typer.Option("--on-busy", help="wait | fail when another run holds the workspace")] = "wait",
            ) -> None:
    """Run the loop as a Prefect flow over improve/dvc.yaml (finished items are skipped: a killed run resumes)."""
    if ctx.invoked_subcommand is not None:
        return
    from reverso.config import recipe_overrides
    from reverso.orchestration import run_improve_flow

    if on_busy not in ("wait", "fail"):
        raise typer.BadParameter("wait or fail", param_hint="--on-busy")
    overrides = [*(recipe_overrides(recipe) if recipe else []), *(set_ or [])]
    status = run_improve_flow(workspace, overrides, rounds=rounds, next_round=next_round, final_test=final,
                              restart=restart, on_busy=on_busy)
    report = json.loads((workspace / "metrics/improve.json").read_text(encoding="utf-8"))
    for row in report["rounds"]:
        vs = row["validation"].get("vs_champion") or row["validation"].get("vs_base") or {}
        diff = f"{vs['mean']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}]" if vs.get("ci_low") is not None else "n/a"
        typer.echo(f"round {row['round']}: v{row['challenger_version']} {row['decision']} ({report['metric']} "
                   f"vs {'champion' if row['validation'].get('vs_champion') else 'base'} {diff}); "
                   f"{row['pairs']['train']} training pairs")
    ran = sum(s == "ran" for s in status.values())
    typer.echo(f"improve: champion {report['champion'] or 'base'}; {ran} stage items ran, "
               f"{len(status) - ran} skipped; metrics/improve.json · plots/improve_curve.png")


@improve_app.command("champion")
@_friendly
@_stage
def champion(round_: RoundOpt, params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Round k's starting champion (the previous round's decision) and its adapter."""
    from reverso.improve import resolve_champion

    _tracking_reachable()
    record = resolve_champion(_params(params, set_), round_, HERE)
    typer.echo(f"improve round {round_}: champion {record['version'] or 'base model'}")


@improve_app.command("collect")
@_friendly
@_stage
def collect(round_: RoundOpt, params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Fresh training sessions sampled with the round's champion."""
    from reverso.improve import collect_round

    result = collect_round(_params(params, set_), round_, HERE)
    typer.echo(f"improve round {round_}: {result['sessions']} sessions, {result['responses']} responses")


@improve_app.command("train")
@_friendly
@_stage
def train(round_: RoundOpt, params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Train the challenger from the champion's adapter on the round's pairs; register it with lineage."""
    from reverso.improve import train_round

    _tracking_reachable()
    result = train_round(_params(params, set_), round_, HERE)
    typer.echo(f"improve round {round_}: {result['steps']} steps, registered v{result['version']} as @challenger")


@improve_app.command("evaluate")
@_friendly
@_stage
def evaluate(round_: RoundOpt, params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Challenger vs base and vs champion on the validation draw, paired CIs."""
    from reverso.improve import evaluate_round

    _tracking_reachable()
    evaluate_round(_params(params, set_), round_, HERE)
    typer.echo(f"improve round {round_}: evaluated (improve/round-{round_}/eval/metrics.json)")


@improve_app.command("promote")
@_friendly
@_stage
def promote(round_: RoundOpt,
            min_delta: Annotated[float | None, typer.Option("--min-delta", min=0.0,
                                                            help="this round's promote.min_delta")] = None,
            params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """The promotion gate for the round's challenger (compare-and-set on @champion)."""
    from reverso.improve import promote_round

    _tracking_reachable()
    loaded = _params(params, set_)
    delta = min_delta if min_delta is not None else loaded.improve.min_delta.get(round_, loaded.promote.min_delta)
    result = promote_round(loaded, round_, delta, HERE)
    typer.echo(f"improve round {round_}: v{result.challenger_version} {result.decision}: {result.reason}")


@improve_app.command("final")
@_friendly
@_stage
def final(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """The last champion vs base on the test draw, once."""
    from reverso.improve import final_test

    _tracking_reachable()
    record = final_test(_params(params, set_), HERE)
    typer.echo(f"improve final: {record.get('skipped') or 'champion v' + str(record['champion_version']) + ' vs base'}")


@improve_app.command("report")
@_friendly
@_stage
def report(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """metrics/improve.json and plots/improve_curve.png; logged to the campaign's MLflow parent run."""
    from reverso.improve.report import write_report

    _tracking_reachable()
    result = write_report(_params(params, set_), HERE)
    typer.echo(f"improve report: {len(result['rounds'])} rounds, champion {result['champion'] or 'base'}")
