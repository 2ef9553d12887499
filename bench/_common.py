"""What the benchmarks share, so each answers bad input as the CLIs do (one line on stderr naming
the flag, value or path, exit 2, nothing written): the check of a checkout given to compare with
(``--other``, ``--reference``); the CLIs' one-line argument parser (``parser``) and argparse types
of counts, rates and paths; checks of paths up front (``need_dirs``, ``need_files``,
``need_parent``); a timed child CLI's refusal passed on (``child_refused``); the one-line error
(``fail``); and the exit codes of the CLIs (``run``: 2 bad input, 1 a failed gate, 3 a bug —
never 1 for a bug, as Python's traceback exit was).

A path that was no ShockLab checkout (missing, a file, a folder without the scripts) ended
bench_sweep.py / bench_generate.py / bench_profile.py in a traceback from the first subprocess
started there, bench_generate.py after its own tree's runs."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:   # the shocklab package, unless PYTHONPATH names one
    sys.path.append(str(ROOT / "src"))

# what every checkout the benchmarks run has: the CLIs and the package sources
CHECKOUT = ("generate_data.py", "run_analysis.py", "src/shocklab")


def checkout(path: Path, flag: str, needs: Sequence[str] = ()) -> Path:
    """``path`` resolved, when it is a ShockLab checkout (``CHECKOUT``, plus ``needs``: files the
    script runs there); otherwise one line on stderr naming ``flag``, the path and what is wrong,
    and exit 2."""
    p = path.expanduser().resolve()
    if not p.exists():
        problem = "does not exist"
    elif not p.is_dir():
        problem = "is not a directory"
    else:
        missing = [n for n in (*CHECKOUT, *needs) if not (p / n).exists()]
        problem = f"is not a ShockLab checkout (no {', '.join(missing)})" if missing else ""
    if problem:
        print(f"{Path(sys.argv[0]).name}: {flag} {path}: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    return p


def _whole(text: str, least: int) -> int:
    """``text`` as a whole number of at least ``least`` (argparse types below)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < least:
        raise argparse.ArgumentTypeError(
            f"must be at least {least}, got {n}" if least else f"must be 0 or more, got {n}")
    return n


def positive_int(text: str) -> int:
    """argparse ``type`` of a count (``--repeat``, ``--files``, ``--requests`` …): a whole number
    of at least 1. 0 and negatives were taken: an empty run that ended in a traceback (no median
    of nothing), or a slice from the end (``--files -4``: all files but the last four)."""
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """argparse ``type`` of a count that may be 0 (``--skip`` days)."""
    return _whole(text, 0)


def path_arg(text: str) -> Path:
    """argparse ``type`` of a path: an empty value (``--out "$DIR"`` with DIR unset) was read as
    the current directory (runs written there, a report of "." as a world)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give a path")
    return Path(text)


def positive_float(text: str) -> float:
    """argparse ``type`` of a rate that must be above 0 (``--sensitivity``): 0, negatives, nan
    and inf gave a nan threshold and figures of nothing, without a word."""
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return x


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The CLIs' argument parser (shocklab.cli): a bad flag is one line, ``error: SCRIPT:
    argument --flag: what is wrong (see --help)``, and exit 2, not argparse's usage block.
    ``doc``: the script's docstring; its first paragraph is the description."""
    from shocklab.cli import ArgumentParser

    return ArgumentParser(description=(doc or "").split("\n\n")[0])


def need_dirs(paths: Sequence[str | Path], flag: str = "",
              what: str = "data directory") -> None:
    """Each of ``paths`` a directory, before anything runs or is written; else ``fail`` naming
    ``flag`` (empty for a positional argument) and the first path that is not."""
    for p in paths:
        if not Path(p).is_dir():
            fail(f"{flag} {p}".strip(),
                 "is not a directory" if Path(p).exists() else f"no such {what}")


def need_files(paths: Sequence[str | Path], flag: str = "") -> None:
    """Each of ``paths`` a file (to read), else ``fail`` naming ``flag`` and the path."""
    for p in paths:
        if not Path(p).is_file():
            fail(f"{flag} {p}".strip(), "is not a file" if Path(p).exists() else "no such file")


def need_parent(path: str | Path, flag: str) -> None:
    """``path`` (to be written at the end of a long run) lies in an existing directory, else
    ``fail`` now: it was an OSError after every world had been analysed."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        fail(f"{flag} {path}", f"no directory {parent} to write it in")


def child_refused(returncode: int, stderr: str, child: str) -> None:
    """A child CLI's exit 2 (bad input it refused, said in one line) passed on as this script's:
    ``fail`` naming ``child`` with that line. It was a CalledProcessError traceback or a
    ``sys.exit(message)``: exit 1. Any other code: nothing (the caller decides)."""
    if returncode == 2:
        said = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("PEAK_KB")]
        fail(child, said[-1].removeprefix("error: ") if said else "exit 2")


def only_with(needed: str, given: dict[str, bool]) -> None:
    """Flags that act only with ``needed`` (``--analysis``, ``--cv`` …): one of ``given`` (flag
    -> was it given) without it is ``fail``, as the CLIs refuse a flag they would ignore (it was
    ignored without a word: a run that did not measure what was asked)."""
    for flag, is_given in given.items():
        if is_given:
            fail(flag, f"has no effect without {needed}")


def fail(what: str, problem: str) -> NoReturn:
    """One line on stderr, ``error: WHAT: PROBLEM`` (``what``: the flag and value, or the path,
    at fault), and exit 2: bad input, before anything is written."""
    print(f"error: {what}: {problem}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def run(main: Callable[[], int | None]) -> int:
    """``main()``'s exit code, as the CLIs end: bad input the package refuses (InputError,
    ConfigError: a missing data directory, a bad ``--set``) is its one line and exit 2, a failed
    gate 1; anything else is a bug, its traceback and exit 3, never 1 (1 is a failed gate). A
    script's ``SystemExit("message")`` (a child that failed) is the message and exit 3."""
    from shocklab.errors import ShockLabError

    try:
        return int(main() or 0)
    except ShockLabError as exc:
        print(f"{'error' if exc.exit_code == 2 else 'FAILED'}: {exc}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return int(exc.code or 0)
        print(exc.code, file=sys.stderr)
        return 3
    except Exception as exc:
        from shocklab.cli import ENV_ERRNOS

        if isinstance(exc, OSError) and exc.errno in ENV_ERRNOS:   # disk full, read-only …
            print(f"error: {exc.filename or 'cannot write or read'}: {ENV_ERRNOS[exc.errno]}",
                  file=sys.stderr)   # the environment, not a bug: as the CLIs, exit 2
            return 2
        traceback.print_exc()
        print(f"internal error in {Path(sys.argv[0]).name} (exit 3: a bug, not bad input)",
              file=sys.stderr)
        return 3


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temporary directory for the block, removed when it ends however it ends: an error,
    Ctrl-C or SIGTERM, which unwinds like Ctrl-C while the block runs (``timeout`` or a CI
    runner's kill left bench_sweep's and bench_benchmark's worlds and runs in /tmp)."""
    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield Path(tmp)
    finally:
        signal.signal(signal.SIGTERM, before)
