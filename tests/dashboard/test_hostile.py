"""The dashboard over a messy run store (hostile-input audit, 2026-12-04): edited, foreign or
half-written files, a run.json naming a data directory anywhere on the machine, odd directory
names, bad links and roots. Each page shows a message naming what it cannot use and keeps working
for the other runs; none shows a Streamlit traceback. Every test here failed on the code before."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from tests.dashboard.apptest import NET, open_page, texts

from dashboard.charts import kpi_figure
from runstore import RunStore


def _copy(roots, tmp_path, monkeypatch, run: str = "sim", as_: str = "edited"):
    """A reports root holding a copy of ``run`` as ``as_`` and the untouched ``sim``."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / run, reports / as_)
    if as_ != "sim":
        shutil.copytree(roots.reports / "sim", reports / "sim")
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    return reports / as_


def _edit(path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _calendar(dirpath, rows: str):
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "marketing_calendar.csv").write_text("date,name,kind,scope\n" + rows)
    return dirpath


def _shaded_days(fig) -> set[str]:
    """The planned days a KPI chart shades (a Plotly figure, or AppTest's chart element)."""
    shapes = (json.loads(fig.proto.spec)["layout"].get("shapes", []) if hasattr(fig, "proto")
              else [s.to_plotly_json() for s in fig.layout.shapes])
    return {str(s["x0"])[:10] for s in shapes if s.get("fillcolor") == "rgba(127,127,127,0.18)"}


# --- the planned calendar: run.json's data path can name any directory ------------------------

def test_a_data_directory_outside_the_data_roots_is_not_read(page, roots, tmp_path,
                                                             monkeypatch):
    """run.json's ``data.path`` named /anywhere and the KPI explorer read its
    marketing_calendar.csv: any CSV with a date, name and kind column on the machine was shaded on
    the chart. It is read only inside SHOCKLAB_DATA's roots (default ``data``); outside them the
    planned days come from the scorecard's expected events and the caption says why."""
    elsewhere = _calendar(tmp_path / "elsewhere" / "secret", "2025-02-02,secret,holiday,all\n")
    run = _copy(roots, tmp_path, monkeypatch)
    _edit(run / "run.json", lambda d: d["data"].update(path=str(elsewhere)))
    edited = RunStore(tmp_path / "reports").run("edited")
    planned, why = edited.planned_days([roots.data])
    assert "2025-02-02" not in set(planned["date"])
    assert set(planned["date"]) == {"2025-03-31", "2025-04-01"}  # the scorecard's P01
    assert "outside the data roots" in why and str(elsewhere) in why
    assert "2025-02-02" not in _shaded_days(kpi_figure(edited, "revenue"))  # no roots: none read
    at = page("kpis", "edited")
    assert "is outside the data roots" in texts(at) and "SHOCKLAB_DATA" in texts(at)
    assert _shaded_days(at.get("plotly_chart")[0]) == {"2025-03-31", "2025-04-01"}
    # named as a data root, it is read
    monkeypatch.setenv("SHOCKLAB_DATA", str(tmp_path / "elsewhere"))
    assert edited.planned_days([tmp_path / "elsewhere"])[1] is None
    at = page("kpis", "edited")
    assert _shaded_days(at.get("plotly_chart")[0]) == {"2025-02-02"}
    assert "outside the data roots" not in texts(at)


def test_the_data_directorys_calendar_is_read_inside_a_data_root(roots):
    planned, why = RunStore(roots.reports).run("sim").planned_days([roots.data])
    assert why is None and set(planned["name"]) == {"spring_campaign"}


def test_a_calendar_linked_out_of_the_run_directory_is_not_read(roots, tmp_path, monkeypatch):
    """A --kpis --calendar run's own marketing_calendar.csv was read with pandas directly, through
    a symbolic link to any file: the one run file the store's link check did not cover."""
    run = _copy(roots, tmp_path, monkeypatch, run="kpis", as_="linked")
    outside = _calendar(tmp_path / "outside", "2025-02-02,secret,holiday,all\n")
    (run / "marketing_calendar.csv").symlink_to(outside / "marketing_calendar.csv")
    planned, why = RunStore(tmp_path / "reports").run("linked").planned_days()
    assert "secret" not in set(planned["name"])
    assert "not read: a symbolic link to a file outside the reports/ root" in why


