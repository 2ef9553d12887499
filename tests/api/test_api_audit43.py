"""Session 43's API audit replayed on a real ``shocklab serve --allow-analysis`` process over
copies of tests/servefix.py's runs, each damaged or edited the way the audit found it (each test
failed on the code before it): customer ids that lost their leading zeros, a detections.csv cut
short, the segments route over cut files, what a KPI series needs, and POST /runs' echoes and
body type. The background job's own answers (status, error) are checked through the ASGI app,
where the job can be started on data edited after its 202."""

from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
import warnings

import pandas as pd
import pytest
from tests import localserver
from tests.servefix import ZERO, zero_padded


def _cut(path, keep: float = 0.5) -> None:
    """The file cut short mid-line, as a full disk leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)].rstrip(b"\n") + b"x")


@pytest.fixture(scope="module")
def reports(roots, tmp_path_factory):
    base = tmp_path_factory.mktemp("audit43")
    rep = base / "reports"
    zero_padded(roots.reports / "tx", rep / "zeros")
    shutil.copytree(roots.reports / "sim", rep / "sim")
    # a products-watched run's price incident, its detections.csv cut short
    cut = rep / "cutdet"
    shutil.copytree(roots.reports / "sim", cut)
    doc = json.loads((cut / "incidents.json").read_text())
    doc["incidents"][0].update(kpi="price", dimension="category", segment="books")
    (cut / "incidents.json").write_text(json.dumps(doc))
    _cut(cut / "detections.csv")
    for name, damage in (("bothcut", ("insights.json", "customers/segments.csv")),
                         ("inscut", ("insights.json",))):
        shutil.copytree(roots.reports / "sim", rep / name)
        for rel in damage:
            _cut(rep / name / rel)
    # insights.json without segment counts: the route counts segments.csv, a link out of the root
    linked = rep / "linked"
    shutil.copytree(roots.reports / "sim", linked)
    doc = json.loads((linked / "insights.json").read_text())
    doc["customers"]["segments"] = None
    (linked / "insights.json").write_text(json.dumps(doc))
    (base / "passwd.csv").write_text("customer_id,segment\nroot,x\n")
    (linked / "customers" / "segments.csv").unlink()
    os.symlink(base / "passwd.csv", linked / "customers" / "segments.csv")
    alerts = rep / "alertscut"
    shutil.copytree(roots.reports / "sim", alerts)
    (alerts / "customers" / "alerts.jsonl").write_text('{"date": "2025-05-01", "segm')
    return rep


@pytest.fixture(scope="module")
def server(reports, roots, tmp_path_factory):
    with localserver.shocklab_serve(reports, roots.runs, tmp_path_factory.mktemp("srv43"),
                                    args=("--allow-analysis", "--data-root",
                                          str(roots.data))) as url:
        yield url


def _call(url: str, method: str = "GET", body: bytes | None = None,
          headers: dict | None = None) -> tuple[int, str, str]:
    """(status, content type, body text) of one request."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback only
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def _get(server: str, path: str) -> tuple[int, dict]:
    code, _, text = _call(server + path)
    return code, json.loads(text)


def _error(server: str, path: str, status: int, **kw) -> str:
    code, _, text = _call(server + path, **kw) if kw else _call(server + path)
    assert code == status, (code, text[:500])
    body = json.loads(text)
    assert set(body) == {"error"} and body["error"]["status"] == status, body
    return body["error"]["message"]


def _post(server: str, doc: dict, status: int) -> str:
    return _error(server, "/runs", status, method="POST", body=json.dumps(doc).encode(),
                  headers={"Content-Type": "application/json"})


# --- 1. customer ids as read ------------------------------------------------------------------

def test_customer_ids_keep_their_leading_zeros_in_json_and_csv(server, reports):
    want = pd.read_csv(reports / "zeros" / "customers" / "segments.csv", dtype=str)["customer_id"]
    assert want.str.startswith(ZERO).all()
    code, page = _get(server, "/runs/zeros/customers/actions?limit=1000")
    assert code == 200, page
    got = [i["customer_id"] for i in page["items"]]
    assert page["total"] == len(want) and got and set(got) <= set(want), got[:3]
    code, kind, text = _call(server + "/runs/zeros/customers/actions?format=csv")
    assert code == 200 and kind.startswith("text/csv")
    ids = [line.split(",", 1)[0] for line in text.splitlines()[1:]]
    assert sorted(ids) == sorted(want), ids[:3]


