"""evaluate: held-out suites (IFEval-, Multi-IF-, SysBench-style, plus official files), base vs policy.

Every model is decoded greedily with identical settings; multi-turn suites answer on the model's
own history. The current ``@champion`` (when there is one and ``evaluate.with_champion``) answers
the same suites in the same run, so policy-vs-base and policy-vs-champion are paired differences
with bootstrap CIs (``scoring.py``). Results go to ``metrics/eval.json`` (DVC metrics), a PNG, a
markdown report, the training run in MLflow and tags on the registered version — one of them,
``eval.evidence``, is what the promotion gate decides on.
"""

from reverso.lazy import exports

__all__ = ["evaluate", "evaluate_models", "compare_versions", "generate_suites", "score_model"]
__getattr__ = exports(__name__, "run", __all__)
