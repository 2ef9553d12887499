"""What are a detector's false positives? Each incident matching no unexpected event under strict
scoring is put in one kind, read from the world's truth (events.json, counterfactual_daily.csv):

- ``spillover`` (a): it overlaps an unexpected event's match window on a slice the event's scope
  does not exclude, and the event moved this KPI there (``|effect| >= moved``) — but by less than
  ``min_effect`` (``under``), the other way (``opposite``), or by more than the effect strict
  scoring reads for the slice (``unrecorded``: realized in a channel, recorded overall), so strict
  scoring does not credit it; ``running``: it began before the window (strict scoring counts an
  incident's onset: one already running when the event began did not flag it);
- ``echo`` (b): it starts within ``echo_days`` after an unexpected event's match window ends, on a
  slice the event's scope does not exclude (rebound, lagged or lasting effect), overlapping none;
- ``expected`` (c): it overlaps a planned calendar event's window (holiday, campaign);
- ``unrelated`` (d): it overlaps an unexpected event's window, but on a slice the scope excludes
  or a KPI the event did not move;
- ``noise`` (e): far from every event.

The first kind that applies wins, in that order (a, d, c, b, e: an incident during an event is
judged against it before a calendar day or an earlier event's echo).

The effect on a KPI in a slice is the realized one where the truth has it — overall and per
channel: the actual KPIs against the counterfactual twin (every unexpected event off) over the
incident's days inside the event's window, less the same in the week before the window (the twin
also lacks the lasting level of earlier events: a churn wave's stays) — and otherwise the event's
recorded ``scope_effects`` (the incident's slice is the event's scope) or ``effects`` (overall),
as strict scoring reads them. Each false positive also carries the oracle's peak score in its
direction over its days on its series (``oracle``): whether the exact null saw the data depart
from the baseline at all.

Caveat: after an event that changes the customers (a churn wave) the twin's orders no longer share
the actual world's random numbers, so a realized ratio (AOV) in a small channel is noisy there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from evaluation.scoring import _window  # the match window strict scoring uses

KINDS = ("spillover", "unrelated", "expected", "echo", "noise")
SPILLOVER = ("under", "opposite", "unrecorded", "running")   # why a spillover is not credited
SUMS = ("sessions", "orders", "revenue", "units")
RATIOS = {"conversion_rate": ("orders", "sessions"), "aov": ("revenue", "orders")}


def _allowed(ev: Any, dim: str, seg: str) -> tuple[bool, bool]:
    """(the scope does not exclude the slice, the slice is one of the scope's own)."""
    allowed, exact = True, False
    for d, v in ev.scope.items():
        if d == dim:
            allowed &= str(v) == seg
            exact |= str(v) == seg
    return allowed, exact


def _realized(actual: pd.DataFrame, twin: pd.DataFrame | None, kpi: str, dim: str, seg: str,
              days: pd.DatetimeIndex) -> float | None:
    """Relative change of ``kpi`` in the slice over ``days``, actual vs the counterfactual twin
    (None where the twin has no such slice: the truth keeps overall and per channel)."""
    if twin is None or dim not in ("overall", "channel") or not len(days):
        return None
    ch = "all" if dim == "overall" else seg
    t = twin[twin["channel"].astype(str) == ch].set_index("date")
    a = actual[(actual["dimension"] == dim) & (actual["segment"].astype(str) == seg)]
    a = a.set_index("date")
    num, den = RATIOS.get(kpi, (kpi, None))
    if num not in t.columns or num not in a.columns:
        return None
    t, a = t.reindex(days), a.reindex(days)

    def val(f: pd.DataFrame) -> float:
        return float(f[num].sum() / f[den].sum()) if den else float(f[num].sum())

    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            tv, av = val(t), val(a)
    except (KeyError, ZeroDivisionError):
        return None
    return av / tv - 1 if np.isfinite(tv) and tv and np.isfinite(av) else None


def classify(incidents: Iterable[Any], events: list[Any], settings: dict[str, Any],
             actual: pd.DataFrame, twin: pd.DataFrame | None, oracle: pd.DataFrame | None = None,
             echo_days: int = 14, moved: float = 0.005) -> list[dict[str, Any]]:
    """One row per incident of ``incidents`` (false positives: the caller passes only those): its
    kind (``KINDS``), the event it is put on (``event``), the effect read (``effect``, its
    ``source``: realized / scope / overall), and the oracle's peak score (``oracle``).

    ``actual``: the run's KPIs per date and slice (``ctx.kpis_daily``); ``twin``: the truth's
    counterfactual_daily (date, channel — 'all' for overall —, KPIs); ``oracle``: the oracle's
    detections (date, kpi, dimension, segment, score)."""
    early, late = settings["early_days"], settings["late_days"]
    min_eff = settings["min_effect"]
    unexpected = [e for e in events if not e.expected]
    planned = [e for e in events if e.expected]
    if twin is not None:
        twin = twin.assign(date=pd.to_datetime(twin["date"]))
    orc = None
    if oracle is not None and len(oracle):
        orc = oracle.set_index(["kpi", "dimension", "segment"]).sort_index()
    out = []
    for inc in incidents:
        sign = 1.0 if inc.direction == "up" else -1.0
        row: dict[str, Any] = {"incident": inc, "kind": "noise", "event": None, "effect": None,
                               "source": None, "oracle": None}
        if orc is not None:
            try:
                s = orc.loc[[(inc.kpi, inc.dimension, inc.segment)]]
                s = s[(s["date"] >= inc.start) & (s["date"] <= inc.end)]["score"]
                row["oracle"] = float(np.nanmax(sign * s.to_numpy(float))) if len(s) else None
            except KeyError:
                pass
        found = None
        for ev in unexpected:          # (a) spillover, else (d) unrelated, during an event
            lo, hi = _window(ev, early, late)
            if inc.start > hi or inc.end < lo:
                continue
            allowed, exact = _allowed(ev, inc.dimension, inc.segment)
            if not allowed:
                found = found or ("unrelated", ev, None, "excluded")
                continue
            days = pd.date_range(max(inc.start, lo), min(inc.end, hi), freq="D")
            eff = _realized(actual, twin, inc.kpi, inc.dimension, inc.segment, days)
            if eff is not None:   # less the level of the week before (earlier lasting effects)
                pre = _realized(actual, twin, inc.kpi, inc.dimension, inc.segment,
                                pd.date_range(lo - pd.Timedelta(days=7), periods=7, freq="D"))
                if pre is not None and np.isfinite(pre):
                    eff -= pre
            src = "realized"
            if eff is None:
                table = ev.scope_effects if exact and ev.scope_effects else ev.effects
                eff, src = (table or {}).get(inc.kpi), "scope" if exact else "overall"
            if eff is None or abs(eff) < moved:
                found = found or ("unrelated", ev, eff, src)
                continue
            # under: the right way, below min_effect; opposite: the other way; unrecorded: the
            # right way and large, but strict scoring reads a smaller recorded effect
            sub = ("running" if inc.start < lo else "opposite" if sign * eff <= 0
                   else "under" if abs(eff) < min_eff else "unrecorded")
            if found is None or found[0] != "spillover" or abs(eff) > abs(found[2]):
                found = ("spillover", ev, eff, src, sub)
        if found is None:
            for ev in planned:         # (c) a planned calendar event
                lo, hi = _window(ev, early, late)
                if inc.start <= hi and inc.end >= lo:
                    found = ("expected", ev, None, None)
                    break
        if found is None:
            for ev in unexpected:      # (b) after an event, on a slice it may have touched
                _, hi = _window(ev, early, late)
                if hi < inc.start <= hi + pd.Timedelta(days=echo_days) and \
                        _allowed(ev, inc.dimension, inc.segment)[0]:
                    found = ("echo", ev, None, None)
                    break
        if found is not None:
            row.update(kind=found[0], event=found[1].event_id, effect=found[2], source=found[3])
            if found[0] == "spillover":
                row["sub"] = found[4]
                row["below_min_effect"] = abs(found[2]) < min_eff
        out.append(row)
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and shares per kind, the spillovers' sub-kinds, and per kind the share of false
    positives the oracle also scores at 3 or more (the data really departed from the null)."""
    n = len(rows)
    out: dict[str, Any] = {"n": n}
    for k in KINDS:
        sel = [r for r in rows if r["kind"] == k]
        seen = [r for r in sel if r["oracle"] is not None]
        out[k] = {"n": len(sel), "share": len(sel) / n if n else float("nan"),
                  "oracle_ge3": (sum(r["oracle"] >= 3 for r in seen) / len(seen)) if seen
                  else float("nan")}
    sp = [r for r in rows if r["kind"] == "spillover"]
    for sub in SPILLOVER:
        out["spillover"][sub] = sum(r.get("sub") == sub for r in sp)
    return out


def base_rates(series: list[tuple[str, str, str]], days: pd.DatetimeIndex, events: list[Any],
               settings: dict[str, Any], actual: pd.DataFrame, twin: pd.DataFrame | None,
               n: int = 300, seed: int = 0, echo_days: int = 14) -> list[dict[str, Any]]:
    """The kinds of ``n`` one-day pseudo-incidents at random (series, day, direction) points
    (a seeded generator: deterministic): the shares false positives would have if they fell
    anywhere at random — the reference for the shares of real ones."""
    from types import SimpleNamespace

    if not series or not len(days):
        return []
    g = np.random.default_rng(seed)
    pick_s = g.integers(0, len(series), n)
    pick_d = g.integers(0, len(days), n)
    up = g.random(n) < 0.5
    pseudo = [SimpleNamespace(kpi=series[s][0], dimension=series[s][1], segment=series[s][2],
                              start=days[d], end=days[d], direction="up" if u else "down",
                              peak_score=0.0, incident_id=f"pseudo-{k}", detectors=[])
              for k, (s, d, u) in enumerate(zip(pick_s, pick_d, up, strict=True))]
    return classify(pseudo, events, settings, actual, twin, None, echo_days=echo_days)
