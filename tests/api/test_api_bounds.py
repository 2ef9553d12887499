"""The API's answers at the edges of its parameters (tests/servefix.py's runs): a one-day range,
an unknown route's message. Each test failed against a hand-made mutant of the check it names
that tests/api/test_api.py let pass (audit-mutcli)."""

from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():  # starlette's notice that httpx2 will replace httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import Settings, create_app

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client(roots):
    app = create_app(Settings(reports=roots.reports, runs=roots.runs))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_an_unknown_route_is_a_json_not_found(client):
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.json() == {"error": {"status": 404, "message": "not found"}}


def test_a_one_day_range_is_a_range_not_start_after_end(client):
    """start == end is the incidents touching that day (and that day's KPI points), not a 422."""
    items = client.get("/runs/sim/incidents", params={"limit": 1000}).json()["items"]
    day = items[0]["start"][:10]
    r = client.get("/runs/sim/incidents", params={"start": day, "end": day, "limit": 1000})
    assert r.status_code == 200, r.text
    assert items[0]["incident_id"] in [i["incident_id"] for i in r.json()["items"]]
    r = client.get("/runs/sim/kpis", params={"kpi": "orders", "start": day, "end": day})
    assert r.status_code == 200, r.text
    assert [p["date"] for p in r.json()["points"]] == [day]


def test_total_counts_every_match_not_the_page(client):
    """``total`` is what a client pages through: the page's length said there was nothing more."""
    every = client.get("/runs/sim/incidents", params={"limit": 1000}).json()
    assert every["total"] > 2
    page = client.get("/runs/sim/incidents", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == every["total"] and len(page["items"]) == 1
    assert page["items"][0]["incident_id"] == every["items"][1]["incident_id"]


def test_an_empty_kpi_cell_is_null_not_an_error(client, roots):
    """A day without a value (the transactions run's aov on a day without a sale) is null in the
    series; NaN is not JSON (a 500 on the whole series)."""
    import pandas as pd

    k = pd.read_csv(roots.reports / "tx" / "kpis_daily.csv")
    k = k[k["dimension"] == "overall"]
    r = client.get("/runs/tx/kpis", params={"kpi": "aov"})
    assert r.status_code == 200, r.text
    values = [p["value"] for p in r.json()["points"]]
    assert len(values) == len(k) and values.count(None) == int(k["aov"].isna().sum()) > 0


def test_a_segment_share_is_its_customers_over_all_customers(client, roots):
    import pandas as pd

    seg = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")
    counts = seg["segment"].value_counts()
    r = client.get("/runs/sim/customers/segments").json()
    for s in r["segments"]:
        assert s["share"] == round(int(counts.get(s["segment"], 0)) / len(seg), 6), s


def test_min_risk_keeps_a_customer_exactly_at_the_bar(client, roots):
    """``min_risk`` is "at least": a customer whose churn risk equals it is in the list."""
    import pandas as pd

    seg = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")
    bar = float(seg["churn_risk"].round(6).value_counts().index[0])   # a value customers hold
    exact = seg[seg["churn_risk"] == bar]
    assert len(exact) > 0
    r = client.get("/runs/sim/customers/actions", params={"min_risk": bar, "limit": 1})
    assert r.json()["total"] == int((seg["churn_risk"] >= bar).sum())


@pytest.mark.parametrize("bad", ["-x", "a..b", "x" * 201])
def test_the_status_of_an_invalid_run_id_is_422_not_404(client, bad):
    """An id that is no directory name is a bad request, as on every other /runs/{id} route."""
    r = client.get(f"/runs/{bad}/status")
    assert r.status_code == 422 and "invalid run id" in r.json()["error"]["message"], r.text
    assert client.get("/runs/not-started/status").status_code == 404


def test_the_env_factory_reads_its_roots_and_the_analysis_switch(tmp_path, monkeypatch):
    """``uvicorn --factory api.app:app_from_env``: POST /runs only when
    SHOCKLAB_ALLOW_ANALYSIS=1."""
    import os

    from api.app import app_from_env

    monkeypatch.setenv("SHOCKLAB_REPORTS", str(tmp_path / "r"))
    monkeypatch.setenv("SHOCKLAB_DATA_ROOTS", os.pathsep.join([str(tmp_path / "a"), "", "b"]))
    monkeypatch.delenv("SHOCKLAB_ALLOW_ANALYSIS", raising=False)
    s = app_from_env().state.settings
    assert s.allow_analysis is False and s.reports == tmp_path / "r"
    assert s.data_roots == [tmp_path / "a", type(tmp_path)("b")]
    for value, on in (("1", True), ("0", False), ("yes", False)):
        monkeypatch.setenv("SHOCKLAB_ALLOW_ANALYSIS", value)
        assert app_from_env().state.settings.allow_analysis is on
    # set empty (SHOCKLAB_REPORTS="$DIR" with DIR unset) is unset: it served the current directory
    monkeypatch.setenv("SHOCKLAB_REPORTS", "")
    monkeypatch.setenv("SHOCKLAB_RUNS", "")
    s = app_from_env().state.settings
    assert (s.reports, s.runs) == (type(tmp_path)("reports"), type(tmp_path)("runs"))
