"""The policy / reference forward of the DPO loss, faster on CPU, numerically TRL's (``train.forward``).

TRL 1.16's DPO forward runs ``[prompt + chosen; prompt + rejected]`` as two rows and, off Triton
devices, projects *every* position through the LM head (its fused head compacts to the scored
positions only on CUDA/XPU). On these pairs the prompt is ~74 % of a pair's tokens and the scored
completion positions ~30 %. Two switches, each checked against the stock forward
(tests/test_forward.py: loss, per-pair log-probs and LoRA gradients equal in fp32):

``completion_head``  the backbone as TRL runs it, the LM head (TRL's own chunked log-prob kernel)
                     only on the positions whose next token is scored.
``shared_prompt``    each pair as ONE packed row ``prompt | chosen | rejected``: the rejected reply's
                     positions restart at the prompt's length and a 4-D attention mask lets them see
                     the prompt but not the chosen reply, so the prompt is computed once (its
                     activations get the gradients of both replies) — the same result as reusing the
                     prompt's KV cache for both replies, in one forward, so gradient checkpointing
                     still works. Plus the completion-only head.

``CompletionForward`` stands in for the model inside TRL's ``_compute_loss`` and
``compute_ref_log_probs``: it returns TRL's ``FusedCausalLMOutput`` in the stock ``[2B, L - 1]``
layout, so every loss term and metric of TRL runs unchanged. It calls the wrapped model itself
(DDP / accelerate autocast / PEFT keep working) and reads the backbone's last hidden state with a
forward hook. Pairs it cannot pack (prompt truncated away, rows that disagree on the prompt) and
attention kernels without custom masks fall back to the completion-only head on the stock rows.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

FORWARDS = ("stock", "completion_head", "shared_prompt")
MASKABLE = {"sdpa", "eager"}  # attention implementations that take an arbitrary 4-D mask
SCALE_FIELDS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


def supported(model: Any) -> bool:
    """Models whose logits are plain ``hidden @ W.T`` (+ bias): no soft-cap or logit scale to reproduce."""
    config = _base(model).config.get_text_config()
    return all(getattr(config, name, None) in (None, 1.0) for name in SCALE_FIELDS)


def _base(model: Any) -> Any:
    """The transformers model under accelerate / DDP / PEFT wrappers."""
    while hasattr(model, "module"):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class CompletionForward:
    """``model(input_ids, attention_mask, labels, fused_lm_head=True)`` as TRL calls it, faster (see module doc)."""

    def __init__(self, model: Any, share_prompt: bool, outputs: tuple[str, ...],
                 autocast: Any = contextlib.nullcontext) -> None:
        self.model, self.share_prompt, self.outputs, self.autocast = model, share_prompt, outputs, autocast
        self.last: Any = None  # the output of the latest call (the trainer's held-out diagnostic reads it)
        self.packed_calls = 0  # calls that ran packed (tests check the shared path really ran)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor,
                 fused_lm_head: bool = True, use_cache: bool = False, **kwargs: Any) -> Any:
        if not fused_lm_head:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        base = _base(self.model)
        packed = pack(input_ids, attention_mask, labels) if self.share_prompt and _maskable(base) else None
        if packed is None:
            row, col = _stock_index(labels)
            call = {"input_ids": input_ids, "attention_mask": attention_mask}
        else:
            self.packed_calls += 1
            row, col = packed["row"], packed["col"]
            call = {"input_ids": packed["input_ids"], "position_ids": packed["position_ids"],
                    "attention_mask": _mask_for(base, packed["allowed"])}
        hidden = _run_backbone(self.model, base, call, kwargs)
        shifted = labels[:, 1:]
        mask = shifted != -100
        self.last = self._head(base, hidden[row[mask], col[mask]], shifted[mask], mask)
        return self.last

    def _head(self, base: Any, hidden: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> Any:
        from trl.kernels import ChunkedLogProbFunction
        from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE, FusedCausalLMOutput

        head = base.get_output_embeddings()
        with self.autocast():
            per_token = ChunkedLogProbFunction.apply(hidden.to(head.weight.device), head.weight, head.bias,
                                                     targets.to(head.weight.device), 1.0,
                                                     _CHUNKED_LOGPROB_CHUNK_SIZE, None, 1.0, self.outputs)
        # masked_scatter keeps the graph connected even when no position is scored (as TRL does)
        log_probs, entropy, log_sum_sq, mean_logits, is_top1 = (
            None if x is None else x.new_zeros(mask.shape).masked_scatter(mask, x) for x in per_token)
        loss = -log_probs.sum() / mask.sum().clamp(min=1)
        return FusedCausalLMOutput(loss=loss, log_probs=log_probs, entropy=entropy, log_sum_sq_probs=log_sum_sq,
                                   mean_logits=mean_logits, is_top1=is_top1, label_mask=mask)


def _maskable(base: Any) -> bool:
    return getattr(base.config, "_attn_implementation", None) in MASKABLE


def _mask_for(base: Any, allowed: torch.Tensor) -> torch.Tensor:
    """The 4-D mask as the attention kernel takes it: bool for SDPA, additive float for eager."""
    if base.config._attn_implementation == "sdpa":
        return allowed
    dtype = base.dtype
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(~allowed,
                                                                                        torch.finfo(dtype).min)


def _run_backbone(model: Any, base: Any, call: dict[str, Any], kwargs: dict[str, Any]) -> torch.Tensor:
    """Call the (wrapped) model so DDP / autocast / PEFT apply; keep the backbone's last hidden state.

    The model's own head runs on one position only (``logits_to_keep=1``, not used).
    """
    captured: list[torch.Tensor] = []
    backbone = base.get_decoder() if hasattr(base, "get_decoder") else base.base_model
    hook = backbone.register_forward_hook(lambda _m, _a, out: captured.append(out.last_hidden_state))
    try:
        model(**call, use_cache=False, logits_to_keep=1, **kwargs)
    finally:
        hook.remove()
    return captured[-1]


def _stock_index(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row / position of the hidden state that predicts each next token, stock layout."""
    rows, length = labels.shape[0], labels.shape[1] - 1
    row = torch.arange(rows, device=labels.device).unsqueeze(1).expand(rows, length)
    col = torch.arange(length, device=labels.device).unsqueeze(0).expand(rows, length)
    return row, col


