"""Dev-only: run lm-eval's IFEval reference checkers beside ours (agreement test and benchmark).

Needs the dev dependency ``lm-eval`` (see requirements-dev.txt) and NLTK punkt data (written by
``reverso.constraints.nltk_data``). Nothing here is used by the pipeline.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
import types
from pathlib import Path
from typing import Any

from reverso import constraints as engine
from reverso.constraints.base import REGISTRY

IFEVAL_IDS = (
    "keywords:existence", "keywords:frequency", "keywords:forbidden_words", "keywords:letter_frequency",
    "language:response_language", "length_constraints:number_sentences", "length_constraints:number_paragraphs",
    "length_constraints:number_words", "length_constraints:nth_paragraph_first_word",
    "detectable_content:number_placeholders", "detectable_content:postscript",
    "detectable_format:number_bullet_lists", "detectable_format:constrained_response",
    "detectable_format:number_highlighted_sections", "detectable_format:multiple_sections",
    "detectable_format:json_format", "detectable_format:title", "combination:two_responses",
    "combination:repeat_prompt", "startend:end_checker", "change_case:capital_word_frequency",
    "change_case:english_capital", "change_case:english_lowercase", "punctuation:no_comma", "startend:quotation",
)
FRAGMENTS = [
    "The river runs past the old mill.", "Dr. Smith arrived at 5 p.m. and left early.", "hello there, friend",
    "* first point\n* second point", "- dash item\n- another dash", "<<A Fine Title>>", "P.S. see you soon",
    "p.p.s remember the keys", "My answer is yes.", "*highlighted part* and **bold part**", "SECTION 1 intro",
    "Section 2 details", "first paragraph\n\nsecond paragraph", "***", "******", '"quoted whole"',
    '{"answer": 42}', "```json\n{\"a\": [1, 2]}\n```", "THIS IS ALL CAPS TEXT", "this is all lowercase text",
    "El río corre junto al viejo molino y los niños juegan.", "Le chat dort sur le canapé depuis ce matin.",
    "[name] lives at [address]", "Is there anything else I can help with?", "Tell me about rivers.", "🙂 emoji",
    "NASA and the USA are ACRONYMS here.", "Wait... what? Really! Yes.", "", "   ", "\n", "a, b, c, d",
]


def nltk_root() -> Path:
    """NLTK_DATA (default ./.nltk_data) with punkt written into it and on nltk's search path."""
    os.environ.setdefault("NLTK_DATA", str(Path(".nltk_data").resolve()))
    import nltk

    from reverso.constraints.nltk_data import ensure_punkt

    root = ensure_punkt(os.environ["NLTK_DATA"].split(os.pathsep)[0])
    if str(root) not in nltk.data.path:  # nltk reads NLTK_DATA once, at import
        nltk.data.path.insert(0, str(root))
    return root


def load_registry() -> dict[str, Any]:
    """lm-eval's IFEval instruction classes, without importing lm-eval's whole task machinery."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("lm-eval is not installed (pip install -r requirements-dev.txt)")
    import lm_eval  # noqa: F401  (parent package; light)

    base = Path(next(iter(spec.submodule_search_locations))) / "tasks" / "ifeval"
    for name, path in (("lm_eval.tasks", base.parent), ("lm_eval.tasks.ifeval", base)):
        if name not in sys.modules:  # a bare namespace: lm_eval.tasks/__init__ imports every task
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module
    nltk_root()
    import langdetect

    langdetect.DetectorFactory.seed = 0
    from lm_eval.tasks.ifeval import instructions_registry

    return dict(instructions_registry.INSTRUCTION_DICT)


def reference_check(registry: dict[str, Any], constraint: engine.Constraint, text: str) -> bool:
    checker = registry[constraint.id](constraint.id)
    checker.build_description(**constraint.kwargs)
    return bool(checker.check_following(text))


def corpus(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts = list(FRAGMENTS)
    joiners = [" ", "\n", "\n\n", " *** ", "\n******\n", ", "]
    while len(texts) < count:
        parts = rng.sample(FRAGMENTS, rng.randint(1, 5))
        text = rng.choice(joiners).join(parts)
        if rng.random() < 0.2:
            text = text.upper() if rng.random() < 0.5 else text.lower()
        texts.append(text)
    return texts[:count]


FIXED_CASES = [
    ("keywords:existence", {"keywords": ["river"]}), ("keywords:existence", {"keywords": ["mill", "smith"]}),
    ("keywords:frequency", {"keyword": "the", "frequency": 2, "relation": "at least"}),
    ("keywords:forbidden_words", {"forbidden_words": ["river", "title"]}),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 1}),
    ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "first"}),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2}),
    ("length_constraints:number_words", {"relation": "less than", "num_words": 8}),
    ("length_constraints:number_words", {"relation": "at least", "num_words": 12}),
    ("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"}),
    ("detectable_format:number_bullet_lists", {"num_bullets": 2}),
    ("keywords:letter_frequency", {"letter": "e", "let_frequency": 4, "let_relation": "at least"}),
    ("language:response_language", {"language": "es"}),
    ("combination:repeat_prompt", {"prompt_to_repeat": "Tell me about rivers."}),
]


def cases(seed: int = 0, per_id: int = 3) -> list[engine.Constraint]:
    """Sampled instances of every shared id, plus fixed ones that the corpus both passes and fails."""
    rng = random.Random(seed)
    found = [engine.make(cid, kwargs) for cid, kwargs in FIXED_CASES]
    for cid in IFEVAL_IDS:
        for _ in range(per_id):
            context = engine.CheckContext(prompt="Tell me about rivers.")
            found.append(engine.make(cid, REGISTRY[cid].sample(rng, context)))
    return found
