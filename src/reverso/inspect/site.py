"""Render the inspector's pages with Jinja2 (templates and assets are package data)."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path
from typing import Any

from reverso import __version__
from reverso.inspect.charts import script_json, vega_bundle
from reverso.inspect.pairs_view import for_page

NAV = [("index.html", "Overview"), ("pairs.html", "Pairs"), ("evaluation.html", "Evaluation")]


def _static(name: str) -> str:
    return resources.files("reverso.inspect").joinpath("static", name).read_text(encoding="utf-8")


def environment() -> Any:
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("reverso.inspect", "templates"),
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
                              undefined=jinja2.StrictUndefined)


def render_site(out_dir: Path, workspace: Path, index: dict[str, Any], pairs_view: dict[str, Any],
                eval_view: dict[str, Any], charts: dict[str, dict[str, Any]], page_size: int) -> dict[str, int]:
    """Write index.html, pairs.html and evaluation.html; returns each page's size in bytes."""
    from markupsafe import Markup

    env = environment()
    common = {"version": __version__, "css": Markup(_static("inspect.css")), "nav": NAV,
              "built": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "workspace": str(workspace.resolve().name)}
    pages = {
        "index.html": env.get_template("index.html").render(page="index.html", title="Overview", **common, **index),
        "pairs.html": env.get_template("pairs.html").render(
            page="pairs.html", title="Pairs", view=pairs_view, page_size=page_size,
            data_json=Markup(script_json(for_page(pairs_view))),
            pairs_js=Markup(_static("pairs.js")), **common),
        "evaluation.html": env.get_template("evaluation.html").render(
            page="evaluation.html", title="Evaluation", view=eval_view,
            charts=[{"id": name} for name in charts], specs_json=Markup(script_json(charts)),
            vega_js=Markup(vega_bundle().replace("</script", "<\\/script")) if charts else "", **common),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, html in pages.items():
        (out_dir / name).write_text(html, encoding="utf-8")
        sizes[name] = len(html.encode("utf-8"))
    return sizes
