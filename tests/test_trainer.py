"""The RPO objective against TRL's own sigmoid DPO loss, on a real (tiny) model and real batches."""

from __future__ import annotations

import math

import pytest
import torch

from reverso.config import TrainParams
from reverso.train.run import _build_trainer
from support.training import TRL_EXACT
from trl import DPOTrainer

PAIRS = [
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
     "chosen": [{"role": "assistant", "content": "blue"}],
     "rejected": [{"role": "assistant", "content": "The color I would name is, perhaps, Blue!"}], "margin": 3},
    {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": [{"role": "assistant", "content": "hi"}],
     "rejected": [{"role": "assistant", "content": "Hello, there, friend."}], "margin": 5},
]


@pytest.fixture(scope="module")
def trainer(tiny_model_dir, tmp_path_factory):
    from datasets import Dataset

    params = TrainParams(**TRL_EXACT, batch_size=1, precompute_ref_log_probs=False, max_length=128)
    trainer = _build_trainer(params, tiny_model_dir, Dataset.from_list(PAIRS), None,
                             tmp_path_factory.mktemp("trainer"))
    torch.manual_seed(0)
    with torch.no_grad():  # move the policy away from the reference so Delta != 0
        for name, weight in trainer.model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)
    return trainer


def batches(trainer):
    loader = trainer.get_train_dataloader()
    return [trainer._prepare_inputs(batch) for batch in loader]


def trl_sigmoid_loss(trainer, batch) -> float:
    inputs = {k: v for k, v in batch.items() if k != "margin"}
    with torch.no_grad():
        return DPOTrainer._compute_loss(trainer, trainer.model, inputs, False).item()


def rpo_loss(trainer, batch, gamma: float, mode: str) -> float:
    trainer.gamma, trainer.margin_mode = gamma, mode
    with torch.no_grad():
        return trainer._compute_loss(trainer.model, dict(batch), False).item()


