"""The ``reverso`` Typer app: the stage verbs at the top level, then one command group per module.

Heavy libraries are imported inside the commands so ``reverso --help`` stays instant. Known
failures (bad params, bad data, failed gate, unreachable registry) print one clear message and
exit non-zero instead of a traceback (``common.friendly``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from reverso import __version__  # importing reverso turns telemetry off (reverso/__init__.py)
from reverso.cli import constraints, improve, pipeline, stages, study, validate

app = typer.Typer(help="Reverse Preference Optimization pipeline for multi-constraint instruction following.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
for group in (stages, validate, pipeline):  # top-level commands, in this order in --help
    app.add_typer(group.app)
app.add_typer(constraints.app, name="constraints")
app.add_typer(improve.app, name="improve")
app.add_typer(study.app, name="study")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reverso {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show version.")] = False,
) -> None:
    """reverso: collect -> reverse -> pairs -> train -> evaluate -> promote."""
