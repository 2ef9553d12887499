"""Every dashboard page under streamlit.testing (AppTest) for a simulated run, a --kpis run, a
--transactions run and the experiments (tests/servefix.py builds them), plus the figures."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from tests.dashboard.apptest import texts as _texts

from dashboard.charts import detectability_figure, kpi_figure, leaderboard_figure
from dashboard.widgets import fmt
from runstore import RunStore
from runstore.store import compare_events

PAGES = ["overview", "kpis", "episodes", "customers", "experiments", "compare"]


@pytest.mark.parametrize("run", ["sim", "kpis", "tx"])
@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_for_every_kind_of_run(page, run, name):
    at = page(name, run)
    assert at.title, "each page has a title"
    assert at.sidebar.radio[0].value == name
    if name != "experiments":
        assert at.sidebar.selectbox[0].value == run


def test_overview_shows_the_scorecard(page, roots):
    sc = json.loads((roots.reports / "sim-k1" / "scorecard.json").read_text())
    at = page("overview", "sim-k1")
    metrics = {m.label: m.value for m in at.metric}
    cons = sc["strict"]["consensus"]
    assert metrics["Consensus recall"] == fmt(cons["recall"]) and metrics["Precision"] == fmt(
        cons["precision"]
    )
    assert metrics["F1"] == fmt(cons["f1"])
    # one metric each (they read "5 / 1" under one label the browser cut at 960 px)
    assert (metrics["Unexpected events"], metrics["Expected events"]) == (
        str(sc["events"]["unexpected"]), str(sc["events"]["expected"]))
    board = at.dataframe[0].value
    assert set(sc["strict"]["detectors"]) <= set(board["entity"])
    assert (
        board.loc[board["entity"] == "CONSENSUS (configured)", "incidents"].item()
        == cons["incidents"]
    )
    assert f"{cons['incidents']} incidents, {cons['fp']} false alarms" in _texts(
        at
    )  # the sidebar card every page shows
    assert "Oracle line" in _texts(at)
    oe = sc["strict"]["oracle_equal_fp"]   # the bound's recall without a false positive beside it
    assert f"at 0 FP {fmt(oe['oracle_recall_at_zero_fp'])})" in _texts(at)
    at.radio(key="ov_mode").set_value("lenient").run()
    assert {m.label: m.value for m in at.metric}["Consensus recall"] == fmt(
        sc["lenient"]["consensus"]["recall"]
    )


def _kpis_run_without_events(roots, reports):
    """A --kpis run of the fixture's series with no --events: no truth, no scorecard."""
    from run_analysis import main as ana_main

    from shocklab.cli import run_cli
    out = reports / "kpis-noev"
    assert run_cli(ana_main, ["--kpis", str(roots.base / "kpis.csv"), "--out", str(out),
                              "--quiet"]) == 0
    assert not (out / "scorecard.json").exists()


@pytest.mark.parametrize("run", ["tx", "kpis-noev"])
def test_overview_without_truth_says_so_once(page, roots, run, tmp_path, monkeypatch):
    """A run without truth (transactions, a --kpis run without --events) showed a warning that
    scorecard.json is missing ("scores against the injected truth (only when the data has
    truth)") over an info saying the same: no truth, no scorecard. One note now."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "tx", reports / "tx")
    _kpis_run_without_events(roots, reports)
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("overview", run)
    assert not at.warning, [w.value for w in at.warning]
    assert len(at.info) == 1 and "has no truth to score against" in at.info[0].value


def test_overview_of_a_run_that_lost_its_scorecard_warns_once(page, roots, tmp_path,
                                                              monkeypatch):
    """A run of data with truth whose scorecard.json is gone (or cannot be read): the warning
    names the file; no note blaming missing truth beside it."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "lost")
    (reports / "lost" / "scorecard.json").unlink()
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("overview", "lost")
    assert not at.info, [i.value for i in at.info]
    assert len(at.warning) == 1 and "`scorecard.json`" in at.warning[0].value
    assert "no truth" not in _texts(at)


def test_kpi_explorer_chart_holds_flags_incidents_and_events(page, roots):
    at = page("kpis", "sim")
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name") for t in spec["data"]]
    det = pd.read_csv(roots.reports / "sim" / "detections.csv")
    rev = det[(det["kpi"] == "revenue") & (det["dimension"] == "overall")]
    for d, g in rev[rev["flag"]].groupby("detector"):
        trace = next(t for t in spec["data"] if t.get("name") == f"flag · {d}")
        assert len(trace["x"]) == len(g)
    assert "expected (detectors' range)" in names
    events = json.loads((roots.reports / "sim" / "scorecard.json").read_text())["event_detail"]
    labels = [a.get("text") for a in spec["layout"].get("annotations", [])]
    assert all(f"{e['event_id']} {e['type']}" in labels for e in events if not e["expected"])
    # a different slice: the selects drive the chart
    at.selectbox(key="kpi_kpi").set_value("sessions").run()
    at.selectbox(key="kpi_dim").set_value("channel").run()
    at.selectbox(key="kpi_seg").set_value("paid_search").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["title"]["text"] == "sessions · channel paid_search"
    incs = json.loads((roots.reports / "sim" / "incidents.json").read_text())["incidents"]
    n = sum(
        i["kpi"] == "sessions" and i["dimension"] == "channel" and i["segment"] == "paid_search"
        for i in incs
    )
    assert f"Consensus incidents on this slice ({n})" in [s.value for s in at.subheader]
    # each listed with the day it was raised beside its onset
    assert any("confirmed" in df.value.columns for df in at.dataframe)


