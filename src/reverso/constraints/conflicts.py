"""Which constraint sets contradict themselves, and why.

Every verifiable constraint *form* (a constraint or its reverse) is described by its ``Needs``:

- **bounds** on countable features of the response (words, lines, digits, capital letters, the
  letter 'e', the word 'very', ...), as closed intervals, with "not exactly N" as exclusions;
- **fragments**: literal text the response must contain (a start phrase, "SECTION 1" markers, the
  numbered lines "1. ... 2. ..."); counting features *in the fragments* gives lower bounds that
  other rules' upper bounds must leave room for (no digits vs a numbered list; no capitals vs
  "SECTION 1"; fewer than 1 all-caps word vs the end phrase "... I can help with?");
- **tags** for whole-response shapes (JSON, wrapped in quotes, starts/ends with a phrase).

``find_conflicts`` intersects the bounds (1-D intervals: empty iff two of them are disjoint),
checks fragment lower bounds against upper bounds, a few natural ratios (N words take at least
4N characters) and the shape rules, and returns one readable reason per contradiction.
With ``any_reversal=True`` it asks whether *any* mix of originals and reverses could contradict —
what the sampler needs, because the reverse stage may reverse any subset of a set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reverso.constraints.base import CheckContext, Constraint, ResponseView, get_type, validate_kwargs
from reverso.constraints.types_basic import count_bullets
from reverso.constraints.types_ifeval import _DOUBLE_HIGHLIGHT, _HIGHLIGHT, count_placeholders
from reverso.constraints.types_extra import _EMOJI, _FIRST_PERSON, _URL, count_numbered

INF = 10**9


@dataclass
class Needs:
    """What one constraint form demands of a response (see the module docstring)."""

    source: str
    bounds: list[tuple[str, int, int]] = field(default_factory=list)  # (dim, lo, hi)
    excluded: list[tuple[str, int, int]] = field(default_factory=list)  # (dim, lo, hi) not allowed
    fragments: list[str] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)


# ---- counters: how many of each feature a text has (the same definitions the checkers use) ----

def _words_re(word: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)


def count(dim: str, view: ResponseView) -> int:
    """The response's count for dimension ``dim`` (e.g. ``words``, ``letter:e``, ``word:very``)."""
    kind, _, arg = dim.partition(":")
    text = view.text
    simple: dict[str, Callable[[], int]] = {
        "words": lambda: len(view.words),
        "chars": lambda: len(text),
        "lines": lambda: sum(1 for line in view.lines if line.strip()),
        "digits": lambda: len(re.findall(r"[0-9]", text)),
        "uppercase": lambda: sum(1 for ch in text if ch.isupper()),
        "capital_words": lambda: sum(1 for w in view.nltk_words if w.isupper()),
        "commas": lambda: text.count(","),
        "exclamations": lambda: text.count("!"),
        "questions": lambda: text.count("?"),
        "emojis": lambda: len(_EMOJI.findall(text)),
        "urls": lambda: len(_URL.findall(text)),
        "first_person": lambda: len(_FIRST_PERSON.findall(text)),
        "numbered": lambda: count_numbered(text),
        "bullets": lambda: count_bullets(text),
        "placeholders": lambda: count_placeholders(text),
        "highlights": lambda: sum(1 for h in _HIGHLIGHT.findall(text) if h.strip("*").strip())
        + sum(1 for h in _DOUBLE_HIGHLIGHT.findall(text) if h.removeprefix("**").removesuffix("**").strip()),
    }
    if kind in simple:
        return simple[kind]()
    if kind == "letter":
        return view.lower.count(arg)
    if kind == "substr":
        return len(re.findall(re.escape(arg), text, flags=re.IGNORECASE))
    if kind == "word":
        return len(_words_re(arg).findall(text))
    if kind == "sections":
        return len(re.split(r"\s?" + re.escape(arg) + r"\s?\d+\s?", text)) - 1
    return 0


# ---- needs of every sampled / official type, original and negated ----

def _relation(dim: str, relation: str, n: int) -> tuple[str, int, int]:
    return (dim, 0, n - 1) if relation == "less than" else (dim, n, INF)


def _bound(dim: str, bound: str, n: int) -> tuple[str, int, int]:
    return (dim, 0, n) if bound == "at most" else (dim, n + 1, INF)


def _items(marker: Callable[[int], str], n: int) -> str:
    return "\n".join(f"{marker(i)} x" for i in range(1, n + 1))


