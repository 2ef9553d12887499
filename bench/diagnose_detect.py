"""Why does detection miss or false-alarm on generated worlds? Per-event and per-incident diagnosis.

For each data directory (a generated world with truth/) and each variant of the analysis config
(``--variant "key=value;key=value"``, repeatable; the first variant is the shipped config plus
``--set``), runs the scoring stages (kpis once per world, then detect, consensus, score) and
prints:

- mean consensus recall / precision / F1, oracle recall at equal FP and the ratio per variant;
- recall per scope kind and per event type, for the consensus and the oracle (was the event
  visible at all?), and which watched series moved (``--events``: one line per missed event);
- false alarms by dimension, KPI, direction and set of voting detectors.

Tune on TRAIN worlds only (random_world seeds 1-10); test seeds are for the final report.

    PYTHONPATH=$PWD/src:$PWD python bench/diagnose_detect.py /tmp/w/s1 /tmp/w/s2 \
        --set scoring.warmup_days=90 --variant 'consensus.count_by=type' --events
"""

from __future__ import annotations

import argparse
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
from analytics.loading import load_data_dir  # noqa: E402
from evaluation.pipeline import STAGES, run  # noqa: E402
from evaluation.scoring import Event, match_matrix  # noqa: E402
from evaluation.truth import attach, find_truth  # noqa: E402
from experiments.cell import _memoized_detectors  # noqa: E402

WHY = False
SHOW_FPS = False


def explain_misses(ctx, events: list[Event], card: dict) -> list[dict]:
    """Per event (after the warm-up): each detector's best calibrated score, in a direction and on
    a series a strict match allows, over the event's match window; and why the consensus missed it
    (``invisible``: the oracle is below its threshold too; ``score``: rolling_zscore below its
    threshold; ``vote``: flagged but neither confirmed nor strong enough alone; ``other``)."""
    from analytics.consensus import Votes
    from analytics.context import Incident
    from analytics.detectors.calibrate import threshold_for

    det = ctx.detections
    votes = Votes(det)
    cfg = ctx.config
    s = card["settings"]
    by = {e["event_id"]: e for e in card["event_detail"]}
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
    for ev in events:
        e = by.get(ev.event_id)
        if e is None or e["expected"] or e["in_warmup"]:
            continue
        lo = ev.start - pd.Timedelta(days=s["early_days"])
        hi = ev.end + pd.Timedelta(days=s["late_days"])
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
    for w in rows:
        if w["why"] in ("score", "vote", "other"):
            b = w["best"]
            print(f"   {w['why']:<6}{w['event_id']:<26}{w['type']:<18}{w['scope_kind']:<16}"
                  + " ".join(f"{n[:4]} {v[0]:6.2f} {'/'.join(v[1]) if v[1] else '-'}"
                             for n, v in sorted(b.items())))


def _variant(s: str) -> list[str]:
    return [p.strip() for p in s.split(";") if p.strip()] if s else []


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
            with _memoized_detectors():  # a detector whose config and input repeat is reused
                run(ctx, [s for s in STAGES if s[0] in ("detect", "oracle", "consensus", "score")])
            secs = time.perf_counter() - t0
        card = ctx.scorecard
        cfgs = card["settings"]
        events = [Event.from_dict(e) for e in truth.events]
        warm = set(card.get("warmup", {}).get("event_ids", []))
        events = [e for e in events if e.event_id not in warm]
        mm = match_matrix(ctx.incidents, events, "strict", cfgs["early_days"], cfgs["late_days"],
                          cfgs["min_effect"])
        fps = [i for i, row in zip(ctx.incidents, mm, strict=True) if not row.any()]
        series = ctx.detections.drop_duplicates(["kpi", "dimension", "segment"]).shape[0]
        why = explain_misses(ctx, events, card) if WHY else []
        out.append({"card": card, "fps": fps, "events": events, "seconds": secs,
                    "series": series, "status": ctx.detector_status, "why": why})
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
        agg["ratio"].append(oe.get("ratio"))
        agg["fp"].append(s["consensus"]["fp"])
        agg["inc"].append(s["consensus"]["incidents"])
        agg["sec"].append(r["seconds"])
        agg["series"].append(r["series"])
        orc = s["detectors"].get("oracle", {})
        agg["oracle_R"].append(orc.get("recall"))
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
          f"  ratio {mean(agg['ratio']):.3f} (max {max(x or 0 for x in agg['ratio']):.2f})"
          f"  oracle R(own) {mean(agg['oracle_R']):.3f}  FP/world {mean(agg['fp']):.1f}"
          f"  incidents {mean(agg['inc']):.1f}  series {mean(agg['series']):.0f}"
          f"  detect+cons {mean(agg['sec']):.1f}s")
    fa = defaultdict(list)
    for r in results:
        f = r["card"].get("false_alerts") or {}
        fa["consensus"].append(f.get("consensus"))
        for n, v in (f.get("detectors") or {}).items():
            fa[n].append(v)
    print("   false alerts / series / 90 d: "
          + "  ".join(f"{n} {mean(v):.3f}" for n, v in sorted(fa.items())))
    print("   per seed F1: " + " ".join(f"{x:.2f}" for x in agg["f1"]))
    print("   scope: " + "  ".join(f"{k} {v[1]}/{v[2]}/{v[0]}" for k, v in sorted(scope.items()))
          + "   (consensus/oracle/events)")
    print("   type:  " + "  ".join(f"{k} {v[1]}/{v[2]}/{v[0]}" for k, v in sorted(typ.items())))
    print("   FP by (dim,kpi,dir): " + ", ".join(f"{k}:{v}" for k, v in fp_kinds.most_common(12)))
    print("   FP by voters: "
          + ", ".join(f"{'+'.join(k)}:{v}" for k, v in fp_voters.most_common(8)))
    for line in lines:
        print(line)
    print_why(results)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--set", action="append", default=[], help="override for every variant")
    ap.add_argument("--variant", action="append", default=[],
                    help="semicolon-separated overrides of one more variant")
    ap.add_argument("--events", action="store_true", help="list missed events")
    ap.add_argument("--why", action="store_true",
                    help="per event: best score of each detector on allowed series; why missed")
    ap.add_argument("--fps", action="store_true", help="list false alarms and the nearest event")
    ap.add_argument("--json", type=Path, help="also write the scorecards here")
    a = ap.parse_args(argv)
    global WHY, SHOW_FPS
    WHY, SHOW_FPS = a.why, a.fps
    variants = [("shipped", [])] + [(v, _variant(v)) for v in a.variant]
    per_variant: dict[str, list[dict]] = {n: [] for n, _ in variants}
    for d in a.data:
        res = analyse_world(d, [[*a.set, *ov] for _, ov in variants])
        for (n, _), r in zip(variants, res, strict=True):
            per_variant[n].append(r)
        print(f"# {d}: " + "  ".join(
            f"{n[:30]} F1 {r['card']['strict']['consensus']['f1']}" for (n, _), r in
            zip(variants, res, strict=True)), flush=True)
    for n, _ in variants:
        summarize(n, per_variant[n], a.events)
    if a.json:
        a.json.write_text(json.dumps({n: [r["card"] for r in rs] for n, rs in per_variant.items()},
                                     default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
