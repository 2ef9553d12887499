"""Why does detection miss or false-alarm on generated worlds? Per-event and per-incident diagnosis.

For each data directory (a generated world with truth/) and each variant of the analysis config
(``--variant "key=value;key=value"``, repeatable; the first variant is the shipped config plus
``--set``), runs the scoring stages (kpis once per world, then detect, consensus, score) and
prints:

- mean consensus recall / precision / F1, oracle recall at equal FP (and at 0 FP: where the two
  are close, the ratio is the voters' power, not their false alarms) and the ratio per variant;
- recall per scope kind and per event type, for the consensus and the oracle (was the event
  visible at all?), and which watched series moved (``--events``: one line per missed event);
- false alarms by dimension, KPI, direction and set of voting detectors;
- the events found at equal false positives by one side only (``oracle_equal_fp``): the
  oracle-only ones by scope kind and by the voters that matched them alone (``equal_fp_gap``);
- per variant after the first: the paired change from the shipped config over the same worlds
  (F1, precision, recall, ratio), with a 95 % bootstrap interval over the worlds (``paired``);
  ``--paired FILE`` prints it from an earlier run's ``--json FILE`` without analysing again;
  ``--seeds K`` runs every variant under the analysis seeds 0 … K−1 (the isolation forest's
  random_state) and pairs each with the shipped config under the same seed: the change per world
  is its mean over the seeds, and the per-seed means are printed beside it (the forest's seed
  alone moves a 20-world pool's F1 by up to ±0.006: forty-ninth session);
- ``--fp-kinds``: every consensus false positive put in one kind read from the truth (spillover,
  unrelated, expected, echo, noise; ``bench/fp_kinds.py``), with the share the oracle also scores
  at 3 or more, and examples per kind;
- ``--stand-in VOTER``: the oracle's exact scores vote in VOTER's place (on the series VOTER
  watched, flagged at VOTER's own threshold and direction; ``stand_in``), every other stage as
  configured: the consensus a VOTER with the simulator's exact expected value and noise would
  give, so the ceiling of any work on VOTER's estimation (fifty-sixth session). The scorecard's
  entry for VOTER is then the stand-in's. Several voters, comma-separated (``stand_ins``): each
  replaced (fifty-seventh session).
- ``--expected truth|shape:W``: count_likelihood's expected value from the truth in every variant
  (``known_expected.py``): the noise-free expectation itself, or the truth's shape under a W-day
  trailing level still estimated from the data — what a long level is worth behind a right shape
  (fifty-eighth session: on TRAIN s1–s20 shape:56 reaches truth's ratio, shape:21 does not).

Tune on TRAIN worlds only (random_world seeds 1-10); test seeds are for the final report.
``detect+cons`` times a variant's detection and consensus; detectors whose config and input repeat
are reused across variants (memoized), so after the first variant it times only what changed.
That is not the detectors' speed: use bench/bench_detect.py for that.

    PYTHONPATH=$PWD/src:$PWD python bench/diagnose_detect.py /tmp/w/s1 /tmp/w/s2 \
        --set scoring.warmup_days=90 --variant 'consensus.count_by=type' --events
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.config import load_analysis_config  # noqa: E402
from analytics.context import RunContext  # noqa: E402
from analytics.detectors.calibrate import threshold_for  # noqa: E402
from analytics.loading import load_data_dir  # noqa: E402
from analytics.watch import product_categories  # noqa: E402
from evaluation.pipeline import STAGES, run  # noqa: E402
from evaluation.scoring import Event, match_matrix  # noqa: E402
from evaluation.truth import attach, find_truth  # noqa: E402
from experiments.cell import _memoized_detectors  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import _common  # noqa: E402
import fp_kinds  # noqa: E402

WHY = False
STAND_IN: str | None = None   # --stand-in: the voter the oracle's exact scores replace
EXPECTED: tuple[str, int | None] | None = None   # --expected: known_expected's (mode, window)
SHOW_FPS = False
FP_KINDS: int | None = None   # --fp-kinds: echo window in days (None: off)


def _event_windows(events: list[Event], card: dict):
    """(event, its event_detail row, match window start, end) of the scored unexpected events."""
    s = card["settings"]
    by = {e["event_id"]: e for e in card["event_detail"]}
    for ev in events:
        e = by.get(ev.event_id)
        if e is None or e["expected"] or e["in_warmup"]:
            continue
        yield (ev, e, ev.start - pd.Timedelta(days=s["early_days"]),
               ev.end + pd.Timedelta(days=s["late_days"]))


def explain_misses(ctx, events: list[Event], card: dict) -> list[dict]:
    """Per event (after the warm-up): each detector's best calibrated score, in a direction and on
    a series a strict match allows, over the event's match window; and why the consensus missed it
    (``invisible``: the oracle is below its threshold too; ``score``: rolling_zscore below its
    threshold; ``vote``: flagged but neither confirmed nor strong enough alone; ``other``)."""
    from analytics.consensus import Votes
    from analytics.context import Incident
    det = ctx.detections
    votes = Votes(det)
    cfg = ctx.config
    s = card["settings"]
    t0 = votes.grid[0]
    pseudo = []
    for kpi, dim, seg in votes.series:
        for d in ("up", "down"):
            pseudo.append(Incident("x", kpi, dim, seg, t0, t0, d, [], "single", 0, "low", 0,
                                   0, 0, 0))
    thr = {}
    for name, dc in cfg.detectors.items():
        if not dc.enabled:
            continue
        sens = dc.sensitivity if dc.sensitivity is not None else cfg.sensitivity
        thr[name] = dc.threshold if dc.threshold is not None else threshold_for(sens)
    solo = (threshold_for(cfg.consensus.solo_sensitivity)
            if cfg.consensus.solo_sensitivity is not None else float("inf"))
    out = []
    for ev, e, lo, hi in _event_windows(events, card):
        tm = (votes.grid >= lo) & (votes.grid <= hi)
        for inc in pseudo:
            inc.start, inc.end = lo, hi
        ok = match_matrix(pseudo, [ev], "strict", s["early_days"], s["late_days"],
                          s["min_effect"])[:, 0]
        best = {}
        for name in votes.detectors:
            di = votes.detectors.index(name)
            top, where = -np.inf, None
            for j in np.flatnonzero(ok):
                si, sign = j // 2, (1.0 if j % 2 == 0 else -1.0)
                sc = sign * votes.score[di, si, tm]
                if np.isfinite(sc).any() and np.nanmax(sc) > top:
                    top, where = float(np.nanmax(sc)), votes.series[si]
            best[name] = (top, where)
        hit = "consensus" in e["detected_by"]
        rz = best.get("rolling_zscore", (-np.inf, None))[0]
        isf = best.get("isolation_forest", (-np.inf, None))[0]
        orc = best.get("oracle", (-np.inf, None))[0]
        if hit:
            why = "hit"
        elif orc < thr.get("oracle", 3.0):
            why = "invisible"
        elif rz < thr.get("rolling_zscore", 3.26):
            why = "score"
        elif isf < thr.get("isolation_forest", 3.26) and rz < solo:
            why = "vote"
        else:
            why = "other"
        out.append({"event_id": ev.event_id, "type": ev.type, "scope_kind": ev.scope_kind,
                    "why": why, "best": best, "oracle_hit": "oracle" in e["detected_by"]})
    return out


def _true_in_rz_space(kpi: str, mean: np.ndarray, var: np.ndarray, factor: np.ndarray,
                      offset: np.ndarray, orders: np.ndarray, sessions: np.ndarray,
                      log_kpis: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's null mean and sd of one day, moved to rolling_zscore's judging scale (value /
    weekday factor, then Anscombe for counts, log for money, arcsine-sqrt for conversion; delta
    method for the sd)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        y, sd = mean / factor, np.sqrt(var) / factor
        if kpi in log_kpis:
            if kpi == "aov":  # noise = variance of one order's value: the day's mean of n orders
                sd = np.sqrt(var / np.maximum(orders, 1)) / factor
            return np.log(y + offset), sd / (y + offset)
        if kpi in ("orders", "sessions"):
            return 2 * np.sqrt(y + 0.375), sd / np.sqrt(y + 0.375)
        if kpi == "conversion_rate":  # noise = day-level CV^2; binomial given the sessions
            s = np.maximum(sessions, 1)
            sd = np.sqrt(mean / s + mean**2 * var) / factor
            q = np.clip(y, 1e-9, 1 - 1e-9)
            return np.arcsin(np.sqrt(q)), sd / (2 * np.sqrt(q * (1 - q)))
        return y, sd


def decompose_gap(ctx, events: list[Event], card: dict) -> list[dict]:
    """Per visible event (oracle >= its threshold), at the oracle's best point (series, day): why
    is rolling_zscore's final score smaller than the oracle's? rolling_zscore is re-run with its
    internals kept; for each own window k (1, 3, 7 days) its raw z = (cur - c_hat) / s_hat x
    sqrt(k) is compared with the ideal z = (cur - c*) / s* x sqrt(k) on the same scale, c* and s*
    the oracle's exact null mean and sd moved there. Then raw = (ideal - a) / b exactly, with
    a = (c_hat - c*) / s* x sqrt(k) the expected-value error and b = s_hat / s* the spread ratio.
    At the window where the ideal z is largest: ev = (ideal - a) / ideal (signal left after the
    expected-value error), spread = 1 / b, calib = calibrated / raw of that window (scale, t tail,
    gain), multi = final / calibrated (Bonferroni over all windows incl. share ones; > 1 when a
    share window wins), model = ideal / oracle's final score (its own Bonferroni, null shape).
    Their product is rolling_zscore's final / the oracle's final at that point."""
    from cl_windows import capture_core  # bench/, the script's own directory

    from analytics import pipeline as ap
    from analytics.context import Incident
    from analytics.detectors.base import combine_windows
    from analytics.detectors.calibrate import Wide, calibrate_wide
    from analytics.detectors.rolling_zscore import RollingZScore
    from evaluation.oracle import baseline_long, truth_baseline

    cfg = ctx.config
    dc = cfg.detectors.get("rolling_zscore")
    if dc is None or not dc.enabled:
        return []
    det = RollingZScore(dc, name="rolling_zscore")
    det.parts = {}
    series, core = capture_core(det, ap.detector_input(ctx))
    parts = det.parts
    wide = Wide.of(series)
    cols = ["score", *sorted(c for c in core.columns if c.startswith("score@"))]
    cal, scaled = {}, {}
    for c in cols:
        raw_c = core[c].astype(float).replace([np.inf, -np.inf], np.nan).to_numpy()
        v = det.calibrate(series, raw_c, 1, c)
        plain = det.calibration_for(c).model_copy(update={"tail_df": None, "tail_gain": 1.0})
        scaled[c] = calibrate_wide(wide.to(raw_c), plain)  # the scale step alone
        keep = "keep" + c[len("score"):]
        if keep in core:
            v = np.where(core[keep].fillna(True).to_numpy(bool), v, 0.0)
        cal[c] = wide.to(v)
    final = combine_windows(np.stack([cal[c] for c in cols]))
    label = {1: "score", **{k: f"score@{k}" for k in (dc.windows or [])}}
    ks = [k for k in label if k in parts]
    keys = parts["keys"]
    grid = wide.grid
    base = baseline_long(truth_baseline(ctx), ap.analysed_kpis(ctx)[0])
    bw = {}
    for col in ("value", "noise"):
        piv = base.pivot_table(index="date", columns=["kpi", "dimension", "segment"],
                               values=col, aggfunc="first").reindex(grid)
        bw[col] = piv.reindex(columns=pd.MultiIndex.from_tuples(keys)).to_numpy(float)
    cnt = {}
    for kpi in ("orders", "sessions"):
        ck = [(kpi, d, sg) for _, d, sg in keys]
        piv = base[base["kpi"] == kpi].pivot_table(
            index="date", columns=["kpi", "dimension", "segment"], values="value",
            aggfunc="first").reindex(grid)
        cnt[kpi] = piv.reindex(columns=pd.MultiIndex.from_tuples(ck)).to_numpy(float)
    orc = ctx.detections[ctx.detections["detector"] == "oracle"]
    ow = np.full(wide.shape, np.nan)
    oi = pd.MultiIndex.from_tuples(keys).get_indexer(
        pd.MultiIndex.from_frame(orc[["kpi", "dimension", "segment"]]))
    ow[grid.get_indexer(orc["date"]), oi] = orc["score"].to_numpy(float)
    s = card["settings"]
    thr = cfg.detectors["oracle"].threshold or 3.0
    out = []
    for ev, e, lo, hi in _event_windows(events, card):
        tm = np.flatnonzero((grid >= lo) & (grid <= hi))
        pseudo = [Incident("x", kp, d, sg, lo, hi, dr, [], "single", 0, "low", 0, 0, 0, 0)
                  for kp, d, sg in keys for dr in ("up", "down")]
        ok = match_matrix(pseudo, [ev], "strict", s["early_days"], s["late_days"],
                          s["min_effect"])[:, 0]
        best, at = -np.inf, None
        for j in np.flatnonzero(ok):
            si, sign = j // 2, (1.0 if j % 2 == 0 else -1.0)
            v = sign * ow[tm, si]
            if np.isfinite(v).any() and np.nanmax(v) > best:
                best, at = float(np.nanmax(v)), (int(tm[np.nanargmax(v)]), si, sign)
        if at is None or best < thr:
            continue
        t, si, sign = at
        kpi = keys[si][0]
        rows = {}
        for k in ks:
            cur, c_hat, s_hat = (p[t, si] for p in parts[k])
            span = slice(max(0, t - k + 1), t + 1)
            mu, sd = _true_in_rz_space(
                kpi, bw["value"][span, si], bw["noise"][span, si], parts["factor"][span, si],
                parts["offset"][span, si], cnt["orders"][span, si], cnt["sessions"][span, si],
                list(dc.log_kpis))
            c_star, s_star = float(np.mean(mu)), float(np.sqrt(np.mean(sd**2)))
            rk = np.sqrt(k)
            ideal = sign * (cur - c_star) / s_star * rk
            raw = sign * (cur - c_hat) / s_hat * rk
            a = sign * (c_hat - c_star) / s_star * rk
            calk = sign * cal[label[k]][t, si]
            gain = det.calibration_for(label[k]).tail_gain
            scale = sign * scaled[label[k]][t, si] / raw if raw else np.nan
            rows[k] = {"ideal": ideal, "raw": raw, "a": a, "b": s_hat / s_star, "cal": calk,
                       "scale": scale, "gain": gain,
                       "tail": calk / (raw * scale * gain) if raw and scale else np.nan}
        fin = sign * final[t, si]
        good = {k: r for k, r in rows.items() if np.isfinite(r["ideal"])}
        if not good:
            continue
        k = max(good, key=lambda kk: good[kk]["ideal"])
        r = good[k]
        out.append({"event_id": ev.event_id, "scope_kind": ev.scope_kind, "kpi": kpi,
                    "hit": "consensus" in e["detected_by"], "type": ev.type,
                    "series": "/".join(keys[si]), "k": k, "oracle": best, "final": fin,
                    **r, "ev": (r["ideal"] - r["a"]) / r["ideal"], "spread": 1 / r["b"],
                    "calib": r["cal"] / r["raw"] if r["raw"] else np.nan,
                    "multi": fin / r["cal"] if r["cal"] else np.nan,
                    "model": r["ideal"] / best})
    return out


def print_gap(results: list[dict]) -> None:
    rows = [g for r in results for g in r.get("gap", [])]
    if not rows:
        return
    print("   gap at the oracle's best point (medians; product of the factors = rz final / "
          "oracle): ev = (ideal - a)/ideal, spread = s*/s_hat, calib = calibrated/raw, "
          "multi = final/calibrated, model = ideal/oracle")
    kinds = sorted({g["scope_kind"] for g in rows})
    for k in [*kinds, "ALL"]:
        sel = [g for g in rows if k in ("ALL", g["scope_kind"])]
        med = {f: float(np.nanmedian([g[f] for g in sel])) for f in
               ("ev", "spread", "calib", "multi", "model", "a", "b", "ideal", "raw", "cal",
                "scale", "gain", "tail",
                "final", "oracle")}
        win = Counter(g["k"] for g in sel)
        fo = np.nanmedian([g["final"] / g["oracle"] for g in sel])
        print(f"   {k:<16} n={len(sel):<3} final/oracle {fo:.2f}"
              f" | ev {med['ev']:.2f} spread {med['spread']:.2f} calib {med['calib']:.2f} "
              f"(scale {med['scale']:.2f} gain {med['gain']:.2f} tail {med['tail']:.2f}) "
              f"multi {med['multi']:.2f} model {med['model']:.2f} | a {med['a']:+.2f} "
              f"b {med['b']:.2f} ideal {med['ideal']:.1f} raw {med['raw']:.1f} "
              f"cal {med['cal']:.1f} final {med['final']:.1f} oracle {med['oracle']:.1f} "
              f"windows {dict(sorted(win.items()))}")
    by_kpi = Counter(g["kpi"] for g in rows)
    print("   gap by kpi (median final/oracle, spread): " + "  ".join(
        f"{kp} n={n} {np.nanmedian([g['final'] / g['oracle'] for g in rows if g['kpi'] == kp]):.2f}"
        f"/{np.nanmedian([g['spread'] for g in rows if g['kpi'] == kp]):.2f}"
        for kp, n in by_kpi.most_common()))


def print_why(results: list[dict]) -> None:
    rows = [w for r in results for w in r["why"]]
    if not rows:
        return
    cnt = Counter((w["scope_kind"], w["why"]) for w in rows)
    kinds = sorted({w["scope_kind"] for w in rows})
    whys = ["hit", "invisible", "score", "vote", "other"]
    print("   why (scope: " + "/".join(whys) + "): " + "  ".join(
        f"{k} " + "/".join(str(cnt[(k, w)]) for w in whys) for k in kinds))
    tot = Counter(w["why"] for w in rows)
    print("   why total: " + "  ".join(f"{w} {tot[w]}" for w in whys))
    # efficiency: rz best / oracle best on visible events, by scope kind
    for k in kinds:
        rat = [w["best"]["rolling_zscore"][0] / w["best"]["oracle"][0] for w in rows
               if w["scope_kind"] == k and "oracle" in w["best"] and "rolling_zscore" in w["best"]
               and w["best"]["oracle"][0] >= 3.0 and np.isfinite(w["best"]["rolling_zscore"][0])]
        if rat:
            q = np.quantile(rat, [0.25, 0.5, 0.75])
            print(f"   rz/oracle best score, {k:<16} n={len(rat):<3} q25 {q[0]:.2f} "
                  f"median {q[1]:.2f} q75 {q[2]:.2f}")
    # power: each voter's best / the oracle's best on visible events, by the oracle's score (an
    # event near the bound's margin, 3-4, is where a voter's loss decides a find)
    voters = sorted({n for w in rows for n in w["best"]} - {"oracle", "product_watch"})
    bands = ((3.0, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, np.inf))

    def power(band: list[dict], v: str) -> float:
        r = [w["best"][v][0] / w["best"]["oracle"][0] for w in band
             if v in w["best"] and np.isfinite(w["best"][v][0])]
        return float(np.median(r)) if r else float("nan")

    for lo, hi in bands:
        band = [w for w in rows if "oracle" in w["best"] and lo <= w["best"]["oracle"][0] < hi]
        if band:
            print(f"   voter/oracle best score, oracle {lo:g}-{hi:g} n={len(band):<3} "
                  + "  ".join(f"{v} {power(band, v):.2f}" for v in voters))
    for w in rows:
        if w["why"] in ("score", "vote", "other"):
            b = w["best"]
            print(f"   {w['why']:<6}{w['event_id']:<26}{w['type']:<18}{w['scope_kind']:<16}"
                  + " ".join(f"{n[:4]} {v[0]:6.2f} {'/'.join(v[1]) if v[1] else '-'}"
                             for n, v in sorted(b.items())))


def print_fp_kinds(results: list[dict], examples: int = 4) -> None:
    rows = [k for r in results for k in r.get("kinds", [])]
    if not rows:
        return
    sm = fp_kinds.summary(rows)
    print(f"   FP kinds ({sm['n']} consensus FPs; share, and share the oracle also scores >= 3): "
          + "  ".join(f"{k} {sm[k]['n']} ({sm[k]['share']:.2f}, oracle>=3 "
                      f"{sm[k]['oracle_ge3']:.2f})" for k in fp_kinds.KINDS)
          + "; spillover " + "/".join(fp_kinds.SPILLOVER) + " "
          + "/".join(str(sm["spillover"][k]) for k in fp_kinds.SPILLOVER))
    base = fp_kinds.summary([k for r in results for k in r.get("kinds_base", [])])
    if base["n"]:
        print(f"   FP kinds if at random points after the warm-up ({base['n']} pseudo-incidents): "
              + "  ".join(f"{k} {base[k]['share']:.2f}" for k in fp_kinds.KINDS))
    for k in fp_kinds.KINDS:
        sel = [r for r in rows if r["kind"] == k]
        by_kpi = Counter(r["incident"].kpi for r in sel)
        print(f"   {k:<9} by kpi: " + ", ".join(f"{a}:{b}" for a, b in by_kpi.most_common()))
        # examples: the strongest by the oracle's verdict, then by peak (deterministic)
        sel.sort(key=lambda r: (-(r["oracle"] if r["oracle"] is not None else -99),
                                -r["incident"].peak_score, r["world"], r["incident"].incident_id))
        for r in sel[:examples]:
            i = r["incident"]
            eff = f" effect {r['effect']:+.3f} ({r['source']})" if r["effect"] is not None else ""
            orc = f"{r['oracle']:.2f}" if r["oracle"] is not None else "-"
            print(f"     {r['world']:<5} {i.start.date()}..{i.end.date()} {i.kpi}/{i.dimension}/"
                  f"{i.segment} {i.direction} peak {i.peak_score:.2f} oracle {orc} "
                  f"by {'+'.join(i.detectors)} event {r['event'] or '-'}{eff}")


def stand_in(det: pd.DataFrame, voter: str, threshold: float, direction: str = "both"
             ) -> pd.DataFrame:
    """``det`` with ``voter``'s rows replaced by the oracle's on the series ``voter`` watched,
    flagged where ``|score| >= threshold`` (only rises / falls for ``direction`` up / down):
    a voter that knows the exact null (``--stand-in``). Before ``voter``'s first score on a
    series (its warm-up: NaN, or the leading zeros of ``Votes.evidence``) the stand-in keeps
    ``voter``'s own no-opinion value, so it watches the same days. The oracle's own rows stay
    for the scorecard's bound. A voter without rows (off, failed) or the oracle is bad input."""
    from shocklab.errors import InputError

    own = (det["detector"] == voter).to_numpy()
    if voter == "oracle" or not own.any():
        ran = sorted(set(det["detector"].unique()) - {"oracle"})
        raise InputError(f"--stand-in {voter}: not a detector with scores in this run "
                         f"(voters with scores: {', '.join(ran) or 'none'})")
    keys = ["kpi", "dimension", "segment"]
    watched = det.loc[own, keys].drop_duplicates().astype(str)
    orc = det[det["detector"] == "oracle"]
    take = pd.MultiIndex.from_frame(orc[keys].astype(str)).isin(
        pd.MultiIndex.from_frame(watched))
    o = orc[take].copy()
    o["detector"] = voter
    mine = det.loc[own, [*keys, "date", "score"]].astype({k: str for k in keys})
    mine = mine.sort_values([*keys, "date"])
    sc = mine["score"].to_numpy(float)
    mine["started"] = (pd.Series(np.isfinite(sc) & (sc != 0), index=mine.index)
                       .groupby([mine[k] for k in keys], sort=False).cummax().to_numpy())
    at = o[[*keys, "date"]].astype({k: str for k in keys}).merge(
        mine, on=[*keys, "date"], how="left")
    started = at["started"].fillna(False).to_numpy(bool)
    o["score"] = np.where(started, o["score"].to_numpy(float), at["score"].to_numpy(float))
    score = o["score"].to_numpy(float)
    flag = np.abs(np.nan_to_num(score)) >= threshold
    if direction != "both":
        flag &= (score >= 0) == (direction == "up")
    o["flag"] = flag
    return pd.concat([det[~own], o], ignore_index=True)


