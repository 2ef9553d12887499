"""Stable hashes and canonical JSON (sorted keys, no NaN) so identical runs give identical bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def canonical_json(obj: Any, indent: int | None = 2) -> str:
    """JSON text with sorted keys; raises ValueError on NaN/inf rather than writing invalid JSON."""
    return json.dumps(obj, sort_keys=True, indent=indent, allow_nan=False, ensure_ascii=False) + "\n"


def sha256_json(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj, indent=None).encode())
