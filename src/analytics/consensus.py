"""Voting: detectors' flags become consensus incidents.

A detector votes for period t of a series (kpi × dimension × segment) in one direction when it
flagged that series in that direction anywhere in [t − tolerance, t + tolerance]. A period is a
consensus period when some voter flagged it itself, at least ``min_votes`` voters vote for it and
every ``required`` detector is among them. Consensus periods at most ``merge_gap_days`` apart
merge into one incident. The incident's level names how many detectors voted (single /
pairwise / triple / k_of_n); confidence and severity come from the vote share and the calibrated
scores. The same routine with one detector and ``min_votes=1`` gives per-detector incidents.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from .context import KPI_NAMES, Incident
from .kpis import RATIO_KPIS

SERIES = ["kpi", "dimension", "segment", "direction"]


def level_name(n_voters: int, n_total: int) -> str:
    return {1: "single", 2: "pairwise", 3: "triple"}.get(n_voters, f"{n_voters}_of_{n_total}")


def severity_of(peak: float, magnitude_pct: float) -> str:
    """Severity from the calibrated peak score and the size of the move (whichever is worse)."""
    mag = abs(magnitude_pct) if np.isfinite(magnitude_pct) else 0.0
    if peak >= 12 or mag >= 50:
        return "critical"
    if peak >= 7 or mag >= 25:
        return "high"
    if peak >= 4.5 or mag >= 10:
        return "medium"
    return "low"


def confidence_of(n_voters: int, n_total: int, peak: float) -> float:
    """Half vote share, half score strength (a peak of twice the usual 3.5 threshold saturates)."""
    share = n_voters / max(n_total, 1)
    strength = min(1.0, peak / 7.0)
    return round(0.5 * share + 0.5 * strength, 3)


def _aggregate(kpi: str, values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return float("nan")
    return float(v.mean() if (kpi in RATIO_KPIS or kpi not in KPI_NAMES) else v.sum())


def build_incidents(detections: pd.DataFrame, voters: list[str], min_votes: int = 1,
                    required: Iterable[str] = (), tolerance: int = 0, merge_gap: int = 1,
                    mute_dates: Iterable[pd.Timestamp] = (), n_total: int | None = None) -> list[Incident]:
    """Incidents from the flags of ``voters`` (see module docstring); deterministic order."""
    required = list(required)
    n_total = n_total or len(voters)
    det = detections[detections["detector"].isin(voters)]
    if det.empty or not det["flag"].any():
        return []
    grid = pd.DatetimeIndex(np.sort(det["date"].unique()))
    pos_of = pd.Series(np.arange(len(grid)), index=grid)
    flagged = det.loc[det["flag"], [*SERIES, "detector", "date"]].copy()
    flagged["pos"] = pos_of.reindex(flagged["date"]).to_numpy()

    # dilate each flag by ± tolerance: one row per (series, direction, period, detector) voting
    offsets = np.arange(-tolerance, tolerance + 1)
    rep = flagged.loc[flagged.index.repeat(len(offsets))].copy()
    rep["pos"] = rep["pos"].to_numpy() + np.tile(offsets, len(flagged))
    rep = rep[(rep["pos"] >= 0) & (rep["pos"] < len(grid))].drop_duplicates([*SERIES, "pos", "detector"])
    votes = rep.groupby([*SERIES, "pos"], sort=True)["detector"].agg(lambda d: frozenset(d))
    raw_days = set(map(tuple, flagged[[*SERIES, "pos"]].drop_duplicates().to_numpy().tolist()))
    muted = {int(pos_of[d]) for d in pd.DatetimeIndex(list(mute_dates)) if d in pos_of.index}

    keep = [key for key, who in votes.items()
            if len(who) >= min_votes and all(r in who for r in required)
            and key in raw_days and key[-1] not in muted]
    if not keep:
        return []
    days = pd.DataFrame(keep, columns=[*SERIES, "pos"]).sort_values([*SERIES, "pos"], kind="stable")
    # a new incident starts where the series changes or the gap exceeds merge_gap periods
    same = (days[SERIES].shift() == days[SERIES]).all(axis=1).to_numpy()
    gap = days["pos"].diff().fillna(np.inf).to_numpy() - 1
    days["inc"] = np.cumsum(~(same & (gap <= merge_gap)))

    by_series = {k: g for k, g in det.groupby(["kpi", "dimension", "segment"], sort=False)}
    flag_sets = {k: g for k, g in flagged.groupby(SERIES, sort=False)}
    incidents = []
    for _, g in days.groupby("inc", sort=True):
        kpi, dim, seg, direction = g.iloc[0][SERIES].tolist()
        p0, p1 = int(g["pos"].min()), int(g["pos"].max())
        start, end = grid[p0], grid[p1]
        fs = flag_sets[(kpi, dim, seg, direction)]
        near = fs[(fs["pos"] >= p0 - tolerance) & (fs["pos"] <= p1 + tolerance)]
        who = sorted(set(near["detector"]))
        rows = by_series[(kpi, dim, seg)]
        win = rows[(rows["date"] >= start) & (rows["date"] <= end)]
        signed = win["score"] if direction == "up" else -win["score"]
        vals = signed[win["detector"].isin(who)].to_numpy(float)
        peak = max(float(np.nanmax(vals)), 0.0) if np.isfinite(vals).any() else 0.0
        per_day = win.groupby("date").agg(actual=("actual", "first"), expected=("expected", "mean"))
        actual = _aggregate(kpi, per_day["actual"].to_numpy(float))
        expected = _aggregate(kpi, per_day["expected"].to_numpy(float))
        mag = (actual - expected) / abs(expected) * 100 if np.isfinite(expected) and expected != 0 else float("nan")
        incidents.append(Incident(
            incident_id=f"I-{kpi}-{dim}-{seg}-{start.date().isoformat()}-{direction}",
            kpi=kpi, dimension=dim, segment=seg, start=start, end=end, direction=direction,
            detectors=who, level=level_name(len(who), n_total),
            confidence=confidence_of(len(who), n_total, peak), severity=severity_of(peak, mag),
            peak_score=round(peak, 4), actual=round(actual, 6), expected=round(expected, 6),
            magnitude_pct=round(mag, 3) if np.isfinite(mag) else float("nan")))
    incidents.sort(key=lambda i: (i.start, i.kpi, i.dimension, i.segment, i.direction))
    return incidents


def consensus_incidents(detections: pd.DataFrame, voters: list[str], cfg, mute_dates=(),
                        min_votes: int | None = None) -> list[Incident]:
    """Consensus incidents with the settings of ``cfg`` (a ``ConsensusConfig``)."""
    k = cfg.min_votes if min_votes is None else min_votes
    return build_incidents(detections, voters, min_votes=min(k, len(voters)) if voters else k,
                           required=[r for r in cfg.required if r in voters], tolerance=cfg.tolerance_days,
                           merge_gap=cfg.merge_gap_days, mute_dates=mute_dates if cfg.mute_calendar else (),
                           n_total=len(voters))


def detector_incidents(detections: pd.DataFrame, name: str, merge_gap: int) -> list[Incident]:
    return build_incidents(detections, [name], min_votes=1, merge_gap=merge_gap)
