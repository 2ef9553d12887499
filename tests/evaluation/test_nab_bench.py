"""bench/bench_nab.py --cv: the shipped `external` settings are a point of the cross-validation
grid (so the README's in-sample figure of the shipped default is the one the grid scored), and the
grid's extra detectors and likelihood settings map back from the `external` section; and its
refusals (a folder, flag or --set it cannot use) are one line, exit 2, not a traceback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.config import load_analysis_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_nab  # noqa: E402


def test_shipped_external_settings_are_on_the_grid():
    cfg = load_analysis_config(None)
    ext = cfg.external
    point = {
        "extra": bench_nab._extra_key(ext.detectors),
        "tail": ext.tail,
        "sensitivity": ext.sensitivity,
        "suppress": ext.suppress,
        "min_votes": ext.min_votes or cfg.consensus.min_votes,
        "merge_gap": ext.merge_gap,
        "solo": ext.solo,
        "likelihood": bench_nab._likelihood_key(ext.likelihood),
        "short": bench_nab._short_key(ext),
    }
    for k, v in point.items():
        assert v in bench_nab.CV_GRID[k], (k, v)
    assert set(point) == set(bench_nab.CV_GRID)


def test_extra_key_of_external_detectors():
    assert bench_nab._extra_key({}) == "none"
    for key, settings in bench_nab.CV_EXTRA.items():
        flow = "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                               for k, v in settings.items()) + "}"
        cfg = load_analysis_config(None, [f"external.detectors={{x: {flow}}}"])
        assert bench_nab._extra_key(cfg.external.detectors) == key
    cfg = load_analysis_config(None, ["external.detectors={x: {type: level_shift, window: 3}}"])
    assert bench_nab._extra_key(cfg.external.detectors) is None  # off the grid


def test_likelihood_key_of_external_likelihood():
    assert bench_nab._likelihood_key(None) is None
    cfg = load_analysis_config(None, ["external.likelihood={}"])
    assert bench_nab._likelihood_key(cfg.external.likelihood) == "default"
    cfg = load_analysis_config(None, ["external.likelihood={window_days: 2}"])
    assert bench_nab._likelihood_key(cfg.external.likelihood) == "?"   # off the grid


def test_a_detector_switched_off_is_no_extra():
    cfg = load_analysis_config(
        None, ["external.detectors={isolation_forest: {type: isolation_forest, enabled: false}}"])
    assert bench_nab._extra_key(cfg.external.detectors) == "none"
    cfg = load_analysis_config(None, ["external.detectors={x: {type: level_shift}}"])
    assert bench_nab._extra_key(cfg.external.detectors) == "level_shift"   # added: switched on


def test_short_key_of_external_short_history():
    off = load_analysis_config(None, ["external.early_min=null", "external.flat_floor=null"])
    assert bench_nab._short_key(off.external) == "off"
    six = load_analysis_config(None, ["external.early_min=6"])
    assert bench_nab._short_key(six.external) == "early6"
    odd = load_analysis_config(None, ["external.early_min=7"])
    assert bench_nab._short_key(odd.external) is None   # off the grid


def test_a_nab_folder_without_its_labels_is_one_line(tmp_path):
    """A copy of NAB without labels/combined_windows.json ended in a FileNotFoundError
    traceback."""
    (tmp_path / "data" / "realTraffic").mkdir(parents=True)
    assert bench_nab.nab_problem(tmp_path) == (
        f"--nab {tmp_path}: no labels/combined_windows.json (NAB's label windows)")
    assert "no data/ folder" in bench_nab.nab_problem(tmp_path / "nope")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    assert bench_nab.nab_problem(tmp_path) is None


def _own_nab_folder(tmp_path: Path) -> Path:
    """A researcher's NAB-layout folder: data/<category>/*.csv and labels/, no config/ or
    results/ (NAB's own folder has both)."""
    nab = tmp_path / "mine"
    (nab / "data" / "hourly").mkdir(parents=True)
    (nab / "data" / "hourly" / "h1.csv").write_text("timestamp,value\n2024-01-01 00:00:00,1\n")
    (nab / "labels").mkdir()
    (nab / "labels" / "combined_windows.json").write_text('{"hourly/h1.csv": []}')
    return nab


def _main(monkeypatch, *argv: str) -> int:
    monkeypatch.setattr(sys, "argv", ["bench_nab.py", *argv])
    return bench_nab.main()


def test_summary_of_an_own_folder_without_nab_profiles(tmp_path, monkeypatch, capsys):
    """The summary read <nab>/config/profiles.json, which a folder of one's own lacks: every file
    ran, then a FileNotFoundError traceback. The files are scored with NAB's three profiles
    (run_analysis), so the summary normalises with those."""
    nab = _own_nab_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    sm = {"nab_windows": 1, "windows": 1,
          "nab_null": {p: {"score": -1.0} for p in bench_nab.PROFILES},
          "detectors": {"consensus": {
              "nab": {p: {"score": 0.5} for p in bench_nab.PROFILES},
              "window_event": {"detected": 1, "windows": 1, "incidents": 1,
                               "true_incidents": 1},
              "vus_pr": 0.5, "affiliation": {"f1": 0.5}}}}
    (out / "results.json").write_text(json.dumps({"hourly/h1.csv": {
        "exit": 0, "seconds": 1.0, "traceback": False, "stderr_tail": "", "series_metrics": sm}}))
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(out), "--summary-only") == 0
    row = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("hourly"))
    assert row.split()[2:5] == ["75.0"] * 3   # 100 (0.5 − (−1)) / (1 − (−1)), tpWeight 1


