"""``reverso constraints``: inspect the constraint engine (list the types, audit sampled sets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reverso.cli.common import SEED, ParamsOpt, SetOpt, friendly, read_params

app = typer.Typer(help="Inspect the constraint engine.", no_args_is_help=True)


@app.command("list")
@friendly
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


@app.command("audit")
@friendly
def constraints_audit(
    sets: Annotated[int, typer.Option("--sets", min=1, help="sessions to sample, as collect does")] = 1000,
    reversals: Annotated[int, typer.Option("--reversals", min=0, help="random reversal mixes per set")] = 1,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    params: ParamsOpt = Path("params.yaml"), seed_dir: Path = SEED, set_: SetOpt = None,
) -> None:
    """Sample constraint sets as collect does; count contradictory ones and ones without a witness."""
    from reverso.constraints.audit import audit

    report = audit(read_params(params, set_).collect, seed_dir, sets, reversals)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(f"{report['sets']} sets ({report['forms_checked']} original/reversed forms): "
                   f"{report['contradictory']} contradictory, {report['witness_failures']} without a witness")
    if report["contradictory"] or report["witness_failures"]:
        raise typer.Exit(1)
