"""Pair-building inputs and pair files the pairs, diagnostics, training and security tests share."""

from __future__ import annotations

from pathlib import Path

from reverso.config import ReverseParams
from reverso.contracts import Pair, Response, SamplerInfo, Session, Turn
from reverso.pairs.builders import Sample
from reverso.reverse import judge_response

SPECS = [
    {"id": "detectable_format:title", "kwargs": {}},
    {"id": "punctuation:no_comma", "kwargs": {}},
    {"id": "length_constraints:number_words", "kwargs": {"relation": "less than", "num_words": 10}},
    {"id": "keywords:existence", "kwargs": {"keywords": ["river"]}},
    {"id": "startend:end_checker", "kwargs": {"end_phrase": "Bye."}},
]
TEXTS = [
    "<<T>> river, flows. Bye.",                                                # 1 0 1 1 1
    "a long text with many many words and more words here and there yes",      # 0 1 0 0 0
    "another long text with lots of words and more words here and there",      # same vector as 1
    "river Bye.",                                                              # 0 1 1 1 1
    "<<Same>> short and no keyword",                                          # 1 1 1 0 0
]


def make_session() -> Session:
    """One single-turn session whose system prompt carries ``SPECS``."""
    return Session(session_id="s1", system="You are a guide.", system_constraints=SPECS,
                   turns=[Turn(user="Tell me about rivers.")], split="train", seed=1)


def make_samples(texts: list[str] = TEXTS) -> tuple[Session, list[Sample]]:
    """``texts`` as judged responses to ``make_session()``'s turn, in order."""
    session = make_session()
    samples = []
    for index, text in enumerate(texts):
        response = Response(session_id="s1", turn=0, sample_idx=index, history=[], text=text, model="m",
                            sampler=SamplerInfo(backend="hf", temperature=1.0, seed=0),
                            finish_reason="stop", prompt_tokens=5, completion_tokens=5)
        verdict, reason = judge_response(session, response, ReverseParams())
        assert verdict is not None, reason
        samples.append(Sample(response, verdict))
    return session, samples


PAIR = {
    "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
    "chosen": [{"role": "assistant", "content": "blue"}],
    "rejected": [{"role": "assistant", "content": "The color I would name is, perhaps, Blue!"}],
    "margin": 3, "constraints": [{"id": "punctuation:no_comma", "kwargs": {}}],
    "session_id": "s1", "turn": 0, "builder": "rpo",
}


def write_pairs(root: Path) -> None:
    """Eight distinct RPO training pairs (and an empty eval split) under ``root/data/pairs/rpo``."""
    for split, count in (("train", 8), ("eval", 0)):
        path = root / "data/pairs/rpo" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        # distinct prompts: train refuses duplicate pairs, as the pairs gate does
        rows = [Pair.model_validate({**PAIR, "session_id": f"s{i}", "prompt": [
            PAIR["prompt"][0], {"role": "user", "content": f"Name color number {i}."}]}).model_dump_json()
            for i in range(count)]
        path.write_text("".join(r + "\n" for r in rows))
