"""The RPO objective as a small subclass of TRL's DPOTrainer (TRL pinned exactly: 1.16.0).

    released: L = -log sigmoid( beta * (Delta - gamma * g) )     (the authors' code; our default)
    paper:    L = -log sigmoid( beta * Delta - gamma * g )

(the paper's gamma is beta times the released gamma: released 0.05 with beta 0.1 = paper 0.005)

with Delta = [log pi(y_c|x) - log pi_ref(y_c|x)] - [log pi(y_r|x) - log pi_ref(y_r|x)] and g the
pair's margin. TRL computes sigmoid DPO from Delta with reference log-probs taken from the batch;
adding a constant s to ``ref_chosen_logps`` turns Delta into Delta - s, so s = gamma*g/beta gives
the paper's loss and s = gamma*g the released one, with TRL's own loss code and no copy of it.
gamma = 0 is exactly TRL's sigmoid DPO. Logged rewards are corrected back to beta * log-ratios.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from trl import DPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

MARGIN_COLUMN = "margin"


@dataclass
class MarginCollator(DataCollatorForPreference):
    """TRL's preference collator that also carries each pair's integer margin g."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        batch[MARGIN_COLUMN] = torch.tensor([float(e.get(MARGIN_COLUMN, 0)) for e in examples])
        return batch


def margin_offset(margin: torch.Tensor, beta: float, gamma: float, mode: str) -> torch.Tensor:
    """The shift s subtracted from Delta inside the sigmoid (see module docstring)."""
    if mode == "paper":
        return gamma * margin / beta
    if mode == "released":
        return gamma * margin
    raise ValueError(f"train.margin_mode must be 'paper' or 'released', got {mode!r}")


class RPOTrainer(DPOTrainer):
    """DPOTrainer + the adaptive margin term gamma * g of Reverse Preference Optimization."""

    def __init__(self, *args: Any, gamma: float = 0.05, margin_mode: str = "released",
                 ref_cache_dir: Path | None = None, **kwargs: Any) -> None:
        self.ref_cache_dir = ref_cache_dir  # read by _precompute_ref_logps, which runs inside __init__
        self._weights_digest: str | None = None
        super().__init__(*args, **kwargs)
        if gamma and self.loss_types != ["sigmoid"]:
            raise ValueError(f"the RPO margin needs loss_type ['sigmoid'], got {self.loss_types}")
        self.gamma, self.margin_mode = gamma, margin_mode

    def ref_cache_facts(self, dataset: Any) -> dict[str, Any]:
        """What the reference log-probs of ``dataset`` (tokenized pairs) depend on; see ref_cache.py."""
        from reverso.train import ref_cache

        if self._weights_digest is None:
            self._weights_digest = ref_cache.base_weights_digest(self.model)
        return ref_cache.cache_facts(self, dataset, self._weights_digest)

    def _precompute_ref_logps(self, dataset: Any, name: str, batch_size: int) -> Any:
        """TRL's reference pass, cached on disk by what the log-probs depend on (ref_cache.py).

        TRL keys its own cache on every training argument and the LoRA init, so a new beta, arm or
        seed would recompute; this key holds exactly the inputs of the reference pass.
        """
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

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if MARGIN_COLUMN not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, MARGIN_COLUMN]

    def _compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool) -> Any:
        margin = inputs.pop(MARGIN_COLUMN, None)
        if margin is None or not self.gamma:
            return super()._compute_loss(model, inputs, return_outputs)
        precomputed = self.precompute_ref_logps
        if not precomputed:
            ref_chosen, ref_rejected = self.compute_ref_log_probs(model, inputs)
            inputs["ref_chosen_logps"], inputs["ref_rejected_logps"] = ref_chosen, ref_rejected
        offset = margin_offset(margin.to(inputs["ref_chosen_logps"]), self.beta, self.gamma, self.margin_mode)
        inputs["ref_chosen_logps"] = inputs["ref_chosen_logps"] + offset
        mode = "train" if self.model.training else "eval"
        self.precompute_ref_logps = True  # read the (shifted) reference log-probs from the batch
        try:
            result = super()._compute_loss(model, inputs, return_outputs)
        finally:
            self.precompute_ref_logps = precomputed
        # TRL logged beta * (log-ratio - s) for the chosen side; report the true rewards.
        correction = self.accelerator.gather(self.beta * offset.detach()).mean().item()
        metrics = self._metrics[mode]
        metrics["rewards/chosen"][-1] += correction
        metrics["rewards/margins"][-1] += correction
        metrics["rpo/margin_term"].append(self.accelerator.gather(self.gamma * margin.float()).mean().item())
        return result