def stand_ins(det: pd.DataFrame, voters: str, cfg) -> pd.DataFrame:
    """``stand_in`` for each of the comma-separated ``voters`` in turn, each at its own
    threshold (explicit, or its sensitivity's, else the analysis-wide one) and direction; a
    voter named twice or not configured is bad input."""
    from shocklab.errors import InputError

    names = [v.strip() for v in voters.split(",")]
    if any(not v for v in names) or len(set(names)) < len(names):
        raise InputError(f"--stand-in {voters}: name each voter once, comma-separated")
    for v in names:
        dc = cfg.detectors.get(v)
        thr, way = ((dc.threshold if dc.threshold is not None else threshold_for(
            dc.sensitivity if dc.sensitivity is not None else cfg.sensitivity, 1,
            dc.direction), dc.direction) if dc is not None else (np.inf, "both"))
        det = stand_in(det, v, thr, way)
    return det


def _variant(s: str) -> list[str]:
    return [p.strip() for p in s.split(";") if p.strip()] if s else []


def _known(ctx):
    """--expected: count_likelihood's expected value from the truth (``known_expected.py``). The
    detections memo (experiments.cell) is keyed without it: one mode per process (``main`` sets
    it once), so variants reuse only detections made under the same mode."""
    if EXPECTED is None:
        return contextlib.nullcontext()
    from cl_windows import _truth_wide
    from known_expected import known_expected

    return known_expected(lambda wide: _truth_wide(ctx, wide), *EXPECTED)


