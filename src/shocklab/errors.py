"""Exceptions that map to the CLI exit codes of docs/ARCHITECTURE.md principle 7.

0 ok, 1 gate failed, 2 bad input.
"""


class ShockLabError(Exception):
    """Base class; ``exit_code`` is what the CLI returns when it escapes ``main``."""

    exit_code = 2


class InputError(ShockLabError):
    """Bad config, data or flags. The message is one line naming what is wrong and where."""

    exit_code = 2


class GateFailure(ShockLabError):
    """A quality gate (``--min-recall`` …) missed its bar. The message says which and by how
    much."""

    exit_code = 1