def test_kpi_figure_hover_carries_every_detectors_score(roots):
    run = RunStore(roots.reports, roots.runs).run("sim")
    fig = kpi_figure(run, "orders", "overall", "all")
    main = next(t for t in fig.data if t.name == "orders")
    assert "rolling_zscore:" in "".join(main.customdata) and "isolation_forest:" in "".join(
        main.customdata
    )
    only = kpi_figure(run, "orders", "overall", "all", detectors=["oracle"])
    assert not any(t.name.startswith("flag · rolling") for t in only.data)


def test_episodes_cards_and_filters(page, roots):
    eps = json.loads((roots.reports / "sim" / "insights.json").read_text())["episodes"]
    at = page("episodes", "sim")
    assert len(at.expander) == min(10, len(eps))
    assert f"**{len(eps)}** of {len(eps)} episodes" in _texts(at)
    sev = eps[0]["severity"]
    at.multiselect(key="ep_sev").set_value([sev]).run()
    n = sum(e["severity"] == sev for e in eps)
    assert f"**{n}** of {len(eps)} episodes" in _texts(at) and len(at.expander) == min(10, n)
    at.text_input(key="ep_slice").set_value("no such slice").run()
    assert f"**0** of {len(eps)} episodes" in _texts(at)
    assert "Recommended action" in " ".join(i.value for i in page("episodes", "kpis").info)


def test_customers_page_filters_and_download(page, roots):
    seg = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")
    act = pd.read_csv(roots.reports / "sim" / "customers" / "actions.csv")
    both = seg.merge(act, on="customer_id")
    at = page("customers", "sim")
    dl = at.get("download_button")[0].proto
    assert dl.label == f"Download {int((both['action'] != 'no action').sum()):,} actions (CSV)"
    assert f"rows 1–25 of {len(seg):,}" in _texts(at)  # the churn table paginates
    at.multiselect(key="cu_seg").set_value(["At Risk"]).run()
    at.slider(key="cu_risk").set_value((0.5, 1.0)).run()
    want = both[(both["segment"] == "At Risk") & both["churn_risk"].between(0.5, 1.0)]
    assert f"of {len(want):,}" in _texts(at)
    dl = at.get("download_button")[0].proto
    assert dl.label == f"Download {int((want['action'] != 'no action').sum()):,} actions (CSV)"
    charts = at.get("plotly_chart")
    assert len(charts) >= 5  # sizes, RFM, CLV, cohorts, monitor


def test_customers_page_without_customers(page, roots, tmp_path, monkeypatch):
    """A --kpis run (no orders: the models were skipped) showed a warning that the customers
    files are missing over an info saying there are no customer models: one note now. A run
    whose models ran but whose files are gone gets the warning naming them, alone."""
    at = page("customers", "kpis")
    assert [i.value for i in at.info] == [
        "No customer models in this run (skipped: the input has no orders table)."]
    assert not at.warning, [w.value for w in at.warning]
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "lost")
    shutil.rmtree(reports / "lost" / "customers")
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("customers", "lost")
    assert not at.info, [i.value for i in at.info]
    assert len(at.warning) == 1 and "customers/segments.csv" in at.warning[0].value


def test_experiments_page(page, roots):
    at = page("experiments", exp="sweep")
    assert "Gate PASSED" in [s.value for s in at.success]
    lb = pd.read_csv(roots.runs / "sweep" / "leaderboard.csv")
    shown = at.dataframe[1].value
    assert len(shown) == len(lb)
    assert shown["consensus.recall"].iloc[0].startswith(fmt(lb["consensus.recall.mean"].iloc[0]))
    at = page("experiments", exp="detect")
    assert "Minimum detectable effect" in _texts(at)
    assert any("detectability" in c.proto.spec for c in at.get("plotly_chart"))


def test_detectability_figure_one_line_per_entity(roots):
    curve = pd.read_csv(roots.runs / "detect" / "detectability.csv")
    fig = detectability_figure(curve)
    assert len(fig.data) == curve["entity"].nunique()


def test_compare_page_lists_events_found_by_one_run_only(page, roots):
    store = RunStore(roots.reports, roots.runs)
    ev = compare_events(store.run("sim"), store.run("sim-k1"))
    at = page("compare", "sim", other="sim-k1")
    txt = _texts(at)
    assert (
        f"A found **{int(ev['detected_a'].sum())}**, B found **{int(ev['detected_b'].sum())}**"
        in txt
    )
    assert "Differences (B − A)" in txt
    assert "No scorecard" in " ".join(i.value for i in page("compare", "tx", other="sim").info)


