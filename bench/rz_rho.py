"""The consensus' combined score's null tail on shock-free worlds per config variant and rho.

For each variant (``--variant "k=v;k=v"``, the first is the shipped config) runs the detectors on
shock-free worlds (n1-n5), builds the consensus' combined evidence (``combined_scores``, the
voters' calibrated scores, both directions, tolerance as configured) for each rho of ``--rho``,
leaves out the first 120 days and planned calendar days (muted by the consensus), and prints the
exceedance of every anchor's combined score over the normal tail at 3.0 / 3.5 / 3.9 (pooled over
worlds): combine_rho is fitted where these are near 1 (sixth session: 0.88 / 1.10 / 1.11 at 0.55;
this script reproduces 0.93 / 1.09 / 0.83 on the eighth session's main).

    PYTHONPATH=$PWD/src:$PWD python bench/rz_rho.py /tmp/j9/w/n{1..5} \
        --variant "detectors.rolling_zscore.reference=parent" --rho 0.45 0.5 0.55
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import _common  # noqa: E402  (this script's folder is on sys.path)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.special import ndtr  # noqa: E402

from analytics.config import load_analysis_config  # noqa: E402
from analytics.consensus import Votes, combined_scores  # noqa: E402
from analytics.context import RunContext  # noqa: E402
from analytics.loading import load_data_dir  # noqa: E402
from analytics.pipeline import voters as voters_of  # noqa: E402
from evaluation.pipeline import STAGES, run  # noqa: E402
from experiments.cell import _memoized_detectors  # noqa: E402

TS = (3.0, 3.5, 3.9)


def counts(det: pd.DataFrame, calendar, voters: list[str], tol: int, rhos: list[float]):
    """{rho: (anchors, exceedances per t)} of one world."""
    det = det[det["detector"].isin(voters)].copy()
    t0 = det["date"].min() + pd.Timedelta(days=120)
    bad = (det["date"] < t0).to_numpy().copy()
    if calendar is not None and len(calendar):
        bad |= det["date"].isin(pd.DatetimeIndex(calendar["date"].unique())).to_numpy()
    v = Votes(det)
    ev = v.evidence
    # planned / early days: NaN as anchors only (they stay in the others' windows, as in a run)
    mask = Votes(det.assign(score=np.where(bad, np.nan, 1.0))).score
    out = {}
    for rho in rhos:
        n, ex = 0, np.zeros(len(TS))
        for sign in (1.0, -1.0):
            comb = combined_scores(sign * ev, tol, rho)
            comb = np.where(np.isfinite(mask), comb, np.nan)
            fin = np.isfinite(comb)
            n += int(fin.sum())
            ex += np.array([(comb[fin] >= t).sum() for t in TS])
        out[rho] = (n, ex)
    return out


def main(argv: list[str] | None = None) -> int:
    p = _common.parser(__doc__.splitlines()[0])
    p.add_argument("data", nargs="+", type=_common.path_arg)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--variant", action="append", default=[])
    p.add_argument("--rho", nargs="+", type=float, default=[0.55])
    a = p.parse_args(argv)
    _common.need_dirs(a.data)   # was load_data_dir's InputError as a traceback, exit 1
    variants = [("shipped", [])] + [
        (v, [x.strip() for x in v.split(";") if x.strip()]) for v in a.variant]
    tot = {n: {r: [0, np.zeros(len(TS))] for r in a.rho} for n, _ in variants}
    for d in a.data:
        ds = load_data_dir(d)
        kd = tables = None
        for name, ov in variants:
            cfg = load_analysis_config(None, [*a.set, *ov])
            with tempfile.TemporaryDirectory(prefix="j9m-rho-") as tmp:
                ctx = RunContext(config=cfg, data=ds, out_dir=Path(tmp))
                if kd is None:
                    run(ctx, [s for s in STAGES if s[0] == "kpis"])
                    kd, tables = ctx.kpis_daily, ctx.kpi_tables
                else:
                    ctx.kpis_daily, ctx.kpi_tables = kd.copy(), tables
                with _memoized_detectors():
                    run(ctx, [s for s in STAGES if s[0] == "detect"])
            c = cfg.consensus
            voters = voters_of(ctx)
            tol = c.tolerance_days if c.combine_tolerance is None else c.combine_tolerance
            res = counts(ctx.detections, ds.tables.get("marketing_calendar"), voters, tol, a.rho)
            for r, (n, ex) in res.items():
                tot[name][r][0] += n
                tot[name][r][1] += ex
        print(f"# {d.name}", flush=True)
    for name, _ in variants:
        for r in a.rho:
            n, ex = tot[name][r]
            rat = ex / n / ndtr(-np.array(TS))
            print(f"{name[:90]:<90} rho {r:.3f}: exceedance / normal at "
                  + " / ".join(f"{t}" for t in TS) + " = "
                  + " / ".join(f"{x:.2f}" for x in rat) + f"  (anchors {n})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_common.run(main))
