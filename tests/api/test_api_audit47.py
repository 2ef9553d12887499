"""The API against its own OpenAPI documentation (an audit of 2026-12-05): a page's time type is
the run's, one bad run file does not take the run list down, and the declared responses are the
ones sent (a generated client parses the 422 body and the CSV download)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.servefix import NO_PLOTS

from api.app import Settings, create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    import run_analysis

    from shocklab.cli import run_cli

    base = tmp_path_factory.mktemp("a47")
    rng = np.random.default_rng(3)
    stamps = pd.date_range("2025-01-01", periods=121, freq="12h")   # ends 2025-03-02 00:00
    csv = base / "h12.csv"
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"),
                  "signups": (500 + rng.normal(0, 10, 121)).round(1)}).to_csv(csv, index=False)
    out = base / "reports"
    assert run_cli(run_analysis.main, ["--kpis", str(csv), "--out", str(out / "h12"), "--quiet",
                                       *NO_PLOTS]) == 0
    return out


@pytest.fixture(scope="module")
def client(reports):
    with TestClient(create_app(Settings(reports=reports, runs=reports.parent / "runs")),
                    raise_server_exceptions=False) as c:
        yield c


def test_a_sub_daily_runs_points_are_timestamps_whatever_the_window(client):
    """A 12-hourly run's midnight point came back as a day when the window held no other."""
    for start in ("2025-03-02", "2025-03-01", "2025-02-27"):   # the first: its midnight alone
        pts = client.get(f"/runs/h12/kpis?kpi=signups&start={start}").json()["points"]
        assert pts and all("T" in p["date"] for p in pts), (start, pts)


def test_one_runs_bad_period_leaves_the_list_and_names_the_file(client, reports):
    """insights.json with run.period_start '…T05:00:00' passed the store's day check and failed
    the response model: GET /runs was a 500 for every run, and the run could not be opened."""
    bad = reports / "h12-bad"
    shutil.copytree(reports / "h12", bad)
    try:
        ins = json.loads((bad / "insights.json").read_text())
        ins["run"]["period_start"] = ins["run"]["period_start"][:10] + "T05:00:00"
        (bad / "insights.json").write_text(json.dumps(ins))
        r = client.get("/runs")
        assert r.status_code == 200, r.text
        row = {x["id"]: x for x in r.json()}["h12-bad"]
        assert "insights.json" in row["unreadable"], row
        assert client.get("/runs/h12-bad").status_code == 200
    finally:
        shutil.rmtree(bad)


def test_the_declared_responses_are_the_ones_sent(client):
    spec = client.get("/openapi.json").json()
    for path in ("/runs", "/experiments"):
        declared = spec["paths"][path]["get"]["responses"]["422"]["content"]["application/json"]
        assert declared["schema"]["$ref"].endswith("/ErrorResponse"), (path, declared)
        body = client.get(f"{path}?limit=0").json()
        assert set(body) == {"error"}   # what the schema now says, not FastAPI's {"detail": …}
    ok = spec["paths"]["/runs/{run_id}/customers/actions"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(ok)
