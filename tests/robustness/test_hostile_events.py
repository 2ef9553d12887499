"""Hostile --events files (audit-hostile): dates that are no dates were exit 3 or misread, and
thousands of windows ran for minutes in the plots."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def kpis(tmp_path):
    g = np.random.default_rng(4)
    f = tmp_path / "daily.csv"
    pd.DataFrame({
        "date": pd.date_range("2024-01-01", periods=120, freq="D").strftime("%Y-%m-%d"),
        "revenue": g.normal(1000, 40, 120).round(2),
    }).to_csv(f, index=False)
    return f


@pytest.mark.parametrize(("window", "needle"), [
    ({"start": "0001-03-05", "end": "9999-03-07"}, "between 1678 and 2261"),  # OverflowError, 3
    ({"start": None, "end": None}, "start must be a date"),        # 'NaT to NaT … wrong year?'
    ({"start": 12345, "end": 67890}, "start must be a date"),      # nanoseconds after 1970
    ({"start": "", "end": "2024-03-02"}, "start must be a date"),
    ({"start": "2024-03-01T00:00+05:00", "end": "2024-03-02"}, "a UTC offset or neither"),
])
def test_an_events_window_that_is_no_date_range_is_one_line(window, needle, cli, kpis, tmp_path):
    ev = tmp_path / "events.json"
    ev.write_text(json.dumps([window]))
    r = cli("analysis", "--kpis", kpis, "--events", ev, "--out", tmp_path / "run")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(ev) in line and needle in line, line
    assert not (tmp_path / "run").exists()


def test_windows_with_utc_offsets_are_read_as_utc(cli, kpis, tmp_path):
    ev = tmp_path / "events.json"
    ev.write_text(json.dumps([{"start": "2024-03-01T05:00+05:00",
                               "end": "2024-03-02T05:00+05:00"}]))
    r = cli("analysis", "--kpis", kpis, "--events", ev, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr


def test_many_overlapping_windows_are_drawn_once(cli, kpis, tmp_path, monkeypatch):
    """Each window was its own axvspan in every KPI plot (~4 ms each): 10^5 windows ran for
    minutes. Overlapping windows of one kind are now one span."""
    from matplotlib.axes import Axes

    monkeypatch.setenv("SHOCKLAB_PARALLEL", "0")   # every plot drawn in this process
    calls = []
    real = Axes.axvspan
    monkeypatch.setattr(Axes, "axvspan", lambda self, *a, **k: calls.append(1) or real(self, *a,
                                                                                        **k))
    days = pd.date_range("2024-02-01", periods=10, freq="D").strftime("%Y-%m-%d")
    ev = tmp_path / "events.json"
    ev.write_text(json.dumps([{"start": days[i % 10], "end": days[i % 10]} for i in range(400)]))
    r = cli("analysis", "--kpis", kpis, "--events", ev, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert 0 < len(calls) < 50


def test_merged_spans_keep_disjoint_spans_and_their_order():
    from analytics.report import _merged_spans

    t = pd.Timestamp
    spans = [(t("2024-01-05"), t("2024-01-05"), "b"), (t("2024-01-01"), t("2024-01-02"), "a"),
             (t("2024-01-02"), t("2024-01-03"), "a"), (t("2024-01-05"), t("2024-01-05"), "b")]
    got = _merged_spans(spans)
    half = pd.Timedelta(hours=12)
    assert got == [(t("2024-01-05") - half, t("2024-01-05") + half, "b"),
                   (t("2024-01-01") - half, t("2024-01-03") + half, "a")]