def test_missing_files_are_named_not_fatal(page, roots, tmp_path, monkeypatch):
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "gutted")
    for rel in ("detections.csv", "insights.json", "customers/actions.csv", "scorecard.json"):
        (reports / "gutted" / rel).unlink()
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    for name in PAGES:
        at = page(name, "gutted")
        warned = " ".join(w.value for w in at.warning)
        if name == "kpis":
            assert "detections.csv" in warned
        if name == "episodes":
            assert "insights.json" in warned
        if name == "customers":
            assert "customers/actions.csv" in warned
        if name == "overview":
            assert "scorecard.json" in warned


def test_empty_roots(page, tmp_path, monkeypatch):
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(tmp_path / "none"))
    monkeypatch.setenv("SHOCKLAB_RUNS", str(tmp_path / "none"))
    assert "No run directories" in page("overview").info[0].value
    assert "No experiment directories" in page("experiments").info[0].value


def test_a_truncated_run_file_is_named_not_a_traceback(page, roots, tmp_path, monkeypatch):
    """A cut-short insights.json crashed every page with the JSONDecodeError traceback — the
    compare page even for another run, since it lists them all."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "cut")
    f = reports / "cut" / "insights.json"
    f.write_bytes(f.read_bytes()[:3000])
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    for name in PAGES:
        page(name, "cut")  # no exception on any page
    warned = " ".join(w.value for w in page("episodes", "cut").warning)
    assert "`insights.json` — cannot be read (JSONDecodeError" in warned


@pytest.mark.parametrize("name", ["gate.json", "leaderboard.csv", "results.parquet",
                                  "experiment.json"])
def test_an_unreadable_experiment_file_is_warned_not_hidden(page, roots, tmp_path, monkeypatch,
                                                            name):
    """A truncated gate.json read as "No gate checks in this experiment."; a truncated
    leaderboard, results or config file just vanished from the page, without a warning."""
    runs = tmp_path / "runs"
    shutil.copytree(roots.runs / "sweep", runs / "cut")
    f = runs / "cut" / name
    f.write_bytes(f.read_bytes()[:50])
    monkeypatch.setenv("SHOCKLAB_RUNS", str(runs))
    at = page("experiments", exp="cut")
    warned = " ".join(w.value for w in at.warning)
    assert f"`{name}` — cannot be read (" in warned, warned
    if name == "gate.json":
        assert "No gate checks" not in _texts(at)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and errors[0].startswith(
            "Gate verdict unknown: `gate.json` cannot be read (JSONDecodeError: "), errors


def test_customers_page_warns_once_about_an_unreadable_action_list(page, roots, tmp_path,
                                                                    monkeypatch):
    """A corrupt customers/actions.csv was warned about twice on the Customers page: at the top
    and again under "Action list"."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "cut")
    f = reports / "cut" / "customers" / "actions.csv"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("customers", "cut")
    warned = [w.value for w in at.warning if "customers/actions.csv" in w.value]
    assert len(warned) == 1 and "`customers/actions.csv` — cannot be read (" in warned[0], warned
    assert "No action list" in _texts(at)


def test_a_run_file_of_the_wrong_shape_is_named_not_a_traceback(page, roots, tmp_path,
                                                                monkeypatch):
    """A run file that parses but is not what ShockLab wrote (insights.json a string, run.json's
    config a string) crashed every page with "'str' object has no attribute 'get'" — the compare
    page for every run, since it lists them all."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    shutil.copytree(roots.reports / "sim", reports / "sim")
    run = reports / "edited"
    (run / "insights.json").write_text('"str"')
    doc = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**doc, "config": "notadict"}))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    for name in PAGES:
        page(name, "edited")  # no exception on any page
    page("compare", "sim")
    warned = " ".join(w.value for w in page("episodes", "edited").warning)
    assert "`insights.json` — cannot be read (ValueError: not a JSON object (a string))" in warned


def test_a_csv_without_a_column_the_pages_need_is_named_not_a_traceback(page, roots, tmp_path,
                                                                         monkeypatch):
    """An edited kpis_daily.csv without "dimension" or segments.csv without "segment" crashed the
    KPI explorer and Customers pages with a KeyError traceback."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    for name, col in (("kpis_daily.csv", "dimension"), ("customers/segments.csv", "segment")):
        f = reports / "edited" / name
        pd.read_csv(f).drop(columns=[col]).to_csv(f, index=False)
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    for name, file, col in (("kpis", "kpis_daily.csv", "dimension"),
                            ("customers", "customers/segments.csv", "segment")):
        warned = " ".join(w.value for w in page(name, "edited").warning)
        assert f"`{file}` — cannot be read (ValueError: no column '{col}')" in warned, warned


def test_compare_page_leaves_out_a_run_removed_while_listing(page, monkeypatch):
    """The Compare page opened every listed run: one removed since the list was read (or caught
    mid-rewrite) was a StoreError traceback."""
    from runstore import RunStore

    runs = RunStore.run_ids
    monkeypatch.setattr(RunStore, "run_ids", lambda self: [*runs(self), "vanished"])
    at = page("compare", "sim")
    assert "vanished" not in at.selectbox(key="cmp_b").options


