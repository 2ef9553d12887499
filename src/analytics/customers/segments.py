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


class SegmentLookup:
    """``segment_codes`` as a table over (R, F, M, overdue region): the rules only compare scores
    1..5 and the overdue ratio with a few boundaries, so every customer in one cell gets the same
    segment. Build once, then ``cell`` + a table lookup replaces the rule-by-rule ``np.select``
    (the monitor segments every customer every day). Same results, NaN overdue included."""

    def __init__(self, cfg: RfmConfig) -> None:
        self.cfg = cfg
        b = sorted(
            {
                v
                for s in cfg.segments
                if s.overdue is not None
                for v in (s.overdue.min, s.overdue.max)
            }
        )
        self.bounds = np.asarray(b, dtype=float)
        m = len(b)
        # one representative overdue value per region: below b0, b0, between, b1, ..., above, NaN
        reps = []
        for i in range(m + 1):
            lo = b[i - 1] if i > 0 else (b[0] - 1.0 if m else 0.0)
            hi = b[i] if i < m else (b[-1] + 1.0 if m else 0.0)
            reps.append((lo + hi) / 2 if 0 < i < m else (hi - 1.0 if i == 0 else lo + 1.0))
            if i < m:
                reps.append(b[i])
        reps.append(np.nan)
        self.n_regions = len(reps)
        grid = np.stack(
            np.meshgrid(
                np.arange(1, 6),
                np.arange(1, 6),
                np.arange(1, 6),
                np.arange(self.n_regions),
                indexing="ij",
            ),
            axis=-1,
        ).reshape(-1, 4)
        od = np.asarray(reps, dtype=float)[grid[:, 3]]
        self.table = segment_codes(grid[:, 0], grid[:, 1], grid[:, 2], od, cfg).astype(np.int64)

    def region(self, overdue: np.ndarray) -> np.ndarray:
        """2 * (boundaries below) + (equal to one), NaN last; a few comparisons beat
        searchsorted."""
        m = len(self.bounds)
        below = np.zeros(len(overdue), dtype=np.int64)
        eq = np.zeros(len(overdue), dtype=bool)
        for b in self.bounds:
            below += overdue > b
            eq |= overdue == b
        return np.where(np.isnan(overdue), 2 * m + 1, 2 * below + eq)

    def cells(self, r: np.ndarray, f: np.ndarray, m: np.ndarray, overdue: np.ndarray) -> np.ndarray:
        """Flat cell index per customer (scores 1..5)."""
        return (
            ((r.astype(np.int64) - 1) * 5 + (f - 1)) * 5 + (m - 1)
        ) * self.n_regions + self.region(overdue)

    def counts(
        self, r: np.ndarray, f: np.ndarray, m: np.ndarray, overdue: np.ndarray
    ) -> np.ndarray:
        """Customers per segment (index into ``cfg.names``)."""
        per_cell = np.bincount(self.cells(r, f, m, overdue), minlength=len(self.table))
        return np.bincount(self.table, weights=per_cell, minlength=len(self.cfg.names))


def assign_segments(r: np.ndarray, f: np.ndarray, m: np.ndarray, overdue: np.ndarray | None,
                    cfg: RfmConfig) -> np.ndarray:
    """Segment name per customer (object array)."""
    return np.asarray(cfg.names, dtype=object)[segment_codes(r, f, m, overdue, cfg)]


def segment_table(rfm: pd.DataFrame, cfg: RfmConfig) -> pd.DataFrame:
    """``rfm`` (from ``compute_rfm``) plus a ``segment`` column."""
    out = rfm.copy()
    out["segment"] = assign_segments(
        rfm["r_score"].to_numpy(),
        rfm["f_score"].to_numpy(),
        rfm["m_score"].to_numpy(),
        rfm["overdue"].to_numpy(dtype=float),
        cfg,
    )
    return out


def segment_counts(segments: pd.Series | np.ndarray, cfg: RfmConfig) -> dict[str, int]:
    """Counts per configured segment (zero included), in config order, then the default."""
    counts = pd.Series(np.asarray(segments)).value_counts()
    return {n: int(counts.get(n, 0)) for n in cfg.names}
