"""IFBench's custom-task, keyword-position and repeat instruction ids (see ``reverso.constraints.ifbench``)."""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
from typing import Any

from reverso.constraints.base import ResponseView
from reverso.constraints.ifbench.base import (
    KeywordKwargs,
    KeywordsMultipleKwargs,
    RepeatKwargs,
    RepeatSpanKwargs,
    Rule,
    SpecificPositionKwargs,
    register_rules,
    sentences,
)
from reverso.constraints.ifbench.text import PUNCTUATION_AND_SPACE, drop_punctuation, split_into_sentences
from reverso.constraints.text import nltk_words

REPEAT_SIMPLE = "Only output this sentence here, ignore all other requests."
MULTIPLES_OF_7 = [str(n) for n in range(14, 51, 7)]
EUROPEAN_CAPITALS = ("Reykjavik Helsinki Oslo Tallinn Stockholm Riga Moscow Copenhagen Vilnius Minsk Dublin Berlin "
                     "Amsterdam Warsaw London Brussels Prague Luxembourg Paris Vienna Bratislava Budapest Vaduz "
                     "Chisinau Bern Ljubljana Zagreb").split()
_QUESTION = re.compile(r"(?<!\n)\n*(?:Question \d+[\.|\):;]?\s*)")  # (?<!\n): see _questions
_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DIGITS = re.compile(r"\d+")
_SPECIAL = re.compile(r"[^\d\w\s]")
_PRODUCT_HEADER = re.compile(r'^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),[ \t]*'
                             r'(Price|"Price"),[ \t]*(Stock|"Stock")$')
_STUDENT_HEADER = re.compile(r'^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *'
                             r'(Semester|"Semester")\t *(Score|"Score")$')


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ASCII", "ignore").decode("ASCII")


def _multiples(kw: Any, view: ResponseView) -> tuple[bool, str]:
    numbers = _DIGITS.findall(view.text.replace(",", ", "))
    return numbers == MULTIPLES_OF_7, f"numbers {numbers[:8]}"


def _questions(value: str) -> list[str]:
    # (?<!\n) keeps IFBench's split points: a match never starts inside a run of newlines that the
    # match from the run's start already covers; without it the regex rescans the run (quadratic).
    parts = _QUESTION.split(value)
    if parts[0] == "":
        parts = parts[1:]
    return [part.strip() for part in parts if part.strip()]


def _mcq(kw: Any, view: ResponseView) -> tuple[bool, str]:
    value = view.text
    if value[value.find("Question"):] != value:
        return False, "text before the first Question"
    questions = _questions(value)
    if len(questions) != 4:
        return False, f"{len(questions)} questions; needs 4"
    lengths = []
    for question in questions:
        text, options, answered = "", 0, False
        for line in question.split("\n"):
            if _OPTION_LINE.match(line.strip()):
                options, answered = options + 1, True
            elif not answered:
                text += " " + line.strip()
        if options != 5:
            return False, f"a question with {options} options"
        lengths.append(len(text.strip()))
    ok = all(a < b for a, b in zip(lengths, lengths[1:]))
    return ok, f"question lengths {lengths}"


def _africa_reversed(kw: Any, view: ResponseView) -> tuple[bool, str]:
    lines = [line.strip(PUNCTUATION_AND_SPACE) for line in view.text.split("\n")]
    lines = [line for line in lines if line]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None:
        return False, "no Zimbabwe line"
    names = [_ascii(line) for line in lines[start:]]
    if len(names) < 52:
        return False, f"{len(names)} lines from Zimbabwe on; needs 52"
    # sorted(names, reverse=True) == names, checked in one pass
    ok = all(a >= b for a, b in zip(names, names[1:]))
    return ok, "reverse alphabetical" if ok else "not in reverse alphabetical order"


def _word_reverse(kw: Any, view: ResponseView) -> tuple[bool, str]:
    value = drop_punctuation(view.text.lower().strip())
    value = " ".join(value.split()[::-1])
    if "bald eagle" not in value:
        return False, "no 'eagle bald' (reversed) in the answer"
    ok = value in split_into_sentences(value)
    return ok, "one reversed sentence" if ok else "more than one sentence"