def test_a_monitor_that_judged_no_day_says_so_on_the_customers_page(page, roots, tmp_path,
                                                                   monkeypatch):
    """A few weeks of data: the monitor is all warm-up; the page said only "No alerts sent.",
    read as a store without churn. It now adds insights.json's monitor note."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "short")
    (reports / "short" / "customers" / "alerts.jsonl").unlink(missing_ok=True)
    f = reports / "short" / "insights.json"
    doc = json.loads(f.read_text())
    doc["customers"]["monitor"].update(judged_days=0, judged_from=None, note="no day judged: X")
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    assert "No alerts sent — no day judged: X." in _texts(page("customers", "short"))


def test_a_clv_horizon_longer_than_the_history_is_noted_on_the_customers_page(
        page, roots, tmp_path, monkeypatch):
    """A 12-month CLV from a few weeks of orders is a ranking, not a forecast: the page shows the
    CLV summary's note beside the predicted total."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "short")
    f = reports / "short" / "insights.json"
    doc = json.loads(f.read_text())
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    doc["customers"]["clv"].pop("note", None)
    f.write_text(json.dumps(doc))
    assert "horizon is" not in _texts(page("customers", "short"))
    doc["customers"]["clv"]["note"] = "the 365-day horizon is 13.0x the 28 days of order history"
    f.write_text(json.dumps(doc))
    assert "Note: the 365-day horizon is 13.0x the 28 days of order history" in _texts(
        page("customers", "short"))


def test_an_episode_card_is_headed_by_the_episodes_own_title(page, roots, tmp_path, monkeypatch):
    """The card's header was built from kpi_changes[primary_kpi], the overall whole-day change:
    a flash sale of +62 % in one channel and country read "orders -1.1%", a product's -50 % price
    error "aov -0.9%", a sub-daily --kpis episode "value n/a%". It is insights.json's own title
    (the change the episode is about); the overall figure is labelled so, and n/a has no %."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    f = reports / "edited" / "insights.json"
    doc = json.loads(f.read_text())
    eps = doc["episodes"][:2]
    title = "orders in channel email up +62.2%: flash sale or promotion (2025-03-04)"
    eps[0].update(primary_kpi="orders", title=title, severity="high", planned=False,
                  kpi_changes={**(eps[0].get("kpi_changes") or {}), "orders": -1.08192})
    eps[1].pop("title", None)  # a run written before episodes had titles
    eps[1].update(primary_kpi="value", kpi_changes={"value": None}, severity="medium")
    doc["episodes"] = eps
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("episodes", "edited")
    labels = [x.label for x in at.expander]
    assert labels[0] == f"{title} · high", labels
    assert labels[1].startswith(f"{eps[1]['start']} … {eps[1]['end']} · value n/a · "), labels
    metrics = {m.label: m.value for m in at.expander[0].metric}
    assert metrics["orders change, overall"] == "-1.1%", metrics
    assert not any("n/a%" in x for x in labels + [m.value for m in at.metric])


def test_compare_does_not_count_an_event_the_other_runs_data_lacks_as_missed(page, roots,
                                                                             tmp_path,
                                                                             monkeypatch):
    """Two runs of different data (another world, a --kpis file): every event was "found by only
    one" — 'A found 18, B found 10 of 30 unexpected events; 28 found by only one' — as if B had
    missed A's events that its data never held. Only the events both runs hold are compared."""
    at = page("compare", "sim", other="kpis")
    txt = _texts(at)
    n_sim = sum(not e["expected"] for e in json.loads(
        (roots.reports / "sim" / "scorecard.json").read_text())["event_detail"])
    assert "found by only one" not in txt, txt
    assert f"The runs share no events. {n_sim + 1} event(s) are in only one run's truth" in txt

    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "sim")
    shutil.copytree(roots.reports / "sim", reports / "fewer")
    f = reports / "fewer" / "scorecard.json"
    doc = json.loads(f.read_text())
    unexpected = [e for e in doc["event_detail"] if not e["expected"]]
    gone = unexpected[0]["event_id"]
    doc["event_detail"] = [e for e in doc["event_detail"] if e["event_id"] != gone]
    f.write_text(json.dumps(doc))
    store = RunStore(reports, roots.runs)
    ev = compare_events(store.run("sim"), store.run("fewer"))
    row = ev[ev["event_id"] == gone].iloc[0]
    assert row["verdict"] == "A's data only" and not row["in_b"]
    assert set(ev.loc[ev["event_id"] != gone, "verdict"]) <= {"both", "neither"}
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("compare", "sim", other="fewer")
    assert f"of the {len(unexpected) - 1} unexpected events both runs hold; **0** found by only " \
           "one. 1 event(s) are in only one run's truth" in _texts(at), _texts(at)
    shown = at.dataframe[-1].value  # the shared events, verdict beside the event
    assert list(shown.columns[:5]) == ["event_id", "type", "start", "end", "verdict"]
    assert gone not in set(shown["event_id"]) and len(shown) == len(unexpected) - 1


