"""The RPO objective against TRL's own sigmoid DPO loss, on a real (tiny) model and real batches."""

from __future__ import annotations

import math

import pytest
import torch

from reverso.config import TrainParams
from reverso.train import _build_trainer
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

    params = TrainParams(batch_size=1, precompute_ref_log_probs=False, max_length=128)
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
