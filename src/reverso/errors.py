"""The base class of the project's own errors; the CLI prints any of them as one line, not a traceback.

This module imports nothing, so any module can subclass ``ReversoError`` without an import cycle.
"""


class ReversoError(Exception):
    """A failure the user can act on: bad params or data, a failed gate, a busy workspace, an unreachable server.

    Subclasses keep their builtin base too (``ConfigError(ReversoError, ValueError)``), so callers that
    catch ``ValueError`` or ``RuntimeError`` keep working.
    """
