"""Time-series detection metrics people compare with, for labelled external series (``--kpis``
with ``--events``): the NAB score (``evaluation.nab``), affiliation precision / recall / F1, a
window-level event F1, and point-adjusted F1 — always beside the same metric for a random score.

Affiliation (Huet, Navarro & Rossi, "Local Evaluation of Time Series Anomaly Detection
Algorithms", KDD 2022). Time is continuous, in periods of the series' grid; a flagged period ``k``
is the interval ``[k, k+1)``. Each labelled window ``J`` owns an affiliation zone ``E`` (the points
closer to it than to any other window, within the series). Inside a zone, with ``X`` uniform on
``E``:

- precision of a predicted point ``x``: ``P(dist(X, J) >= dist(x, J))`` (1 inside ``J``); the
  zone's precision is its mean over the predicted points in ``E`` (undefined without any);
- recall of a labelled point ``y``: ``P(|X − y| >= dist(y, predictions in E))``; the zone's
  recall is its mean over ``J`` (0 without predictions in ``E``).
Precision = mean of the defined zone precisions; recall = mean over all zones; F1 from both. A
random prediction scores about 0.5 on each, a perfect one 1. The integrals are exact (the
integrands are piecewise linear: midpoint rule between their kinks).

Point-adjusted F1 (Xu et al. 2018): if any point of a labelled window is flagged, the whole window
counts as detected, then point-wise F1. It rewards chance (Kim et al., AAAI 2022), so it is only
reported beside ``random_f1``: the same metric for uniform random scores flagging as many points
(mean of 20 seeded draws).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analytics.detectors.calibrate import periods_per_day
from shocklab.seeding import derive_int_seed

from . import nab
from .scoring import window_end

# ---------------------------------------------------------------- affiliation
Interval = tuple[float, float]


def _zones(gt: list[Interval], trange: Interval) -> list[Interval]:
    out = []
    for j, (a, b) in enumerate(gt):
        lo = trange[0] if j == 0 else (gt[j - 1][1] + a) / 2
        hi = trange[1] if j == len(gt) - 1 else (b + gt[j + 1][0]) / 2
        out.append((lo, hi))
    return out


def _clip(ivs: list[Interval], zone: Interval) -> list[Interval]:
    out = []
    for s, e in ivs:
        s2, e2 = max(s, zone[0]), min(e, zone[1])
        if e2 > s2:
            out.append((s2, e2))
    return out


def _integrate(f, points: list[float]) -> float:
    """∫ f over [min(points), max(points)], f linear between consecutive points (midpoint rule)."""
    p = np.unique(np.asarray(points, dtype=float))
    if p.size < 2:
        return 0.0
    mid = (p[:-1] + p[1:]) / 2
    return float(np.sum((p[1:] - p[:-1]) * f(mid)))


def _precision_zone(preds: list[Interval], J: Interval, E: Interval) -> float:
    j0, j1 = J
    e0, e1 = E
    L, R = j0 - e0, e1 - j1

    def fbar(x: np.ndarray) -> np.ndarray:
        d = np.where(x < j0, j0 - x, np.where(x > j1, x - j1, 0.0))
        out = (np.maximum(0.0, L - d) + np.maximum(0.0, R - d)) / (e1 - e0)
        return np.where(d == 0.0, 1.0, out)
    kinks = [j0, j1, j0 - R, j1 + L]
    total = length = 0.0
    for s, e in preds:
        pts = [s, e] + [k for k in kinks if s < k < e]
        total += _integrate(fbar, pts)
        length += e - s
    return total / length


def _dist_to(y: np.ndarray, preds: list[Interval]) -> np.ndarray:
    starts = np.array([s for s, _ in preds])
    ends = np.array([e for _, e in preds])
    d = np.maximum(starts[None, :] - y[:, None], y[:, None] - ends[None, :])
    return np.maximum(d, 0.0).min(axis=1)


def _recall_zone(preds: list[Interval], J: Interval, E: Interval) -> float:
    if not preds:
        return 0.0
    j0, j1 = J
    e0, e1 = E

    def g1(y):
        return y - _dist_to(y, preds) - e0

    def g2(y):
        return e1 - y - _dist_to(y, preds)

    def fbar(y: np.ndarray) -> np.ndarray:
        return (np.maximum(0.0, g1(y)) + np.maximum(0.0, g2(y))) / (e1 - e0)
    pts = [j0, j1]
    for k, (s, e) in enumerate(preds):   # kinks of dist(y, preds): ends and midpoints of gaps
        pts += [s, e]
        if k + 1 < len(preds):
            pts.append((e + preds[k + 1][0]) / 2)
    pts = np.unique(np.clip(pts, j0, j1))
    roots = []
    for g in (g1, g2):   # where max(0, g) kinks: roots of g, linear between the points above
        v = g(pts)
        cross = np.flatnonzero(v[:-1] * v[1:] < 0)
        roots += list(
            pts[cross] + (pts[cross + 1] - pts[cross]) * v[cross] / (v[cross] - v[cross + 1])
        )
    return _integrate(fbar, list(pts) + roots) / (j1 - j0)


def affiliation(
    pred: list[Interval], gt: list[Interval], trange: Interval
) -> dict[str, float | None]:
    """Affiliation precision, recall and F1 of predicted vs labelled intervals (sorted, disjoint,
    half-open, inside ``trange``). None where undefined: all three without a labelled interval;
    precision without a prediction (the authors' code gives NaN), and F1 is then 0."""
    if not gt:
        return {"precision": None, "recall": None, "f1": None}
    zones = _zones(gt, trange)
    precs, recs = [], []
    for J, E in zip(gt, zones, strict=True):
        p_in = _clip(pred, E)
        if p_in:
            precs.append(_precision_zone(p_in, J, E))
        recs.append(_recall_zone(p_in, J, E))
    p = float(np.mean(precs)) if precs else None
    r = float(np.mean(recs))
    f1 = 0.0 if p is None or p + r == 0 else 2 * p * r / (p + r)
    return {"precision": p, "recall": r, "f1": f1}


def runs(mask: np.ndarray) -> list[Interval]:
    """Half-open [start, end) intervals of the True runs of a boolean vector."""
    m = np.concatenate(([False], np.asarray(mask, dtype=bool), [False]))
    d = np.flatnonzero(m[1:] != m[:-1])
    return [(float(a), float(b)) for a, b in zip(d[::2], d[1::2], strict=True)]


# ---------------------------------------------------------------- point-adjusted F1
def point_adjusted_f1(pred: np.ndarray, label: np.ndarray) -> float:
    pred = np.asarray(pred, dtype=bool).copy()
    label = np.asarray(label, dtype=bool)
    for a, b in runs(label):
        a, b = int(a), int(b)
        if pred[a:b].any():
            pred[a:b] = True
    tp = int((pred & label).sum())
    if tp == 0:
        return 0.0
    p, r = tp / pred.sum(), tp / label.sum()
    return float(2 * p * r / (p + r))


def random_point_adjusted_f1(
    n_flagged: int, label: np.ndarray, seed: int, draws: int = 20
) -> float:
    """Mean point-adjusted F1 of uniform random scores that flag ``n_flagged`` points (none: 0)."""
    n = len(label)
    if n_flagged <= 0:   # flagging nothing scores 0, by chance as by design
        return 0.0
    k = int(min(n_flagged, n))
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(draws):
        pred = np.zeros(n, dtype=bool)
        pred[rng.choice(n, size=k, replace=False)] = True
        vals.append(point_adjusted_f1(pred, label))
    return float(np.mean(vals))


# ---------------------------------------------------------------- one labelled series
def window_event_scores(
    inc_spans: list[tuple[int, int]], win_spans: list[tuple[int, int]]
) -> dict[str, Any]:
    """Windows detected by an overlapping incident (no tolerance) and incidents on a window.
    Spans are inclusive [first, last] grid periods."""
    det = sum(any(s <= b and e >= a for s, e in inc_spans) for a, b in win_spans)
    true_inc = sum(any(s <= b and e >= a for a, b in win_spans) for s, e in inc_spans)
    recall = det / len(win_spans) if win_spans else None
    precision = true_inc / len(inc_spans) if inc_spans else 1.0
    f1 = (
        2 * precision * recall / (precision + recall)
        if recall is not None and precision + recall > 0
        else (0.0 if recall is not None else None)
    )
    return {
        "windows": len(win_spans),
        "detected": det,
        "incidents": len(inc_spans),
        "true_incidents": true_inc,
        "recall": recall,
        "precision": precision,
        "f1": f1,
    }


def nab_detections(
    grid: np.ndarray, raw_times: np.ndarray, raw_slots: np.ndarray | None, starts: list[int]
) -> np.ndarray:
    """0/1 per file row: an incident is one NAB detection, at the LAST file row of its first grid
    period (``starts``: grid indices; ``raw_slots``: each sorted row's period, None: the nearest
    grid point). A detection may not be placed before the data that caused it: the flagged
    period's value combines all its rows (``--duplicates``), so it is known at its last row; a
    period without rows (never flagged) takes the next row. One row per period: unchanged."""
    raw_times = np.asarray(raw_times).astype("datetime64[ns]")
    if raw_slots is None:   # the ingester's rule: nearest grid point, a tie to the later one
        g = np.asarray(grid).astype("datetime64[ns]").view(np.int64)
        raw_slots = np.searchsorted(g[1:] - np.diff(g) // 2, raw_times.view(np.int64), "right")
    slots, starts = np.asarray(raw_slots), np.asarray(starts, dtype=np.int64)
    rows = np.searchsorted(slots, starts, side="right") - 1
    empty = (rows < 0) | (slots[np.maximum(rows, 0)] != starts)
    rows[empty] = np.searchsorted(slots, starts[empty], side="left")
    det = np.zeros(len(raw_times))
    det[rows[rows < len(raw_times)]] = 1.0
    return det


def score_series(
    grid: np.ndarray,
    raw_times: np.ndarray,
    raw_slots: np.ndarray | None,
    windows: list[tuple[pd.Timestamp, pd.Timestamp]],
    detectors: dict[str, list[tuple[Any, Any]]],
    profiles: dict[str, dict[str, float]] | None = None,
    seed: int = 0,
    scores: dict[str, np.ndarray] | None = None,
    vus_buffer: int = 7,
) -> dict[str, Any]:
    """Every metric for one series.

    grid : the regular time grid the detectors saw (datetime64) · raw_times / raw_slots : the
    file's rows (sorted) and their grid period (NAB scores rows of the file, as NAB does) ·
    windows : labelled (start, end) · detectors : name -> [(incident start, end)] on the grid ·
    scores : name -> continuous anomaly score per grid period (VUS-PR; without one a detector's
    VUS-PR is None) · vus_buffer : the largest buffer length of VUS-PR, in periods.
    """
    profiles = profiles or nab.STANDARD_PROFILES
    grid = np.asarray(grid).astype("datetime64[ns]")
    raw_times = np.asarray(raw_times).astype("datetime64[ns]")
    n = len(grid)
    win_spans = []
    for a, b in windows:   # grid periods inside each window
        i = int(np.searchsorted(grid, np.datetime64(a, "ns"), side="left"))
        j = int(np.searchsorted(grid, np.datetime64(b, "ns"), side="right")) - 1
        if i <= j:
            win_spans.append((i, j))
    label = np.zeros(n, dtype=bool)
    for a, b in win_spans:
        label[a:b + 1] = True
    gt = runs(label)   # affiliation's windows in order and apart, however they were listed
    wins = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]
    null = nab.score_profiles(raw_times, np.zeros(len(raw_times)), wins, profiles)
    out: dict[str, Any] = {
        "periods": n,
        "rows": len(raw_times),
        "windows": len(windows),
        # the windows NAB scores (with a file row; overlapping ones merged): its perfect score
        "nab_windows": next(iter(null.values())).windows if null else 0,
        "nab_null": {
            p: {"score": r.score, "normalised": 0.0 if r.windows else None} for p, r in null.items()
        },
        "detectors": {},
    }
    for name, incs in detectors.items():
        spans = []
        for s, e in incs:
            i = int(np.searchsorted(grid, np.datetime64(s, "ns"), side="left"))
            j = int(np.searchsorted(grid, np.datetime64(e, "ns"), side="right")) - 1
            spans.append((i, max(i, j)))
        pred = np.zeros(n, dtype=bool)
        for a, b in spans:
            pred[a:b + 1] = True
        det = nab_detections(grid, raw_times, raw_slots, [a for a, _ in spans])
        res = nab.score_profiles(raw_times, det, wins, profiles)
        nab_out = {}
        for p, r in res.items():
            norm = nab.normalised([r], profiles[p])
            nab_out[p] = {
                "score": r.score,
                "normalised": norm,
                "detections": r.tp + r.fp,
                "fp": r.fp,
                "detected_windows": r.detected_windows,
            }
        aff = (
            affiliation(runs(pred), gt, (0.0, float(n)))
            if gt
            else {"precision": None, "recall": None, "f1": None}
        )
        pa = point_adjusted_f1(pred, label) if label.any() else None
        rnd = (
            random_point_adjusted_f1(
                int(pred.sum()), label, derive_int_seed(seed, f"pa-random/{name}")
            )
            if label.any()
            else None
        )
        out["detectors"][name] = {
            "incidents": len(spans),
            "flagged_periods": int(pred.sum()),
            "nab": nab_out,
            "affiliation": aff,
            "vus_pr": (
                vus_pr(label, scores[name], vus_buffer)
                if scores is not None and name in scores and label.any()
                else None
            ),
            "window_event": window_event_scores(spans, win_spans),
            "point_adjusted_f1": {"f1": pa, "random_f1": rnd},
        }
    return out


def vus_buffer_for(ppd: int, n: int | None = None) -> int:
    """VUS-PR's largest buffer: a week of daily periods, one day of sub-daily periods (at most
    256: the cost grows with it), and at most a quarter of the series' ``n`` periods. The buffer
    is a tolerance around each window (the paper's is of the order of a period); one as long as
    the series labelled every period at the widest buffers, so any score, all zeros too, scored
    near 1 (a 40-period file: 0.885 for zeros, 0.95 for a detector without incidents)."""
    full = 7 if ppd <= 1 else min(ppd, 256)
    return full if n is None else min(full, n // 4)


def period_scores(ctx: Any, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Continuous anomaly score per grid period for VUS-PR: each detector's |calibrated score|;
    the consensus's is the k-th largest of its voters' (k = the consensus's min_votes, capped at
    the voters that ran): a period scores what its k-th strongest vote says."""
    det = ctx.detections
    out: dict[str, np.ndarray] = {}
    if det is None or not len(det):
        return out
    t = pd.DatetimeIndex(grid)
    for name, g in det.groupby("detector", sort=True):
        v = np.zeros(len(t))
        i = t.get_indexer(pd.DatetimeIndex(g["date"]))
        ok = i >= 0
        v[i[ok]] = np.nan_to_num(np.abs(g["score"].to_numpy(float)[ok]), nan=0.0)
        out[str(name)] = v
    voters = [n for n in ctx.config.detectors if n in out and n in ctx.config.voting_detectors()]
    if voters:
        k = min(ctx.config.consensus.min_votes, len(voters))
        stack = np.sort(np.vstack([out[n] for n in voters]), axis=0)
        out["consensus"] = stack[-k]
    return out


def label_windows(events: list[dict[str, Any]]) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(start, end) of each unexpected labelled window as the scorecard's matching reads it
    (``scoring.window_end``): an end given as a date covers that day, so on sub-daily data
    ``2025-01-30,2025-01-30`` is that day's periods; an end written with a time (NAB's windows
    always) is kept as it is."""
    return [(pd.Timestamp(e["start"]), window_end(e)) for e in events if not e.get("expected")]


def add_series_metrics(ctx: Any) -> None:
    """Run stage hook for ``--kpis`` runs with labels: ``scorecard["series_metrics"]``. Needs one
    series (one KPI, no slices); otherwise records why it was skipped."""
    ds = ctx.data
    ing = getattr(ds, "ingest", None) or {}
    if ctx.scorecard is None:
        return
    if ing.get("series") != 1 or "_raw_times" not in ing:
        ctx.scorecard["series_metrics"] = {
            "skipped": "NAB / affiliation metrics need a file with one series (one KPI, no slices)"
        }
        return
    k = ctx.kpis_daily
    grid = k["date"].to_numpy("datetime64[ns]")
    events = ctx.truth.events if ctx.truth is not None else []
    windows = label_windows(events)
    dets = {"consensus": [(i.start, i.end) for i in ctx.incidents]}
    for name, incs in sorted(ctx.detector_incidents.items()):
        dets[name] = [(i.start, i.end) for i in incs]
    scores = period_scores(ctx, grid)
    ppd = periods_per_day(grid)
    buffer = vus_buffer_for(ppd, len(grid))
    card = score_series(grid, ing["_raw_times"], ing.get("_raw_slots"), windows, dets,
                        seed=ctx.config.seed, scores=scores, vus_buffer=buffer)
    card["vus_buffer"] = buffer
    card["kpi"] = ing["kpis"][0]
    ctx.scorecard["series_metrics"] = _round(card)


def _round(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6) if np.isfinite(obj) else None
    return obj


def format_series_table(sm: dict[str, Any]) -> str:
    """Console table of ``scorecard["series_metrics"]``."""
    if sm.get("skipped"):
        return f"series metrics skipped: {sm['skipped']}"

    def f(x: Any, nd: int = 2) -> str:
        return "—" if x is None else f"{x:.{nd}f}"
    head = (f"{'':<22}{'NAB std':>8}{'lowFP':>7}{'lowFN':>7}{'aff P':>7}{'aff R':>7}{'aff F1':>7}"
            f"{'VUS-PR':>7}{'win R':>7}{'win P':>7}{'PA-F1':>7}{'(rand)':>7}{'incid.':>7}")
    lines = [
        f"Benchmark metrics ({sm['windows']} labelled window(s), {sm['rows']} rows; NAB normalised "
        "per file: "
        f"0 = flags nothing, 100 = perfect)",
        head,
        "-" * len(head),
    ]
    for name, m in sm["detectors"].items():
        nb, af, we, pa = m["nab"], m["affiliation"], m["window_event"], m["point_adjusted_f1"]
        lines.append(
            f"{name:<22}{f(nb['standard']['normalised'], 1):>8}"
            f"{f(nb['reward_low_FP_rate']['normalised'], 1):>7}"
            f"{f(nb['reward_low_FN_rate']['normalised'], 1):>7}"
            f"{f(af['precision']):>7}{f(af['recall']):>7}"
            f"{f(af['f1']):>7}{f(m.get('vus_pr')):>7}{f(we['recall']):>7}{f(we['precision']):>7}{f(pa['f1']):>7}"
            f"{f(pa['random_f1']):>7}{m['incidents']:>7}"
        )
    if not sm["windows"]:
        lines.append(
            "(no labelled window: NAB scores are raw — every flag costs — and F1s undefined)"
        )
    return "\n".join(lines)


def _runs_inclusive(label: np.ndarray) -> list[tuple[int, int]]:
    """[first, last] of each run of nonzero labels."""
    m = np.r_[False, np.asarray(label) > 0, False]
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(d[::2], d[1::2], strict=True)]


def _merged_ranges(seq: list[tuple[int, int]], w: int, n: int) -> list[tuple[int, int]]:
    """The anomaly ranges widened by ``w // 2`` on each side, overlapping ones merged
    (``new_sequence`` of the reference code)."""
    h = w // 2
    out, a = [], max(seq[0][0] - h, 0)
    for (_, e0), (s1, _) in zip(seq[:-1], seq[1:], strict=True):
        if e0 + h < s1 - h:
            out.append((a, e0 + h))
            a = s1 - h
    out.append((a, min(seq[-1][1] + h, n - 1)))
    return out


def vus_pr(label: np.ndarray, score: np.ndarray, max_buffer: int, thresholds: int = 250) -> float:
    """VUS-PR, the volume under the range-precision / range-recall surface (Paparrizos, Boniol,
    Palpanas, Tsay, Elmore, Franklin, "Volume Under the Surface: a new accuracy evaluation measure
    for time-series anomaly detection", VLDB 2022): the mean over buffer lengths
    ``l = 0 .. max_buffer`` of the range-based average precision, where each labelled range is
    extended by ``l // 2`` points on each side with weights ``sqrt(1 - d / l)`` (d = distance to
    the range), range recall is ``min(TP / ((P + N_l) / 2), 1)`` times the share of (merged,
    extended) ranges with a detection, and precision is ``TP / detections``, at ``thresholds``
    cut points evenly spaced over the sorted scores.

    A vectorised port of the authors' ``RangeAUC_volume_opt`` (TheDatumOrg/VUS, package ``vus``
    0.0.6, ``vus/utils/metrics.py``), reproducing it to 1e-12 on the test cases
    (``tests/evaluation/test_ts_metrics.py``): points are ranked once by score, so each threshold
    is a prefix of that ranking and every sum a cumulative sum (O(max_buffer × n), not
    O(max_buffer × thresholds × n)). Ties keep the reference's rule (a threshold takes every point
    with ``score >= cut``). A NaN score counts as 0 (the reference has none); NaN without any
    labelled point."""
    label = (np.asarray(label) > 0).astype(float)
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=0.0)
    n = len(score)
    seq = _runs_inclusive(label)
    if n == 0 or not seq:
        return float("nan")
    p = float(label.sum())
    srt = -np.sort(-score)
    cuts = srt[np.linspace(0, n - 1, thresholds).astype(int)]
    n_pred = np.searchsorted(-srt, -cuts, side="right")  # points with score >= cut
    # a point is predicted at threshold j iff score >= cut_j, i.e. iff the number of points
    # scoring >= its own score is at most n_pred[j] (tied points enter together)
    block_end = np.searchsorted(-srt, -score, side="right")  # n_pred of a cut equal to the score
    idx = np.arange(n)
    # cumulative sums run over points sorted by their block end (= when they become predicted)
    by = np.argsort(block_end, kind="stable")
    be = block_end[by]
    k = np.searchsorted(be, n_pred, side="right")  # points predicted at each threshold
    aps = []
    for w in range(max_buffer + 1):
        ext = label.copy()
        h = w // 2
        for s, e in seq:
            if h:
                x1 = idx[e + 1 : min(e + h + 1, n)]
                ext[x1] += np.sqrt(1 - (x1 - e) / w)
                x2 = idx[max(s - h, 0) : s]
                ext[x2] += np.sqrt(1 - (s - x2) / w)
        ext = np.minimum(ext, 1.0)
        ranges = _merged_ranges(seq, w, n)
        cum_ext = np.r_[0.0, np.cumsum(ext[by])]
        extra = np.where(label > 0, 0.0, ext)  # extension weights outside the labelled points
        cum_extra = np.r_[0.0, np.cumsum(extra[by])]
        tp = cum_ext[k]
        n_labels = p + cum_extra[k]
        first = np.array([block_end[a : b + 1].min() for a, b in ranges])
        existence = (first[None, :] <= n_pred[:, None]).sum(axis=1) / len(ranges)
        p_new = (p + n_labels) / 2
        tpr = np.minimum(tp / p_new, 1.0) * existence
        prec = tp / n_pred
        aps.append(float(np.sum(np.diff(np.r_[0.0, tpr]) * prec)))
    return float(np.mean(aps))