def test_kpi_explorer_says_when_a_kpi_is_not_measured_on_the_chosen_dimension(page, roots):
    """Not every KPI is measured on every dimension (no sessions per category; per product only
    orders and prices): choosing one drew an empty chart over "Flagged days (0)", "rows 0–0 of
    0", nothing saying why. The page names the dimensions that do hold the KPI. And the flag
    table's title counted detector rows as days (91 "flagged days" were 91 flags on fewer)."""
    at = page("kpis", "sim")
    assert not at.info
    det = pd.read_csv(roots.reports / "sim" / "detections.csv")
    rev = det[(det["kpi"] == "revenue") & (det["dimension"] == "overall") & det["flag"]]
    assert f"Flags ({len(rev)} on {rev['date'].nunique()} days)" in [s.value for s in at.subheader]
    at.selectbox(key="kpi_kpi").set_value("sessions").run()
    at.selectbox(key="kpi_dim").set_value("category").run()
    seg = at.selectbox(key="kpi_seg").value
    assert [i.value for i in at.info] == [
        f"No `sessions` values on category {seg}: `sessions` is measured on overall, channel, "
        "country."]
    at.selectbox(key="kpi_dim").set_value("channel").run()
    assert not at.info


def test_a_link_to_a_run_that_is_not_there_says_so(page, roots):
    """``?run=<id>`` naming a run that is gone, mistyped or still being written (a hidden
    directory until run_analysis.py renames it) silently opened the newest run instead: its
    numbers under a link that named another run. The page now says which run it shows instead;
    the same for ``?exp=``."""
    at = page("overview", "not-yet")
    shown = at.sidebar.selectbox[0].value
    assert [w.value for w in at.warning][:1] == [
        f"No run `not-yet` under `{roots.reports}` (removed, mistyped, or still being written); "
        f"showing `{shown}`."]
    at.sidebar.selectbox[0].set_value("kpis").run()  # choosing a run: no warning any more
    assert not [w for w in at.warning if "No run" in w.value]
    assert not [w for w in page("overview", "sim").warning if "No run" in w.value]
    at = page("experiments", exp="gone")
    assert any(w.value.startswith("No experiment `gone` under ") for w in at.warning)
    assert not page("experiments", exp="sweep").warning


def test_the_experiments_seeds_are_the_ones_it_ran(page, roots, tmp_path, monkeypatch):
    """The caption printed the config's ``seeds`` as Python: "seeds {'count': 3, 'start': 1}"
    for ``seeds: {count: 3, start: 1}``, "seeds None" for a train/test split. It lists the seeds
    experiment.json says were run."""
    runs = tmp_path / "runs"
    shutil.copytree(roots.runs / "sweep", runs / "counted")
    f = runs / "counted" / "experiment.json"
    doc = json.loads(f.read_text())
    assert doc["seeds"] == [1, 2]
    doc["config"]["seeds"] = {"count": 2, "start": 1}
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_RUNS", str(runs))
    caption = [c.value for c in page("experiments", exp="counted").caption if " cells, " in c.value]
    assert caption and caption[0].endswith(" · seeds 1, 2"), caption
    doc["seeds"] = [4, 5, 6, 7]
    f.write_text(json.dumps(doc))
    caption = [c.value for c in page("experiments", exp="counted").caption if " cells, " in c.value]
    assert caption[0].endswith(" · seeds 4–7"), caption


