"""Session 48 scratch, kept as it ran (docs/history/detection.md, "Forty-eighth session"):
``python docs/history/patches/session48_margin.py RUN...`` on run directories of
``run_analysis.py --set scoring.warmup_days=90`` over TRAIN worlds. For each scored unexpected
event: the consensus' best combined (Stouffer) score over the series and days a strict match
allows, anchored where the anchor flagged and anywhere; found or missed; the oracle's best.
Prints how far the misses are below the combined threshold."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path[:0] = ["/work/main/src", "/work/main"]
from analytics.consensus import Votes, combined_scores  # noqa: E402
from analytics.context import Incident  # noqa: E402
from analytics.detectors.calibrate import threshold_for  # noqa: E402
from analytics.watch import product_categories  # noqa: E402
from evaluation.scoring import Event, match_matrix  # noqa: E402

VOTERS = ["count_likelihood", "isolation_forest", "rolling_zscore", "product_watch"]
rows = []
for run in sys.argv[1:]:
    run = Path(run)
    card = json.loads((run / "scorecard.json").read_text())
    rj = json.loads((run / "run.json").read_text())
    data = Path(rj["data"]["path"])
    det = pd.read_csv(run / "detections.csv", parse_dates=["date"])
    v = Votes(det)
    vi = [v.detectors.index(d) for d in VOTERS if d in v.detectors]
    oi = v.detectors.index("oracle")
    ct = threshold_for(0.3 / len([d for d in VOTERS if d in v.detectors]), 1)
    s = card["settings"]
    truth = json.loads((data / "truth/events.json").read_text())
    prods = pd.read_csv(data / "products.csv") if (data / "products.csv").exists() else None
    members = product_categories(prods) or None
    events = {e["event_id"]: Event.from_dict(e).with_members(members) for e in truth}
    comb = {}
    for sign, name in ((1, "up"), (-1, "down")):
        sc = sign * v.evidence[vi]
        c = combined_scores(sc, 2, 0.55)            # [voter, series, t]
        flag = (v.up if sign > 0 else v.down)[vi]
        comb[name] = (np.nanmax(np.where(np.isfinite(c), c, -np.inf), axis=0),
                      np.nanmax(np.where(flag & np.isfinite(c), c, -np.inf), axis=0),
                      sign * v.score[oi])
    t0 = v.grid[0]
    pseudo = [Incident("x", k, d, g, t0, t0, dr, [], "single", 0, "low", 0, 0, 0, 0)
              for k, d, g in v.series for dr in ("up", "down")]
    for e in card["event_detail"]:
        if e["expected"] or e["in_warmup"]:
            continue
        ev = events[e["event_id"]]
        lo = ev.start - pd.Timedelta(days=s["early_days"])
        hi = ev.end + pd.Timedelta(days=s["late_days"])
        for p in pseudo:
            p.start, p.end = lo, hi
        ok = match_matrix(pseudo, [ev], "strict", s["early_days"], s["late_days"],
                          s["min_effect"])[:, 0]
        tm = (v.grid >= lo) & (v.grid <= hi)
        best_any = best_flag = best_or = -np.inf
        for j in np.flatnonzero(ok):
            si, dr = j // 2, ("up" if j % 2 == 0 else "down")
            a, f, o = comb[dr]
            best_any = max(best_any, np.nanmax(a[si, tm], initial=-np.inf))
            best_flag = max(best_flag, np.nanmax(f[si, tm], initial=-np.inf))
            best_or = max(best_or, np.nanmax(np.nan_to_num(o[si, tm], nan=-np.inf),
                                             initial=-np.inf))
        rows.append(dict(world=run.name, event=e["event_id"], type=e["type"],
                         found="consensus" in e["detected_by"],
                         oracle="oracle" in e["detected_by"],
                         comb_any=best_any, comb_flag=best_flag, oracle_best=best_or, ct=ct))
d = pd.DataFrame(rows)
d.to_csv("/tmp/t48/margin.csv", index=False)
miss = d[~d.found & d.oracle]
print(f"events {len(d)}, found {d.found.sum()}, oracle-found misses {len(miss)}; "
      f"threshold {d.ct.iloc[0]:.2f}")
bins = [-np.inf, 1.5, 2.0, 2.5, 2.8, 3.0, 3.1, 3.26, np.inf]
print("misses by best combined score (flag anchored):")
print(pd.cut(miss.comb_flag, bins).value_counts().sort_index().to_string())
print("misses by best combined score (any anchor):")
print(pd.cut(miss.comb_any, bins).value_counts().sort_index().to_string())
print("found events' best combined (flag):",
      np.percentile(d[d.found].comb_flag, [10, 25, 50]).round(2))
print(miss.sort_values("comb_flag", ascending=False).head(15).to_string())
