"""The bound's self-check: why did the consensus find an event the bound did not?

The oracle at equal false positives (``scoring``, module docstring) is a bound in expectation,
not per world: in one world a voter can score an event higher than the exact null does, by
chance. So when the consensus finds an event the bound's incidents miss at the budget
(``oracle_equal_fp.consensus_only``), there are two different reasons, and the scorecard tells
them apart:

- **beneath the cut** (luck, which a bound in expectation allows): the highest cut at which the
  oracle raises a new alarm matching the event — the best |score| of a point inside the event's
  window that a match allows (right KPI, direction and slice; the scoring mode's rules) and that
  starts a stretch there (its score in its direction above the day before's: at any cut between
  the two, a detector alarming at that cut raises an alarm that day) — is below the cut the bound
  chose at that budget: the exact null saw the event less clearly than its null incidents above
  the cut;
- **seen at the cut** (a defect to trace): such a point starts a stretch at the cut itself (the day
  before's score below the cut, its own at or above it), so a detector alarming at the cut raises
  an alarm that matches the event, yet no incident of the bound matched it — the bound's incident
  model lost it, as it lost random world 125's one-day US outage until the fifty-third session (an
  incident reported only from its run's first day or its first day reaching the cut, not from a
  re-crossing after a dip; this check flags it on that world's old bound).

A point inside the window that only continues an earlier stretch (random world 115: the store's
sessions at −8.6 on the day before an affiliate × NL outage, the fading end of an earlier fall at
−24) raises no new alarm at any cut, so it is neither. ``oracle_equal_fp.seen_at_cut`` counts the
second kind (0 when every consensus-only event is beneath the cut) and ``consensus_only_detail``
gives each event's best score, its family and that family's cut, and whether it is seen at the
cut; ``oracle_equal_fp.cuts`` are the bound's cuts, one per (KPI, dimension) family that took
something (``scoring.bound_family``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd

from analytics.context import Incident

from .scoring import Event, match_matrix

POINT_COLUMNS = ["date", "kpi", "dimension", "segment", "score"]
DAY_NS = 86_400_000_000_000


def point_incidents(points: pd.DataFrame, detector: str = "oracle") -> list[Incident]:
    """One single-day incident per row of ``points`` (a detector's detections: date, kpi,
    dimension, segment, signed score): each point as an alarm of its own, raised that day in the
    direction of its score, with |score| as its peak — what a detector alarming at any cut below
    that |score| reports there."""
    return [Incident(incident_id=f"{detector}-point-{k}", kpi=str(r.kpi),
                     dimension=str(r.dimension), segment=str(r.segment), start=r.date,
                     end=r.date, direction="up" if r.score >= 0 else "down",
                     detectors=[detector], level="single", confidence=1.0, severity="low",
                     peak_score=abs(float(r.score)), actual=0.0, expected=0.0,
                     magnitude_pct=0.0)
            for k, r in enumerate(points[POINT_COLUMNS].itertuples(index=False))]


def consensus_only_detail(points: pd.DataFrame, events: list[Event], ids: list[str],
                          cuts: dict[Hashable, float], family: Callable[[Incident], Hashable],
                          mode: str, early: int, late: int,
                          min_effect: float) -> list[dict[str, Any]]:
    """Per event id in ``ids`` (sorted): {"event_id", "oracle_score": the best |score| among the
    points inside its window that a match allows and that start a stretch (above the day
    before's score in their direction; 0.0 where none), "family" / "cut": that point's family
    (``family``, e.g. ``scoring.bound_family``) and its cut (``cuts``; a family missing there
    took nothing: no cut to reach, None), "seen_at_cut": one of the points starts a stretch at
    the cut of its own family}. ``points``: the oracle's detections (date, kpi, dimension,
    segment, signed score; every day, so the day before is there)."""
    wanted = [e for e in events if e.event_id in set(ids)]
    if not wanted:
        return []
    # the points near an event's window (the day before it included), then each point's score
    # the day before on its series, in its own direction (none: -inf)
    day = pd.DatetimeIndex(points["date"]).as_unit("ns").asi8   # ns (UTC where tz-aware)
    lo = np.array([e.start.value for e in wanted]) - (early + 1) * DAY_NS
    hi = np.array([e.end.value for e in wanted]) + (late + 2) * DAY_NS
    near = ((day[:, None] >= lo[None, :]) & (day[:, None] <= hi[None, :])).any(axis=1)
    keys = ["kpi", "dimension", "segment"]
    sub = points.loc[near, POINT_COLUMNS].sort_values([*keys, "date"], kind="stable")
    score = sub["score"].to_numpy(float)
    when = pd.DatetimeIndex(sub["date"]).as_unit("ns").asi8
    grouped = sub.groupby(keys, sort=False)
    before = grouped["score"].shift(1).to_numpy(float)
    last = grouped["date"].shift(1)
    # the row before counts only when it is at most a day back (a series with a gap has none)
    prev_ok = last.notna().to_numpy() & (
        when - pd.DatetimeIndex(last.fillna(sub["date"])).as_unit("ns").asi8 <= DAY_NS)
    before = np.where(prev_ok, before, np.nan)
    sign = np.where(score >= 0, 1.0, -1.0)
    below = np.nan_to_num(before * sign, nan=-np.inf)           # the day before, this direction
    rising = np.abs(score) > below
    pts = point_incidents(sub[rising])
    mm = match_matrix(pts, wanted, mode, early, late, min_effect)
    peak, below = np.abs(score[rising]), below[rising]
    fam = [family(p) for p in pts]
    cut = np.array([cuts.get(f, np.inf) for f in fam], dtype=float)
    out = []
    for j, e in enumerate(wanted):
        ok = mm[:, j]
        top = int(np.flatnonzero(ok)[peak[ok].argmax()]) if ok.any() else None
        seen = bool((ok & (below < cut) & (peak >= cut)).any())
        out.append({"event_id": e.event_id,
                    "oracle_score": round(float(peak[top]), 4) if top is not None else 0.0,
                    "family": None if top is None else str(fam[top]),
                    "cut": (None if top is None or not np.isfinite(cut[top])
                            else round(float(cut[top]), 4)),
                    "seen_at_cut": seen})
    return sorted(out, key=lambda d: d["event_id"])