def test_customers_page_labels_its_numbers_in_full(page, roots):
    """The RFM scatter's log frequency axis read "10, 2, 3, 4" for 10, 20, 30, 40 orders (Plotly's
    one-digit in-between labels), and the CLV totals were ungrouped ("59312108") beside the
    page's grouped counts ("211,474 customers")."""
    at = page("customers", "sim")
    chart = next(c for c in at.get("plotly_chart") if "recency_days" in c.proto.spec)
    axis = json.loads(chart.proto.spec)["layout"]["yaxis"]
    assert axis["type"] == "log" and axis["ticktext"] == [f"{t:,}" for t in axis["tickvals"]]
    top = pd.read_csv(roots.reports / "sim" / "customers" / "segments.csv")["frequency"].max()
    assert 1 in axis["tickvals"] and max(axis["tickvals"]) <= top
    clv = json.loads((roots.reports / "sim" / "insights.json").read_text())["customers"]["clv"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Historical value"] == f"{clv['historical_value_total']:,.0f}"


def test_an_episode_matched_to_several_events_lists_them_all(page, roots, tmp_path, monkeypatch):
    """The "Matched event" metric joined every id into one line, which the browser cut short
    ("W02, W0…"; test_browser checks no metric is cut): several are counted there and listed in
    the card's caption."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    f = reports / "edited" / "insights.json"
    doc = json.loads(f.read_text())
    doc["episodes"][0]["matched_event_ids"] = ["W02", "W03", "W04"]
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    card = page("episodes", "edited").expander[0]
    metrics = {m.label: m.value for m in card.metric}
    assert metrics["Matched events"] == "3", metrics
    assert any(c.value.endswith(" · matched events: W02, W03, W04") for c in card.caption)


class _SubDailyRun:
    """Just what kpi_figure reads: a 10-minute series, one 20-minute incident, one labelled
    window (a --kpis run of a NAB file looks like this)."""

    def __init__(self, daily: bool = False):
        fmt_ = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S"
        freq = "D" if daily else "10min"
        self.dates = pd.date_range("2015-09-10", periods=300, freq=freq).strftime(fmt_)
        iso = (lambda d: d) if daily else (lambda d: d.replace(" ", "T"))
        self.inc = {"incident_id": "I1", "kpi": "value", "dimension": "overall", "segment": "all",
                    "start": iso(self.dates[100]), "end": iso(self.dates[102]),
                    "direction": "down", "severity": "medium", "magnitude_pct": -15.0,
                    "detectors": ["rolling_zscore"]}

    def kpi_series(self, *a):
        return pd.DataFrame({"date": self.dates, "value": 50.0})

    def detections_for(self, *a):
        return None

    def incidents(self):
        return [self.inc]

    def events(self):
        return pd.DataFrame([{"event_id": "W01", "type": "nab_window", "start": self.inc["start"],
                              "end": self.inc["end"], "expected": False}])

    def calendar(self):
        return pd.DataFrame({"date": [], "name": [], "kind": []})


def test_sub_daily_incidents_and_windows_are_shaded_over_their_own_hours():
    """On a sub-daily --kpis run every incident and labelled window was shaded to the next
    midnight (a 20-minute incident on 2015-09-11 read as the rest of the day): the band ends one
    period after the last flagged point; on daily data, at the next day as before."""
    run = _SubDailyRun()
    fig = kpi_figure(run, "value")
    bands = [(s.x0, s.x1) for s in fig.layout.shapes]
    last = pd.Timestamp(run.dates[102]) + pd.Timedelta(minutes=10)
    assert bands == [(run.inc["start"], last.strftime("%Y-%m-%d %H:%M:%S"))] * 2, bands
    daily = _SubDailyRun(daily=True)
    bands = [(s.x0, s.x1) for s in kpi_figure(daily, "value").layout.shapes]
    nxt = (pd.Timestamp(daily.dates[102]) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    assert bands == [(daily.inc["start"], nxt)] * 2, bands


def test_the_filters_find_the_kpi_and_slice_an_episode_is_titled_by(page, roots, tmp_path,
                                                                    monkeypatch):
    """An episode titled "orders in channel x country direct / US up +62.2%" (its incident on
    sessions in channel direct) was hidden by the filters "direct / US" and KPI orders: only the
    incidents' slices and KPIs were searched, not the slice it is measured on (signature.slice)
    nor its primary KPI."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "edited")
    f = reports / "edited" / "insights.json"
    doc = json.loads(f.read_text())
    e = doc["episodes"][0]
    e["slices"], e["kpis"], e["primary_kpi"] = ["channel direct"], ["sessions"], "orders"
    e["signature"] = {**(e.get("signature") or {}), "slice": "channel x country direct / US"}
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("episodes", "edited")
    at.text_input(key="ep_slice").set_value("direct / us").run()
    n = len(doc["episodes"])
    assert f"**1** of {n} episodes" in _texts(at)
    assert at.expander[0].label.startswith(e["title"])
    at.text_input(key="ep_slice").set_value("").run()
    at.multiselect(key="ep_kpi").set_value(["orders"]).run()
    assert e["title"] in [x.label.rsplit(" · ", 1)[0] for x in at.expander]


def test_customers_switched_off_says_so(page, roots, tmp_path, monkeypatch):
    """A run analysed with customers.enabled false read "No customer models in this run
    (simulated)." — the source, not the reason."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "off")
    shutil.rmtree(reports / "off" / "customers")
    f = reports / "off" / "insights.json"
    doc = json.loads(f.read_text())
    doc["customers"] = {"enabled": False}
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    assert [i.value for i in page("customers", "off").info] == [
        "No customer models in this run (switched off: customers.enabled is false in the run's "
        "config)."]


def test_kpi_explorer_says_why_a_transactions_run_has_no_sessions(page):
    at = page("kpis", "tx")
    at.selectbox(key="kpi_kpi").set_value("sessions").run()
    assert [i.value for i in at.info] == [
        "No `sessions` values on overall all: this run has none on any slice (a --transactions "
        "file has no visits: no sessions, no conversion)."]


def test_compare_with_a_scored_run_without_events_is_not_a_missing_scorecard(page, roots,
                                                                            tmp_path,
                                                                            monkeypatch):
    """A scored run whose world had no shock (event_detail empty) made Compare say "Needs a
    scorecard in both runs." — both had one. It says the runs share no events."""
    assert "Needs a scorecard in both runs." in _texts(page("compare", "sim", other="tx"))
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "sim")
    shutil.copytree(roots.reports / "sim", reports / "calm")
    f = reports / "calm" / "scorecard.json"
    doc = json.loads(f.read_text())
    n = sum(not e["expected"] for e in doc["event_detail"])
    doc["event_detail"] = []
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    txt = _texts(page("compare", "sim", other="calm"))
    assert "Needs a scorecard" not in txt
    assert f"The runs share no events. {n} event(s) are in only one run's truth" in txt, txt


