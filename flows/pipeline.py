"""Prefect entrypoint for the full pipeline (see prefect.yaml). The flow lives in reverso.orchestration."""

from reverso.orchestration import pipeline_flow

__all__ = ["pipeline_flow"]

if __name__ == "__main__":
    pipeline_flow()
