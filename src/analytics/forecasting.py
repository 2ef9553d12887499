"""Revenue forecast with Prophet: the next ``horizon_days`` days with an interval, monthly totals,
and how far the last weeks sit from a forecast made before them.

Prophet runs with ``uncertainty_samples=0`` (its sampling uses global random state, see
docs/ARCHITECTURE.md principle 2), so it returns no interval; the interval is built here from two
parts added in quadrature. The noise: the in-sample residual spread, robustly (1.4826 x MAD, so
the injected shocks do not inflate it), widened with the horizon as ``sigma * sqrt(1 + h / n)``;
a k-day total's (a month, a week of the back-check) uses the robust spread of the in-sample k-day
sums of residuals, never less than ``sigma * sqrt(k)`` (the daily residuals are correlated:
independent days understated a month's spread 2-3x on the default scenario). The trend: the
spread of Prophet's own model of future trend changes, in closed form (``trend_sd``), which grows
as the horizon^1.5; a month's days share one trend path, so their trend half-widths add up.
Out of sample the error is larger still on worlds whose future holds shocks: the back-check shows
how much.

Planned marketing-calendar days (``planned``: date and name) are Prophet holidays, one effect per
name (per kind beyond ``MAX_HOLIDAYS`` names in the history): a campaign in the last weeks bent
the extrapolated trend otherwise (a five-day sale at the end of a flat series forecast the next
three months 25-60 % up). A name's effect is applied to
the dates the calendar lists, so the back-check expects a planned day it knows of.

The model is fitted on log revenue when the series allows it (no negative day, at most 5 % days at
zero or below a quarter of their month's median, which are left out of the fit as outages): a
store's trend, weekly and yearly shape and campaigns multiply its level, and an additive fit on the
raw scale adds the same amount whatever the level (it forecast the default world's January-March
2026 some 20 % below what the simulator made).
Chosen on training worlds (default scenario seeds 42 and 201-203 run to 2026-03-31, random worlds
201-206; the last 90 days held out), then measured once on test worlds (seeds 301-304 and
301-310; ``bench/bench_forecast.py``, docs/history/insights.md, twenty-fifth session): the default
scenario's 90-day total -22.9 % -> -1.4 % off the actual (mean of 4 seeds), daily error 23.8 % ->
7.3 %, months inside their 95 % band 0 of 12 -> 11 of 12; the random worlds a wash (mean |total
error| 27.5 % -> 29.3 %, daily 41.0 % -> 38.8 %, months in band 0.57 -> 0.42; with the outage
rule, decided on a synthetic case, 30.2 %, 39.9 %, 0.47).
"""

from __future__ import annotations

import logging
import math
import warnings
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from shocklab.catalogue import RATIO_KPIS

from .insights_config import ForecastConfig

log = logging.getLogger("shocklab.forecasting")


def _prophet():
    """Import Prophet with its console chatter off (plotly notice, cmdstanpy progress lines)."""
    logging.getLogger("prophet.plot").setLevel(logging.CRITICAL)
    from cmdstanpy.utils.logging import get_logger
    from prophet import Prophet

    get_logger().setLevel(logging.WARNING)  # it installs its own INFO handler on first use
    logging.getLogger("prophet").setLevel(logging.WARNING)
    return Prophet


def overall_series(kpis_daily: pd.DataFrame, kpi: str = "revenue",
                   mean: bool = False) -> pd.Series:
    """Daily overall KPI, indexed by date, float, without gaps in the index (missing days NaN).
    Sub-daily rows (external KPI files) are summed per day; a day with missing periods (gaps,
    never zeros) is its observed periods' mean times a whole day's periods, as the insights' panel
    reads it (``drivers.SlicePanel(gaps=True)``); with ``mean`` (a gauge of a --kpis file:
    ``external.averaged_columns``) a day is its observed periods' mean. A ratio KPI's periods are
    pooled, each weighted by its denominator (conversion by sessions, AOV by orders: the day's
    orders over its sessions, as the KPI layer computes a day), in the file's own units; without
    the denominator column, or on a day where an observed period lacks it, the day is its
    periods' plain mean (``ratio_note`` says so)."""
    o = kpis_daily.loc[kpis_daily["dimension"].astype(str) == "overall", ["date", kpi]]
    if kpi in RATIO_KPIS:
        s = _daily_ratio(kpis_daily, kpi)[0]
    elif mean:
        s = o[kpi].astype(float).groupby(pd.to_datetime(o["date"]).dt.normalize()).mean()
    else:
        g = o[kpi].groupby(pd.to_datetime(o["date"]).dt.normalize())
        s = g.sum(min_count=1)
        if len(s):
            seen, per_day = g.count(), int(g.size().max())
            part = (seen > 0) & (seen < per_day)
            if part.any():
                s = s.where(~part, s * per_day / seen.where(part))
    if s.empty:
        return s.astype(float)
    return s.reindex(pd.date_range(s.index.min(), s.index.max(), freq="D")).astype(float)


