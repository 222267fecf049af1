"""``reverso validate KIND FILE``: the stages' own loaders and checks, run on a user's file, no model.

Every kind returns a ``Report``: one verdict per row (line, field, reason) and a summary where
``rows == valid + quarantined``. A file unusable as a whole (missing, UTF-16, not a list of items,
bad YAML) is refused with one reason instead. What ``validate`` accepts the stage accepts, because
both call the same functions: ``collect`` -> ``read_user_sessions``, ``train`` -> ``read_pairs``,
``evaluate`` -> ``evaluate.loaders``, every command -> ``load_params``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reverso.contracts import Pair
from reverso.io import DataError, Quarantined, ReadResult, read_rows

KINDS = ("sessions", "pairs", "ifeval", "multi-if", "ifbench", "sysbench", "params")


@dataclass
class RowVerdict:
    line: int
    valid: bool
    reason: str = ""
    field: str = ""
    id: str | None = None


@dataclass
class Report:
    kind: str
    path: str
    verdicts: list[RowVerdict] = field(default_factory=list)
    error: str | None = None  # the file as a whole is unusable

    @property
    def summary(self) -> dict[str, int]:
        valid = sum(v.valid for v in self.verdicts)
        return {"rows": len(self.verdicts), "valid": valid, "quarantined": len(self.verdicts) - valid}

    @property
    def exit_code(self) -> int:
        """0: every row valid · 1: rows quarantined · 2: the file was refused as a whole."""
        if self.error:
            return 2
        return 1 if self.summary["quarantined"] else 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.path, "summary": self.summary, **self.summary,
                "error": self.error, "verdicts": [asdict(v) for v in self.verdicts]}

    def render(self) -> str:
        lines = [f"{self.kind} {self.path}"]
        if self.error:
            lines.append(f"refused: {self.error}")
        for verdict in self.verdicts:
            name = f" ({verdict.id})" if verdict.id else ""
            if verdict.valid:
                lines.append(f"line {verdict.line}{name}: ok")
            else:
                where = f" [{verdict.field}]" if verdict.field else ""
                lines.append(f"line {verdict.line}{name}: quarantined{where}: {verdict.reason}")
        summary = self.summary
        lines.append(f"{summary['rows']} rows: {summary['valid']} valid, {summary['quarantined']} quarantined")
        return "\n".join(lines)


def _field_of(reason: str, given: str) -> str:
    """The field a reason names: ``'turns.0.user: ...'`` or ``'field turns.0.user: ...'``."""
    if given:
        return given
    head = reason.removeprefix("field ").split(":", 1)[0]
    return head if head and " " not in head and len(head) < 80 else ""


def _from_read(kind: str, path: str | Path, result: ReadResult[Any], name: Callable[[Any], str]) -> Report:
    report = Report(kind, str(path))
    items: list[tuple[int, RowVerdict]] = [
        (line, RowVerdict(line, True, id=name(row))) for row, line in zip(result.rows, result.lines, strict=True)]
    items += [(q.line, _quarantined_verdict(q)) for q in result.quarantined]
    report.verdicts = [v for _, v in sorted(items, key=lambda item: item[0])]
    return report


def _quarantined_verdict(item: Quarantined) -> RowVerdict:
    return RowVerdict(item.line, False, item.reason, _field_of(item.reason, item.field))


# --- pairs: the checks train runs on any pair file, hand-made ones included -------------------------

def _pair_checker() -> Callable[[Pair], str | None]:
    from reverso import constraints as engine
    from reverso.limits import pair_problem
    from reverso.pairs.validate import REVERSED_BUILDERS, reverify

    seen: set[str] = set()

    def check(pair: Pair) -> str | None:
        too_big = pair_problem(pair)
        if too_big:
            return too_big
        if pair.chosen[0].content == pair.rejected[0].content:
            return "rejected: identical to chosen (a pair must separate two different responses)"
        key = json.dumps([[m.model_dump() for m in pair.prompt], pair.chosen[0].content, pair.rejected[0].content])
        if key in seen:
            return "duplicate pair: same prompt, chosen and rejected as an earlier row"
        seen.add(key)
        try:
            chosen_fails, _ = reverify(pair)
        except engine.ConstraintError as exc:
            return f"constraints: {str(exc)[:300]}"
        if pair.builder in REVERSED_BUILDERS and chosen_fails:
            return (f"chosen: fails {', '.join(chosen_fails)} (an RPO chosen response must satisfy every rule "
                    "of its prompt)")
        return None

    return check


def read_pairs(path: str | Path) -> ReadResult[Pair]:
    """Pairs with the contract, size limits, and the pair-set properties the pairs gate enforces:
    chosen != rejected, no duplicates, known constraints, and (RPO) chosen satisfies every rule."""
    return read_rows(path, Pair, check=_pair_checker())


def require_clean_pairs(path: str | Path) -> ReadResult[Pair]:
    """``read_pairs`` for train: any bad row stops the stage, naming the lines (first five)."""
    result = read_pairs(path)
    if result.quarantined:
        shown = "; ".join(f"line {q.line}: {q.reason}" for q in result.quarantined[:5])
        more = f" and {len(result.quarantined) - 5} more" if len(result.quarantined) > 5 else ""
        raise DataError(f"{path}: {len(result.quarantined)} bad pairs: {shown}{more} "
                        f"(check with `reverso validate pairs {path}`)")
    return result


# --- each kind ----------------------------------------------------------------------------------------

def validate_sessions(path: str | Path, model_dir: str | Path | None = None, max_new_tokens: int = 96) -> Report:
    from reverso.collect.sessions import fit_context, read_user_sessions

    result = read_user_sessions(path)
    if model_dir is not None:
        kept, too_long = fit_context(result.rows, result.lines, path, model_dir, max_new_tokens)
        keep = {s.session_id for s in kept}
        result.lines = [line for row, line in zip(result.rows, result.lines, strict=True) if row.session_id in keep]
        result.rows = kept
        result.quarantined += too_long
    return _from_read("sessions", path, result, lambda s: s.session_id)


def validate_pairs(path: str | Path) -> Report:
    return _from_read("pairs", path, read_pairs(path), lambda p: f"{p.session_id}/turn {p.turn}")


def validate_official(kind: str, path: str | Path) -> Report:
    from reverso.evaluate.loaders import LOADERS

    loaded = LOADERS[kind.replace("-", "_")](path)
    report = Report(kind, str(path))
    items = [(line, RowVerdict(line, True, id=s.session_id)) for s, line in zip(loaded.sessions, loaded.lines,
                                                                                   strict=True)]
    items += [(int(u["row"]), RowVerdict(int(u["row"]), False, str(u["reason"]), _field_of(str(u["reason"]), "")))
              for u in loaded.unsupported]
    report.verdicts = [v for _, v in sorted(items, key=lambda item: item[0])]
    return report


def validate_params(path: str | Path, overrides: list[str] | None = None) -> Report:
    from reverso.config import ConfigError, load_params

    report = Report("params", str(path))
    if not Path(path).exists() and not overrides:
        report.error = f"{path}: file does not exist"
        return report
    try:
        params = load_params(path, overrides)
    except ConfigError as exc:
        message = str(exc)
        fields = [line.strip().split(":", 1)[0] for line in message.splitlines()[1:] if ":" in line]
        report.verdicts.append(RowVerdict(1, False, message, ", ".join(fields)))
        return report
    except UnicodeDecodeError as exc:
        report.error = f"{path}: not UTF-8 text: {exc}"
        return report
    missing = missing_inputs(params, Path(path).parent)
    if missing:
        report.verdicts.append(RowVerdict(1, False, "; ".join(f"{field}: {where} does not exist" for field, where in missing),
                                          ", ".join(field for field, _ in missing)))
        return report
    report.verdicts.append(RowVerdict(1, True, id="params"))
    return report


def missing_inputs(params: Any, workspace: Path) -> list[tuple[str, str]]:
    """(field, path) for every input file the params name that is not there (relative to the workspace)."""
    named = {"collect.sessions_file": params.collect.sessions_file,
             **{f"evaluate.official.{k}": v for k, v in params.evaluate.official.model_dump().items()}}
    if params.model.source == "hf" and params.model.hf_path and params.model.hf_path.startswith(("/", ".", "~")):
        named["model.hf_path"] = params.model.hf_path  # a hub id is not a path: only local-looking ones are checked
    found = []
    for field, value in named.items():
        if value and not (workspace / Path(value).expanduser()).exists():
            found.append((field, str(value)))
    return found


def validate(kind: str, path: str | Path, overrides: list[str] | None = None,
             model_dir: str | Path | None = None, max_new_tokens: int = 96) -> Report:
    """Run KIND's loader on ``path``; never raises for bad content (a refused file sets ``error``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")
    try:
        if kind == "params":
            return validate_params(path, overrides)
        if Path(path).is_dir():
            raise DataError(f"{path}: is a folder, expected a file")
        if kind == "sessions":
            return validate_sessions(path, model_dir, max_new_tokens)
        if kind == "pairs":
            return validate_pairs(path)
        return validate_official(kind, path)
    except DataError as exc:
        return Report(kind, str(path), error=str(exc))
