"""collect: seed corpus + constraint sampler -> sessions; policy sampler -> n responses per turn."""

from reverso.lazy import exports

__all__ = ["collect", "best_sample", "PROGRESS_DIR"]
__getattr__ = exports(__name__, "run", __all__)