def _exactly(dim: str, n: int, negated: bool, fragment: str, tag: str) -> Needs:
    if negated:
        return Needs("", excluded=[(dim, n, n)])
    return Needs("", bounds=[(dim, n, n)], fragments=[fragment], tags={tag: n})


def _flag(dim: str, negated: bool, fragment: str = "") -> Needs:
    """'No X' rules: X never appears; negated: at least one X (``fragment`` is an example X)."""
    if negated:
        return Needs("", bounds=[(dim, 1, INF)], fragments=[fragment] if fragment else [])
    return Needs("", bounds=[(dim, 0, 0)])


def _start(kw: Any, negated: bool) -> Needs:
    if negated:
        return Needs("", tags={"not_start": kw.phrase.strip().lower()})
    return Needs("", fragments=[kw.phrase.lower()], tags={"start": kw.phrase.strip().lower()})


def _end(kw: Any, negated: bool) -> Needs:
    if negated:
        return Needs("", tags={"not_end": kw.end_phrase.strip().lower()})
    return Needs("", fragments=[kw.end_phrase.lower()], tags={"end": kw.end_phrase.strip().lower()})


def _sections(kw: Any, negated: bool) -> Needs:
    dim = f"sections:{kw.section_spliter}"
    if negated:
        return Needs("", bounds=[(dim, 0, kw.num_sections - 1)])
    markers = " ".join(f"{kw.section_spliter} {i} x" for i in range(1, kw.num_sections + 1))
    return Needs("", bounds=[(dim, kw.num_sections, INF)], fragments=[markers])


def _keywords(kw: Any, negated: bool) -> Needs:
    if negated:  # at least one keyword missing; with one keyword: it never appears
        return Needs("", bounds=[(f"substr:{kw.keywords[0]}", 0, 0)] if len(kw.keywords) == 1 else [])
    return Needs("", bounds=[(f"substr:{k}", 1, INF) for k in kw.keywords], fragments=[k.lower() for k in kw.keywords])


def _forbidden(kw: Any, negated: bool) -> Needs:
    if negated:  # at least one of the words
        words = kw.forbidden_words
        return Needs("", bounds=[(f"word:{words[0]}", 1, INF)] if len(words) == 1 else [],
                     fragments=[words[0]] if len(words) == 1 else [])
    return Needs("", bounds=[(f"word:{w}", 0, 0) for w in kw.forbidden_words])


def _json(negated: bool, keys: Sequence[str] = ()) -> Needs:
    if negated:
        return Needs("", tags={"not_json": list(keys)})
    # An object with k keys has k-1 commas between its entries.
    return Needs("", fragments=[",".join(k.lower() for k in keys)] if keys else [], tags={"json": list(keys)})


def _simple_tag(tag: str, negated: bool, fragment: str = "") -> Needs:
    if negated:
        return Needs("", tags={f"not_{tag}": True})
    return Needs("", fragments=[fragment] if fragment else [], tags={tag: True})


