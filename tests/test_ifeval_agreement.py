"""Our checkers agree with lm-eval's IFEval reference checkers on the 25 shared ids.

Deliberate differences (docs/constraints.md) are excluded from the corpus: keywords are matched
literally where IFEval treats them as regular expressions.
"""

from __future__ import annotations

import pytest

from reverso import constraints as engine
from support.reference import IFEVAL_IDS, cases, corpus, load_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    pytest.importorskip("lm_eval", reason="dev dependency lm-eval not installed")
    import os

    os.environ["NLTK_DATA"] = str(tmp_path_factory.mktemp("nltk"))
    return load_registry()


def test_reference_registry_covers_the_shared_ids(registry) -> None:
    assert set(IFEVAL_IDS) <= set(registry)


def test_agreement_on_generated_corpus(registry) -> None:
    from support.reference import reference_check

    texts = corpus(seed=1, count=150)
    disagreements = []
    checked = 0
    outcomes: dict[str, set[bool]] = {}
    for constraint in cases(seed=2, per_id=3):
        for text in texts:
            mine = engine.check(constraint, text, engine.CheckContext(prompt="Tell me about rivers.")).passed
            theirs = reference_check(registry, constraint, text)
            outcomes.setdefault(constraint.id, set()).add(theirs)
            checked += 1
            if mine != theirs:
                disagreements.append((constraint, text[:80], mine, theirs))
    assert checked >= 25 * 3 * 150
    one_sided = [cid for cid, seen in outcomes.items() if seen != {True, False}]
    assert not one_sided, f"the corpus never makes these ids both pass and fail: {one_sided}"
    assert not disagreements, f"{len(disagreements)} disagreements, e.g. {disagreements[:5]}"
