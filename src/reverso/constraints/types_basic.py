"""A first set of verifiable constraint types, with IFEval ids and kwargs.

Each type's ``check`` follows IFEval's reference semantics for the same id; reversals are exact
complements (same-family where one exists, else the generic ``not:`` wrapper).
"""

from __future__ import annotations

import random
import re
from typing import Any, Literal

from pydantic import Field

from reverso.constraints.base import (
    CheckContext,
    ConstraintType,
    Kwargs,
    ResponseView,
    Verdict,
    register,
)
from reverso.constraints.text import count_line_items

Relation = Literal["less than", "at least"]
_FLIP: dict[str, str] = {"less than": "at least", "at least": "less than"}
KEYWORD_POOL = (
    "planet", "balance", "journey", "signal", "harvest", "lantern", "network", "river", "budget",
    "history", "garden", "engine", "market", "memory", "pattern", "season", "storm", "voice",
)
END_PHRASES = ("Is there anything else I can help with?", "Let me know if you have additional questions.",
               "That is all.", "Hope this helps!")


def compare(count: int, relation: str, target: int) -> bool:
    return count < target if relation == "less than" else count >= target


def _pick(rng: random.Random, options: tuple[str, ...]) -> str:
    return options[rng.randrange(len(options))]


class NumberWordsKwargs(Kwargs):
    relation: Relation
    num_words: int = Field(ge=1)


@register
class NumberWords(ConstraintType):
    id = "length_constraints:number_words"
    Kwargs = NumberWordsKwargs
    group = "length:words"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = len(view.words)
        ok = compare(count, kw.relation, kw.num_words)
        return Verdict(ok, f"{count} words; needs {kw.relation} {kw.num_words}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        if kw.relation == "less than":
            return _pick(rng, (f"Answer with less than {kw.num_words} words.",
                               f"Keep the response under {kw.num_words} words.",
                               f"Use fewer than {kw.num_words} words in total."))
        return _pick(rng, (f"Answer with at least {kw.num_words} words.",
                           f"Write {kw.num_words} words or more.",
                           f"The response must contain at least {kw.num_words} words."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"relation": _FLIP[kw.relation], "num_words": kw.num_words}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"relation": rng.choice(["less than", "at least"]), "num_words": rng.choice([30, 45, 60, 75])}


class LetterFrequencyKwargs(Kwargs):
    letter: str = Field(min_length=1, max_length=1)
    let_frequency: int = Field(ge=1)
    let_relation: Relation


@register
class LetterFrequency(ConstraintType):
    id = "keywords:letter_frequency"
    Kwargs = LetterFrequencyKwargs

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = view.lower.count(kw.letter.lower())
        ok = compare(count, kw.let_relation, kw.let_frequency)
        return Verdict(ok, f"letter {kw.letter!r} appears {count} times; needs {kw.let_relation} {kw.let_frequency}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"The letter '{kw.letter}' (upper or lower case) should appear {kw.let_relation} "
                           f"{kw.let_frequency} times.",
                           f"Use the letter {kw.letter} (either case) {kw.let_relation} {kw.let_frequency} times."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"letter": kw.letter, "let_frequency": kw.let_frequency,
                         "let_relation": _FLIP[kw.let_relation]}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"letter": rng.choice("aeinorst"), "let_frequency": rng.choice([10, 15, 20, 30]),
                "let_relation": rng.choice(["less than", "at least"])}


@register
class NoComma(ConstraintType):
    id = "punctuation:no_comma"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = view.text.count(",")
        return Verdict(count == 0, f"{count} commas")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Do not use any commas.", "Refrain from using commas in your entire response.",
                           "Your answer must not contain a single comma."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Use at least one comma.", "Include one or more commas in your response."))