NEEDS: dict[str, Callable[[Any, bool], Needs]] = {
    "length_constraints:number_words": lambda kw, neg: Needs("", bounds=[_relation("words", kw.relation, kw.num_words)]),
    "reverso:word_range": lambda kw, neg: (
        Needs("", excluded=[("words", kw.min_words, kw.max_words)]) if neg
        else Needs("", bounds=[("words", kw.min_words, kw.max_words)])),
    "keywords:letter_frequency": lambda kw, neg: Needs(
        "", bounds=[_relation(f"letter:{kw.letter.lower()}", kw.let_relation, kw.let_frequency)]),
    "keywords:frequency": lambda kw, neg: Needs(
        "", bounds=[_relation(f"substr:{kw.keyword.lower()}", kw.relation, kw.frequency)],
        fragments=[kw.keyword.lower()] * (kw.frequency if kw.relation == "at least" else 0)),
    "length_constraints:number_sentences": lambda kw, neg: Needs(
        "", bounds=[_relation("sentences", kw.relation, kw.num_sentences)]),
    "change_case:capital_word_frequency": lambda kw, neg: Needs(
        "", bounds=[_relation("capital_words", kw.capital_relation, kw.capital_frequency)],
        fragments=["UK"] * (kw.capital_frequency if kw.capital_relation == "at least" else 0)),
    "punctuation:no_comma": lambda kw, neg: _flag("commas", neg, ","),
    "reverso:no_urls": lambda kw, neg: _flag("urls", neg, "https://x"),
    "reverso:no_exclamation": lambda kw, neg: _flag("exclamations", neg, "!"),
    "reverso:no_digits": lambda kw, neg: _flag("digits", neg, "7"),
    "reverso:no_first_person": lambda kw, neg: _flag("first_person", neg, "my"),
    "reverso:no_capitals": lambda kw, neg: _flag("uppercase", neg, "X"),
    "change_case:english_lowercase": lambda kw, neg: (
        Needs("") if neg else Needs("", bounds=[("uppercase", 0, 0)], tags={"letters": True})),
    "change_case:english_capital": lambda kw, neg: (
        Needs("") if neg else Needs("", tags={"all_caps": True})),
    "reverso:emoji_count": lambda kw, neg: Needs("", bounds=[_bound("emojis", kw.bound, kw.limit)]),
    "reverso:character_count": lambda kw, neg: Needs("", bounds=[_bound("chars", kw.bound, kw.limit)]),
    "reverso:line_count": lambda kw, neg: Needs("", bounds=[_bound("lines", kw.bound, kw.limit)]),
    "reverso:paragraph_count": lambda kw, neg: Needs("", bounds=[_bound("blank_paragraphs", kw.bound, kw.limit)]),
    "reverso:question_marks": lambda kw, neg: Needs("", bounds=[_bound("questions", kw.bound, kw.limit)]),
    "reverso:must_mention": lambda kw, neg: Needs("", bounds=[(f"word:{kw.phrase.lower()}", 1, INF)],
                                                  fragments=[kw.phrase.lower()]),
    "reverso:must_not_mention": lambda kw, neg: Needs("", bounds=[(f"word:{kw.phrase.lower()}", 0, 0)]),
    "reverso:starts_with": _start,
    "keywords:existence": _keywords,
    "keywords:forbidden_words": _forbidden,
    "startend:end_checker": _end,
    "reverso:ends_with_question": lambda kw, neg: (
        Needs("", tags={"not_end_question": True}) if neg
        else Needs("", fragments=["?"], tags={"end_question": True})),
    "reverso:numbered_list": lambda kw, neg: _exactly(
        "numbered", kw.num_items, neg, _items(lambda i: f"{i}.", kw.num_items), "items"),
    "detectable_format:number_bullet_lists": lambda kw, neg: _exactly(
        "bullets", kw.num_bullets, neg, _items(lambda i: "*", kw.num_bullets), "items"),
    "detectable_format:title": lambda kw, neg: _simple_tag("title", neg, "<<x>>"),
    "startend:quotation": lambda kw, neg: _simple_tag("wrap", neg),
    "detectable_format:json_format": lambda kw, neg: _json(neg),
    "reverso:json_keys": lambda kw, neg: _json(neg, kw.keys),
    "detectable_content:postscript": lambda kw, neg: (
        Needs("", tags={"not_postscript": kw.postscript_marker}) if neg
        else Needs("", fragments=[kw.postscript_marker.lower()], tags={"postscript": kw.postscript_marker})),
    "detectable_content:number_placeholders": lambda kw, neg: Needs(
        "", bounds=[("placeholders", 0, kw.num_placeholders - 1) if neg else ("placeholders", kw.num_placeholders, INF)],
        fragments=[] if neg else ["[x]"] * kw.num_placeholders),
    "detectable_format:number_highlighted_sections": lambda kw, neg: Needs(
        "", bounds=[("highlights", 0, kw.num_highlights - 1) if neg else ("highlights", kw.num_highlights, INF)]),
    "detectable_format:multiple_sections": _sections,
    "length_constraints:number_paragraphs": lambda kw, neg: Needs(
        "", tags={"not_star_paragraphs" if neg else "star_paragraphs": kw.num_paragraphs}),
    "combination:two_responses": lambda kw, neg: _simple_tag("two_responses", neg),
}


def needs(constraint: Constraint) -> Needs:
    """The ``Needs`` of one constraint form (types without an entry need nothing checkable here)."""
    negated = constraint.id.startswith("not:")
    base_id = constraint.id[4:] if negated else constraint.id
    ctype = get_type(base_id)
    builder = NEEDS.get(base_id)
    if builder is None or not ctype.verifiable:
        return Needs(constraint.id)
    result = builder(validate_kwargs(ctype, constraint.kwargs), negated)
    result.source = _label(constraint)
    return result


def _label(constraint: Constraint) -> str:
    from reverso.constraints import describe, stable_rng

    return f"'{describe(constraint, stable_rng('label', constraint.id, constraint.kwargs_json))}' ({constraint.id})"


