"""What every ``reverso`` command group shares: option types, default paths, the error wrapper, the stage lock."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from reverso.errors import ReversoError

F = TypeVar("F", bound=Callable[..., Any])


ParamsOpt = Annotated[Path, typer.Option("--params", help="params.yaml to read")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-S", help="override, e.g. -S train.beta=0.2")]
RecipeOpt = Annotated[Path | None, typer.Option(
    "--recipe", help="a params file of sections applied first (like -S), e.g. configs/study/cpu.yaml")]
BASE, POLICY, SEED = Path("models/base"), Path("models/policy"), Path("data/seed")
SESSIONS, RESPONSES, VERDICTS = Path("data/sessions.jsonl"), Path("data/responses.jsonl"), Path("data/verdicts.jsonl")
PAIRS = Path("data/pairs")


def friendly(func: F) -> F:
    """Turn the project's own error types into one readable line and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ReversoError, FileNotFoundError) as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            typer.secho(f"error: no space left on the device ({exc.filename or exc.strerror}); free space and "
                        "rerun: outputs are written atomically, nothing half-written was kept", fg=typer.colors.RED,
                        err=True)
            raise typer.Exit(1) from None
        except Exception as exc:
            from reverso.tracking import is_tracking_failure

            if not is_tracking_failure(exc):
                raise
            from reverso.registry import tracking_uri

            detail = str(exc).splitlines()[0][:300] if str(exc) else ""
            typer.secho(f"error: MLflow tracking at {tracking_uri()} failed: {type(exc).__name__}: {detail}. "
                        "Local outputs and checkpoints are kept; fix the server (MLFLOW_TRACKING_URI) and rerun "
                        "to complete the logging.",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def stage_locked(func: F) -> F:
    """One stage command at a time per workspace: a second one waits (saying for what) or stops."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from reverso.locks import stage_lock

        with stage_lock(" ".join(["reverso", *sys.argv[1:]])):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def tracking_reachable() -> None:
    """Before any long work: bounded MLflow HTTP retries, and an unreachable server reported in seconds."""
    from reverso.tracking import ensure_reachable

    ensure_reachable()


def read_params(path: Path, overrides: list[str] | None) -> Any:
    """The params file with ``-S`` overrides applied, validated (``reverso.config.load_params``)."""
    from reverso.config import load_params

    return load_params(path, overrides)


def add_progress_commands(app: typer.Typer, pipeline: str, name: Callable[[Any], str]) -> None:
    """``pack`` and ``unpack`` on a long pipeline's command group (reverso.progress): carry what finished
    to a new machine as one archive; ``name(params)`` names the default archive."""

    @app.command("pack")
    @friendly
    def pack_command(out: Annotated[Path | None, typer.Option(
                         help="default: study/progress/<study.name>.tar.gz, improve/progress/campaign.tar.gz")] = None,
                     params: ParamsOpt = Path("params.yaml"), workspace: Path = Path("."),
                     max_output_mb: Annotated[float | None, typer.Option(
                         help="leave out items whose cached outputs exceed this (MB): their reports travel, "
                              "a resume reruns them")] = None,
                     leave_out: Annotated[list[str] | None, typer.Option(
                         "--leave-out", help="a finished item to leave out the same way (repeatable), e.g. "
                                             "study-train@rpo-1")] = None) -> None:
        """Pack the finished items (DVC objects, lock, reports, MLflow store) into one archive to resume elsewhere."""
        from reverso.progress import default_archive, pack

        archive = out or workspace / default_archive(pipeline, name(read_params(workspace / params, None)))
        manifest = pack(workspace, archive, pipeline, max_output_mb, tuple(leave_out or ()))
        for item, size in manifest["left_out"].items():
            typer.echo(f"left out: {item} ({size:.0f} MB of outputs; its reports are packed, a resume reruns it)")
        typer.echo(f"{pipeline} pack: {len(manifest['items'])} finished item(s) at commit "
                   f"{(manifest['commit'] or '?')[:12]} -> {archive} ({archive.stat().st_size / 2**20:.1f} MB)")

    @app.command("unpack")
    @friendly
    def unpack_command(archive: Annotated[Path, typer.Argument(help="an archive written by `pack`")],
                       workspace: Path = Path(".")) -> None:
        """Restore a packed run here; the next run skips every packed item."""
        from reverso.progress import unpack

        manifest, notes = unpack(archive, workspace)
        for note in notes:
            typer.echo(f"note: {note}")
        typer.echo(f"{pipeline} unpack: {len(manifest['items'])} finished item(s) restored into {workspace}")
