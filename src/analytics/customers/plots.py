"""Customer plots (PNG bytes, Agg backend; ``analytics.outputs`` writes them): segment sizes, RFM
scatter, cohort heatmap, churn ROC, reliability curves (churn risk, P(alive)), At-Risk trend with
alerts. Drawn on ``matplotlib.figure.Figure`` directly: pyplot (its import, its global figure
registry) is not needed; plots whose labels do not depend on the data get fixed margins
(``_FIXED``), the others a tight layout applied once by its engine (``savefig`` then draws once)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.layout_engine import TightLayoutEngine

from shocklab.figures import house_style, missing_glyphs_quiet

# Margins (left, right, bottom, top) in inches for the plots whose labels do not depend on the data:
# what the tight layout gave them on the default, small and random-world scenarios (constant in
# inches), with 0.05 in more on the left for wider tick labels. Measuring every tick label for a
# tight layout costs about as much as drawing the figure (~0.35 s of the stage's ~0.85 s of plots).
_FIXED = {
    "rfm_scatter": (0.75, 0.15, 0.59, 0.37),
    "cohort_heatmap": (0.70, 0.15, 0.59, 0.37),
    "churn_roc": (0.72, 0.15, 0.59, 0.37),
    "reliability_curve": (0.72, 0.26, 0.59, 0.35),
    "monitor_trend": (0.68, 0.15, 0.39, 0.37),
}


def _png(fig: Any, plot: str | None = None) -> bytes:
    with missing_glyphs_quiet():
        if plot in _FIXED:
            w, h = fig.get_size_inches()
            left, right, bottom, top = _FIXED[plot]
            fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h,
                                top=1 - top / h)
        else:  # labels from the data (segment names): what fig.tight_layout() does, without
            # leaving a layout engine on the figure (savefig would lay it out again in a draw)
            TightLayoutEngine().execute(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


_WARM = False


@house_style
def warm_up() -> None:
    """Build what matplotlib builds on its first figure, once per process: the fonts (text
    layout), the mathtext parser (log-scale tick labels: its grammar alone is ~0.1 s), PIL's
    PNG plugin. The stage scheduler calls this with its imports, before its fork, while the data
    directory is still being read (``analytics.schedule.preload``): both processes then draw
    warm, and no stage pays it. Never raises (the plots report their own errors)."""
    global _WARM
    if _WARM:
        return
    _WARM = True
    try:
        fig = Figure(figsize=(1.5, 1.5))
        ax, bx = fig.subplots(1, 2)
        ax.scatter([1, 2], [1, 10], s=[6, 12], alpha=0.5, label="a")
        ax.set_yscale("log")
        ax.set_title("t")
        ax.legend(fontsize=7)
        bx.barh(["a", "b"], [1, 2])
        TightLayoutEngine().execute(fig)
        fig.savefig(io.BytesIO(), format="png", dpi=30, metadata={"Software": None})
    except Exception:  # noqa: BLE001 — a warm-up only
        pass


@house_style
def segment_sizes(counts: dict[str, int]) -> bytes:
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    names = list(counts)
    ax.barh(names[::-1], [counts[n] for n in names][::-1], color="#4c72b0")
    ax.set_xlabel("customers")
    ax.set_title("RFM segments")
    return _png(fig)


@house_style
def rfm_scatter(table: pd.DataFrame, max_points: int = 5000) -> bytes:
    # every k-th customer in id order (the stage's table already is: no string sort then)
    if not table["customer_id"].is_monotonic_increasing:
        table = table.sort_values("customer_id")
    t = table.iloc[:: max(1, len(table) // max_points)]
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for seg, g in t.groupby("segment", sort=True):
        ax.scatter(
            g["recency_days"],
            g["frequency"],
            s=6 + 6 * g["m_score"].to_numpy(dtype=float),
            alpha=0.5,
            label=seg,
        )
    ax.set_xlabel("recency (days)")
    ax.set_ylabel("frequency (orders)")
    ax.set_yscale("log")
    ax.set_title("RFM: recency vs frequency (size = monetary score)")
    ax.legend(fontsize=7, markerscale=1.5, loc="upper right")
    return _png(fig, "rfm_scatter")


@house_style
def cohort_heatmap(matrix: pd.DataFrame) -> bytes:
    fig = Figure(figsize=(10, max(3, 0.25 * len(matrix) + 1)))
    ax = fig.subplots()
    im = ax.imshow(matrix.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(matrix)), matrix.index, fontsize=7)
    ax.set_xlabel("months since first order")
    ax.set_title("Cohort retention")
    fig.colorbar(im, ax=ax, label="share of cohort ordering")
    return _png(fig, "cohort_heatmap")


@house_style
def churn_roc(
    roc: dict[str, tuple[np.ndarray, np.ndarray]], aucs: dict[str, float | None]
) -> bytes:
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, (fpr, tpr) in roc.items():
        auc = aucs.get(name)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Churn models (out of time)")
    ax.legend(fontsize=8)
    return _png(fig, "churn_roc")


@house_style
def reliability_curve(curves: dict[str, list[dict[str, Any]]], title: str) -> bytes:
    """Reliability curves (mean predicted vs observed rate per probability bin; size =
    customers)."""
    fig = Figure(figsize=(5, 5))
    ax = fig.subplots()
    for name, rows in curves.items():
        if not rows:
            continue
        x = [r["mean_predicted"] for r in rows]
        y = [r["observed_rate"] for r in rows]
        n = np.array([r["customers"] for r in rows], dtype=float)
        ax.plot(x, y, marker="o", label=name)
        ax.scatter(x, y, s=10 + 90 * n / n.max(), alpha=0.3)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return _png(fig, "reliability_curve")


@house_style
def monitor_trend(series: pd.DataFrame, alerts: list[dict[str, Any]],
                  events: list[dict[str, Any]] | None = None) -> bytes:
    fig = Figure(figsize=(10, 4))
    ax = fig.subplots()
    for seg, g in series.groupby("segment", sort=True):
        ax.plot(g["date"], g["share"] * 100, label=f"{seg} share (%)")
    for a in alerts:
        ax.axvline(
            pd.Timestamp(a["date"]),
            color={"critical": "red", "high": "orange"}.get(a["severity"], "gold"),
            lw=1,
            alpha=0.8,
        )
    for e in events or []:
        ax.axvspan(
            pd.Timestamp(e["start"]),
            pd.Timestamp(e.get("end", e["start"])),
            color="grey",
            alpha=0.2,
        )
    ax.set_ylabel("% of the watched customers")
    ax.set_title("Monitored segments (vertical lines: alerts; grey: churn waves in truth)")
    ax.legend(fontsize=8)
    return _png(fig, "monitor_trend")