def test_summary_only_without_an_earlier_run_is_one_line(tmp_path, monkeypatch, capsys):
    nab = _own_nab_folder(tmp_path)
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(tmp_path / "none"),
                 "--summary-only") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results.json" in err and "Traceback" not in err


def test_an_unknown_category_is_one_line(tmp_path, monkeypatch, capsys):
    """A typo in --categories ran no file and ended in an IndexError traceback."""
    nab = _own_nab_folder(tmp_path)
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(tmp_path / "o"),
                 "--categories", "hourly,hourlly") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hourlly" in err and "there: hourly" in err


def test_cv_needs_nabs_categories_and_its_cache(tmp_path, monkeypatch, capsys):
    """--cv on a folder without NAB's four labelled categories detected every file, then a
    KeyError traceback; --cv --summary-only without an earlier cv.json was a FileNotFoundError."""
    nab = _own_nab_folder(tmp_path)
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(tmp_path / "o"), "--cv") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "realTraffic" in err
    for c in bench_nab.CV_CATEGORIES:
        (nab / "data" / c).mkdir()
        (nab / "data" / c / "x.csv").write_text("timestamp,value\n")
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(tmp_path / "o"), "--cv",
                 "--summary-only") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cv.json" in err


@pytest.mark.parametrize("cv", [False, True])
def test_a_bad_set_is_one_line_before_any_file_runs(tmp_path, monkeypatch, capsys, cv):
    """A typo in --set was found by each file's run (41 exit-2 runs, then FAILED) and under --cv
    ended in a ConfigError traceback; it is checked once, first."""
    nab = _own_nab_folder(tmp_path)
    out = tmp_path / "o"
    argv = ["--nab", str(nab), "--out", str(out), "--set", "external.sensitivty=3"]
    assert _main(monkeypatch, *argv, *(["--cv"] if cv else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "external.sensitivty: unknown key" in err
    assert not out.exists()


def test_a_file_without_benchmark_metrics_is_not_scored_and_says_so(tmp_path, monkeypatch,
                                                                    capsys):
    """A file with two series (here a `count` column beside `value`) runs (exit 0) without
    series_metrics; it was counted in the category's files, left out of its score and the run
    ended "all 1 files: exit 0, no traceback" (exit 0)."""
    nab = _own_nab_folder(tmp_path)
    days = pd.date_range("2025-01-01", periods=40, freq="D")
    pd.DataFrame({"timestamp": days.strftime("%Y-%m-%d"),
                  "value": np.round(100 + np.random.default_rng(0).normal(0, 2, 40), 2),
                  "count": np.arange(40)}).to_csv(nab / "data" / "hourly" / "h1.csv",
                                                  index=False)
    (nab / "labels" / "combined_windows.json").write_text(
        '{"hourly/h1.csv": [["2025-01-30", "2025-01-31"]]}')
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(tmp_path / "o")) == 1
    out = capsys.readouterr().out
    assert "NOT SCORED (1" in out and "hourly/h1.csv: NAB / affiliation metrics need" in out
    assert "all 1 files" not in out


@pytest.mark.parametrize("cv", [False, True])
def test_a_data_file_without_its_label_entry_is_one_line_before_any_file_runs(
        tmp_path, monkeypatch, capsys, cv):
    """A data file with no entry in labels/combined_windows.json was found by its own run: every
    file ran, then exit 1 "FAILED … no entry". It is exit 2 first, naming the file."""
    nab = _own_nab_folder(tmp_path)
    for c in bench_nab.CV_CATEGORIES if cv else ["hourly"]:
        (nab / "data" / c).mkdir(exist_ok=True)
        (nab / "data" / c / "h2.csv").write_text("timestamp,value\n2024-01-01 00:00:00,1\n")
    out = tmp_path / "o"
    assert _main(monkeypatch, "--nab", str(nab), "--out", str(out),
                 *(["--cv"] if cv else [])) == 2
    cap = capsys.readouterr()
    assert cap.err.count("\n") == 1 and "no entry for 'h2.csv'" in cap.err, cap.err
    assert "h2.csv has no windows there" in cap.err and cap.out == ""
    assert not out.exists()


def test_a_label_entry_without_its_file_is_a_warning_line(tmp_path, monkeypatch, capsys):
    """An entry naming no file of data/ (a subset of NAB, which --nab takes) was ignored without
    a word; it is said once, and the files there run."""
    nab = _own_nab_folder(tmp_path)
    (nab / "labels" / "combined_windows.json").write_text(
        '{"hourly/h1.csv": [], "realKnownCause/gone.csv": [["2024-01-01", "2024-01-02"]]}')
    problem, note = bench_nab.label_coverage(nab, [nab / "data" / "hourly" / "h1.csv"])
    assert problem is None
    assert note == (f"{nab / 'labels' / 'combined_windows.json'}: 1 entry name no file of "
                    f"{nab / 'data'} (e.g. realKnownCause/gone.csv): not run")
    # --categories leaves a file out of the run: its missing entry is no error then
    (nab / "data" / "other").mkdir()
    (nab / "data" / "other" / "o.csv").write_text("timestamp,value\n")
    assert bench_nab.label_coverage(nab, [nab / "data" / "hourly" / "h1.csv"])[0] is None
