"""Generated worlds, cached by scenario hash so that cells sharing a world generate it once.

The cache is a directory of data directories named by ``scenario_hash(raw)`` (the validated
scenario including its seed). ``generate`` writes atomically, so a directory that exists is
complete. Workers on one machine take a per-key file lock, so two cells that need the same world
at the same moment generate it once; workers on other machines need a shared ``cache_dir`` to
share worlds (otherwise each machine generates its own copy — same bytes, more time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def cache_entries(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []


