"""Directory helpers for tests of what an output run leaves on disk."""

from __future__ import annotations

from pathlib import Path


def snapshot(d: Path) -> dict[str, bytes]:
    """Every file under ``d`` by its relative path, with its bytes ("nothing was touched" is
    equality of two snapshots)."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}
