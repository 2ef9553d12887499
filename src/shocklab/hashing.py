"""Stable hashes and canonical JSON (sorted keys, no NaN) so identical runs give identical bytes."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np


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
    return (
        json.dumps(obj, sort_keys=True, indent=indent, allow_nan=False, ensure_ascii=False) + "\n"
    )


def sha256_json(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj, indent=None).encode())


def json_ready(obj: Any, fallback: Callable[[Any], Any] | None = None) -> Any:
    """A JSON-safe copy of free-form data, recursively: the one JSON-cleaning helper.

    Dict keys become strings; tuples become lists; DataFrames become lists of records; numpy
    scalars become Python; NaN, inf, ``pd.NA`` and ``NaT`` become None; timestamps and dates become
    ISO text (a date when the time is midnight). Any other object is returned as is, or passed to
    ``fallback`` when given (e.g. ``str``).
    """
    if isinstance(obj, dict):
        return {str(k): json_ready(v, fallback) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v, fallback) for v in obj]
    if obj is None or isinstance(obj, str):
        return obj
    # pandas objects exist only once pandas is imported (this module does not import it)
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(obj, pd.DataFrame):
            return json_ready(obj.to_dict(orient="records"), fallback)
        if obj is pd.NaT or obj is pd.NA:
            return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, datetime):
        midnight = (obj.hour, obj.minute, obj.second, obj.microsecond) == (0, 0, 0, 0)
        return obj.date().isoformat() if midnight else obj.isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    return obj if fallback is None else fallback(obj)


@functools.cache
def code_fingerprint(*packages: str) -> str:
    """sha256 over the Python source of ``packages`` (importable package names, e.g.
    ``simulation``): every ``.py`` file under each package's directory, by relative path and
    bytes. An experiment keys its cell records and cached worlds with it, so a rerun after a
    change of code computes them again instead of resuming on the earlier code's results."""
    import importlib.util

    h = hashlib.sha256()
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ValueError(f"{name}: not an importable package")
        root = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            h.update(f"{name}/{rel}\0".encode())
            h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()
