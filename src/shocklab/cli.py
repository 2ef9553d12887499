"""CLI plumbing shared by generate_data.py, run_analysis.py and run_experiment.py.

Exit codes (docs/ARCHITECTURE.md principle 7): 0 ok · 1 a quality gate failed · 2 bad input or
config (also: disk full, out of memory — the environment, not a bug) · 3 internal error. ``run_cli``
is the one error boundary of every CLI: bad input prints one line on stderr; an unexpected exception
prints "internal error" with the log file that holds its traceback, and exits 3 — never 1, which CI
reads as "a quality gate failed". ``--debug`` adds the traceback; the exit codes stay the same.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from .children import stop_with_server
from .errors import ShockLabError
from .signals import Terminated, end_resends, on_sigint, on_sigterm

# errors of the environment, not of ShockLab: reported in one line with exit 2, nothing replaced
ENV_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
              errno.EPERM: "operation not permitted",
              # a path the user gave that no file system accepts: bad input, not a bug
              errno.ENAMETOOLONG: "file name too long",
              errno.ELOOP: "too many levels of symbolic links",
              # a mount point or a directory in use renamed (refused up front where it is known)
              errno.EBUSY: "device or resource busy"}
_log_file: Path | None = None  # the rotating log of the current CLI run ("internal error" lines)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    _argv: list[str] = []

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        self._argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    def _get_values(self, action, arg_strings):  # type: ignore[override]
        """``--min-recall=--``: argparse (before 3.12.7) drops the '--' as the end of the flags
        and hands the option an empty list, past its type and choices (--workers=-- crashed
        with exit 3, --executor=-- ran the default executor). The value is the text '--'."""
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            value = self._get_value(action, "--")
            self._check_value(action, value)
            return value
        return super()._get_values(action, arg_strings)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message}{self._dash_hint(message)} (see --help)\n")

    def _dash_hint(self, message: str) -> str:
        """'--step -1D': argparse reads a value starting with '-' as a flag ("expected one
        argument"); say how to pass it."""
        m = re.match(r"argument (\S+): expected one argument", message)
        if not m:
            return ""
        flags = set(m.group(1).split("/"))
        for flag, value in zip(self._argv, self._argv[1:], strict=False):
            if flag in flags and value.startswith("-") and not value.startswith("--") \
                    and value.split("=", 1)[0] not in self._option_string_actions:
                return f": {value!r} reads as a flag; write {flag}={value}"
        return ""


def nonempty(what: str):
    """argparse ``type`` of a flag whose value must not be empty (or blank): ``--kpis "$FILE"``
    with the variable unset. ``what``: what to give instead, for the error line."""

    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"is empty; give {what}, or leave the flag out")
        return text

    return check


# a flag naming a file or directory: empty, it was read as no flag at all (run_analysis.py's
# --kpis, --transactions, --events, --calendar, --config: the default data or config analysed,
# silently) or as the current directory (--data; generate_data.py's --config: "cannot read config
# file (IsADirectoryError)")
path_arg = nonempty("a path")


def add_common_flags(parser: argparse.ArgumentParser, alerts: bool = False,
                     example: str = "seed=7") -> None:
    """``--set``, ``--debug``, ``--quiet``; ``alerts``: the command may send alerts, which a
    console sink prints under ``--quiet`` too (an alert is what that sink was configured for);
    ``example``: a ``--set`` that the command's own config file accepts."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override one config value by dotted key, e.g. --set {example} (repeatable)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument(
        "--quiet", action="store_true",
        help="only warnings, errors and alerts (customers.alerts.console) on the console, on "
             "stderr" if alerts else "only warnings and errors on the console, on stderr",
    )


def add_force_flag(
    parser: argparse.ArgumentParser,
    help_text: str = ("--out holds a folder ShockLab did not write, or another kind of ShockLab "
                      "output (a data set where a run goes, or the reverse): move it aside to "
                      "<out>.kept-N and write afresh (nothing is deleted; an earlier output of "
                      "the same kind is replaced without it)"),
) -> None:
    parser.add_argument("--force", action="store_true", help=help_text)


def setup_logging(name: str, debug: bool = False, quiet: bool = False) -> logging.Logger:
    """Console output for people plus a rotating file in ``logs/`` (``SHOCKLAB_LOG_DIR`` overrides;
    empty disables the file)."""
    global _log_file
    _log_file = None
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
            # imported here: socket and pickle come with it, ~5 ms when no file is written
            from logging.handlers import RotatingFileHandler

            Path(log_dir).mkdir(parents=True, exist_ok=True)
            fh = RotatingFileHandler(
                Path(log_dir) / "shocklab.log", maxBytes=2_000_000, backupCount=3, encoding="utf-8"
            )
            fh.setLevel(logging.DEBUG)
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            fh.handleError = _drop_file_log(fh)   # type: ignore[method-assign]
            root.addHandler(fh)
            _log_file = Path(log_dir) / "shocklab.log"
        except OSError as exc:  # logs are a convenience: an unwritable logs/ must not stop the
            print(f"warning: cannot open the log file {Path(log_dir) / 'shocklab.log'} "   # run
                  f"({_why(exc)}): this run is not logged there", file=sys.stderr)   # (it was mute)
    return logging.getLogger(f"shocklab.{name}")


def _why(exc: OSError) -> str:
    """An OSError's reason in words (a full disk or quota by name)."""
    return ENV_ERRNOS.get(exc.errno or 0) or exc.strerror or type(exc).__name__


