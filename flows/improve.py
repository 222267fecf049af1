"""Prefect entrypoint for the self-improving loop (see prefect.yaml). The flow lives in reverso.orchestration."""

from reverso.orchestration import improve_flow

__all__ = ["improve_flow"]

if __name__ == "__main__":
    improve_flow()
