"""Rule-based RFM segments (Champions, Loyal, At Risk, …) defined in config; first match wins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import RfmConfig


def segment_codes(r: np.ndarray, f: np.ndarray, m: np.ndarray, overdue: np.ndarray | None,
                  cfg: RfmConfig) -> np.ndarray:
    """Index into ``cfg.names`` per customer from R, F, M scores (1..5) and overdue ratios.

    Vectorized: one boolean mask per rule, resolved in rule order by ``np.select``. ``overdue``
    is NaN for customers without a cadence (one order); None when no rule needs it.
    """
    names = cfg.names
    code = {n: i for i, n in enumerate(names)}
    conds = []
    for s in cfg.segments:
        c = (r >= s.r.min) & (r <= s.r.max) & (f >= s.f.min) & (f <= s.f.max)
        if s.m.min > 1 or s.m.max < 5:
            c &= (m >= s.m.min) & (m <= s.m.max)
        if s.overdue is not None:
            if overdue is None:
                raise ValueError("a segment rule uses 'overdue' but no overdue ratios were given")
            c &= (overdue >= s.overdue.min) & (overdue <= s.overdue.max)  # NaN compares False
        conds.append(c)
    return np.select(conds, [code[s.name] for s in cfg.segments], default=code[cfg.default_segment])


def assign_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray, overdue: np.ndarray | None,
                    cfg: RfmConfig) -> np.ndarray:
    """Segment name per customer (object array)."""
    return np.asarray(cfg.names, dtype=object)[segment_codes(r, f, m, overdue, cfg)]


def segment_table(rfm: pd.DataFrame, cfg: RfmConfig) -> pd.DataFrame:
    """``rfm`` (from ``compute_rfm``) plus a ``segment`` column."""
    out = rfm.copy()
    out["segment"] = assign_segments(rfm["r_score"].to_numpy(), rfm["f_score"].to_numpy(),
                                     rfm["m_score"].to_numpy(), rfm["overdue"].to_numpy(dtype=float), cfg)
    return out


def segment_counts(segments: pd.Series | np.ndarray, cfg: RfmConfig) -> dict[str, int]:
    """Counts per configured segment (zero included), in config order, then the default."""
    counts = pd.Series(np.asarray(segments)).value_counts()
    return {n: int(counts.get(n, 0)) for n in cfg.names}
