"""Pair builders, all from the same judged samples of a turn.

rpo: dedupe a turn's responses by verdict vector; for every unordered pair whose vectors differ on
g >= g_min constraints emit (x_S(y_i), y_i, y_j, margin=g) and its mirror (the *couple*). Under
x_S(y_i) the chosen y_i passes every constraint and y_j fails exactly the g differing ones.

rpo_one_way: the one-direction ablation: per reply pair only the direction whose chosen passes more
of the *original* rules (ties dropped), so a model never sees the same two replies with both labels.

dpo: chosen = most constraints satisfied on the *original* instruction, rejected = fewest, ties
skipped (best vs worst, one pair per turn: the noisy baseline).

dpo_paper: the authors' baseline: every pair of distinct replies whose pass counts on the original
instruction differ by at least ``min_gap`` (their ``margin > 2``), chosen = more passes, ties dropped.

rpo_finish: rpo pairs with the implicit rule "the reply ends" (constraints/types_implicit.py) added to
every verdict vector, built from finished *and* cut replies. The rule is never reversed, so a cut reply
is only ever the rejected side, and the rule counts in g like any rule the two replies differ on.

The SFT builders emit examples (a prompt and one reply), not pairs:

hindsight_sft: every finished reply under its reversed instruction x_S(y), which it passes entirely
(the RPO chosen side without a rejected side: hindsight instruction relabelling).

verified_sft: finished replies that pass every rule of the *original* instruction (rejection sampling).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from reverso import constraints as engine
from reverso.contracts import ConstraintSpec, Example, Message, Pair, Response, Session, Verdict
from reverso.prompts import turn_messages


@dataclass(frozen=True)
class Sample:
    """One judged response of a turn."""

    response: Response
    verdict: Verdict

    @property
    def vector(self) -> tuple[bool, ...]:
        return tuple(self.verdict.passed)

    @property
    def cut(self) -> bool:
        """Cut off at the token cap."""
        return self.response.finish_reason == "length"


def with_reply_ends(sample: Sample) -> Sample:
    """The sample judged on one more rule, the implicit "the reply ends" (never reversed: a cut reply keeps
    failing it under its own reversed instruction, so it can never be a chosen reply)."""
    rule = engine.reply_ends()
    verdict = engine.check(rule, sample.response.text, engine.CheckContext(finished=not sample.cut))
    spec = ConstraintSpec.model_validate(rule.spec())
    judged = sample.verdict.model_copy(update={
        "constraints": [*sample.verdict.constraints, spec], "passed": [*sample.verdict.passed, verdict.passed],
        "reasons": [*sample.verdict.reasons, verdict.reason],
        "reversed_constraints": [*sample.verdict.reversed_constraints, spec]})
    return Sample(sample.response, judged)


def _assistant(text: str) -> list[Message]:
    return [Message(role="assistant", content=text)]


def _parse(specs: list[ConstraintSpec]) -> list[engine.Constraint]:
    return [engine.parse(spec.model_dump()) for spec in specs]


def dedupe_by_vector(samples: list[Sample]) -> list[Sample]:
    """Keep the first response (lowest sample_idx) of each distinct verdict vector."""
    seen: dict[tuple[bool, ...], Sample] = {}
    for sample in sorted(samples, key=lambda s: s.response.sample_idx):
        seen.setdefault(sample.vector, sample)
    return list(seen.values())


def couple_key(pair: Pair | Example) -> tuple[str, int, tuple[str, str]]:
    """Pairs that share a key are one reply pair (an RPO couple: the same two replies, both labels).

    An SFT example is its own unit (its reply, no second one).
    """
    if isinstance(pair, Example):
        return pair.session_id, pair.turn, (pair.completion[0].content, "")
    texts = sorted((pair.chosen[0].content, pair.rejected[0].content))
    return pair.session_id, pair.turn, (texts[0], texts[1])


def _reply_pairs(samples: list[Sample], g_min: int) -> list[tuple[Sample, Sample, int]]:
    """Distinct-verdict reply pairs whose vectors differ on at least g_min constraints, with that g."""
    found = []
    for first, second in itertools.combinations(dedupe_by_vector(samples), 2):
        gap = sum(a != b for a, b in zip(first.vector, second.vector, strict=True))
        if gap >= g_min:
            found.append((first, second, gap))
    return found


def rpo_pairs(session: Session, samples: list[Sample], g_min: int, one_way: bool = False,
              finish: bool = False) -> list[Pair]:
    """All RPO pairs of one (session, turn); ``one_way``: only the better-on-the-original direction;
    ``finish``: the rpo_finish set (samples may be cut; the implicit "the reply ends" rule joins every vector)."""
    if not session.render_rules:  # the prompt would not change with the reversal: chosen and rejected share it
        raise ValueError(f"session {session.session_id}: render_rules is false, so a reversed rule list "
                         "would never reach the model; RPO needs the rules rendered")
    if finish:
        samples = [with_reply_ends(sample) for sample in samples]
    name = "rpo_finish" if finish else "rpo_one_way" if one_way else "rpo"
    pairs = []
    for first, second, gap in _reply_pairs(samples, g_min):
        directions = [(first, second), (second, first)]
        if one_way:
            directions = [(c, r) for c, r in directions if sum(c.vector) > sum(r.vector)]
        for chosen, rejected in directions:
            if finish and chosen.cut:  # it fails "the reply ends" under every instruction: never chosen
                continue
            reversed_specs = chosen.verdict.reversed_constraints
            prompt = turn_messages(session, chosen.response.turn, chosen.response.history, _parse(reversed_specs))
            pairs.append(Pair(
                prompt=prompt, chosen=_assistant(chosen.response.text), rejected=_assistant(rejected.response.text),
                margin=gap, constraints=reversed_specs, session_id=session.session_id,
                turn=chosen.response.turn, builder=name, rejected_cut=rejected.cut,
            ))
    return pairs


def dpo_pair(session: Session, samples: list[Sample]) -> Pair | None:
    """The baseline pair of one (session, turn), or None when every response scores the same.

    A turn can hold fewer than two finished responses (the rest were cut at the token cap): no pair.
    """
    if len(samples) < 2:
        return None
    ordered = sorted(samples, key=lambda s: s.response.sample_idx)
    best = max(ordered, key=lambda s: sum(s.vector))
    worst = min(ordered, key=lambda s: sum(s.vector))
    gap = sum(best.vector) - sum(worst.vector)
    if gap <= 0:
        return None
    prompt = turn_messages(session, best.response.turn, best.response.history)
    return Pair(
        prompt=prompt, chosen=_assistant(best.response.text), rejected=_assistant(worst.response.text),
        margin=gap, constraints=best.verdict.constraints, session_id=session.session_id,
        turn=best.response.turn, builder="dpo",
    )


def dpo_paper_pairs(session: Session, samples: list[Sample], min_gap: int) -> list[Pair]:
    """The authors' count-based pairs of one (session, turn): pass counts differ by >= min_gap."""
    pairs = []
    for first, second in itertools.combinations(dedupe_by_vector(samples), 2):
        if abs(sum(first.vector) - sum(second.vector)) < min_gap:
            continue
        best, worst = (first, second) if sum(first.vector) > sum(second.vector) else (second, first)
        pairs.append(Pair(
            prompt=turn_messages(session, best.response.turn, best.response.history),
            chosen=_assistant(best.response.text), rejected=_assistant(worst.response.text),
            margin=sum(best.vector) - sum(worst.vector), constraints=best.verdict.constraints,
            session_id=session.session_id, turn=best.response.turn, builder="dpo_paper",
        ))
    return pairs


