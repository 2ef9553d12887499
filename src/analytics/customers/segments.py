"""Rule-based RFM segments (Champions, Loyal, At Risk, …) defined in config; first match wins."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import RfmConfig


def assign_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray, cfg: RfmConfig) -> np.ndarray:
    """Segment name per customer from R, F, M scores (arrays of 1..5, same length).

    Vectorized: one boolean mask per rule, resolved in rule order by ``np.select``.
    """
    r, f, m = (np.asarray(a) for a in (r, f, m))
    conds = [
        (r >= s.r.min) & (r <= s.r.max) & (f >= s.f.min) & (f <= s.f.max)
        & (m >= s.m.min) & (m <= s.m.max)
        for s in cfg.segments
    ]
    names = [s.name for s in cfg.segments]
    return np.select(conds, names, default=cfg.default_segment).astype(object)


def segment_table(rfm: pd.DataFrame, cfg: RfmConfig) -> pd.DataFrame:
    """``rfm`` plus a ``segment`` column."""
    out = rfm.copy()
    out["segment"] = assign_segments(rfm["r_score"].to_numpy(), rfm["f_score"].to_numpy(),
                                     rfm["m_score"].to_numpy(), cfg)
    return out


def segment_counts(segments: pd.Series | np.ndarray, cfg: RfmConfig) -> dict[str, int]:
    """Counts per configured segment (zero included), in config order, then the default."""
    counts = pd.Series(np.asarray(segments)).value_counts()
    names = [s.name for s in cfg.segments] + [cfg.default_segment]
    return {n: int(counts.get(n, 0)) for n in names}
