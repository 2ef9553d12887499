"""Plots are written, non-empty and of the expected size (matplotlib Agg canvas, no pyplot)."""

from __future__ import annotations

import struct

import pytest
from tests.analytics.insights_synth import Shock, make_ctx
from tests.configs import make_config

from analytics import report
from analytics.outputs import write_artefacts

SHOCKS = [Shock("2025-05-10", "2025-05-14", "sessions", 0.4, {"channel": "paid_social"})]
INCIDENTS = [("revenue", "2025-05-10", "2025-05-14", "down", "E1")]
TRUTH = [
    {
        "event_id": "E1",
        "type": "channel_outage",
        "expected": False,
        "start": "2025-05-10",
        "end": "2025-05-14",
        "scope": {"channel": "paid_social"},
        "params": {},
        "effects": {
            "sessions": -0.11,
            "orders": -0.06,
            "revenue": -0.06,
            "conversion_rate": 0.05,
            "aov": 0.0,
        },
        "primary_kpi": "sessions",
    },
    {
        "event_id": "P1",
        "type": "campaign",
        "expected": True,
        "start": "2025-03-01",
        "end": "2025-03-02",
        "scope": {},
        "params": {},
        "effects": {},
        "primary_kpi": "sessions",
    },
]
SCORECARD = {
    "headline": {"mode": "strict"},
    "strict": {
        "detectors": {
            "zscore": {"recall": 1.0, "precision": 0.5},
            "stl": {"recall": 0.5, "precision": 1.0},
        },
        "consensus": {
            "recall": 1.0,
            "precision": 1.0,
            "by_type": {"channel_outage": {"recall": 1.0}, "flash_sale": {"recall": 0.0}},
        },
    },
    "insights": {
        "events": 1,
        "root_cause_accuracy": 1.0,
        "kpi_attribution": 0.0,
        "signature_accuracy": 1.0,
        "magnitude_error_median": 0.1,
    },
}


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def ctx(tmp_path):
    c = make_ctx(tmp_path, SHOCKS, INCIDENTS, truth_events=TRUTH)
    c.scorecard = SCORECARD
    # a forecast section as insights.run leaves it (no Prophet in the fast tests)
    c.insights = {
        "forecast": {
            "status": "ok",
            "kpi": "revenue",
            "interval": 0.95,
            "horizon_days": 3,
            "daily": [
                {"date": f"2025-07-0{d}", "yhat": 30000.0, "lower": 28000.0, "upper": 32000.0}
                for d in (2, 3, 4)
            ],
            "recent": {"forecast_made": "2025-06-03", "deviation_pct": -1.5},
        },
        "channels": {
            "window_start": "2025-06-25",
            "window_end": "2025-07-01",
            "channels": [
                {"channel": "email", "revenue_vs_baseline_pct": -30.0, "underperforming": True},
                {"channel": "organic", "revenue_vs_baseline_pct": 2.0, "underperforming": False},
            ],
        },
    }
    return c


def test_all_plots_written_and_non_empty(ctx, tmp_path):
    report.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    plots = tmp_path / "plots"
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["channels.png", "forecast.png", "kpi_aov.png", "kpi_conversion_rate.png",
                     "kpi_revenue.png", "kpi_sessions.png", "scorecard.png"]
    for p in plots.iterdir():
        w, h = png_size(p)
        assert w >= 1000 and h >= 400, (p.name, w, h)
        assert p.stat().st_size > 20_000, p.name    # a blank canvas of that size is ~5 kB


def test_missing_parts_skip_their_plots(ctx, tmp_path):
    ctx.scorecard, ctx.insights, ctx.detections, ctx.event_windows = None, None, None, []
    ctx.config = make_config(**{"insights": {"plot_kpis": ["revenue", "new_customers"]}})
    report.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["channels.png", "kpi_revenue.png"]   # no forecast, scorecard, or absent KPI


def test_plots_off_writes_nothing(ctx, tmp_path):
    ctx.config = make_config(**{"insights": {"plots": False}})
    report.run(ctx)
    write_artefacts(ctx)  # the files, as analytics.outputs writes them
    assert not (tmp_path / "plots").exists()


# what a user's matplotlibrc (working directory, MATPLOTLIBRC, ~/.config/matplotlib) may set
HOSTILE_STYLE = {"font.size": 15, "axes.facecolor": "ivory", "axes.grid": True,
                 "lines.linewidth": 3.5, "savefig.facecolor": "0.9", "figure.dpi": 50}


def test_plots_ignore_the_machines_matplotlib_style(ctx):
    """Every PNG is drawn with matplotlib's own defaults: a matplotlibrc in the working directory
    changed every plot's bytes (the same data and config, other files)."""
    import matplotlib

    report.run(ctx)
    ref = dict(ctx.figures)
    ctx.figures.clear()
    with matplotlib.rc_context(HOSTILE_STYLE):
        report.run(ctx)
        assert matplotlib.rcParams["font.size"] == 15   # the caller's style is back afterwards
    assert sorted(ctx.figures) == sorted(ref) and len(ref) == 7
    assert [n for n in ref if ctx.figures[n] != ref[n]] == []
