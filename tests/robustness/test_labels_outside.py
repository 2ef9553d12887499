"""`--events` whose labelled windows all lie outside the KPI file's period (the wrong label file,
a wrong year) scored every window as missed: recall 0, and `--min-recall` failed the CI job with
exit 1 as if the detectors had. Such a file is bad input now (exit 2, naming the window and the
data's span); a file with some windows inside scores those, leaving the others out with a
warning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def _kpis(tmp_path):
    rng = np.random.default_rng(0)
    days = pd.date_range("2025-01-01", periods=90, freq="D")
    v = 100 + rng.normal(0, 2, 90)
    v[60:62] -= 40
    f = tmp_path / "k.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "signups": v.round(2)}).to_csv(f, index=False)
    return f


def test_windows_all_outside_the_data_are_exit_2(cli, tmp_path):
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"start": "2030-03-02", "end": "2030-03-03"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--min-recall", "0.5",
            "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert str(ev) in line and "2030-03-02" in line and "2025-01-01" in line, line
    assert not (tmp_path / "run").exists()


def test_windows_partly_inside_still_score(cli, tmp_path):
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"start": "2025-03-02", "end": "2025-03-03"},
                              {"start": "2030-03-02", "end": "2030-03-03"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run",
            "--quiet")
    assert r.returncode == 0, r.stderr
    sc = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert sc["headline"]["recall"] is not None


def test_a_window_outside_the_data_beside_ones_inside_is_left_out(cli, tmp_path):
    """Labels for a longer period than the export: a window wholly outside the data was counted
    as a missed event (recall 0.5 for the one found of two), so `--min-recall` failed the job as
    if the detectors had missed it, while the benchmark metrics left it out. It is left out of the
    scoring now, with a warning naming it; a window inside the last day of a daily file stays."""
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"start": "2025-03-02", "end": "2025-03-03"},
                              {"start": "2025-03-31T12:00", "end": "2025-04-02"},
                              {"event_id": "late", "start": "2030-03-02", "end": "2030-03-03"},
                              {"start": "2024-12-01", "end": "2024-12-31"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run",
            "--quiet")
    assert r.returncode == 0, r.stderr
    sc = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert sc["events"]["unexpected"] == 2
    assert [e["event_id"] for e in sc["event_detail"]] == ["X01", "X02"]
    line = next(x for x in r.stderr.splitlines() if "outside the data" in x)
    assert str(ev) in line and "2 labelled window(s)" in line and "late" in line, line


def test_a_day_label_covers_the_day_when_the_data_starts_later_that_day(cli, tmp_path):
    """A label `2024-03-01,2024-03-01` on hourly data from 10:00 that day covers the data's first
    14 hours (an end given as a day covers it, as scoring reads it); the overlap check compared
    the end as midnight: "no labelled window overlaps the data", exit 2."""
    ts = pd.date_range("2024-03-01 10:00", periods=300, freq="h")
    f = tmp_path / "h.csv"
    pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": (100 + np.random.default_rng(0).normal(0, 1, 300)).round(3)}
                 ).to_csv(f, index=False)
    ev = tmp_path / "ev.csv"
    ev.write_text("start,end\n2024-03-01,2024-03-01\n2024-03-05,2024-03-05\n")
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "outside the data" not in r.stderr, r.stderr
    sc = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert sc["events"]["unexpected"] == 2 and sc["series_metrics"]["windows"] == 2


def test_a_repeated_event_id_is_exit_2(cli, tmp_path):
    """Two labels sharing an event_id were scored as one: both windows caught, recall 0.5 (the
    delays are kept by id), and `--min-recall 0.9` failed the job with exit 1."""
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"event_id": "A", "start": "2025-03-02", "end": "2025-03-03"},
                              {"event_id": "B", "start": "2025-01-20", "end": "2025-01-20"},
                              {"event_id": "A", "start": "2025-02-10", "end": "2025-02-11"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--min-recall", "0.9",
            "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert str(ev) in line and "[2]" in line and "'A'" in line and "[0]" in line, line
    assert not (tmp_path / "run").exists()


def test_an_empty_events_file_says_it_is_empty(cli, tmp_path):
    """An empty CSV of events said "cannot read CSV (EmptyDataError)"."""
    for name in ("ev.csv", "ev.json"):
        ev = tmp_path / name
        ev.write_text("")
        r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run",
                "--quiet")
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{ev}: " in lines[0] and "file is empty" in lines[0], lines
        assert not (tmp_path / "run").exists()


def test_a_utf16_csv_of_events_reads_like_the_utf8_file(cli, tmp_path):
    """Excel's "Unicode text" export (UTF-16, tab-separated) of the labels."""
    ev = tmp_path / "ev.csv"
    ev.write_bytes(b"\xff\xfe" + "start\tend\n2025-03-02\t2025-03-03\n".encode("utf-16-le"))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run",
            "--quiet")
    assert r.returncode == 0, r.stderr
    sc = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert sc["headline"]["recall"] is not None


