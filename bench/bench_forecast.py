"""The revenue forecast against what happened next, on held-out days of simulated worlds.

    python generate_data.py --seed 301 --set period.end=2026-03-31 --out /tmp/fc/d301
    python generate_data.py --config config/scenarios/random_world.yaml --seed 301 \
        --out /tmp/fc/r301
    python bench/bench_forecast.py /tmp/fc/d301 /tmp/fc/r301 [...]

Per data directory: its last 90 days are held out (a world of the default scenario, as its
manifest.json says, is cut at 2025-12-31 instead, the scenario's own end, so it is forecast exactly
as ``run_analysis.py`` forecasts the default world), the forecast is made from the days before with
the planned calendar known up to the cut, and compared with the actual days. Two methods: the
shipped one (``forecast_revenue``: log scale when the series allows it, planned days as Prophet
holidays) and the earlier one (Prophet on the raw scale, no holidays). Prints per world and
method the error of the 90-day total, of each 30-day block, the mean absolute daily error
(MAPE), the share of days inside the 95 % band and of the (calendar, partial at the ends) months
inside theirs, then the means per world family (default scenario/other)
and over all, and the wall time. Figures: docs/history/insights.md (twenty-fifth session).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import need_dirs, parser, path_arg, run  # noqa: E402

from shocklab.errors import InputError  # noqa: E402

HELD_OUT = 90
DEFAULT_CUT = pd.Timestamp("2025-12-31")


def _default_scenario(world: Path) -> bool:
    """The world was generated from the default scenario (config/simulation.yaml): its manifest
    says so. It was any folder whose name started with "d" (``data/``, ``/tmp/demo``: cut at
    2025-12-31 whatever their period)."""
    try:
        return json.loads((world / "manifest.json").read_text()).get("scenario") == "default"
    except (OSError, ValueError, AttributeError):
        return False


def _cut(world: Path, y: pd.Series) -> pd.Timestamp:
    if _default_scenario(world):
        return DEFAULT_CUT
    return y.index.max() - pd.Timedelta(days=HELD_OUT)


def world_rows(world: Path) -> list[dict]:
    """One row per method for one data directory."""
    from analytics import forecasting as fc
    from analytics.insights_config import ForecastConfig
    from analytics.kpis import compute_kpis_daily
    from analytics.loading import load_data_dir

    ds = load_data_dir(world)
    k = compute_kpis_daily(ds)
    y = fc.overall_series(k)
    cut = _cut(world, y)
    if cut + pd.Timedelta(days=7) > y.index.max():  # the forecast's shortest horizon
        raise InputError(f"{world}: fewer than 7 days after {cut.date()} to compare with")
    if cut <= y.index.min():
        raise InputError(f"{world}: no days up to {cut.date()} to forecast from")
    actual = y[cut + pd.Timedelta(days=1):].iloc[:HELD_OUT]
    hist = k[pd.to_datetime(k["date"]) <= cut]
    cal = ds.tables.get("marketing_calendar")
    if cal is not None:
        cal = cal.assign(date=pd.to_datetime(cal["date"]))
        cal = cal[cal["date"] <= cut]
    cfg = ForecastConfig(horizon_days=len(actual))
    shipped = fc.forecast_revenue(hist, cfg, seed=0, planned=cal)
    daily = pd.DataFrame(shipped["daily"]).set_index("date")
    z = NormalDist().inv_cdf(0.5 + cfg.interval / 2)
    hy = fc.overall_series(hist)
    fitted, fut, _ = fc._fit_predict(hy, len(actual), 0)         # the earlier method
    resid = hy - fitted
    sigma = fc._robust_sigma(resid.to_numpy())
    half = z * sigma * np.sqrt(1 + np.arange(1, len(fut) + 1) / int(hy.notna().sum()))
    raw = fut.to_numpy().clip(min=0.0)
    month = actual.index.to_period("M")
    a_month = actual.groupby(month).sum()
    s_month = pd.DataFrame(shipped["monthly"]).set_index("month")
    s_in = [s_month.loc[str(p), "lower"] <= v <= s_month.loc[str(p), "upper"]
            for p, v in a_month.items()]
    r_month = pd.Series(raw, index=actual.index).groupby(month).sum()
    r_in = [abs(v - r_month[p]) <= z * fc._sum_sigma(resid, int((month == p).sum()), sigma)
            for p, v in a_month.items()]
    rows = []
    for method, f, lo, hi, m_in in (
        ("shipped", daily["yhat"].to_numpy(), daily["lower"].to_numpy(), daily["upper"].to_numpy(),
         s_in),
        ("raw additive", raw, (raw - half).clip(min=0.0), raw + half, r_in),
    ):
        a = actual.to_numpy()
        f, lo, hi = f[: len(a)], lo[: len(a)], hi[: len(a)]
        blocks = [(f[i:i + 30].sum() / a[i:i + 30].sum() - 1) * 100 for i in range(0, len(a), 30)]
        rows.append({
            "world": world.name, "method": method,
            "family": "default scenario" if _default_scenario(world) else "other",
            "total_pct": (f.sum() / a.sum() - 1) * 100,
            "blocks_pct": " ".join(f"{b:+.1f}" for b in blocks),
            "mape_pct": float(np.mean(np.abs(f - a) / a)) * 100,
            "in_band": float(np.mean((a >= lo) & (a <= hi))),
            "months_in_band": float(np.mean(m_in)),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("worlds", nargs="+", type=path_arg, help="data directories")
    args = ap.parse_args(argv)
    need_dirs(args.worlds)   # before any world is analysed (was a traceback, exit 1)
    t0 = time.perf_counter()
    logging.disable(logging.WARNING)  # the loaders' and Prophet's notices; restored after
    try:
        rows = [r for w in args.worlds for r in world_rows(w)]
    finally:
        logging.disable(logging.NOTSET)
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(df.drop(columns="family").to_string(index=False, float_format="{:.2f}".format))
    df["abs_total_pct"] = df["total_pct"].abs()
    cols = ["total_pct", "abs_total_pct", "mape_pct", "in_band", "months_in_band"]
    print("\nmeans per family and method")
    fmt = "{:.2f}".format
    print(df.groupby(["family", "method"])[cols].mean().to_string(float_format=fmt))
    print("\nmeans over all worlds")
    print(df.groupby("method")[cols].mean().to_string(float_format=fmt))
    print(f"\n{len(args.worlds)} worlds in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
