"""Apply a study recipe to a worktree's params.yaml and print its DVC stage items in run order, one a line:
what `reverso study --recipe R` would run, for scripts/run_items.sh to run one at a time (a STOP file
between items, each item's own log).

    PYTHONPATH=<worktree>/src python scripts/study_plan.py <worktree> configs/study/signal.yaml
"""
import sys
from pathlib import Path

from reverso.config import recipe_overrides
from reverso.orchestration import STUDY_SHARED, apply_overrides, study_items

root = Path(sys.argv[1])
recipe = Path(sys.argv[2])
apply_overrides(root, recipe_overrides(recipe if recipe.is_absolute() else root / recipe))
print("\n".join([*STUDY_SHARED, *study_items(root)]))
