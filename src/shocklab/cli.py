"""CLI plumbing shared by generate_data.py, run_analysis.py and run_experiment.py.

Exit codes (DESIGN.md): 0 ok · 1 a quality gate failed · 2 bad input or config. Bad input prints
one line on stderr and no traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import ShockLabError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config value by dotted key, e.g. --set seed=7 (repeatable)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on the console")


def setup_logging(name: str, debug: bool = False, quiet: bool = False) -> logging.Logger:
    """Console output for people plus a rotating file in ``logs/`` (``SHOCKLAB_LOG_DIR`` overrides;
    empty disables the file)."""
    root = logging.getLogger("shocklab")
    for h in root.handlers:  # close the log file of an earlier setup (in-process CLI calls)
        h.close()
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    console = logging.StreamHandler(sys.stderr if quiet else sys.stdout)
    console.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    log_dir = os.environ.get("SHOCKLAB_LOG_DIR", "logs")
    if log_dir:
        try:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            fh = logging.handlers.RotatingFileHandler(Path(log_dir) / "shocklab.log", maxBytes=2_000_000,
                                                      backupCount=3, encoding="utf-8")
            fh.setLevel(logging.DEBUG)
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            root.addHandler(fh)
        except OSError:
            pass  # logs are a convenience; an unwritable logs/ must not stop the run
    return logging.getLogger(f"shocklab.{name}")


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main`` and turn ShockLab errors into exit codes and one-line messages."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        return int(main(args) or 0)
    except ShockLabError as exc:
        if debug:
            raise
        print(f"error: {exc}" if exc.exit_code == 2 else f"FAILED: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # argparse: --help (0) or a bad flag (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
