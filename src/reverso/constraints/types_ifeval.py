"""The remaining IFEval instruction types, with IFEval's ids, kwargs and checking semantics."""

from __future__ import annotations

import random
import re
from typing import Any

from pydantic import Field

from reverso.constraints.base import CheckContext, ConstraintType, Kwargs, ResponseView, Verdict, register
from reverso.constraints.types_basic import _FLIP, KEYWORD_POOL, Relation, _pick, compare

CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
LANGUAGES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian", "pt": "Portuguese"}
_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")
_STAR_PARAGRAPHS = re.compile(r"\s?\*\*\*\s?")


class KeywordFrequencyKwargs(Kwargs):
    keyword: str = Field(min_length=1)
    frequency: int = Field(ge=1)
    relation: Relation


@register
class KeywordFrequency(ConstraintType):
    id = "keywords:frequency"
    Kwargs = KeywordFrequencyKwargs
    group = "keywords:frequency"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = len(re.findall(re.escape(kw.keyword), view.text, flags=re.IGNORECASE))
        ok = compare(count, kw.relation, kw.frequency)
        return Verdict(ok, f"{kw.keyword!r} appears {count} times; needs {kw.relation} {kw.frequency}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        # IFEval counts the keyword inside longer words too ("river" in "rivers"): the text says so.
        return _pick(rng, (f"In your response, '{kw.keyword}' should appear {kw.relation} {kw.frequency} times "
                           "(any case, counting it inside longer words too).",
                           f"Write '{kw.keyword}' {kw.relation} {kw.frequency} times (occurrences inside longer "
                           "words count)."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"keyword": kw.keyword, "frequency": kw.frequency, "relation": _FLIP[kw.relation]}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"keyword": rng.choice(KEYWORD_POOL), "frequency": rng.choice([1, 2, 3]),
                "relation": rng.choice(["less than", "at least"])}


class LanguageKwargs(Kwargs):
    language: str = Field(min_length=2, max_length=5)


@register
class ResponseLanguage(ConstraintType):
    id = "language:response_language"
    Kwargs = LanguageKwargs
    group = "language"
    sampled = False  # a 135M English model cannot answer in other languages; kept for official files

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        detected = view.language
        ok = detected is None or detected == kw.language  # IFEval counts undetectable text as a pass
        return Verdict(ok, f"detected language {detected}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        name = LANGUAGES.get(kw.language, kw.language)
        return f"Your ENTIRE response should be in {name} language, no other language is allowed."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not write your response in {LANGUAGES.get(kw.language, kw.language)}."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"language": rng.choice(sorted(LANGUAGES))}


class SentencesKwargs(Kwargs):
    num_sentences: int = Field(ge=1)
    relation: Relation


@register
class NumberSentences(ConstraintType):
    id = "length_constraints:number_sentences"
    Kwargs = SentencesKwargs
    group = "length:sentences"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = len(view.sentences)
        return Verdict(compare(count, kw.relation, kw.num_sentences),
                       f"{count} sentences; needs {kw.relation} {kw.num_sentences}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return _pick(rng, (f"Your response should contain {kw.relation} {kw.num_sentences} sentences.",
                           f"Write {kw.relation} {kw.num_sentences} sentences."))

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"num_sentences": kw.num_sentences, "relation": _FLIP[kw.relation]}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_sentences": rng.choice([3, 4, 5, 6]), "relation": rng.choice(["less than", "at least"])}


class ParagraphsKwargs(Kwargs):
    num_paragraphs: int = Field(ge=1)


@register
class NumberParagraphs(ConstraintType):
    id = "length_constraints:number_paragraphs"
    Kwargs = ParagraphsKwargs
    group = "format:paragraphs"

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        parts = _STAR_PARAGRAPHS.split(view.text)
        count = len(parts)
        for index, part in enumerate(parts):
            if not part.strip():
                if index in (0, len(parts) - 1):
                    count -= 1
                else:
                    return Verdict(False, "an empty paragraph between *** dividers")
        return Verdict(count == kw.num_paragraphs, f"{count} paragraphs; needs exactly {kw.num_paragraphs}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"There should be {kw.num_paragraphs} paragraphs. Paragraphs are separated with the markdown "
                "divider: ***")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Do not write exactly {kw.num_paragraphs} paragraphs separated by the markdown divider ***."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_paragraphs": rng.choice([2, 3])}