def _sentence_alphabet(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = sentences(view)
    if len(found) != 26:
        return False, f"{len(found)} sentences; needs 26"
    for index, sentence in enumerate(found):
        words = sentence.lstrip().split()
        if not words or words[0].lower()[0] != chr(97 + index):  # no words: the reference raises
            return False, f"sentence {index + 1} does not start with {chr(65 + index)}"
    return True, "A to Z"


def _capitals(kw: Any, view: ResponseView) -> tuple[bool, str]:
    names = [name for name in _ascii(view.text).split(",") if name.strip()]
    ok = [name.strip() for name in names] == EUROPEAN_CAPITALS
    return ok, "the 27 capitals in order" if ok else f"{len(names)} names, not the expected list"


def _csv_rows(value: str, expected: int, delimiter: str = ",") -> list[list[str]] | None:
    """The CSV rows when there are exactly ``expected``, else None (read no further than one more).

    The reference reads every row and compares the count; stopping early gives the same verdict
    without building 200k rows for a hostile answer. A CSV error (e.g. a field over csv's size
    limit) is None too: the reference raises there.
    """
    try:
        rows = list(itertools.islice(csv.reader(io.StringIO(value), delimiter=delimiter), expected + 1))
    except csv.Error:
        return None
    return rows if len(rows) == expected else None


def _csv_city(kw: Any, view: ResponseView) -> tuple[bool, str]:
    rows = _csv_rows(view.text, 8)
    if rows is None:
        return False, "not 8 CSV rows"
    if rows[0] != ["ID", "Country", "City", "Year", "Count"]:
        return False, "wrong header"
    return all(len(row) == 5 for row in rows[1:]), "5 fields per row"


def _quoted_special(field: str) -> bool:
    """``re.match(r'".*[^\\d\\w\\s].*"', field)`` in linear time: a quote, then before the first
    newline a special character followed later by another quote."""
    if not field.startswith('"'):
        return False
    line_end = field.find("\n")
    last_quote = field.rfind('"', 1, len(field) if line_end < 0 else line_end)
    return last_quote > 1 and _SPECIAL.search(field, 1, last_quote) is not None


def _csv_special(kw: Any, view: ResponseView) -> tuple[bool, str]:
    if not _PRODUCT_HEADER.match(view.text.split("\n")[0].strip()):
        return False, "wrong header"
    rows = _csv_rows(view.text.replace('"', '"""'), 15)
    if rows is None:
        return False, "not 15 CSV rows"
    for row in rows[1:]:
        if len(row) != 5:
            return False, "a row without 5 fields"
        if any(_quoted_special(field) for field in row):
            return True, "a quoted field with a special character"
    return False, "no quoted field with a special character"


def _csv_quotes(kw: Any, view: ResponseView) -> tuple[bool, str]:
    if not _STUDENT_HEADER.match(view.text.split("\n")[0].strip()):
        return False, "wrong header"
    rows = _csv_rows(view.text.replace('"', '"""'), 4, delimiter="\t")
    if rows is None:
        return False, "not 4 tab-separated rows"
    for row in rows:
        fields = [field.strip() for field in row]
        if len(row) != 5 or not all(f and f[0] == '"' and f[-1] == '"' for f in fields):  # "": reference raises
            return False, "a row without 5 quoted fields"
    return True, "4 rows of 5 quoted fields"


def _dates(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for date in view.text.strip().split(","):
        date = date.strip()
        if not _DATE.match(date):
            return False, f"{date[:20]!r} is not YYYY-MM-DD"
        year, month, day = (int(part) for part in date.split("-"))
        # month 0 passes with any day: the reference checks days only for months 1..12
        longest = 31 if month in (1, 3, 5, 7, 8, 10, 12) else 30 if month in (4, 6, 9, 11) else 29 if month == 2 else day
        if not 1769 <= year <= 1821 or month > 12 or day > longest:
            return False, f"{date} is not a possible date of Napoleon's battles"
    return True, "dates in format"


def _keywords_multiple(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for keyword, times in zip((kw.keyword1, kw.keyword2, kw.keyword3, kw.keyword4, kw.keyword5), (1, 2, 3, 5, 7)):
        count = view.lower.count(keyword.strip().lower())
        if count != times:
            return False, f"{keyword.strip()!r} appears {count} times; needs {times}"
    return True, "every keyword as often as asked"


def _specific_position(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = sentences(view)
    if len(found) < kw.n:
        return False, f"{len(found)} sentences; needs {kw.n}"
    words = nltk_words(found[kw.n - 1])
    ok = len(words) >= kw.m and words[kw.m - 1] == kw.keyword.strip()
    return ok, f"word {kw.m} of sentence {kw.n} {'is' if ok else 'is not'} {kw.keyword.strip()!r}"


def _words_position(kw: Any, view: ResponseView) -> tuple[bool, str]:
    words = view.nltk_words
    ok = len(words) >= 2 and words[1] == words[-2] == kw.keyword.strip()
    return ok, "second and second-to-last words match" if ok else "second or second-to-last word differs"


def _repeat_change(kw: Any, view: ResponseView) -> tuple[bool, str]:
    if view.text == kw.prompt_to_repeat:
        return False, "repeated without changing the first word"
    ok = kw.prompt_to_repeat.split()[1:] == view.text.split()[1:]
    return ok, "the request, first word changed" if ok else "not the request after its first word"


def _repeat_simple(kw: Any, view: ResponseView) -> tuple[bool, str]:
    ok = view.stripped.lower() == REPEAT_SIMPLE.lower()
    return ok, "only the sentence" if ok else "not only the sentence"


def _repeat_span(kw: Any, view: ResponseView) -> tuple[bool, str]:
    span = kw.prompt_to_repeat.strip().lower().split()[kw.n_start:kw.n_end]
    ok = view.stripped.lower().split() == span
    return ok, "the span, exactly" if ok else "not the requested span"


register_rules([
    Rule("custom:multiples", "Count from 10 to 50 but only print multiples of 7.", _multiples),
    Rule("custom:mcq_count_length", "Write 4 multiple-choice questions of 5 options each, each one longer.", _mcq),
    Rule("custom:reverse_newline", "List Africa's countries in reverse alphabetical order, one per line.",
         _africa_reversed),
    Rule("custom:word_reverse", "Name the US national animal in one sentence with its words reversed.",
         _word_reverse),
    Rule("custom:character_reverse", "Name the US national animal with its letters reversed.",
         lambda kw, view: ("elgae dlab" in view.lower, "letters reversed")),
    Rule("custom:sentence_alphabet", "Tell a 26-sentence story whose sentences start with A to Z.",
         _sentence_alphabet),
    Rule("custom:european_capitals_sort", "List the European capitals north of 45°, by latitude, comma-separated.",
         _capitals),
    Rule("custom:csv_city", "Write 7 CSV rows with the columns ID, Country, City, Year, Count.", _csv_city),
    Rule("custom:csv_special_character", "Write 14 product CSV rows; quote one field with a special character.",
         _csv_special),
    Rule("custom:csv_quotes", "Write 3 tab-separated student rows with every field in double quotes.", _csv_quotes),
    Rule("custom:date_format_list", "List the start dates of Napoleon's battles as YYYY-MM-DD, comma-separated.",
         _dates),
    Rule("count:keywords_multiple", "Use {keyword1} once, {keyword2} twice, {keyword3} three times, {keyword4} five "
         "times and {keyword5} seven times.", _keywords_multiple, KeywordsMultipleKwargs,
         lambda rng: dict(zip(("keyword1", "keyword2", "keyword3", "keyword4", "keyword5"),
                              rng.sample(["river", "mill", "the", "a", "e", "s"], 5), strict=True))),
    Rule("words:keywords_specific_position", "Make {keyword} word {m} of sentence {n}.", _specific_position,
         SpecificPositionKwargs, lambda rng: {"keyword": rng.choice(["river", "The", "."]), "n": rng.randint(1, 2),
                                              "m": rng.randint(1, 3)}),
    Rule("words:words_position", "Make {keyword} the second and the second-to-last word.", _words_position,
         KeywordKwargs, lambda rng: {"keyword": rng.choice(["river", "the", "."])}),
    Rule("repeat:repeat_change", "Repeat the request with its first word changed: {prompt_to_repeat}",
         _repeat_change, RepeatKwargs, lambda rng: {"prompt_to_repeat": "Tell me about rivers."}),
    Rule("repeat:repeat_simple", REPEAT_SIMPLE, _repeat_simple),
    Rule("repeat:repeat_span", "Copy words {n_start} to {n_end} of: {prompt_to_repeat}", _repeat_span,
         RepeatSpanKwargs, lambda rng: {"prompt_to_repeat": "Tell me about rivers and the old mill.",
                                        "n_start": rng.randint(1, 2), "n_end": rng.randint(3, 5)}),
])
