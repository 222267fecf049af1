"""IFBench's count, ratio, words and sentence instruction ids (see ``reverso.constraints.ifbench``)."""

from __future__ import annotations

import random
import re
from collections import Counter
from string import ascii_lowercase
from typing import Any

from reverso.constraints.base import ResponseView, Verdict
from reverso.constraints.ifbench.base import (
    JapaneseKwargs,
    KeywordSentenceKwargs,
    NKwargs,
    OverlapKwargs,
    PercentageKwargs,
    Rule,
    SmallNKwargs,
    WordRangeKwargs,
    at_least,
    register_rules,
    sentences,
)
from reverso.constraints.ifbench.text import (
    PUNCTUATION_AND_SPACE,
    drop_punctuation,
    first_tag,
    is_emoji,
    stopword_count,
    syllables,
)

CONJUNCTIONS = ("and", "but", "for", "nor", "or", "so", "yet")
PERSON_NAMES = (
    "Emma Liam Sophia Jackson Olivia Noah Ava Lucas Isabella Mason Mia Ethan Charlotte Alexander Amelia Benjamin "
    "Harper Leo Zoe Daniel Chloe Samuel Lily Matthew Grace Owen Abigail Gabriel Ella Jacob Scarlett Nathan "
    "Victoria Elijah Layla Nicholas Audrey David Hannah Christopher Penelope Thomas Nora Andrew Aria Joseph "
    "Claire Ryan Stella Jonathan").split()
PRONOUNS = frozenset(
    "i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her "
    "hers herself it its itself they them their theirs themselves".split())
PRIMES = frozenset({2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97})
_JAPANESE = re.compile("[\u3040-\u30ff\u4e00-\u9fff]")
_DIGITS = re.compile(r"\d+")


def _word_range(kw: Any, view: ResponseView) -> tuple[bool, str]:
    count = len(view.words)
    return kw.min_words <= count <= kw.max_words, f"{count} words; needs {kw.min_words}..{kw.max_words}"


def _unique_words(kw: Any, view: ResponseView) -> tuple[bool, str]:
    unique = {word.strip(PUNCTUATION_AND_SPACE) for word in view.lower.split()}
    return at_least(len(unique), kw.N, "unique words")


def _stop_words(kw: Any, view: ResponseView) -> tuple[bool, str]:
    if not view.words:  # the reference divides by zero here
        return False, "no words"
    share = stopword_count(view.words) / len(view.words) * 100
    return share <= kw.percentage, f"{share:.1f}% stop words; allowed {kw.percentage}%"


def _sentence_ends(view: ResponseView) -> tuple[int, int, int]:
    found = sentences(view)
    return (sum(s.endswith(".") for s in found), sum(s.endswith("?") for s in found),
            sum(s.endswith("!") for s in found))


def _sentence_type(kw: Any, view: ResponseView) -> tuple[bool, str]:
    statements, questions, _ = _sentence_ends(view)
    return statements == 2 * questions, f"{statements} statements, {questions} questions; needs 2:1"


def _sentence_balance(kw: Any, view: ResponseView) -> tuple[bool, str]:
    ends = _sentence_ends(view)
    return ends[0] == ends[1] == ends[2], f"{ends[0]} statements, {ends[1]} questions, {ends[2]} exclamations"


def _conjunctions(kw: Any, view: ResponseView) -> tuple[bool, str]:
    # The reference counts distinct spellings as written ("And" and "and" are two).
    found = {word for word in view.text.split() if word.strip(PUNCTUATION_AND_SPACE).lower() in CONJUNCTIONS}
    return at_least(len(found), kw.small_n, "different conjunctions")


def _person_names(kw: Any, view: ResponseView) -> tuple[bool, str]:
    return at_least(sum(name in view.text for name in PERSON_NAMES), kw.N, "listed names")


def _trigrams(text: str) -> set[str]:
    return {text[index:index + 3] for index in range(len(text) - 2)}


