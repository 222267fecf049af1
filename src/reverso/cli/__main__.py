"""``python -m reverso.cli`` (what ``accelerate launch ... -m reverso.cli`` and torchrun run)."""

from reverso.cli.main import app

app()