def test_gamma_zero_is_trl_sigmoid_dpo(trainer) -> None:
    for batch in batches(trainer):
        reference = trl_sigmoid_loss(trainer, batch)
        assert reference != pytest.approx(math.log(2), abs=1e-4)  # the policy really differs from the reference
        assert rpo_loss(trainer, batch, 0.0, "paper") == pytest.approx(reference, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("mode", ["paper", "released"])
def test_margin_term_matches_the_formula(trainer, mode: str) -> None:
    beta, gamma = trainer.beta, 0.05
    for batch in batches(trainer):
        margin = float(batch["margin"][0])
        dpo = trl_sigmoid_loss(trainer, batch)
        beta_delta = math.log(math.exp(-dpo) / (1 - math.exp(-dpo)))  # invert -log(sigmoid(beta*Delta))
        shift = gamma * margin if mode == "paper" else beta * gamma * margin
        expected = -math.log(1 / (1 + math.exp(-(beta_delta - shift))))
        assert rpo_loss(trainer, batch, gamma, mode) == pytest.approx(expected, rel=1e-5)
        assert rpo_loss(trainer, batch, gamma, mode) > dpo  # the margin makes the target harder


def test_logged_rewards_are_true_log_ratio_rewards(trainer) -> None:
    batch = batches(trainer)[0]
    trainer._metrics["train"].clear()
    trainer.model.train()
    rpo_loss(trainer, batch, 0.0, "paper")
    plain = trainer._metrics["train"]["rewards/chosen"][-1]
    rpo_loss(trainer, batch, 0.05, "paper")
    assert trainer._metrics["train"]["rewards/chosen"][-1] == pytest.approx(plain, rel=1e-5, abs=1e-6)
    assert trainer._metrics["train"]["rpo/margin_term"][-1] == pytest.approx(0.05 * float(batch["margin"][0]))
    trainer.model.eval()


# --- ablation arms and the reference-log-prob cache ---

def arm_trainer(tiny_model_dir, work, cache=None, **overrides):
    from datasets import Dataset

    settings = {**TRL_EXACT, "batch_size": 1, "precompute_ref_log_probs": cache is not None, "max_length": 128, **overrides}
    return _build_trainer(TrainParams(**settings), tiny_model_dir, Dataset.from_list(PAIRS), None, work,
                          ref_cache_dir=cache)


@pytest.mark.parametrize("arm", ["rpo", "dpo", "rpo_no_margin"])
def test_only_the_rpo_arm_applies_the_margin(tiny_model_dir, tmp_path, arm: str) -> None:
    params = TrainParams(arm=arm)
    assert params.pair_set == ("dpo" if arm == "dpo" else "rpo")
    trainer = arm_trainer(tiny_model_dir, tmp_path, arm=arm)
    for batch in batches(trainer):  # every pair carries a margin g > 0, DPO baseline pairs included
        assert float(batch["margin"][0]) > 0
        with torch.no_grad():
            loss = trainer._compute_loss(trainer.model, dict(batch), False).item()
        if arm == "rpo":
            assert loss > trl_sigmoid_loss(trainer, batch)
        else:  # plain sigmoid DPO, exactly TRL's loss
            assert loss == pytest.approx(trl_sigmoid_loss(trainer, batch), rel=1e-6, abs=1e-7)


def test_default_margin_is_the_authors_released_form(tiny_model_dir, tmp_path) -> None:
    params = TrainParams()
    assert (params.margin_mode, params.beta, params.gamma) == ("released", 0.1, 0.05)
    trainer = arm_trainer(tiny_model_dir, tmp_path)
    batch = batches(trainer)[0]
    with torch.no_grad():  # the LoRA policy starts as the reference: Delta = 0, so L = -log sigmoid(-beta*gamma*g)
        loss = trainer._compute_loss(trainer.model, dict(batch), False).item()
    shift = 0.1 * 0.05 * float(batch["margin"][0])
    assert loss == pytest.approx(-math.log(1 / (1 + math.exp(shift))), rel=1e-5)


def test_an_unknown_field_is_refused_even_through_model_copy() -> None:
    from reverso.config import ConfigError
    from reverso.train import checked_params

    with pytest.raises(ValueError, match="pairs"):
        TrainParams(pairs="dpo")
    with pytest.raises(ConfigError, match="train.builder"):
        checked_params(TrainParams().model_copy(update={"pairs": "dpo", "gamma": 0.0}))
    assert checked_params(TrainParams(arm="dpo")).pair_set == "dpo"  # a built-in arm name alone sets the rest


def test_reference_cache_is_shared_across_arms_and_seeds(tiny_model_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    first = arm_trainer(tiny_model_dir, tmp_path / "a", cache, arm="rpo", seed=1)
    second = arm_trainer(tiny_model_dir, tmp_path / "b", cache, arm="rpo_no_margin", seed=2, beta=0.3)
    assert len(list(cache.glob("ref-logps-*.json"))) == 1  # other LoRA init, beta and arm: same reference pass
    assert second.train_dataset["ref_chosen_logps"] == first.train_dataset["ref_chosen_logps"]


def test_reference_cache_key_covers_max_length(tiny_model_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    full = arm_trainer(tiny_model_dir, tmp_path / "a", cache, max_length=128)
    cut = arm_trainer(tiny_model_dir, tmp_path / "b", cache, max_length=35)  # truncates the second pair
    assert len(list(cache.glob("ref-logps-*.json"))) == 2
    fresh = arm_trainer(tiny_model_dir, tmp_path / "c", tmp_path / "other-cache", max_length=35)
    assert cut.train_dataset["ref_rejected_logps"] == pytest.approx(fresh.train_dataset["ref_rejected_logps"])
    assert cut.train_dataset["ref_rejected_logps"][1] != pytest.approx(full.train_dataset["ref_rejected_logps"][1])


def test_reference_cache_key_covers_the_forward(tiny_model_dir, tmp_path) -> None:
    cache = tmp_path / "cache"
    stock = arm_trainer(tiny_model_dir, tmp_path / "a", cache, forward="stock")
    packed = arm_trainer(tiny_model_dir, tmp_path / "b", cache, forward="shared_prompt")
    assert len(list(cache.glob("ref-logps-*.json"))) == 2  # the packed row's rounding is its own entry
    assert packed.train_dataset["ref_chosen_logps"] == pytest.approx(stock.train_dataset["ref_chosen_logps"], abs=1e-3)


def test_tokenizer_digest_sees_the_chat_template(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    from reverso.train.ref_cache import tokenizer_digest

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    before = tokenizer_digest(tokenizer)
    tokenizer.chat_template = (tokenizer.chat_template or "") + "{# changed #}"
    assert tokenizer_digest(tokenizer) != before
