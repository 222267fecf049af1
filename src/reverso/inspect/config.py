"""The ``inspect`` section: the static inspector site and metrics/headline.json."""

from __future__ import annotations

from pydantic import Field

from reverso.config_base import _Section


class InspectParams(_Section):
    """``inspect``: the static inspector site (reports/*.html) and metrics/headline.json."""

    rows_per_page: int = Field(50, ge=5, le=1000)  # pairs rendered per page; filters run over all of them
    log_to_mlflow: bool = True  # attach the pages to the training run (metrics/train.json run_id)
