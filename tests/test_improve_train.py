"""Training from a champion's adapter (the improve loop): which model is the DPO reference, what gets saved."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from reverso.config import TrainParams
from reverso.train.run import StartFrom, _build_trainer
from support.training import TRL_EXACT

PAIRS = [
    {"prompt": [{"role": "user", "content": "Name a color."}], "chosen": [{"role": "assistant", "content": "blue"}],
     "rejected": [{"role": "assistant", "content": "The color I would name is, perhaps, Blue!"}], "margin": 3},
    {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": [{"role": "assistant", "content": "hi"}],
     "rejected": [{"role": "assistant", "content": "Hello, there, friend."}], "margin": 5},
]


@pytest.fixture(scope="module")
def champion_adapter(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained-looking LoRA adapter: lora_B moved away from zero, so base + adapter != base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(tiny_model_dir)),
                           LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("champion")
    model.save_pretrained(str(out))
    return out


def initial_losses(tiny_model_dir: Path, work: Path, start: StartFrom) -> tuple[object, list[float]]:
    from datasets import Dataset

    params = TrainParams(**TRL_EXACT, batch_size=1, precompute_ref_log_probs=False, max_length=128, gamma=0.0)
    trainer = _build_trainer(params, tiny_model_dir, Dataset.from_list(PAIRS), None, work, start=start)
    with torch.no_grad():
        losses = [trainer._compute_loss(trainer.model, trainer._prepare_inputs(batch), False).item()
                  for batch in trainer.get_train_dataloader()]
    return trainer, losses


@pytest.fixture(scope="module")
def from_champion(tiny_model_dir, champion_adapter, tmp_path_factory):
    return initial_losses(tiny_model_dir, tmp_path_factory.mktemp("c"), StartFrom(champion_adapter, "champion"))


@pytest.fixture(scope="module")
def against_base(tiny_model_dir, champion_adapter, tmp_path_factory):
    return initial_losses(tiny_model_dir, tmp_path_factory.mktemp("b"), StartFrom(champion_adapter, "base"))


def test_champion_reference_starts_at_zero_margin(from_champion) -> None:
    trainer, losses = from_champion
    # policy == reference (the frozen copy of the champion) before any step: -log sigmoid(0) exactly
    assert losses and all(loss == pytest.approx(math.log(2), abs=1e-5) for loss in losses)
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all(".default." in n for n in trainable)  # the champion's adapter itself is trained


def test_base_reference_sees_the_champion_move_away_from_base(against_base) -> None:
    trainer, losses = against_base
    assert any(loss != pytest.approx(math.log(2), abs=1e-3) for loss in losses)  # policy (champion) != base
    assert "ref" not in trainer.model.peft_config
    loaded = {k: v for k, v in trainer.model.state_dict().items() if "lora_B" in k}
    assert any(v.abs().sum() > 0 for v in loaded.values())  # it starts from the champion's weights, not zero


def test_reference_cache_key_covers_the_reference_adapter(from_champion, against_base) -> None:
    from reverso.train import ref_cache

    champion, base = from_champion[0], against_base[0]
    assert ref_cache.reference_adapter_digest(champion.model, "ref") is not None
    assert ref_cache.reference_adapter_digest(base.model, "ref") is None
    assert champion.ref_cache_facts(champion.train_dataset) != base.ref_cache_facts(base.train_dataset)


def test_saved_adapter_is_the_trained_one_only(from_champion, tmp_path) -> None:
    trainer, _ = from_champion
    trainer.drop_reference_adapter()  # (last: the fixture's trainer loses its reference copy here)
    trainer.save_model(str(tmp_path / "saved"))
    assert (tmp_path / "saved/adapter_model.safetensors").exists()
    assert not list((tmp_path / "saved").glob("*/adapter_config.json"))  # no "ref/" copy beside it


def test_improve_params_are_checked_at_load(tmp_path) -> None:
    from reverso.config import ConfigError, load_params

    assert load_params(tmp_path / "none.yaml", ["improve.min_delta={2: 5.0}"]).improve.min_delta == {2: 5.0}
    with pytest.raises(ConfigError, match="improve.reference"):
        load_params(tmp_path / "none.yaml", ["improve.reference=policy"])
    with pytest.raises(ConfigError, match="rounds start at 1"):
        load_params(tmp_path / "none.yaml", ["improve.min_delta={0: 0.1}"])
