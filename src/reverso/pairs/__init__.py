"""pairs: every builder's pair set (builders.py), split by session, gated by Great Expectations.

All sets come from the same finished responses and pass through the same caps, length filter and
(optionally) the same size, so the ablation arms differ only in how a pair is chosen. Caps count
reply pairs: an RPO couple (the same two replies under both reversed instructions) stays whole.
"""

from reverso.lazy import exports

__all__ = ["pairs", "build_pair_sets", "cap_reply_pairs", "equalize", "finished_only"]
__getattr__ = exports(__name__, "run", __all__)