def analyse_world(data_dir: Path, overrides_list: list[list[str]]) -> list[dict]:
    ds, truth = load_data_dir(data_dir), find_truth(data_dir)
    out = []
    kpis_daily = tables = None
    for overrides in overrides_list:
        cfg = load_analysis_config(None, overrides)
        with tempfile.TemporaryDirectory(prefix="i9d-diag-") as tmp:
            ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
            if kpis_daily is None:
                run(ctx, [s for s in STAGES if s[0] == "kpis"])
                kpis_daily, tables = ctx.kpis_daily, ctx.kpi_tables
            else:
                ctx.kpis_daily, ctx.kpi_tables = kpis_daily.copy(), tables
            t0 = time.perf_counter()
            with _memoized_detectors(), _known(ctx):  # a repeated config and input: reused
                run(ctx, [s for s in STAGES if s[0] in ("detect", "oracle")])
            if STAND_IN is not None:
                ctx.detections = stand_ins(ctx.detections, STAND_IN, cfg)
            run(ctx, [s for s in STAGES if s[0] in ("consensus", "score")])
            secs = time.perf_counter() - t0
        card = ctx.scorecard
        cfgs = card["settings"]
        # product incidents under a category's event are in its scope (as the scorecard reads)
        members = product_categories((ds.tables or {}).get("products")) or None
        events = [Event.from_dict(e).with_members(members) for e in truth.events]
        warm = set(card.get("warmup", {}).get("event_ids", []))
        events = [e for e in events if e.event_id not in warm]
        mm = match_matrix(ctx.incidents, events, "strict", cfgs["early_days"], cfgs["late_days"],
                          cfgs["min_effect"])
        fps = [i for i, row in zip(ctx.incidents, mm, strict=True) if not row.any()]
        series = ctx.detections.drop_duplicates(["kpi", "dimension", "segment"]).shape[0]
        why = explain_misses(ctx, events, card) if WHY else []
        gap = decompose_gap(ctx, events, card) if WHY and not out else []  # first variant only
        kinds, base = [], []
        if FP_KINDS is not None and not out:   # first variant only
            det = ctx.detections
            kinds = fp_kinds.classify(
                fps, events, cfgs, ctx.kpis_daily, truth.counterfactual,
                det[det["detector"] == "oracle"], echo_days=FP_KINDS)
            keys = ["kpi", "dimension", "segment"]
            vs = det[det["detector"].isin(ctx.voters or [])]
            after = pd.DatetimeIndex(sorted(vs["date"].unique()))
            if card["warmup"]["days"]:
                after = after[after >= pd.Timestamp(cfgs["data_start"])
                              + pd.Timedelta(days=card["warmup"]["days"])]
            base = fp_kinds.base_rates(
                [tuple(x) for x in vs[keys].drop_duplicates().sort_values(keys).to_numpy()],
                after, events, cfgs, ctx.kpis_daily, truth.counterfactual, echo_days=FP_KINDS)
            for k in kinds + base:
                k["world"] = data_dir.name
        out.append({"card": card, "fps": fps, "events": events, "seconds": secs, "kinds": kinds,
                    "kinds_base": base if kinds else [],
                    "series": series, "status": ctx.detector_status, "why": why, "gap": gap})
    return out


