"""How wrong is count_likelihood's expected value, and in what shape? (issue 9, seventeenth session)

Per world (generated, with truth/): count_likelihood runs with the shipped config (plus
``--set``); its 1-day expected value is compared with the simulator's noise-free, shock-free
expectation (truth/baseline_daily) on quiet days — from ``--skip`` days on, outside every event's
days (3 before it to 30 after it; a shock-free world keeps every day). The log error of each
series is split into

- **level**: its centred 28-day mean (slow: the trailing level's lag and noise),
- **weekday**: the level-free error's mean per weekday (the weekday factor's error),
- **rest**: what is left (day to day),

and the level part of a KPI into **common** (the mean over the KPI's series, day by day: an error
every slice shares, such as a lag behind the store's season) and **idiosyncratic** (each series
around that mean). For the whole store's sessions the weekly-smoothed error is regressed on the
truth's own slope and curvature (per day, log): a level that lags a curving season shows as
negative coefficients and a small residual.

    PYTHONPATH=$PWD/src:$PWD python bench/expected_error.py /tmp/w/n1 /tmp/w/n2 \\
        [--set detectors.count_likelihood.expected.catch_up=null]

Prints one line per world and KPI group and the means over worlds (standard deviations of the
log error). Measured findings: docs/history/detection.md, seventeenth session.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

import _common  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SMOOTH = 28  # days of the centred mean that is the error's level part
KPIS = ("sessions", "orders", "revenue", "conversion_rate", "aov")


def split_error(err: np.ndarray, quiet: np.ndarray, kpis: np.ndarray,
                weekday: np.ndarray, smooth: int = SMOOTH) -> pd.DataFrame:
    """Per KPI: sds of the log error ``err`` [day, series] on ``quiet`` days, and of its level,
    weekday and rest parts, the level's common and idiosyncratic parts (module doc); means of
    the per-series variances, square-rooted. ``weekday``: each day's weekday (0-6)."""
    rows = []
    e_all = pd.DataFrame(np.where(quiet[:, None], err, np.nan))
    for k in pd.unique(kpis):
        e = e_all.loc[:, kpis == k]
        if e.notna().sum().max() < 2 * smooth:
            continue
        lvl = e.rolling(smooth, center=True, min_periods=smooth // 3).mean()
        r1 = e - lvl
        wd = r1.groupby(weekday).transform("mean")
        common = lvl.mean(axis=1)

        def sd(frame: pd.DataFrame) -> float:
            return float(np.sqrt(np.nanmean(frame.var())))

        rows.append({"kpi": k, "series": e.shape[1], "total": sd(e), "level": sd(lvl),
                     "weekday": sd(wd), "rest": sd(r1 - wd), "common": float(common.std()),
                     "idiosyncratic": sd(lvl.sub(common, axis=0)),
                     "bias": float(np.nanmean(e.to_numpy()))})
    return pd.DataFrame(rows, columns=["kpi", "series", "total", "level", "weekday", "rest",
                                       "common", "idiosyncratic", "bias"])


def season_fit(err: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Regress the weekly-smoothed log error of one series on the truth's weekly-smoothed log
    slope and curvature per day: ((intercept, slope coef, curvature coef), residual sd, error
    sd). NaN days (not quiet) are left out."""
    lt = pd.Series(np.log(truth)).rolling(7, center=True).mean()
    slope = lt.diff(7) / 7
    df = pd.DataFrame({"e": pd.Series(err).rolling(7, center=True, min_periods=4).mean(),
                       "slope": slope, "curv": slope.diff(7) / 7}).dropna()
    if len(df) < 30:
        return np.full(3, np.nan), np.nan, np.nan
    x = np.c_[np.ones(len(df)), df["slope"], df["curv"]]
    coef = np.linalg.lstsq(x, df["e"].to_numpy(), rcond=None)[0]
    return coef, float(np.std(df["e"] - x @ coef)), float(df["e"].std())


def world_error(d: Path, sets: list[str], skip: int) -> tuple[pd.DataFrame, tuple]:
    """count_likelihood on world ``d``: its ``split_error`` table and the store's sessions
    ``season_fit``."""
    from cl_windows import _truth_wide, capture_core, load_world

    from analytics import pipeline as ap
    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.detectors import count_likelihood as clm
    from analytics.detectors.calibrate import Wide
    from evaluation.pipeline import STAGES, run
    from evaluation.truth import attach

    ds, truth = load_world(d)
    cfg = load_analysis_config(None, sets)
    with tempfile.TemporaryDirectory(prefix="expected-error-") as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
        run(ctx, [s for s in STAGES if s[0] == "kpis"])
        det = clm.CountLikelihood(ctx.config.detectors["count_likelihood"],
                                  name="count_likelihood")
        series, core = capture_core(det, ap.detector_input(ctx))
        wide = Wide.of(series)
        mu = wide.to(core["expected"].to_numpy(float))
        tw = _truth_wide(ctx, wide)
    grid = wide.grid
    quiet = np.arange(len(grid)) >= skip
    for e in truth.events:
        lo = pd.Timestamp(e["start"]) - pd.Timedelta(days=3)
        hi = pd.Timestamp(e["end"]) + pd.Timedelta(days=30)
        quiet &= ~((grid >= lo) & (grid <= hi))
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.log(mu / tw)
    kpis = np.array([k for k, _, _ in wide.keys])
    table = split_error(err, quiet, kpis, grid.day_of_week.to_numpy())
    j = wide.keys.index(("sessions", "overall", "all")) if (
        ("sessions", "overall", "all") in wide.keys) else None
    fit = (season_fit(np.where(quiet, err[:, j], np.nan), tw[:, j]) if j is not None
           else (np.full(3, np.nan), np.nan, np.nan))
    return table, fit


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=_common.path_arg, help="generated worlds (with truth/)")
    ap.add_argument("--set", action="append", default=[], help="analysis override (repeatable)")
    ap.add_argument("--skip", type=_common.non_negative_int, default=120,
                    help="days left out at the start (default 120)")
    a = ap.parse_args(argv)
    tables = []
    cols = ["total", "level", "weekday", "rest", "common", "idiosyncratic"]
    for d in a.data:
        table, (coef, resid, esd) = world_error(d, a.set, a.skip)
        if table.empty:
            print(f"{d.name}: fewer than {2 * SMOOTH} quiet days (outside every event and its "
                  f"30 days after, from day {a.skip}): nothing to split", flush=True)
            continue
        table.insert(0, "world", d.name)
        tables.append(table)
        cnt = table[table["kpi"].isin(["sessions", "orders", "revenue"])]
        print(f"{d.name}: counts (sessions, orders, revenue) sd " + " ".join(
            f"{c} {np.sqrt((cnt[c] ** 2).mean()):.4f}" for c in cols)
            + f" | store sessions: error sd {esd:.4f} = {coef[1]:+.2f} x slope "
              f"{coef[2]:+.0f} x curvature, residual sd {resid:.4f}", flush=True)
    if not tables:
        return 0
    allt = pd.concat(tables)
    print("-- mean over worlds per KPI (sd: root mean square)")
    for k, g in allt.groupby("kpi", sort=False):
        print(f"   {k:<16} " + " ".join(f"{c} {np.sqrt((g[c] ** 2).mean()):.4f}" for c in cols)
              + f" bias {g['bias'].mean():+.4f}")
    return 0


if __name__ == "__main__":
    from shocklab.cli import run_cli

    raise SystemExit(run_cli(main))
