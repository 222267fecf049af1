"""The ``reverso`` command line: one subcommand per pipeline stage, plus pipeline/constraints/promote.

Heavy libraries are imported inside the commands so ``reverso --help`` stays instant. Known
failures (bad params, bad data, failed gate, unreachable registry) print one clear message and
exit non-zero instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reverso import __version__
from reverso.telemetry import disable_telemetry

disable_telemetry()
from reverso.cli_common import (  # noqa: E402 - after telemetry is off
    BASE, PAIRS, POLICY, RESPONSES, SEED, SESSIONS, VERDICTS, ParamsOpt, RecipeOpt, SetOpt, _friendly, _params, _stage,
    _tracking_reachable, add_progress_commands,
)
from reverso.cli_improve import improve_app  # noqa: E402

app = typer.Typer(help="Reverse Preference Optimization pipeline for multi-constraint instruction following.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
constraints_app = typer.Typer(help="Inspect the constraint engine.", no_args_is_help=True)
app.add_typer(constraints_app, name="constraints")
app.add_typer(improve_app, name="improve")


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
@_stage
def prepare_model_cmd(params: ParamsOpt = Path("params.yaml"), out: Path = BASE, set_: SetOpt = None) -> None:
    """Convert the configured base model into a plain safetensors folder (offline)."""
    from reverso.prepare_model import prepare_model

    summary = prepare_model(_params(params, set_).model, out)
    typer.echo(f"prepared {summary['model_type']} ({summary['parameters']:,} parameters) -> {out}")


@app.command()
@_friendly
@_stage
def collect(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
            sessions: Path = SESSIONS, responses: Path = RESPONSES, metrics: Path = Path("metrics/collect.json"),
            set_: SetOpt = None) -> None:
    """Build multi-constraint sessions and sample n responses per turn."""
    from reverso.collect import collect as run

    from reverso.collect import PROGRESS_DIR

    result = run(_params(params, set_).collect, model, seed_dir, sessions, responses, metrics,
                 progress_dir=PROGRESS_DIR)
    typer.echo(f"collect: {result['sessions']} sessions, {result['responses']} responses "
               f"({result['tokens_per_second']} tokens/s)")


@app.command()
@_friendly
@_stage
def reverse(params: ParamsOpt = Path("params.yaml"), sessions: Path = SESSIONS, responses: Path = RESPONSES,
            verdicts: Path = VERDICTS, metrics: Path = Path("metrics/reverse.json"), set_: SetOpt = None) -> None:
    """Judge every response against every active constraint; write reversed instructions."""
    from reverso.reverse import reverse as run

    result = run(_params(params, set_).reverse, sessions, responses, verdicts, metrics)
    typer.echo(f"reverse: {result['verdicts_out']} verdicts, {result['quarantined']} quarantined")


@app.command()
@_friendly
@_stage
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
@_stage
def train(params: ParamsOpt = Path("params.yaml"), model: Path = BASE, pairs_dir: Path = PAIRS,
          out: Path = POLICY, metrics: Path = Path("metrics/train.json"), plots: Path = Path("plots"),
          set_: SetOpt = None) -> None:
    """Train the policy with the RPO objective (LoRA) and register it as @challenger."""
    from reverso.train import train as run

    loaded = _params(params, set_)
    _tracking_reachable()
    result = run(loaded.train, loaded.registry, model, pairs_dir, out, metrics, plots)
    if result:  # empty on non-zero ranks under accelerate launch
        typer.echo(f"train: {result['steps']} steps, loss {result['train_loss']:.4f}, "
                   f"registered version {result['version']} as @challenger")


@app.command()
@_friendly
@_stage
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
    _tracking_reachable()
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
@_friendly
@_stage
def promote(params: ParamsOpt = Path("params.yaml"), out: Path = Path("metrics/promotion.json"),
            dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and print; change nothing.")] = False,
            set_: SetOpt = None) -> None:
    """Move @champion to the challenger only if it wins."""
    from reverso.promote import promote as run

    loaded = _params(params, set_)
    _tracking_reachable()
    decision = run(loaded.promote, loaded.registry, out, dry_run=dry_run)
    verb = "would promote" if dry_run and decision.promote else ("promoted" if decision.promote else "kept champion")
    typer.echo(f"promote: {verb}: {decision.reason}")


@app.command()
@_friendly
@_stage
def inspect(params: ParamsOpt = Path("params.yaml"), out: Path = Path("reports"),
            headline: Path = Path("metrics/headline.json"), plots: Path = Path("plots"),
            set_: SetOpt = None) -> None:
    """Write the offline inspector site (reports/index.html) and metrics/headline.json."""
    from reverso.inspect import inspect as run

    result = run(_params(params, set_).inspect, Path("."), out, headline, plots)
    size = sum(result["page_bytes"].values())
    typer.echo(f"inspect: {result['site']} ({len(result['page_bytes'])} pages, {size / 1e6:.2f} MB), "
               f"{result['pairs']} pairs, {result['quarantined_rows']} quarantined rows; {result['mlflow']}")
    if result["count_mismatches"]:
        typer.secho(f"inspect: {result['count_mismatches']} count(s) in the pair files differ from metrics/pairs.json "
                    "(see the pairs page)", fg=typer.colors.YELLOW, err=True)


@app.command()
@_friendly
def validate(
    kind: Annotated[str, typer.Argument(help="sessions | pairs | ifeval | multi-if | ifbench | sysbench | params")],
    file: Annotated[Path | None, typer.Argument(help="the file to check (params: default params.yaml)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False,
    model: Annotated[Path | None, typer.Option(help="sessions: check prompt lengths against this model's "
                                               "context (tokenizer only; default models/base when present)")] = None,
    set_: SetOpt = None,
) -> None:
    """Check a file you would hand the pipeline with the stages' own loaders; no model is loaded.

    Exit 0 when every row is valid, 1 when rows were quarantined, 2 when the file is unusable.
    """
    from reverso.config import ConfigError
    from reverso.validate import KINDS
    from reverso.validate import validate as run

    if kind not in KINDS:
        raise typer.BadParameter(f"{kind!r}; kinds are {', '.join(KINDS)}", param_hint="KIND")
    if file is None and kind != "params":
        raise typer.BadParameter(f"validate {kind} needs a FILE", param_hint="FILE")
    max_new_tokens, model_dir = 96, model
    if kind == "sessions":
        model_dir = model or (BASE if (BASE / "config.json").exists() else None)
        try:
            max_new_tokens = _params(Path("params.yaml"), None).collect.sampler.max_new_tokens
        except ConfigError:
            pass
    report = run(kind, file or Path("params.yaml"), set_, model_dir, max_new_tokens)
    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else report.render())
    raise typer.Exit(report.exit_code)


@app.command()
@_friendly
def pipeline(stages: Annotated[list[str] | None, typer.Option("--stage", help="run only these stages")] = None,
             force: Annotated[bool, typer.Option("--force", help="rerun even if up to date")] = False,
             set_: SetOpt = None, workspace: Path = Path("."), recipe: RecipeOpt = None) -> None:
    """Run the whole pipeline as a Prefect flow over the DVC stages, then print a summary."""
    from reverso.config import recipe_overrides
    from reverso.orchestration import run_pipeline_flow
    from reverso.summary import render_summary

    overrides = [*(recipe_overrides(recipe) if recipe else []), *(set_ or [])]
    run_pipeline_flow(workspace=workspace, stages=stages, force=force, overrides=overrides)
    typer.echo(render_summary(workspace))


study_app = typer.Typer(help="The replication study: base vs DPO vs RPO vs RPO without margin, x seeds.",
                        invoke_without_command=True)
app.add_typer(study_app, name="study")
add_progress_commands(study_app, "study", lambda params: params.study.name)


@study_app.callback()
@_friendly
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


@study_app.command("train-arm")
@_friendly
@_stage
def study_train_arm(arm: Annotated[str, typer.Option(help="a study.arms name (e.g. dpo, rpo, rpo_no_margin)")],
                    seed: Annotated[int, typer.Option(help="train.seed of this replicate")],
                    params: ParamsOpt = Path("params.yaml"), model: Path = BASE,
                    pairs_dir: Annotated[Path | None, typer.Option(
                        help="default: the replicate's own pairs, data/study/data-SEED/pairs")] = None,
                    set_: SetOpt = None) -> None:
    """Train one arm x seed of the study (a DVC stage item: study-train@ARM-SEED)."""
    from reverso.study import train_arm

    _tracking_reachable()
    result = train_arm(_params(params, set_), arm, seed, model, pairs_dir)
    if result:  # empty on non-zero ranks under a multi-process train_launcher
        typer.echo(f"study {arm}-{seed}: {result['steps']} steps, loss {result['train_loss']:.4f}")


@study_app.command("collect")
@_friendly
@_stage
def study_collect(seed: Annotated[int, typer.Option(help="the replicate's seed (its data draw: collect.seed + seed)")],
                  params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
                  set_: SetOpt = None) -> None:
    """collect -> reverse for one replicate (a DVC stage item: study-collect@SEED)."""
    from reverso.study.replicate import collect_replicate

    summary = collect_replicate(_params(params, set_), seed, model, seed_dir)
    typer.echo(f"study collect {seed}: collect seed {summary['collect_seed']}, {summary['sessions']} sessions, "
               f"{summary['responses']} responses")


@study_app.command("pairs")
@_friendly
@_stage
def study_pairs(seed: Annotated[int, typer.Option(help="the replicate's seed")],
                params: ParamsOpt = Path("params.yaml"), model: Path = BASE, set_: SetOpt = None) -> None:
    """Every builder's pairs from one replicate's samples (a DVC stage item: study-pairs@SEED)."""
    from reverso.study.replicate import pair_replicate

    summary = pair_replicate(_params(params, set_), seed, model)
    typer.echo(f"study pairs {seed}: {summary['pairs']}")


@study_app.command("evaluate")
@_friendly
@_stage
def study_evaluate(arm: Annotated[str | None, typer.Option(help="a study.arms name (e.g. dpo, rpo, rpo_no_margin)")] = None,
                   seed: Annotated[int | None, typer.Option(help="the replicate's seed")] = None,
                   base: Annotated[bool, typer.Option("--base", help="evaluate the base model")] = False,
                   aa: Annotated[bool, typer.Option("--aa", help="evaluate the A/A model (perturbed base)")] = False,
                   params: ParamsOpt = Path("params.yaml"), model: Path = BASE, seed_dir: Path = SEED,
                   set_: SetOpt = None) -> None:
    """Answer the study suites with one model and store per-session scores."""
    from reverso.study import STUDY_EVAL, STUDY_MODELS, evaluate_aa, evaluate_model, item_name, trained_model

    if aa:
        record = evaluate_aa(_params(params, set_), model, seed_dir)
        typer.echo(f"study evaluate aa: {record['perturbation']['weights_changed']:,} of "
                   f"{record['perturbation']['weights']:,} weights moved; {record['suite_sizes']}")
        return
    if base == (arm is not None or seed is not None) or (not base and (arm is None or seed is None)):
        raise typer.BadParameter("give either --base or both --arm and --seed")
    name = "base" if base else item_name(str(arm), int(seed))  # type: ignore[arg-type]
    weights, adapter = (model, None) if base else trained_model(model, STUDY_MODELS / name)
    record = evaluate_model(_params(params, set_), name, weights, adapter, seed_dir, STUDY_EVAL / f"{name}.json")
    typer.echo(f"study evaluate {name}: {record['suite_sizes']} in {record['wall_s']} s")


@study_app.command("report")
@_friendly
@_stage
def study_report(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Table of mean +- CI per arm, paired differences, per-constraint plot; the study's promotion."""
    from reverso.study import report_study

    _tracking_reachable()
    report = report_study(_params(params, set_))
    typer.echo(f"study report: metrics/study.json; promotion: {report['promotion'].get('decision')}")


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


@constraints_app.command("audit")
@_friendly
def constraints_audit(
    sets: Annotated[int, typer.Option("--sets", min=1, help="sessions to sample, as collect does")] = 1000,
    reversals: Annotated[int, typer.Option("--reversals", min=0, help="random reversal mixes per set")] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    params: ParamsOpt = Path("params.yaml"), seed_dir: Path = SEED, set_: SetOpt = None,
) -> None:
    """Sample constraint sets as collect does; count contradictory ones and ones without a witness."""
    from reverso.constraints.audit import audit

    report = audit(_params(params, set_).collect, seed_dir, sets, reversals)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"{report['sets']} sets ({report['forms_checked']} original/reversed forms): "
                   f"{report['contradictory']} contradictory, {report['witness_failures']} without a witness")
    if report["contradictory"] or report["witness_failures"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
