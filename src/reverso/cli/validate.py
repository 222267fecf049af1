"""``reverso validate``: check a file you would hand the pipeline, with the stages' own loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reverso.cli.common import BASE, SetOpt, friendly, read_params

app = typer.Typer()  # no name: main.py adds the command to the top level


@app.command()
@friendly
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
            max_new_tokens = read_params(Path("params.yaml"), None).collect.sampler.max_new_tokens
        except ConfigError:
            pass
    report = run(kind, file or Path("params.yaml"), set_, model_dir, max_new_tokens)
    typer.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False) if as_json else report.render())
    raise typer.Exit(report.exit_code)
