"""The Great Expectations gate on pair sets (GX 1.x, suite defined in code, ephemeral context).

Pairs are flattened into a table with re-verified columns (the engine re-checks chosen and
rejected against the pair's own constraints), then validated. A failing suite raises
``ValidationFailed`` whose message names the rows and the constraints at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.contracts import Example, Pair
from reverso.errors import ReversoError

# Builders whose prompt is the chosen reply's reversed instruction: the chosen passes every rule.
REVERSED_BUILDERS = ("rpo", "rpo_one_way", "rpo_finish")
# Builders of SFT examples: the one reply passes every rule of its prompt.
EXAMPLE_BUILDERS = ("hindsight_sft", "verified_sft")


class ValidationFailed(ReversoError, RuntimeError):
    """The pair set broke at least one expectation."""


@dataclass(frozen=True)
class GateSettings:
    g_min: int
    max_tokens: int | None = None
    dpo_paper_gap: int = 3


def _fails(row: Pair | Example, text: str, finished: bool) -> list[str]:
    specs = [engine.parse(s.model_dump()) for s in row.constraints]
    verifiable = [c for c in specs if engine.is_verifiable(c)]
    user = next((m.content for m in reversed(row.prompt) if m.role == "user"), "")
    verdicts = engine.check_all(verifiable, text, engine.CheckContext(prompt=user, finished=finished))
    return [c.id for c, v in zip(verifiable, verdicts, strict=True) if not v.passed]


def reverify(pair: Pair) -> tuple[list[str], list[str]]:
    """(constraint ids the chosen fails, ids the rejected fails) under the pair's own prompt."""
    return _fails(pair, pair.chosen[0].content, True), _fails(pair, pair.rejected[0].content, not pair.rejected_cut)


def reverify_example(example: Example) -> list[str]:
    """Constraint ids an SFT example's reply fails under its own prompt (none, for a clean example)."""
    return _fails(example, example.completion[0].content, True)


def pair_table(pairs: list[Pair] | list[Example], splits: list[str], tokens: list[int] | None = None) -> Any:
    """One row per pair (or SFT example: its reply in the chosen columns, no rejected side)."""
    import pandas as pd

    rows = []
    for index, (pair, split) in enumerate(zip(pairs, splits, strict=True)):
        if isinstance(pair, Example):
            rows.append(_example_row(index, pair, split, tokens))
            continue
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


def _example_row(index: int, example: Example, split: str, tokens: list[int] | None) -> dict[str, Any]:
    fails = reverify_example(example)
    prompt_key = json.dumps([m.model_dump() for m in example.prompt], sort_keys=True)
    return {"row": index, "session_id": example.session_id, "turn": example.turn, "split": split,
            "builder": example.builder, "chosen_text": example.completion[0].content,
            "chosen_fails": len(fails), "chosen_failed_ids": ",".join(fails),
            "pair_key": json.dumps([prompt_key, example.completion[0].content]),
            "tokens": tokens[index] if tokens else 0}


def _suite(builder: str, settings: GateSettings) -> list[Any]:
    import great_expectations as gx

    e = gx.expectations
    if builder in EXAMPLE_BUILDERS:
        suite = [e.ExpectColumnValuesToNotBeNull(column="chosen_text"),
                 e.ExpectColumnValueLengthsToBeBetween(column="chosen_text", min_value=1),
                 e.ExpectColumnValuesToBeUnique(column="pair_key"),
                 e.ExpectColumnValuesToBeInSet(column="session_in_both_splits", value_set=[False]),
                 e.ExpectColumnValuesToBeInSet(column="chosen_fails", value_set=[0])]
        if settings.max_tokens:
            suite.append(e.ExpectColumnValuesToBeBetween(column="tokens", max_value=settings.max_tokens))
        return suite
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
    if builder in REVERSED_BUILDERS:
        suite += [
            e.ExpectColumnValuesToBeBetween(column="margin", min_value=settings.g_min),
            e.ExpectColumnValuesToBeInSet(column="chosen_fails", value_set=[0]),
            e.ExpectColumnPairValuesToBeEqual(column_A="rejected_fails", column_B="margin"),
        ]
    else:
        gap = settings.dpo_paper_gap if builder == "dpo_paper" else 1
        suite.append(e.ExpectColumnValuesToBeBetween(column="margin", min_value=gap))
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


def _docs_site(context: Any, docs_dir: Path) -> None:
    context.add_data_docs_site(site_name="reverso", site_config={
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())}})


def validate_pair_sets(
    sets: dict[str, tuple[list[Pair], list[str], list[int] | None]], settings: GateSettings,
    reports_dir: str | Path,
) -> dict[str, dict[str, Any]]:
    """Gate every pair set in one GX context: JSON summaries + data docs HTML under ``reports_dir``.

    ``sets`` maps a builder name to (pairs, split of each pair, token length of each pair or None).
    Raises ValidationFailed naming rows and constraints when any expectation fails.
    """
    import great_expectations as gx

    reports_dir = Path(reports_dir)
    context = gx.get_context(mode="ephemeral")
    _docs_site(context, reports_dir / "data_docs")
    tables, definitions, summaries = {}, [], {}
    for builder, (pairs, splits, tokens) in sets.items():
        table = pair_table(pairs, splits, tokens)
        summaries[builder] = {"builder": builder, "rows": len(table), "success": True, "failures": []}
        if table.empty:
            continue
        tables[builder] = table
        batch = (context.data_sources.add_pandas(f"pairs_{builder}")
                 .add_dataframe_asset(builder).add_batch_definition_whole_dataframe("all"))
        suite = context.suites.add(gx.ExpectationSuite(name=f"pairs_{builder}"))
        for expectation in _suite(builder, settings):
            suite.add_expectation(expectation)
        definitions.append((builder, context.validation_definitions.add(
            gx.ValidationDefinition(name=f"pairs_{builder}_gate", data=batch, suite=suite))))
    for builder, definition in definitions:
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=f"pairs_{builder}_checkpoint", validation_definitions=[definition],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["reverso"])],
            result_format={"result_format": "COMPLETE"}))
        result = checkpoint.run(batch_parameters={"dataframe": tables[builder]})
        outcome = next(iter(result.run_results.values())).to_json_dict()
        summary = summaries[builder]
        summary["success"] = bool(outcome["success"])
        summary["statistics"] = outcome.get("statistics", {})
        for item in outcome["results"]:
            if not item["success"]:
                summary["failures"].append(_explain(tables[builder], item["expectation_config"], item["result"]))
    reports_dir.mkdir(parents=True, exist_ok=True)
    for builder, summary in summaries.items():
        (reports_dir / f"{builder}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    failed = [f"{b} pairs: {f}" for b, summary in summaries.items() for f in summary["failures"]]
    if failed:
        raise ValidationFailed("pairs failed the validation gate (data docs: "
                               f"{reports_dir / 'data_docs' / 'index.html'}):\n  " + "\n  ".join(failed))
    return summaries

