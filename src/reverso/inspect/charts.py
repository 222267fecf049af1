"""Charts as Vega-Lite specs built with Altair, rendered in the page by the Vega bundle that
vl-convert-python ships (inlined, so the site needs no network). No chart is drawn by hand."""

from __future__ import annotations

import functools
import json
from typing import Any

MODEL_COLORS = {"domain": ["base", "policy"], "range": ["#9aa5b1", "#1f6feb"]}


def _alt() -> Any:
    import altair as alt

    return alt


def per_constraint_chart(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pass rate per constraint type, base vs policy, with the evaluation's CIs as error bars."""
    if not rows:
        return None
    alt = _alt()
    data = alt.Data(values=rows)
    base = alt.Chart(data).encode(
        y=alt.Y("constraint:N", title=None, sort="ascending"), yOffset=alt.YOffset("model:N"))
    bars = base.mark_bar().encode(
        color=alt.Color("model:N", scale=alt.Scale(**MODEL_COLORS), title=None),
        x=alt.X("pass_rate:Q", title="strict pass rate (95% CI where given)", scale=alt.Scale(domain=[0, 1])),
        tooltip=["constraint:N", "model:N", alt.Tooltip("pass_rate:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f")])
    errors = base.mark_rule(color="#1f2328", strokeWidth=2).encode(x="ci_low:Q", x2="ci_high:Q")
    types = len({r["constraint"] for r in rows})
    chart = alt.layer(bars, errors).properties(width=520, height=max(60, 34 * types),
                                               title="Per-constraint-type pass rate")
    return chart.to_dict()


def suites_chart(summary: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each suite's primary metric, base vs policy, with CIs where the evaluation gives them."""
    rows = [{"suite": f"{s['suite']} ({s['metric'].split('.', 1)[1]})", "model": model, "value": s[model],
             "ci_low": s[f"{model}_ci"][0], "ci_high": s[f"{model}_ci"][1]}
            for s in summary for model in ("base", "policy") if s.get(model) is not None]
    if not rows:
        return None
    alt = _alt()
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("suite:N", title=None), yOffset=alt.YOffset("model:N"))
    bars = base.mark_bar().encode(
        color=alt.Color("model:N", scale=alt.Scale(**MODEL_COLORS), title=None),
        x=alt.X("value:Q", title="primary metric (95% CI where given)", scale=alt.Scale(domain=[0, 1])),
        tooltip=["suite:N", "model:N", alt.Tooltip("value:Q", format=".3f"),
                 alt.Tooltip("ci_low:Q", format=".3f"), alt.Tooltip("ci_high:Q", format=".3f")])
    errors = base.mark_rule(color="#1f2328", strokeWidth=2).encode(x="ci_low:Q", x2="ci_high:Q")
    return alt.layer(bars, errors).properties(width=520, height=max(60, 44 * len(summary)),
                                              title="Suites: base vs policy").to_dict()


TRAINING_SERIES = ("loss", "rewards_margins", "rewards_accuracies", "rule_reading_couple_margin_sum")


def training_chart(curves: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Loss, reward margin, reward accuracy and the rule-reading sum per step: train batches and held-out pairs."""
    rows = [{"step": c["step"], "series": key, "source": source, "value": c[prefix + key]}
            for c in curves for key in TRAINING_SERIES
            for prefix, source in (("", "train batch"), ("eval_", "held-out pairs"))
            if isinstance(c.get(prefix + key), (int, float)) and isinstance(c.get("step"), (int, float))]
    if not rows:
        return None
    alt = _alt()
    chart = alt.Chart(alt.Data(values=rows)).mark_line(point=True).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q", title=None), color=alt.Color("source:N", title=None),
        tooltip=["series:N", "source:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
    ).properties(width=240, height=160).facet(facet=alt.Facet("series:N", title=None), columns=2
    ).resolve_scale(y="independent").properties(
        title="Training curves (rule_reading: 0 = the model ignores the rule text, > 0 = it reads it)")
    return chart.to_dict()


def margins_chart(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How many pairs per margin g, per builder."""
    rows = [{"builder": r["builder"], "g": r["margin"]} for r in records if isinstance(r.get("margin"), int)]
    if not rows:
        return None
    alt = _alt()
    return alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        x=alt.X("g:O", title="margin g (rules that separate chosen from rejected)"),
        y=alt.Y("count():Q", title="pairs"), xOffset="builder:N",
        color=alt.Color("builder:N", title=None), tooltip=["builder:N", "g:O", "count():Q"],
    ).properties(width=360, height=180, title="Pairs per margin").to_dict()


@functools.lru_cache(maxsize=1)
def vega_bundle() -> str:
    """Vega + Vega-Lite + vega-embed as one script (defines window.vegaEmbed), matching Altair's schema."""
    import vl_convert

    version = _alt().SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]
    supported = vl_convert.get_vegalite_versions()
    return vl_convert.javascript_bundle(vl_version=version if version in supported else None)


def script_json(data: Any) -> str:
    """JSON safe to place inside a <script> element."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
