"""Voting: detectors' flags become consensus incidents.

A detector votes for period t of a series (kpi × dimension × segment) in one direction when it
flagged that series in that direction anywhere in [t − tolerance, t + tolerance]. A period is a
consensus period when some voter flagged it itself, at least ``min_votes`` voters vote for it and
every ``required`` detector is among them (``combine: vote``). With ``combine: stouffer`` the
voters' calibrated evidence is summed instead of counted (``combined_scores``): a flagged period is
a consensus period when the combined score anchored at the flagging voter reaches the threshold of
``combine_sensitivity`` (shared by the anchors, Bonferroni), so the rule's false-alarm rate is
known; a voter without a score yet on a series (its leading zeros) drops out of the sum
(``Votes.evidence``). Either way a flag whose score reaches the ``solo_sensitivity`` threshold is
a consensus period on its own. Consensus periods at most ``merge_gap_days`` apart
merge into one incident. The incident's level names how many detectors voted (single /
pairwise / triple / k_of_n — counted in families: with ``count_by: type`` two variants of one
detector type are one vote); confidence and severity come from the vote share and the calibrated
scores (severity also from the move's size: actual against expected over the incident's
periods, a ratio KPI's periods weighted by its denominator's actual counts — ``_aggregate``).
The same routine with one detector and ``min_votes=1`` gives per-detector incidents.
Consensus incidents then go through alarm suppression (``suppress``: at most one incident start
per series within the duration; see ``suppress_incidents``); per-detector lists are not suppressed.

Size (~600 lines, one module on purpose): the dense view (``Votes``), every rule over it (the
anchors and the onset of an incident included), the incidents it builds and what scoring reads
from them (``Votes.onset_records``) share its arrays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from shocklab.catalogue import KPI_NAMES, RATIO_KPIS

from .context import Incident
from .kpis import key_codes


def level_name(n_voters: int, n_total: int) -> str:
    return {1: "single", 2: "pairwise", 3: "triple"}.get(n_voters, f"{n_voters}_of_{n_total}")


def day_share(periods: float, ppd: int) -> float:
    """The share of a day a move of ``periods`` periods lasted (1 on daily data, at most 1)."""
    return min(1.0, periods / ppd) if ppd > 1 else 1.0


def severity_of(peak: float, magnitude_pct: float, share: float = 1.0) -> str:
    """Severity from the calibrated peak score and the size of the move (whichever is worse).
    The size thresholds (10 / 25 / 50 %) are set for a move lasting a day: on sub-daily data the
    move counts for ``share`` (``day_share``) of a day, so a one-hour blip on a small hourly
    count is not rated over a day-long spike; the score term is unchanged."""
    mag = abs(magnitude_pct) * share if np.isfinite(magnitude_pct) else 0.0
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


def _stamp(t: pd.Timestamp) -> str:
    """Day for daily data, minute for sub-daily data (ids stay unique within a day)."""
    return t.date().isoformat() if t == t.normalize() else t.strftime("%Y-%m-%dT%H:%M")


def _aggregate(kpi: str, values: np.ndarray, weights: np.ndarray | None = None) -> float:
    """An incident's value over its periods: counts and revenue summed; a ratio KPI pooled, its
    periods' ratios weighted by ``weights`` (the actual denominator counts: AOV by orders,
    conversion by sessions — revenue over orders of the whole window); a ratio without usable
    weights (one period, a denominator series missing or with a gap) and a KPI of no known kind
    (a ``--kpis`` file's own column) are averaged."""
    fin = np.isfinite(values)
    v = values[fin]
    if v.size == 0:
        return float("nan")
    if kpi not in RATIO_KPIS and kpi in KPI_NAMES:
        return float(v.sum())
    if weights is not None and v.size > 1:
        w = weights[fin]
        if np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0:
            return float(np.dot(w, v) / w.sum())
    return float(v.mean())


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """``np.nanmean(a, axis=0)`` of a fresh 2-D array (``a`` is overwritten), the same sums
    and division, without its all-NaN warning (a column without a value is NaN: no baseline)."""
    mask = np.isnan(a)
    a[mask] = 0
    cnt = np.sum(~mask, axis=0, dtype=np.intp)
    tot = np.sum(a, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.true_divide(tot, cnt, out=tot, casting="unsafe")


def _window_evidence(sc: np.ndarray, tol: int) -> np.ndarray:
    """Each voter's best score over [t − tol, t + tol] as the normal score of its Šidák-corrected
    tail probability: ``1 − (1 − p)^m`` for the max of ``m`` looks, so under the null it is no
    larger than a standard normal (exactly normal for independent periods, smaller when periods
    are positively correlated). NaN where the voter has no score in the window."""
    if tol <= 0:
        return sc
    n_t = sc.shape[-1]
    best = np.full(sc.shape, -np.inf)
    m = np.zeros(sc.shape)
    fin = np.isfinite(sc)
    x = np.where(fin, sc, -np.inf)
    for k in range(-tol, tol + 1):
        lo, hi = max(k, 0), n_t + min(k, 0)          # out[t] <- x[t + k]
        best[..., lo - k:hi - k] = np.maximum(best[..., lo - k:hi - k], x[..., lo:hi])
        m[..., lo - k:hi - k] += fin[..., lo:hi]
    with np.errstate(invalid="ignore", divide="ignore"):
        p = ndtr(-best)
        pw = -np.expm1(np.where(m > 0, m, 1) * np.log1p(-np.minimum(p, 1 - 1e-16)))
        z = -ndtri(np.clip(pw, 1e-300, 1.0))
    return np.where(m > 0, z, np.nan)


def _onset(flags: np.ndarray, p0: int, back: int, floor: float, gap: int) -> int:
    """The start of the run of ``flags`` (a series' flags in one direction, any voter) that led to
    a consensus period at ``p0``: step back to an earlier flag at most ``gap`` + 1 periods before
    the current start, repeatedly, no further than ``back`` periods and not before ``floor`` (the
    series' previous incident's end + ``gap`` + 2, so incidents stay apart)."""
    if back <= 0:
        return p0
    lo = int(max(p0 - back, floor, 0))
    q = p0
    for f in np.flatnonzero(flags[lo:p0])[::-1] + lo:
        if q - f - 1 > gap:
            break
        q = int(f)
    return q


def combined_scores(sc: np.ndarray, tol: int, rho: float) -> np.ndarray:
    """Calibrated evidence of all voters in one score, per anchor: [voter, series, period].

    ``sc`` holds the voters' calibrated scores signed in one direction. Anchored at voter v and
    period t: v's own score at t plus every other voter's ``_window_evidence`` (its best score
    within ± ``tol`` periods, Šidák-corrected), summed and divided by the sum's null standard
    deviation ``√(k + k(k − 1) ρ)`` over the ``k`` voters with a score (Stouffer with a common
    correlation ``ρ`` between voters; ``ρ = 1`` is safe whatever the correlation). Each term is at
    most standard normal under the null, so ``P(score ≥ t) ≤ 1 − Φ(t)`` per anchor and direction
    (when the terms are jointly normal with correlation ≤ ρ); a missing voter drops out. A voter
    with one score is the voter alone (k = 1)."""
    n_v = sc.shape[0]
    if n_v == 1:
        return sc
    w = _window_evidence(sc, tol)
    wsum = np.nansum(w, axis=0)
    wcnt = np.isfinite(w).sum(axis=0)
    out = np.full(sc.shape, np.nan)
    for v in range(n_v):
        own = sc[v]
        others = wsum - np.nan_to_num(w[v])
        k_o = wcnt - np.isfinite(w[v])
        k = k_o + 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[v] = (own + others) / np.sqrt(k + k * (k - 1) * rho)
        out[v][~np.isfinite(own)] = np.nan
    return out


class Votes:
    """Dense view of the detections for voting: arrays [detector, series, period].

    Built once per run and shared by every consensus rule and per-detector incident list.
    """

    def __init__(self, detections: pd.DataFrame, rows: np.ndarray | None = None) -> None:
        """``rows``: a mask of the detections to take (all when None): no copy of the frame."""
        det, sel = detections, None if rows is None else np.flatnonzero(rows)

        def values(name: str, dtype: type | None = None) -> np.ndarray:
            return det[name].to_numpy(dtype) if sel is None else det[name].to_numpy(dtype)[sel]

        n = len(det) if sel is None else len(sel)
        dates = det["date"] if sel is None else det["date"].iloc[sel]
        self.grid = pd.DatetimeIndex(np.sort(dates.unique())) if n else pd.DatetimeIndex([])
        cols = ["kpi", "dimension", "segment"]   # a row's series: its codes' combination
        d_code, names = pd.factorize(det["detector"], use_na_sentinel=False)
        d_code = d_code if sel is None else d_code[sel]
        uniq, first, inverse = np.unique(key_codes(det, cols, sel), return_index=True,
                                         return_inverse=True)
        at = first if sel is None else sel[first]   # each series' first row in ``det``
        keys = det[cols].iloc[at].reset_index(drop=True).sort_values(cols)
        self.series = [tuple(r) for r in keys.itertuples(index=False)]
        self._row = {k: i for i, k in enumerate(self.series)}
        self._texts: dict[int, str] = {}   # period -> its _stamp, each computed once
        self.detectors = sorted(names[np.unique(d_code)]) if n else []
        n_d, n_s, n_t = len(self.detectors), len(self.series), len(self.grid)
        shape = (n_d, n_s, n_t)
        self.score = np.full(shape, np.nan)
        self.expected = np.full(shape, np.nan)
        self.flag = np.zeros(shape, dtype=bool)
        self.actual = np.full((n_s, n_t), np.nan)
        self.up = self.down = self.flag
        if not n:
            return
        pos = np.empty(len(uniq), dtype=np.intp)   # row -> (detector, series, period) indices
        pos[keys.index.to_numpy()] = np.arange(len(uniq))
        s_idx = pos[inverse.reshape(-1)]
        d_idx = pd.Index(self.detectors).get_indexer(names)[d_code]
        t = values("date")   # the grid holds the rows' dates: a sorted search finds them
        t_idx = (np.searchsorted(self.grid.to_numpy(), t) if t.dtype == self.grid.dtype
                 else self.grid.get_indexer(dates))
        self.score[d_idx, s_idx, t_idx] = values("score", float)
        self.expected[d_idx, s_idx, t_idx] = values("expected", float)
        self.flag[d_idx, s_idx, t_idx] = values("flag", bool)
        self.actual[s_idx, t_idx] = values("actual", float)
        self.up = self.flag & (self.score >= 0)
        self.down = self.flag & (self.score < 0)

    @cached_property
    def evidence(self) -> np.ndarray:
        """``score`` with each detector's leading run of exact zeros on a series set to NaN: a
        detector writes 0 where it has no score yet (its warm-up, too little history), and a
        voter without an opinion must drop out of combined evidence (``combined_scores``), not
        count as evidence against. Later zeros (vetoed points) stay 0."""
        started = np.logical_or.accumulate(np.isfinite(self.score) & (self.score != 0), axis=-1)
        return np.where(started, self.score, np.nan)

    @cached_property
    def _stamps(self) -> list[pd.Timestamp]:
        """The grid's periods as Timestamps (indexing the DatetimeIndex per incident was a tenth
        of the consensus stage)."""
        return list(self.grid)

    @cached_property
    def ppd(self) -> int:
        """Periods per day of the grid (1 on daily data)."""
        from .detectors.calibrate import periods_per_day

        return periods_per_day(self.grid)

    def _dilate(self, a: np.ndarray, tol: int) -> np.ndarray:
        if tol <= 0:
            return a
        out = a.copy()
        for k in range(1, tol + 1):
            out[..., k:] |= a[..., :-k]
            out[..., :-k] |= a[..., k:]
        return out

    def incidents(
        self,
        voters: list[str],
        min_votes: int = 1,
        required: Iterable[str] = (),
        tolerance: int = 0,
        merge_gap: int = 1,
        mute_dates: Iterable[pd.Timestamp] | pd.DataFrame = (),
        n_total: int | None = None,
        families: dict[str, str] | None = None,
        vote_threshold: float | None = None,
        solo_threshold: float | None = None,
        combine_threshold: float | None = None,
        rho: float = 1.0,
        combine_tolerance: int | None = None,
        onset_back: int = 0,
        anchors: list[str] | None = None,
    ) -> list[Incident]:
        """Incidents of ``voters`` under the rule (see module docstring); deterministic order.

        ``anchors`` (combine only): the voters whose flag may anchor the combined test; the
        others still add their evidence. None = every voter.

        ``mute_dates``: planned days, on every series (dates) or by scope (a marketing calendar).

        ``combine_threshold``: vote on combined evidence instead of counting votes (``min_votes``
        and ``required`` are then not used): a period is a consensus period where a voter flagged
        it and the combined score (``combined_scores``, correlation ``rho``) reaches this.

        ``solo_threshold``: a period is also a consensus period where one voter's calibrated
        score alone reaches this (strong evidence needs no second opinion).

        ``vote_threshold``: a detector also votes where its calibrated score reaches this (in the
        incident's direction) without being flagged; a consensus period still needs a flag.

        ``families`` maps a voter to its family (e.g. its detector type): voters of one family
        count as one vote, so two variants of the same model cannot out-vote the others.

        ``onset_back``: periods an incident's start may move back from its first consensus
        period along the voters' flags in its direction (``_onset``).
        """
        voters = [v for v in voters if v in self.detectors]
        if not voters or not len(self.grid):
            return []
        fam = [(families or {}).get(v, v) for v in voters]
        fam_names = sorted(set(fam))
        fam_idx = np.array([fam_names.index(f) for f in fam])
        n_total = n_total or len(fam_names)
        vi = [self.detectors.index(v) for v in voters]
        req = [voters.index(r) for r in required if r in voters]
        from .detectors.calendar import mute_grid  # [series, period] or [1, period]

        muted = mute_grid(self.series, self.grid, mute_dates)
        out: list[Incident] = []
        for direction, raw_all in (("up", self.up), ("down", self.down)):
            raw = raw_all[vi]                               # [voter, series, period]
            vote = raw
            if vote_threshold is not None:
                sc = self.score[vi] if direction == "up" else -self.score[vi]
                vote = raw | (np.nan_to_num(sc, nan=-np.inf) >= vote_threshold)
            dil = self._dilate(vote, tolerance)
            # votes = distinct families with a (dilated) flag: [series, period]
            count = np.zeros(dil.shape[1:], dtype=np.int64)
            for f in range(len(fam_names)):
                count += dil[fam_idx == f].any(axis=0)
            if combine_threshold is None:
                ok = raw.any(axis=0) & (count >= min_votes)
                for r in req:
                    ok &= dil[r]
            else:
                sc = self.evidence[vi] if direction == "up" else -self.evidence[vi]
                tol_c = tolerance if combine_tolerance is None else combine_tolerance
                comb = combined_scores(sc, tol_c, rho)
                hit = raw & (np.nan_to_num(comb, nan=-np.inf) >= combine_threshold)
                if anchors is not None:
                    hit = hit[[v in anchors for v in voters]]
                ok = hit.any(axis=0)
            if solo_threshold is not None:
                sc = self.score[vi] if direction == "up" else -self.score[vi]
                ok |= (raw & (np.nan_to_num(sc, nan=-np.inf) >= solo_threshold)).any(axis=0)
            ok &= ~muted
            for s in np.flatnonzero(ok.any(axis=1)):
                pos = np.flatnonzero(ok[s])
                breaks = np.flatnonzero(np.diff(pos) - 1 > merge_gap)
                flags = raw[:, s].any(axis=0) & ~muted[min(s, len(muted) - 1)]
                prev = -np.inf
                for seg in np.split(pos, breaks + 1):
                    p0 = _onset(flags, int(seg[0]), onset_back,
                                max(prev + merge_gap + 2, 0), merge_gap)
                    prev = int(seg[-1])
                    out.append(
                        self._incident(
                            s,
                            p0,
                            int(seg[-1]),
                            direction,
                            vote,
                            vi,
                            voters,
                            tolerance,
                            n_total,
                            fam,
                            int(seg[0]),
                        )
                    )
        out.sort(key=lambda i: (i.start, i.kpi, i.dimension, i.segment, i.direction))
        return out

    def onset_records(self, incidents: list[Incident], name: str
                      ) -> dict[str, list[tuple[pd.Timestamp, float, float]]]:
        """Per incident of detector ``name`` (its own incidents, ``detector_incidents``): the days
        along its run after the first where its score in its direction rises, as (day, the day
        before's score, its score), both rounded as ``peak_score``: at a cut t between the two a
        stretch of the run at or above t starts that day — a detector alarming at t raises an
        alarm there (the scorecard's bound, ``evaluation.scoring._cut_rows``). A day whose score
        is missing counts as -inf."""
        if name not in self.detectors:
            return {}
        di = self.detectors.index(name)
        index = self.grid
        out: dict[str, list[tuple[pd.Timestamp, float, float]]] = {}
        for inc in incidents:
            s = self._row.get((inc.kpi, inc.dimension, inc.segment))
            if s is None:
                continue
            p0, p1 = index.get_loc(inc.start), index.get_loc(inc.end)
            sc = self.score[di, s, p0:p1 + 1]
            sc = np.round(np.nan_to_num(sc if inc.direction == "up" else -sc, nan=-np.inf), 4)
            at = np.flatnonzero(sc[1:] > sc[:-1]) + 1
            out[inc.incident_id] = [(self._stamps[p0 + k], float(sc[k - 1]), float(sc[k]))
                                    for k in at]
        return out

    def _incident(self, s: int, p0: int, p1: int, direction: str, raw: np.ndarray, vi: list[int],
                  voters: list[str], tol: int, n_total: int, fam: list[str],
                  confirmed: int | None = None) -> Incident:
        kpi, dim, seg = self.series[s]
        lo, hi = max(p0 - tol, 0), p1 + tol + 1
        who_mask = raw[:, s, lo:hi].any(axis=1)
        who = sorted(v for v, m in zip(voters, who_mask, strict=True) if m)
        n_fam = len({f for f, m in zip(fam, who_mask, strict=True) if m})
        w = [vi[i] for i in range(len(vi)) if who_mask[i]]
        sc = self.score[w, s, p0:p1 + 1]
        sc = sc if direction == "up" else -sc
        peak = max(float(np.nanmax(sc)), 0.0) if np.isfinite(sc).any() else 0.0
        exp_day = _nanmean0(self.expected[w, s, p0:p1 + 1])
        act_day = self.actual[s, p0:p1 + 1]
        # a ratio's periods weigh by its denominator's actual counts on the same slice, on both
        # sides: the expected ratio at the incident's actual mix of periods (as the drivers
        # measure a ratio's change against the expected ratio times the actual denominator)
        den = self._row.get((RATIO_KPIS[kpi][1], dim, seg)) if kpi in RATIO_KPIS else None
        wts = self.actual[den, p0:p1 + 1] if den is not None else None
        # both sides over the same periods: a period without an expected value (no voter has a
        # baseline there, e.g. a planned day inside the incident) is left out of the actual too
        both = np.isfinite(act_day) & np.isfinite(exp_day)
        if both.any():
            act_day, exp_day = act_day[both], exp_day[both]
            wts = wts[both] if wts is not None else None
        actual = _aggregate(kpi, act_day, wts)
        expected = _aggregate(kpi, exp_day, wts)
        mag = (
            (actual - expected) / abs(expected) * 100
            if np.isfinite(expected) and expected != 0
            else float("nan")
        )
        start, end = self._stamps[p0], self._stamps[p1]
        text = self._texts.get(p0) or self._texts.setdefault(p0, _stamp(start))
        return Incident(
            incident_id=f"I-{kpi}-{dim}-{seg}-{text}-{direction}",
            kpi=kpi,
            dimension=dim,
            segment=seg,
            start=start,
            end=end,
            direction=direction,
            detectors=who,
            level=level_name(n_fam, n_total),
            confidence=confidence_of(n_fam, n_total, peak),
            severity=severity_of(peak, mag, day_share(p1 - p0 + 1, self.ppd)),
            peak_score=round(peak, 4),
            actual=round(actual, 6) if np.isfinite(actual) else float("nan"),
            expected=round(expected, 6) if np.isfinite(expected) else float("nan"),
            magnitude_pct=round(mag, 3) if np.isfinite(mag) else float("nan"),
            confirmed=self._stamps[p0 if confirmed is None else confirmed],
        )


def build_incidents(
    detections: pd.DataFrame | Votes,
    voters: list[str],
    min_votes: int = 1,
    required: Iterable[str] = (),
    tolerance: int = 0,
    merge_gap: int = 1,
    mute_dates: Iterable[pd.Timestamp] | pd.DataFrame = (),
    n_total: int | None = None,
    families: dict[str, str] | None = None,
    vote_threshold: float | None = None,
    solo_threshold: float | None = None,
    combine_threshold: float | None = None,
    rho: float = 1.0,
    combine_tolerance: int | None = None,
    onset_back: int = 0,
    anchors: list[str] | None = None,
) -> list[Incident]:
    """Incidents from the flags of ``voters`` (see module docstring); deterministic order."""
    votes = detections if isinstance(detections, Votes) else Votes(detections)
    return votes.incidents(
        voters,
        min_votes,
        required,
        tolerance,
        merge_gap,
        mute_dates if isinstance(mute_dates, pd.DataFrame) else list(mute_dates),
        n_total,
        families,
        vote_threshold,
        solo_threshold,
        combine_threshold,
        rho,
        combine_tolerance,
        onset_back,
        anchors,
    )


def named_anchors(want: Iterable[str], voters: list[str],
                  families: dict[str, str] | None = None) -> list[str]:
    """The voters ``want`` names (``consensus.anchors``: detector names or types; ``families``
    maps a voter to its type), in the voters' order; empty when it names none of them."""
    fam, want = families or {}, set(want)
    return [v for v in voters if v in want or fam.get(v) in want]


def anchor_voters(cfg: Any, voters: list[str], families: dict[str, str] | None = None
                  ) -> list[str]:
    """The voters whose flag may anchor the combined test: ``named_anchors`` of
    ``consensus.anchors``, or every voter when it is None or names none of this run's."""
    want = getattr(cfg, "anchors", None)
    return (named_anchors(want, voters, families) if want is not None else []) or list(voters)


def ordered(incidents: list[Incident]) -> list[Incident]:
    """Incidents in the consensus' deterministic order (start, KPI, slice, direction)."""
    return sorted(incidents, key=lambda i: (i.start, i.kpi, i.dimension, i.segment, i.direction))


def parse_duration(v: pd.Timedelta | str) -> pd.Timedelta:
    """``1d``, ``6h``, ``30min`` … as a Timedelta. A lower-case day or week unit after a number
    (``1d``, ``2w``, the shipped ``suppress: 1d``) is written upper-case first: pandas 3 deprecates
    it (a warning that was silenced here) and a later pandas will refuse it."""
    if isinstance(v, str):
        v = _LOWER_UNIT.sub(lambda m: m.group(1) + m.group(2).upper(), v)
    return pd.Timedelta(v)


_LOWER_UNIT = re.compile(r"(\d\s*)([dw])(?![A-Za-z])")


def suppress_incidents(
    incidents: list[Incident],
    window: pd.Timedelta | str | None,
) -> tuple[list[Incident], list[Incident]]:
    """Alarm suppression: ``(kept, suppressed)``.

    Per series (kpi × dimension × segment, either direction), an incident is suppressed when it
    starts strictly after the last *kept* incident of that series and less than ``window`` after
    it. Incidents starting in the same period as the kept one are kept, so a window of at most one
    step changes nothing (1d on daily data). Order of ``incidents`` is preserved.
    """
    if window is None or not incidents:
        return list(incidents), []
    win = parse_duration(window)
    if win <= pd.Timedelta(0):
        return list(incidents), []
    last: dict[tuple[str, str, str], pd.Timestamp] = {}
    kept: list[Incident] = []
    dropped: list[Incident] = []
    for inc in sorted(incidents, key=lambda i: i.start):  # one step per incident, not per row
        key = (inc.kpi, inc.dimension, inc.segment)
        t0 = last.get(key)
        if t0 is not None and t0 < inc.start < t0 + win:
            dropped.append(inc)
            continue
        last[key] = inc.start
        kept.append(inc)
    ids = {id(i) for i in dropped}
    return [i for i in incidents if id(i) not in ids], dropped


def consensus_incidents(
    detections: pd.DataFrame | Votes,
    voters: list[str],
    cfg,
    mute_dates=(),
    min_votes: int | None = None,
    families: dict[str, str] | None = None,
    suppressed: list[Incident] | None = None,
) -> list[Incident]:
    """Consensus incidents with the settings of ``cfg`` (a ``ConsensusConfig``); ``families``
    (voter -> detector type) is used when ``cfg.count_by == "type"``. Incidents dropped by alarm
    suppression (``cfg.suppress``, see ``suppress_incidents``) are appended to ``suppressed``."""
    fams = families if cfg.count_by == "type" else None
    n = len({(fams or {}).get(v, v) for v in voters})
    k = cfg.min_votes if min_votes is None else min_votes
    votes = detections if isinstance(detections, Votes) else Votes(detections)
    vt = st = ct = None
    combine = getattr(cfg, "combine", "vote") == "stouffer" and min_votes is None
    anchors = anchor_voters(cfg, voters, families) if combine and voters else None
    if len(votes.grid):
        from .detectors.calibrate import threshold_for

        ppd = votes.ppd   # periods_per_day of the grid, once per Votes
        if getattr(cfg, "vote_sensitivity", None) is not None and not combine:  # vote rule's
            vt = threshold_for(cfg.vote_sensitivity, ppd)
        if getattr(cfg, "solo_sensitivity", None) is not None:
            st = threshold_for(cfg.solo_sensitivity, ppd)
        if combine and voters:
            # Bonferroni over the anchors: each voter's flags are tested with its own statistic
            ct = threshold_for(cfg.combine_sensitivity / len(anchors), ppd)
    incs = build_incidents(
        votes,
        voters,
        min_votes=min(k, n) if voters else k,
        required=[r for r in cfg.required if r in voters],
        tolerance=cfg.tolerance_days,
        merge_gap=cfg.merge_gap_days,
        mute_dates=mute_dates if cfg.mute_calendar else (),
        n_total=n,
        families=fams,
        vote_threshold=vt,
        solo_threshold=st,
        combine_threshold=ct,
        rho=getattr(cfg, "combine_rho", 1.0),
        combine_tolerance=getattr(cfg, "combine_tolerance", None),
        onset_back=getattr(cfg, "onset_back", 0) * (votes.ppd if len(votes.grid) else 1),
        anchors=anchors,
    )
    kept, dropped = suppress_incidents(incs, getattr(cfg, "suppress", None))
    if suppressed is not None:
        suppressed.extend(dropped)
    return kept


def detector_incidents(
    detections: pd.DataFrame | Votes, name: str, merge_gap: int
) -> list[Incident]:
    return build_incidents(detections, [name], min_votes=1, merge_gap=merge_gap)
