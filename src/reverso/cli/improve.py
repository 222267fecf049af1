"""``reverso improve``: the self-improving loop as a Prefect flow, and the round stages improve/dvc.yaml runs.

Every round stage but ``promote`` is the same command (params in, one call, one line out), so each is
one ``RoundStage`` row registered by ``_register``; ``promote`` has its own ``--min-delta``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from reverso.cli.common import (
    ParamsOpt, RecipeOpt, SetOpt, add_progress_commands, friendly, read_params, stage_locked, tracking_reachable,
)

app = typer.Typer(help="The self-improving loop: sample with @champion, train a challenger, promote on evidence.",
                  invoke_without_command=True)
RoundOpt = Annotated[int, typer.Option("--round", min=1, help="the round (improve/round-<k>/)")]
HERE = Path(".")
add_progress_commands(app, "improve", lambda params: "campaign")


@app.callback()
@friendly
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


@dataclass(frozen=True)
class RoundStage:
    """One improve/dvc.yaml stage: ``call(params, [round,] workspace)`` and the line it prints when done."""

    name: str
    help: str
    call: str  # "module:function", imported when the command runs
    says: Callable[[int | None, Any], str]  # (round, what call returned) -> the line to print
    per_round: bool = True  # takes --round
    tracking: bool = True  # needs MLflow: check the server before the work


ROUND_STAGES = (
    RoundStage("champion", "Round k's starting champion (the previous round's decision) and its adapter.",
               "reverso.improve:resolve_champion",
               lambda k, record: f"improve round {k}: champion {record['version'] or 'base model'}"),
    RoundStage("collect", "Fresh training sessions sampled with the round's champion.", "reverso.improve:collect_round",
               lambda k, result: f"improve round {k}: {result['sessions']} sessions, {result['responses']} responses",
               tracking=False),
    RoundStage("train",
               "Train the challenger from the champion's adapter on the round's pairs; register it with lineage.",
               "reverso.improve:train_round",
               lambda k, result: f"improve round {k}: {result['steps']} steps, registered v{result['version']} as "
                                 "@challenger"),
    RoundStage("evaluate", "Challenger vs base and vs champion on the validation draw, paired CIs.",
               "reverso.improve:evaluate_round",
               lambda k, _: f"improve round {k}: evaluated (improve/round-{k}/eval/metrics.json)"),
)
CAMPAIGN_STAGES = (
    RoundStage("final", "The last champion vs base on the test draw, once.", "reverso.improve:final_test",
               lambda _, record: "improve final: " + (record.get("skipped") or
                                                      f"champion v{record['champion_version']} vs base"),
               per_round=False),
    RoundStage("report",
               "metrics/improve.json and plots/improve_curve.png; logged to the campaign's MLflow parent run.",
               "reverso.improve.report:write_report",
               lambda _, result: f"improve report: {len(result['rounds'])} rounds, "
                                 f"champion {result['champion'] or 'base'}",
               per_round=False),
)


def _register(stage: RoundStage) -> None:
    """Add ``stage`` to ``reverso improve`` as a command with --round (when per round), --params and -S."""

    def run(round_: int | None, params: Path, set_: list[str] | None) -> None:
        module, name = stage.call.split(":")
        call = getattr(importlib.import_module(module), name)
        if stage.tracking:
            tracking_reachable()
        result = call(read_params(params, set_), *([] if round_ is None else [round_]), HERE)
        typer.echo(stage.says(round_, result))

    if stage.per_round:
        @app.command(stage.name, help=stage.help)
        @friendly
        @stage_locked
        def round_command(round_: RoundOpt, params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
            run(round_, params, set_)
    else:
        @app.command(stage.name, help=stage.help)
        @friendly
        @stage_locked
        def campaign_command(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
            run(None, params, set_)


for stage in ROUND_STAGES:
    _register(stage)


@app.command("promote")
@friendly
@stage_locked
def promote(round_: RoundOpt,
            min_delta: Annotated[float | None, typer.Option("--min-delta", min=0.0,
                                                            help="this round's promote.min_delta")] = None,
            params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """The promotion gate for the round's challenger (compare-and-set on @champion)."""
    from reverso.improve import promote_round

    tracking_reachable()
    loaded = read_params(params, set_)
    delta = min_delta if min_delta is not None else loaded.improve.min_delta.get(round_, loaded.promote.min_delta)
    result = promote_round(loaded, round_, delta, HERE)
    typer.echo(f"improve round {round_}: v{result.challenger_version} {result.decision}: {result.reason}")


for stage in CAMPAIGN_STAGES:
    _register(stage)
