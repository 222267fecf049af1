"""Text analysis for IFBench's checkers, with IFBench's own definitions (Pyatkin et al. 2025).

IFBench splits sentences with IFEval's regex splitter (not Punkt), strips ASCII punctuation with
``string.punctuation``, reads stop words from NLTK's English list, syllables from ``syllapy`` and
emoji from ``emoji``. Each helper here is linear in the text length.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Any

PUNCTUATION = string.punctuation
PUNCTUATION_AND_SPACE = PUNCTUATION + " "
_DROP_PUNCTUATION = str.maketrans("", "", PUNCTUATION)

# IFEval's sentence splitter (lm-eval's and IFBench's ``split_into_sentences``), step by step.
_ALPHABETS = "([A-Za-z])"
_PREFIXES = re.compile("(Mr|St|Mrs|Ms|Dr)[.]")
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = (r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s|However\s|That\s"
             r"|This\s|Wherever)")
_ACRONYMS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_STEPS = (
    (re.compile("[.](com|net|org|io|gov|edu|me)"), "<prd>\\1"),
    (re.compile("([0-9])[.]([0-9])"), "\\1<prd>\\2"),
)
_LATER_STEPS = (
    (re.compile(r"\s" + _ALPHABETS + "[.] "), " \\1<prd> "),
    (re.compile(_ACRONYMS + " " + _STARTERS), "\\1<stop> \\2"),
    (re.compile(_ALPHABETS + "[.]" + _ALPHABETS + "[.]" + _ALPHABETS + "[.]"), "\\1<prd>\\2<prd>\\3<prd>"),
    (re.compile(_ALPHABETS + "[.]" + _ALPHABETS + "[.]"), "\\1<prd>\\2<prd>"),
    (re.compile(" " + _SUFFIXES + "[.] " + _STARTERS), " \\1<stop> \\2"),
    (re.compile(" " + _SUFFIXES + "[.]"), " \\1<prd>"),
    (re.compile(" " + _ALPHABETS + "[.]"), " \\1<prd>"),
)
_MULTIPLE_DOTS = re.compile(r"\.{2,}")

# NLTK's English stop words (nltk_data corpora/stopwords/english). IFBench matches them against
# r"\w+" tokens, so only entries without an apostrophe can ever match; those are listed.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she her hers
herself it its itself they them their theirs themselves what which who whom this that these those am is
are was were be been being have has had having do does did doing a an the and but if or because as until
while of at by for with about against between into through during before after above below to from up
down in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don should now
d ll m o re ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn
weren won wouldn
""".split())


def drop_punctuation(text: str) -> str:
    return text.translate(_DROP_PUNCTUATION)


def split_into_sentences(text: str) -> list[str]:
    """IFEval's regex sentence splitter, exactly (the reference's ``instructions_util``)."""
    text = (" " + text + "  ").replace("\n", " ")
    text = _PREFIXES.sub("\\1<prd>", text)
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    text = _MULTIPLE_DOTS.sub(lambda match: "<prd>" * len(match.group(0)) + "<stop>", text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    for pattern, replacement in _LATER_STEPS:
        text = pattern.sub(replacement, text)
    for old, new in ((".”", "”."), ('."', '".'), ('!"', '"!'), ('?"', '"?')):
        text = text.replace(old, new)  # the sentence end moves after a closing quote
    text = text.replace(".", ".<stop>").replace("?", "?<stop>").replace("!", "!<stop>").replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    if sentences and not sentences[-1]:
        sentences = sentences[:-1]
    return sentences


def stopword_count(words: list[str]) -> int:
    return sum(1 for word in words if word.lower() in STOPWORDS)


def is_emoji(char: str) -> bool:
    import emoji

    return bool(emoji.is_emoji(char))


def syllables(word: str) -> int:
    """syllapy's count; IFBench's checker passes words without punctuation, so no compound recursion."""
    import syllapy

    return int(syllapy.count(word))


@lru_cache(maxsize=1)
def _tagger() -> Any:
    """NLTK's perceptron tagger (what ``nltk.pos_tag`` uses), or None when its data is not installed."""
    import nltk
    from nltk.tag import PerceptronTagger

    try:
        nltk.data.find("taggers/averaged_perceptron_tagger_eng/")
    except LookupError:
        return None
    return PerceptronTagger()


def first_tag(tokens: list[str]) -> str | None:
    """The tag ``nltk.pos_tag(tokens)`` gives the first token ("" for no tokens), None without data.

    The perceptron's features for a token reach two tokens ahead, so tagging the first three gives
    the first tag of the whole list.
    """
    tagger = _tagger()
    if tagger is None:
        return None
    return str(tagger.tag(tokens[:3])[0][1]) if tokens else ""
