"""The DPO family behind ``train.loss``: each loss against TRL's own on the same batch, and the margin's shift."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from reverso.config import TrainParams
from reverso.train.run import _build_trainer
from support.training import TRL_EXACT
from trl import DPOTrainer

PAIRS = [
    {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a color."}],
     "chosen": [{"role": "assistant", "content": "blue"}],
     "rejected": [{"role": "assistant", "content": "The color I would name is, perhaps, Blue!"}], "margin": 3},
    {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": [{"role": "assistant", "content": "hi there"}],
     "rejected": [{"role": "assistant", "content": "Hello, there, friend."}], "margin": 5},
]
REFERENCE_LOSSES = {  # train.loss -> (settings, what TRL's DPOTrainer runs)
    "sigmoid": ({"loss": ["sigmoid"]}, ["sigmoid"]),
    "ipo": ({"loss": ["ipo"]}, ["ipo"]),
    "hinge": ({"loss": ["hinge"]}, ["hinge"]),
    "robust": ({"loss": ["robust"], "label_smoothing": 0.2}, ["robust"]),
    "sigmoid+sft": ({"loss": ["sigmoid", {"type": "sft", "weight": 0.2}]}, ["sigmoid", "sft"]),
}


def make_trainer(tiny_model_dir, work, move_policy: bool, **settings):
    from datasets import Dataset

    params = TrainParams(**{**TRL_EXACT, "batch_size": 1, "precompute_ref_log_probs": False, "max_length": 128,
                            "group_by_length": False, "margin_mode": "none", **settings})
    trainer = _build_trainer(params, tiny_model_dir, Dataset.from_list(PAIRS), None, work)
    if move_policy:  # LoRA B starts at zero (policy == reference); move it so Delta != 0
        torch.manual_seed(0)
        with torch.no_grad():
            for name, weight in trainer.model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, 0.5)
    return trainer


def batches(trainer):
    return [trainer._prepare_inputs(batch) for batch in trainer.get_train_dataloader()]


def ours(trainer, batch) -> float:
    with torch.no_grad():
        return trainer._compute_loss(trainer.model, dict(batch), False).item()


def trls(trainer, batch) -> float:
    inputs = {k: v for k, v in batch.items() if k not in ("margin", "pair_index", "length")}
    with torch.no_grad():
        return DPOTrainer._compute_loss(trainer, trainer.model, inputs, False).item()


@pytest.mark.parametrize("name", sorted(REFERENCE_LOSSES))
def test_without_margin_each_loss_is_trls_own(tiny_model_dir, tmp_path, name: str) -> None:
    settings, trl_types = REFERENCE_LOSSES[name]
    trainer = make_trainer(tiny_model_dir, tmp_path, True, **settings)
    assert trainer.loss_types == trl_types
    for batch in batches(trainer):
        reference = trls(trainer, batch)
        assert ours(trainer, batch) == pytest.approx(reference, rel=1e-6, abs=1e-7)
    assert any(abs(trls(trainer, b) - ours(make_trainer(tiny_model_dir, tmp_path / "s", True), b)) > 1e-4
               for b in batches(trainer)) or name == "sigmoid"  # the losses really differ from plain DPO


def average_logps(trainer, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token average log-prob of each completion, straight from the model's logits (no TRL code)."""
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token = logps.gather(-1, batch["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch["completion_mask"][:, 1:].float()
    average = (token * mask).sum(1) / mask.sum(1)
    return average.chunk(2)


def test_simpo_is_trls_simpo(tiny_model_dir, tmp_path) -> None:
    from trl.experimental.cpo import CPOTrainer

    trainer = make_trainer(tiny_model_dir, tmp_path, True, loss=["simpo"], beta=2.0, simpo_gamma=0.6)
    assert trainer.loss_types == ["sigmoid_norm"] and trainer.reference_free
    cpo = SimpleNamespace(alpha=0.0, loss_type="simpo", beta=2.0, simpo_gamma=0.6, label_smoothing=0.0,
                          accelerator=trainer.accelerator)
    for batch in batches(trainer):
        chosen, rejected = average_logps(trainer, batch)
        expected = CPOTrainer.cpo_loss(cpo, chosen, rejected)[0].mean().item()
        assert ours(trainer, batch) == pytest.approx(expected, rel=1e-4)


def shifted(loss: str, s: float, beta: float, smoothing: float = 0.2) -> float:
    """Each loss at Delta = 0 (the LoRA policy before training) with its score shifted by -s."""
    z = torch.tensor(-beta * s)
    if loss == "sigmoid":
        return -F.logsigmoid(z).item()
    if loss == "hinge":
        return torch.relu(1 - z).item()
    if loss == "ipo":
        return (-s - 1 / (2 * beta)) ** 2
    if loss == "robust":
        return ((-(1 - smoothing) * F.logsigmoid(z) + smoothing * F.logsigmoid(-z)) / (1 - 2 * smoothing)).item()
    raise ValueError(loss)


@pytest.mark.parametrize("mode", ["released", "paper"])
@pytest.mark.parametrize("loss", ["sigmoid", "ipo", "hinge", "robust"])
def test_margin_shifts_the_score_by_the_documented_amount(tiny_model_dir, tmp_path, loss: str, mode: str) -> None:
    beta, gamma = 0.1, 0.05
    trainer = make_trainer(tiny_model_dir, tmp_path, False, loss=[loss], margin_mode=mode, beta=beta,
                           gamma=gamma, label_smoothing=0.2 if loss == "robust" else 0.0)
    for batch in batches(trainer):
        g = float(batch["margin"][0])
        s = gamma * g if mode == "released" else gamma * g / beta  # released: beta*(D - gamma*g); paper: beta*D - gamma*g
        assert ours(trainer, batch) == pytest.approx(shifted(loss, s, beta), rel=1e-5)
        assert s > 0 and shifted(loss, s, beta) != pytest.approx(shifted(loss, 0.0, beta))


def test_sft_term_is_untouched_by_the_margin(tiny_model_dir, tmp_path) -> None:
    plain = make_trainer(tiny_model_dir, tmp_path / "a", False, loss=["sigmoid", {"type": "sft", "weight": 0.5}])
    margin = make_trainer(tiny_model_dir, tmp_path / "b", False, loss=["sigmoid", {"type": "sft", "weight": 0.5}],
                          margin_mode="released")
    for batch in batches(plain):
        s = 0.05 * float(batch["margin"][0])
        # the sft term is the same in both; only the sigmoid term moves, by exactly the released shift
        difference = ours(margin, batch) - ours(plain, batch)
        assert difference == pytest.approx(shifted("sigmoid", s, 0.1) - math.log(2), abs=1e-6)  # float32 losses


@pytest.mark.parametrize("settings, message", [
    ({"loss": ["sigmoid", "ipo"], "margin_mode": "released"}, "one pairwise term"),
    ({"loss": ["sft"]}, "no pairwise term"),
    ({"loss": ["simpo", "sigmoid"], "margin_mode": "none"}, "reference-free"),
    ({"loss": ["robust"]}, "label_smoothing"),
    ({"loss": ["sigmoid", "sigmoid"]}, "twice"),
])
def test_loss_combinations_that_cannot_compose_are_refused(settings, message) -> None:
    with pytest.raises(ValueError, match=message):
        TrainParams(**settings)


def test_a_built_in_arm_name_sets_its_fields_and_refuses_contradictions() -> None:
    assert (TrainParams(arm="dpo").builder, TrainParams(arm="dpo").margin_mode) == ("dpo", "none")
    assert TrainParams(arm="rpo_no_margin", beta=0.2).margin_gamma == 0.0
    mine = TrainParams(arm="rpo_ipo", loss=["ipo"], margin_mode="none")  # any other name: an arm of your own
    assert (mine.builder, [t.type for t in mine.loss]) == ("rpo", ["ipo"])
    with pytest.raises(ValueError, match="built-in arm.*another name"):
        TrainParams(arm="rpo", loss=["ipo"])  # an arm called rpo must be RPO
