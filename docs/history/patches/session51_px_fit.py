"""PX's fit: the null tail of the anchors-only / full max statistic on shock-free worlds.

For each world: the detectors of the shipped config (detect stage), the consensus' combined
scores (both directions) anchored at the anchors, days >= 120 and planned days left out as
anchors (as bench/rz_rho.py); exceedance / normal tail at 3.0 / 3.5 / 3.9 for the shipped
statistic and for the max statistic at each combine_pair_rho of the grid.

    PYTHONPATH=src:bench python /work/notes/px_fit.py /tmp/t51/w/n{1..10}
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr

from analytics.config import load_analysis_config
from analytics.consensus import Votes, anchor_voters, combined_scores
from analytics.context import RunContext
from analytics.loading import load_data_dir
from analytics.pipeline import level_voters
from analytics.pipeline import voters as voters_of
from evaluation.pipeline import STAGES, run

TS = np.array([3.0, 3.5, 3.9])
GRID = [None] + [round(0.55 + 0.05 * k, 2) for k in range(10)]


def main(dirs):
    cfg = load_analysis_config(None, [])
    tot = {g: [0, np.zeros(3)] for g in GRID}
    for d in dirs:
        ds = load_data_dir(Path(d))
        with tempfile.TemporaryDirectory() as tmp:
            ctx = RunContext(config=cfg, data=ds, out_dir=Path(tmp))
            run(ctx, [s for s in STAGES if s[0] in ("kpis", "detect")])
        voters = level_voters(cfg, voters_of(ctx))
        fams = {n: cfg.detectors[n].type for n in voters}
        anchors = anchor_voters(cfg.consensus, voters, fams)
        det = ctx.detections[ctx.detections["detector"].isin(voters)
                             & (ctx.detections["dimension"] != "product")].copy()
        t0 = det["date"].min() + pd.Timedelta(days=120)
        bad = (det["date"] < t0).to_numpy().copy()
        cal = ds.tables.get("marketing_calendar")
        if cal is not None and len(cal):
            bad |= det["date"].isin(pd.DatetimeIndex(cal["date"].unique())).to_numpy()
        v = Votes(det)
        mask = Votes(det.assign(score=np.where(bad, np.nan, 1.0))).score
        order = [x for x in v.detectors if x in voters]
        vi = [v.detectors.index(x) for x in order]
        within = np.array([x in anchors for x in order])
        ev = v.evidence[vi]
        m = mask[vi][within]
        for g in GRID:
            for sign in (1.0, -1.0):
                comb = combined_scores(sign * ev, 2, cfg.consensus.combine_rho,
                                       None if g is None else within, g or 1.0)[within]
                comb = np.where(np.isfinite(m), comb, np.nan)
                fin = np.isfinite(comb)
                tot[g][0] += int(fin.sum())
                tot[g][1] += np.array([(comb[fin] >= t).sum() for t in TS])
        print(f"# {Path(d).name} voters {order} anchors {list(np.array(order)[within])}",
              flush=True)
    base = tot[None][1] / tot[None][0] / ndtr(-TS)
    for g in GRID:
        n, ex = tot[g]
        rat = ex / n / ndtr(-TS)
        print(f"pair_rho {g}: exceedance / normal at 3.0 / 3.5 / 3.9 = "
              + " / ".join(f"{x:.3f}" for x in rat)
              + "   vs shipped " + " / ".join(f"{x:.3f}" for x in rat / base)
              + f"  (anchor-days {n}, exceedances {ex.astype(int).tolist()})")


if __name__ == "__main__":
    main(sys.argv[1:])