def _overlap(kw: Any, view: ResponseView) -> tuple[bool, str]:
    mine = _trigrams(view.text)
    if not mine:  # the reference divides by zero on a response under three characters
        return False, "shorter than one trigram"
    share = len(mine & _trigrams(kw.reference_text)) / len(mine)
    ok = kw.percentage - 2 <= share * 100 <= kw.percentage + 2
    return ok, f"{share * 100:.1f}% character-trigram overlap; needs {kw.percentage}±2%"


def _numbers(kw: Any, view: ResponseView) -> tuple[bool, str]:
    count = len(_DIGITS.findall(drop_punctuation(view.text)))
    return count == kw.N, f"{count} numbers; needs exactly {kw.N}"


def _alphabet(kw: Any, view: ResponseView) -> tuple[bool, str]:
    words = drop_punctuation(view.text).strip(PUNCTUATION_AND_SPACE).split()
    if not words:
        return False, "no words"
    letter = words[0][0].lower()
    if letter not in ascii_lowercase:  # a substring test, as the reference's
        return False, f"first word starts with {words[0][0]!r}"
    for word in words[1:]:
        letter = ascii_lowercase[(ascii_lowercase.index(letter) + 1) % 26]
        if word.lower()[0] != letter:
            return False, f"{word!r} should start with {letter!r}"
    return True, "each word starts with the next letter"


def _three_vowels(kw: Any, view: ResponseView) -> tuple[bool, str]:
    if "\n" in view.stripped:
        return False, "more than one paragraph (line)"
    vowels = set(view.stripped.lower()) & set("aeiou")
    return len(vowels) <= 3, f"vowels used: {''.join(sorted(vowels))}"


_CONSONANT_PAIR = re.compile("[bcdfghjklmnpqrstvwxyz]{2}")