def _fragment_count(form: Needs, dim: str) -> int:
    """Count of ``dim`` in the form's fragments (letter, word and substring dims included)."""
    if dim == "lines":  # one line per list item; an opening or a quote mark needs a line of its own
        return form.tags.get("items", 0) + (1 if "start" in form.tags or "wrap" in form.tags else 0)
    if dim in ("sentences", "blank_paragraphs", "highlights") or dim.startswith("sections:"):
        return 0
    total = 0
    for fragment in form.fragments:
        total += count(dim, ResponseView(fragment))
    return total


# ---- the relation ----

def _fmt(lo: int, hi: int) -> str:
    if hi >= INF:
        return f"at least {lo}"
    return f"exactly {lo}" if lo == hi else f"{lo}-{hi}"


def _interval_conflicts(forms: Sequence[tuple[int, Needs]]) -> list[str]:
    reasons = []
    bounds = [(owner, form, dim, lo, hi) for owner, form in forms for dim, lo, hi in form.bounds]
    for i, (oa, fa, dim_a, lo_a, hi_a) in enumerate(bounds):
        for ob, fb, dim_b, lo_b, hi_b in bounds[i + 1:]:
            if oa != ob and dim_a == dim_b and max(lo_a, lo_b) > min(hi_a, hi_b):
                reasons.append(f"{fa.source} needs {_fmt(lo_a, hi_a)} {dim_a} but {fb.source} needs "
                               f"{_fmt(lo_b, hi_b)}")
        for ob, fb in forms:
            for dim_x, lo_x, hi_x in fb.excluded:
                if ob != oa and dim_x == dim_a and lo_x <= lo_a and hi_a <= hi_x:
                    reasons.append(f"{fa.source} needs {_fmt(lo_a, hi_a)} {dim_a}, which {fb.source} rules out")
    return reasons


def _fragment_conflicts(groups: Sequence[Sequence[Needs]]) -> list[str]:
    """Literal text some rules require vs. upper bounds of other rules (worst case over forms)."""
    reasons = []
    for owner, options in enumerate(groups):
        for form in options:
            for dim, _lo, hi in form.bounds:
                if hi >= INF:
                    continue
                needed, who = 0, []
                for other, other_options in enumerate(groups):
                    if other == owner:
                        continue
                    best = max(other_options, key=lambda f: _fragment_count(f, dim))
                    amount = _fragment_count(best, dim)
                    if amount:
                        needed += amount
                        who.append(best.source)
                if needed > hi:
                    reasons.append(f"{form.source} allows {_fmt(0, hi) if hi else 'no'} {dim}, but "
                                   f"{' and '.join(who)} require{'s' if len(who) == 1 else ''} {needed}")
    return reasons


def _range(forms: Sequence[Needs], dim: str) -> tuple[int, int, str, str]:
    lo, hi, lo_src, hi_src = 0, INF, "", ""
    for form in forms:
        for d, a, b in form.bounds:
            if d == dim and a > lo:
                lo, lo_src = a, form.source
            if d == dim and b < hi:
                hi, hi_src = b, form.source
    return lo, hi, lo_src, hi_src


# Ratios no natural reply escapes: (needs dim, per unit, of dim), e.g. every word takes >= 4 characters.
_RATIOS = (("chars", 4, "words"), ("words", 2, "sentences"), ("lines", 1, "blank_paragraphs"))
# ... and the other direction: at most 12 characters per word.
_MAX_RATIOS = (("words", 12, "chars"),)


def _ratio_conflicts(forms: Sequence[Needs]) -> list[str]:
    reasons = []
    # English averages well under one of any given letter per word: N of a letter take N words.
    letters = sorted({d for form in forms for d, _, _ in form.bounds if d.startswith("letter:")})
    for big, per, small in (*_RATIOS, *(("words", 1, d) for d in letters)):
        lo, _, lo_src, _ = _range(forms, small)
        _, hi, _, hi_src = _range(forms, big)
        if lo and hi < INF and lo * per > hi and lo_src != hi_src:
            reasons.append(f"{lo_src} needs at least {lo} {small}, which take at least {lo * per} {big}, "
                           f"but {hi_src} allows at most {hi}")
    for small, per, big in _MAX_RATIOS:
        _, hi, _, hi_src = _range(forms, small)
        lo, _, lo_src, _ = _range(forms, big)
        if hi < INF and lo > hi * per and lo_src != hi_src:
            reasons.append(f"{lo_src} needs at least {lo} {big}, more than {per} per {small[:-1]} "
                           f"allowed by {hi_src}")
    return reasons


def _shape_conflicts(forms: Sequence[tuple[int, Needs]]) -> list[str]:
    reasons = []
    for i, (oa, a) in enumerate(forms):
        for ob, b in forms[i + 1:]:
            if oa == ob:
                continue
            for first, second in ((a, b), (b, a)):
                reason = _shape_pair(first, second)
                if reason:
                    reasons.append(reason)
    return reasons


