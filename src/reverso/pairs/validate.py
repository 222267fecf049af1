"""The Great Expectations gate on pair sets (GX 1.x, suite defined in code, ephemeral context).

Pairs are flattened into a table with re-verified columns (the engine re-checks chosen and
rejected against the pair's own constraints), then validated. A failing suite raises
``ValidationFailed`` whose message names the rows and the constraints at fault.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.contracts import Pair

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


class ValidationFailed(RuntimeError):
    """The pair set broke at least one expectation."""


@dataclass(frozen=True)
class GateSettings:
    g_min: int
    max_tokens: int | None = None


def reverify(pair: Pair) -> tuple[list[str], list[str]]:
    """(constraint ids the chosen fails, ids the rejected fails) under the pair's own prompt."""
    specs = [engine.parse(s.model_dump()) for s in pair.constraints]
    verifiable = [c for c in specs if engine.is_verifiable(c)]
    user = next((m.content for m in reversed(pair.prompt) if m.role == "user"), "")
    context = engine.CheckContext(prompt=user)
    chosen = engine.check_all(verifiable, pair.chosen[0].content, context)
    rejected = engine.check_all(verifiable, pair.rejected[0].content, context)
    return ([c.id for c, v in zip(verifiable, chosen, strict=True) if not v.passed],
            [c.id for c, v in zip(verifiable, rejected, strict=True) if not v.passed])


def pair_table(pairs: list[Pair], splits: list[str], tokens: list[int] | None = None) -> Any:
    import pandas as pd

    rows = []
    for index, (pair, split) in enumerate(zip(pairs, splits, strict=True)):
        chosen_fails, rejected_fails = reverify(pair)
        prompt_key = json.dumps([m.model_dump() for m in pair.prompt], sort_keys=True)
        rows.append({
            "row": index, "session_id": pair.session_id, "turn": pair.turn, "split": split,
            "builder": pair.builder, "margin": pair.margin,
            "chosen_text": pair.chosen[0].content, "rejected_text": pair.rejected[0].content,
            "chosen_is_rejected": pair.chosen[0].content == pair.rejected[0].content,
            "chosen_fails": len(chosen_fails), "chosen_failed_ids": ",".join(chosen_fails),
            "rejected_fails": len(rejected_fails),
            "pair_key": json.dumps([prompt_key, pair.chosen[0].content, pair.rejected[0].content]),
            "tokens": tokens[index] if tokens else 0,
        })
    table = pd.DataFrame(rows)
    if not table.empty:
        split_count = table.groupby("session_id")["split"].nunique()
        table["session_in_both_splits"] = table["session_id"].map(split_count) > 1
    return table


def _suite(builder: str, settings: GateSettings) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    suite = [
        e.ExpectColumnValuesToNotBeNull(column="chosen_text"),
        e.ExpectColumnValuesToNotBeNull(column="rejected_text"),
        e.ExpectColumnValueLengthsToBeBetween(column="chosen_text", min_value=1),
        e.ExpectColumnValueLengthsToBeBetween(column="rejected_text", min_value=1),
        e.ExpectColumnValuesToBeInSet(column="chosen_is_rejected", value_set=[False]),
        e.ExpectColumnValuesToBeUnique(column="pair_key"),
        e.ExpectColumnValuesToBeInSet(column="session_in_both_splits", value_set=[False]),
    ]
    if settings.max_tokens:
        suite.append(e.ExpectColumnValuesToBeBetween(column="tokens", max_value=settings.max_tokens))
    if builder == "rpo":
        suite += [
            e.ExpectColumnValuesToBeBetween(column="margin", min_value=settings.g_min),
            e.ExpectColumnValuesToBeInSet(column="chosen_fails", value_set=[0]),
            e.ExpectColumnPairValuesToBeEqual(column_A="rejected_fails", column_B="margin"),
        ]
    else:
        suite.append(e.ExpectColumnValuesToBeBetween(column="margin", min_value=1))
    return suite


def _explain(table: Any, expectation: dict[str, Any], result: dict[str, Any]) -> str:
    kwargs = expectation.get("kwargs", {})
    column = kwargs.get("column") or f"{kwargs.get('column_A')} vs {kwargs.get('column_B')}"
    name = expectation.get("type", "expectation")
    indices = result.get("unexpected_index_list") or []
    details = []
    for index in indices[:5]:
        row = table.iloc[int(index)] if isinstance(index, int) else None
        if row is None:
            continue
        detail = f"row {row['row']} (session {row['session_id']}, turn {row['turn']})"
        if column == "chosen_fails" and row["chosen_failed_ids"]:
            detail += f": chosen fails {row['chosen_failed_ids']}"
        details.append(detail)
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f"{name} on {column}: {result.get('unexpected_count', '?')} bad rows; " + "; ".join(details) + more


def validate_pairs(
    pairs: list[Pair], splits: list[str], builder: str, settings: GateSettings,
    report_path: str | Path, tokens: list[int] | None = None,
) -> dict[str, Any]:
    """Run the suite; writes a JSON report; raises ValidationFailed naming rows and constraints."""
    import great_expectations as gx

    table = pair_table(pairs, splits, tokens)
    summary: dict[str, Any] = {"builder": builder, "rows": len(table), "success": True, "failures": []}
    if not table.empty:
        context = gx.get_context(mode="ephemeral")
        batch = (context.data_sources.add_pandas(f"pairs_{builder}")
                 .add_dataframe_asset(builder).add_batch_definition_whole_dataframe("all"))
        suite = context.suites.add(gx.ExpectationSuite(name=f"pairs_{builder}"))
        for expectation in _suite(builder, settings):
            suite.add_expectation(expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"pairs_{builder}_gate", data=batch, suite=suite))
        outcome = definition.run(batch_parameters={"dataframe": table},
                                 result_format={"result_format": "COMPLETE"}).to_json_dict()
        summary["success"] = bool(outcome["success"])
        summary["statistics"] = outcome.get("statistics", {})
        for item in outcome["results"]:
            if not item["success"]:
                summary["failures"].append(_explain(table, item["expectation_config"], item["result"]))
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    if not summary["success"]:
        raise ValidationFailed(f"{builder} pairs failed the validation gate:\n  " + "\n  ".join(summary["failures"]))
    return summary
