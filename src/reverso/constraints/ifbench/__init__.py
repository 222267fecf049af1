"""IFBench's out-of-distribution instruction ids as evaluation-only constraint types.

IFBench (Pyatkin et al. 2025, allenai/IFBench) scores 58 verifiable instruction ids that reverso
never trains on. Each is registered with IFBench's id, kwargs and checking semantics and agrees
with the reference checkers verdict for verdict (tests/test_ifbench_agreement.py; where the
reference itself is wrong, docs/constraints.md says so). They are ``evaluation_only``: never
sampled and never reversed. Every check is linear in the response length.
"""

from reverso.constraints.ifbench import counts_words, formats, tasks  # noqa: F401  (registers the types)
