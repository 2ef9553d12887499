"""Exceptions that map to the CLI exit codes of docs/ARCHITECTURE.md principle 7.

0 ok, 1 gate failed, 2 bad input, 3 an internal error (or every cell of an experiment failed).
"""


def json_kind(value: object) -> str:
    """What a JSON value is, in JSON's words (for an error line: ``got a list``)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), "a number")


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-blank line of ``exc``'s message, at most ``limit`` characters ('' when it
    has none): what a one-line error quotes of a library's multi-line message."""
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")[:limit]


class ShockLabError(Exception):
    """Base class; ``exit_code`` is what the CLI returns when it escapes ``main``."""

    exit_code = 2


class InputError(ShockLabError):
    """Bad config, data or flags. The message is one line naming what is wrong and where."""

    exit_code = 2


class ConfigError(InputError):
    """A config that does not validate: ``loc`` is the key path of the value at fault (() for a
    rule over the whole config) and ``detail`` the message without its source (``loc: what``),
    so a caller can name what its client sent (the API names the override, not the server's
    config file)."""

    def __init__(self, message: str, loc: tuple = (), detail: str = "") -> None:
        super().__init__(message)
        self.loc = tuple(loc)
        self.detail = detail or message


class IntegrityError(InputError):
    """A data directory whose files no longer match its manifest.json (edited or cut short after
    generation). ``detail`` is the message without the command line's remedy (``--no-verify``),
    so a caller that has no such flag (the API) can name its own."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


class GateFailure(ShockLabError):
    """A quality gate (``--min-recall`` …) missed its bar. The message says which and by how
    much."""

    exit_code = 1


class AllCellsFailed(ShockLabError):
    """Every cell of an experiment failed (their errors are in results.parquet): nothing was
    measured, so the run is not a success. Exit 3, as an internal error; a cell's bad input is
    refused before any cell runs where the config shows it, and bad input every cell met (worlds
    of a valid scenario the analysis refuses) is raised as InputError instead (exit 2)."""

    exit_code = 3
