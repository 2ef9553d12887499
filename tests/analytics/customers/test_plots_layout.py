"""Customer plots with fixed margins (``plots._FIXED``) keep every label inside the figure, as the
tight layout they replace did — on labels wider than the default scenario's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.customers import plots


@pytest.fixture
def drawn(monkeypatch):
    figs = {}
    real = plots._png

    def keep(fig, plot=None):
        figs[plot] = fig
        return real(fig, plot)

    monkeypatch.setattr(plots, "_png", keep)
    return figs


def _inside(fig) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    r = canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    for ax in fig.axes:
        bb = ax.get_tightbbox(r)
        assert bb.x0 >= -0.5 and bb.y0 >= -0.5, (ax, bb)
        assert bb.x1 <= w + 0.5 and bb.y1 <= h + 0.5, (ax, bb)


def test_fixed_margin_plots_keep_labels_inside(drawn):
    days = pd.date_range("2024-01-01", periods=400, freq="D")
    series = pd.DataFrame({
        "date": np.tile(days, 2),
        "segment": np.repeat(["At Risk", "Lapsing"], len(days)),
        "share": np.r_[np.linspace(0.0, 1.0, len(days)), np.full(len(days), 0.5)],  # 100 %
    })
    plots.monitor_trend(series, [{"date": "2024-06-01", "severity": "critical"}],
                        [{"start": "2024-05-01", "end": "2024-05-20"}])
    cohorts = pd.DataFrame(np.tri(30, 24), index=[f"{y}-{m:02d}" for y in (2009, 2010, 2011)
                                                   for m in range(1, 11)])
    plots.cohort_heatmap(cohorts)
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(3000)],
        "recency_days": rng.integers(0, 3000, 3000),
        "frequency": rng.integers(1, 20000, 3000),
        "m_score": rng.integers(1, 6, 3000),
        "segment": rng.choice(["Champions", "Lost"], 3000),
    })
    plots.rfm_scatter(table)
    x = np.linspace(0, 1, 11)
    plots.churn_roc({"random_forest": (x, x ** 0.5)}, {"random_forest": 0.71})
    plots.reliability_curve({"p": [{"mean_predicted": v, "observed_rate": v, "customers": 10}
                                   for v in x]}, "P(alive) calibration against the truth")
    assert set(drawn) == set(plots._FIXED)
    for fig in drawn.values():
        _inside(fig)


def test_customer_plots_ignore_the_machines_matplotlib_style():
    """A user's matplotlibrc (font size, face colours, grid) changed the customer PNGs' bytes."""
    import matplotlib
    from tests.analytics.test_report import HOSTILE_STYLE

    draws = {
        "segments": lambda: plots.segment_sizes({"Champions": 40, "At Risk": 12, "Lost": 7}),
        "roc": lambda: plots.churn_roc({"forest": ([0.0, 0.3, 1.0], [0.0, 0.8, 1.0])},
                                       {"forest": 0.8}),
        "reliability": lambda: plots.reliability_curve(
            {"model": [{"mean_predicted": 0.2, "observed_rate": 0.25, "customers": 10},
                       {"mean_predicted": 0.7, "observed_rate": 0.6, "customers": 12}]},
            "p_alive"),
    }
    ref = {k: f() for k, f in draws.items()}
    with matplotlib.rc_context(HOSTILE_STYLE):
        got = {k: f() for k, f in draws.items()}
    assert [k for k in ref if got[k] != ref[k]] == []


def test_the_churn_reliability_legend_names_the_horizon_used(monkeypatch):
    """The legend said "60-day label" whatever the horizon (a short file shortens it; the config
    sets it) (docs audit 2026-12-05)."""
    from types import SimpleNamespace

    from analytics.customers import pipeline as cp

    seen = {}
    monkeypatch.setattr(cp.plots, "segment_sizes", lambda counts: b"")
    monkeypatch.setattr(cp.plots, "rfm_scatter", lambda table: b"")
    monkeypatch.setattr(cp.plots, "reliability_curve",
                        lambda curves, title: seen.update(curves) or b"")
    ch = SimpleNamespace(roc=None, reliability=[{"mean_predicted": 0.5, "observed_rate": 0.5,
                                                 "customers": 10}],
                         summary={"horizon_days": 15})
    cp._plots(None, {}, None, ch, None, [])
    assert list(seen) == ["churn risk (15-day label)"]
