"""End to end in a real browser: headless Chromium (Debian's package, driven by Playwright) on the
site `reverso inspect` builds from the fixture run in tests/fixtures/inspect/run.

Expected counts are computed here from the fixture's JSONL files, not from the inspector's code.
Screenshots land in tests/artifacts/ (ignored by git). Without Chromium the test is skipped locally,
but fails under CI=true: the browser is part of the project's setup (scripts/system-deps.sh).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reverso.config import InspectParams
from reverso.inspect import inspect

RUN = Path(__file__).parent / "fixtures" / "inspect" / "run"
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    found = os.environ.get("REVERSO_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Chromium not found: run `bash scripts/system-deps.sh` (installs Debian's chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " — under CI the browser test must run")
    pytest.skip(message)


def pairs_rows() -> list[dict]:
    rows = []
    for path in sorted((RUN / "data/pairs").glob("*/*.jsonl")):
        if not path.name.endswith(".quarantine.jsonl"):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace = tmp_path_factory.mktemp("inspect") / "ws"
    shutil.copytree(RUN, workspace)
    inspect(InspectParams(log_to_mlflow=False, rows_per_page=20), workspace)
    return workspace / "reports"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if os.environ.get("CI", "").lower() == "true":
        from playwright import sync_api  # under CI a missing Playwright is a failure, not a skip
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture()
def open_page(browser: object, site: Path) -> Iterator[object]:
    """Open a page of the site; any request that leaves file:// or any JS error fails the test."""
    context = browser.new_context(viewport={"width": 1300, "height": 900})  # type: ignore[attr-defined]
    remote, errors = [], []

    def route(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()  # type: ignore[attr-defined]
        else:
            remote.append(url)
            route.abort()  # type: ignore[attr-defined]

    context.route("**/*", route)

    def opener(name: str) -> object:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto((site / name).as_uri())
        return page

    yield opener
    context.close()
    assert not remote, f"the site tried to reach the network: {remote}"
    assert not errors, f"JavaScript errors: {errors}"


def matching(page: object) -> int:
    return int(page.get_attribute("#shown", "data-matching"))  # type: ignore[attr-defined]


def test_filters_and_search_show_the_expected_pairs(open_page: object) -> None:
    rows = pairs_rows()
    page = open_page("pairs.html")
    assert matching(page) == len(rows)
    assert page.locator("#pair-list .pair").count() == 20  # rows_per_page
    page.click("#next")
    assert page.locator("#pair-list .pair").count() == 20
    page.select_option("#f-builder", "dpo")
    assert matching(page) == sum(r["builder"] == "dpo" for r in rows)
    assert page.locator("#pair-list .pair").count() == sum(r["builder"] == "dpo" for r in rows)  # back to page 1
    page.select_option("#f-builder", "rpo")
    page.select_option("#f-margin", "5")
    assert matching(page) == sum(r["builder"] == "rpo" and r["margin"] == 5 for r in rows)
    page.select_option("#f-margin", "")
    page.select_option("#f-session", "s1")
    page.select_option("#f-turn", "1")
    assert matching(page) == sum(r["builder"] == "rpo" and r["session_id"] == "s1" and r["turn"] == 1 for r in rows)
    page.select_option("#f-builder", "")
    page.select_option("#f-session", "")
    page.select_option("#f-turn", "")
    page.fill("#f-search", "ABOUT 3 TIMES")  # case-insensitive, over responses
    expected = sum(any("about 3 times" in m["content"].lower() for m in r["chosen"] + r["rejected"]) for r in rows)
    assert 0 < matching(page) == expected < len(rows)
    page.fill("#f-search", "")
    page.select_option("#f-type", "reverso:no_exclamation")
    assert matching(page) == sum(any(c["id"].endswith("reverso:no_exclamation") for c in r["constraints"]) for r in rows)
    page.select_option("#f-type", "")
    assert matching(page) == len(rows)
    assert page.locator("#count-check tr[data-ok='false']").count() == 0
    assert page.locator("#quarantine-table tr").count() == 1 + 2  # header + one row per quarantine file


def test_a_pairs_diff_highlights_exactly_the_reversed_rules(open_page: object) -> None:
    sessions = {json.loads(line)["session_id"]: json.loads(line)
                for line in (RUN / "data/sessions.jsonl").read_text().splitlines()}
    page = open_page("pairs.html")
    page.select_option("#f-builder", "rpo")
    page.select_option("#f-margin", "4")
    card = page.locator("#pair-list .pair").first
    pair_id = int(card.get_attribute("data-pair-id"))
    pair = pairs_rows_in_page_order()[pair_id]
    session = sessions[pair["session_id"]]
    original = session["system_constraints"] + session["turns"][pair["turn"]]["constraints"]
    expected = [i for i, (o, p) in enumerate(zip(original, pair["constraints"], strict=True)) if o != p]
    assert expected, "a margin-4 RPO pair reverses at least one rule"
    rows = card.locator("tbody tr.rule")
    assert rows.count() == len(original)
    highlighted = [i for i in range(rows.count()) if "changed" in (rows.nth(i).get_attribute("class") or "")]
    assert highlighted == expected
    for i in highlighted:  # the highlighted cell shows the reversed spec, the original is struck through
        assert pair["constraints"][i]["id"] in rows.nth(i).locator("td.prompt-rule").inner_text()
    separating = [i for i in range(rows.count()) if rows.nth(i).locator("td").nth(5).inner_text() == "yes"]
    assert len(separating) == pair["margin"] == 4
    card.locator("details.prompt summary").click()
    assert pair["prompt"][0]["content"].splitlines()[0] in card.locator(".messages").inner_text()
    assert card.locator(".chosen .text").inner_text() == pair["chosen"][0]["content"]
    card.screenshot(path=str(ARTIFACTS.joinpath("inspect-pair-diff.png")))


def pairs_rows_in_page_order() -> list[dict]:
    """The pair files in the order the inspector lists them: RPO first, train before eval."""
    order = []
    for builder in ("rpo", "dpo"):
        for split in ("train", "eval"):
            path = RUN / "data/pairs" / builder / f"{split}.jsonl"
            order += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return order


def test_evaluation_lists_won_then_lost_then_ties_and_renders_charts(open_page: object) -> None:
    page = open_page("evaluation.html")
    order = {suite: page.locator(f".units[data-suite='{suite}'] .unit").evaluate_all(
        "nodes => nodes.map(n => [n.dataset.session, n.dataset.outcome])") for suite in ("ifeval", "multi_if")}
    assert order["ifeval"] == [["ife-1", "won"], ["ife-0", "won"], ["ife-2", "lost"], ["ife-3", "tie"]]
    assert order["multi_if"] == [["mif-0", "won"], ["mif-1", "lost"], ["mif-2", "tie"]]
    assert page.locator(".unit[data-session='ife-2'] .side.policy .badge.fail").count() == 1
    page.wait_for_selector(".chart[data-rendered='true']")
    page.wait_for_function("document.querySelectorAll('.chart').length === "
                           "document.querySelectorAll(\".chart[data-rendered='true'] svg\").length")
    assert page.locator(".chart svg").count() == 4
    page.screenshot(path=str(ARTIFACTS / "inspect-evaluation.png"), full_page=True)
    pairs = open_page("pairs.html")
    pairs.screenshot(path=str(ARTIFACTS / "inspect-pairs.png"))
    index = open_page("index.html")
    assert index.locator("#headline td").count() >= 6
    assert (ARTIFACTS / "inspect-evaluation.png").stat().st_size > 10_000
