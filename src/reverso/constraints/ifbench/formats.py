"""IFBench's format instruction ids (see ``reverso.constraints.ifbench``); linear where the reference is not."""

from __future__ import annotations

import re
import string
from collections import defaultdict, deque
from typing import Any

from reverso.constraints.base import ResponseView
from reverso.constraints.ifbench.base import OptionsKwargs, Rule, SepKwargs, register_rules
from reverso.constraints.ifbench.text import PUNCTUATION, PUNCTUATION_AND_SPACE, drop_punctuation, split_into_sentences

_PAIRS = {")": "(", "]": "[", "}": "{"}


def _parentheses(kw: Any, view: ResponseView) -> tuple[bool, str]:
    levels: list[str] = []
    deepest = 0
    for char in view.text:
        if char in "([{":
            levels.append(char)
            deepest = max(deepest, len(levels))
        elif char in _PAIRS:
            if levels and levels[-1] == _PAIRS[char]:
                levels.pop()
                if deepest >= 5 and len(levels) < deepest:
                    return True, f"brackets nested {deepest} deep"
            else:  # a mismatch resets, as in the reference
                levels, deepest = [], 0
    return False, "no bracket group closed at 5 levels deep"


def _quotes(kw: Any, view: ResponseView) -> tuple[bool, str]:
    levels: list[str] = []
    reached = 0
    for char in view.text:
        if levels and char == levels[-1]:
            levels.pop()
            if reached - len(levels) >= 3:
                return True, "quotes nested 3 deep"
        elif char in "\"'":
            levels.append(char)
            reached = max(reached, len(levels))
    return False, "quotes not nested 3 deep"


def _options(kw: Any, view: ResponseView) -> tuple[bool, str]:
    text = kw.options
    strict = re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", text) is not None
    separator = "/" if "/" in text else "or" if "or" in text else ","
    options = [option.strip() for option in text.split(separator)]
    if strict:
        ok = view.text in options
    else:
        answer = view.text.strip(PUNCTUATION_AND_SPACE).lower()
        ok = any(option.strip(PUNCTUATION_AND_SPACE).lower() == answer for option in options)
    return ok, "one of the options" if ok else f"not exactly one of {options}"


def _word_per_line(kw: Any, view: ResponseView) -> tuple[bool, str]:
    text = drop_punctuation(view.text).strip()
    lines = [line for line in text.split("\n") if line != ""]
    words = len(text.split())
    return len(lines) == words, f"{len(lines)} lines for {words} words"


def _surviving_lines(lines: list[str]) -> list[str]:
    """What ``for line in lines: if not line.strip(): lines.remove(line)`` leaves, in linear time.

    Removing while iterating skips the element after each removal; ``remove`` takes the first equal
    line still there (an earlier skipped blank, or this one). The reference's loop is quadratic.
    """
    alive = [True] * len(lines)
    blanks: defaultdict[str, deque[int]] = defaultdict(deque)  # alive blank lines by value, in order
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip():
            index += 1
            continue
        blanks[line].append(index)
        alive[blanks[line].popleft()] = False
        if index + 1 < len(lines) and not lines[index + 1].strip():
            blanks[lines[index + 1]].append(index + 1)  # skipped: stays, and may be removed later
        index += 2
    return [line for line, kept in zip(lines, alive, strict=True) if kept]


def _stairs(kw: Any, view: ResponseView) -> tuple[bool, str]:
    indents = [len(line) - len(line.lstrip(" ")) for line in _surviving_lines(view.text.split("\n"))]
    bad = next((i for i in range(len(indents) - 1) if indents[i + 1] <= indents[i]), None)
    return bad is None, "each line indented further" if bad is None else f"line {bad + 2} is not indented further"


def _quote_explained(kw: Any, view: ResponseView) -> tuple[bool, str]:
    text = view.text.replace("“", '"').replace("”", '"').replace("'\"'", "")
    text = "".join(text.split())
    if '""' in text:
        return False, "a quote directly followed by another"
    rest = text.strip(string.digits + PUNCTUATION.replace('"', ""))
    if not rest:  # the reference raises IndexError here
        return False, "no text"
    return rest[-1] != '"', "ends with a quote" if rest[-1] == '"' else "every quote is explained"


