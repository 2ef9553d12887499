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
        [--set detectors.count_likelihood.expected.catch_up=null] [--by-event]

Prints one line per world and KPI group and the means over worlds (standard deviations of the
log error). Measured findings: docs/history/detection.md, seventeenth session.

``--by-event`` (worlds with shocks; fifty-seventh session) asks instead *where* the error is: each
series-day is placed relative to the unexpected events whose scope does not exclude the series
(``event_regions``: on an event's days, in the 30 days after a transient one, 5–14 / 15–28 /
29–56 days after a lasting one — ``persistent`` in truth/events.json: a churn wave, a level
shift —, or the rest), and the relative error of the expected value is divided by the series'
local robust relative noise sd (the actual against the truth, events' own days left out). Per
region: the mean squared ratio (the expected value's error variance per unit of noise variance:
about 0.1 on shock-free TRAIN worlds), the mean ratio (bias) and the share beyond 1.5.
"""

from __future__ import annotations

import sys
import tempfile
import warnings
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


REGIONS = ("event", "after", "lasting 5-14", "lasting 15-28", "lasting 29-56", "rest")
LASTING = ((5, 14), (15, 28), (29, 56))  # days after a lasting event's end (REGIONS 2-4)
AFTER = 30  # days after a transient event's end ("after")
NOISE_DAYS = 91  # region_error: days of the local noise sd (centred)


def event_regions(grid: pd.DatetimeIndex, keys: list[tuple[str, str, str]],
                  events: list[dict]) -> np.ndarray:
    """Index into ``REGIONS`` per [grid day, series]: the series-day's place relative to the
    unexpected events whose scope does not exclude the series (strict scoring's rule,
    ``evaluation.scoring.scope_masks``). Where several apply the first of ``REGIONS`` wins (an
    event's own days before any event's after-days)."""
    from evaluation.scoring import Event, _codes, scope_masks

    dim, dims = _codes([d for _, d, _ in keys])
    seg, segs = _codes([str(g) for _, _, g in keys])
    reg = np.full((len(grid), len(keys)), len(REGIONS) - 1, dtype=np.int8)
    g = grid.to_numpy()
    for e in events:
        if e.get("expected"):
            continue
        allowed = scope_masks(Event.from_dict(e), dim, seg, dims, segs)[0]
        start, end = pd.Timestamp(e["start"]), pd.Timestamp(e["end"])
        spans = [(0, start, end)]
        if e.get("persistent"):
            spans += [(2 + i, end + pd.Timedelta(days=lo), end + pd.Timedelta(days=hi))
                      for i, (lo, hi) in enumerate(LASTING)]
        else:
            spans.append((1, end + pd.Timedelta(days=1), end + pd.Timedelta(days=AFTER)))
        for r, lo, hi in spans:
            days = (g >= np.datetime64(lo)) & (g <= np.datetime64(hi))
            cell = days[:, None] & allowed[None, :]
            reg = np.where(cell, np.minimum(reg, r), reg)
    return reg


def region_error(err: np.ndarray, noise: np.ndarray, region: np.ndarray) -> pd.DataFrame:
    """Per region (``REGIONS``): series-days, the mean of (``err`` / sd)² (clipped at 20 sds),
    its mean (bias) and the share beyond 1.5 sds, with each series-day's sd = 1.4826 × the
    median of ``|noise|`` (the actual's relative departure from the truth, which is 0 in
    expectation) over the ``NOISE_DAYS`` days centred on it, events' own days left out: local,
    so a lasting step that shrinks a series (and widens its relative noise) is not read as
    error. ``err``, ``noise``: relative [day, series]; NaN: left out."""
    quiet = np.where(region != 0, np.abs(noise), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = 1.4826 * pd.DataFrame(quiet).rolling(NOISE_DAYS, center=True,
                                                  min_periods=NOISE_DAYS // 3).median().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        z = err / np.where(sd > 0, sd, np.nan)
    rows = []
    for i, name in enumerate(REGIONS):
        v = z[(region == i) & np.isfinite(z)]
        rows.append({"region": name, "days": int(v.size),
                     "z2": float(np.mean(np.clip(v, -20, 20) ** 2)) if v.size else np.nan,
                     "bias": float(np.mean(v)) if v.size else np.nan,
                     "beyond_1_5": float(np.mean(np.abs(v) > 1.5)) if v.size else np.nan})
    return pd.DataFrame(rows)


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


def capture(d: Path, sets: list[str]) -> tuple:
    """count_likelihood on world ``d``: (grid, series keys, its 1-day expected value, the
    truth's, the actual values, the truth's events), the arrays per [grid day, series]."""
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
        actual = wide.to(series["value"].to_numpy(float))
        tw = _truth_wide(ctx, wide)
    return wide.grid, list(wide.keys), mu, tw, actual, truth.events


def world_error(d: Path, sets: list[str], skip: int) -> tuple[pd.DataFrame, tuple]:
    """count_likelihood on world ``d``: its ``split_error`` table and the store's sessions
    ``season_fit``."""
    grid, keys, mu, tw, _, events = capture(d, sets)
    quiet = np.arange(len(grid)) >= skip
    for e in events:
        lo = pd.Timestamp(e["start"]) - pd.Timedelta(days=3)
        hi = pd.Timestamp(e["end"]) + pd.Timedelta(days=30)
        quiet &= ~((grid >= lo) & (grid <= hi))
    with np.errstate(invalid="ignore", divide="ignore"):
        err = np.log(mu / tw)
    kpis = np.array([k for k, _, _ in keys])
    table = split_error(err, quiet, kpis, grid.day_of_week.to_numpy())
    j = keys.index(("sessions", "overall", "all")) if (
        ("sessions", "overall", "all") in keys) else None
    fit = (season_fit(np.where(quiet, err[:, j], np.nan), tw[:, j]) if j is not None
           else (np.full(3, np.nan), np.nan, np.nan))
    return table, fit


def world_regions(d: Path, sets: list[str], skip: int) -> pd.DataFrame:
    """count_likelihood on world ``d``: ``region_error`` per KPI and over all its series, from
    day ``skip`` on (rows ``kpi`` = "all" for every series)."""
    grid, keys, mu, tw, actual, events = capture(d, sets)
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = tw > 0
        err = np.where(ok, mu / np.where(ok, tw, 1.0) - 1, np.nan)
        noise = np.where(ok, actual / np.where(ok, tw, 1.0) - 1, np.nan)
    late = (np.arange(len(grid)) >= skip)[:, None]
    err, noise = np.where(late, err, np.nan), np.where(late, noise, np.nan)
    region = event_regions(grid, keys, events)
    kpis = np.array([k for k, _, _ in keys])
    parts = [region_error(err, noise, region).assign(kpi="all")]
    parts += [region_error(err[:, kpis == k], noise[:, kpis == k], region[:, kpis == k])
              .assign(kpi=k) for k in pd.unique(kpis)]
    return pd.concat(parts, ignore_index=True)


def print_world(name: str, t: pd.DataFrame) -> None:
    """One world's line: every series' error variance / noise variance by region."""
    a = t[t["kpi"] == "all"]
    print(f"{name}: error variance / noise variance by region: " + "  ".join(
        f"{r} {z:.3f}" for r, z, n in zip(a["region"], a["z2"], a["days"], strict=True)
        if n), flush=True)


def print_regions(worlds: list[tuple[str, pd.DataFrame]]) -> None:
    """Per KPI and region pooled over worlds (means weighted by series-days)."""
    allt = pd.concat([t for _, t in worlds])
    allt = allt[allt["days"] > 0]
    print("-- pooled over worlds: error variance / noise variance (bias, share beyond 1.5 sds; "
          "series-days)")
    for k, g in allt.groupby("kpi", sort=False):
        cells = []
        for r in REGIONS:
            x = g[g["region"] == r]
            n = x["days"].sum()
            if n:
                w = x["days"] / n
                cells.append(f"{r} {(w * x['z2']).sum():.3f} ({(w * x['bias']).sum():+.2f}, "
                             f"{(w * x['beyond_1_5']).sum():.3f}; {n})")
        print(f"   {k:<16} " + "  ".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = _common.parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", type=_common.path_arg, help="generated worlds (with truth/)")
    ap.add_argument("--set", action="append", default=[], help="analysis override (repeatable)")
    ap.add_argument("--skip", type=_common.non_negative_int, default=120,
                    help="days left out at the start (default 120)")
    ap.add_argument("--by-event", action="store_true",
                    help="where the error is: by region relative to the events (module doc)")
    a = ap.parse_args(argv)
    if a.by_event:
        worlds = []
        for d in a.data:  # a line as each world is done
            worlds.append((d.name, world_regions(d, a.set, a.skip)))
            print_world(*worlds[-1])
        print_regions(worlds)
        return 0
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
