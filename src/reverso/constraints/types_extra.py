"""Verifiable constraints beyond IFEval that system-prompted assistants need (``reverso:*`` ids)."""

from __future__ import annotations

import json
import random
import re
from typing import Any, Literal

from pydantic import Field, model_validator

from reverso.constraints.base import CheckContext, ConstraintType, Kwargs, ResponseView, Verdict, register
from reverso.constraints.text import count_line_items
from reverso.constraints.types_basic import KEYWORD_POOL, _pick

Bound = Literal["at most", "more than"]
_BOUND_FLIP = {"at most": "more than", "more than": "at most"}
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\U00002600-\U000027BF\U00002B00-\U00002BFF\U0000231A-\U000023FF]")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_NUMBERED = re.compile(r"\d+[.)]\s+\S")  # at a line start, after any spaces: count_line_items
def count_numbered(text: str) -> int:
    """Lines that start (after spaces) with "1." or "2)" and text."""
    return count_line_items(text, _NUMBERED)


_FIRST_PERSON = re.compile(r"\b(i|me|my|mine|myself)\b", re.IGNORECASE)
OPENERS = ("Great question!", "Sure,", "Hello!", "In short,", "Here is my answer:")


def bounded(count: int, bound: str, limit: int) -> bool:
    return count <= limit if bound == "at most" else count > limit


class _BoundType(ConstraintType):
    """Shared shape: '<thing> at most N' and its exact complement 'more than N'."""

    noun: str = ""
    limits: tuple[int, ...] = ()

    def count(self, view: ResponseView) -> int:
        raise NotImplementedError

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        found = self.count(view)
        return Verdict(bounded(found, kw.bound, kw.limit), f"{found} {self.noun}; needs {kw.bound} {kw.limit}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        if kw.bound == "at most" and kw.limit == 0:
            return _pick(rng, (f"Use no {self.noun} at all.", f"Your reply must have no {self.noun}."))
        return _pick(rng, (f"Use {kw.bound} {kw.limit} {self.noun}.", f"Your reply must have {kw.bound} {kw.limit} {self.noun}."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"bound": _BOUND_FLIP[kw.bound], "limit": kw.limit}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"bound": rng.choice(["at most", "more than"]), "limit": rng.choice(self.limits)}


class BoundKwargs(Kwargs):
    bound: Bound
    limit: int = Field(ge=0)


@register
class EmojiCount(_BoundType):
    id, Kwargs, noun, limits, group = "reverso:emoji_count", BoundKwargs, "emojis", (0, 1, 2), "reverso:emoji"

    def count(self, view: ResponseView) -> int:
        return len(_EMOJI.findall(view.text))


@register
class CharacterCount(_BoundType):
    id, Kwargs, noun, limits, group = "reverso:character_count", BoundKwargs, "characters (spaces included)", (250, 350, 450), "length:chars"

    def count(self, view: ResponseView) -> int:
        return len(view.text)


@register
class LineCount(_BoundType):
    id, Kwargs, noun, limits, group = "reverso:line_count", BoundKwargs, "non-empty lines", (1, 3, 5), "length:lines"

    def count(self, view: ResponseView) -> int:
        return sum(1 for line in view.lines if line.strip())


@register
class BlankLineParagraphs(_BoundType):
    id, Kwargs, noun, limits, group = "reverso:paragraph_count", BoundKwargs, "paragraphs (separated by blank lines)", (1, 2, 3), "length:blank_paragraphs"

    def count(self, view: ResponseView) -> int:
        return sum(1 for part in re.split(r"\n\s*\n", view.text) if part.strip())


@register
class QuestionCount(_BoundType):
    id, Kwargs, noun, limits, group = "reverso:question_marks", BoundKwargs, "question marks", (0, 1, 2), "punctuation:questions"

    def count(self, view: ResponseView) -> int:
        return view.text.count("?")


class RangeKwargs(Kwargs):
    min_words: int = Field(ge=0)
    max_words: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RangeKwargs:
        if self.min_words > self.max_words:
            raise ValueError("min_words must not exceed max_words")
        return self


@register
class WordRange(ConstraintType):
    id, Kwargs, group = "reverso:word_range", RangeKwargs, "length:words"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = len(view.words)
        return Verdict(kw.min_words <= count <= kw.max_words, f"{count} words; needs {kw.min_words}-{kw.max_words}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Answer in {kw.min_words} to {kw.max_words} words.",
                           f"Your response should be between {kw.min_words} and {kw.max_words} words long."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Use fewer than {kw.min_words} or more than {kw.max_words} words."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        low = rng.choice([10, 20, 30])
        return {"min_words": low, "max_words": low + rng.choice([20, 40])}


class PhraseKwargs(Kwargs):
    phrase: str = Field(min_length=1)


@register
class MustMention(ConstraintType):
    id, Kwargs, group = "reverso:must_mention", PhraseKwargs, "reverso:mention"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        # Whole words, any case: "very" is not mentioned by "every" (the rule says "the word").
        pattern = r"(?<!\w)" + re.escape(kw.phrase.strip()) + r"(?!\w)"
        ok = re.search(pattern, view.text, flags=re.IGNORECASE) is not None
        return Verdict(ok, f"{kw.phrase!r} {'mentioned' if ok else 'not mentioned'} as a whole word")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Use the word \"{kw.phrase}\" somewhere in your reply.",
                           f"Be sure to say the word \"{kw.phrase}\"."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return "reverso:must_not_mention", {"phrase": kw.phrase}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"phrase": rng.choice(KEYWORD_POOL)}


@register
class MustNotMention(MustMention):
    id, group = "reverso:must_not_mention", "reverso:mention"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        verdict = super().check(kw, view, context)
        return Verdict(not verdict.passed, verdict.reason)

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Never use the word \"{kw.phrase}\".", f"Do not use the word \"{kw.phrase}\" at all."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return "reverso:must_mention", {"phrase": kw.phrase}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"phrase": rng.choice(["very", "really", "basically", "actually", "just"])}


