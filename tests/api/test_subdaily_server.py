"""A real `shocklab serve` process over a sub-daily `--kpis` run (the README's NAB use case):
the KPI route answered 500 because its points were typed as dates, and a day's `end` filter
dropped that day's hours."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from tests import localserver


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback only
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from run_analysis import main as ana_main

    from shocklab.cli import run_cli

    base = tmp_path_factory.mktemp("subdaily")
    rng = np.random.default_rng(3)
    ts = pd.date_range("2025-03-01", periods=24 * 21, freq="h")
    value = 100 + 10 * np.sin(np.arange(len(ts)) * 2 * np.pi / 24) + rng.normal(0, 2, len(ts))
    value[300:306] += 60
    csv = base / "hourly.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "value": value.round(3)}).to_csv(
        csv, index=False)
    reports, runs = base / "reports", base / "runs"
    runs.mkdir()
    assert run_cli(ana_main, ["--kpis", str(csv), "--out", str(reports / "hourly"),
                              "--quiet"]) == 0
    with localserver.shocklab_serve(reports, runs, base) as url:
        yield url


def test_hourly_kpi_series_is_served_with_timestamps(server):
    code, body = _get(server + "/runs/hourly/kpis?kpi=value")
    assert code == 200, body
    pts = body["points"]
    assert len(pts) == 24 * 21
    assert pts[0]["date"] == "2025-03-01T00:00:00" and pts[1]["date"] == "2025-03-01T01:00:00"
    assert all(isinstance(p["value"], float) for p in pts)


def test_a_day_filter_keeps_every_hour_of_that_day(server):
    code, body = _get(server + "/runs/hourly/kpis?kpi=value&start=2025-03-02&end=2025-03-03")
    assert code == 200, body
    dates = [p["date"] for p in body["points"]]
    assert len(dates) == 48
    assert dates[0] == "2025-03-02T00:00:00" and dates[-1] == "2025-03-03T23:00:00"


def test_incidents_of_a_day_include_those_starting_later_that_day(server):
    code, body = _get(server + "/runs/hourly/incidents?limit=500")
    assert code == 200, body
    assert body["items"], "the hourly fixture has a +60 spike"
    inc = body["items"][0]
    day = inc["start"][:10]
    assert inc["start"] > day  # a timestamp within the day
    code, one = _get(server + f"/runs/hourly/incidents?start={day}&end={day}&limit=500")
    assert code == 200, one
    assert inc["incident_id"] in [i["incident_id"] for i in one["items"]]


def test_an_unknown_kpi_or_severity_filter_is_422_not_an_empty_list(server):
    code, body = _get(server + "/runs/hourly/incidents?kpi=valeu")
    assert code == 422, body
    assert "valeu" in body["error"]["message"] and "value" in body["error"]["message"]
    code, body = _get(server + "/runs/hourly/incidents?severity=urgent")
    assert code == 422, body
    assert "critical" in body["error"]["message"]
