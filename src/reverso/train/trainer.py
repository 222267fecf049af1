"""The DPO family with RPO's adaptive margin, as a small subclass of TRL's DPOTrainer (TRL pinned: 1.16.0).

TRL computes every loss term (``train.loss``: sigmoid = DPO, ipo, hinge, robust, sft, and SimPO
through TRL's length-normalised ``sigmoid_norm`` with the reference set to zero) from the batch's
reference log-probs. RPO's margin enters as a shift s of each pair's preference score:

    released: s = gamma * g              (the authors' code: beta * (Delta - gamma * g))
    paper:    s = gamma * g / beta       (the paper: beta * Delta - gamma * g)
    simpo:    s += simpo_gamma / beta    (SimPO's target margin, on the per-token average)

Adding s to ``ref_chosen_logps`` turns Delta into Delta - s, so TRL's own loss code computes the
shifted loss; for the length-normalised terms (ipo, simpo) the reference is shifted by s times the
chosen reply's token count, which shifts their per-token average by exactly s. gamma = 0 is exactly
TRL's loss. Logged rewards are corrected back to beta * log-ratios.

In evaluation the trainer also keeps each held-out pair's unshifted Delta, for the rule-reading
diagnostic (diagnostics.py) logged with every evaluation.

``train.forward`` picks the forward of the policy and reference passes (forward.py): TRL's stock
two-row forward, the same with the LM head on scored positions only, or one packed row per pair
that computes the shared prompt once for both replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from reverso.train.config import LENGTH_NORMALISED

MARGIN_COLUMN = "margin"
INDEX_COLUMN = "pair_index"  # the pair's row in its file: joins evaluation margins to couples and rule types
LENGTH_COLUMN = "length"  # prompt + longer reply, in tokens: what group_by_length sorts by
TRL_LOSS = {"simpo": "sigmoid_norm"}
REF_ADAPTER = "ref"  # TRL's name for the frozen copy of a model's starting adapter  # our name -> TRL's loss_type where they differ


@dataclass
class MarginCollator(DataCollatorForPreference):
    """TRL's preference collator that also carries each pair's margin g and row index."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        batch[MARGIN_COLUMN] = torch.tensor([float(e.get(MARGIN_COLUMN, 0)) for e in examples])
        batch[INDEX_COLUMN] = torch.tensor([int(e.get(INDEX_COLUMN, -1)) for e in examples])
        return batch


def margin_offset(margin: torch.Tensor, beta: float, gamma: float, mode: str) -> torch.Tensor:
    """The shift s subtracted from Delta for RPO's margin (see module docstring)."""
    if mode == "paper":
        return gamma * margin / beta
    if mode == "released":
        return gamma * margin
    if mode == "none":
        return torch.zeros_like(margin)
    raise ValueError(f"train.margin_mode must be 'paper', 'released' or 'none', got {mode!r}")


def trl_loss(terms: list[Any]) -> tuple[list[str], list[float]]:
    """``train.loss`` terms as TRL's ``loss_type`` and ``loss_weights``."""
    return [TRL_LOSS.get(t.type, t.type) for t in terms], [float(t.weight) for t in terms]