def per_day(y: pd.Series, mean: bool = False) -> pd.Series:
    """A series of a coarser-than-daily file (a weekly export: one row a week, the days between
    NaN) as days: each row's value spread evenly over the ``step`` days it stands for (from its
    date on, as the insights read a weekly file's last row), or with ``mean`` (a ratio or a
    gauge) repeated on each; a missing row's days NaN. The forecast fitted the rows as if they
    were days: a weekly file's 90 days and months were 7 times its revenue. Daily and sub-daily
    series (step 1) are returned as they are."""
    seen = y.index[y.notna()]
    step = int(np.median((seen[1:] - seen[:-1]).days)) if len(seen) > 1 else 1
    if step <= 1:
        return y
    days = pd.date_range(y.index.min(), y.index.max() + pd.Timedelta(days=step - 1), freq="D")
    return y.reindex(days).ffill(limit=step - 1) / (1 if mean else step)


def _daily_ratio(kpis_daily: pd.DataFrame, kpi: str) -> tuple[pd.Series, int, int]:
    """Ratio ``kpi`` per day of the overall rows: its periods weighted by the denominator column
    (``consensus._aggregate``'s rule: every observed period with a finite weight >= 0, their sum
    above 0), else their plain mean; with the number of days of several observed periods and how
    many of those are a plain mean."""
    o = kpis_daily.loc[kpis_daily["dimension"].astype(str) == "overall"]
    day = pd.to_datetime(o["date"]).dt.normalize()
    v = o[kpi].astype(float)
    mean = v.groupby(day).mean()
    multi = v.notna().groupby(day).sum() > 1   # a day of one period is that period's value
    den = RATIO_KPIS[kpi][1]
    if den not in o.columns:
        return mean, int(multi.sum()), int(multi.sum())
    w = pd.to_numeric(o[den], errors="coerce").astype(float)
    seen = v.notna()
    both = seen & w.notna() & (w >= 0)
    wsum = w.where(both).groupby(day).sum()
    ok = multi & (both == seen).groupby(day).all() & (wsum > 0)
    pooled = (v * w).where(both).groupby(day).sum() / wsum.where(wsum > 0)
    return pooled.where(ok, mean), int(multi.sum()), int((multi & ~ok).sum())


def ratio_note(kpis_daily: pd.DataFrame, kpi: str) -> str | None:
    """What a reader of ``overall_series(kpis_daily, kpi)`` must be told when a ratio KPI's day
    holds several periods and is their plain mean (a quiet hour weighing as much as a busy one),
    not the day's pooled ratio: no denominator column, or a period without its value. None
    otherwise (daily rows, every day pooled, a KPI that is no ratio)."""
    if kpi not in RATIO_KPIS or kpi not in kpis_daily.columns:
        return None
    _, multi, plain = _daily_ratio(kpis_daily, kpi)
    if not plain:
        return None
    den = RATIO_KPIS[kpi][1]
    if den not in kpis_daily.columns:
        return f"a day: the plain mean of its periods' {kpi} (no {den} column to pool them by)"
    return (f"{plain} of {multi} days: the plain mean of their periods' {kpi} (a period without "
            f"its {den})")