def _special_list(kw: Any, view: ResponseView) -> tuple[bool, str]:
    count = view.text.count(kw.sep)  # non-overlapping, as re.findall(re.escape(sep))
    return count >= 2, f"{count} {kw.sep!r} markers; needs 2"


def _thesis(kw: Any, view: ResponseView) -> tuple[bool, str]:
    start = view.text.find("<i>")
    if start == -1:
        start = view.text.find("<em>")
        if start == -1:
            return False, "no <i> or <em>"
    text = view.text[start:]
    end = text.find("</i>")
    if end == -1:
        end = text.find("</em>")
        if end == -1:
            return False, "italics never closed"
    if not text[3:end].strip():  # offsets of <i>, also for <em>: the reference's
        return False, "empty thesis"
    return bool(text[end + 4:].strip()), "thesis then text"


def _sub_bullets(kw: Any, view: ResponseView) -> tuple[bool, str]:
    bad = next((part for part in view.text.split("*")[1:] if "-" not in part), None)
    return bad is None, "every * bullet has a - sub-bullet" if bad is None else "a * bullet without a - sub-bullet"


def _sentences_then_bullets(kw: Any, view: ResponseView) -> tuple[bool, str]:
    in_sentences, sentence_count, bullets = True, 0, 0
    for line in view.text.split("\n"):
        if line.strip().startswith("*"):
            in_sentences = False
            if sentence_count < 2:
                return False, f"bullets after {sentence_count} sentences"
            bullets += 1
        elif in_sentences:
            found = split_into_sentences(line.strip())
            sentence_count += len(found)
            in_sentences = bool(found)  # the reference reuses its flag for this list
        else:
            return False, "text after the bullets (or after a blank line)"
    return bullets >= 2, f"{sentence_count} sentences, {bullets} bullets"


def _title_case(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for word in view.nltk_words:
        head, tail = word[0], word[1:]
        if head.islower() and (tail.isupper() or tail.islower()):
            return False, f"{word!r} is not capitalised"
    return True, "title case"


def _template(kw: Any, view: ResponseView) -> tuple[bool, str]:
    missing = [part for part in ("My Answer:", "My Conclusion:", "Future Outlook:") if part not in view.text]
    return not missing, f"missing {missing}" if missing else "template used"


def _no_whitespace(kw: Any, view: ResponseView) -> tuple[bool, str]:
    ok = not any(char.isspace() for char in view.text)
    return ok, "no whitespace" if ok else "contains whitespace"


register_rules([
    Rule("format:parentheses", "Nest parentheses (and [brackets {{and braces}}]) at least 5 levels deep.",
         _parentheses),
    Rule("format:quotes", "Nest quotes three levels deep, alternating double and single quotes.", _quotes),
    Rule("format:options", "Answer with one of the following options: {options}. Do not explain.", _options,
         OptionsKwargs, lambda rng: {"options": rng.choice(["yes/no/maybe", "I know or I don't know",
                                                            "a), b), c), d)"])}),
    Rule("format:newline", "Write each word on a new line.", _word_per_line),
    Rule("format:line_indent", "Create stairs: indent each new line further than the one before.", _stairs),
    Rule("format:quote_unquote", "Follow every quoted phrase with an unquoted explanation.", _quote_explained),
    Rule("format:list", "Answer with a list of items, using {sep} instead of bullet points.", _special_list,
         SepKwargs, lambda rng: {"sep": rng.choice(["...", "SEPARATOR", "!?!?", "-"])}),
    Rule("format:thesis", "Begin each section with a thesis statement in HTML italics.", _thesis),
    Rule("format:sub-bullets", "Use * bullet points, each with at least one - sub-bullet.", _sub_bullets),
    Rule("format:no_bullets_bullets", "Write at least two sentences, then at least two * bullet points.",
         _sentences_then_bullets),
    Rule("format:title_case", "Write the entire response in title case.", _title_case),
    Rule("format:output_template", "Use the template: My Answer: [answer] My Conclusion: [conclusion] Future "
         "Outlook: [outlook]", _template),
    Rule("format:no_whitespace", "Do not use any whitespace.", _no_whitespace),
])