# --- 2. a detections.csv cut short ------------------------------------------------------------

def test_incidents_of_a_kpi_from_an_unreadable_detections_csv_are_served(server):
    """incidents.json holds a price incident; the KPI names came from kpis_daily.csv alone
    when detections.csv could not be read: 422 "unknown 'price'"."""
    code, page = _get(server, "/runs/cutdet/incidents?kpi=price")
    assert code == 200, page
    assert [i["kpi"] for i in page["items"]] == ["price"]
    assert "price" in _error(server, "/runs/cutdet/incidents?kpi=pirce", 422)


@pytest.mark.parametrize("query", ["kpi=price&dimension=category&segment=books",
                                   "kpi=orders&dimension=product&segment=6"])
def test_a_series_that_needs_an_unreadable_detections_csv_is_a_500_naming_it(server, query):
    msg = _error(server, f"/runs/cutdet/kpis?{query}", 500)
    assert msg.startswith("run 'cutdet': detections.csv cannot be read (ValueError: cut short"), msg


def test_a_series_kpis_daily_holds_is_served_without_detections_csv(server):
    code, body = _get(server, "/runs/cutdet/kpis?kpi=orders&dimension=channel&segment=email")
    assert code == 200 and len(body["points"]) > 100, body


# --- 4. the segments route over files cut short -----------------------------------------------

@pytest.mark.parametrize("run, says", [
    ("bothcut", "insights.json cannot be read (JSONDecodeError"),
    ("inscut", "insights.json cannot be read (JSONDecodeError"),
    ("linked", "customers/segments.csv cannot be read (not read: a symbolic link to a file "
               "outside the reports/ root)"),
    ("alertscut", "customers/alerts.jsonl cannot be read (JSONDecodeError"),
])
def test_the_segments_route_names_a_file_it_cannot_read(server, run, says):
    """Both files cut (or segments.csv linked out): "internal error" (a TypeError); insights.json
    alone cut: 200 with the clusters and actions empty; alerts.jsonl cut: no alerts."""
    msg = _error(server, f"/runs/{run}/customers/segments", 500)
    assert msg.startswith(f"run {run!r}: {says}"), msg
    assert "passwd" not in msg and "root,x" not in msg


# --- 8. what a KPI series needs ---------------------------------------------------------------

def test_the_kpis_link_without_a_kpi_names_the_runs_kpis(server):
    code, run = _get(server, "/runs/sim")
    assert code == 200
    msg = _error(server, run["links"]["kpis"], 422)
    assert msg.startswith("query.kpi: Field required (known: sessions, orders, revenue"), msg


def test_a_kpi_on_a_dimension_that_does_not_measure_it_is_422_naming_those_that_do(server):
    """sessions per category answered 200 with every point null."""
    for query in ("&segment=fashion", ""):   # without a segment (the README's example) the
        msg = _error(server, f"/runs/sim/kpis?kpi=sessions&dimension=category{query}", 422)
        assert msg == "dimension: sessions is not measured per category (measured on: " \
                      "overall, channel, country)", msg   # 422 said "'all' is not a segment"
    code, body = _get(server, "/runs/sim/kpis?kpi=orders&dimension=category&segment=fashion")
    assert code == 200 and all(p["value"] is not None for p in body["points"])


# --- 5, 6. POST /runs: what it echoes, and a body that is not sent as JSON -------------------

@pytest.mark.parametrize("doc, status, says", [
    ({"data": "a/" * 1000}, 404, "data directory 'a/a/"),
    ({"data": "/etc/" + "a/" * 1000}, 403, "data path '/etc/a/"),
    ({"data": "small", "detectors": ["d" * 3000]}, 422, "detectors: unknown detector 'ddd"),
    ({"data": "small", "overrides": ["sensitivity=" + "9x" * 1500]}, 422,
     "overrides: 'sensitivity=9x9x"),
    ({"data": "small", "overrides": ["detectors." + "y" * 3000 + "=1"]}, 422,
     "overrides: 'detectors.yyy"),
])
def test_a_long_value_in_a_request_is_echoed_cut(server, doc, status, says):
    """A 2 kB path came back in a 2.1 kB message, a 3,000-character override twice (6.1 kB)."""
    msg = _post(server, doc, status)
    assert msg.startswith(says) and "…" in msg, msg[:200]
    assert len(msg) < 500, (len(msg), msg[:200])


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"}])
def test_a_json_body_without_its_content_type_is_415_saying_so(server, headers):
    """It answered 422 "body: Input should be a valid dictionary or object…"."""
    msg = _error(server, "/runs", 415, method="POST", body=b'{"data": "small"}', headers=headers)
    assert "Content-Type: application/json" in msg, msg