def _drop_file_log(fh: logging.FileHandler) -> Callable[[logging.LogRecord], None]:
    """The log file's ``handleError``: a write failing with an OSError (a full disk, a quota)
    prints one warning and drops the file log for the rest of the run -- each record printed a
    "--- Logging error ---" traceback on stderr, --quiet or not (21 in one run). Any other error
    (a message's bad arguments) is reported as before."""

    def handle_error(record: logging.LogRecord) -> None:
        global _log_file
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            logging.FileHandler.handleError(fh, record)
            return
        fh.emit = lambda record: None   # type: ignore[method-assign]  # direct handle() calls too
        logging.getLogger("shocklab").removeHandler(fh)
        with contextlib.suppress(OSError):   # its buffer cannot be flushed either
            fh.close()
        _log_file = None   # an internal error no longer sends the user to it
        print(f"warning: cannot write the log file {fh.baseFilename} ({_why(exc)}): the rest "
              "of this run is not logged there", file=sys.stderr)

    return handle_error


class held_console:
    """Hold what the console would print inside the block (the log file still gets it at once),
    then print it if the block ends normally and drop it if it raises: reading several input
    files, a bad later one (--events) is one error line, not the first file's ingest warnings
    followed by it."""

    def __init__(self) -> None:
        self.held: list[logging.LogRecord] = []
        self.handlers = [h for h in logging.getLogger("shocklab").handlers
                         if not isinstance(h, logging.FileHandler)]

    def _hold(self, record: logging.LogRecord) -> bool:
        if not self.held or self.held[-1] is not record:   # once, however many handlers
            self.held.append(record)
        return False

    def __enter__(self) -> held_console:
        for h in self.handlers:
            h.addFilter(self._hold)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for h in self.handlers:
            h.removeFilter(self._hold)
        if exc_type is None:
            for record in self.held:
                for h in self.handlers:
                    if record.levelno >= h.level:
                        h.handle(record)


def _log_to_file(level: int, text: str) -> None:
    """One line to the log file only (the console already has it): how the run ended."""
    root = logging.getLogger("shocklab")
    for h in root.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(root.makeRecord("shocklab.cli", level, __file__, 0, "%s", (text,), None))


def _log_traceback(exc: BaseException) -> Path | None:
    """Write the traceback to the log file only (the console gets one line)."""
    root = logging.getLogger("shocklab")
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    written = False
    for h in root.handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(
                root.makeRecord(
                    "shocklab.cli", logging.ERROR, __file__, 0, "internal error\n%s", (text,), None
                )
            )
            written = True
    return _log_file if written else None