def test_a_calendar_with_a_bad_date_is_named_not_a_traceback(page, roots, tmp_path, monkeypatch):
    """A data directory calendar holding "not-a-day" (or an empty date) was a TypeError / ValueError
    traceback on the KPI explorer."""
    data = _calendar(tmp_path / "data" / "d", "not-a-day,x,holiday,all\n,y,holiday,all\n")
    run = _copy(roots, tmp_path, monkeypatch)
    _edit(run / "run.json", lambda d: d["data"].update(path=str(data)))
    monkeypatch.setenv("SHOCKLAB_DATA", str(tmp_path / "data"))
    at = page("kpis", "edited")
    assert "`marketing_calendar.csv` cannot be read (ValueError: column 'date' holds 'not-a-day'" \
        in texts(at)
    assert at.get("plotly_chart"), "the chart is drawn"


# --- edited run and experiment files ----------------------------------------------------------

def _first_episode(**fields):
    def change(doc):
        doc["episodes"][0].update(fields)
    return change


def _drivers(doc):
    doc["episodes"][0]["drivers"] = {"drivers": [{"dimension": "channel", "value": "email",
                                                  "change": "abc"}]}


EDITS = {
    "episode not an object": ("insights.json", lambda d: d["episodes"].insert(0, "x"),
                              "episodes", "'episodes.0' is a string"),
    "signature a string": ("insights.json", _first_episode(signature="s"), "episodes",
                           "'episodes.0.signature' is a string"),
    "kpi_changes a list": ("insights.json", _first_episode(kpi_changes=[1]), "episodes",
                           "'episodes.0.kpi_changes' is an array"),
    "driver change text": ("insights.json", _drivers, "episodes",
                           "'episodes.0.drivers.drivers.0.change' is a string"),
    "headline mode a list": ("scorecard.json", lambda d: d["headline"].update(mode=["strict"]),
                             "overview", "'headline.mode' is an array"),
    "detector scores a string": (
        "scorecard.json", lambda d: d["strict"].update(detectors={"rolling_zscore": "x"}),
        "compare", "'strict.detectors.rolling_zscore' is a string"),
    "expected event on no date": (
        "scorecard.json", lambda d: d["event_detail"].append(
            {"event_id": "P9", "type": "holiday", "start": "soon", "end": "later",
             "expected": True}), "kpis", "'event_detail.6.start' is a string ('soon'), not day"),
    "a detector's recall a string": (
        "scorecard.json", lambda d: d["strict"]["detectors"]["rolling_zscore"].update(recall="1"),
        "compare", "'strict.detectors.rolling_zscore.recall' is a string"),
    "clv summary a string": ("insights.json", lambda d: d["customers"].update(clv="n/a"),
                             "customers", "'customers.clv' is a string"),
    "detector status a string": ("run.json", lambda d: d.update(detector_status={"a": "ok"}),
                                 "overview", "'detector_status.a' is a string"),
    "data path a number": ("run.json", lambda d: d["data"].update(path=5), "kpis",
                           "'data.path' is a number"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_an_edited_run_file_is_named_on_the_page_not_a_traceback(page, roots, tmp_path,
                                                                   monkeypatch, case):
    """Each of these edits was a Streamlit traceback (AttributeError, TypeError, KeyError,
    ValueError) in place of the page — on the Compare page for every run it was compared with.
    The file is unreadable, named with the key, as for the API; the other run is unaffected."""
    rel, change, name, says = EDITS[case]
    run = _copy(roots, tmp_path, monkeypatch)
    _edit(run / rel, change)
    at = page(name, "edited")
    shown = texts(at).replace(f"`{rel}` — cannot", f"`{rel}` cannot")  # Compare: one line
    assert f"`{rel}` cannot be read (ValueError: {says}" in shown, shown
    assert not page(name, "sim").warning or name == "compare"


def test_edited_incidents_are_named_on_the_kpi_explorer_not_a_traceback(page, roots, tmp_path,
                                                                        monkeypatch):
    """Incidents whose detectors were not a list were a TypeError traceback on the KPI explorer;
    one whose start is no date was drawn at a made-up place. Those the chart cannot draw are
    left out and named (the API answers 500 naming the field for them: test_api_hostile)."""
    run = _copy(roots, tmp_path, monkeypatch)

    def change(doc):
        for i in doc["incidents"]:
            if (i["kpi"], i["dimension"]) == ("revenue", "overall"):
                i["detectors"], i["start"] = 5, "garbage"
    _edit(run / "incidents.json", change)
    n = sum(1 for i in json.loads((run / "incidents.json").read_text())["incidents"]
            if (i["kpi"], i["dimension"]) == ("revenue", "overall"))
    warned = " ".join(w.value for w in page("kpis", "edited").warning)
    assert f"{n} incident(s) of `incidents.json` not drawn nor listed" in warned, warned
    assert n > 0


@pytest.mark.parametrize("rel, column, value, name, says", [
    ("customers/cohort_retention.csv", "1", "x", "customers",
     "column '1' holds text ('x', line 2), not a number"),
    ("customers/monitor_series.csv", "share", "lots", "customers",
     "column 'share' holds text ('lots', line 2)"),
    ("kpis_daily.csv", "dimension", "", "kpis", "column 'dimension' is empty on line 2"),
])
def test_text_or_gaps_in_a_run_csv_are_named(page, roots, tmp_path, monkeypatch, rel, column,
                                             value, name, says):
    """Text in a cohort's retention was a ValueError traceback on the Customers page; a
    kpis_daily.csv row without its dimension an AttributeError traceback on the KPI explorer."""
    run = _copy(roots, tmp_path, monkeypatch)
    df = pd.read_csv(run / rel, dtype=str, keep_default_na=False)
    df.loc[0, column] = value
    df.to_csv(run / rel, index=False)
    assert says in texts(page(name, "edited"))


def _experiment(roots, tmp_path, monkeypatch, name="sweep"):
    runs = tmp_path / "runs"
    shutil.copytree(roots.runs / name, runs / "edited")
    monkeypatch.setenv("SHOCKLAB_RUNS", str(runs))
    return runs / "edited"


def test_a_results_file_without_cell_status_is_named(page, roots, tmp_path, monkeypatch):
    """A results.parquet without a ``status`` column (another program's file) was a KeyError
    traceback on the Experiments page (and a 500 on GET /experiments)."""
    exp = _experiment(roots, tmp_path, monkeypatch)
    pd.DataFrame({"x": [1]}).to_parquet(exp / "results.parquet")
    assert "`results.parquet` — cannot be read (ValueError: no column 'status')" in texts(
        page("experiments", exp="edited"))
    assert RunStore(tmp_path, tmp_path / "runs").experiment("edited").summary()["cells"] is None


def test_a_gate_verdict_of_the_wrong_shape_is_unknown_not_passed(page, roots, tmp_path,
                                                                 monkeypatch):
    """gate.json ``{"passed": "no", "checks": "abc"}`` was a DataFrame ValueError traceback; with
    valid checks, ``"passed": "no"`` showed "Gate PASSED"."""
    exp = _experiment(roots, tmp_path, monkeypatch)
    _edit(exp / "gate.json", lambda d: d.update(passed="no"))
    at = page("experiments", exp="edited")
    assert not at.success and "Gate verdict unknown" in at.error[0].value
    assert "'passed' is a string ('no'), not boolean" in at.error[0].value
    _edit(exp / "gate.json", lambda d: d.update(passed=False, checks="abc"))
    assert "'checks' is a string" in page("experiments", exp="edited").error[0].value


def test_text_in_a_leaderboard_metric_is_named(page, roots, tmp_path, monkeypatch):
    """A leaderboard mean holding text was a TypeError traceback (the interval bars)."""
    exp = _experiment(roots, tmp_path, monkeypatch)
    lb = pd.read_csv(exp / "leaderboard.csv", dtype=str)
    lb.loc[0, "consensus.recall.mean"] = "high"
    lb.to_csv(exp / "leaderboard.csv", index=False)
    assert "column 'consensus.recall.mean' holds text ('high', line 2)" in texts(
        page("experiments", exp="edited"))


def test_a_detectability_file_without_durations_is_drawn(page, roots, tmp_path, monkeypatch):
    """detectability.csv without its ``duration_days`` column (optional for the readers) was a
    KeyError traceback on the Experiments page."""
    exp = _experiment(roots, tmp_path, monkeypatch, name="detect")
    curve = pd.read_csv(exp / "detectability.csv").drop(columns=["duration_days"])
    curve.to_csv(exp / "detectability.csv", index=False)
    at = page("experiments", exp="edited")
    assert any(json.loads(c.proto.spec)["layout"]["title"]["text"] == "detectability"
               for c in at.get("plotly_chart"))


def test_two_episodes_of_one_id_both_show_their_drivers(page, roots, tmp_path, monkeypatch):
    """The drivers chart's key was the episode id: two cards of one id (an edited or merged file)
    were a duplicate-key error in place of the page."""
    run = _copy(roots, tmp_path, monkeypatch)
    drivers = {"scope": "channel", "drivers": [
        {"dimension": "channel", "value": "email", "change": -5.0, "actual": 1.0,
         "expected": 6.0, "share_of_change": 1.0}]}

    def change(doc):
        for e in doc["episodes"][:2]:
            e.update(episode_id="EP-same", drivers=drivers)
    _edit(run / "insights.json", change)
    charts = [json.loads(c.proto.spec) for c in page("episodes", "edited").get("plotly_chart")]
    titles = [c["layout"]["title"]["text"] for c in charts]
    assert sum(t == "drivers of " + t.split("drivers of ")[-1] and t.endswith("(channel)")
               for t in titles) >= 2, titles


# --- links, names and roots -------------------------------------------------------------------

def test_a_long_or_odd_run_link_is_cut_when_echoed(page):
    """``?run=`` of 5,000 characters was echoed whole in the warning, and a backtick in it ended
    the code span (markdown from the link rendered)."""
    at = page("overview", "x" * 5000 + "`*bold*`")
    warned = at.warning[0].value
    assert len(warned) < 300 and warned.count("`") == 6, warned  # three code spans
    at = page("experiments", exp="`" + "e" * 500)
    assert max(len(w.value) for w in at.warning) < 300


def test_directories_that_are_not_listed_are_named(page, roots, tmp_path, monkeypatch):
    """A run directory named with a space or an accent ("run 2", "résumé") was silently left out of
    the list (ids are plain names): the sidebar names them and says why."""
    reports = tmp_path / "reports"
    for name in ("sim", "résumé", "with space"):
        shutil.copytree(roots.reports / "sim", reports / name)
    (reports / "not a run").mkdir()
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("overview", "sim")
    note = [c.value for c in at.sidebar.caption if c.value.startswith("Not listed")]
    assert note and "`résumé`" in note[0] and "`with space`" in note[0], note
    assert "not a run" not in note[0]
    assert at.sidebar.selectbox[0].options == ["sim"]


def test_a_root_that_is_a_file_or_missing_says_so(page, tmp_path, monkeypatch):
    """SHOCKLAB_REPORTS / SHOCKLAB_RUNS naming a file said "No run directories under <file>",
    as for an empty directory."""
    (tmp_path / "afile").write_text("x")
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(tmp_path / "afile"))
    monkeypatch.setenv("SHOCKLAB_RUNS", str(tmp_path / "afile"))
    assert "(SHOCKLAB_REPORTS or --reports) is not a directory" in page("overview").info[0].value
    assert "(SHOCKLAB_RUNS or --runs) is not a directory" in page("experiments").info[0].value


def test_a_page_that_raises_shows_one_error_and_keeps_the_sidebar(roots, monkeypatch):
    """The last line of defence: whatever slips past the store's checks is one error naming the
    page and run (the traceback goes to the server log), and the run can still be changed."""
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(roots.reports))
    monkeypatch.setenv("SHOCKLAB_RUNS", str(roots.runs))
    from dashboard.views import overview

    def boom(ctx):
        raise KeyError("surprise")
    monkeypatch.setattr(overview, "render", boom)
    at = open_page("overview", "kpis", net_ok=True)
    assert at.error[0].value.startswith(
        "Page Overview for run `kpis` cannot be drawn (KeyError: 'surprise').")
    assert NET in at.error[0].value
    at.sidebar.radio[0].set_value("episodes").run()
    assert not at.exception and not at.error and at.sidebar.selectbox[0].value == "kpis"