def test_min_recall_without_any_scored_event_is_a_failed_gate_not_a_crash(cli, tmp_path):
    """A label file with no windows (NAB's artificialNoAnomaly files: `[]`) or a warm-up that
    covers every event leaves recall without a value; `--min-recall` formatted it as a number and
    ended the job with an internal error (exit 3). The bar cannot pass: exit 1, saying why; the
    run directory is written, and `--min-precision` alone still judges the precision."""
    ev = tmp_path / "ev.json"
    ev.write_text("[]")
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--min-recall", "0.5",
            "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 1, r.stderr
    assert "consensus recall has no value: no unexpected event was scored" in r.stderr
    assert "--min-recall 0.5 cannot pass" in r.stderr and "internal error" not in r.stderr
    assert json.loads((tmp_path / "run" / "scorecard.json").read_text())["headline"]["recall"] \
        is None
    ev.write_text(json.dumps([{"start": "2025-01-03", "end": "2025-01-03"}]))  # in the warm-up
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--min-recall", "0.5",
            "--set", "scoring.warmup_days=30", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 1, r.stderr
    assert "1 inside the warm-up (scoring.warmup_days=30)" in r.stderr, r.stderr


def test_a_bad_label_file_is_one_line_even_when_the_kpi_file_was_warned_about(cli, tmp_path):
    """The KPI file's ingest warnings (here: a repeated day, combined) were printed before the
    label file's error line; now they wait for the labels: a bad one is the one line, a good one
    lets them through."""
    f = _kpis(tmp_path)
    rows = f.read_text().splitlines()
    f.write_text("\n".join([*rows, rows[5]]) + "\n")       # one day twice
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps({"other.csv": [["2025-03-02", "2025-03-03"]]}))
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    ev.write_text(json.dumps([{"start": "2025-03-02", "end": "2025-03-03"}]))
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "duplicate" in r.stderr.lower() or "repeated" in r.stderr.lower(), r.stderr


def test_a_window_wholly_in_a_gap_of_the_data_is_left_out(cli, tmp_path):
    """A window with no file row inside it (5-minute data with a missing day) was counted as
    missed, with no warning (recall 0.5), while the NAB score dropped it. It is left out as a
    window outside the data is: a warning line naming it and run.json input_checks; a window
    holding one row stays."""
    t = pd.date_range("2014-04-01", periods=14 * 288, freq="5min")
    v = 50 + np.random.default_rng(5).normal(0, 1, len(t))
    v[(t >= "2014-04-10 16:15") & (t < "2014-04-10 18:15")] += 30
    keep = (t < "2014-04-06") | (t >= "2014-04-07")   # 2014-04-06 missing
    keep |= t == pd.Timestamp("2014-04-06 20:00")      # but one row that evening
    f = tmp_path / "gapwin.csv"
    pd.DataFrame({"timestamp": t[keep].strftime("%Y-%m-%d %H:%M:%S"), "value": v[keep].round(3)}
                 ).to_csv(f, index=False)
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"event_id": "gap", "start": "2014-04-06 06:00",
                               "end": "2014-04-06 12:00"},
                              {"event_id": "row", "start": "2014-04-06 19:58",
                               "end": "2014-04-06 20:02"},
                              {"event_id": "spike", "start": "2014-04-10 16:15",
                               "end": "2014-04-10 18:15"}]))
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stderr.splitlines() if "labelled window" in x)
    assert str(ev) in line and "1 labelled window(s) wholly in a gap" in line, line
    assert "gap 2014-04-06T06:00:00 to 2014-04-06T12:00:00" in line, line
    sc = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    assert [e["event_id"] for e in sc["event_detail"]] == ["row", "spike"]
    assert sc["series_metrics"]["windows"] == 2
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["input_checks"]["labels_left_out"] == [
        {"event_id": "gap", "start": "2014-04-06T06:00:00", "end": "2014-04-06T12:00:00",
         "why": "wholly in a gap of the data"}]
    # every window in a gap: as every window outside the data, exit 2
    ev.write_text(json.dumps([{"start": "2014-04-06 06:00", "end": "2014-04-06 12:00"}]))
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run2", "--quiet")
    assert r.returncode == 2, r.stderr
    assert "no labelled window holds a row of the data" in r.stderr, r.stderr
    assert not (tmp_path / "run2").exists()


def test_overlapping_or_repeated_windows_are_named_in_one_warning(cli, tmp_path):
    """The NAB score and affiliation merge overlapping windows into one, while the headline and
    window_event count each: they were merged without a word (nab_windows 1 beside windows 2)."""
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"event_id": "A", "start": "2025-03-02", "end": "2025-03-03"},
                              {"event_id": "B", "start": "2025-03-03", "end": "2025-03-04"},
                              {"event_id": "C", "start": "2025-02-01", "end": "2025-02-01"},
                              {"event_id": "D", "start": "2025-02-01", "end": "2025-02-01"},
                              {"event_id": "E", "start": "2025-02-02", "end": "2025-02-02"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run",
            "--quiet")
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stderr.splitlines() if "overlap" in x]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{ev}: 2 labelled window(s) overlap an earlier one, e.g. C "
                               "(2025-02-01T00:00:00 to 2025-02-01T00:00:00) and D "), lines
    assert "merge them into one window" in lines[0]
    sm = json.loads((tmp_path / "run" / "scorecard.json").read_text())["series_metrics"]
    assert (sm["windows"], sm["nab_windows"]) == (5, 3)
    # a day after a day (E after C, D) is no overlap: no warning
    ev.write_text(json.dumps([{"start": "2025-02-01", "end": "2025-02-01"},
                              {"start": "2025-02-02", "end": "2025-02-02"}]))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", ev, "--out", tmp_path / "run2",
            "--quiet")
    assert r.returncode == 0 and "overlap" not in r.stderr, r.stderr
