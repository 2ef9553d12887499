"""Sections of insights.json other than incidents and episodes: run, summary, channels,
forecast, seasonality (and the marketing calendar they overlap)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from shocklab.catalogue import MAIN_KPIS, RATIO_KPIS
from shocklab.hashing import json_ready, sha256_json
from shocklab.versions import versions as package_versions

from .. import drivers as dr
from ..context import RunContext
from ..forecasting import forecast_revenue, overall_series, per_day
from ..insights_config import InsightsConfig
from .common import _day, _driver_set, _explain, _f, _pct, _seed, _slice_sums, noise_text
from .models import (
    Channel,
    Channels,
    DetectorRun,
    Forecast,
    KpiChange,
    KpiTotal,
    PlannedDay,
    Profile,
    ProfilePoint,
    RunInfo,
    Seasonality,
    Summary,
)
from .narrative import _headline
from .planned import baseline_dates, describe, planned_days, unplanned_trailing

log = logging.getLogger("shocklab.insights")


def _run_info(ctx: RunContext, kpis: pd.DataFrame) -> RunInfo:
    manifest = ctx.data.manifest or {}
    cfg_dump = ctx.config.model_dump(mode="json")
    versions = package_versions()  # the same list as run.json (shocklab.versions)
    dets = [DetectorRun(name=str(n), ok=bool(s.get("ok", False)),
                        error=None if s.get("error") is None else str(s.get("error")))
            for n, s in sorted(ctx.detector_status.items())]
    # a detector skipped by design (the oracle without truth) neither ran nor failed
    skipped = {str(n) for n, s in ctx.detector_status.items() if s.get("skipped")}
    dates = pd.to_datetime(kpis["date"]) if len(kpis) else pd.Series(dtype="datetime64[ns]")
    start, end = (dates.min(), dates.max()) if len(dates) else (None, None)
    scenario = manifest.get("scenario") or manifest.get("scenario_name")
    # a seed means something only for simulated data (real data would show the config's default)
    seed = (
        manifest.get("seed", ctx.config.seed)
        if ctx.data.source == "simulated"
        else None
    )
    return RunInfo(source=ctx.data.source, scenario=None if scenario is None else str(scenario),
                   seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
                   manifest_sha256=sha256_json(json_ready(manifest, str)) if manifest else None,
                   config_sha256=sha256_json(cfg_dump),
                   period_start=_day(start) if start is not None else None,
                   period_end=_day(end) if end is not None else None,
                   days=int((end - start).days + 1) if start is not None else 0,
                   versions=versions, detectors=[d for d in dets if d.name not in skipped],
                   detectors_failed=[d.name for d in dets if not d.ok and d.name not in skipped],
                   detectors_not_run=[d for d in dets if d.name in skipped])


def _summary(panel: dr.SlicePanel, cfg: InsightsConfig, kpis: pd.DataFrame,
             cal: pd.DataFrame | None = None) -> Summary:
    if not len(panel.dates):
        return Summary()
    first, last = panel.dates.min(), panel.dates.max()
    kpi_list = [k for k in MAIN_KPIS if all(c in panel.values for c in dr.components(k))]
    n_days = (last - first).days + 1
    covered = n_days - 1 + panel.step_days()  # a weekly file's last row stands for its week
    totals = []
    for k in kpi_list:
        sums = _slice_sums(panel, dr.components(k), "overall", "all", first, last, "actual")
        v = dr.kpi_value(k, sums)
        totals.append(KpiTotal(kpi=k, total=_f(v),
                               daily_mean=_f(v / covered) if k not in RATIO_KPIS else _f(v)))
    # the windows end where the last row's period does (a weekly file's last row is the 7 days
    # from its date, as in the forecast's back-check), and are compared only when a whole number
    # of rows: a 28-day month over month on a weekly file, no week over week on a monthly one
    step = panel.step_days()
    end = last + pd.Timedelta(days=step - 1)
    changes: dict[int, list[KpiChange]] = {}
    for span in (7, 28):
        out = []
        if span % step == 0 and covered >= 2 * span:
            cur_start = end - pd.Timedelta(days=span - 1)
            prev_start, prev_end = cur_start - pd.Timedelta(days=span), cur_start - pd.Timedelta(
                days=1)
            # the overall store: every calendar row concerns it, whatever its scope
            planned_cur, planned_prev = (
                [PlannedDay(date=d.date, name=d.name) for d in planned_days(cal, a, b)]
                for a, b in ((cur_start, end), (prev_start, prev_end)))
            for k in kpi_list:
                comps = dr.components(k)
                a = dr.kpi_value(
                    k, _slice_sums(panel, comps, "overall", "all", cur_start, end, "actual")
                )
                e = dr.kpi_value(
                    k,
                    _slice_sums(
                        panel, comps, "overall", "all", cur_start, end, "shift", shift_days=span
                    ),
                )
                res = _explain(panel, cfg, k, cur_start, end, "shift", shift_days=span)
                out.append(
                    KpiChange(
                        kpi=k,
                        current=_f(a),
                        previous=_f(e),
                        change_pct=_pct(_f(a), _f(e)),
                        current_start=_day(cur_start),
                        current_end=_day(end),
                        previous_start=_day(prev_start),
                        previous_end=_day(prev_end),
                        drivers=_driver_set(res),
                        planned_current=planned_cur,
                        planned_previous=planned_prev,
                    )
                )
        changes[span] = out
    return Summary(period_start=_day(first), period_end=_day(last), totals=totals,
                   week_over_week=changes[7], month_over_month=changes[28],
                   headline=_headline(changes[7], has_revenue="revenue" in kpi_list,
                                      has_overall="revenue" not in kpi_list or panel.column(
                                          "revenue", "overall", "all") is not None,
                                      step_days=step))


def count_noise_pct(orders: float | None, weeks: int = 4) -> float | None:
    """One standard deviation (%) of a window's change against the channels' baseline from
    Poisson counts alone: a window of ``orders`` expected orders varies by 1/sqrt(n) and the
    baseline (the median of ``weeks`` windows' totals) by about pi/2 / weeks of that variance, so
    sqrt((1 + pi/2 / weeks) / n) (Poisson Monte Carlo at n = 30: 1 week 28.1 % against 29.3 %,
    4 weeks 21.3 % against 21.5 %, 26 weeks 18.9 % against 18.8 %). None without an expected
    order. On the 20 TRAIN random worlds (every 7th window from day 120, 5,498 channel-weeks
    against the twin without events) 47 % of the flags within twice it were false (true change
    above -10 %), 28 % of those beyond it; gating the flag on it removed more real shortfalls
    than false flags (docs/history/insights.md, "Channels' count noise")."""
    if orders is None or not np.isfinite(orders) or orders <= 0:
        return None
    return _f(100.0 * float(np.sqrt((1 + np.pi / 2 / weeks) / orders)))


def _channels(panel: dr.SlicePanel, cfg: InsightsConfig,
              cal: pd.DataFrame | None = None) -> Channels | None:
    c = cfg.channels
    segs = panel.segments("channel") if panel.values else []
    if not segs or "revenue" not in panel.values:
        return None
    last = panel.dates.max()
    start = last - pd.Timedelta(days=c.window_days - 1)
    comps = [x for x in ("revenue", "orders", "sessions") if x in panel.values]
    act = {x: panel.window_sums(x, start, last, "actual") for x in comps}
    # planned days concern a channel by the calendar's scope; they leave its baseline
    base = {x: dict(zip(segs, unplanned_trailing(panel, x, "channel", segs, start, last,
                                                 c.baseline_weeks, cal), strict=True))
            for x in comps}
    tot_rev = float(sum(_f(act["revenue"].get(("channel", s))) or 0.0 for s in segs))
    rows, under = [], []
    for s in segs:
        a = {x: _f(act[x].get(("channel", s))) for x in comps}
        b = {x: _f(base[x][s]) for x in comps}
        conv = (
            a["orders"] / a["sessions"]
            if a.get("orders") is not None and a.get("sessions")
            else None
        )
        bconv = (
            b["orders"] / b["sessions"]
            if b.get("orders") is not None and b.get("sessions")
            else None
        )
        aov = (
            a["revenue"] / a["orders"] if a.get("revenue") is not None and a.get("orders") else None
        )
        rev_pct, conv_pct = _pct(a["revenue"], b["revenue"]), _pct(conv, bconv)
        # the count noise of a quiet week: revenue from the baseline's orders, conversion from
        # the orders the baseline conversion expects of the window's sessions
        # (none where the change itself is unknown)
        rev_noise = count_noise_pct(b.get("orders"), c.baseline_weeks) \
            if rev_pct is not None else None
        conv_noise = count_noise_pct(bconv * a["sessions"], c.baseline_weeks) \
            if conv_pct is not None and bconv is not None and a.get("sessions") else None
        planned = planned_days(cal, start, last, "channel", s)
        reasons = []
        for name, pct, noise in (("revenue", rev_pct, rev_noise),
                                 ("conversion", conv_pct, conv_noise)):
            if pct is not None and pct <= -c.underperform_pct:
                within = noise is not None and -pct < 2 * noise
                reasons.append(f"{name} {pct:.1f}% vs its baseline" + (
                    f", within twice its count noise (±{noise_text(noise)}%)" if within else ""))
        if reasons:
            under.append(s)
            if planned:  # judged against days without campaigns: say this window held one
                reasons.append(f"during planned {describe(planned)}")
        rows.append(
            Channel(
                channel=s,
                revenue=a["revenue"] or 0.0,
                revenue_share=(a["revenue"] or 0.0) / tot_rev if tot_rev else 0.0,
                sessions=a.get("sessions"),
                orders=a.get("orders"),
                conversion_rate=_f(conv),
                aov=_f(aov),
                baseline_revenue=b["revenue"],
                revenue_vs_baseline_pct=rev_pct,
                conversion_vs_baseline_pct=conv_pct,
                revenue_noise_pct=rev_noise,
                conversion_noise_pct=conv_noise,
                underperforming=bool(reasons),
                reasons=reasons,
                planned=planned,
            )
        )
    rows.sort(key=lambda r: (-r.revenue, r.channel))
    in_window = planned_days(cal, start, last)  # the overall store: every row concerns it
    bdays = baseline_dates(start, last, c.baseline_weeks)
    in_base = [d for d in planned_days(cal, bdays.min(), bdays.max())
               if pd.Timestamp(d.date) in bdays]
    weeks = c.baseline_weeks
    baseline = f"median of the window's totals in the {weeks} weeks before it"
    if cal is not None:
        baseline += (f", planned days left out (each counted at its weekday's median; up to "
                     f"{2 * weeks} weeks back where fewer than {(weeks + 1) // 2} remain)")
    notes = []
    if in_window:
        notes.append(f"The window holds planned {describe(in_window)}: the channels it concerns "
                     "are judged against days without planned events, so their change includes "
                     "the campaign's effect.")
    if in_base:
        notes.append(f"The baseline weeks held planned {describe(in_base)}, left out of the "
                     "baseline of the channels they concern.")
    return Channels(
        window_start=_day(start),
        window_end=_day(last),
        baseline=baseline,
        channels=rows,
        underperformers=under,
        planned_window=in_window,
        planned_baseline=in_base,
        note=" ".join(notes) or None,
    )


def _calendar(ctx: RunContext) -> pd.DataFrame | None:
    cal = ctx.data.tables.get("marketing_calendar") if ctx.data.tables else None
    if cal is None or cal.empty or "date" not in cal.columns:
        return None
    cal = cal.assign(date=pd.to_datetime(cal["date"]).dt.normalize())
    return cal.sort_values(["date", *[c for c in ("name",) if c in cal.columns]], kind="mergesort")


def _forecast(ctx: RunContext, cfg: InsightsConfig) -> Forecast:
    f = cfg.forecast
    if not f.enabled:
        return Forecast(status="skipped", reason="forecast disabled in config")
    if "revenue" not in ctx.kpis_daily.columns:
        return Forecast(status="skipped", reason="no revenue KPI")
    planned = _calendar(ctx)  # the overall store: every calendar row concerns it
    try:
        res = forecast_revenue(ctx.kpis_daily, f, seed=_seed(ctx), planned=planned)
    except Exception as exc:  # Prophet/cmdstan failures must not sink the whole insights stage
        log.warning("forecast failed: %s: %s", type(exc).__name__, exc)
        return Forecast(status="failed", reason=f"{type(exc).__name__}: {exc}")
    if res is None:
        o = ctx.kpis_daily["dimension"].astype(str) == "overall"
        if not ctx.kpis_daily.loc[o, "revenue"].notna().any():
            return Forecast(status="skipped", reason="no store-wide (overall) revenue series, "
                            "only slices")
        return Forecast(status="skipped", reason=f"less than {f.min_history_days} days of history")
    return Forecast(status="ok", **res)


def _profile(means: pd.Series, labels: Sequence[str]) -> Profile | None:
    means = means.dropna()
    if len(means) < 2:
        return None
    overall = float(means.mean())
    if not overall:
        return None
    pts = [
        ProfilePoint(label=labels[int(i)], mean=float(v), index=float(v) / overall)
        for i, v in means.items()
    ]
    return Profile(points=pts, peak=labels[int(means.idxmax())], trough=labels[int(means.idxmin())],
                   amplitude_pct=(float(means.max()) - float(means.min())) / overall * 100)


MONTHLY_MIN_DAYS = 365  # a monthly profile from a full year of revenue


def _seasonality(kpis: pd.DataFrame) -> Seasonality:
    y = (
        overall_series(kpis, "revenue").dropna()
        if "revenue" in kpis.columns
        else pd.Series(dtype=float)
    )
    if y.empty:
        return Seasonality()
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = (
        "",
        "Jan",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    )
    wd = _profile(y.groupby(y.index.day_of_week).mean(), days) if len(y) >= 14 else None
    y = per_day(y).dropna()  # a weekly file's months: days' means, not weeks' (7x)
    # a month-of-year profile needs every month of a year: over six months of a store that lost
    # customers it read "monthly: peak Jan, trough Jun, amplitude 47.9%" — trend and shocks,
    # told as a season
    full_year = (y.index.max() - y.index.min()).days + 1 >= MONTHLY_MIN_DAYS
    mo = _profile(y.groupby(y.index.month).mean(), months) if full_year else None
    return Seasonality(kpi="revenue", weekday=wd, monthly=mo)
