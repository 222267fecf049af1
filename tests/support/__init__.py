"""Test-only code the tests (and bench/) import; nothing in src/ does.

reference, reference_ifbench  lm-eval's IFEval and IFBench's own checkers beside ours (agreement tests, benchmark)
stress                        hostile long responses and how a check's time grows with length
pairs                         judged samples for the pair builders, RPO pair files for training
workspace                     a copy of the repo to run the real pipeline in
servers                       loopback servers for the integration tests
"""