def hindsight_examples(session: Session, samples: list[Sample]) -> list[Example]:
    """Every reply of one (session, turn) under its reversed instruction, which it passes entirely.

    The stage hands in finished replies only (unless ``pairs.allow_truncated``). Replies with the same
    text under the same instruction are one example.
    """
    examples, seen = [], set()
    for sample in sorted(samples, key=lambda s: s.response.sample_idx):
        specs = sample.verdict.reversed_constraints
        key = (sample.response.text, tuple(s.model_dump_json() for s in specs))
        if key in seen:
            continue
        seen.add(key)
        examples.append(Example(
            prompt=turn_messages(session, sample.response.turn, sample.response.history, _parse(specs)),
            completion=_assistant(sample.response.text), constraints=specs, session_id=session.session_id,
            turn=sample.response.turn, builder="hindsight_sft"))
    return examples


def verified_examples(session: Session, samples: list[Sample]) -> list[Example]:
    """Replies of one (session, turn) that pass every rule of the original instruction (finished ones: the
    stage leaves cut replies out unless ``pairs.allow_truncated``)."""
    examples, seen = [], set()
    for sample in sorted(samples, key=lambda s: s.response.sample_idx):
        if not all(sample.vector) or sample.response.text in seen:
            continue
        seen.add(sample.response.text)
        examples.append(Example(
            prompt=turn_messages(session, sample.response.turn, sample.response.history),
            completion=_assistant(sample.response.text), constraints=sample.verdict.constraints,
            session_id=session.session_id, turn=sample.response.turn, builder="verified_sft"))
    return examples
