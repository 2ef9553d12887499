"""Stable hashes and canonical JSON (sorted keys, no NaN) so identical runs give identical bytes."""

from __future__ import annotations

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