def summarize(name: str, results: list[dict], show_events: bool) -> None:
    keys = ("recall", "precision", "f1")
    agg = defaultdict(list)
    scope = defaultdict(lambda: [0, 0, 0])   # events, consensus, oracle
    typ = defaultdict(lambda: [0, 0, 0])
    fp_kinds = Counter()
    fp_voters = Counter()
    lines = []
    for r in results:
        c = r["card"]
        s = c["strict"]
        for k in keys:
            agg[k].append(s["consensus"][k])
        oe = s.get("oracle_equal_fp") or {}
        agg["oracle_eq"].append(oe.get("oracle_recall"))
        agg["oracle_0"].append(oe.get("oracle_recall_at_zero_fp"))
        agg["ratio_1"].append(oe.get("ratio_one_cut"))
        agg["ratio"].append(oe.get("ratio"))
        agg["seen"].append(oe.get("seen_at_cut") or 0)   # events the bound lost (bound_check)
        agg["fp"].append(s["consensus"]["fp"])
        agg["inc"].append(s["consensus"]["incidents"])
        agg["sec"].append(r["seconds"])
        agg["series"].append(r["series"])
        orc = s["detectors"].get("oracle", {})
        agg["oracle_R"].append(orc.get("recall"))
        ob = s.get("oracle_best") or {}
        for k in ("f1", "precision", "recall", "threshold"):
            agg["best_" + k].append(ob.get(k))
        agg["unwatched"].append(c["events"].get("unwatched"))
        agg["events"].append(c["events"]["unexpected"])
        for e in c["event_detail"]:
            if e["expected"] or e["in_warmup"]:
                continue
            by = e["detected_by"]
            for d, key in ((scope, e["scope_kind"]), (typ, e["type"])):
                d[key][0] += 1
                d[key][1] += "consensus" in by
                d[key][2] += "oracle" in by
            if show_events and "consensus" not in by:
                lines.append(f"  miss {e['event_id']:<28}{e['type']:<22}{e['scope_kind']:<16}"
                             f"{e['start']}..{e['end']} by={sorted(by)}")
        for i in r["fps"]:
            fp_kinds[(i.dimension, i.kpi, i.direction)] += 1
            fp_voters[tuple(i.detectors)] += 1

    def mean(v):
        v = [x for x in v if x is not None]
        return sum(v) / len(v) if v else float("nan")

    print(f"== {name}: n={len(results)}  F1 {mean(agg['f1']):.3f}  P {mean(agg['precision']):.3f}"
          f"  R {mean(agg['recall']):.3f}  oracle@FP {mean(agg['oracle_eq']):.3f}"
          f" (@0FP {mean(agg['oracle_0']):.3f})"
          f"  ratio {mean(agg['ratio']):.3f} (max {max(x or 0 for x in agg['ratio']):.2f},"
          f" above 1 on {sum((x or 0) > 1 + 1e-9 for x in agg['ratio'])};"
          f" events the bound lost {sum(agg['seen'])}; one cut {mean(agg['ratio_1']):.3f},"
          f" above 1 on {sum((x or 0) > 1 + 1e-9 for x in agg['ratio_1'])})"
          f"  oracle R(own) {mean(agg['oracle_R']):.3f}  FP/world {mean(agg['fp']):.1f}"
          f"  incidents {mean(agg['inc']):.1f}  series {mean(agg['series']):.0f}"
          f"  detect+cons {mean(agg['sec']):.1f}s")
    # four digits for decision rules with a written tolerance (ninth session: 0.002 on F1 / ratio)
    print(f"   exact: F1 {mean(agg['f1']):.4f}  P {mean(agg['precision']):.4f}"
          f"  R {mean(agg['recall']):.4f}  ratio {mean(agg['ratio']):.4f}")
    fa = defaultdict(list)
    for r in results:
        f = r["card"].get("false_alerts") or {}
        fa["consensus"].append(f.get("consensus"))
        for n, v in (f.get("detectors") or {}).items():
            fa[n].append(v)
    print("   false alerts / series / 90 d: "
          + "  ".join(f"{n} {mean(v):.3f}" for n, v in sorted(fa.items())))
    # a shock-free world has no F1 (no event to find): "-", not a crash
    print("   per seed F1: " + " ".join("-" if x is None else f"{x:.2f}" for x in agg["f1"]))
    bf = [x for x in agg["best_f1"] if x is not None]
    if bf:
        print(f"   oracle best F1 {mean(bf):.3f} (P {mean(agg['best_precision']):.3f} R "
              f"{mean(agg['best_recall']):.3f} at threshold {mean(agg['best_threshold']):.2f}); "
              f"below 0.85 on {sum(x < 0.85 for x in bf)}/{len(bf)}; per seed: "
              + " ".join(f"{x:.2f}" for x in bf))
    print(f"   events / world {mean(agg['events']):.1f}, unwatched (product scope) "
          f"{mean(agg['unwatched']):.1f}; per seed: "
          + " ".join(str(x) for x in agg["unwatched"]))
    print("   scope: " + "  ".join(f"{k} {v[1]}/{v[2]}/{v[0]}" for k, v in sorted(scope.items()))
          + "   (consensus/oracle/events)")
    print("   type:  " + "  ".join(f"{k} {v[1]}/{v[2]}/{v[0]}" for k, v in sorted(typ.items())))
    print("   FP by (dim,kpi,dir): " + ", ".join(f"{k}:{v}" for k, v in fp_kinds.most_common(12)))
    print("   FP by voters: "
          + ", ".join(f"{'+'.join(k)}:{v}" for k, v in fp_voters.most_common(8)))
    print_equal_fp_gap(results)
    for line in lines:
        print(line)
    print_why(results)
    print_gap(results)
    print_fp_kinds(results)
    if SHOW_FPS:
        for r in results:
            for i in r["fps"]:
                near = min(r["events"], key=lambda e: abs((e.start - i.start).days),
                           default=None)
                ev = (f"{near.event_id} {near.type} {near.scope} {near.start.date()}.."
                      f"{near.end.date()}" if near is not None else "-")
                print(f"   FP {i.start.date()}..{i.end.date()} {i.kpi}/{i.dimension}/{i.segment} "
                      f"{i.direction} peak {i.peak_score:.2f} by {'+'.join(i.detectors)}"
                      f"  nearest: {ev}")