def test_overview_of_a_world_without_shocks_does_not_blame_missing_truth(page, roots, tmp_path,
                                                                         monkeypatch):
    """A simulated world with no unexpected event has truth but no oracle line (no recall); the
    Overview said "No oracle line (the oracle needs simulated truth)." — wrong for a simulated
    run — and showed an empty table under "Recall per event type"."""
    assert "No oracle line (the oracle needs simulated truth)." in _texts(page("overview", "kpis"))
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "calm")
    f = reports / "calm" / "scorecard.json"
    doc = json.loads(f.read_text())
    doc["event_detail"], doc["events"] = [], {**doc["events"], "unexpected": 0, "expected": 0}
    for mode in ("strict", "lenient"):
        doc[mode]["oracle_equal_fp"] = {"fp_budget": 6, "oracle_recall": None, "ratio": None}
        block = doc[mode]
        for m in [*block["detectors"].values(), *block["consensus_levels"].values(),
                  block["consensus"]]:
            m["by_type"] = {}
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    txt = _texts(page("overview", "calm"))
    assert "No oracle line (no unexpected event to find" in txt and "needs simulated" not in txt
    # and no empty table under "Recall per event type"
    assert "No unexpected event in this run's truth: no recall per type." in txt


def test_overview_says_why_the_consensus_found_an_event_the_bound_did_not(page, roots,
                                                                          tmp_path, monkeypatch):
    """The scorecard's self-check (``oracle_equal_fp.consensus_only_detail``): each event the
    consensus found and the bound did not, with the oracle's best score against its family's cut
    — luck below it, a lost event at or above it; a malformed detail is skipped, not a crash."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "above")
    f = reports / "above" / "scorecard.json"
    doc = json.loads(f.read_text())
    doc["strict"]["oracle_equal_fp"].update(
        cuts=[{"family": "aov/category", "cut": 3.52}], seen_at_cut=1,
        consensus_only_detail=[{"event_id": "E09", "oracle_score": 3.3306,
                                "family": "aov/category", "cut": 3.52, "seen_at_cut": False},
                               {"event_id": "E15", "oracle_score": 9.3272,
                                "family": "sessions/country", "cut": 3.9, "seen_at_cut": True},
                               {"event_id": "E17", "oracle_score": 2.1,
                                "family": "orders/channel", "cut": None, "seen_at_cut": False},
                               "not a record"])
    doc["lenient"]["oracle_equal_fp"]["consensus_only_detail"] = "not a list"
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("overview", "above")
    txt = _texts(at)
    assert ("Found by the consensus alone: E09 — the oracle's best 3.33, its cut 3.52 on "
            "aov/category; below the bound's cut: luck a bound in expectation allows.") in txt
    assert ("Found by the consensus alone: E15 — the oracle's best 9.33, its cut 3.90 on "
            "sessions/country; at or above the bound's cut: the bound lost it, trace it.") in txt
    assert ("Found by the consensus alone: E17 — the oracle's best 2.10, nothing taken on "
            "orders/channel; below the bound's cut") in txt
    at.radio(key="ov_mode").set_value("lenient").run()
    assert "Found by the consensus alone" not in _texts(at) and not at.exception


def test_a_clv_model_that_was_not_fitted_says_so(page, roots, tmp_path, monkeypatch):
    """A --transactions file with too few repeat customers: the CLV model failed and every
    customer kept its historical value; the page showed "Model pareto_nbd+gamma_gamma" and a
    predicted value of n/a, nothing saying the model was not used."""
    assert not [w for w in page("customers", "sim").warning if "CLV model" in w.value]
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "few")
    f = reports / "few" / "insights.json"
    doc = json.loads(f.read_text())
    why = ("fallback: historical value for every customer (ValueError: only 2 repeat customers "
           "with positive value for Gamma-Gamma)")
    doc["customers"]["clv"].update(status=why, predicted_value_total=None)
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    assert f"CLV model not used: {why}." in [w.value for w in page("customers", "few").warning]


def test_a_rate_on_the_leaderboard_chart_is_drawn_on_a_0_to_1_axis():
    """One setting with recall 1.000 [1.000, 1.000] (the ci_gate experiment) was drawn on a 0–2
    axis (Plotly's autorange around one point): recall, precision and F1 get 0–1."""
    lb = pd.DataFrame({"setting_id": ["s1"], "consensus.recall.mean": [1.0],
                       "consensus.recall.ci_low": [1.0], "consensus.recall.ci_high": [1.0],
                       "consensus.median_delay_days.mean": [0.0]})
    assert list(leaderboard_figure(lb, "consensus.recall", []).layout.yaxis.range) == [-0.05, 1.05]
    assert leaderboard_figure(lb, "consensus.median_delay_days", []).layout.yaxis.range is None


def test_the_monitor_tables_show_percentages_as_percent(page, roots):
    """The watched segments' movement and the alerts showed share and growth as fractions
    (growth 0.0361) where the alerts themselves say "+3.6%": they are in percent, so named."""
    series = pd.read_csv(roots.reports / "sim" / "customers" / "monitor_series.csv")
    last = series.sort_values("date").groupby("segment").tail(1).set_index("segment")
    at = page("customers", "sim")
    table = next(d.value for d in at.dataframe if "28-day growth %" in d.value.columns)
    for row in table.itertuples(index=False):
        assert row[3] == round(last.loc[row.segment, "share"] * 100, 1)
    assert "share" not in table.columns and "growth" not in table.columns


def test_kpi_explorer_reads_a_runs_files_under_a_spinner_naming_them(page, roots, tmp_path,
                                                                    monkeypatch):
    """The first view of a run's KPI explorer reads and joins kpis_daily.csv and detections.csv
    (66 MB, over a second on the default run) with nothing on the page saying so. Every parse of
    those files now happens inside a spinner naming the run and the files; a second view parses
    nothing (runstore's cache)."""
    import contextlib

    import streamlit

    from runstore import store as rs

    reports = tmp_path / "reports"  # a path runstore's cache has never seen: a cold load
    shutil.copytree(roots.reports / "sim", reports / "cold")
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    shown: list[str] = []  # the spinner's text while one is open
    reads: list[tuple[str, str | None]] = []  # (file parsed, the spinner open then)
    real_spinner, real_read = streamlit.spinner, rs._read_csv

    @contextlib.contextmanager
    def spinner(text="", **kw):
        shown.append(text)
        try:
            with real_spinner(text, **kw):
                yield
        finally:
            shown.pop()

    def read_csv(path):
        reads.append((path.name, shown[-1] if shown else None))
        return real_read(path)

    monkeypatch.setattr(streamlit, "spinner", spinner)
    monkeypatch.setattr(rs, "_read_csv", read_csv)
    at = page("kpis", "cold")
    assert at.get("plotly_chart"), "the page drew its chart"
    text = "Loading run `cold`'s KPI series and detections (kpis_daily.csv, detections.csv)…"
    assert sorted(reads) == [("detections.csv", text), ("kpis_daily.csv", text)]
    reads.clear()
    page("kpis", "cold")
    assert reads == []


def test_the_dashboard_roots_set_empty_are_the_defaults(monkeypatch, tmp_path):
    """SHOCKLAB_REPORTS="$DIR" with DIR unset made the current directory the run store."""
    from dashboard.app import store_from_env

    monkeypatch.setenv("SHOCKLAB_REPORTS", "")
    monkeypatch.setenv("SHOCKLAB_RUNS", "")
    store = store_from_env()
    assert (str(store.reports), str(store.runs)) == ("reports", "runs")
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(tmp_path / "r"))
    assert store_from_env().reports == tmp_path / "r"


