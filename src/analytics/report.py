"""Plots of a run, rendered as PNG bytes into ``ctx.figures`` for ``<run>/plots/`` (matplotlib's
Agg canvas; pyplot is never imported, so no global backend or figure state is touched).

- ``kpi_<kpi>.png``: the overall KPI by day (a sub-daily --kpis file's gauge: its periods' mean,
  a count: their sum; ``day_rule``) with each detector's flags (one row per detector below),
  consensus incidents shaded red and — when the run has truth — its event windows
  (``ctx.event_windows``) shaded grey (planned ones green).
- ``forecast.png``: recent revenue and the forecast fan (from the insights' forecast section).
- ``channels.png``: weekly revenue by channel, and each channel's recent revenue vs its baseline.
- ``scorecard.png``: recall / precision by detector, recall by event type, insight scores.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from shocklab.catalogue import RATIO_KPIS, is_generic
from shocklab.figures import house_style, missing_glyphs_quiet
from shocklab.filenames import MAX_BYTES, hashed_name, safe_name

from .context import RunContext
from .external import averaged_columns, step_text
from .forecasting import overall_series, per_day, ratio_note

log = logging.getLogger("shocklab.report")

UNITS = {
    "revenue": "revenue per day (currency)",
    "orders": "orders per day",
    "sessions": "sessions per day",
    "conversion_rate": "conversion rate (%)",
    "aov": "average order value (currency)",
    "units": "units per day",
    "new_customers": "new customers per day",
    "returning_customers": "returning customers per day",
    "cancellation_rate": "cancellation rate (%)",
}
PERCENT_KPIS = ("conversion_rate", "cancellation_rate")
DPI = 100


def _date_axis(ax) -> None:
    loc = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))


def _short(text: str, at: int = 60) -> str:
    """A label that fits a figure (a 300-character KPI name collapsed the layout to nothing)."""
    return text if len(text) <= at else text[: at - 1] + "…"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with missing_glyphs_quiet():   # no version string: stable bytes
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def day_rule(ctx: RunContext, kpi: str) -> str | None:
    """How a sub-daily --kpis file's own column makes the plot's day: "mean" (a gauge), "sum" (a
    count named by --sum-columns); None for store KPIs, store data and daily or coarser files (a
    day is one period: nothing to say)."""
    ingest = getattr(ctx.data, "ingest", None) or {}
    step = ingest.get("step_seconds")
    if not is_generic(kpi) or step is None or step >= 86400 - 1e-6:
        return None
    return (ingest.get("day_figures") or {}).get(kpi)


def day_series(ctx: RunContext, kpi: str) -> pd.Series:
    """The overall ``kpi`` a KPI plot draws, one value a day: a weekly file's rows as the days
    they stand for (its plot was blank: one point a week between NaN days, and a week's total on
    a "per day" axis), a sum spread over them, a ratio or a gauge (``averaged_columns``) kept
    on each."""
    if kpi not in ctx.kpis_daily.columns:
        return pd.Series(dtype=float)
    rule = day_rule(ctx, kpi)   # a --kpis file's own column: its periods' mean or sum a day
    level = kpi in RATIO_KPIS or kpi in averaged_columns(ctx.data)
    return per_day(overall_series(ctx.kpis_daily, kpi, mean=rule == "mean"), mean=level)


@house_style
def plot_kpi(ctx: RunContext, kpi: str) -> bytes | None:
    rule = day_rule(ctx, kpi)
    y = day_series(ctx, kpi)
    if y.dropna().empty:
        return None
    scale = 100.0 if kpi in PERCENT_KPIS else 1.0
    det = ctx.detections
    flags = pd.DataFrame()
    if det is not None and not det.empty:
        m = (
            (det["kpi"] == kpi)
            & (det["dimension"].astype(str) == "overall")
            & det["flag"].astype(bool)
        )
        flags = det.loc[m, ["date", "detector"]].assign(date=lambda d: pd.to_datetime(d["date"]))
    detectors = sorted(
        set(ctx.detector_status) | set(flags["detector"].astype(str) if len(flags) else [])
    )
    fig = Figure(figsize=(12, 5.5), layout="constrained")
    ax, axf = fig.subplots(2, 1, sharex=True, height_ratios=[3, max(1, 0.35 * len(detectors))])
    ax.plot(y.index, y.to_numpy() * scale, color="#1f4e79", lw=1.2, label=_short(kpi))
    labelled: set[str] = set()
    spans = [(w.start, w.end, ("#2ca02c", 0.18, "planned event (truth)") if w.expected
              else ("#7f7f7f", 0.18, "injected event (truth)"))
             for w in ctx.event_windows]   # known events, handed in with the truth (no effects)
    spans += [(inc.start, inc.end, ("#d62728", 0.25, "consensus incident"))
              for inc in ctx.incidents if inc.kpi == kpi and inc.dimension == "overall"]
    for a, b, (color, alpha, label) in _merged_spans(spans):
        ax.axvspan(a, b, color=color, alpha=alpha, lw=0,
                   label=None if label in labelled else label)
        labelled.add(label)
    note = ratio_note(ctx.kpis_daily, kpi)   # a sub-daily ratio that could not be pooled
    if rule is not None:   # a sub-daily --kpis file's own column: which day it is
        step = step_text(float(ctx.data.ingest["step_seconds"]))
        note = (f"a day: the mean of its {step} periods (a gauge; --sum-columns sums a count)"
                if rule == "mean" else f"a day: the sum of its {step} periods (--sum-columns)")
    ax.set_title(f"{_short(kpi)}: overall, with detector flags and consensus incidents"
                 + (f"\n{note}" if note else ""))
    ax.set_ylabel(UNITS.get(kpi, _short(kpi)) + {"mean": " (daily mean)", "sum": " (daily sum)"}
                  .get(rule or "", ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    for row, name in enumerate(detectors):
        d = flags.loc[flags["detector"].astype(str) == name, "date"] if len(flags) else []
        axf.scatter(d, np.full(len(d), row), marker="|", s=120, color=f"C{row % 10}")
    axf.set_yticks(range(len(detectors)), detectors, fontsize=8)
    axf.set_ylim(-0.7, max(len(detectors), 1) - 0.3)
    axf.set_ylabel("flags")
    axf.grid(axis="x", alpha=0.3)
    _date_axis(axf)
    return _png(fig)


def _merged_spans(spans: list[tuple]) -> list[tuple]:
    """(start − 12 h, end + 12 h, style) of each span, those of one style that overlap merged
    into one, in the order of their first member: an --events file of 10^4 windows drew 10^4
    patches per plot (~4 ms each: 10^5 windows ran for minutes). Without overlaps: the spans as
    given, in their order."""
    half = pd.Timedelta(hours=12)
    by_style: dict[tuple, list[tuple]] = {}
    for i, (a, b, style) in enumerate(spans):
        by_style.setdefault(style, []).append((pd.Timestamp(a) - half, pd.Timestamp(b) + half, i))
    merged: list[list] = []
    for style, items in by_style.items():
        cur: list | None = None
        for a, b, i in sorted(items):
            if cur is not None and a < cur[2]:
                cur[0], cur[2] = min(cur[0], i), max(cur[2], b)
            else:
                cur = [i, a, b, style]
                merged.append(cur)
    return [(a, b, style) for _, a, b, style in sorted(merged, key=lambda m: m[0])]


@house_style
def plot_forecast(ctx: RunContext) -> bytes | None:
    fc = (ctx.insights or {}).get("forecast") or {}
    if fc.get("status") != "ok" or not fc.get("daily"):
        return None
    f = pd.DataFrame(fc["daily"]).assign(date=lambda d: pd.to_datetime(d["date"]))
    # a weekly file's rows as the days they stand for: the forecast's scale (and a line, not
    # points between NaN days)
    y = per_day(overall_series(ctx.kpis_daily, fc.get("kpi", "revenue")))
    y = y.loc[y.index > y.index.max() - pd.Timedelta(days=max(120, len(f)))]
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(y.index, y.to_numpy(), color="#1f4e79", lw=1.1, label="actual")
    ax.plot(f["date"], f["yhat"], color="#ff7f0e", lw=1.4, label="forecast")
    ax.fill_between(f["date"], f["lower"], f["upper"], color="#ff7f0e", alpha=0.25,
                    label=f"{fc.get('interval', 0.95) * 100:.0f}% interval")
    rec = fc.get("recent")
    if rec:
        ax.axvline(pd.Timestamp(rec["forecast_made"]), color="#7f7f7f", ls=":", lw=1,
                   label=f"back-test origin (last weeks {rec['deviation_pct']:+.1f}% vs forecast)"
                   if rec.get("deviation_pct") is not None else "back-test origin")
    ax.set_title(f"{fc.get('kpi', 'revenue')}: {fc.get('horizon_days')}-day forecast")
    ax.set_ylabel(UNITS.get(fc.get("kpi", "revenue"), ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    _date_axis(ax)
    return _png(fig)


@house_style
def plot_channels(ctx: RunContext) -> bytes | None:
    k = ctx.kpis_daily
    if "revenue" not in k.columns:   # external KPI files have no channels
        return None
    ch = k.loc[k["dimension"].astype(str) == "channel", ["date", "segment", "revenue"]]
    if ch.empty:
        return None
    wide = ch.assign(date=pd.to_datetime(ch["date"])).pivot_table(index="date", columns="segment",
                                                                   values="revenue", aggfunc="sum")
    wide = wide.apply(per_day)  # a weekly file's rows as their days (no whole week was left)
    weekly = wide.resample("W-SUN").sum(min_count=1)
    full = wide.iloc[:, 0].resample("W-SUN").size() == 7   # partial first/last weeks would dip
    weekly = weekly.loc[full.reindex(weekly.index, fill_value=False)].dropna(how="all")
    if weekly.empty:
        return None
    order = weekly.sum().sort_values(ascending=False).index
    fig = Figure(figsize=(13, 4.8), layout="constrained")
    ax, axb = fig.subplots(1, 2, width_ratios=[2, 1])
    ax.stackplot(
        weekly.index,
        weekly[order].fillna(0).to_numpy().T,
        labels=[str(c) for c in order],
        alpha=0.85,
    )
    ax.set_title("Weekly revenue by channel")
    ax.set_ylabel("revenue per week (currency)")
    ax.legend(loc="upper left", fontsize=8, ncols=2)
    ax.grid(alpha=0.3)
    _date_axis(ax)
    sec = (ctx.insights or {}).get("channels") or {}
    rows = [c for c in sec.get("channels", []) if c.get("revenue_vs_baseline_pct") is not None]
    if rows:
        names = [c["channel"] for c in rows]
        vals = [c["revenue_vs_baseline_pct"] for c in rows]
        colors = ["#d62728" if c["underperforming"] else "#2ca02c" if v >= 0 else "#ff9896"
                  for c, v in zip(rows, vals, strict=True)]
        axb.barh(names, vals, color=colors)
        axb.axvline(0, color="black", lw=0.8)
        axb.set_title(
            f"Revenue {sec['window_start']}..{sec['window_end']}\nvs the channel's own baseline"
        )
        axb.set_xlabel("% vs baseline (red: underperforming)")
        axb.invert_yaxis()
        axb.grid(axis="x", alpha=0.3)
    else:
        share = weekly[order].sum() / weekly[order].sum().sum() * 100
        axb.barh(
            [str(c) for c in order], share.to_numpy(), color=[f"C{i}" for i in range(len(order))]
        )
        axb.set_title("Revenue share by channel")
        axb.set_xlabel("% of revenue")
        axb.invert_yaxis()
    return _png(fig)


@house_style
def plot_scorecard(ctx: RunContext) -> bytes | None:
    card = ctx.scorecard
    if not card:
        return None
    mode = (
        (card.get("headline") or {}).get("mode")
        or (card.get("settings") or {}).get("mode")
        or "strict"
    )
    sec = card.get(mode) or {}
    dets = dict(sec.get("detectors") or {})
    if sec.get("consensus"):
        dets["CONSENSUS"] = sec["consensus"]
    if not dets:
        return None
    ins = card.get("insights") or {}
    ins_metrics = {
        k: ins.get(k) for k in ("root_cause_accuracy", "kpi_attribution", "signature_accuracy")
    }
    if ins.get("magnitude_error_median") is not None:
        ins_metrics["1 - magnitude error"] = max(0.0, 1 - ins["magnitude_error_median"])
    ins_metrics = {k: v for k, v in ins_metrics.items() if v is not None}
    n = 3 if ins_metrics else 2
    fig = Figure(figsize=(5 * n + 1, 4.8), layout="constrained")
    axes = fig.subplots(1, n)
    names = list(dets)
    x = np.arange(len(names))
    for off, metric, color in ((-0.2, "recall", "#1f77b4"), (0.2, "precision", "#ff7f0e")):
        axes[0].bar(
            x + off,
            [dets[d].get(metric) or 0.0 for d in names],
            width=0.4,
            label=metric,
            color=color,
        )
    axes[0].set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title(f"Detectors ({mode} matching)")
    axes[0].set_ylabel("fraction")
    axes[0].legend(fontsize=8)
    axes[0].grid(axis="y", alpha=0.3)
    by_type = (sec.get("consensus") or {}).get("by_type") or {}
    types = sorted(by_type)
    axes[1].bar(types, [by_type[t].get("recall") or 0.0 for t in types], color="#1f77b4")
    axes[1].set_xticks(range(len(types)), types, rotation=30, ha="right", fontsize=8)
    axes[1].set_ylim(0, 1.05)
    axes[1].set_title("Consensus recall by event type")
    axes[1].set_ylabel("recall")
    axes[1].grid(axis="y", alpha=0.3)
    if ins_metrics:
        axes[2].bar(list(ins_metrics), list(ins_metrics.values()), color="#2ca02c")
        axes[2].set_xticks(
            range(len(ins_metrics)), list(ins_metrics), rotation=30, ha="right", fontsize=8
        )
        axes[2].set_ylim(0, 1.05)
        axes[2].set_title(f"Insight quality ({ins.get('events', 0)} matched events)")
        axes[2].grid(axis="y", alpha=0.3)
    return _png(fig)


MAX_NAME = MAX_BYTES   # a 300-character KPI name was "not written" (a file name: 255 bytes)


def plot_names(kpis: list[str]) -> list[str]:
    """``kpi_<name>.png`` per KPI, a file name: characters other than letters, digits, ``-`` and
    ``_`` become ``_``. Where that name is too long, or two KPIs would share it (``a/b`` and
    ``a?b``: one plot overwrote the other), it is cut and ends in a hash of the KPI's name
    (``shocklab.filenames``)."""
    stems = [safe_name(k) for k in kpis]
    out = []
    for k, stem in zip(kpis, stems, strict=True):
        if len(stem.encode()) > MAX_NAME or stems.count(stem) > 1:
            stem = hashed_name(k, MAX_NAME)
        out.append(f"kpi_{stem}.png")
    return out


def _jobs(ctx: RunContext) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    cfg = ctx.config.insights
    if not cfg.enabled or not cfg.plots or ctx.kpis_daily is None or ctx.kpis_daily.empty:
        return []
    kpis = list(cfg.plot_kpis)
    if ctx.data.source == "kpis":   # an external file's own KPIs (the first few)
        kpis = [c for c in ctx.kpis_daily.columns if c not in ("date", "dimension", "segment")][:4]
    jobs: list[tuple[str, Callable[..., bytes | None], tuple[Any, ...]]] = [
        (name, plot_kpi, (k,)) for name, k in zip(plot_names(kpis), kpis, strict=True)
    ]
    jobs += [("forecast.png", plot_forecast, ()), ("channels.png", plot_channels, ()),
             ("scorecard.png", plot_scorecard, ())]
    return jobs


# plots that need only the detection chain (KPIs, detections, incidents, truth events), not the
# insights or the insight scores: the stage scheduler draws them early (analytics.schedule)
EARLY = (plot_kpi,)


def early_jobs(ctx: RunContext) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    """The plots in ``EARLY`` as (file name, function, args) jobs for ``draw``."""
    return [j for j in _jobs(ctx) if j[1] in EARLY]


def early(ctx: RunContext) -> frozenset[str]:
    """Draw the plots in ``EARLY`` now; returns their file names for ``run(ctx, done=...)``."""
    jobs = early_jobs(ctx)
    _draw(ctx, jobs)
    return frozenset(name for name, _, _ in jobs)


# plots that read the insight scores (insight_scoring, after the insights stage); the others that
# are not EARLY need only the insights: the stage scheduler draws them right after that stage
SCORED = (plot_scorecard,)


def mid_jobs(ctx: RunContext, done: frozenset[str] = frozenset()
             ) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    """The plot jobs left after ``done`` that need the insights but not the insight scores."""
    return [j for j in jobs_left(ctx, done) if j[1] not in SCORED and j[1] not in EARLY]


def draw(ctx: RunContext, jobs: list[tuple[str, Callable[..., Any], tuple[Any, ...]]]) -> None:
    """Render ``jobs`` (from ``early_jobs``) into ``ctx.figures``."""
    _draw(ctx, jobs)


def jobs_left(ctx: RunContext, done: frozenset[str] = frozenset()
              ) -> list[tuple[str, Callable[..., Any], tuple[Any, ...]]]:
    """The plot jobs ``run(ctx, done)`` draws."""
    return [j for j in _jobs(ctx) if j[0] not in done]


def run(ctx: RunContext, done: frozenset[str] = frozenset()) -> None:
    """Pipeline stage: render the plots into ``ctx.figures`` as ``plots/<name>.png`` (see module
    docstring; ``analytics.outputs`` writes them); ``done``: names ``early`` already drew."""
    _draw(ctx, jobs_left(ctx, done))


def _draw(ctx: RunContext, jobs: list[tuple[str, Callable[..., Any], tuple[Any, ...]]]) -> None:
    for name, fn, args in jobs:
        try:
            png = fn(ctx, *args)
        except Exception as exc:  # one broken plot must not lose the run's other outputs
            log.warning("plot %s failed: %s: %s", name, type(exc).__name__, exc)
            continue
        if png is not None:
            ctx.figures[f"plots/{name}"] = png
