"""What a careless or hostile client, or a hand-edited run directory, did to the API (session 37's
audit, tests/servefix.py's runs): each test failed on the code before it. HEAD, redirects and the
body limit are checked on a real `shocklab serve` process (uvicorn's HTTP layer), the rest
through the ASGI app."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import warnings
from urllib.parse import urlsplit

import pytest
from tests import localserver

with warnings.catch_warnings():  # starlette's notice that httpx2 will replace httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import Settings, create_app
from runstore import valid_id

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _client(reports, runs, **kw) -> TestClient:
    return TestClient(create_app(Settings(reports=reports, runs=runs, **kw)),
                      raise_server_exceptions=False)


def _error(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["status"] == status, body
    return body["error"]["message"]


def _copy(roots, tmp_path, name: str = "bad"):
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / name)
    return reports, reports / name


def _edit(path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def client(roots):
    with _client(roots.reports, roots.runs) as c:
        yield c


@pytest.fixture(scope="module")
def server(roots, tmp_path_factory):
    with localserver.shocklab_serve(roots.reports, roots.runs,
                                    tmp_path_factory.mktemp("hostile")) as url:
        yield url


def _raw(url: str, method: str, path: str, headers: dict | None = None, body: bytes = b""):
    """(status, headers, body) of one request as sent, Host header included."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host="Host" in (headers or {}))
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


# --- ids and parameters ---------------------------------------------------------------------------

def test_an_id_with_a_trailing_newline_is_invalid_not_looked_up(client):
    """The id pattern's ``$`` also matched before a final newline: ``sim%0A`` was a valid id
    (404 "run 'sim\\n' not found"), one a directory could hold and a download's filename carry."""
    assert not valid_id("sim\n") and valid_id("sim")
    for path in ("/runs/sim%0A", "/runs/sim%0A/insights", "/runs/sim%0A/status"):
        assert "invalid run id" in _error(client.get(path), 422), path


def test_an_experiment_id_too_long_for_the_file_system_is_422_not_500(client):
    """/experiments/{id} looked the name up before checking it: 300 characters were an OSError
    (File name too long), a 500 "internal error"."""
    msg = _error(client.get(f"/experiments/{'z' * 300}"), 422)
    assert msg.startswith("invalid experiment id 'zzz") and msg.endswith("under the runs root")


@pytest.mark.parametrize("value", ["0", "20250101", "1735689600", "2025-1-5", "2025-01-01T00:00"])
def test_a_day_parameter_is_a_day_not_unix_seconds(client, value):
    """pydantic's lax date took a number as Unix seconds: ``start=0`` filtered from 1970 (200),
    ``start=1735689600`` was 2025-01-01, ``start=20250101`` said "Datetimes provided to dates
    should have zero time"."""
    for path in ("/runs/sim/incidents", "/runs/sim/kpis?kpi=orders"):
        sep = "&" if "?" in path else "?"
        msg = _error(client.get(f"{path}{sep}start={value}"), 422)
        assert msg == f"query.start: expected a day as YYYY-MM-DD, got {value!r}", msg
    assert client.get("/runs/sim/incidents?start=2025-01-01").status_code == 200


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_min_risk_nan_is_said_to_be_no_finite_number(client, value):
    """``min_risk=nan`` answered "Input should be less than or equal to 1": NaN is not above 1."""
    msg = _error(client.get("/runs/sim/customers/actions", params={"min_risk": value}), 422)
    assert msg == "query.min_risk: Input should be a finite number", msg


def test_an_echoed_value_is_cut_not_sent_back_whole(client):
    """A 20 kB filter value or 5 kB id came back whole inside the 422's message."""
    for path in (f"/runs/sim/incidents?kpi={'x' * 20_000}", f"/runs/{'y' * 5000}",
                 f"/experiments/{'z' * 5000}"):
        r = client.get(path)
        assert r.status_code == 422 and len(r.json()["error"]["message"]) < 400, path[:40]
        assert "…" in r.json()["error"]["message"]