class NthParagraphKwargs(Kwargs):
    num_paragraphs: int = Field(ge=1)
    nth_paragraph: int = Field(ge=1)
    first_word: str = Field(min_length=1)


@register
class NthParagraphFirstWord(ConstraintType):
    id = "length_constraints:nth_paragraph_first_word"
    Kwargs = NthParagraphKwargs
    group = "format:paragraphs"
    sampled = False  # too hard to satisfy for small models; kept for official files

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        paragraphs = view.text.split("\n\n")
        count = sum(1 for p in paragraphs if p.strip())
        if kw.nth_paragraph > count or not paragraphs[kw.nth_paragraph - 1].strip():
            return Verdict(False, f"no paragraph {kw.nth_paragraph} ({count} paragraphs)")
        word = paragraphs[kw.nth_paragraph - 1].strip().split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for letter in word:
            if letter in ".,?!'\"":
                break
            first += letter.lower()
        ok = count == kw.num_paragraphs and first == kw.first_word.lower()
        return Verdict(ok, f"{count} paragraphs, paragraph {kw.nth_paragraph} starts with {first!r}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"There should be {kw.num_paragraphs} paragraphs, separated by two new lines. Paragraph "
                f"{kw.nth_paragraph} must start with the word {kw.first_word}.")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return (f"Do not write exactly {kw.num_paragraphs} blank-line-separated paragraphs with paragraph "
                f"{kw.nth_paragraph} starting with the word {kw.first_word}.")

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        paragraphs = rng.choice([2, 3])
        return {"num_paragraphs": paragraphs, "nth_paragraph": rng.randint(1, paragraphs),
                "first_word": rng.choice(["first", "then", "finally", "also"])}


class PlaceholderKwargs(Kwargs):
    num_placeholders: int = Field(ge=1)


def count_placeholders(text: str) -> int:
    """``len(re.findall(r"\\[.*?\\]", text))`` in linear time: per line, each ``[`` up to the next ``]``.

    The regex retries every ``[`` of a line without ``]`` and rescans it: quadratic on ``[[[[...``.
    """
    count = 0
    for line in text.split("\n"):
        position = 0
        while (start := line.find("[", position)) >= 0:
            end = line.find("]", start + 1)
            if end < 0:
                break
            count += 1
            position = end + 1
    return count