def equal_fp_gap(cards: list[dict]) -> dict:
    """The events one side found at equal false positives and the other not, over the worlds'
    scorecards (``oracle_equal_fp``'s ``oracle_only`` / ``consensus_only``): their counts, the
    oracle-only ones by scope kind, and by the set of voters that matched them on their own
    (empty: none did, only the oracle saw them)."""
    out = {"oracle_only": 0, "consensus_only": 0, "by_scope": Counter(), "matched_by": Counter()}
    for c in cards:
        oe = c["strict"].get("oracle_equal_fp") or {}
        detail = {e["event_id"]: e for e in c.get("event_detail", [])}
        out["consensus_only"] += len(oe.get("consensus_only") or [])
        for ev in oe.get("oracle_only") or []:
            out["oracle_only"] += 1
            e = detail.get(ev, {})
            out["by_scope"][e.get("scope_kind", "?")] += 1
            out["matched_by"][tuple(sorted(k for k in e.get("detected_by", {})
                                           if k not in ("oracle", "consensus")))] += 1
    return out


def print_equal_fp_gap(results: list[dict]) -> None:
    g = equal_fp_gap([r["card"] for r in results])
    print(f"   at equal FP: oracle-only {g['oracle_only']}, consensus-only {g['consensus_only']};"
          " oracle-only by scope: "
          + "  ".join(f"{k} {v}" for k, v in g["by_scope"].most_common())
          + "; matched alone by: "
          + ", ".join(f"{'+'.join(k) or 'none'} {v}" for k, v in g["matched_by"].most_common()))


