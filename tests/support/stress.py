"""Dev-only: hostile long responses, and how a check's time grows with the response length.

A looping or hostile model answer can be hundreds of kilobytes of one repeated token. Every check
must stay linear (or n log n) in the response length, so ``growth`` compares a check's time on a
200k-character response with its time on a 2k-character one built from the same unit: about 100
for a linear check, about 10,000 for a quadratic one. Used by tests/test_linear_checks.py and
bench/constraints.py. Nothing here is used by the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache

from reverso.constraints.base import CheckContext, Constraint, ResponseView
from reverso.constraints.engine import _typed

# Units that make some regex or loop retry work: runs of a marker, blank lines, unclosed brackets,
# sentence ends, nested openers, CSV-ish and list-ish lines.
UNITS = ("<<", "\n", " ", "[", "*", "-", "*\n", "a", "word ", "Hi. ", "?!", "(", '{"a": ', "\"'", "P.S. ",
         "***", "<i>", "Question 1\n", ", ", "🙂", "Zimbabwe\n", "Section 1 ", "a\n\n", "\t", "aa bb ", "1,")
# The ResponseView features that checks share (computed once per response).
# Times below this are noise for a ratio; a quadratic check on 2k characters (4M steps) takes far longer.
FLOOR_S = 50e-6
FEATURES = ("stripped", "lower", "words", "lines", "sentences", "regex_sentences", "nltk_words", "language",
            "json_parsed")


def hostile(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _best(run: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


@lru_cache(maxsize=64)
def warm_view(unit: str, size: int) -> ResponseView:
    """A view of ``hostile(unit, size)`` with every shared feature computed (cached: views are reused)."""
    view = ResponseView(hostile(unit, size))
    for name in FEATURES:
        getattr(view, name)
    return view


def check_seconds(constraint: Constraint, view: ResponseView, repeats: int = 3) -> float:
    """Best-of time of one check on a view whose shared features are already computed."""
    ctype, kwargs = _typed(constraint)
    context = CheckContext(prompt="Tell me about rivers.")
    return _best(lambda: ctype.check(kwargs, view, context), repeats)


def check_growth(constraint: Constraint, unit: str, small: int = 2_000, large: int = 200_000) -> float:
    """time(large) / time(small) of one check on ``unit`` repeated (both at least ``FLOOR_S``)."""
    slow = check_seconds(constraint, warm_view(unit, large), repeats=1)
    fast = check_seconds(constraint, warm_view(unit, small), repeats=5)
    return max(slow, FLOOR_S) / max(fast, FLOOR_S)


def feature_growth(name: str, unit: str, small: int = 2_000, large: int = 200_000) -> float:
    """The same ratio for computing one shared ResponseView feature from scratch."""
    slow = _best(lambda: getattr(ResponseView(hostile(unit, large)), name), 1)
    fast = _best(lambda: getattr(ResponseView(hostile(unit, small)), name), 5)
    return max(slow, FLOOR_S) / max(fast, FLOOR_S)
