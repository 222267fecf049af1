"""study: does RPO beat plain DPO and the base model? Arms x seeds from the same pairs, one evaluation.

Arms are data (``study.arms``: name -> pair builder x loss x margin, train.config.ArmSpec), all
trained from the same collected responses and the same pairs stage. The defaults are the paper's:

- ``dpo``            count-based pairs on the original instruction, no margin (plain DPO, the baseline)
- ``rpo``            reversed pairs with the adaptive margin gamma * g
- ``rpo_no_margin``  reversed pairs, no margin (the paper's margin ablation)

Each arm x seed is one DVC stage item (``study-train@<arm>-<seed>``, ``study-evaluate@<arm>-<seed>``),
so a rerun skips every item that already finished. Evaluation decodes every model greedily on the
same suites (built once from ``evaluate.seed``, or ``study.validation_seed`` for the tuning split)
and stores per-session scores, so ``study-report`` can compute paired differences with bootstrap CIs.
"""

from reverso.lazy import exports

__all__ = ["train_arm", "evaluate_model", "evaluate_aa", "report_study", "trained_model", "arm_train_params", "item_name", "STUDY_EVAL", "STUDY_MODELS"]
__getattr__ = exports(__name__, "run", __all__)