def test_a_405_names_the_methods_allowed(client):
    """RFC 9110: a 405 carries ``Allow``; the JSON error handler dropped the one Starlette set."""
    r = client.delete("/runs/sim")
    _error(r, 405)
    assert r.headers["allow"] == "GET, HEAD"


# --- the HTTP layer (a real server) ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/health", "/runs", "/runs/sim/insights",
                                  "/runs/sim/customers/actions?format=csv"])
def test_head_is_answered_like_get_without_a_body(server, path):
    """``curl -I`` and uptime probes got 405 on every route but /openapi.json."""
    status, head, body = _raw(server, "HEAD", path)
    g_status, g_head, g_body = _raw(server, "GET", path)
    assert (status, g_status) == (200, 200) and body == b""
    assert head["content-type"] == g_head["content-type"]
    assert head["content-length"] == g_head["content-length"] == str(len(g_body))


def test_a_redirect_stays_on_this_server_whatever_the_host_header(server):
    """``/runs/sim/`` redirected to ``http://<Host header>/runs/sim``: a request naming
    ``Host: evil.example`` was sent there (a cache in front would keep that for everyone)."""
    status, head, _ = _raw(server, "GET", "/runs/sim/?x=1", {"Host": "evil.example"})
    assert status == 307 and head["location"] == "/runs/sim?x=1"


def test_a_body_over_the_limit_is_413_before_it_is_read(roots, tmp_path):
    """A 50 MB JSON body to POST /runs was read and parsed (a 422 a second later); one without
    a length (chunked) too."""
    with _client(tmp_path, roots.runs, allow_analysis=True, data_roots=[roots.data]) as c:
        big = json.dumps({"data": "x" * (2 << 20)})
        r = c.post("/runs", content=big, headers={"content-type": "application/json"})
        assert "request body over 1048576 bytes" in _error(r, 413)
        r = c.post("/runs", content=iter([big.encode()[i:i + 65536]
                                          for i in range(0, len(big), 65536)]),
                   headers={"content-type": "application/json"})  # no Content-Length
        _error(r, 413)
        # a request of ordinary size is read as before
        assert "not found" in _error(c.post("/runs", json={"data": "nope"}), 404)


def test_a_request_naming_an_unknown_detector_is_told_the_field_not_the_cli_flag(roots, tmp_path):
    with _client(tmp_path, roots.runs, allow_analysis=True, data_roots=[roots.data]) as c:
        msg = _error(c.post("/runs", json={"data": "small", "detectors": ["nope"]}), 422)
    assert msg.startswith("detectors: unknown detector 'nope'"), msg


# --- the run store: links out of it, files that are not what ShockLab writes ----------------------

def test_a_file_linked_out_of_the_store_is_never_served(roots, tmp_path):
    """The root's check covered the run directory, not its files: ``scorecard.json`` linked to
    any JSON object on the server was served as the scorecard, ``customers/segments.csv``
    linked to any CSV as the action list's download."""
    reports, run = _copy(roots, tmp_path, "linked")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"token": "s3cret", "headline": null}')
    (outside / "people.csv").write_text("customer_id,segment,churn_risk\nS3CRET,Lost,0.5\n")
    for rel, target in (("scorecard.json", "secret.json"),
                        ("customers/segments.csv", "people.csv")):
        (run / rel).unlink()
        os.symlink(outside / target, run / rel)
    with _client(reports, roots.runs) as c:
        for path in ("/runs/linked/scorecard", "/runs/linked/customers/actions?format=csv"):
            r = c.get(path)
            assert "symbolic link to a file outside the reports/ root" in _error(r, 500)
            assert "s3cret" not in r.text.lower()
        summary = c.get("/runs").json()[0]
        assert "symbolic link" in summary["unreadable"]["scorecard.json"]
        assert summary["recall"] is None and "scorecard.json" not in summary["missing"]