def titles(text: str) -> list[str]:
    """What IFEval's ``re.findall(r"<<[^\\n]+>>", text)`` finds, in linear time.

    On each line the greedy match runs from the first ``<<`` to the last ``>>`` with at least one
    character between; when that fails no later ``<<`` can succeed. The regex itself retries every
    ``<<`` and rescans the line: quadratic on a line of ``<<<<...``.
    """
    found = []
    for line in text.split("\n"):
        start = line.find("<<")
        end = line.rfind(">>")
        if start >= 0 and end >= start + 3:
            found.append(line[start:end + 2])
    return found


@register
class Title(ConstraintType):
    id = "detectable_format:title"
    group = "format:title"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        found = [t for t in titles(view.text) if t.lstrip("<").rstrip(">").strip()]
        return Verdict(bool(found), f"title {found[0]}" if found else "no <<title>> found")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Include a title wrapped in double angular brackets, such as <<my title>>.",
                           "Give your answer a title in double angular brackets, like <<title>>."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not include any title wrapped in double angular brackets (<< >>)."


class EndKwargs(Kwargs):
    end_phrase: str = Field(min_length=1)


@register
class EndChecker(ConstraintType):
    id = "startend:end_checker"
    Kwargs = EndKwargs
    group = "position:end"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok = view.stripped.strip('"').lower().endswith(kw.end_phrase.strip().lower())
        return Verdict(ok, "ends with the phrase" if ok else f"does not end with {kw.end_phrase!r}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Finish your response with this exact phrase: {kw.end_phrase}",
                           f"End your answer with the phrase \"{kw.end_phrase}\". No other words should follow."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not end your response with the phrase \"{kw.end_phrase}\"."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"end_phrase": rng.choice(END_PHRASES)}


