from pathlib import Path

import pytest

from reverso import constraints as engine
from reverso.collect import best_sample, collect
from reverso.collect.sessions import build_sessions, load_seed
from reverso.prompts import session_constraints, turn_messages

REPO = Path(__file__).resolve().parents[1]


def sessions(seed: int = 13, count: int = 20):
    corpus = load_seed(REPO / "data/seed")
    return build_sessions(corpus, "train", count, seed, turns=3, system_constraints=5, turn_constraints=1,
                          cumulative=True, eval_fraction=0.25)


def test_seed_corpus_is_large_and_clean() -> None:
    corpus = load_seed(REPO / "data/seed")
    assert len(corpus.personas) >= 200 and len(corpus.queries) >= 600 and not corpus.quarantined
    for split in ("train", "eval"):
        assert corpus.portion(split)[0] and corpus.portion(split)[1]
    train_q = {q.text for q in corpus.queries if q.split == "train"}
    assert not train_q & {q.text for q in corpus.queries if q.split == "eval"}


def test_sessions_are_reproducible_and_split_by_session() -> None:
    first, second = sessions(), sessions()
    assert [s.model_dump() for s in first] == [s.model_dump() for s in second]
    assert sum(s.split == "eval" for s in first) == 5
    assert sessions(seed=14)[0].model_dump() != first[0].model_dump()


def test_active_constraints_accumulate_and_never_conflict() -> None:
    for session in sessions(count=40):
        sizes = [len(session_constraints(session, t)) for t in range(3)]
        assert sizes == [6, 7, 8]
        active = session_constraints(session, 2)
        for index, constraint in enumerate(active):
            assert engine.compatible(active[:index], constraint.id), (session.session_id, constraint)


def test_prompt_renders_every_active_rule_in_the_system_message() -> None:
    session = sessions()[0]
    messages = turn_messages(session, 1, [])
    assert messages[0].role == "system" and messages[-1].content == session.turns[1].user
    assert messages[0].content.count("\n") >= len(session_constraints(session, 1))


def test_best_sample_picks_most_constraints_then_first() -> None:
    session = sessions()[0]
    texts = ["", "", ""]
    assert best_sample(session, 0, texts) == 0


def test_best_sample_prefers_a_finished_reply_as_history() -> None:
    session = sessions()[0]
    texts = ["", "", ""]
    assert best_sample(session, 0, texts, [False, False, True]) == 2
    assert best_sample(session, 0, texts, [False, False, False]) == 0


def test_user_sessions_jsonl_and_hf_dataset_with_quarantine(tmp_path) -> None:
    import json

    from datasets import Dataset

    from reverso.collect.sessions import load_user_sessions

    good = sessions(count=2)
    rows = [s.model_dump(mode="json") for s in good]
    bad_id = {**rows[0], "session_id": "x", "system_constraints": [{"id": "nope:x", "kwargs": {}}]}
    lines = [json.dumps(rows[0]), json.dumps(rows[1]), json.dumps(rows[0]), json.dumps(bad_id), "{oops"]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n")
    loaded, quarantined = load_user_sessions(path)
    assert [s.session_id for s in loaded] == [good[0].session_id, good[1].session_id]
    reasons = sorted(q.reason for q in quarantined)
    assert len(reasons) == 3 and any("duplicate" in r for r in reasons) and any("nope:x" in r for r in reasons)

    Dataset.from_list([json.loads(line) for line in lines[:2]]).save_to_disk(str(tmp_path / "ds"))
    loaded, quarantined = load_user_sessions(tmp_path / "ds", hf_dataset=True)
    assert len(loaded) == 2 and not quarantined


def test_soft_constraints_join_the_system_prompt() -> None:
    corpus = load_seed(REPO / "data/seed")
    built = build_sessions(corpus, "train", 5, 3, turns=1, system_constraints=3, turn_constraints=0,
                           cumulative=True, soft_constraints=2)
    for session in built:
        ids = [c.id for c in session_constraints(session, 0)]
        assert len(ids) == 5 and sum(i.startswith("soft:") for i in ids) == 2
        assert len({i for i in ids if i.startswith("soft:")}) == 2


def test_collect_reports_truncation_rate(seed_dir, tmp_path) -> None:
    import json
    from types import SimpleNamespace

    from reverso.config import CollectParams

    class CutEveryThird:
        """A sampler whose every third reply hits the token cap."""

        name = "fake"

        def generate(self, conversations, n, settings):
            return [[SimpleNamespace(text=f"reply {i}", finish_reason="length" if i % 3 == 0 else "stop",
                                     prompt_tokens=10, completion_tokens=settings.max_new_tokens if i % 3 == 0 else 7)
                     for i in range(n)] for _ in conversations]

    params = CollectParams(sessions=2, turns=1, system_constraints=2, samples_per_turn=3)
    outputs = tmp_path / "s.jsonl", tmp_path / "r.jsonl", tmp_path / "m.json"
    metrics = collect(params, tmp_path / "no-model", seed_dir, *outputs, sampler=CutEveryThird())
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["truncation_rate"] == metrics["truncation_rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert written["truncated_responses"] == 2 and written["completion_tokens_p95"] == params.sampler.max_new_tokens


def test_greedy_sampling_with_several_samples_is_refused_naming_the_field() -> None:
    from reverso.config import ConfigError, load_params

    with pytest.raises(ConfigError, match="collect.sampler.temperature"):
        load_params(REPO / "params.yaml", ["collect.sampler.temperature=0"])


def test_pair_length_above_train_length_is_refused_naming_both_fields() -> None:
    from reverso.config import ConfigError, load_params

    with pytest.raises(ConfigError, match=r"pairs.max_length \(512\).*train.max_length \(256\)"):
        load_params(REPO / "params.yaml", ["train.max_length=256"])
    assert load_params(REPO / "params.yaml", ["train.max_length=256", "pairs.max_length=256"]).train.max_length == 256
