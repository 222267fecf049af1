"""``reverso study``: the replication study as a Prefect flow, and the stage items study/dvc.yaml runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reverso.cli.common import (
    BASE, SEED, ParamsOpt, RecipeOpt, SetOpt, add_progress_commands, friendly, read_params, stage_locked,
    tracking_reachable,
)

app = typer.Typer(help="The replication study: base vs DPO vs RPO vs RPO without margin, x seeds.",
                  invoke_without_command=True)
add_progress_commands(app, "study", lambda params: params.study.name)


@app.callback()
@friendly
def study(ctx: typer.Context, set_: SetOpt = None, workspace: Path = Path("."),
          recipe: RecipeOpt = None,
          force: Annotated[bool, typer.Option("--force", help="rerun every item even if up to date")] = False,
          dry_run: Annotated[bool, typer.Option(
              "--dry-run", help="resolve the recipe (params, launcher command, accelerate/DeepSpeed config, backends) "
                                "and say what the target machine needs; run and write nothing")] = False) -> None:
    """Run the whole study as a Prefect flow over the DVC stages (skips items that already finished)."""
    if ctx.invoked_subcommand is not None:
        return
    if dry_run:
        from reverso.study.dry_run import dry_run as resolve

        report = resolve(workspace, recipe, set_ or [])
        typer.echo(report.render())
        raise typer.Exit(report.exit_code)
    from reverso.config import recipe_overrides
    from reverso.orchestration import run_study_flow

    overrides = [*(recipe_overrides(recipe) if recipe else []), *(set_ or [])]
    run_study_flow(workspace=workspace, overrides=overrides, force=force)
    study_json = workspace / "metrics/study.json"
    typer.echo((workspace / "reports/study/study.md").read_text(encoding="utf-8"))
    typer.echo(f"study: {study_json} · reports/study/study.md · reports/study/study_per_constraint.png")


@app.command("train-arm")
@friendly
@stage_locked
def study_train_arm(arm: Annotated[str, typer.Option(help="a study.arms name (e.g. dpo, rpo, rpo_no_margin)")],
                    seed: Annotated[int, typer.Option(help="train.seed of this replicate")],
                    params: ParamsOpt = Path("params.yaml"), model: Path = BASE,
                    pairs_dir: Annotated[Path | None, typer.Option(
                        help="default: the replicate's own pairs, data/study/data-SEED/pairs")] = None,
                    set_: SetOpt = None) -> None:
    """Train one arm x seed of the study (a DVC stage item: study-train@ARM-SEED)."""
    from reverso.study import train_arm

    tracking_reachable()
    result = train_arm(read_params(params, set_), arm, seed, model, pairs_dir)
    if result:  # empty on non-zero ranks under a multi-process train_launcher
        typer.echo(f"study {arm}-{seed}: {result['steps']} steps, loss {result['train_loss']:.4f}")


@app.command("collect")
@friendly
@stage_locked
def study_collect(seed: Annotated[int, typer.Option(help="the replicate's seed (its data draw: collect.seed + seed)")],
                  params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
                  set_: SetOpt = None) -> None:
    """collect -> reverse for one replicate (a DVC stage item: study-collect@SEED)."""
    from reverso.study.replicate import collect_replicate

    summary = collect_replicate(read_params(params, set_), seed, model, seed_dir)
    typer.echo(f"study collect {seed}: collect seed {summary['collect_seed']}, {summary['sessions']} sessions, "
               f"{summary['responses']} responses")


@app.command("pairs")
@friendly
@stage_locked
def study_pairs(seed: Annotated[int, typer.Option(help="the replicate's seed")],
                params: ParamsOpt = Path("params.yaml"), model: Path = BASE, set_: SetOpt = None) -> None:
    """Every builder's pairs from one replicate's samples (a DVC stage item: study-pairs@SEED)."""
    from reverso.study.replicate import pair_replicate

    summary = pair_replicate(read_params(params, set_), seed, model)
    typer.echo(f"study pairs {seed}: {summary['pairs']}")


@app.command("evaluate")
@friendly
@stage_locked
def study_evaluate(arm: Annotated[str | None, typer.Option(help="a study.arms name (e.g. dpo, rpo, rpo_no_margin)")] = None,
                   seed: Annotated[int | None, typer.Option(help="the replicate's seed")] = None,
                   base: Annotated[bool, typer.Option("--base", help="evaluate the base model")] = False,
                   aa: Annotated[bool, typer.Option("--aa", help="evaluate the A/A model (perturbed base)")] = False,
                   params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
                   set_: SetOpt = None) -> None:
    """Answer the study suites with one model and store per-session scores."""
    from reverso.study import STUDY_EVAL, STUDY_MODELS, evaluate_aa, evaluate_model, item_name, trained_model

    if aa:
        record = evaluate_aa(read_params(params, set_), model, seed_dir)
        typer.echo(f"study evaluate aa: {record['perturbation']['weights_changed']:,} of "
                   f"{record['perturbation']['weights']:,} weights moved; {record['suite_sizes']}")
        return
    if base == (arm is not None or seed is not None) or (not base and (arm is None or seed is None)):
        raise typer.BadParameter("give either --base or both --arm and --seed")
    name = "base" if base else item_name(str(arm), int(seed))  # type: ignore[arg-type]
    weights, adapter = (model, None) if base else trained_model(model, STUDY_MODELS / name)
    record = evaluate_model(read_params(params, set_), name, weights, adapter, seed_dir, STUDY_EVAL / f"{name}.json")
    typer.echo(f"study evaluate {name}: {record['suite_sizes']} in {record['wall_s']} s")


@app.command("report")
@friendly
@stage_locked
def study_report(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Table of mean +- CI per arm, paired differences, per-constraint plot; the study's promotion."""
    from reverso.study import report_study

    tracking_reachable()
    report = report_study(read_params(params, set_))
    typer.echo(f"study report: metrics/study.json; promotion: {report['promotion'].get('decision')}")
