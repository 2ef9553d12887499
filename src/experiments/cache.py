"""Generated worlds, cached by scenario hash so that cells sharing a world generate it once.

The cache is a directory of data directories named by ``scenario_hash(raw)`` (the validated
scenario including its seed). ``generate`` writes atomically, so a directory that exists is
complete. Workers on one machine take a per-key file lock, so two cells that need the same world
at the same moment generate it once; workers on other machines need a shared ``cache_dir`` to
share worlds (otherwise each machine generates its own copy — same bytes, more time).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shocklab.atomic import KIND_NAMES, check_writable_parent, output_kind
from shocklab.errors import InputError

GenerateFn = Callable[..., Any]       # (raw_config, out_dir, fmt=..., source=...) -> manifest
KeyFn = Callable[[dict[str, Any]], str]


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock; worst case a world is generated twice
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


class WorldCache:
    """``get(raw)`` returns ``(data_dir, hit)``; generates on a miss."""

    def __init__(self, root: str | Path, generate: GenerateFn, key: KeyFn, fmt: str = "parquet"):
        self.root = Path(root)
        self.generate = generate
        self.key = key
        self.fmt = fmt

    def path_for(self, raw: dict[str, Any]) -> Path:
        return self.root / self.key(raw)

    def get(self, raw: dict[str, Any], source: str = "experiment") -> tuple[Path, bool]:
        target = self.path_for(raw)
        if target.is_dir():
            return target, True
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / f".{target.name}.lock"):
            if target.is_dir():  # another worker generated it while we waited
                return target, True
            self.generate(raw, target, fmt=self.fmt, source=source)
        try:
            (self.root / f".{target.name}.lock").unlink()
        except OSError:
            pass
        return target, False

    def regenerate(self, raw: dict[str, Any], source: str = "experiment") -> Path:
        """Generate a cached world again, for one a cell could not read (a file of it edited,
        cut short or deleted after it was written: every later cell trusted it and failed the
        same way, run after run). The unreadable copy is moved to a hidden name first and
        removed once the new one is in."""
        target = self.path_for(raw)
        with _file_lock(self.root / f".{target.name}.lock"):
            bad = target.with_name(f".{target.name}.bad-{os.getpid()}")
            if target.is_dir():
                os.replace(target, bad)
            try:
                self.generate(raw, target, fmt=self.fmt, source=source)
            finally:
                shutil.rmtree(bad, ignore_errors=True)
        try:
            (self.root / f".{target.name}.lock").unlink()
        except OSError:
            pass
        return target


def cache_entries(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []




_WORLD_NAME = re.compile(r"^[0-9a-f]{16,64}$")  # scenario hashes (tests' fakes use 16 digits)


def check_cache_dir(cache_dir: str | Path, out_dir: str | Path) -> Path:
    """``--cache-dir``: a new or empty directory, or one that holds only cached worlds (an
    earlier ``--cache-dir`` or ``<out>/worlds``). A user's folder, a data set, a report or an
    experiment directory is refused (worlds would be mixed into it — and an experiment's ``plots/``
    or ``cells/`` are replaced by its own reruns); so is ``--out`` inside the cache (the cache
    would then hold something that is not a world). InputError, one line."""
    try:
        target = check_writable_parent(cache_dir)
    except InputError as exc:
        raise InputError(f"--cache-dir {exc}") from None
    resolved, out = target.resolve(), Path(out_dir).resolve()
    if resolved == out or (out in resolved.parents and resolved != out / "worlds"):
        raise InputError(f"--cache-dir {target}: is --out {out_dir} or inside it (other than its "
                         "worlds/ folder); give a folder of its own")
    if resolved in out.parents:
        raise InputError(f"--out {out_dir}: is inside --cache-dir {target}; give each a folder "
                         "of its own")
    if not target.is_dir():
        return target
    kind = output_kind(target)
    if kind is not None:
        raise InputError(f"--cache-dir {target}: is a ShockLab {KIND_NAMES[kind]}, not a world "
                         "cache; give a new folder or an earlier --cache-dir")
    try:
        strays = sorted(p.name for p in target.iterdir()
                        if not p.name.startswith(".") and not (p.is_dir()
                                                               and _WORLD_NAME.match(p.name)))
    except OSError as exc:
        raise InputError(f"--cache-dir {target}: cannot list it ({exc.strerror})") from None
    if strays:
        shown = ", ".join(strays[:3]) + (f" and {len(strays) - 3} more" if len(strays) > 3 else "")
        raise InputError(f"--cache-dir {target}: holds files that are not cached worlds ({shown}); "
                         "give a new folder or an earlier --cache-dir")
    return target
