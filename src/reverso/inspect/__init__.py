"""inspect: a static, offline HTML site that shows what the pipeline run did.

``reports/index.html`` (overview), ``reports/pairs.html`` (every pair: original vs reversed rules as
a diff, the prompt as the model saw it, chosen beside rejected with per-rule verdicts and reasons,
quarantined rows; filters, search, pagination) and ``reports/evaluation.html`` (base vs policy per
prompt, won/lost first; pass rates with CIs, training curves). Built with Jinja2; charts are
Vega-Lite specs from Altair rendered by the Vega bundle that vl-convert-python ships, inlined, so the
site works offline. The stage also writes ``metrics/headline.json`` (what ``dvc metrics show`` lists)
and the per-suite / per-constraint detail for ``dvc plots show``, and logs the site to the training
run in MLflow.
"""

from reverso.lazy import exports

__all__ = ["inspect"]
__getattr__ = exports(__name__, "run", __all__)