def _consonant_clusters(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for word in view.lower.split():
        if not _CONSONANT_PAIR.search(word):
            return False, f"{word!r} has no consonant cluster"
    return True, "every word has a consonant cluster"


def _alliteration(kw: Any, view: ResponseView) -> tuple[bool, str]:
    previous = -1
    for sentence in sentences(view):
        words = [w.lstrip(PUNCTUATION_AND_SPACE) for w in sentence.lower().split()]
        words = [w for w in words if w]
        run, alliterative = 0, False
        for left, right in zip(words, words[1:]):
            if left[0] == right[0]:
                run += 1 if alliterative else 2
                alliterative = True
            else:
                alliterative = False
        if run <= previous:
            return False, f"alliteration {run} after {previous}"
        previous = run
    return True, "alliteration grows sentence by sentence"


def _palindromes(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = [w for w in drop_punctuation(view.text).lower().split() if len(w) >= 5 and w == w[::-1]]
    return at_least(len(found), 10, "palindromes of 5+ letters")


def _punctuation_cover(kw: Any, view: ResponseView) -> tuple[bool, str]:
    text = view.text
    if "!?" not in text and "?!" not in text and "‽" not in text:
        return False, "no interrobang"
    rest = text.replace("?!", "", 1)
    if len(rest) == len(text):
        rest = text.replace("!?", "", 1)
    missing = [mark for mark in ".,!?;:" if mark not in rest]
    return not missing, f"missing {''.join(missing)}" if missing else "every mark used"


def _prime_lengths(kw: Any, view: ResponseView) -> tuple[bool, str]:
    bad = next((w for w in drop_punctuation(view.text).split() if len(w) not in PRIMES), None)
    return bad is None, "every word length is prime" if bad is None else f"{bad!r} has {len(bad)} letters"


def _japanese(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for index, word in enumerate(view.text.split(), start=1):
        word = word.strip(PUNCTUATION_AND_SPACE)
        if index % kw.N == 0 and word and not word.isdigit() and not _JAPANESE.search(word):
            return False, f"word {index} ({word!r}) is not Japanese"
    return True, f"every {kw.N}th word is Japanese"


def _start_verb(kw: Any, view: ResponseView) -> tuple[bool, str] | Verdict:
    tag = first_tag(view.nltk_words)
    if tag is None:  # an error verdict: never a pass, and reported (docs/evaluation.md)
        return Verdict(False, "cannot decide: NLTK's averaged_perceptron_tagger_eng data is not installed", error=True)
    return "VB" in tag, f"first word tagged {tag or 'nothing'}"


def _repeats(kw: Any, view: ResponseView) -> tuple[bool, str]:
    counts = Counter(drop_punctuation(view.lower).split())
    word, most = counts.most_common(1)[0] if counts else ("", 0)
    return most <= kw.small_n, f"{word!r} appears {most} times; at most {kw.small_n}"


def _keyword_sentence(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = sentences(view)
    if len(found) < kw.N:
        return False, f"{len(found)} sentences; keyword needed in sentence {kw.N}"
    ok = kw.word.lower() in found[kw.N - 1].lower()
    return ok, f"sentence {kw.N} {'has' if ok else 'lacks'} {kw.word!r}"


def _pronouns(kw: Any, view: ResponseView) -> tuple[bool, str]:
    words = drop_punctuation(view.text.replace("/", " ").lower()).split()
    return at_least(sum(word in PRONOUNS for word in words), kw.N, "pronouns")


def _syllable_parity(kw: Any, view: ResponseView) -> tuple[bool, str]:
    parities = [syllables(w) % 2 for w in drop_punctuation(view.text).lower().split()]
    same = next((i for i in range(len(parities) - 1) if parities[i] == parities[i + 1]), None)
    return same is None, "parities alternate" if same is None else f"words {same + 1} and {same + 2} share parity"


def _last_first(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = sentences(view)
    for index, (this, after) in enumerate(zip(found, found[1:]), start=1):
        last, first = this.rstrip(PUNCTUATION_AND_SPACE).split(), after.lstrip(PUNCTUATION_AND_SPACE).split()
        if not last or not first:  # the reference raises IndexError here
            return False, f"sentence {index if not last else index + 1} has no words"
        if last[-1].lower() != first[0].lower():
            return False, f"sentence {index} ends with {last[-1]!r}, the next starts with {first[0]!r}"
    return True, "each sentence starts with the last word of the one before"


def _paragraph_ends(kw: Any, view: ResponseView) -> tuple[bool, str]:
    for paragraph in view.text.split("\n"):
        paragraph = paragraph.strip().lower()
        words = paragraph.strip(PUNCTUATION_AND_SPACE).split()
        if paragraph and (not words or words[0] != words[-1]):
            return False, f"paragraph {paragraph[:40]!r} does not end with its first word"
    return True, "every paragraph ends with its first word"


def _increment(kw: Any, view: ResponseView) -> tuple[bool, str]:
    counts = [len(drop_punctuation(s).split()) for s in sentences(view)]
    bad = next((i for i in range(1, len(counts)) if counts[i] != counts[i - 1] + kw.small_n), None)
    return bool(counts) and bad is None, f"words per sentence {counts[:8]}; step {kw.small_n}"


def _no_consecutive(kw: Any, view: ResponseView) -> tuple[bool, str]:
    words = drop_punctuation(view.lower).split()
    same = next((i for i in range(len(words) - 1) if words[i][0] == words[i + 1][0]), None)
    return same is None, "no two neighbours share a first letter" if same is None else f"{words[same]!r} then " \
        f"{words[same + 1]!r}"


def _emoji_sentences(kw: Any, view: ResponseView) -> tuple[bool, str]:
    found = [drop_punctuation(s).strip() for s in sentences(view)]
    for index, sentence in enumerate(found):
        if not sentence:
            return False, f"sentence {index + 1} is only punctuation"
        if is_emoji(sentence[-1]) or is_emoji(sentence[-2] if len(sentence) > 1 else sentence[-1]):
            continue
        # an emoji that the splitter put at the start of the next sentence counts
        if index == len(found) - 1 or not found[index + 1] or not is_emoji(found[index + 1][0]):
            return False, f"sentence {index + 1} does not end with an emoji"
    return True, "every sentence ends with an emoji"


def _same_length_sentences(kw: Any, view: ResponseView) -> tuple[bool, str]:
    lengths = [len(s.strip()) for s in sentences(view)]
    return len(lengths) == 3 and len(set(lengths)) == 1, f"sentence lengths {lengths[:5]}"


def _counts(rng: random.Random, name: str, low: int, high: int) -> dict[str, Any]:
    return {name: rng.randint(low, high)}


register_rules([
    Rule("count:word_count_range", "The response must contain between {min_words} and {max_words} words.",
         _word_range, WordRangeKwargs, lambda rng: {"min_words": (low := rng.randint(1, 12)),
                                                     "max_words": low + rng.randint(0, 6)}),
    Rule("count:unique_word_count", "Use at least {N} unique words in the response.", _unique_words, NKwargs,
         lambda rng: _counts(rng, "N", 1, 15)),
    Rule("ratio:stop_words", "Stop words must be no more than {percentage}% of the words.", _stop_words,
         PercentageKwargs, lambda rng: _counts(rng, "percentage", 10, 60)),
    Rule("ratio:sentence_type", "Write twice as many declarative sentences as questions.", _sentence_type),
    Rule("ratio:sentence_balance", "Write as many statements as questions and exclamations.", _sentence_balance),
    Rule("count:conjunctions", "Use at least {small_n} different coordinating conjunctions.", _conjunctions,
         SmallNKwargs, lambda rng: _counts(rng, "small_n", 1, 4)),
    Rule("count:person_names", "Mention at least {N} different person names from IFBench's list.", _person_names,
         NKwargs, lambda rng: _counts(rng, "N", 1, 3)),
    Rule("ratio:overlap", "Keep a character-trigram overlap of {percentage}% (±2%) with: {reference_text}", _overlap,
         OverlapKwargs, lambda rng: {"reference_text": "The river runs past the old mill.",
                                     "percentage": rng.choice([10, 30, 50, 100])}),
    Rule("count:numbers", "Include exactly {N} numbers.", _numbers, NKwargs, lambda rng: _counts(rng, "N", 0, 3)),
    Rule("words:alphabet", "Each word must start with the next letter of the alphabet.", _alphabet),
    Rule("words:vowel", "Write one paragraph whose words use at most three kinds of vowel.", _three_vowels),
    Rule("words:consonants", "Every word must contain two consonants in a row.", _consonant_clusters),
    Rule("sentence:alliteration_increment", "Each sentence needs a longer alliterative run than the one before.",
         _alliteration),
    Rule("words:palindrome", "Include at least 10 single-word palindromes of 5+ letters.", _palindromes),
    Rule("count:punctuation", "Use every standard punctuation mark, the interrobang (?!) included.",
         _punctuation_cover),
    Rule("words:prime_lengths", "Use only words whose lengths are prime numbers.", _prime_lengths),
    Rule("count:words_japanese", "Every {N}th word must be in Japanese.", _japanese, JapaneseKwargs,
         lambda rng: _counts(rng, "N", 1, 4)),
    Rule("words:start_verb", "The response must start with a verb.", _start_verb),
    Rule("words:repeats", "Do not repeat any word more than {small_n} times.", _repeats, SmallNKwargs,
         lambda rng: _counts(rng, "small_n", 1, 3)),
    Rule("sentence:keyword", 'Include the keyword "{word}" in sentence {N}.', _keyword_sentence,
         KeywordSentenceKwargs, lambda rng: {"word": rng.choice(["river", "the", "mill"]), "N": rng.randint(1, 3)}),
    Rule("count:pronouns", "Include at least {N} pronouns.", _pronouns, NKwargs, lambda rng: _counts(rng, "N", 1, 4)),
    Rule("words:odd_even_syllables", "Alternate words with odd and even numbers of syllables.", _syllable_parity),
    Rule("words:last_first", "Each sentence must start with the last word of the sentence before.", _last_first),
    Rule("words:paragraph_last_first", "Each paragraph (line) must end with the word it starts with.",
         _paragraph_ends),
    Rule("sentence:increment", "Each sentence must have exactly {small_n} more words than the one before.",
         _increment, SmallNKwargs, lambda rng: _counts(rng, "small_n", 0, 2)),
    Rule("words:no_consecutive", "No two consecutive words may start with the same letter.", _no_consecutive),
    Rule("format:emoji", "End every sentence with an emoji.", _emoji_sentences),
    Rule("ratio:sentence_words", "Write three sentences with the same number of characters.",
         _same_length_sentences),
])