@pytest.mark.parametrize("body, says", [
    (b'{"data": "sm\xe9ll"}',
     "the request body is not JSON text: the byte at offset 12 is not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_an_unreadable_json_body_is_400_saying_why(server, body, says):
    """A body that is not UTF-8, or JSON nested 100,000 deep, was 400 "There was an error parsing
    the body" (session 44's hostile audit)."""
    msg = _error(server, "/runs", 400, method="POST", body=body,
                 headers={"Content-Type": "application/json"})
    assert says in msg, msg


# --- 7. the background job's answers (in-process: the data is edited after the 202) ------------

def test_a_job_on_data_edited_after_its_202_tells_an_api_user_what_to_do(roots, tmp_path,
                                                                         monkeypatch):
    """The job's error was the command line's "pass --no-verify" (no request can send it) with
    the server's absolute data path, and the 202 and status gave that path while 409/422 echo
    it as sent."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    import api.app as api_app
    from api.app import Settings, create_app
    from api.jobs import JobManager

    class EditedAfterThe202(JobManager):   # the data set is edited once the request is checked
        def start(self, data, *args, **kwargs):
            with (data / "orders.csv").open("ab") as f:
                f.write(b"\n")
            return super().start(data, *args, **kwargs)

    monkeypatch.setattr(api_app, "JobManager", EditedAfterThe202)
    data = tmp_path / "data"
    shutil.copytree(roots.data / "small", data / "edited")
    app = create_app(Settings(reports=tmp_path / "reports", runs=roots.runs, allow_analysis=True,
                              data_roots=[data]))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/runs", json={"data": "edited"})
        assert r.status_code == 202 and r.json()["data"] == "edited", r.text
        rid = r.json()["run_id"]
        for t in threading.enumerate():
            if t.name == f"analysis-{rid}":
                t.join(300)
        st = c.get(f"/runs/{rid}/status").json()
    assert st["state"] == "failed" and st["exit_code"] == 2 and st["data"] == "edited", st
    assert "edited/orders.csv: sha256 does not match manifest.json" in st["error"], st
    assert st["error"].endswith("analyse it as it is from the command line (run_analysis.py "
                                "--data DIR --no-verify): POST /runs always verifies"), st
    assert "pass --no-verify" not in st["error"] and str(tmp_path) not in st["error"], st


@pytest.mark.parametrize("squatter", ["folder", "file", "data"])
def test_a_run_folder_the_server_did_not_write_is_409_before_the_job(roots, tmp_path, squatter):
    """Session 44's hostile audit (item 14): the request was 202, then the job failed with the
    command line's "pass --force" and the server's absolute path, which no API user can act on.
    The folder is left as it was; an earlier run there is replaced as before."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from api.app import Settings, create_app
    from api.jobs import JobManager

    data = tmp_path / "data"
    shutil.copytree(roots.data / "small", data / "small")
    reports = tmp_path / "reports"
    settings = Settings(reports=reports, runs=roots.runs, allow_analysis=True,
                        data_roots=[data])
    app = create_app(settings)
    rid = JobManager(reports).plan(data / "small", None, [])
    target = reports / rid
    reports.mkdir()
    if squatter == "folder":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif squatter == "file":
        target.write_text("mine")
    else:   # a data set is not a run either
        shutil.copytree(roots.data / "small", target)
    before = sorted(p.name for p in reports.rglob("*"))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/runs", json={"data": "small"})
    assert r.status_code == 409, r.text
    msg = r.json()["error"]["message"]
    assert msg.startswith(f"run {rid}: the server's reports directory holds something") and (
        "--force" not in msg and str(tmp_path) not in msg), msg
    assert sorted(p.name for p in reports.rglob("*")) == before
