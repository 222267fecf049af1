"""Prefect entrypoint for the replication study (see prefect.yaml). The flow lives in reverso.orchestration."""

from reverso.orchestration import study_flow

__all__ = ["study_flow"]

if __name__ == "__main__":
    study_flow()
