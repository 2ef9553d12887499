"""The one file-name sanitizer: a name (a KPI, a scenario, a swept parameter or metric, an
event type) as a file-name stem. Used by the run id's label (``analytics.pipeline.run_id``), the
KPI plots (``analytics.report.plot_names``) and the sweep plots (``experiments.plots``)."""

from __future__ import annotations

import hashlib

MAX_FILE_BYTES = 255   # a file name's limit on common file systems
MAX_BYTES = 100   # a name's stem beyond it is hashed: a 300-character KPI name was "not written"


def safe_name(name: str, max_len: int | None = None, *, hashed: bool = False) -> str:
    """``name`` with every character other than a letter, a digit, ``-`` and ``_`` made ``_``.
    ``max_len`` without ``hashed``: cut to that many characters (a label). With ``hashed``: a
    stem of more than ``max_len`` UTF-8 bytes becomes ``hashed_name`` (a file name that must
    stay valid and tell long names apart)."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
    if max_len is None:
        return stem
    if not hashed:
        return stem[:max_len]
    return stem if len(stem.encode()) <= max_len else hashed_name(name, max_len)


def hashed_name(name: str, max_bytes: int = MAX_BYTES) -> str:
    """``safe_name(name)`` cut to half of ``max_bytes`` (whole characters), then ``_`` and 10 hex
    digits of the SHA-256 of ``name``: unique where two names share a stem (``a/b``, ``a?b``)."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return safe_name(name).encode()[:max_bytes // 2].decode(errors="ignore") + "_" + digest


def file_name(template: str, *names: str) -> str:
    """``template`` (``"{}_vs_{}.png"``) filled with the ``safe_name`` of each name; where that
    is no valid file name (over ``MAX_FILE_BYTES``), a name over ``MAX_BYTES`` is hashed."""
    out = template.format(*map(safe_name, names))
    if len(out.encode()) > MAX_FILE_BYTES:
        out = template.format(*(safe_name(n, MAX_BYTES, hashed=True) for n in names))
    return out