PAIRED = ("f1", "precision", "recall", "ratio")


def _metric(card: dict, what: str) -> float:
    s = card["strict"]
    v = (s.get("oracle_equal_fp") or {}).get("ratio") if what == "ratio" else s["consensus"][what]
    return float("nan") if v is None else float(v)


def paired(base: list[dict], other: list[dict], resamples: int = 4000
           ) -> dict[str, dict[str, float]]:
    """Per metric (strict consensus F1, precision, recall; the ratio to the oracle at equal FP):
    the mean change from ``base`` to ``other`` scorecards of the same worlds (paired by
    position), its 95 % percentile bootstrap interval over the worlds, and how many worlds
    changed at all. On 20 worlds one event more or less moves a pool's ratio by ~0.003-0.005; a
    stage rule tighter than the interval is deciding on a few events (nineteenth session).
    ``paired_seeds`` with one seed."""
    if len(base) != len(other):
        raise ValueError(f"paired: {len(base)} scorecards against {len(other)}")
    out = paired_seeds([base], [other], resamples)
    for r in out.values():
        del r["per_seed"]        # one seed: its mean is the change itself
    return out


def paired_seeds(base: list[list[dict]], other: list[list[dict]], resamples: int = 4000
                 ) -> dict[str, dict[str, float]]:
    """``paired`` over analysis seeds: ``base[k]`` and ``other[k]`` are the same worlds'
    scorecards under seed k. Per metric, each world's change is its mean over the seeds (a world
    missing the metric under some seed is left out), bootstrapped over the worlds; ``per_seed``
    lists each seed's own mean change (the spread a single-seed screen would show)."""
    from experiments.config import Bootstrap
    from experiments.results import bootstrap_interval

    if len(base) != len(other) or not base:
        raise ValueError(f"paired_seeds: {len(base)} seeds against {len(other)}")
    out = {}
    for what in PAIRED:
        x = np.array([[_metric(c, what) for c in cards] for cards in base])    # [seed, world]
        y = np.array([[_metric(c, what) for c in cards] for cards in other])
        if x.shape != y.shape:
            raise ValueError(f"paired_seeds: {x.shape} scorecards against {y.shape}")
        ok = ~(np.isnan(x) | np.isnan(y)).any(axis=0)
        d = (y - x)[:, ok]
        lo, hi = bootstrap_interval(d.mean(axis=0), Bootstrap(resamples=resamples),
                                    f"paired/{what}")
        out[what] = {"base": float(x[:, ok].mean()) if ok.any() else float("nan"),
                     "other": float(y[:, ok].mean()) if ok.any() else float("nan"),
                     "diff": float(d.mean()) if d.size else float("nan"), "ci_low": lo,
                     "ci_high": hi, "changed": int((np.abs(d) > 1e-9).any(axis=0).sum()),
                     "n": int(ok.sum()),
                     "per_seed": [float(v) for v in d.mean(axis=1)] if d.size else []}
    return out