class _NotOurChoice(logging.Filter):
    """Drops Prophet's "Yearly seasonality is enabled with less than 730 days" warning: yearly
    seasonality is switched on from 716 days by design (above), and the line reached the console
    even under --quiet, with nothing a user could do about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Yearly seasonality is enabled with less than")


YEARLY_DAYS = 2 * 365 - 14  # yearly seasonality from this many observed days
MAX_ZERO_SHARE = 0.05  # a log fit leaves outage days out; more of them than this: raw scale
OUTAGE_SHARE = 0.25    # a day below this share of its 29-day median is an outage (or zero)


def outage_days(y: pd.Series) -> np.ndarray:
    """Observed days at zero or below ``OUTAGE_SHARE`` of the centered 29-day median around them.
    A log fit leaves them out: a week at 1 % of the level is -4.6 in logs, and such a week near
    the end pulled the forecast ~20 % down (the raw-scale fit ~6 %)."""
    level = y.rolling(29, center=True, min_periods=7).median()
    return (y.notna() & ((y <= 0) | (y < OUTAGE_SHARE * level))).to_numpy()


def log_scale(y: pd.Series) -> bool:
    """Whether ``y`` is fitted on the log scale: no negative day, at most ``MAX_ZERO_SHARE`` of
    the observed days outages (``outage_days``: zero, or a small share of their level)."""
    v = y.to_numpy(dtype=float)
    ok = np.isfinite(v)
    if not ok.any() or (v[ok] < 0).any():
        return False
    return float(outage_days(y)[ok].mean()) <= MAX_ZERO_SHARE


def _fit_predict(history: pd.Series, future_days: int, seed: int,
                 holidays: pd.DataFrame | None = None,
                 log: bool = False) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Fit on ``history`` (NaN days dropped; with ``log``, on its logarithm, outage days dropped);
    return (in-sample yhat, yhat of the next days) on the original scale, and the standard
    deviation of the next days' trend on the fitted scale (``trend_sd``).
    ``holidays``: Prophet's (``holiday``, ``ds``) frame of planned days, or None."""
    Prophet = _prophet()
    df = pd.DataFrame({"ds": history.index, "y": history.to_numpy()})
    if log:  # outage days (zero ones included) are observed days, left out of the log fit only
        df = df[~outage_days(history)].assign(y=lambda d: np.log(d["y"]))
    # yearly from the observed days (outages included), as the method text counts them
    m = Prophet(uncertainty_samples=0, daily_seasonality=False, weekly_seasonality=True,
                yearly_seasonality=int(history.notna().sum()) >= YEARLY_DAYS, holidays=holidays)
    end = history.index.max()
    ds = pd.date_range(history.index.min(), end + pd.Timedelta(days=future_days), freq="D")
    quiet = _NotOurChoice()
    logging.getLogger("prophet").addFilter(quiet)
    with warnings.catch_warnings():  # Prophet's own pandas deprecation notices are not ours to fix
        warnings.filterwarnings("ignore", module=r"prophet(\.|$)")
        try:
            m.fit(df.dropna(), seed=seed)
        finally:
            logging.getLogger("prophet").removeFilter(quiet)
        pred = m.predict(pd.DataFrame({"ds": ds}))
    yhat = pd.Series(pred["yhat"].to_numpy(dtype=float), index=pd.DatetimeIndex(pred["ds"]))
    if log:
        yhat = np.exp(yhat)
    fut = yhat.loc[end + pd.Timedelta(days=1):]
    return yhat.loc[:end], fut, trend_sd(m, fut.index)


def trend_sd(m: Any, days: pd.DatetimeIndex) -> np.ndarray:
    """Standard deviation of a fitted Prophet model's linear trend on future ``days``, in the
    fitted series' units, in closed form from Prophet's own generative model of the future trend
    (``Prophet.sample_predictive_trend``, which draws it with the global random state): changes
    arrive as a Poisson process with rate S per unit of scaled time (S = the changepoints fitted),
    each a Laplace(0, lambda) slope change, lambda = the mean |delta| fitted. At u scaled time
    units past the history the trend's variance is S * 2 lambda^2 * integral_0^u (u-s)^2 ds =
    2 S lambda^2 u^3 / 3."""
    s_n = len(m.changepoints_t) if m.changepoints_t is not None else 0
    if s_n == 0 or len(days) == 0:
        return np.zeros(len(days))
    lam = float(np.mean(np.abs(np.asarray(m.params["delta"], dtype=float)))) + 1e-8
    u = np.maximum(((days - m.start) / m.t_scale).to_numpy(dtype=float) - 1.0, 0.0)
    return float(m.y_scale) * lam * np.sqrt(2.0 * s_n * u ** 3 / 3.0)


def _trend_half(yhat: np.ndarray, sd: np.ndarray, z: float,
                log: bool) -> tuple[np.ndarray, np.ndarray]:
    """The trend's (upward, downward) half-widths in the original units: multiplicative on a log
    fit (``yhat * (exp(z sd) - 1)``, ``yhat * (1 - exp(-z sd))``), ``z sd`` on the raw scale."""
    if not log:
        return z * sd, z * sd
    return yhat * np.expm1(z * sd), -yhat * np.expm1(-z * sd)