def tolerant_console() -> None:
    """A console that cannot encode a character shows it escaped (``\\u2014``), as Python's
    stderr always does, instead of losing the line. On a Latin-1 or ASCII locale (or
    ``PYTHONIOENCODING=ascii``, a Windows code page) stdout was strict: every console line holding
    a dash, an ellipsis or an arrow (the scorecard, alerts, "generating …") was dropped with a
    "--- Logging error ---" traceback on stderr, and an exit code of 0."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="backslashreplace")
            except (ValueError, OSError, AttributeError):  # closed or detached: leave it be
                pass


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; turn every way it can end into an exit code and at most one line on stderr.

    0 ok · 1 a quality gate failed (GateFailure only) · 2 bad input, config or environment (disk
    full, out of memory) · 3 internal error (a bug: the traceback goes to the log file; also an
    experiment whose every cell failed, ``AllCellsFailed``, the cells' errors in its results)
    · 130 Ctrl-C · 143 SIGTERM (temporary output removed on the way out).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    tolerant_console()
    previous = previous_int = None
    if threading.current_thread() is threading.main_thread():
        # a run the API server started ends with it (SIGTERM), even a killed one; before the
        # handlers: a server already gone ends this run by the signal's default, nothing written
        stop_with_server()
        previous = signal.signal(signal.SIGTERM, on_sigterm)
        # only over Python's own handler: an ignored SIGINT (a background job) stays ignored
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            previous_int = signal.signal(signal.SIGINT, on_sigint)
    try:
        rc = main(args)
        return int(rc or 0)
    except Terminated:
        print(
            "terminated (SIGTERM); outputs written atomically were left as they were",
            file=sys.stderr,
        )
        return 143
    except ShockLabError as exc:
        if debug:
            traceback.print_exc()
        line = f"error: {exc}" if exc.exit_code == 2 else f"FAILED: {exc}"
        print(line, file=sys.stderr)
        # the log file said nothing of a failed gate or a refused input: a CI job keeping
        # logs/shocklab.log had the run's start and not why it ended with 1 or 2
        _log_to_file(logging.ERROR, f"{line} (exit {exc.exit_code})")
        return exc.exit_code
    except SystemExit as exc:  # argparse: --help (0) or a bad flag (2, message already printed)
        if exc.code is None or exc.code in (0, 2):
            return int(exc.code or 0)
        print(f"internal error: exit({exc.code!r}) called inside ShockLab", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in ENV_ERRNOS:
            return _internal(exc, debug)
        if debug:
            traceback.print_exc()
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"error: cannot write or read{where}: {ENV_ERRNOS[exc.errno]}; outputs written "
            "atomically "
            "were left as they were",
            file=sys.stderr,
        )
        return 2
    except RuntimeError as exc:
        # Path.resolve() before Python 3.13 reports ELOOP (--data or --out a symlink loop) as
        # RuntimeError("Symlink loop from '...'"): bad input, not a bug
        if not str(exc).startswith("Symlink loop from "):
            return _internal(exc, debug)
        if debug:
            traceback.print_exc()
        where = str(exc).removeprefix("Symlink loop from ").strip("'")
        print(f"error: {where}: {ENV_ERRNOS[errno.ELOOP]} (a symlink loop)", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if debug:
            traceback.print_exc()
        _log_traceback(exc)
        print(
            "error: out of memory; reduce the size of the input or the simulated world",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # the one boundary: a bug must not look like a failed gate (1)
        return _internal(exc, debug)
    finally:
        if previous is not None or previous_int is not None:
            end_resends()   # none may reach the handlers restored here
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


def reuse_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for the next allocation, for a short batch CLI.

    By default a large block (numpy's arrays of a few MB) is mapped fresh from the kernel and
    unmapped when freed, and the heap's top is handed back past a small threshold, so every
    temporary array of a simulation pays page faults (zeroed pages) again: ~50 k faults, a
    fifth of a one-year generation's CPU. Blocks below 32 MB (glibc's ceiling for this
    setting) now come from the heap and up to 1 GB of free heap is kept: ~25 % fewer faults.
    The results are the same; only where memory comes from changes. Not glibc (or no ctypes):
    nothing happens."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (ImportError, OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 1 << 30)


def skip_pydantic_plugins() -> None:
    """Build pydantic models without looking for pydantic plugins, for a CLI's start-up.

    Before its first model, pydantic imports ``importlib.metadata`` (with the ``email``
    package) and reads every installed distribution's entry points to find plugins: 20-40 ms of
    a 0.6 s generation, for none (none is installed with ShockLab). This is pydantic's own
    ``PYDANTIC_DISABLE_PLUGINS=__all__`` (set here unless the user set it), with the loader
    module pydantic asks for the plugins stood in by one that answers "none" without those
    imports. With the variable set otherwise by the user, or pydantic's loader already
    imported, nothing changes."""
    import types

    name = "pydantic.plugin._loader"
    if name in sys.modules or os.environ.get("PYDANTIC_DISABLE_PLUGINS", "__all__") != "__all__":
        return
    os.environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    stand_in = types.ModuleType(name)
    stand_in.get_plugins = lambda: ()   # what the real loader returns when all are disabled

    def __getattr__(attr: str) -> object:   # anything else: the real module
        if attr.startswith("__"):            # the import system probing (__path__ …)
            raise AttributeError(attr)
        import importlib

        if sys.modules.get(name) is stand_in:
            del sys.modules[name]
        return getattr(importlib.import_module(name), attr)

    stand_in.__getattr__ = __getattr__
    sys.modules[name] = stand_in


def exit_process(code: int) -> NoReturn:
    """End a CLI process with ``code``, skipping the interpreter's teardown: it frees every
    object one by one (~0.2-0.8 s after an analysis or a generation on a quiet machine, seconds
    under load) when everything has been written already. The atexit handlers still run
    (logging's flush and close among them) and stdio is flushed first. With another non-daemon
    thread still alive, the normal ``sys.exit`` (which waits for it) instead. For the scripts'
    ``__main__`` only: ``run_cli`` itself returns, so tests may call it in-process."""
    import atexit

    if any(t is not threading.current_thread() and not t.daemon and t.is_alive()
           for t in threading.enumerate()):
        sys.exit(code)
    try:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BaseException:  # noqa: BLE001 — whatever went wrong, the normal way out
        sys.exit(code)
    os._exit(code)


def _internal(exc: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    path = _log_traceback(exc)
    msg = str(exc).splitlines()[0][:200] if str(exc) else ""
    where = f"traceback in {path}" if path else "rerun with --debug for the traceback"
    print(
        f"internal error: {type(exc).__name__}{': ' + msg if msg else ''} (a bug in ShockLab; "
        f"{where})",
        file=sys.stderr,
    )
    return 3
