"""--kpis as real exports come: any column names, gaps, duplicates, irregular steps, long layout,
bad cells (exit 2 naming row and column), and labels as they come (ShockLab, NAB, CSV)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import run_analysis

from analytics.external import load_kpis_file
from analytics.kpis import to_long
from evaluation.labels import load_events_file
from shocklab.cli import run_cli
from shocklab.errors import InputError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "nab"


def cli(*args: str) -> int:
    return run_cli(run_analysis.main, list(args))


def _write(tmp_path, df, name="kpis.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def _hourly(n=24 * 30, seed=0):
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2025-03-01", periods=n, freq="h")
    return pd.DataFrame({"timestamp": ts, "value": 100 + 10 * np.sin(np.arange(n) / 24 * 2 * np.pi)
                         + rng.normal(0, 1, n)})


def test_kpi_named_value_and_reserved_names(tmp_path):
    df = _hourly().assign(date=lambda d: d["value"] * 2, segment=lambda d: d["value"] + 1)
    ds = load_kpis_file(_write(tmp_path, df))
    k = ds.tables["kpis_daily"]
    # numeric columns named date / segment are KPIs, kept beside the table's own keys
    assert ds.ingest["kpis"] == ["value", "date_kpi", "segment_kpi"]
    assert (k["dimension"] == "overall").all() and k["date"].dtype == "datetime64[ns]"
    long = to_long(k, ["value", "date_kpi"], ["overall"])
    assert list(long.columns) == ["date", "kpi", "dimension", "segment", "value"]
    assert len(long) == 2 * len(df)
    np.testing.assert_allclose(long.loc[long["kpi"] == "value", "value"], df["value"])


def test_gaps_stay_gaps_and_are_never_flagged(tmp_path, caplog):
    df = _hourly()
    df.loc[500, "value"] = 400.0                       # an obvious spike …
    df = df.drop(index=range(300, 310))                # … and ten missing hours
    path = _write(tmp_path, df)
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(path)
    assert ds.ingest["missing_periods"] == 10 and ds.ingest["periods"] == 24 * 30
    assert "10 missing period(s)" in caplog.text
    v = ds.tables["kpis_daily"]["value"]
    assert v.isna().sum() == 10 and not (v == 0).any()
    out = tmp_path / "run"
    assert (
        cli(
            "--kpis",
            str(path),
            "--out",
            str(out),
            "--detectors",
            "rolling_zscore,isolation_forest",
            "--set",
            "consensus.min_votes=1",
        )
        == 0
    )
    det = pd.read_csv(out / "detections.csv", parse_dates=["date"])
    gap = det["date"].isin(pd.date_range("2025-03-13 12:00", periods=10, freq="h"))
    assert gap.sum() > 0 and not det.loc[gap, "flag"].any()
    assert det.loc[
        det["date"] == pd.Timestamp("2025-03-21 20:00"), "flag"
    ].any()  # the spike still is
    run = json.loads((out / "run.json").read_text())
    assert run["ingest"]["missing_periods"] == 10 and run["ingest"]["step"] == "0 days 01:00:00"


@pytest.mark.parametrize("rule,expected", [("mean", 15.0), ("sum", 30.0), ("first", 10.0)])
def test_duplicates_combined_by_rule(tmp_path, caplog, rule, expected):
    df = _hourly(100)
    dup = df.iloc[[50]].assign(value=20.0)
    df.loc[50, "value"] = 10.0
    df = pd.concat([df.iloc[:51], dup, df.iloc[51:]])
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(_write(tmp_path, df), duplicates=rule)
    k = ds.tables["kpis_daily"]
    assert len(k) == 100 and k.loc[50, "value"] == expected
    assert ds.ingest["duplicate_rows"] == 1 and f"combined by --duplicates {rule}" in caplog.text


def test_irregular_steps_snapped_to_modal_grid(tmp_path):
    df = _hourly(200)
    jitter = pd.to_timedelta(np.where(np.arange(200) % 7 == 3, 13, 0), unit="min")
    df["timestamp"] = df["timestamp"] + jitter          # every 7th row 13 minutes late
    ds = load_kpis_file(_write(tmp_path, df))
    k = ds.tables["kpis_daily"]
    assert ds.ingest["resampled_rows"] == int((np.arange(200) % 7 == 3).sum())
    assert len(k) == 200 and k["value"].notna().all()
    assert (k["date"].diff().dropna() == pd.Timedelta("1h")).all()


def test_real_nab_file_loads(tmp_path):
    ds = load_kpis_file(FIX / "speed_7578.csv", step="modal")
    ing = ds.ingest
    assert ing["rows"] == 1127 and ing["step"] == "0 days 00:05:00" and ing["series"] == 1
    assert ing["missing_periods"] > 1000 and ing["resampled_rows"] > 0
    k = ds.tables["kpis_daily"]
    assert k["value"].notna().sum() == ing["periods"] - ing["missing_periods"]


def test_long_layout_with_slices(tmp_path):
    base = _hourly(24 * 20)
    rows = []
    for dim, seg, f in (("", "", 1.0), ("region", "eu", 0.6), ("region", "us", 0.4)):
        for kpi, g in (("value", 1.0), ("orders", 0.1)):
            rows.append(
                pd.DataFrame(
                    {
                        "timestamp": base["timestamp"],
                        "kpi": kpi,
                        "value": base["value"] * f * g,
                        "dimension": dim,
                        "segment": seg,
                    }
                )
            )
    path = _write(tmp_path, pd.concat(rows))
    ds = load_kpis_file(path)
    k = ds.tables["kpis_daily"]
    assert ds.ingest["layout"] == "long" and ds.ingest["series"] == 6
    assert list(dict.fromkeys(k["dimension"])) == ["overall", "region"]
    assert set(k.loc[k["dimension"] == "region", "segment"]) == {"eu", "us"}
    eu = k[(k["segment"] == "eu")].reset_index(drop=True)
    np.testing.assert_allclose(eu["orders"], base["value"] * 0.06)
    out = tmp_path / "run"
    assert cli("--kpis", str(path), "--out", str(out), "--detectors", "rolling_zscore") == 0
    det = pd.read_csv(out / "detections.csv")
    assert set(zip(det["dimension"], det["segment"], strict=True)) == {
        ("overall", "all"),
        ("region", "eu"),
        ("region", "us"),
    }
    assert set(det["kpi"]) == {"value", "orders"}


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.assign(value=d["value"].astype(object).where(d.index != 7, "lots")),
     r"column 'value' must be numeric, got 'lots' \(data row 8\)"),
    (lambda d: d.assign(value=d["value"].where(d.index != 4, np.inf)),
     r"column 'value' has an infinite value inf \(data row 5\)"),
    (lambda d: d.assign(timestamp=d["timestamp"].astype(str).where(d.index != 3, "soon")),
     r"column 'timestamp' is not a timestamp: 'soon' \(data row 4\)"),
    (lambda d: d.iloc[:0], r"table is empty"),
    (lambda d: d.assign(kpi="x", value=1.0, extra=2.0)[["timestamp", "kpi", "value", "extra"]],
     r"unexpected column 'extra' in the long layout"),
])
def test_bad_cells_exit_2_one_line(tmp_path, capsys, edit, message):
    path = _write(tmp_path, edit(_hourly(100)))
    assert (
        cli("--kpis", str(path), "--out", str(tmp_path / "run"), "--detectors", "rolling_zscore")
        == 2
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_events_nab_csv_and_shocklab(tmp_path):
    lab = json.loads((FIX / "speed_7578_labels.json").read_text())["windows"]
    nab_file = tmp_path / "combined_windows.json"
    nab_file.write_text(json.dumps({"realKnownCause/other.csv": [], **lab}))
    kpi = tmp_path / "realTraffic" / "speed_7578.csv"
    evs = load_events_file(nab_file, ["value"], kpi_file=kpi)
    assert [e["start"] for e in evs][:2] == ["2015-09-11T15:34:00", "2015-09-15T13:26:00"] and len(
        evs
    ) == 4
    with pytest.raises(InputError, match=r"no entry for 'speed_1\.csv'"):
        load_events_file(nab_file, ["value"], kpi_file=tmp_path / "speed_1.csv")
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "start,end,type\n2025-03-02 10:00,2025-03-02 12:00,outage\n2025-03-05,2025-03-05,\n"
    )
    evs = load_events_file(csv, ["value"])
    assert [(e["start"], e["type"]) for e in evs] == [("2025-03-02T10:00:00", "outage"),
                                                      ("2025-03-05T00:00:00", "labelled")]
    bad = tmp_path / "bad.csv"
    bad.write_text("from,to\n1,2\n")
    with pytest.raises(InputError, match=r"needs columns 'start' and 'end'"):
        load_events_file(bad, ["value"])


def test_nab_file_end_to_end_metrics_and_no_plot_warnings(tmp_path, capsys):
    lab = json.loads((FIX / "speed_7578_labels.json").read_text())["windows"]
    labels = tmp_path / "combined_windows.json"
    labels.write_text(json.dumps(lab))
    out = tmp_path / "run"
    assert (
        cli(
            "--kpis",
            str(FIX / "speed_7578.csv"),
            "--events",
            str(labels),
            "--out",
            str(out),
            "--detectors",
            "rolling_zscore,isolation_forest",
            "--set",
            "consensus.min_votes=1",
        )
        == 0
    )
    printed = capsys.readouterr()
    assert (
        "plot" not in printed.out + printed.err
        and "Benchmark metrics (4 labelled window(s)" in printed.out
    )
    sm = json.loads((out / "scorecard.json").read_text())["series_metrics"]
    assert sm["windows"] == 4 and sm["rows"] == 1127 and sm["nab_null"]["standard"]["score"] == -4.0
    cons = sm["detectors"]["consensus"]
    assert set(cons["nab"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    # one NAB detection per incident, except those in the probationary period (not scored)
    assert 0 < cons["nab"]["standard"]["detections"] <= cons["incidents"]
    assert (
        0 <= cons["affiliation"]["f1"] <= 1 and cons["point_adjusted_f1"]["random_f1"] is not None
    )
    assert 0 <= cons["vus_pr"] <= 1 and 0 <= sm["detectors"]["rolling_zscore"]["vus_pr"] <= 1
    assert (out / "plots" / "kpi_value.png").is_file()


def test_step_auto_coarsens_a_mostly_empty_grid(tmp_path, caplog):
    # the real NAB file: 5-minute modal step, but fewer than half the 5-minute periods hold a row
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(FIX / "speed_7578.csv")
    ing = ds.ingest
    assert ing["modal_step"] == "0 days 00:05:00" and ing["step"] == "0 days 00:10:00"
    assert ing["missing_periods"] < ing["periods"] / 2 and "--step modal keeps it" in caplog.text
    # a regular file keeps its modal step; a forced step is used as given
    assert load_kpis_file(_write(tmp_path, _hourly(200))).ingest["step"] == "0 days 01:00:00"
    assert load_kpis_file(FIX / "speed_7578.csv", step="30min").ingest["step"] == "0 days 00:30:00"
    with pytest.raises(InputError, match="--step"):
        load_kpis_file(FIX / "speed_7578.csv", step="soon")
    assert cli("--data", str(tmp_path), "--step", "10min") == 2


def test_external_profile_only_for_kpis_input():
    from analytics.config import load_analysis_config
    from analytics.external import external_profile

    cfg = load_analysis_config(None, ["external.sensitivity=7", "external.suppress=6h",
                                      "external.min_votes=1", "external.tail=pot",
                                      "detectors.rolling_zscore_week.calibration.tail=pooled"])
    ext = external_profile(cfg)
    assert ext.sensitivity == 7 and ext.consensus.suppress == "6h" and ext.consensus.min_votes == 1
    assert ext.detectors["rolling_zscore"].calibration.tail == "pot"
    assert ext.detectors["rolling_zscore_week"].calibration.tail == "pooled"  # explicit: kept
    # the merge gap is a duration, turned into periods of the file's step
    gap = load_analysis_config(None, ["external.merge_gap=1h"])
    assert external_profile(gap, 300.0).consensus.merge_gap_days == 12
    # at least one period, and the store's merge_gap_days (2 days) does not reach --kpis files
    assert gap.consensus.merge_gap_days == 2
    assert external_profile(gap, 86400.0).consensus.merge_gap_days == 1
    assert external_profile(gap, 3600.0).consensus.merge_gap_days == 1
    with pytest.raises(InputError, match="merge_gap"):
        load_analysis_config(None, ["external.merge_gap=soon"])
    # the store config is untouched (tail auto = the fixed Student-t tail on store data)
    assert cfg.sensitivity == 0.1 and cfg.consensus.suppress == "1d"
    assert cfg.detectors["rolling_zscore"].calibration.tail == "auto"


@pytest.mark.parametrize(("args", "needle"), [
    # argparse reads '-1D' as a flag: "expected one argument" said nothing of how to pass it
    (["--step", "-1D"], "argument --step: expected one argument: '-1D' reads as a flag; "
                        "write --step=-1D"),
    (["--step=-1D"], "--step: must be positive, got '-1D'"),
    (["--step=0D"], "--step: must be positive, got '0D'"),
    (["--step", "0"], "--step: must be positive, got '0'"),
])
def test_a_negative_or_zero_step_is_one_line_exit_2(tmp_path, capsys, args, needle):
    out = tmp_path / "run"
    assert cli("--kpis", str(_write(tmp_path, _hourly(200))), *args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_a_file_without_store_kpis_says_so_in_the_summary_instead_of_an_empty_table(tmp_path):
    """A --kpis file with its own KPI names has nothing to total: the brief's Summary says why
    (it used to print a table header with no rows)."""
    rng = np.random.default_rng(2)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    df = pd.DataFrame({"date": days, "Umsatz": 1000 + rng.normal(0, 30, len(days))})
    out = tmp_path / "run"
    assert cli("--kpis", str(_write(tmp_path, df)), "--out", str(out), "--quiet") == 0
    md = (out / "insights.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    assert "| KPI |" not in summary
    assert "No store KPI" in summary


def test_a_segment_named_na_is_a_name_not_a_gap(tmp_path):
    """'NA' (Namibia), 'null' or 'None' in a label column are names: the CSV reader read them as
    missing and the long file was refused for an empty segment. An empty segment still is."""
    days = pd.date_range("2024-01-01", periods=40, freq="D").strftime("%Y-%m-%d")
    rows = [(d, "country", seg, "orders", 100 + i % 7) for seg in ("NA", "null", "ZA")
            for i, d in enumerate(days)]
    df = pd.DataFrame(rows, columns=["date", "dimension", "segment", "kpi", "value"])
    k = load_kpis_file(_write(tmp_path, df)).tables["kpis_daily"]
    assert set(k["segment"]) == {"NA", "null", "ZA"}
    df.loc[0, "segment"] = ""
    with pytest.raises(InputError, match="column 'segment' is empty in a 'country' row"):
        load_kpis_file(_write(tmp_path, df, "empty.csv"))


def test_jittered_timestamps_get_a_round_step(tmp_path):
    """A 5-minute export whose timestamps drift by up to a minute either way: no gap repeats
    often, so the modal gap is noise (4 min 52 s, 346 gaps and 236 collisions in the audit); the
    median gap rounded to 5 min is the grid. A regular file keeps its modal step."""
    g = np.random.default_rng(4)
    n = 2000
    base = pd.Timestamp("2024-03-01") + pd.to_timedelta(np.arange(n) * 300, unit="s")
    ts = base + pd.to_timedelta(g.integers(-60, 61, n), unit="s")
    df = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                       "value": g.normal(10, 1, n).round(3)})
    ing = load_kpis_file(_write(tmp_path, df)).ingest
    assert ing["step"] == "0 days 00:05:00"
    assert ing["missing_periods"] <= n // 50            # nearly every period holds its row
    regular = df.assign(timestamp=base.strftime("%Y-%m-%d %H:%M:%S"))
    assert load_kpis_file(_write(tmp_path, regular, "r.csv")).ingest["step"] == "0 days 00:05:00"


def test_iso_rows_beside_day_first_dates_keep_their_month(tmp_path):
    """A file mixing ISO rows and day-first dates ('13/03/2025 06:00'): the day-first reading
    applied to the ISO rows too (dateutil's dayfirst reads '2025-03-02' as 3 February), so the
    ISO hours landed months away — 7,104 'missing periods' in 40 days of data, exit 0."""
    df = _hourly(24 * 20)
    text = df["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    odd = np.arange(len(df)) % 2 == 1
    text[odd] = df["timestamp"][odd].dt.strftime("%d/%m/%Y %H:%M")
    ds = load_kpis_file(_write(tmp_path, df.assign(timestamp=text)))
    k = ds.tables["kpis_daily"]
    assert ds.ingest["missing_periods"] == 0 and len(k) == len(df)
    assert (k["date"].to_numpy() == df["timestamp"].to_numpy()).all()


@pytest.mark.parametrize(("fmt", "warns"), [
    ("%d/%m/%Y %H:%M+0100", True),      # local midnights with an offset: read as their dates
    ("%d/%m/%Y %H:%M:%S UTC", False),
    ("%d/%m/%Y %H:%M:%S.000", False),
])
def test_day_first_dates_with_a_zone_or_fraction_keep_their_days(tmp_path, caplog, fmt, warns):
    """Day-first daily dates with a UTC offset, a zone word or fractional seconds missed the
    day-/month-first decision (its pattern allowed nothing after the time) and went to pandas'
    month-first guess: 200 days read as 342 periods, 142 of them 'missing', exit 0 (session 43,
    the --kpis twin of the transactions finding)."""
    days = pd.date_range("2024-01-01", periods=40, freq="D")
    df = pd.DataFrame({"date": days.strftime(fmt), "orders": np.arange(40, dtype=float) + 100})
    with caplog.at_level("WARNING"):
        ds = load_kpis_file(_write(tmp_path, df))
    k = ds.tables["kpis_daily"]
    assert ds.ingest["missing_periods"] == 0 and len(k) == 40
    assert (k["date"].to_numpy() == days.to_numpy()).all()
    assert (k["orders"].to_numpy() == df["orders"].to_numpy()).all()
    assert ("local midnights with a UTC offset" in caplog.text) == warns


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_a_file_without_a_single_value_is_exit_2(tmp_path, capsys, layout):
    """Every value cell empty: analysed, it said '0 consensus incident(s)', exit 0."""
    df = _hourly(24 * 5).assign(value=np.nan)
    if layout == "long":
        df = df.assign(kpi="orders")[["timestamp", "kpi", "value"]]
    else:
        df = df.assign(orders=np.nan)
    path = _write(tmp_path, df)
    assert cli("--kpis", str(path), "--out", str(tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: no values to analyse: column") and "\n" not in err
    assert "'value'" in err and not (tmp_path / "run").exists()


def test_an_empty_column_beside_others_is_named_in_a_warning(tmp_path, caplog):
    df = _hourly(24 * 5).assign(other=np.nan)
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(_write(tmp_path, df))
    assert ds.ingest["kpis"] == ["value", "other"]
    assert "column 'other' empty in every row" in caplog.text
