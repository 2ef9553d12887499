"""Atomic output directories: build in a temporary sibling, rename into place at the end.

A failed run leaves no half-written directory and never damages an earlier one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError


def check_writable_parent(target: str | Path) -> Path:
    """Return the resolved target; raise InputError if its parent cannot hold it."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    probe = parent
    while not probe.exists():  # the nearest existing ancestor must be a writable directory
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{target}: output path is under a file ({probe}), not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{target}: output location is not writable ({probe})")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: output path exists and is not a directory")
    return target


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; on success it replaces ``target``."""
    target = check_writable_parent(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    except OSError as exc:
        raise InputError(f"{target}: cannot create output directory ({exc.strerror})") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a single file atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
