"""``reverso pipeline``: every stage as a Prefect flow over dvc.yaml, then the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reverso.cli.common import RecipeOpt, SetOpt, friendly

app = typer.Typer()  # no name: main.py adds the command to the top level


@app.command()
@friendly
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