def test_an_alert_a_sink_failed_to_take_is_shown_as_not_delivered(page, roots, tmp_path,
                                                                  monkeypatch):
    """The alerts table lists this run's alerts from its JSONL record, which every alert reaches
    even when the Slack send failed: a failed send read as delivered. insights.json's
    ``undelivered_to`` now gives a column and a warning."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "failed")
    alerts = [{"alert_id": f"sim:At Risk:{sev}:2024-03-0{d}", "date": f"2024-03-0{d}",
               "segment": "At Risk", "severity": sev, "growth": 0.2, "customers": 120,
               "reason": "share grew"} for d, sev in ((1, "high"), (4, "critical"))]
    (reports / "failed" / "customers" / "alerts.jsonl").write_text(
        "".join(json.dumps(a) + "\n" for a in alerts))
    f = reports / "failed" / "insights.json"
    doc = json.loads(f.read_text())
    doc["customers"]["monitor"]["alerts"] = [
        {"alert_id": a["alert_id"], "sent_this_run": True,
         "undelivered_to": ["slack"] if a["severity"] == "critical" else []} for a in alerts]
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("customers", "failed")
    assert any("1 alert(s) not delivered yet" in w.value for w in at.warning)
    table = next(d.value for d in at.dataframe if "not delivered to" in d.value.columns)
    got = dict(zip(table["alert_id"], table["not delivered to"], strict=True))
    assert got == {alerts[0]["alert_id"]: "", alerts[1]["alert_id"]: "slack"}
    # every alert delivered: neither the column nor the warning
    doc["customers"]["monitor"]["alerts"][1]["undelivered_to"] = []
    f.write_text(json.dumps(doc))
    at = page("customers", "failed")
    assert not any("not delivered" in w.value for w in at.warning)
    assert not any("not delivered to" in d.value.columns for d in at.dataframe)
    assert any("alert_id" in d.value.columns for d in at.dataframe)


def test_a_rerun_day_shows_the_alerts_an_earlier_run_issued(page, roots, tmp_path, monkeypatch):
    """A re-run of a day already judged (or of one whose first run was killed after it alerted)
    sends nothing and writes no alerts.jsonl: the page said "No alerts sent." for a day with a
    critical alert. The day's alerts from insights.json are shown, named as an earlier run's."""
    reports = tmp_path / "reports"
    shutil.copytree(roots.reports / "sim", reports / "rerun")
    (reports / "rerun" / "customers" / "alerts.jsonl").unlink(missing_ok=True)
    f = reports / "rerun" / "insights.json"
    doc = json.loads(f.read_text())
    doc["customers"]["monitor"]["alerts"] = [
        {"alert_id": "sim:Lapsing:critical:2024-03-04", "date": "2024-03-04",
         "segment": "Lapsing", "severity": "critical", "growth": 0.25, "sent_this_run": False,
         "undelivered_to": []}]
    f.write_text(json.dumps(doc))
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("customers", "rerun")
    texts = _texts(at)
    assert "No alerts sent by this run; 1 alert(s) of the judged days were issued by an earlier " \
           "run:" in texts and "No alerts sent." not in texts
    table = next(d.value for d in at.dataframe if "alert_id" in d.value.columns)
    assert table["alert_id"].tolist() == ["sim:Lapsing:critical:2024-03-04"]
    assert table["28-day growth %"].tolist() == [25.0]