def _robust_sigma(resid: np.ndarray) -> float:
    r = resid[np.isfinite(resid)]
    if len(r) < 2:
        return 0.0
    mad = float(np.median(np.abs(r - np.median(r))))
    return 1.4826 * mad if mad > 0 else float(np.std(r))


def _sum_sigma(resid: pd.Series, k: int, sigma: float) -> float:
    """Robust spread of the sum of ``k`` consecutive daily residuals: of the in-sample rolling
    k-day sums, never below ``sigma * sqrt(k)`` (independent days)."""
    indep = sigma * math.sqrt(k)
    if k <= 1:
        return indep
    sums = resid.rolling(k).sum().to_numpy()   # a window with a NaN day is left out
    return max(indep, _robust_sigma(sums)) if np.isfinite(sums).sum() >= 2 else indep


def forecast_revenue(kpis_daily: pd.DataFrame, cfg: ForecastConfig | None = None,
                     seed: int = 0, kpi: str = "revenue",
                     planned: pd.DataFrame | None = None) -> dict[str, Any] | None:
    """Forecast of the overall ``kpi``; None when the history is shorter than ``min_history_days``.
    ``planned``: the marketing calendar's days (``date``, ``name``), fitted as holidays.

    Returns plain data: method, interval, sigma, daily [{date, yhat, lower, upper}], monthly
    [{month, yhat, lower, upper, days, partial}], recent {weeks: [...], deviation_pct, ...}.
    """
    cfg = cfg or ForecastConfig()
    y = per_day(overall_series(kpis_daily, kpi))
    if int(y.notna().sum()) < cfg.min_history_days:
        return None
    z = NormalDist().inv_cdf(0.5 + cfg.interval / 2)
    hol = _holidays(planned, y)
    on_log = log_scale(y)
    fitted, fut, t_sd = _fit_predict(y, cfg.horizon_days, seed, hol, on_log)
    resid = y - fitted
    sigma = _robust_sigma(resid.to_numpy())
    n = int(y.notna().sum())
    n_planned = 0 if hol is None else int(y.index.isin(hol["ds"]).sum())
    h = np.arange(1, len(fut) + 1)
    half = z * sigma * np.sqrt(1 + h / n)
    yhat = fut.to_numpy().clip(min=0.0)
    t_up, t_dn = _trend_half(yhat, t_sd, z, on_log)
    daily = pd.DataFrame({"date": fut.index, "yhat": yhat,
                          "lower": (yhat - np.hypot(half, t_dn)).clip(min=0.0),
                          "upper": yhat + np.hypot(half, t_up)})
    month = daily["date"].dt.to_period("M")
    g = pd.DataFrame({"yhat": yhat, "t_up": t_up, "t_dn": t_dn}).groupby(month.to_numpy(),
                                                                          sort=True)
    monthly = pd.DataFrame({"yhat": g["yhat"].sum(), "days": g.size()})
    mhalf = z * np.array([_sum_sigma(resid, int(d), sigma) for d in monthly["days"]])
    # a month's trend deviation is one path: its days' half-widths add up
    monthly["lower"] = (monthly["yhat"] - np.hypot(mhalf, g["t_dn"].sum())).clip(lower=0.0)
    monthly["upper"] = monthly["yhat"] + np.hypot(mhalf, g["t_up"].sum())
    monthly["partial"] = monthly["days"] < monthly.index.days_in_month
    return {
        "kpi": kpi,
        "method": f"prophet on {'log ' if on_log else ''}{kpi}"
        + f" (weekly{' + yearly' if n >= YEARLY_DAYS else ''} seasonality)"
        + (f", {n_planned} planned calendar days as holidays" if n_planned else "")
        + ", interval from robust in-sample residual spread and Prophet's trend uncertainty",
        "interval": cfg.interval,
        "horizon_days": cfg.horizon_days,
        "trained_from": y.index.min().date(),
        "trained_to": y.index.max().date(),
        "residual_sigma": sigma,
        "daily": [
            {"date": d.date(), "yhat": a, "lower": lo, "upper": hi}
            for d, a, lo, hi in daily.itertuples(index=False)
        ],
        "monthly": [
            {
                "month": str(p),
                "yhat": r.yhat,
                "lower": r.lower,
                "upper": r.upper,
                "days": int(r.days),
                "partial": bool(r.partial),
            }
            for p, r in monthly.iterrows()
        ],
        "recent": _recent(y, cfg, seed, z, hol, on_log),
    }