class RPOTrainer(DPOTrainer):
    """DPOTrainer + RPO's adaptive margin gamma * g on any pairwise loss of the DPO family."""

    def __init__(self, *args: Any, gamma: float = 0.05, margin_mode: str = "released",
                 loss_names: list[str] | None = None, simpo_gamma: float = 0.0,
                 ref_cache_dir: Path | None = None, base_reference: bool = False, forward: str = "stock",
                 **kwargs: Any) -> None:
        from reverso.train.forward import FORWARDS

        if forward not in FORWARDS:
            raise ValueError(f"train.forward must be one of {FORWARDS}, got {forward!r}")
        self.forward_mode = forward  # read by the reference pass, which runs inside __init__
        self.ref_cache_dir = ref_cache_dir  # read by _precompute_ref_logps, which runs inside __init__
        self._weights_digest: str | None = None
        # A model that arrives with a trained adapter (the improve loop's champion): TRL makes a frozen "ref"
        # copy of it as the reference; base_reference drops that copy, so the reference is the base model.
        self.base_reference = base_reference
        super().__init__(*args, **kwargs)
        self._settle_reference()
        self.gamma, self.margin_mode = gamma, margin_mode
        self.loss_names = loss_names or list(self.loss_types)
        self.reference_free = "simpo" in self.loss_names
        self.simpo_gamma = simpo_gamma if self.reference_free else 0.0
        self.normalised = bool(LENGTH_NORMALISED & set(self.loss_names))
        self.held_out: list[tuple[torch.Tensor, torch.Tensor]] = []  # (pair index, Delta) per eval batch
        self.held_out_facts: Any = None  # diagnostics.HeldOutFacts of the eval set, set by the caller

    def _settle_reference(self) -> None:
        """With ``base_reference``, remove TRL's frozen copy of the starting adapter (reference = base)."""
        model = self.accelerator.unwrap_model(self.model) if hasattr(self, "accelerator") else self.model
        if self.base_reference and REF_ADAPTER in getattr(model, "peft_config", {}):
            model.delete_adapter(REF_ADAPTER)

    def drop_reference_adapter(self) -> None:
        """Before saving: only the trained adapter is the model (the frozen reference copy is not)."""
        model = self.accelerator.unwrap_model(self.model)
        if REF_ADAPTER in getattr(model, "peft_config", {}):
            model.delete_adapter(REF_ADAPTER)

    def ref_cache_facts(self, dataset: Any) -> dict[str, Any]:
        """What the reference log-probs of ``dataset`` (tokenized pairs) depend on; see ref_cache.py."""
        from reverso.train import ref_cache

        if self._weights_digest is None:
            self._weights_digest = ref_cache.base_weights_digest(self.model)
        facts = ref_cache.cache_facts(self, dataset, self._weights_digest)
        adapter = ref_cache.reference_adapter_digest(self.model, REF_ADAPTER)
        return {**facts, "reference_adapter": adapter} if adapter else facts

    def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
        """TRL's reference pass, cached on disk by what the log-probs depend on (ref_cache.py).

        TRL keys its own cache on every training argument and the LoRA init, so a new beta, arm or
        seed would recompute; this key holds exactly the inputs of the reference pass.
        """
        self._settle_reference()  # runs inside DPOTrainer.__init__, after TRL added its "ref" adapter
        if self.ref_cache_dir is None:
            return super()._precompute_ref_logps(dataset, name, batch_size)
        from reverso.train import ref_cache

        facts = self.ref_cache_facts(dataset)
        path = ref_cache.cache_path(Path(self.ref_cache_dir), facts)
        cached = ref_cache.load(path, len(dataset))
        if cached is not None:
            print(f"reference log-probs for {name}: reused {path.name}")
            return dataset.add_column("ref_chosen_logps", cached[0]).add_column("ref_rejected_logps", cached[1])
        result = super()._precompute_ref_logps(dataset, name, batch_size)
        if self.accelerator.is_main_process:
            ref_cache.save(path, facts, list(result["ref_chosen_logps"]), list(result["ref_rejected_logps"]))
        return result

    def completion_forward(self, model: Any, outputs: tuple[str, ...]) -> Any:
        """The model as TRL's loss calls it: stock, or forward.py's faster forward (None = stock)."""
        from reverso.train.forward import CompletionForward, supported

        if self.forward_mode == "stock" or not supported(model):
            return None
        return CompletionForward(model, self.forward_mode == "shared_prompt", outputs, self.accelerator.autocast)

    def compute_ref_log_probs(self, model: Any, inputs: dict[str, Any]) -> Any:
        """TRL's reference pass (no grad, adapter off), through ``train.forward``."""
        return super().compute_ref_log_probs(self.completion_forward(model, ("log_probs",)) or model, inputs)

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        dataset = super()._prepare_dataset(dataset, processing_class, args, dataset_name)
        if LENGTH_COLUMN in getattr(dataset, "column_names", [LENGTH_COLUMN]):
            return dataset
        return dataset.map(lambda row: {LENGTH_COLUMN: len(row["prompt_ids"]) + max(
            len(row["chosen_ids"]), len(row["rejected_ids"]))})

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        missing = [c for c in (MARGIN_COLUMN, INDEX_COLUMN, LENGTH_COLUMN) if c not in self._signature_columns]
        self._signature_columns = [*self._signature_columns, *missing]

    def score_offset(self, margin: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
        """Per pair, what to add to the chosen reference log-prob so every pairwise score drops by s."""
        shift = margin_offset(margin, self.beta, self.gamma, self.margin_mode) + self.simpo_gamma / self.beta
        if self.normalised:  # ipo / simpo compare per-token averages: scale by the chosen reply's length
            chosen_mask, _ = completion_mask.chunk(2, dim=0)
            shift = shift * chosen_mask.sum(dim=1).clamp(min=1.0).to(shift)
        return shift

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        margin = inputs.pop(MARGIN_COLUMN, None)
        index = inputs.pop(INDEX_COLUMN, None)
        if margin is None:
            margin = torch.zeros(inputs["input_ids"].shape[0] // 2)
        mode = "train" if self.model.training else "eval"
        precomputed = self.precompute_ref_logps
        if not precomputed and not self.reference_free:
            inputs["ref_chosen_logps"], inputs["ref_rejected_logps"] = self.compute_ref_log_probs(model, inputs)
        true_ref = (inputs.get("ref_chosen_logps"), inputs.get("ref_rejected_logps"))
        if self.reference_free:  # SimPO: no reference model in the loss
            zeros = torch.zeros(margin.shape[0], device=inputs["input_ids"].device)
            inputs["ref_chosen_logps"], inputs["ref_rejected_logps"] = zeros, zeros.clone()
        offset = self.score_offset(margin.to(inputs["ref_chosen_logps"]), inputs["completion_mask"])
        inputs["ref_chosen_logps"] = inputs["ref_chosen_logps"] + offset
        captured: list[Any] = []
        fast = self.completion_forward(model, ("log_probs", "entropy", "mean_logits", "is_top1")
                                       + (("log_sum_sq_probs",) if self.use_weighting else ()))
        hook = None
        if mode == "eval" and fast is None:
            hook = model.register_forward_hook(lambda _m, _a, out: captured.append(out))
        self.precompute_ref_logps = True  # read the (shifted) reference log-probs from the batch
        try:
            result = super()._compute_loss(fast or model, inputs, return_outputs)
        finally:
            self.precompute_ref_logps = precomputed
            if hook is not None:
                hook.remove()
        if mode == "eval" and fast is not None:
            captured.append(fast.last)
        if captured and index is not None:
            self._keep_held_out(captured[0], inputs["completion_mask"], true_ref, index)
        # TRL logged beta * (log-ratio - shift) for the chosen side; report the true rewards.
        correction = self.accelerator.gather(self.beta * offset.detach()).mean().item()
        metrics = self._metrics[mode]
        metrics["rewards/chosen"][-1] += correction
        metrics["rewards/margins"][-1] += correction
        if self.gamma and self.margin_mode != "none":
            metrics["rpo/margin_term"].append(self.accelerator.gather(self.gamma * margin.float()).mean().item())
        return result

    def _keep_held_out(self, outputs: Any, completion_mask: torch.Tensor, ref: tuple[Any, Any],
                       index: torch.Tensor) -> None:
        """Each held-out pair's Delta (policy minus reference, no margin) for the rule-reading diagnostic."""
        shift_mask = completion_mask[..., 1:]
        logps = (outputs.log_probs[:, -shift_mask.size(1):].detach() * shift_mask).sum(dim=1).float()
        chosen, rejected = logps.chunk(2, dim=0)
        ref_chosen = ref[0] if ref[0] is not None else torch.zeros_like(chosen)
        ref_rejected = ref[1] if ref[1] is not None else torch.zeros_like(rejected)
        delta = (chosen - ref_chosen.to(chosen)) - (rejected - ref_rejected.to(rejected))
        gathered = self.accelerator.gather_for_metrics((index.to(delta.device), delta))
        self.held_out.append((gathered[0].cpu(), gathered[1].cpu()))

    def take_held_out(self) -> dict[int, float]:
        """pair index -> Delta of the evaluation just run (and forget them)."""
        found = {int(i): float(d) for indices, deltas in self.held_out for i, d in zip(indices, deltas, strict=True)}
        self.held_out = []
        return found

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Evaluation logs also carry the rule-reading diagnostic of the pairs just scored."""
        facts = getattr(self, "held_out_facts", None)
        if "eval_loss" in logs and facts is not None:
            from reverso.train.diagnostics import flat_metrics, rule_reading

            found = rule_reading(facts, self.take_held_out(), self.beta)
            logs = {**logs, **{f"eval_{k}": v for k, v in flat_metrics(found).items()}}
        super().log(logs, start_time)
