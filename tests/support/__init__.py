"""Test-only code the tests (and bench/) import; nothing in src/ does.

reference, reference_ifbench  lm-eval's IFEval and IFBench's own checkers beside ours (agreement tests, benchmark)
stress                        hostile long responses and how a check's time grows with length
"""