MAX_HOLIDAYS = 25   # distinct planned names fitted one effect each; more are fitted by kind


def _holidays(planned: pd.DataFrame | None, y: pd.Series) -> pd.DataFrame | None:
    """Prophet's holidays frame of the planned days in ``y``'s history (None without any): one
    effect per name, or per ``kind`` (else one for all) when the history holds more than
    ``MAX_HOLIDAYS`` names — a calendar of 2,000 one-day names made a 120-day file's analysis
    take 432 s (one Prophet regressor each; hostile-input audit, 2026-12-05)."""
    if planned is None or planned.empty:
        return None
    ds = pd.to_datetime(planned["date"]).dt.normalize()
    name = planned["name"].astype(str) if "name" in planned.columns else pd.Series("planned",
                                                                                  index=ds.index)
    seen = ds.isin(y.index[y.notna().to_numpy()]).to_numpy()
    if name[seen].nunique() > MAX_HOLIDAYS:
        kind = planned["kind"].astype(str) if "kind" in planned.columns else None
        name = ("planned " + kind if kind is not None and kind[seen].nunique() <= MAX_HOLIDAYS
                else pd.Series("planned", index=ds.index))
    hol = pd.DataFrame({"holiday": name.to_numpy(), "ds": ds.to_numpy()})
    hol = hol[seen].drop_duplicates()
    return hol.sort_values(["ds", "holiday"]).reset_index(drop=True) if len(hol) else None


def _recent(y: pd.Series, cfg: ForecastConfig, seed: int, z: float,
            holidays: pd.DataFrame | None = None, log: bool = False) -> dict[str, Any] | None:
    """Hold out the last ``recent_weeks`` weeks, forecast them from the data before (the planned
    days' ``holidays`` known), compare."""
    days = 7 * cfg.recent_weeks
    train = y.iloc[:-days]
    if int(train.notna().sum()) < cfg.min_history_days:
        return None
    fitted, fut, t_sd = _fit_predict(train, days, seed, holidays, log)
    resid = train - fitted
    sigma = _robust_sigma(resid.to_numpy())
    actual = y.iloc[-days:]
    frame = pd.DataFrame(
        {"actual": actual.to_numpy(), "forecast": fut.to_numpy()[:days].clip(min=0.0)},
        index=actual.index,
    )
    t_up, t_dn = _trend_half(frame["forecast"].to_numpy(), t_sd[:days], z, log)
    seen = frame["actual"].notna().to_numpy()
    if not seen.all():  # a --kpis file's missing days (gaps, not zeros): compared where observed
        frame["forecast"] = frame["forecast"].where(seen, 0.0)
        t_up, t_dn = np.where(seen, t_up, 0.0), np.where(seen, t_dn, 0.0)
    week = np.arange(days) // 7
    wk = frame.groupby(week).agg(actual=("actual", "sum"), forecast=("forecast", "sum"))
    wk["start"] = frame.index[::7][: len(wk)]
    wk["seen"] = pd.Series(seen).groupby(week).sum().to_numpy()
    half = z * _sum_sigma(resid, 7, sigma)
    wk["up"] = np.hypot(half, pd.Series(t_up).groupby(week).sum().to_numpy())
    wk["dn"] = np.hypot(half, pd.Series(t_dn).groupby(week).sum().to_numpy())
    weeks = [{"start": r.start.date(), "end": (r.start + pd.Timedelta(days=6)).date(),
              "actual": r.actual, "forecast": r.forecast,
              "deviation_pct": _pct(r.actual, r.forecast),
              "outside_interval": bool(r.actual - r.forecast > r.up
                                       or r.forecast - r.actual > r.dn)}
             for r in wk.itertuples() if r.seen]  # a week with no observed day: no comparison
    a, f = float(frame["actual"].sum()), float(frame["forecast"].sum())
    return {"weeks": weeks, "actual": a, "forecast": f, "deviation_pct": _pct(a, f),
            "forecast_made": train.index.max().date()}


def _pct(a: float, e: float) -> float | None:
    return (a - e) / e * 100.0 if e and np.isfinite(a) and np.isfinite(e) else None
