"""Prefect entrypoint for re-evaluation + the promotion gate (see prefect.yaml)."""

from reverso.orchestration import promote_flow

__all__ = ["promote_flow"]

if __name__ == "__main__":
    promote_flow()