@register
class Quotation(ConstraintType):
    id = "startend:quotation"
    group = "position:wrap"
    conflicts = frozenset({"position:end", "position:start", "format:json", "format:title"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        text = view.stripped
        ok = len(text) > 1 and text[0] == '"' and text[-1] == '"'
        return Verdict(ok, "wrapped in double quotes" if ok else "not wrapped in double quotation marks")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Wrap your entire response with double quotation marks.",
                           "Put your whole answer inside double quotes."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not wrap your entire response in double quotation marks."


class BulletKwargs(Kwargs):
    num_bullets: int = Field(ge=1)


_STAR_ITEM = re.compile(r"\*[^\*].*")  # IFEval: r"^\s*\*[^\*].*$" and r"^\s*-.*$" (multiline)
_DASH_ITEM = re.compile(r"-.*")


def count_bullets(text: str) -> int:
    """IFEval's markdown bullet count ("* " and "- " items), in linear time."""
    return count_line_items(text, _STAR_ITEM) + count_line_items(text, _DASH_ITEM)


@register
class NumberBullets(ConstraintType):
    id = "detectable_format:number_bullet_lists"
    Kwargs = BulletKwargs
    group = "format:bullets"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = count_bullets(view.text)
        return Verdict(count == kw.num_bullets, f"{count} bullet points; needs exactly {kw.num_bullets}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Your answer must contain exactly {kw.num_bullets} bullet points, using markdown "
                           "bullets such as: * This is a point.",
                           f"Use exactly {kw.num_bullets} markdown bullet points (* item)."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Use any number of markdown bullet points except exactly {kw.num_bullets} (zero is allowed)."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_bullets": rng.choice([2, 3, 4])}


class PostscriptKwargs(Kwargs):
    postscript_marker: str = Field(min_length=1)


@register
class Postscript(ConstraintType):
    id = "detectable_content:postscript"
    Kwargs = PostscriptKwargs
    group = "content:postscript"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        marker = kw.postscript_marker.strip()
        # IFEval's pattern is r"\s*<marker>.*$" (multiline): it matches exactly where the marker
        # does, since "\s*" may be empty and ".*$" always matches; searching for the marker alone is
        # linear, the full pattern retries "\s*" at every space of a long run (quadratic).
        if marker.lower() == "p.p.s":
            pattern = r"p\.\s?p\.\s?s"
        elif marker.lower() == "p.s.":
            pattern = r"p\.\s?s\."
        else:
            pattern = re.escape(marker.lower())
        ok = re.search(pattern, view.lower) is not None
        return Verdict(ok, f"postscript {marker!r} {'found' if ok else 'missing'}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return f"At the end of your response, add a postscript starting with {kw.postscript_marker}"

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not add any postscript starting with {kw.postscript_marker}"

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"postscript_marker": rng.choice(["P.S.", "P.P.S"])}


class KeywordsKwargs(Kwargs):
    keywords: list[str] = Field(min_length=1)


@register
class KeywordsExistence(ConstraintType):
    id = "keywords:existence"
    Kwargs = KeywordsKwargs
    group = "keywords:include"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        # IFEval treats keywords as regex patterns; we match them literally (documented difference).
        # Like IFEval, a keyword inside a longer word counts ("planet" in "planets"): the text says so.
        missing = [k for k in kw.keywords if not re.search(re.escape(k), view.text, flags=re.IGNORECASE)]
        return Verdict(not missing, f"missing keywords: {missing}" if missing else "all keywords present")

    def describe(self, kw: Any, rng: random.Random) -> str:
        words = ", ".join(kw.keywords)
        return _pick(rng, (f"Include the keywords {words} in the response (a longer word containing one counts).",
                           f"Make sure to write: {words} (on its own or inside a longer word)."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        if len(kw.keywords) == 1:
            return (f"Do not write '{kw.keywords[0]}' anywhere in your response, not even inside a longer word "
                    "(any case).")
        return f"Leave out at least one of these, even inside longer words: {', '.join(kw.keywords)}."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"keywords": [rng.choice(KEYWORD_POOL)]}


class ForbiddenKwargs(Kwargs):
    forbidden_words: list[str] = Field(min_length=1)


@register
class ForbiddenWords(ConstraintType):
    id = "keywords:forbidden_words"
    Kwargs = ForbiddenKwargs
    group = "keywords:exclude"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        found = [w for w in kw.forbidden_words
                 if re.search(r"\b" + re.escape(w) + r"\b", view.text, flags=re.IGNORECASE)]
        return Verdict(not found, f"forbidden words used: {found}" if found else "no forbidden words")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return f"Do not include the words {', '.join(kw.forbidden_words)} in the response."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Use at least one of these words: {', '.join(kw.forbidden_words)}."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"forbidden_words": rng.sample(["the", "and", "is", "very", "really"], 1)}


@register
class JsonFormat(ConstraintType):
    id = "detectable_format:json_format"
    group = "format:json"
    conflicts = frozenset({"format:title", "format:bullets", "position:end", "position:wrap",
                           "content:postscript", "case:lower"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok, _, problem = view.json_parsed
        return Verdict(ok, "valid JSON" if ok else problem)

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Entire output should be wrapped in JSON format.",
                           "Format your whole answer as JSON; you may use a ```json code block."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not format your answer as JSON."


@register
class Lowercase(ConstraintType):
    id = "change_case:english_lowercase"
    group = "case:lower"
    # Its checker's complement includes "lowercase, but langdetect reads it as another language":
    # no short English rule says that, so it is not sampled (reverso:no_capitals is, see docs).
    sampled, reversible = False, False
    conflicts = frozenset({"case:upper", "case:capital_words"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        if not view.text.islower():
            return Verdict(False, "contains capital letters or no letters")
        # IFEval counts undetectable language as English.
        ok = view.language in ("en", None)
        return Verdict(ok, "all lowercase English" if ok else f"lowercase but language is {view.language}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("Your entire response should be in English, and in all lowercase letters. "
                           "No capital letters are allowed.",
                           "Write everything in lowercase letters only."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        # The exact complement of IFEval's checker; not sampled because langdetect decides its second half.
        return "Use at least one capital letter, or write in a language other than English."