def print_paired(name: str, changes: dict[str, dict[str, float]]) -> None:
    """``changes``: ``paired``'s (or ``paired_seeds``') result for the variant ``name``."""
    print(f"== paired, shipped -> {name} (mean change, 95 % bootstrap interval over worlds):")
    for what, r in changes.items():
        seeds = r.get("per_seed")
        print(f"   {what:<9} {r['base']:.4f} -> {r['other']:.4f}  {r['diff']:+.4f} "
              f"({r['ci_low']:+.4f} .. {r['ci_high']:+.4f})  "
              f"worlds changed {r['changed']}/{r['n']}"
              + (f"  per seed {' '.join(f'{v:+.4f}' for v in seeds)}" if seeds else ""))


def json_input(path: Path, flag: str, kind: str, read):
    """``read(json.loads(path's text))``; a file that is missing, or that ``read`` refuses
    (ValueError, KeyError, TypeError, AttributeError), is bad input: one line naming ``flag`` and
    the ``kind`` of file expected (exit 2)."""
    from shocklab.errors import InputError

    try:
        return read(json.loads(path.read_text()))
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{flag} {path}: not a {kind} ({type(exc).__name__}: {exc})") from None


def _paired_file(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """``paired`` of each variant of an earlier ``--json`` file against its first; a file that
    is missing or not such a file is bad input (one line, exit 2)."""
    def read(cards):
        names = list(cards)
        if len(names) < 2:
            raise ValueError(f"{len(names)} variant(s): nothing to pair")
        return {n: paired(cards[names[0]], cards[n]) for n in names[1:]}

    return json_input(path, "--paired", "diagnose_detect --json file of scorecards", read)


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="*", type=_common.path_arg)
    ap.add_argument("--paired", type=_common.path_arg, metavar="JSON",
                    help="only print the paired changes from an earlier run's --json file")
    ap.add_argument("--set", action="append", default=[], help="override for every variant")
    ap.add_argument("--variant", action="append", default=[],
                    help="semicolon-separated overrides of one more variant")
    ap.add_argument("--events", action="store_true", help="list missed events")
    ap.add_argument("--why", action="store_true",
                    help="per event: best score of each detector on allowed series; why missed; "
                         "each voter's best / the oracle's by the oracle's score")
    ap.add_argument("--fps", action="store_true", help="list false alarms and the nearest event")
    ap.add_argument("--fp-kinds", nargs="?", type=_common.positive_int, const=14, default=None,
                    metavar="DAYS",
                    help="classify every consensus false positive from the truth (echo window "
                         "DAYS after an event's match window, default 14; bench/fp_kinds.py)")
    ap.add_argument("--json", type=_common.path_arg, help="also write the scorecards here")
    ap.add_argument("--stand-in", metavar="VOTER[,VOTER]",
                    help="the oracle's exact scores vote in VOTER's place (flagged at VOTER's "
                         "threshold, on its series): the ceiling of work on VOTER's estimation; "
                         "several voters, comma-separated: each replaced")
    ap.add_argument("--expected", metavar="truth|shape:W",
                    help="count_likelihood's expected value from the truth in every variant: "
                         "truth = the noise-free expectation itself; shape:W = the truth's shape "
                         "under a W-day trailing level still estimated from the data "
                         "(bench/known_expected.py)")
    ap.add_argument("--seeds", type=_common.positive_int, default=1, metavar="K",
                    help="run every variant under the analysis seeds 0..K-1 (the forest's "
                         "random_state; replaces a --set seed) and pair per seed; the summaries "
                         "and --json are seed 0's (default 1: the config's seed alone)")
    a = ap.parse_args(argv)
    if a.paired is not None:
        _common.need_files([a.paired], "--paired")   # was a FileNotFoundError: exit 3
        for n, changes in _paired_file(a.paired).items():
            print_paired(n, changes)
        return 0
    if not a.data:
        ap.error("give data directories (or --paired JSON)")
    _common.need_dirs(a.data)
    if a.json:   # written at the end: an OSError (exit 3) after every world
        _common.need_parent(a.json, "--json")
    global WHY, SHOW_FPS, FP_KINDS, STAND_IN, EXPECTED
    WHY, SHOW_FPS, FP_KINDS, STAND_IN = a.why, a.fps, a.fp_kinds, a.stand_in
    if a.expected is not None:
        from known_expected import parse_mode
        try:
            EXPECTED = parse_mode(a.expected)
        except ValueError as e:
            ap.error(str(e))
    if a.seeds > 1 and len(a.variant) == 0:
        ap.error("--seeds pairs variants with the shipped config: give --variant")
    variants = [("shipped", [])] + [(v, _variant(v)) for v in a.variant]
    seeds = list(range(a.seeds))
    # per seed and variant: the overrides (with --seeds, seed=k after --set's own)
    runs = [(k, n, [*a.set, *ov, *([f"seed={k}"] if a.seeds > 1 else [])])
            for k in seeds for n, ov in variants]
    by_seed: dict[tuple[int, str], list[dict]] = {(k, n): [] for k, n, _ in runs}
    for d in a.data:
        res = analyse_world(d, [ov for _, _, ov in runs])
        for (k, n, _), r in zip(runs, res, strict=True):
            by_seed[(k, n)].append(r)
        print(f"# {d}: " + "  ".join(
            f"{n if len(n) <= 40 else n[:37] + '...'}{f' @seed {k}' if k else ''} F1 "
            f"{r['card']['strict']['consensus']['f1']}" for (k, n, _), r in
            zip(runs, res, strict=True)), flush=True)
    per_variant = {n: by_seed[(0, n)] for n, _ in variants}
    for n, _ in variants:
        summarize(n, per_variant[n], a.events)
    for n, _ in variants[1:]:
        if a.seeds == 1:
            print_paired(n, paired([r["card"] for r in per_variant["shipped"]],
                                   [r["card"] for r in per_variant[n]]))
        else:
            print_paired(f"{n} (seeds 0-{a.seeds - 1})", paired_seeds(
                [[r["card"] for r in by_seed[(k, "shipped")]] for k in seeds],
                [[r["card"] for r in by_seed[(k, n)]] for k in seeds]))
    if a.json:
        a.json.write_text(json.dumps({n: [r["card"] for r in rs] for n, rs in per_variant.items()},
                                     default=str))
        gap = [g for r in per_variant["shipped"] for g in r.get("gap", [])]
        if gap:  # --why: the per-event gap decomposition (first variant)
            a.json.with_suffix(".gap.json").write_text(json.dumps(gap, default=float))
        kinds = [{**{k: v for k, v in r.items() if k != "incident"},
                  "incident": r["incident"].incident_id, "detectors": r["incident"].detectors,
                  "peak": r["incident"].peak_score}
                 for r in per_variant["shipped"] for r in r.get("kinds", [])]
        if kinds:  # --fp-kinds: one row per consensus false positive (first variant)
            a.json.with_suffix(".fpkinds.json").write_text(json.dumps(kinds, default=str))
    return 0


if __name__ == "__main__":
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
