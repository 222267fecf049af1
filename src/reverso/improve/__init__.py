"""improve: the self-improving loop (iterative on-policy RPO), one round of DVC stage items at a time.

campaign.py holds the campaign's state and each round stage (champion, collect, train, evaluate, promote,
final); report.py writes metrics/improve.json and the curve; config.py its params section.
"""

from reverso.lazy import exports

__all__ = [
    "FINAL", "PLAN", "START", "ImproveError", "RoundDecision", "RoundPaths", "collect_round", "evaluate_round",
    "final_test", "finished_rounds", "parent_run", "promote_round", "resolve_champion", "round_plan",
    "start_campaign", "train_round", "write_plan",
]
__getattr__ = exports(__name__, "campaign", __all__)