@register
class StartsWith(ConstraintType):
    id, Kwargs, group = "reverso:starts_with", PhraseKwargs, "position:start"
    conflicts = frozenset({"position:wrap", "format:json", "format:title"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok = view.stripped.lower().startswith(kw.phrase.strip().lower())
        return Verdict(ok, "starts with the phrase" if ok else f"does not start with {kw.phrase!r}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Begin your reply with \"{kw.phrase}\".", f"Start with the exact words: {kw.phrase}"))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not begin your reply with \"{kw.phrase}\"."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"phrase": rng.choice(OPENERS)}


class ItemsKwargs(Kwargs):
    num_items: int = Field(ge=1)


@register
class NumberedList(ConstraintType):
    id, Kwargs, group = "reverso:numbered_list", ItemsKwargs, "format:numbered"
    conflicts = frozenset({"format:json", "format:bullets"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = count_numbered(view.text)
        return Verdict(count == kw.num_items, f"{count} numbered items; needs exactly {kw.num_items}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"Include a numbered list with exactly {kw.num_items} items (lines starting 1. 2. 3. ...), and no "
                "other numbered lines.")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return (f"Do not write exactly {kw.num_items} numbered lines (lines starting 1. 2. ...); any other count, "
                "or none, is fine.")

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_items": rng.choice([2, 3, 4])}


class _Absence(ConstraintType):
    """'No X' types: pass when the pattern never matches."""

    pattern: re.Pattern[str]
    what = ""
    phrasings: tuple[str, ...] = ()
    negated = ""

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        found = self.pattern.findall(view.text)
        return Verdict(not found, f"{len(found)} {self.what}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, self.phrasings)

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return self.negated


@register
class NoUrls(_Absence):
    id, pattern, what = "reverso:no_urls", _URL, "links"
    phrasings = ("Do not include any links starting with http://, https:// or www.",
                 "Never paste links (http://, https://, www.) in your reply.")
    negated = "Include at least one web link starting with http://, https:// or www."


@register
class NoExclamation(_Absence):
    id, pattern, what = "reverso:no_exclamation", re.compile("!"), "exclamation marks"
    phrasings = ("Do not use exclamation marks.", "Keep a calm tone: no exclamation marks at all.")
    negated = "Use at least one exclamation mark."


@register
class NoDigits(_Absence):
    id, pattern, what = "reverso:no_digits", re.compile(r"[0-9]"), "digits"
    phrasings = ("Do not use any digits (0-9); spell numbers out in words.", "Write no numerals (0-9) in your reply.")
    negated = "Include at least one number written with digits (0-9)."


@register
class NoFirstPerson(_Absence):
    id, pattern, what = "reverso:no_first_person", _FIRST_PERSON, "first-person words"
    phrasings = ("Do not refer to yourself: avoid the words I, me, my, mine and myself.",
                 "Write without first-person pronouns (I, me, my).")
    negated = "Refer to yourself at least once (use I, me or my)."


@register
class NoCapitals(_Absence):
    """Lowercase without IFEval's language check, so its complement is exactly "a capital letter"."""

    id, pattern, what = "reverso:no_capitals", re.compile("[A-Z]"), "capital letters"  # check() adds non-ASCII
    group, conflicts = "case:lower", frozenset({"case:upper", "case:capital_words"})
    phrasings = ("Write everything in lowercase letters only; no capital letters at all.",
                 "Do not use any capital letters anywhere in your reply.")
    negated = "Use at least one capital letter in your response."

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        found = sum(1 for ch in view.text if ch.isupper())
        return Verdict(not found, f"{found} capital letters")


@register
class EndsWithQuestion(ConstraintType):
    id, group = "reverso:ends_with_question", "position:end"
    conflicts = frozenset({"position:wrap", "format:json", "content:postscript"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok = view.stripped.endswith("?")
        return Verdict(ok, "ends with a question" if ok else "does not end with a question mark")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, ("End your reply with a question to the user.", "Finish with a follow-up question."))

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not end your reply with a question."


class JsonKeysKwargs(Kwargs):
    keys: list[str] = Field(min_length=1)


@register
class JsonKeys(ConstraintType):
    id, Kwargs, group = "reverso:json_keys", JsonKeysKwargs, "format:json"
    conflicts = frozenset({"format:title", "format:bullets", "position:end", "position:wrap", "position:start",
                           "content:postscript", "case:lower", "format:numbered"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok, value, problem = view.json_parsed
        if not ok or not isinstance(value, dict):
            return Verdict(False, problem or "not a JSON object")
        missing = [key for key in kw.keys if key not in value]
        return Verdict(not missing, f"missing keys {missing}" if missing else "all keys present")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return f"Reply with a JSON object that has the keys {json.dumps(kw.keys)}."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not reply with a JSON object containing all of the keys {json.dumps(kw.keys)}."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"keys": rng.sample(["answer", "summary", "tips", "steps", "title"], 2)}


@register
class MentionsUserName(ConstraintType):
    id, group = "reverso:mentions_user_name", "reverso:user_name"
    sampled = False  # needs CheckContext.user_name, which generated sessions do not carry

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        name = (context.user_name or "").strip()
        ok = bool(name) and re.search(r"\b" + re.escape(name) + r"\b", view.text, re.IGNORECASE) is not None
        return Verdict(ok, f"user name {name!r} {'used' if ok else 'not used'}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return "Address the user by their name."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not address the user by their name."
