"""Input integrity and plausibility: manifest hashes and row counts, truncated or edited files,
negative and absurd amounts, stray dates, day-first transaction dates, one-day and .xlsx files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tests.robustness.txgen import transactions, write_csv

from analytics.loading import load_data_dir
from analytics.transactions import load_transactions, parse_dates
from shocklab.errors import InputError


def _edit_orders(world, fn):
    path = world / "orders.csv"
    df = pd.read_csv(path, dtype={"order_id": str, "customer_id": str})
    fn(df)
    df.to_csv(path, index=False, lineterminator="\n")


def test_an_edited_file_fails_verification_and_no_verify_counts_it(fresh_world, cli):
    _edit_orders(fresh_world, lambda df: df.__setitem__("net_revenue", df["net_revenue"] * 10))
    r = cli("analysis", "--data", fresh_world, "--out", "r")
    assert r.returncode == 2 and "orders.csv: sha256 does not match manifest.json" in r.stderr
    assert "--no-verify" in r.stderr
    # a data set that generate_data.py is replacing right now reads as a mix of two worlds: the
    # hint said only "--no-verify", which would analyse the mix (audit 2026-12-05)
    assert "if generate_data.py is writing it now, wait for it and run again" in r.stderr
    ds = load_data_dir(fresh_world, verify=False)  # analysed anyway, but never silently
    integ = ds.manifest["integrity"]
    assert integ["verified"] is False and len(integ["mismatches"]) == 1
    assert set(integ["actual_sha256"]) == {"orders.csv"}  # the run id follows the bytes read


def test_a_world_without_truth_gets_its_own_run_id(fresh_world, tmp_path, cli):
    """Without truth/ (--no-verify: the manifest lists its files) the run id was the clean
    world's, so the unscored run replaced the scored run's reports/<id> (audit 2026-12-05)."""
    import shutil

    fast = ["--detectors", "rolling_zscore,isolation_forest"]
    r = cli("analysis", "--data", fresh_world, "--out", tmp_path / "a", *fast)
    assert r.returncode == 0, r.stderr
    shutil.rmtree(fresh_world / "truth")
    r = cli("analysis", "--data", fresh_world, "--out", tmp_path / "b", "--no-verify", *fast)
    assert r.returncode == 0, r.stderr
    run_a = json.loads((tmp_path / "a" / "run.json").read_text())
    run_b = json.loads((tmp_path / "b" / "run.json").read_text())
    assert run_a["run_id"] != run_b["run_id"]
    assert (tmp_path / "a" / "scorecard.json").is_file()
    assert not (tmp_path / "b" / "scorecard.json").exists()
    assert any(m.startswith("truth/") for m in run_b["input_checks"]["integrity"]["missing"])


@pytest.mark.parametrize("column", ["orders", "sessions"])
def test_a_truth_baseline_figure_of_text_is_bad_input(fresh_world, tmp_path, cli, column):
    """'abc' in truth/baseline_daily.csv's orders was an internal error in the oracle (exit 3);
    in sessions it passed silently (docs audit 2026-12-05)."""
    path = fresh_world / "truth" / "baseline_daily.csv"
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.loc[2, column] = "abc"
    df.to_csv(path, index=False, lineterminator="\n")
    r = cli("analysis", "--data", fresh_world, "--out", tmp_path / "r", "--no-verify",
            "--detectors", "rolling_zscore")
    line = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 2 and len(line) == 1, r.stderr
    assert f"baseline_daily.csv: column '{column}' must be numeric, got 'abc'" in line[0]
    assert not (tmp_path / "r").exists()


def test_a_file_cut_at_a_line_break_is_detected(fresh_world):
    path = fresh_world / "orders.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[: len(lines) // 2]))  # a clean cut: still valid CSV
    with pytest.raises(InputError, match="orders.csv: sha256 does not match"):
        load_data_dir(fresh_world)
    ds = load_data_dir(fresh_world, verify=False)
    assert any("data rows, manifest.json says" in m for m in ds.manifest["integrity"]["mismatches"])


def test_a_clean_world_verifies(tiny_world):
    integ = load_data_dir(tiny_world).manifest["integrity"]
    assert integ["verified"] is True and integ["checked_files"] >= 10 and integ["mismatches"] == []


@pytest.mark.parametrize(("table", "col", "value", "match"), [
    ("orders", "net_revenue", -5.0, "'net_revenue' has 1 negative value"),
    ("orders", "net_revenue", 1e308, "'net_revenue' has 1 implausibly large value"),
    ("website_traffic", "sessions", -1, "'sessions' has 1 negative value"),
])
def test_negative_or_absurd_amounts_are_errors(fresh_world, table, col, value, match):
    path = fresh_world / f"{table}.csv"
    df = pd.read_csv(path, dtype=str)
    df.loc[3, col] = str(value)
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match=match):
        load_data_dir(fresh_world, verify=False)


def test_an_order_outside_the_period_is_refused(fresh_world):
    def stray(df):
        df.loc[0, "order_date"] = "2030-01-01"
        df.loc[0, "order_ts"] = "2030-01-01 10:00:00"
    _edit_orders(fresh_world, stray)
    with pytest.raises(
        InputError, match=r"1 row\(s\) dated outside the manifest period 2025-01-01 … 2025-03-31"
    ):
        load_data_dir(fresh_world, verify=False)


def test_day_first_dates_are_detected_and_read_right(tmp_path):
    df = transactions(n_rows=400, days=60)
    path = write_csv(df, tmp_path / "tx.csv", "%d/%m/%Y %H:%M")
    ds = load_transactions(path)
    dates = ds.manifest["cleaning"]["dates"]
    assert dates["layout"] == "day-first" and dates["unparsed_rows"] == 0
    got = ds.tables["orders"].set_index("order_id")["order_ts"].sort_index()
    want = df.groupby("Invoice")["InvoiceDate"].min().dt.floor("min").sort_index()
    assert (got.to_numpy() == want.to_numpy()).all()  # no row moved to another day


def test_ambiguous_dates_are_counted_and_an_explicit_format_wins(tmp_path):
    ts = pd.Series(["03/04/2011 10:00", "05/06/2011 11:00", "07/07/2011 09:00"])
    parsed, rep = parse_dates(ts)
    assert rep["layout"] == "month-first" and rep["ambiguous_rows"] == 2  # 07/07 reads the same
    assert parsed.iloc[0] == pd.Timestamp("2011-03-04 10:00")
    parsed, rep = parse_dates(ts, "%d/%m/%Y %H:%M")
    assert parsed.iloc[0] == pd.Timestamp("2011-04-03 10:00") and rep["ambiguous_rows"] == 0
    with pytest.raises(InputError, match="both day-first .* and month-first"):
        parse_dates(pd.Series(["25/01/2011 10:00", "01/25/2011 10:00"]))


def test_dates_with_utc_offsets_are_read_as_the_local_time_written(tmp_path):
    """Offsets that change with summer time or differ between rows (an export from a system that
    writes them) were exit 3 ("Mixed timezones detected"); the wall-clock time written is kept,
    so an order at 23:30+0100 stays on its own day."""
    ts = pd.Series(["2011-03-26T17:28:00+0000", "2011-03-27T23:30:00+0100",
                    "2011-03-28 09:05Z", "2011-03-28T10:00:00-05:00", "2011-03-29 08:00"])
    parsed, rep = parse_dates(ts)
    assert list(parsed) == [pd.Timestamp(x) for x in ("2011-03-26 17:28", "2011-03-27 23:30",
                                                      "2011-03-28 09:05", "2011-03-28 10:00",
                                                      "2011-03-29 08:00")]
    assert rep["utc_offsets_dropped"] == 4 and rep["unparsed_rows"] == 0
    df = transactions(n_rows=400, days=120)   # January to May: +0000, then +0100
    stamp = pd.to_datetime(df["InvoiceDate"])
    df["InvoiceDate"] = (stamp.dt.strftime("%Y-%m-%dT%H:%M:%S")
                         + np.where(stamp.dt.month >= 4, "+0100", "+0000"))
    assert df["InvoiceDate"].str.endswith("+0100").any()
    df.to_csv(tmp_path / "tx.csv", index=False)
    ds = load_transactions(tmp_path / "tx.csv")
    assert ds.tables["orders"]["order_date"].min() == stamp.min().normalize()
    assert ds.tables["orders"]["order_date"].max() == stamp.max().normalize()


def test_a_tiny_file_keeps_its_far_apart_days(tmp_path):
    """'A day cut off by > 60 days holding under 1 % of the rows' is left out as a typo; the rule
    took at least one row, so a 4-row file (25 % a row) lost its first and last orders (audit-mutcli
    finding)."""
    df = transactions(n_rows=600, days=90).head(4).copy()
    df["InvoiceDate"] = [pd.Timestamp(d) for d in ("2011-01-03 10:00", "2011-04-04 10:00",
                                                   "2011-04-05 10:00", "2011-07-20 10:00")]
    ds = load_transactions(write_csv(df, tmp_path / "tx.csv"))
    assert ds.manifest["cleaning"]["removed"]["date_outlier"] == 0
    assert ds.manifest["date_range"]["start"].startswith("2011-01-03")
    assert ds.manifest["date_range"]["end"].startswith("2011-07-20")


def test_one_order_dated_2030_does_not_stretch_the_period(tmp_path):
    df = transactions(n_rows=600, days=90)
    df.loc[len(df) - 1, "InvoiceDate"] = pd.Timestamp("2030-06-01 10:00")
    ds = load_transactions(write_csv(df, tmp_path / "tx.csv"))
    assert ds.manifest["cleaning"]["removed"]["date_outlier"] == 1
    assert ds.tables["orders"]["order_date"].max() < pd.Timestamp("2012-01-01")
    assert ds.manifest["date_range"]["end"].startswith("2011")


@pytest.mark.slow  # a full analysis (~12 s)
def test_a_5000_row_xlsx_on_two_days_analyses(tmp_path, cli):
    """The first rows of Online Retail span two days: shorter than every monitor window."""
    path = tmp_path / "tx.xlsx"
    transactions(n_rows=5000, days=2).to_excel(path, index=False)
    r = cli("analysis", "--transactions", path, "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0, r.stderr
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["input_checks"]["cleaning"]["rows_read"] == 5000


@pytest.mark.slow  # a full analysis (~12 s)
def test_all_orders_on_one_day(tmp_path, cli):
    df = transactions(n_rows=800, days=1)
    r = cli(
        "analysis",
        "--transactions",
        write_csv(df, tmp_path / "tx.csv"),
        "--out",
        tmp_path / "r",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    kpis = pd.read_csv(tmp_path / "r" / "kpis_daily.csv")
    assert kpis["date"].nunique() == 1


def test_a_transaction_amount_of_1e308_is_counted_not_summed(tmp_path):
    df = transactions(n_rows=300, days=30)
    df.loc[5, "Price"] = 1e308
    ds = load_transactions(write_csv(df, tmp_path / "tx.csv"))
    assert ds.manifest["cleaning"]["removed"]["bad_value"] == 1
    assert ds.tables["orders"]["net_revenue"].max() < 1e6


def test_a_missing_order_value_null_is_said_not_silent(fresh_world, tmp_path, cli):
    """Under --no-verify, truth/order_value_null.csv missing let the oracle fall back to gamma
    moments with no word beyond the integrity line (docs audit 2026-12-05)."""
    (fresh_world / "truth" / "order_value_null.csv").unlink()
    r = cli("analysis", "--data", fresh_world, "--out", tmp_path / "r", "--no-verify",
            "--detectors", "rolling_zscore,oracle")
    assert r.returncode == 0, r.stderr
    said = [ln for ln in (r.stdout + r.stderr).splitlines()
            if "order_value_null.csv is missing" in ln]
    assert len(said) == 1 and "gamma moments" in said[0], r.stdout + r.stderr


@pytest.mark.parametrize(("name", "escaped"), [("a\n# Injected heading\n", "\\n"),
                                               ("ti\x00ny", "\\x00"), ("x\ty", "\\t")])
def test_a_manifest_scenario_with_a_control_character_is_refused(fresh_world, tmp_path, cli,
                                                                 name, escaped):
    """generate_data.py refuses such a scenario name now; one in a manifest written before (or
    by hand) went raw into insights.md, a newline writing a Markdown heading of its own (exit
    0). Refused as the loader refuses a manifest of the wrong shape: one line, exit 2."""
    path = fresh_world / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "scenario": name}, indent=2))
    out = tmp_path / "r"
    r = cli("analysis", "--data", fresh_world, "--out", out, "--quiet")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0] == (f"error: {path}: scenario: {name!r} holds a control character {escaped} "
                        "(names go into file names, JSON and Markdown): regenerate the data set "
                        "(generate_data.py refuses such a name)")
    assert not out.exists()
    # a printable name (not ASCII only) heads insights.md as it is
    path.write_text(json.dumps({**manifest, "scenario": "Café – Q4 #2"}, indent=2))
    r = cli("analysis", "--data", fresh_world, "--out", out, "--quiet",
            "--detectors", "rolling_zscore", "--set", "customers.enabled=false",
            "--set", "insights.plots=false")
    assert r.returncode == 0, r.stderr
    assert "Data: Café – Q4 #2 · " in (out / "insights.md").read_text(encoding="utf-8")
