"""The HTTP API over real run directories (see tests/servefix.py): every route, filters, errors
as JSON, path traversal refused, and the background analysis behind its flag."""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings

import pytest

with (
    warnings.catch_warnings()
):  # starlette's notice that httpx2 will replace httpx in the TestClient
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import Settings, create_app
from runstore import shown

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def client(roots):
    app = create_app(Settings(reports=roots.reports, runs=roots.runs))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _json(roots, run, name):
    return json.loads((roots.reports / run / name).read_text())


def _error(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert "Traceback" not in r.text and "File \"" not in r.text
    return body["error"]["message"]


def test_health_and_run_list(client, roots):
    h = client.get("/health").json()
    assert h == {
        "status": "ok",
        "version": h["version"],
        "runs": 4,
        "experiments": 2,
        "analysis_enabled": False,
    }
    runs = {r["id"]: r for r in client.get("/runs").json()}
    assert set(runs) == {"sim", "sim-k1", "kpis", "tx"}
    head = _json(roots, "sim", "scorecard.json")["headline"]
    assert runs["sim"]["recall"] == head["recall"] and runs["sim"]["precision"] == head["precision"]
    assert runs["sim"]["source"] == "simulated" and runs["sim"]["missing"] == []
    assert runs["tx"]["source"] == "transactions" and not runs["tx"]["has_scorecard"]
    assert "scorecard.json" in runs["tx"]["missing"]
    assert "customers/segments.csv" in runs["kpis"]["missing"]


def test_run_and_experiment_lists_page_and_read_only_the_page(client, monkeypatch):
    whole = client.get("/runs")
    assert whole.headers["x-total-count"] == "4"
    ids = [r["id"] for r in whole.json()]
    from runstore import store as st
    read = []
    summary = st.Run.summary
    monkeypatch.setattr(st.Run, "summary", lambda self: read.append(self.id) or summary(self))
    first = client.get("/runs?limit=3")
    assert [r["id"] for r in first.json()] == ids[:3] and first.headers["x-total-count"] == "4"
    assert read == ids[:3]  # the fourth run's files were not read for this page
    rest = client.get("/runs?limit=3&offset=3")
    assert [r["id"] for r in rest.json()] == ids[3:] and rest.headers["x-total-count"] == "4"
    assert client.get("/runs?offset=9").json() == []
    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        assert bad.split("=")[0] in _error(client.get(f"/runs?{bad}"), 422)
    exps = client.get("/experiments?limit=1")
    assert len(exps.json()) == 1 and exps.headers["x-total-count"] == "2"


def test_run_detail(client, roots):
    d = client.get("/runs/sim").json()
    info = _json(roots, "sim", "run.json")
    assert d["data_hash"] == info["data_hash"] and d["config"] == info["config"]
    assert d["files"]["insights.json"] and d["files"]["customers/actions.csv"]
    assert d["links"]["scorecard"] == "/runs/sim/scorecard"
    assert client.get("/runs/kpis").json()["files"]["customers/segments.csv"] is False


def test_scorecard_and_insights_are_the_files(client, roots):
    for route, name in (("scorecard", "scorecard.json"), ("insights", "insights.json")):
        r = client.get(f"/runs/sim/{route}")
        assert r.headers["content-type"] == "application/json"
        assert r.content == (roots.reports / "sim" / name).read_bytes()  # served as written
    assert "no truth" in _error(client.get("/runs/tx/scorecard"), 404)
    assert client.get("/runs/tx/insights").json()["run"]["source"] == "transactions"


def test_incidents_filters(client, roots):
    allinc = _json(roots, "sim", "incidents.json")["incidents"]
    page = client.get("/runs/sim/incidents", params={"limit": 1000}).json()
    assert page["total"] == len(allinc) and [i["incident_id"] for i in page["items"]] == \
        [i["incident_id"] for i in allinc]
    # when each was raised (its rule held), beside its onset
    assert [i["confirmed"] for i in page["items"]] == [i["confirmed"] for i in allinc]
    kpi = allinc[0]["kpi"]
    r = client.get("/runs/sim/incidents", params={"kpi": kpi, "limit": 1000}).json()
    assert r["total"] == sum(i["kpi"] == kpi for i in allinc) and all(
        i["kpi"] == kpi for i in r["items"]
    )
    r = client.get(
        "/runs/sim/incidents", params={"detector": "rolling_zscore", "limit": 1000}
    ).json()
    assert r["total"] == sum("rolling_zscore" in i["detectors"] for i in allinc) > 0
    level = allinc[0]["level"]
    r = client.get("/runs/sim/incidents", params={"level": level, "limit": 1000}).json()
    assert r["total"] == sum(i["level"] == level for i in allinc)
    r = client.get(
        "/runs/sim/incidents", params={"start": "2025-03-01", "end": "2025-03-31", "limit": 1000}
    ).json()
    want = [i for i in allinc if i["end"] >= "2025-03-01" and i["start"] <= "2025-03-31"]
    assert r["total"] == len(want) and 0 < len(want) < len(allinc)
    r = client.get("/runs/sim/incidents", params={"limit": 2, "offset": 1}).json()
    assert [i["incident_id"] for i in r["items"]] == [i["incident_id"] for i in allinc[1:3]]
    own = _json(roots, "sim", "incidents.json")["by_detector"]["rolling_zscore"]
    r = client.get("/runs/sim/incidents", params={"source": "rolling_zscore", "limit": 1000}).json()
    assert r["total"] == len(own) and r["source"] == "rolling_zscore"


def test_incidents_bad_parameters(client):
    assert "known:" in _error(client.get("/runs/sim/incidents", params={"detector": "nope"}), 422)
    assert "consensus" in _error(client.get("/runs/sim/incidents", params={"source": "nope"}), 422)
    assert "after end" in _error(
        client.get("/runs/sim/incidents", params={"start": "2025-04-01", "end": "2025-03-01"}), 422
    )
    assert "start" in _error(client.get("/runs/sim/incidents", params={"start": "2025-13-01"}), 422)
    _error(client.get("/runs/sim/incidents", params={"limit": 0}), 422)


def test_incident_filters_with_an_unknown_value_are_422_not_an_empty_page(client):
    """A typo in level / dimension / segment named the valid values nowhere: it answered 200 with
    no incidents, as if the run had none of that kind."""
    assert "pairwise" in _error(client.get("/runs/sim/incidents", params={"level": "pair"}), 422)
    assert "channel" in _error(
        client.get("/runs/sim/incidents", params={"dimension": "chanel"}), 422)
    msg = _error(client.get("/runs/sim/incidents",
                            params={"dimension": "channel", "segment": "emial"}), 422)
    assert "of channel" in msg and "email" in msg
    # a valid name with no incident is still an empty page
    r = client.get("/runs/sim/incidents", params={"level": "triple", "dimension": "category",
                                                  "segment": "books", "kpi": "sessions"})
    assert r.status_code == 200, r.text
    assert all(i["level"] == "triple" for i in r.json()["items"])


def test_kpis(client, roots):
    import pandas as pd
    k = pd.read_csv(roots.reports / "sim" / "kpis_daily.csv")
    want = k[(k["dimension"] == "channel") & (k["segment"] == "email")].sort_values("date")
    r = client.get(
        "/runs/sim/kpis", params={"kpi": "revenue", "dimension": "channel", "segment": "email"}
    ).json()
    assert [p["date"] for p in r["points"]] == want["date"].tolist()
    assert [p["value"] for p in r["points"]] == pytest.approx(want["revenue"].tolist())
    r = client.get(
        "/runs/sim/kpis", params={"kpi": "orders", "start": "2025-02-01", "end": "2025-02-07"}
    ).json()
    assert [p["date"] for p in r["points"]] == [f"2025-02-0{d}" for d in range(1, 8)]
    assert r["dimension"] == "overall" and r["segment"] == "all"
    assert (
        client.get("/runs/kpis/kpis", params={"kpi": "signups"}).json()["points"][0]["date"]
        == "2025-01-01"
    )


def test_kpis_serve_the_watched_series_kpis_daily_lacks(client, roots):
    """Product series and the list-price indexes (KPI ``price``) are in detections.csv, not in
    kpis_daily.csv: /kpis serves them from there, as the KPI explorer shows them."""
    import pandas as pd
    det = pd.read_csv(roots.reports / "sim" / "detections.csv", low_memory=False)
    prod = det[det["dimension"] == "product"]
    assert len(prod), "the sim run watches products (dimensions default)"
    seg = str(prod["segment"].iloc[0])
    want = (prod[(prod["segment"].astype(str) == seg) & (prod["kpi"] == "orders")]
            .drop_duplicates("date").sort_values("date"))
    r = client.get("/runs/sim/kpis", params={"kpi": "orders", "dimension": "product",
                                             "segment": seg})
    assert r.status_code == 200, r.text
    pts = r.json()["points"]
    assert [p["date"] for p in pts] == want["date"].tolist()
    assert [p["value"] for p in pts] == pytest.approx(want["actual"].tolist())
    idx = det[(det["dimension"] == "overall") & (det["kpi"] == "price")].drop_duplicates("date")
    r = client.get("/runs/sim/kpis", params={"kpi": "price"}).json()  # the store's price index
    assert [p["value"] for p in r["points"]] == pytest.approx(idx.sort_values("date")["actual"]
                                                              .tolist())
    # kpis_daily's own series are untouched: the overall orders are still its column
    k = pd.read_csv(roots.reports / "sim" / "kpis_daily.csv")
    r = client.get("/runs/sim/kpis", params={"kpi": "orders"}).json()
    assert [p["value"] for p in r["points"]] == pytest.approx(
        k[k["dimension"] == "overall"].sort_values("date")["orders"].tolist())


def test_series_table_adds_rows_and_columns_never_cells():
    import pandas as pd

    from runstore.store import _widen
    kpis = pd.DataFrame({"date": ["2025-01-01", "2025-01-01"], "dimension": ["overall", "category"],
                         "segment": ["all", "books"], "orders": [10, 4]})
    det = pd.DataFrame({
        "date": ["2025-01-01"] * 5,
        "kpi": ["orders", "orders", "orders", "price", "orders"],
        "dimension": ["overall", "product", "product", "category", "product"],
        "segment": ["all", 7, 7, "books", 8],
        "detector": ["a", "a", "b", "a", "a"],
        "actual": [999.0, 3.0, 3.0, 1.02, 1.0],
    })
    out = _widen(kpis, det)
    assert list(out.columns) == ["date", "dimension", "segment", "orders", "price"]
    got = {(r.dimension, r.segment): (r.orders, r.price) for r in out.itertuples()}
    assert got[("overall", "all")][0] == 10  # kpis_daily's value, not a detector's actual
    assert got[("product", "7")][0] == 3 and got[("product", "8")][0] == 1
    assert got[("category", "books")] == (4, 1.02)
    assert len(out) == 4
    assert _widen(kpis, det[det["dimension"] == "overall"]) is kpis  # nothing to add
    # a segment read as a number on some rows and as text on others (mixed CSV columns) is one
    mixed = det.assign(segment=det["segment"].astype(object))
    mixed.loc[2, "segment"] = "7"
    assert len(_widen(kpis, mixed)) == 4


def test_slices_are_read_once_per_version_of_the_files(tmp_path, monkeypatch):
    """GET /incidents and /kpis read the run's slices on every request; they were recomputed from
    the series table each time (drop_duplicates + groupby over kpis_daily widened by every
    product series: ~20 ms a request on the default run, where the README measured 1.9 ms).
    Now cached like the table: by detections.csv's (path, mtime, size)."""
    import pandas as pd

    from runstore.store import Run

    run_dir = tmp_path / "r"
    run_dir.mkdir()
    pd.DataFrame({"date": ["2025-01-01"] * 2, "dimension": ["overall", "channel"],
                  "segment": ["all", "email"], "orders": [10, 4]}).to_csv(
        run_dir / "kpis_daily.csv", index=False)

    def detections(products):
        pd.DataFrame({"date": "2025-01-01", "kpi": "orders", "dimension": "product",
                      "segment": products, "detector": "product_watch", "score": 0.0,
                      "flag": False, "expected": 1.0, "actual": 2.0}).to_csv(
            run_dir / "detections.csv", index=False)

    detections([7, 8])
    run = Run("r", run_dir)
    assert run.slices() == {"overall": ["all"], "channel": ["email"], "product": ["7", "8"]}
    calls = []
    real = pd.DataFrame.drop_duplicates
    monkeypatch.setattr(pd.DataFrame, "drop_duplicates",
                        lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    first = Run("r", run_dir).slices()
    first["product"].append("x")  # a caller's change does not reach the cache
    assert Run("r", run_dir).slices()["product"] == ["7", "8"]
    assert calls == []
    detections([7, 8, 9])  # a rewritten run: read again
    assert Run("r", run_dir).slices()["product"] == ["7", "8", "9"]


def test_kpis_errors(client):
    assert "signups" in _error(client.get("/runs/kpis/kpis", params={"kpi": "revenue"}), 422)
    assert "known: overall" in _error(
        client.get("/runs/sim/kpis", params={"kpi": "revenue", "dimension": "x"}), 422
    )
    assert "email" in _error(
        client.get(
            "/runs/sim/kpis", params={"kpi": "revenue", "dimension": "channel", "segment": "tiktok"}
        ),
        422,
    )
    assert "kpi" in _error(client.get("/runs/sim/kpis"), 422)  # kpi is required
    # an inverted range is a bad parameter here as on /incidents (it was 200 with no points)
    assert "after end" in _error(client.get("/runs/sim/kpis", params={
        "kpi": "revenue", "start": "2025-04-01", "end": "2025-03-01"}), 422)


def test_forecast(client, roots):
    f = client.get("/runs/sim/forecast").json()
    assert f == _json(roots, "sim", "insights.json")["forecast"]
    assert f["status"] == "ok" and len(f["daily"]) == f["horizon_days"]
    assert client.get("/runs/kpis/forecast").json()["status"] == "skipped"


def test_customer_segments(client, roots):
    import pandas as pd
    seg = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")
    r = client.get("/runs/sim/customers/segments").json()
    got = {s["segment"]: s["customers"] for s in r["segments"] if s["customers"]}
    assert got == seg["segment"].value_counts().to_dict()
    assert r["customers"] == len(seg) and sum(s["share"] for s in r["segments"]) == pytest.approx(
        1, abs=1e-4
    )
    assert sum(r["actions"].values()) == len(seg)
    assert "no customer models" in _error(client.get("/runs/kpis/customers/segments"), 404)
    assert client.get("/runs/tx/customers/segments").status_code == 200


def test_customer_actions_filters_and_csv(client, roots):
    import pandas as pd
    seg = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")
    act = pd.read_csv(roots.reports / "sim" / "customers" / "actions.csv")
    both = seg.merge(act, on="customer_id")
    r = client.get("/runs/sim/customers/actions", params={"limit": 5}).json()
    assert r["total"] == len(both) and len(r["items"]) == 5
    action = act["action"].value_counts().index[0]
    want = both[(both["action"] == action) & (both["churn_risk"] >= 0.6)]
    r = client.get(
        "/runs/sim/customers/actions", params={"action": action, "min_risk": 0.6, "limit": 1000}
    ).json()
    assert r["total"] == len(want) > 0
    assert all(i["action"] == action and i["churn_risk"] >= 0.6 for i in r["items"])
    csv = client.get(
        "/runs/sim/customers/actions", params={"action": action, "min_risk": 0.6, "format": "csv"}
    )
    assert (
        csv.headers["content-type"].startswith("text/csv")
        and "attachment" in csv.headers["content-disposition"]
    )
    from io import StringIO
    assert sorted(pd.read_csv(StringIO(csv.text))["customer_id"]) == sorted(want["customer_id"])
    r = client.get(
        "/runs/sim/customers/actions", params={"value_tier": "VIP (top 10%)", "limit": 1000}
    ).json()
    assert r["total"] == int((both["value_pct"] >= 0.9).sum())
    _error(client.get("/runs/sim/customers/actions", params={"format": "xml"}), 422)
    _error(client.get("/runs/sim/customers/actions", params={"min_risk": 2}), 422)


def test_customer_action_filters_with_an_unknown_value_are_422(client, roots):
    """An unknown action, segment or value tier answered 200 with an empty list (a CSV export of
    nobody); a name the config defines but no customer has is still an empty page."""
    assert "win-back offer" in _error(
        client.get("/runs/sim/customers/actions", params={"action": "winback"}), 422)
    assert "At Risk" in _error(
        client.get("/runs/sim/customers/actions", params={"segment": "at risk"}), 422)
    assert "VIP (top 10%)" in _error(
        client.get("/runs/sim/customers/actions", params={"value_tier": "VIP"}), 422)
    cfg = _json(roots, "sim", "run.json")["config"]["customers"]
    names = [s["name"] for s in cfg["rfm"]["segments"]] + [cfg["rfm"]["default_segment"]]
    import pandas as pd
    present = set(pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")["segment"])
    absent = [n for n in names if n not in present]
    assert absent  # the default segment (Other) holds nobody in the small world
    r = client.get("/runs/sim/customers/actions", params={"segment": absent[0]})
    assert r.status_code == 200 and r.json()["total"] == 0, r.text


def test_experiments(client):
    exps = {e["id"]: e for e in client.get("/experiments").json()}
    assert exps["sweep"]["cells"] == 4 and exps["sweep"]["gate_passed"] is True
    assert exps["detect"]["kind"] == "detectability" and exps["detect"]["gate_passed"] is None
    assert client.get("/experiments/sweep").json()["name"] == "sweep"
    _error(client.get("/experiments/nope"), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/runs/nope",
        "/runs/nope/insights",
        "/runs/nope/kpis?kpi=revenue",
        "/runs/kpis/customers/actions",
        "/nowhere",
    ],
)
def test_not_found_is_json(client, path):
    _error(client.get(path), 404)


def test_a_directory_without_run_files_is_no_run(client, roots):
    """GET /runs left such a directory out while GET /runs/<it> answered 200, every file missing."""
    (roots.reports / "notarun").mkdir(exist_ok=True)
    try:
        assert "notarun" not in {r["id"] for r in client.get("/runs").json()}
        assert "not found" in _error(client.get("/runs/notarun"), 404)
    finally:
        (roots.reports / "notarun").rmdir()


def test_status_of_a_run_this_server_did_not_start_points_at_the_run(client, roots):
    """The job table lives in memory: after a restart the status of a run the server had
    analysed was a bare 404 that read as if the run were gone; it now names the run's own URL
    (and a run that does not exist says so)."""
    run_id = client.get("/runs").json()[0]["id"]
    msg = _error(client.get(f"/runs/{run_id}/status"), 404)
    assert f"the run itself is at /runs/{run_id}" in msg, msg
    assert client.get(f"/runs/{run_id}").status_code == 200
    msg = _error(client.get("/runs/never-analysed/status"), 404)
    assert "not found" in msg and "the run itself" not in msg, msg


@pytest.mark.parametrize(
    "path",
    [
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/%2E%2E/insights",
        "/runs/..%5Csim/insights",
        "/runs/.hidden/insights",
        "/runs/sim%2F..%2F..%2Fdata/scorecard",
        "/experiments/..%2Freports",
    ],
)
def test_path_traversal_refused(client, path):
    r = client.get(path)
    assert r.status_code in (404, 422), r.text
    assert "error" in r.json() and "root:" not in r.text


def test_symlink_out_of_the_root_is_refused(client, roots, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(roots.reports / "kpis", outside)
    link = roots.reports / "escape"
    os.symlink(outside, link)
    try:
        assert "invalid run id" in _error(client.get("/runs/escape/insights"), 422)
        assert "escape" not in [r["id"] for r in client.get("/runs").json()]
    finally:
        link.unlink()


def test_internal_error_has_no_stack_trace(roots, monkeypatch):
    # a bug's kind of failure (a file that cannot be read, or JSON of the wrong shape, is named
    # instead: test_a_run_file_of_the_wrong_shape_is_unreadable_not_an_internal_error)
    from runstore import Run

    def boom(self, source="consensus"):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(Run, "incidents", boom)
    with TestClient(
        create_app(Settings(reports=roots.reports, runs=roots.runs)),
        raise_server_exceptions=False,
    ) as c:
        msg = _error(c.get("/runs/kpis/incidents"), 500)
    assert msg == "internal error (see the server log)"


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    want = {
        "/health",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/scorecard",
        "/runs/{run_id}/insights",
        "/runs/{run_id}/incidents",
        "/runs/{run_id}/kpis",
        "/runs/{run_id}/forecast",
        "/runs/{run_id}/customers/segments",
        "/runs/{run_id}/customers/actions",
    }
    assert want <= set(spec["paths"])
    assert (
        "Insights" in spec["components"]["schemas"] and "Episode" in spec["components"]["schemas"]
    )
    assert "post" not in spec["paths"]["/runs"]  # read-only by default
    assert client.get("/docs").status_code == 200


def test_post_runs_on_a_read_only_server_says_how_to_turn_analysis_on(client):
    """A server started without --allow-analysis answered POST /runs with a bare 405 "Method Not
    Allowed": nothing said analysis was off, nor how to turn it on."""
    r = client.post("/runs", json={"data": "small"})
    msg = _error(r, 405)
    assert msg.startswith("POST /runs is off: this server is read-only"), msg
    assert "shocklab serve --allow-analysis --data-root DIR" in msg, msg
    assert r.headers["allow"] == "GET, HEAD"  # HEAD: api/guards.py


# --- POST /runs (enabled by a flag) ---------------------------------------------------------------

@pytest.fixture()
def writer(roots, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    app = create_app(
        Settings(reports=reports, runs=roots.runs, allow_analysis=True, data_roots=[roots.data])
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c, reports


def test_post_runs_confines_paths(writer, roots, tmp_path):
    c, _ = writer
    assert "outside" in _error(c.post("/runs", json={"data": "../reports"}), 403)
    assert "outside" in _error(c.post("/runs", json={"data": "/etc"}), 403)
    assert "outside" in _error(c.post("/runs", json={"data": str(roots.base)}), 403)
    os.symlink(roots.reports, roots.data / "escape")
    try:
        assert "outside" in _error(c.post("/runs", json={"data": "escape/sim"}), 403)
    finally:
        (roots.data / "escape").unlink()
    assert "not found" in _error(c.post("/runs", json={"data": "nope"}), 404)
    assert "bogus" in _error(c.post("/runs", json={"data": "small", "bogus": 1}), 422)
    assert "unknown detector" in _error(
        c.post("/runs", json={"data": "small", "detectors": ["nope"]}), 422
    )
    assert "KEY=VALUE" in _error(c.post("/runs", json={"data": "small", "overrides": ["x"]}), 422)
    _error(c.post("/runs", json={"data": ""}), 422)


@pytest.mark.parametrize(("overrides", "want"), [
    (["insights.plots=false", "sensitivity=abc"],
     "overrides: 'sensitivity=abc': sensitivity: Input should be a valid number"),
    (["consensus.min_votes=0"],
     "overrides: 'consensus.min_votes=0': consensus.min_votes: Input should be greater than or "
     "equal to 1 (got 0)"),
    (["detectors.rolling_zscore.thresold=3"],
     "overrides: 'detectors.rolling_zscore.thresold=3': detectors.rolling_zscore.thresold: "
     "unknown key"),
    (["sensitivity=nan"], "overrides: 'sensitivity=nan': sensitivity: must be a finite number"),
    (["a..b=1"], "overrides: 'a..b': empty key segment"),
    (["base=none"], "overrides: 'base=none': base is read from a file before anything is layered"),
])
def test_post_runs_override_errors_name_the_override_not_the_server_config(writer, overrides,
                                                                          want):
    """The 422 said "/srv/…/config/analysis.yaml (with --set overrides): sensitivity: …": the
    server's filesystem path, and not which of the client's overrides was wrong."""
    from analytics.config import DEFAULT_CONFIG_PATH

    c, _ = writer
    msg = _error(c.post("/runs", json={"data": "small", "overrides": overrides}), 422)
    assert msg.startswith(want), msg
    assert "analysis.yaml" not in msg and str(DEFAULT_CONFIG_PATH.parent) not in msg, msg
    assert "--set" not in msg, msg


@pytest.mark.slow
def test_post_runs_analyses_in_the_background_one_at_a_time(writer, roots):
    c, reports = writer
    body = {
        "data": "small",
        "detectors": ["rolling_zscore", "oracle"],
        "overrides": [
            "customers.enabled=false",
            "insights.forecast.enabled=false",
            "insights.plots=false",
        ],
    }
    r = c.post("/runs", json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] == "running" and job["status_url"] == f"/runs/{job['run_id']}/status"
    assert job["run_id"].startswith("small-")
    assert "already running" in _error(c.post("/runs", json=body), 409)
    deadline = time.monotonic() + 300  # a bound on waiting, not a speed assertion
    while c.get(job["status_url"]).json()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    st = c.get(job["status_url"]).json()
    assert st["state"] == "succeeded", st
    assert st["exit_code"] == 0
    run = c.get(f"/runs/{job['run_id']}").json()
    assert run["has_scorecard"] and (reports / job["run_id"] / "insights.json").is_file()
    # same inputs -> same deterministic id as the CLI would give
    again = c.post("/runs", json=body)
    assert again.status_code == 202 and again.json()["run_id"] == job["run_id"]
    while c.get(job["status_url"]).json()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert c.get("/runs/nope/status").status_code == 404


def test_post_runs_validates_before_saying_busy(roots, tmp_path, monkeypatch):
    """A bad request (422) is a bad request whether or not an analysis of the same data is
    running; it was answered 409 (busy) while one ran, so the client retried a request that could
    never succeed. The running analysis here is a real process that waits for a file."""
    release = _holding_jobs(tmp_path, monkeypatch)
    reports = tmp_path / "reports"
    reports.mkdir()
    app = create_app(
        Settings(reports=reports, runs=roots.runs, allow_analysis=True, data_roots=[roots.data])
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        try:
            job = c.post("/runs", json={"data": "small"})
            assert job.status_code == 202, job.text
            assert c.get(job.json()["status_url"]).json()["state"] == "running"
            assert "unknown detector" in _error(
                c.post("/runs", json={"data": "small", "detectors": ["nope"]}), 422)
            assert "KEY=VALUE" in _error(
                c.post("/runs", json={"data": "small", "overrides": ["x"]}), 422)
            assert "thresold" in _error(c.post("/runs", json={
                "data": "small", "overrides": ["detectors.rolling_zscore.thresold=3"]}), 422)
            # a valid request on the busy data is still 409
            assert "already running" in _error(c.post("/runs", json={"data": "small"}), 409)
        finally:
            release.write_text("")
        _wait_while_running(c, job.json()["status_url"])
        assert c.get(job.json()["status_url"]).json()["state"] == "succeeded"


def test_post_runs_on_an_edited_data_set_names_what_an_api_user_can_do(roots, tmp_path):
    """The 422 for a data set edited after generation said "pass --no-verify to analyse it
    anyway": a command-line flag the request body has no field for (an extra field is 422)."""
    shutil.copytree(roots.data / "small", tmp_path / "data" / "edited")
    with (tmp_path / "data" / "edited" / "orders.csv").open("ab") as f:
        f.write(b"\n")
    app = create_app(Settings(reports=tmp_path / "reports", runs=roots.runs, allow_analysis=True,
                              data_roots=[tmp_path / "data"]))
    with TestClient(app, raise_server_exceptions=False) as c:
        msg = _error(c.post("/runs", json={"data": "edited"}), 422)
    assert msg.startswith("edited/orders.csv: sha256 does not match manifest.json"), msg
    assert msg.endswith("analyse it as it is from the command line (run_analysis.py --data DIR "
                        "--no-verify): POST /runs always verifies"), msg
    assert "pass --no-verify" not in msg and str(tmp_path) not in msg, msg


def test_post_runs_with_a_nul_byte_in_the_path_is_422(writer):
    """A NUL byte in "data" reached os.path.realpath: 500 'internal error'."""
    c, _ = writer
    assert "NUL" in _error(c.post("/runs", json={"data": "small\u0000"}), 422)
    assert "NUL" in _error(c.post("/runs", json={"data": "/tmp/\u0000x"}), 422)


def test_post_runs_with_a_name_too_long_for_the_file_system_is_422(writer):
    """A 5,000-character data path raised OSError (File name too long) in is_dir: 500."""
    c, _ = writer
    msg = _error(c.post("/runs", json={"data": "x" * 5000}), 422)
    assert "not usable here" in msg and "File name too long" in msg and len(msg) < 300


def test_post_runs_with_a_file_says_it_is_not_a_directory(writer, roots):
    """A file inside the data roots was answered "data directory … not found" (404)."""
    c, _ = writer
    f = roots.data / "export.csv"
    f.write_text("date,x\n2025-01-01,1\n")
    try:
        msg = _error(c.post("/runs", json={"data": "export.csv"}), 422)
    finally:
        f.unlink()
    assert "export.csv" in msg and "not a data directory" in msg and "not found" not in msg


def test_experiments_in_run_experiments_default_folder_are_listed(tmp_path, monkeypatch):
    """run_experiment.py writes to runs/experiments/<name> by default, while the API and the
    dashboard read experiments from runs/ (their default --runs): an experiment run as the README
    shows (`python run_experiment.py --config …`, then `shocklab serve`) was never listed."""
    from pathlib import Path

    import yaml
    from run_experiment import main as exp_main

    from shocklab.cli import run_cli

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "mine.yaml"
    cfg.write_text(yaml.safe_dump({
        "name": "mine", "scenario": str(root / "config/scenarios/small.yaml"),
        "analysis": str(root / "config/analysis.yaml"), "seeds": [1],
        "analysis_overrides": {"detectors.prophet_residual.enabled": False,
                               "detectors.isolation_forest.enabled": False},
        "metrics": ["consensus.recall"], "bootstrap": {"resamples": 100}}))
    assert run_cli(exp_main, ["--config", str(cfg), "--workers", "1", "--no-progress",
                              "--no-plots", "--quiet"]) == 0
    assert (tmp_path / "runs" / "experiments" / "mine" / "leaderboard.csv").is_file()
    app = create_app(Settings(reports=tmp_path / "reports", runs=tmp_path / "runs"))
    with TestClient(app, raise_server_exceptions=False) as c:
        assert c.get("/health").json()["experiments"] == 1
        assert [e["id"] for e in c.get("/experiments").json()] == ["mine"]
        assert c.get("/experiments/mine").json()["name"] == "mine"
        _error(c.get("/experiments/experiments"), 404)   # the folder itself is no experiment
        _error(c.get("/experiments/..%2Fexperiments"), 404)


def test_post_runs_with_an_empty_detector_list_is_422(writer):
    """``"detectors": []`` ran the default detectors (202), where ``--detectors ""`` on the command
    line is a bad flag: an empty selection is a client's mistake, not a request for the default
    (leave the field out for that)."""
    c, _ = writer
    msg = _error(c.post("/runs", json={"data": "small", "detectors": []}), 422)
    assert "detectors" in msg


def test_a_truncated_run_file_is_named_and_does_not_break_the_run_list(roots, tmp_path):
    """A run whose insights.json was cut short (a full disk, a copy in progress, an edit) made
    GET /runs a bare 500 'internal error' for every run, served the broken bytes as
    /runs/{id}/insights with 200, and answered its other routes with 'internal error'."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "sim")
    shutil.copytree(roots.reports / "sim", reports / "cut")
    for name in ("insights.json", "incidents.json"):
        f = reports / "cut" / name
        f.write_bytes(f.read_bytes()[:3000])
    app = create_app(Settings(reports=reports, runs=roots.runs))
    with TestClient(app, raise_server_exceptions=False) as c:
        listed = c.get("/runs")
        assert listed.status_code == 200, listed.text
        by_id = {r["id"]: r for r in listed.json()}
        assert set(by_id) == {"sim", "cut"}
        assert by_id["cut"]["unreadable"]["insights.json"].startswith("JSONDecodeError")
        assert by_id["sim"]["missing"] == [] and by_id["sim"]["unreadable"] == {}
        for path, name in (("/runs/cut/insights", "insights.json"),
                           ("/runs/cut/forecast", "insights.json"),
                           ("/runs/cut/incidents", "incidents.json")):
            msg = _error(c.get(path), 500)
            assert f"run 'cut': {name} cannot be read (JSONDecodeError" in msg, msg
        assert c.get("/runs/sim/insights").status_code == 200


def test_a_truncated_scorecard_is_a_500_naming_it_not_a_200(roots, tmp_path):
    """GET /runs/{id}/scorecard served a cut-short scorecard.json's bytes as 200
    application/json (a body no JSON reader accepts), where insights and incidents answer 500
    naming the file."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "cut")
    f = reports / "cut" / "scorecard.json"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        msg = _error(c.get("/runs/cut/scorecard"), 500)
    assert msg.startswith("run 'cut': scorecard.json cannot be read (JSONDecodeError"), msg


def test_an_unreadable_run_file_is_named_with_its_reason_not_as_missing(roots, tmp_path):
    """/runs and /runs/{id} listed a truncated run.json or scorecard.json under "missing" (beside
    "files": {"run.json": true}) and never said why; the README promises the reason."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "cut")
    for name in ("run.json", "scorecard.json", "customers/actions.csv"):
        f = reports / "cut" / name
        f.write_bytes(f.read_bytes()[:100])
    (reports / "cut" / "customers" / "clv.csv").unlink()
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        listed = c.get("/runs").json()[0]
        d = c.get("/runs/cut").json()
        _error(c.get("/runs/cut/customers/actions"), 500)  # reads actions.csv: now it is known
        after = c.get("/runs/cut").json()
    for body in (listed, d):
        assert body["missing"] == ["customers/clv.csv"], body["missing"]
        assert set(body["unreadable"]) == {"run.json", "scorecard.json"}, body["unreadable"]
        assert body["unreadable"]["run.json"].startswith("JSONDecodeError: ")
    assert d["files"]["run.json"] and not d["files"]["customers/clv.csv"]
    assert after["unreadable"]["customers/actions.csv"].startswith("ValueError: "), after


def test_a_csv_cut_short_is_unreadable_not_half_read(roots, tmp_path):
    """pandas reads a CSV cut mid-row without complaint: a truncated customers/actions.csv gave a
    200 page whose every action was null, a truncated kpis_daily.csv a short series."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "cut")
    for name in ("customers/actions.csv", "kpis_daily.csv"):
        f = reports / "cut" / name
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        for path, name in (("/runs/cut/customers/actions", "customers/actions.csv"),
                           ("/runs/cut/kpis?kpi=revenue", "kpis_daily.csv")):
            msg = _error(c.get(path), 500)
            assert msg.startswith(f"run 'cut': {name} cannot be read (ValueError: cut short"), msg


@pytest.mark.parametrize("name", ["gate.json", "leaderboard.csv", "results.parquet",
                                  "experiment.json"])
def test_an_unreadable_experiment_file_is_named_with_its_reason(roots, tmp_path, name):
    """A truncated experiment file was invisible: "missing": [] and, for gate.json,
    "gate_passed": null, which a CI job cannot tell from an experiment without a gate."""
    runs = tmp_path / "runs"
    shutil.copytree(roots.runs / "sweep", runs / "cut")
    f = runs / "cut" / name
    f.write_bytes(f.read_bytes()[:50])
    with TestClient(create_app(Settings(reports=roots.reports, runs=runs)),
                    raise_server_exceptions=False) as c:
        one = c.get("/experiments/cut").json()
        assert c.get("/experiments").json() == [one]
    assert one["missing"] == [] and list(one["unreadable"]) == [name], one
    why = one["unreadable"][name]
    assert why.split(":")[0] in ("JSONDecodeError", "ValueError", "ArrowInvalid"), why
    assert str(tmp_path) not in why  # pyarrow's message held the server's path


def test_a_run_file_of_the_wrong_shape_is_unreadable_not_an_internal_error(roots, tmp_path):
    """A run file that parses but is not what ShockLab wrote (hand-edited: insights.json a string,
    run.json's config a string, incidents a string) made GET /runs a bare 500 "internal error" for
    every run, and served the string as /runs/{id}/insights with 200."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "sim")
    shutil.copytree(roots.reports / "sim", reports / "edited")
    run = reports / "edited"
    doc = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**doc, "config": "notadict"}))
    (run / "insights.json").write_text('"str"')
    doc = json.loads((run / "incidents.json").read_text())
    (run / "incidents.json").write_text(json.dumps({**doc, "incidents": "x"}))
    doc = json.loads((run / "scorecard.json").read_text())
    (run / "scorecard.json").write_text(json.dumps({**doc, "headline": {"recall": "high"}}))
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        listed = c.get("/runs")
        assert listed.status_code == 200, listed.text
        by_id = {r["id"]: r for r in listed.json()}
        assert by_id["sim"]["unreadable"] == {}
        bad = by_id["edited"]["unreadable"]
        assert bad["run.json"] == "ValueError: 'config' is a string ('notadict'), not object", bad
        assert bad["insights.json"] == "ValueError: not a JSON object (a string)", bad
        assert bad["scorecard.json"].startswith("ValueError: 'headline.recall' is a string"), bad
        assert c.get("/runs/edited").status_code == 200
        for path, name in (("/runs/edited/insights", "insights.json"),
                           ("/runs/edited/forecast", "insights.json"),
                           ("/runs/edited/scorecard", "scorecard.json"),
                           ("/runs/edited/incidents", "incidents.json")):
            msg = _error(c.get(path), 500)
            assert f"run 'edited': {name} cannot be read (ValueError: " in msg, msg
        # its clusters and actions come from insights.json: named, never a 200 without them
        msg = _error(c.get("/runs/edited/customers/segments"), 500)
        assert msg.startswith("run 'edited': insights.json cannot be read (ValueError: "), msg


def test_incidents_of_a_daily_run_are_days_as_written(client, roots):
    """incidents.json holds days ("2025-02-11"), and /runs/{id}/kpis answers days, but
    /runs/{id}/incidents answered "2025-02-11T00:00:00" on every daily run: the response model's
    datetime | date read the day as a midnight timestamp."""
    for run in ("sim", "kpis"):
        want = _json(roots, run, "incidents.json")["incidents"]
        got = client.get(f"/runs/{run}/incidents", params={"limit": 1000}).json()["items"]
        assert len(want) > 0 and len(got) == len(want)
        assert [(i["start"], i["end"]) for i in got] == [(i["start"], i["end"]) for i in want]
        assert all(len(i["start"]) == 10 for i in got)


def test_incident_source_on_a_run_without_incidents_names_the_file(roots, tmp_path):
    """?source=<detector> or ?detector= on a run whose incidents.json is missing or cut short was
    a 422 "source: unknown 'rolling_zscore' (consensus, )" — the detector names come from that
    file — where the same request without the filter is the 404 / 500 naming the file."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "gone")
    shutil.copytree(roots.reports / "sim", reports / "cut")
    (reports / "gone" / "incidents.json").unlink()
    f = reports / "cut" / "incidents.json"
    f.write_bytes(f.read_bytes()[:3000])
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        for query in ("source=rolling_zscore", "detector=rolling_zscore"):
            msg = _error(c.get(f"/runs/gone/incidents?{query}"), 404)
            assert msg == "run 'gone' has no incidents.json", msg
            msg = _error(c.get(f"/runs/cut/incidents?{query}"), 500)
            assert msg.startswith("run 'cut': incidents.json cannot be read (JSONDecodeError"), msg


@pytest.mark.parametrize("override", [
    "customers.alerts.jsonl_path={out}/alerts.jsonl",
    "customers.alerts={{jsonl_path: {out}/alerts.jsonl}}",
    "customers.monitor.state_path={out}/state.sqlite",
    "customers.alerts.slack.url_env=HTTP_PROXY",
])
def test_post_runs_refuses_overrides_pointing_at_server_files(writer, tmp_path, override):
    """POST /runs {"overrides": ["customers.alerts.jsonl_path=/any/path"]} was 202: the analysis
    created the directory and appended the alerts there (state_path: a SQLite file), anywhere the
    server may write, outside its reports directory and data roots."""
    c, reports = writer
    out = tmp_path / "outside"
    item = override.format(out=out)
    msg = _error(c.post("/runs", json={"data": "small", "overrides": [item]}), 422)
    # an override over 80 characters (a long tmp path) is cut, as every value a 422 echoes
    assert msg.startswith(f"overrides: {shown(item)}: customers."), msg
    assert "cannot be set by a request" in msg, msg
    assert not out.exists() and list(reports.iterdir()) == []


def test_a_csv_without_a_column_the_readers_need_is_named(roots, tmp_path):
    """A run CSV lacking a column the readers select (an edited kpis_daily.csv without
    "dimension", a segments.csv without "segment") answered a bare 500 "internal error" (a
    KeyError) on /kpis, /incidents and /customers/actions."""
    import pandas as pd

    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    for name, col in (("kpis_daily.csv", "dimension"), ("customers/segments.csv", "segment")):
        f = reports / "edited" / name
        pd.read_csv(f).drop(columns=[col]).to_csv(f, index=False)
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        for path, name, col in (("/runs/edited/kpis?kpi=revenue", "kpis_daily.csv", "dimension"),
                                ("/runs/edited/incidents", "kpis_daily.csv", "dimension"),
                                ("/runs/edited/customers/actions", "customers/segments.csv",
                                 "segment")):
            r = c.get(path)
            if path.endswith("/incidents"):  # incidents need no KPI table: served
                assert r.status_code == 200, r.text
                continue
            msg = _error(r, 500)
            assert msg.startswith(f"run 'edited': {name} cannot be read (ValueError: no column "
                                  f"'{col}')"), msg
        bad = c.get("/runs/edited").json()["unreadable"]
    assert bad["kpis_daily.csv"] == "ValueError: no column 'dimension'", bad


def test_a_run_removed_while_listing_is_left_out_not_a_404(client, monkeypatch):
    """GET /runs listed the ids, then opened each: a run removed in between (rm -rf, or caught
    between the two renames of an atomic rewrite by a POST /runs or CLI rerun) made the whole
    list a 404 "run 'x' not found"; the same for /experiments."""
    from runstore import RunStore

    want_runs = [r["id"] for r in client.get("/runs").json()]
    want_exps = [e["id"] for e in client.get("/experiments").json()]
    runs, exps = RunStore.run_ids, RunStore.experiment_ids
    monkeypatch.setattr(RunStore, "run_ids", lambda self: ["vanished", *runs(self)])
    monkeypatch.setattr(RunStore, "experiment_ids", lambda self: [*exps(self), "vanished"])
    r = client.get("/runs")
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == want_runs
    r = client.get("/experiments")
    assert r.status_code == 200, r.text
    assert [x["id"] for x in r.json()] == want_exps


def test_post_runs_writes_under_a_relative_reports_root_where_the_server_reads(
        roots, tmp_path, monkeypatch):
    """`shocklab serve --allow-analysis` from any directory but the checkout: the analysis ran in
    the checkout (cwd) with --out reports/<id>, so the run landed in the checkout's reports/ and
    the job's run_url answered 404. The analysis here is a real process that writes --out."""
    from pathlib import Path

    import api.app as api_app
    from api.jobs import JobManager

    script = tmp_path / "write_out.py"
    script.write_text("import sys, pathlib\n"
                      "out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1])\n"
                      "out.mkdir(parents=True)\n"
                      "(out / 'argv.txt').write_text(str(out))\n")

    class Writing(JobManager):
        def __init__(self, reports):
            super().__init__(reports, script=script)

    monkeypatch.setattr(api_app, "JobManager", Writing)
    monkeypatch.chdir(tmp_path)
    app = create_app(Settings(reports=Path("reports"), runs=roots.runs, allow_analysis=True,
                              data_roots=[roots.data]))
    with TestClient(app, raise_server_exceptions=False) as c:
        job = c.post("/runs", json={"data": "small"}).json()
        _wait_while_running(c, job["status_url"])
        assert c.get(job["status_url"]).json()["state"] == "succeeded"
    assert (tmp_path / "reports" / job["run_id"] / "argv.txt").is_file()


def test_post_runs_on_a_copy_of_a_data_set_being_analysed_is_409(roots, tmp_path, monkeypatch):
    """A copy of a data set (same manifest) has the same run id: a second job on it started a
    second analysis into the same run directory, and replaced the first job's status."""
    import shutil

    release = _holding_jobs(tmp_path, monkeypatch)
    data = tmp_path / "data"
    shutil.copytree(roots.data / "small", data / "small")
    shutil.copytree(roots.data / "small", data / "copy")
    app = create_app(Settings(reports=tmp_path / "reports", runs=roots.runs, allow_analysis=True,
                              data_roots=[data]))
    with TestClient(app, raise_server_exceptions=False) as c:
        try:
            job = c.post("/runs", json={"data": "small"})
            assert job.status_code == 202, job.text
            msg = _error(c.post("/runs", json={"data": "copy"}), 409)
            assert f"/runs/{job.json()['run_id']}/status" in msg, msg
            # the path as the request named it, as the 409 and 422 echo it (was the server's
            # absolute path)
            assert job.json()["data"] == c.get(job.json()["status_url"]).json()["data"] == "small"
        finally:
            release.write_text("")
        _wait_while_running(c, job.json()["status_url"])
        assert c.post("/runs", json={"data": "copy"}).status_code == 202  # free again


def test_a_killed_analysis_job_says_it_was_killed(roots, tmp_path, monkeypatch, caplog):
    """An analysis killed by a signal (the out-of-memory killer) failed with the error "exit code
    -9", which tells an API client nothing."""
    import api.app as api_app
    from api.jobs import JobManager

    script = tmp_path / "killed.py"
    script.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")

    class Killed(JobManager):
        def __init__(self, reports):
            super().__init__(reports, script=script)

    monkeypatch.setattr(api_app, "JobManager", Killed)
    app = create_app(Settings(reports=tmp_path / "reports", runs=roots.runs, allow_analysis=True,
                              data_roots=[roots.data]))
    with TestClient(app, raise_server_exceptions=False) as c:
        job = c.post("/runs", json={"data": "small"}).json()
        _wait_while_running(c, job["status_url"])
        st = c.get(job["status_url"]).json()
    assert st["state"] == "failed" and st["exit_code"] == -9, st
    assert st["error"].startswith("the analysis was killed by SIGKILL"), st
    # and the server's log says so (only the in-memory status did, lost on a restart)
    assert any("failed (exit -9)" in r.getMessage() and "SIGKILL" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def _holding_jobs(tmp_path, monkeypatch):
    """Analysis jobs that are a real process waiting for a file; returns the file that ends
    them."""
    import api.app as api_app
    from api.jobs import JobManager

    release = tmp_path / "release"
    script = tmp_path / "hold.py"
    script.write_text(
        "import sys, time, pathlib\n"
        f"while not pathlib.Path({str(release)!r}).exists():\n    time.sleep(0.05)\n"
    )

    class Holding(JobManager):
        def __init__(self, reports):
            super().__init__(reports, script=script)

    monkeypatch.setattr(api_app, "JobManager", Holding)
    return release


def _wait_while_running(c, status_url: str) -> None:
    deadline = time.monotonic() + 60  # a bound on waiting, not a speed assertion
    while c.get(status_url).json()["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)


def test_monitor_alerts_name_the_sinks_they_still_wait_for(roots, tmp_path):
    """``monitor_alerts`` came from the run's JSONL record, which every issued alert reaches even
    when its Slack send failed: an API client read it as delivered. Each now carries
    ``undelivered_to`` (insights.json's, [] when every sink has it)."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "failed")
    run = reports / "failed"
    alerts = [{"alert_id": f"sim:At Risk:{sev}:2024-03-0{d}", "date": f"2024-03-0{d}",
               "segment": "At Risk", "severity": sev} for d, sev in ((1, "high"), (4, "critical"))]
    (run / "customers" / "alerts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in alerts))
    doc = json.loads((run / "insights.json").read_text())
    doc["customers"]["monitor"]["alerts"] = [
        {"alert_id": a["alert_id"], "undelivered_to": ["slack"] if d else []}
        for d, a in enumerate(alerts)]
    (run / "insights.json").write_text(json.dumps(doc))
    with TestClient(create_app(Settings(reports=reports, runs=roots.runs)),
                    raise_server_exceptions=False) as c:
        got = c.get("/runs/failed/customers/segments").json()["monitor_alerts"]
    assert [(a["alert_id"], a["undelivered_to"]) for a in got] == [
        (alerts[0]["alert_id"], []), (alerts[1]["alert_id"], ["slack"])]


def test_an_incident_read_as_days_or_timestamps_with_or_without_confirmed():
    """`confirmed` (2026-12-06) is read as start and end are: a day stays a day (pydantic would
    read "2025-02-11" as a datetime), a sub-daily stamp a timestamp; runs written before it
    have none and the API says null."""
    import datetime as dt

    from api.guards import stamped

    old = stamped({"start": "2025-02-11", "end": "2025-02-12"})
    assert old["start"] == dt.date(2025, 2, 11) and "confirmed" not in old
    new = stamped({"start": "2025-02-11T06:00:00", "end": "2025-02-11T09:00:00",
                   "confirmed": "2025-02-11T07:00:00"})
    assert new["confirmed"] == dt.datetime(2025, 2, 11, 7)
    assert stamped({"start": "2025-02-11", "end": "2025-02-12",
                    "confirmed": "2025-02-12"})["confirmed"] == dt.date(2025, 2, 12)