@register
class Placeholders(ConstraintType):
    id = "detectable_content:number_placeholders"
    Kwargs = PlaceholderKwargs
    group = "content:placeholders"
    conflicts = frozenset({"format:json"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = count_placeholders(view.text)
        return Verdict(count >= kw.num_placeholders, f"{count} [placeholders]; needs at least {kw.num_placeholders}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"The response must contain at least {kw.num_placeholders} placeholders represented by square "
                "brackets, such as [address].")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Use fewer than {kw.num_placeholders} placeholders in square brackets (like [name])."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_placeholders": rng.choice([1, 2])}


@register
class ConstrainedResponse(ConstraintType):
    id = "detectable_format:constrained_response"
    group = "format:whole"
    conflicts = frozenset({"format:json", "length:words", "length:sentences", "format:bullets"})
    sampled = False  # it decides the whole answer; kept for official files

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok = any(option in view.stripped for option in CONSTRAINED_OPTIONS)
        return Verdict(ok, "contains an allowed answer" if ok else "none of the allowed answers")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return "Answer with one of the following options: " + ", ".join(CONSTRAINED_OPTIONS)

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not answer with any of these phrases: " + ", ".join(CONSTRAINED_OPTIONS)


class HighlightKwargs(Kwargs):
    num_highlights: int = Field(ge=1)


@register
class HighlightedSections(ConstraintType):
    id = "detectable_format:number_highlighted_sections"
    Kwargs = HighlightKwargs
    group = "format:highlights"
    conflicts = frozenset({"format:json"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = sum(1 for h in _HIGHLIGHT.findall(view.text) if h.strip("*").strip())
        count += sum(1 for h in _DOUBLE_HIGHLIGHT.findall(view.text) if h.removeprefix("**").removesuffix("**").strip())
        return Verdict(count >= kw.num_highlights, f"{count} highlighted sections; needs {kw.num_highlights}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"Highlight at least {kw.num_highlights} sections in your answer with markdown, "
                "i.e. *highlighted section*.")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return f"Highlight fewer than {kw.num_highlights} sections with markdown asterisks."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"num_highlights": rng.choice([1, 2, 3])}


class SectionsKwargs(Kwargs):
    section_spliter: str = Field(min_length=1)
    num_sections: int = Field(ge=1)


@register
class MultipleSections(ConstraintType):
    id = "detectable_format:multiple_sections"
    Kwargs = SectionsKwargs
    group = "format:sections"
    conflicts = frozenset({"format:json", "format:paragraphs"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        pattern = r"\s?" + re.escape(kw.section_spliter) + r"\s?\d+\s?"
        count = len(re.split(pattern, view.text)) - 1
        return Verdict(count >= kw.num_sections, f"{count} sections marked {kw.section_spliter!r}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"Your response must have at least {kw.num_sections} sections. Mark the beginning of each section "
                f"with {kw.section_spliter} X, such as: {kw.section_spliter} 1 (exactly that capitalisation)")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return (f"Write '{kw.section_spliter}' followed by a number (as in {kw.section_spliter} 1) fewer than "
                f"{kw.num_sections} times.")

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"section_spliter": rng.choice(["Section", "SECTION", "Part"]), "num_sections": rng.choice([2, 3])}


@register
class TwoResponses(ConstraintType):
    id = "combination:two_responses"
    group = "format:whole"
    conflicts = frozenset({"format:json", "position:wrap", "position:end", "position:start"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        parts = view.text.split("******")
        valid = []
        for index, part in enumerate(parts):
            if not part.strip():
                if index not in (0, len(parts) - 1):
                    return Verdict(False, "an empty response between ****** separators")
            else:
                valid.append(part)
        ok = len(valid) == 2 and valid[0].strip() != valid[1].strip()
        return Verdict(ok, f"{len(valid)} responses separated by ******")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not give two separate responses divided by ******; give one answer."


class RepeatKwargs(Kwargs):
    prompt_to_repeat: str = Field(min_length=1)


@register
class RepeatPrompt(ConstraintType):
    id = "combination:repeat_prompt"
    Kwargs = RepeatKwargs
    group = "position:start"
    sampled = False  # its kwargs carry the request text; built by loaders, not the sampler

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        ok = view.stripped.lower().startswith(kw.prompt_to_repeat.strip().lower())
        return Verdict(ok, "starts by repeating the request" if ok else "does not start with the request")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return ("First repeat the request word for word without change, then give your answer (do not say "
                "anything before repeating the request).")

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not begin your answer by repeating the request."

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"prompt_to_repeat": context.prompt or "Tell me about rivers."}


class CapitalFrequencyKwargs(Kwargs):
    capital_frequency: int = Field(ge=1)
    capital_relation: Relation


@register
class CapitalWordFrequency(ConstraintType):
    id = "change_case:capital_word_frequency"
    Kwargs = CapitalFrequencyKwargs
    group = "case:capital_words"
    conflicts = frozenset({"case:lower", "case:upper"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        count = sum(1 for word in view.nltk_words if word.isupper())
        return Verdict(compare(count, kw.capital_relation, kw.capital_frequency),
                       f"{count} ALL-CAPS words; needs {kw.capital_relation} {kw.capital_frequency}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return (f"In your response, words with all capital letters (I and OK count) should appear "
                f"{kw.capital_relation} {kw.capital_frequency} times.")

    def reverse(self, kw: Any) -> tuple[str, dict[str, Any]]:
        return self.id, {"capital_frequency": kw.capital_frequency, "capital_relation": _FLIP[kw.capital_relation]}

    def sample(self, rng: random.Random, context: CheckContext) -> dict[str, Any]:
        return {"capital_frequency": rng.choice([1, 2, 3]), "capital_relation": rng.choice(["less than", "at least"])}


@register
class EnglishCapital(ConstraintType):
    id = "change_case:english_capital"
    group = "case:upper"
    # Same as english_lowercase: the complement depends on langdetect, so it is not sampled.
    sampled, reversible = False, False
    conflicts = frozenset({"case:lower", "case:capital_words"})

    def check(self, kw: Any, view: ResponseView, context: CheckContext) -> Verdict:
        if not view.text.isupper():
            return Verdict(False, "contains lowercase letters or no letters")
        ok = view.language in ("en", None)  # IFEval counts undetectable language as English
        return Verdict(ok, "all capitals, English" if ok else f"capitals but language is {view.language}")

    def describe(self, kw: Any, rng: random.Random) -> str:
        return "Your entire response should be in English, and in all capital letters."

    def describe_negated(self, kw: Any, rng: random.Random) -> str:
        return "Do not write your whole response in capital letters; use lowercase letters too."

