"""train.forward: the completion-only LM head and the shared-prompt packed forward equal TRL's stock forward.

Same batch, same LoRA weights (moved off zero so policy != reference): the loss, the per-pair
log-probs and the LoRA gradients of every forward agree with the stock one in fp32, with and
without gradient checkpointing, for SDPA and eager attention, and so do the reference log-probs.
"""

from __future__ import annotations

import pytest
import torch

from reverso.config import TrainParams
from reverso.train.run import _build_trainer
from reverso.train.forward import CompletionForward, pack
from support.training import TRL_EXACT

PAIRS = [  # prompts of different lengths, replies of different lengths: padding inside a micro-batch
    {"prompt": [{"role": "system", "content": "Answer in lowercase only."}, {"role": "user", "content": "Name a color."}],
     "chosen": [{"role": "assistant", "content": "blue"}],
     "rejected": [{"role": "assistant", "content": "The color I would name is, perhaps, Blue!"}], "margin": 3},
    {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": [{"role": "assistant", "content": "hi there, you"}],
     "rejected": [{"role": "assistant", "content": "Hello."}], "margin": 5},
]


def make_trainer(tiny_model_dir, work, **settings):
    from datasets import Dataset

    params = TrainParams(**{**TRL_EXACT, "batch_size": 2, "precompute_ref_log_probs": False, "max_length": 128,
                            "group_by_length": False, "margin_mode": "released", **settings})
    trainer = _build_trainer(params, tiny_model_dir, Dataset.from_list(PAIRS), None, work)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, weight in trainer.model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)
    trainer.model.train()
    return trainer


def loss_and_grads(trainer, batch, mode):
    trainer.forward_mode = mode
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, dict(batch), False)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return loss.item(), grads


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_fast_forwards_equal_stock_loss_and_gradients(tiny_model_dir, tmp_path, checkpointing, attn):
    trainer = make_trainer(tiny_model_dir, tmp_path, gradient_checkpointing=checkpointing, attn_implementation=attn)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    assert batch["input_ids"].shape[0] == 4  # two pairs in one micro-batch
    stock_loss, stock_grads = loss_and_grads(trainer, batch, "stock")
    assert any(g.abs().sum() > 0 for g in stock_grads.values())
    for mode in ("completion_head", "shared_prompt"):
        loss, grads = loss_and_grads(trainer, batch, mode)
        assert loss == pytest.approx(stock_loss, rel=1e-5, abs=1e-6), mode
        assert grads.keys() == stock_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, stock_grads[name], rtol=1e-4, atol=1e-6, msg=f"{mode}: {name}")


def test_per_pair_log_probs_and_reference_pass_equal_stock(tiny_model_dir, tmp_path):
    trainer = make_trainer(tiny_model_dir, tmp_path)
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    with torch.no_grad():
        stock = trainer.model(**inputs, labels=labels, fused_lm_head=True)
        fast = CompletionForward(trainer.model, True, ("log_probs", "entropy", "mean_logits", "is_top1"))
        packed = fast(**inputs, labels=labels)
    assert fast.packed_calls == 1
    scored = labels[:, 1:] != -100
    torch.testing.assert_close(packed.log_probs, stock.log_probs, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed.log_probs.sum(1), stock.log_probs.sum(1), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(packed.entropy[scored], stock.entropy[scored], rtol=1e-5, atol=1e-5)
    assert torch.equal(packed.is_top1 & scored, stock.is_top1 & scored)
    trainer.model.eval()
    expected = [t.clone() for t in (trainer.forward_mode == "stock" and trainer.compute_ref_log_probs(trainer.model, batch))]
    trainer.forward_mode = "shared_prompt"
    for got, want in zip(trainer.compute_ref_log_probs(trainer.model, batch), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-5)


def test_pack_layout_and_fallback():
    # pair 0: prompt [5, 6], chosen [7], rejected [8, 9]; pair 1: prompt [5], chosen [1, 2], rejected [3]
    ids = torch.tensor([[5, 6, 7, 0], [5, 1, 2, 0], [5, 6, 8, 9], [5, 3, 0, 0]])
    attention = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]])
    prompt = torch.tensor([2, 1, 2, 1])
    labels = ids.masked_fill((torch.arange(4) < prompt.unsqueeze(1)) | (attention == 0), -100)
    packed = pack(ids, attention, labels)
    assert packed["input_ids"][0].tolist() == [5, 6, 7, 8, 9]
    assert packed["position_ids"][0].tolist() == [0, 1, 2, 2, 3]
    assert packed["input_ids"][1, :4].tolist() == [5, 1, 2, 3]
    assert packed["position_ids"][1, :4].tolist() == [0, 1, 2, 1]
    allowed = packed["allowed"][0, 0]
    assert allowed[3].tolist() == [True, True, False, True, False]  # rejected sees the prompt, not the chosen reply
    assert allowed[2].tolist() == [True, True, True, False, False]
    # the rejected reply's first token is predicted by the prompt's last position, its second by its first
    assert (packed["row"][2, 1].item(), packed["col"][2, 1].item()) == (0, 1)
    assert (packed["row"][2, 2].item(), packed["col"][2, 2].item()) == (0, 3)
    different = ids.clone()
    different[2, 1] = 4  # the two rows of pair 0 disagree on the prompt: no sharing
    assert pack(different, attention, labels.masked_fill(different != ids, -100)) is None
