"""improve: the self-improving loop (iterative on-policy RPO), one round of DVC stage items at a time.

campaign.py holds the campaign's state and each round stage (champion, collect, train, evaluate, promote,
final); report.py writes metrics/improve.json and the curve.
"""

from reverso.improve.campaign import (
    FINAL, PLAN, START, ImproveError, RoundDecision, RoundPaths, collect_round, evaluate_round, final_test,
    finished_rounds, parent_run, promote_round, resolve_champion, round_plan, start_campaign, train_round, write_plan,
)

__all__ = [
    "FINAL", "PLAN", "START", "ImproveError", "RoundDecision", "RoundPaths", "collect_round", "evaluate_round",
    "final_test", "finished_rounds", "parent_run", "promote_round", "resolve_champion", "round_plan",
    "start_campaign", "train_round", "write_plan",
]