def _shape_pair(a: Needs, b: Needs) -> str | None:
    t, u = a.tags, b.tags
    if "json" in t:
        if "start" in u and not u["start"].startswith(("{", '"', "`")):
            return f"{a.source} makes the whole reply JSON, so it cannot start with words as {b.source} asks"
        if "end" in u or "end_question" in u:
            return f"{a.source} makes the whole reply JSON, so it cannot end with text as {b.source} asks"
        if "wrap" in u or "two_responses" in u or "items" in u:
            return f"{a.source} makes the whole reply one JSON value, which {b.source} rules out"
        if "not_json" in u and set(u["not_json"]) <= set(t["json"]):
            return f"{a.source} contradicts {b.source}"
    if "wrap" in t:
        if "start" in u and not u["start"].startswith('"'):
            return f"{a.source} makes the reply start with a quotation mark, not as {b.source} asks"
        if "end_question" in u:
            return f"{a.source} makes the reply end with a quotation mark, not a question mark ({b.source})"
    if "start" in t:
        if "start" in u and not (t["start"].startswith(u["start"]) or u["start"].startswith(t["start"])):
            return f"{a.source} and {b.source} ask for different openings"
        if "not_start" in u and t["start"].startswith(u["not_start"]):
            return f"{a.source} contradicts {b.source}"
    if "end" in t:
        if "end" in u and not (t["end"].endswith(u["end"]) or u["end"].endswith(t["end"])):
            return f"{a.source} and {b.source} ask for different endings"
        if "not_end" in u and t["end"].endswith(u["not_end"]):
            return f"{a.source} contradicts {b.source}"
        if "end_question" in u and not t["end"].endswith("?"):
            return f"{a.source} fixes the last words, which do not end with '?' as {b.source} asks"
        if "not_end_question" in u and t["end"].endswith("?"):
            return f"{a.source} ends with '?', which {b.source} forbids"
    if "postscript" in t and "not_postscript" in u and _postscript_clash(t["postscript"], u["not_postscript"]):
        return f"{a.source} contradicts {b.source}"
    if "star_paragraphs" in t and "two_responses" in u:
        return f"{a.source} separates paragraphs with ***, which {b.source}'s ****** separator also splits"
    if "star_paragraphs" in t and "not_star_paragraphs" in u and t["star_paragraphs"] == u["not_star_paragraphs"]:
        return f"{a.source} contradicts {b.source}"
    if "all_caps" in t and ("letters" in u or any(k != k.upper() for k in u.get("json", []))):
        return f"{a.source} cannot hold with {b.source}"
    return None


def _postscript_clash(required: str, forbidden: str) -> bool:
    ctype = get_type("detectable_content:postscript")
    kwargs = validate_kwargs(ctype, {"postscript_marker": forbidden})
    return ctype.check(kwargs, ResponseView(f"{required} x"), CheckContext()).passed


def _reversible_forms(constraint: Constraint) -> list[Constraint]:
    from reverso.constraints import is_reversible, reverse

    return [constraint, reverse(constraint)] if is_reversible(constraint) else [constraint]


def find_conflicts(constraints: Iterable[Constraint | dict[str, Any]], *, any_reversal: bool = False) -> list[str]:
    """Readable reasons why no natural response can satisfy every constraint (empty: none found).

    Accepts constraints or specs. With ``any_reversal``, reports what could contradict once any
    subset of the constraints is reversed (the sampler's promise to the reverse stage).
    Soft constraints are not judged here.
    """
    from reverso.constraints import parse

    parsed = [c if isinstance(c, Constraint) else parse(c) for c in constraints]
    verifiable = [c for c in parsed if get_type(c.id).verifiable]
    groups = [[needs(form) for form in (_reversible_forms(c) if any_reversal else [c])] for c in verifiable]
    flat = [(owner, form) for owner, options in enumerate(groups) for form in options]
    reasons = _interval_conflicts(flat) + _fragment_conflicts(groups) + _shape_conflicts(flat)
    if any_reversal:  # ratios hold per choice of forms; pairwise choices cover them (1-D bounds)
        for i, options_a in enumerate(groups):
            for options_b in groups[i + 1:]:
                for a in options_a:
                    for b in options_b:
                        reasons += _ratio_conflicts([a, b])
    else:
        reasons += _ratio_conflicts([form for _, form in flat])
    return list(dict.fromkeys(reasons))
