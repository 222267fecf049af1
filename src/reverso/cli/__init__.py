"""The ``reverso`` command line: ``main`` assembles the app from one module per command group."""

from reverso.cli.main import app

__all__ = ["app"]