def test_an_experiment_file_linked_out_of_the_store_is_not_read(roots, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(roots.runs / "sweep", runs / "sweep")
    (tmp_path / "gate.json").write_text('{"passed": true}')
    (runs / "sweep" / "gate.json").unlink()
    os.symlink(tmp_path / "gate.json", runs / "sweep" / "gate.json")
    with _client(roots.reports, runs) as c:
        exp = c.get("/experiments/sweep").json()
    assert exp["gate_passed"] is None and "symbolic link" in exp["unreadable"]["gate.json"]


def test_json_nested_thousands_deep_is_named_and_the_other_runs_stay_listed(roots, tmp_path):
    """json.loads' RecursionError was not caught: GET /runs was a 500 for every run."""
    reports, run = _copy(roots, tmp_path)
    shutil.copytree(roots.reports / "kpis", reports / "kpis")
    (run / "insights.json").write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with _client(reports, roots.runs) as c:
        listed = c.get("/runs")
        assert listed.status_code == 200, listed.text
        by_id = {r["id"]: r for r in listed.json()}
        assert set(by_id) == {"bad", "kpis"}
        assert by_id["bad"]["unreadable"]["insights.json"].startswith("RecursionError")
        assert "insights.json cannot be read (RecursionError" in _error(
            c.get("/runs/bad/insights"), 500)


def test_nan_in_a_served_json_file_is_named_not_served(roots, tmp_path):
    """Python reads NaN, so the shape check passed and the scorecard's bytes went out with
    ``NaN`` in them: a 200 no JSON parser accepts (ShockLab writes null)."""
    reports, run = _copy(roots, tmp_path)
    f = run / "scorecard.json"
    f.write_text(f.read_text().replace('"recall": ', '"recall": NaN, "was": ', 1))
    with _client(reports, roots.runs) as c:
        msg = _error(c.get("/runs/bad/scorecard"), 500)
    assert "scorecard.json cannot be read (ValueError: NaN is not JSON" in msg, msg


def _first_incident(key, value):
    def change(doc):
        if value is KeyError:
            del doc["incidents"][0][key]
        else:
            doc["incidents"][0][key] = value
    return change


@pytest.mark.parametrize("change, says", [
    (_first_incident("start", "garbage"), "Invalid isoformat string: 'garbage'"),
    (_first_incident("start", None), "Invalid isoformat string: 'None'"),
    (_first_incident("detectors", "oracle"), "detectors: Input should be a valid list"),
    (_first_incident("kpi", KeyError), "kpi: Field required"),
    (lambda doc: doc.__setitem__("incidents", [1, "x"]), "'incidents.0' is a number"),
    (lambda doc: doc["by_detector"].__setitem__("oracle", [1]), "'by_detector.oracle.0' is a"),
])
def test_an_edited_incident_is_a_500_naming_the_file_not_an_internal_error(
        roots, tmp_path, change, says):
    reports, run = _copy(roots, tmp_path)
    _edit(run / "incidents.json", change)
    with _client(reports, roots.runs) as c:
        msg = _error(c.get("/runs/bad/incidents", params={"limit": 1000}), 500)
    assert msg.startswith("run 'bad': incidents.json") and says in msg, msg


def test_an_edited_forecast_is_a_500_naming_it(roots, tmp_path):
    reports, run = _copy(roots, tmp_path)
    _edit(run / "insights.json", lambda d: d.__setitem__("forecast", {"kpi": "revenue"}))
    with _client(reports, roots.runs) as c:
        msg = _error(c.get("/runs/bad/forecast"), 500)
    assert msg.startswith("run 'bad': insights.json, forecast cannot be read (status: Field"), msg


@pytest.mark.parametrize("key, value, says", [
    ("segments", {"Lost": "many"}, "'customers.segments.Lost' is a string"),
    ("customers", "many", "'customers.customers' is a string"),
    ("clusters", [1], "'customers.clusters' is an array"),
])
def test_customer_counts_of_the_wrong_type_are_named(roots, tmp_path, key, value, says):
    """insights.json's customer counts, added up by the segments route: a string there was a
    TypeError (500 "internal error"). The file is now unreadable, named with the key, by the
    route too (it counted segments.csv instead, with the clusters and actions empty: session
    43's audit)."""
    reports, run = _copy(roots, tmp_path)
    _edit(run / "insights.json", lambda d: d["customers"].__setitem__(key, value))
    with _client(reports, roots.runs) as c:
        msg = _error(c.get("/runs/bad/customers/segments"), 500)
        why = c.get("/runs/bad").json()["unreadable"]["insights.json"]
    assert says in why, why
    assert msg.startswith(f"run 'bad': insights.json cannot be read ({why})"), msg


def test_a_customer_config_of_the_wrong_shape_is_named_not_an_internal_error(roots, tmp_path):
    """run.json's ``config.customers`` names the valid action and segment filters: a string
    there was an AttributeError (500 "internal error") on every action-list request."""
    reports, run = _copy(roots, tmp_path)
    _edit(run / "run.json", lambda d: d["config"]["customers"]["actions"].__setitem__(
        "rules", [1]))
    with _client(reports, roots.runs) as c:
        assert c.get("/runs/bad/customers/actions", params={"limit": 1}).status_code == 200
        why = c.get("/runs/bad").json()["unreadable"]["run.json"]
    assert "'config.customers.actions.rules.0' is a number" in why, why


@pytest.mark.parametrize("rel, route, text, says", [
    ("kpis_daily.csv", "/runs/bad/kpis?kpi=orders", ("orders", "abc"),
     "column 'orders' holds text ('abc', line 2)"),
    ("kpis_daily.csv", "/runs/bad/kpis?kpi=orders", ("date", "notaday"),
     "column 'date' holds 'notaday', not a date"),
    ("customers/segments.csv", "/runs/bad/customers/actions", ("churn_risk", "high"),
     "column 'churn_risk' holds text ('high', line 2)"),
])
def test_text_in_a_column_the_readers_compute_with_is_named(roots, tmp_path, rel, route, text,
                                                           says):
    import pandas as pd

    reports, run = _copy(roots, tmp_path)
    df = pd.read_csv(run / rel, dtype=str)
    col, value = text
    df.loc[0, col] = value
    df.to_csv(run / rel, index=False)
    with _client(reports, roots.runs) as c:
        msg = _error(c.get(route), 500)
    assert msg.startswith(f"run 'bad': {rel} cannot be read (ValueError: {says}"), msg


def test_a_slice_named_na_is_a_name_not_a_missing_value(roots, tmp_path):
    """Namibia's country code NA (a --transactions file's Country): the analysis writes it, the
    run store read it back as pandas' missing value and refused the file ("column 'segment' is
    empty"), so no KPI of the run was served."""
    import pandas as pd

    reports, run = _copy(roots, tmp_path)
    for name in ("kpis_daily.csv", "detections.csv"):
        df = pd.read_csv(run / name, keep_default_na=False, na_values=[""], dtype={"segment": str})
        df.loc[df["segment"] == "US", "segment"] = "NA"
        df.to_csv(run / name, index=False)
    with _client(reports, tmp_path / "runs") as c:
        r = c.get("/runs/bad/kpis", params={"kpi": "orders", "dimension": "country",
                                             "segment": "NA"})
        assert r.status_code == 200, r.text
        want = pd.read_csv(run / "kpis_daily.csv", keep_default_na=False, na_values=[""])
        want = want[(want["dimension"] == "country") & (want["segment"] == "NA")]
        assert len(r.json()["points"]) == len(want) > 0
        assert "kpis_daily.csv" not in c.get("/runs/bad").json().get("unreadable", {})