def pack(input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> dict[str, Any] | None:
    """Each pair as one row ``prompt | chosen | rejected``, or None when a pair cannot share its prompt.

    Rows 0..B-1 of the batch are the chosen sequences, B..2B-1 the rejected ones (TRL's collator),
    each ``prompt + reply`` right-padded, ``labels`` -100 outside the reply. Returns the packed ids,
    position ids, the allowed-attention mask ``[B, 1, T, T]`` and, for every (row, position) of the
    stock ``[2B, L - 1]`` next-token layout, the packed (row, position) whose hidden state predicts it.
    """
    pairs = input_ids.shape[0] // 2
    if pairs == 0 or input_ids.shape[0] != 2 * pairs:
        return None
    scored = labels != -100
    lengths = attention_mask.sum(dim=1)
    spans = []
    for i in range(pairs):
        c, r = i, pairs + i
        if not (scored[c].any() and scored[r].any()):
            return None
        prompt = int(scored[c].int().argmax())
        if prompt < 1 or prompt != int(scored[r].int().argmax()):
            return None
        lc, lr = int(lengths[c]), int(lengths[r])
        if not (bool(scored[c, prompt:lc].all()) and bool(scored[r, prompt:lr].all())
                and int(scored[c].sum()) == lc - prompt and int(scored[r].sum()) == lr - prompt
                and torch.equal(input_ids[c, :prompt], input_ids[r, :prompt])):
            return None
        spans.append((prompt, lc, lr))
    width = max(lc + lr - p for p, lc, lr in spans)
    length = labels.shape[1] - 1
    device = input_ids.device
    ids = torch.zeros((pairs, width), dtype=input_ids.dtype, device=device)
    positions = torch.zeros((pairs, width), dtype=torch.long, device=device)
    segment = torch.full((pairs, width), -1, dtype=torch.long, device=device)  # 0 prompt, 1 chosen, 2 rejected
    row = torch.zeros((2 * pairs, length), dtype=torch.long, device=device)
    col = torch.zeros((2 * pairs, length), dtype=torch.long, device=device)
    for i, (p, lc, lr) in enumerate(spans):
        c, r = i, pairs + i
        total = lc + lr - p
        ids[i, :lc], ids[i, lc:total] = input_ids[c, :lc], input_ids[r, p:lr]
        ids[i, total:] = input_ids[c, 0]  # padding: never scored, attends only to the prompt and itself
        positions[i, :lc] = torch.arange(lc, device=device)
        positions[i, lc:total] = torch.arange(p, lr, device=device)
        segment[i, :p], segment[i, p:lc], segment[i, lc:total] = 0, 1, 2
        row[c], row[r] = i, i
        # chosen: the stock position j is packed position j; rejected: j < p same (the shared prompt),
        # j >= p is the rejected reply's token j, packed after the chosen reply
        col[c] = torch.arange(length, device=device).clamp(max=width - 1)
        stock = torch.arange(length, device=device)
        col[r] = torch.where(stock < p, stock, (lc + stock - p).clamp(max=width - 1))
    query, key = segment.unsqueeze(2), segment.unsqueeze(1)
    causal = torch.ones((width, width), dtype=torch.bool, device=device).tril()
    allowed = causal & ((key == 0) | (key == query))
    return {"input_ids": ids, "position_ids": positions, "allowed": allowed.unsqueeze(1), "row": row, "col": col}
