"""Session 44's hostile audit of the input readers (/work/notes/HOSTILE44.md items 6, 7, 8, 12,
15). Before: a comma CSV of transactions with some quantities written '5,000' lost those rows as
bad_value (83 % of the audit file's revenue, exit 0); a --kpis file of undated rows and then
local midnights written '+13:00' had its offset decided from its first row (none), so the later
rows moved a day back (exit 0); negative orders or sessions in a --kpis file were analysed (--data
refuses them); an --events JSON with a UTF-8 byte-order mark or in UTF-16 was "cannot read JSON"
(CSV and YAML labels are read so); a Parquet --kpis file with a repeated column name was Arrow's
"Multiple matches for FieldRef.Name(revenue)". Each now reads right, or is exit 2 with one line
naming what is wrong and where, nothing written."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.robustness.test_kpis_file_shapes import _bad  # exit 2, one line, nothing written

from analytics.external import load_kpis_file
from analytics.transactions import load_transactions

# ---- --transactions: thousands separators in Quantity / UnitPrice --------------------------------

HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
          "CustomerID", "Country"]


def _tx(big=(3, 17, 40), price=lambda i: f"{2.5 + i % 4:.2f}"):
    """60 lines over 28 days; the lines ``big`` sell 5000 units (else 1-9)."""
    return pd.DataFrame([[str(500000 + i), f"S{i % 7}", "Item",
                          str(5000 if i in big else 1 + i % 9), f"2010-12-{1 + i % 28:02d} 10:00",
                          price(i), str(12000 + i % 11), "UK"] for i in range(60)], columns=HEADER)


def _grouped(frame, cols=("Quantity",)):
    out = frame.copy()
    for c in cols:
        out[c] = out[c].map(lambda v: f"{float(v):,.2f}" if "." in v else f"{int(v):,}")
    return out


def _same_tables(got, want):
    for name in ("orders", "order_items", "products", "customers"):
        pd.testing.assert_frame_equal(got.tables[name], want.tables[name])


def test_a_comma_files_thousands_grouped_quantities_are_read(tmp_path):
    """'5,000' in three lines of a comma CSV (quoted, as Excel writes it): a comma-separated file
    comes from a decimal-point locale, so the comma groups thousands (as --kpis reads it)."""
    plain, grouped = tmp_path / "plain.csv", tmp_path / "grouped.csv"
    _tx().to_csv(plain, index=False)
    _grouped(_tx()).to_csv(grouped, index=False)
    assert '"5,000"' in grouped.read_text()
    ds = load_transactions(grouped)
    assert ds.manifest["cleaning"]["removed"]["bad_value"] == 0
    assert ds.tables["order_items"]["quantity"].max() == 5000
    _same_tables(ds, load_transactions(plain))


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_a_tab_file_whose_prices_prove_the_grouping_reads_its_quantities(tmp_path, sep):
    """In a tab or '|' file '5,000' alone could be 5000 or 5.000; a price written '1,250.00'
    proves commas group thousands there, so the quantities are 5000."""
    price = lambda i: "1250.00" if i == 9 else f"{2.5 + i % 4:.2f}"  # noqa: E731
    plain, grouped = tmp_path / "plain.csv", tmp_path / "grouped.txt"
    _tx(price=price).to_csv(plain, index=False)
    _grouped(_tx(price=price), ("Quantity", "UnitPrice")).to_csv(grouped, index=False, sep=sep)
    ds = load_transactions(grouped)
    assert ds.manifest["cleaning"]["removed"]["bad_value"] == 0
    _same_tables(ds, load_transactions(plain))


def test_a_tab_files_lone_grouping_comma_is_refused_not_dropped(cli, tmp_path):
    """Nothing in the file decides whether '5,000' is 5000 or 5.000: exit 2 naming the column,
    the value and its row (the lines were left out as bad values: their revenue lost, exit 0)."""
    p = tmp_path / "t.txt"
    _grouped(_tx()).to_csv(p, index=False, sep="\t")
    _bad(cli, tmp_path, p, "'Quantity'", "'5,000' (data row 4)", "5000", "5.000",
         "no number of the file decides",
         args=("--transactions", p))


def test_both_comma_styles_in_a_transactions_file_are_refused(cli, tmp_path):
    p = tmp_path / "t.txt"
    frame = _grouped(_tx())
    frame["UnitPrice"] = frame["UnitPrice"].str.replace(".", ",", regex=False)
    frame.loc[9, "Quantity"] = "1,250.5"
    frame.to_csv(p, index=False, sep="\t")
    _bad(cli, tmp_path, p, "decimal comma", "'UnitPrice'", "grouping thousands", "'Quantity'",
         "data row 10", args=("--transactions", p))


# ---- --kpis: a UTC offset decided from every row -------------------------------------------------

DAYS = pd.date_range("2025-01-01", periods=60, freq="D")
REV = np.round(1000 + 300 * np.random.default_rng(4).random(len(DAYS)), 2)


@pytest.mark.parametrize("offset", ["+13:00", "-05:00"])
def test_undated_rows_then_local_midnights_with_an_offset_keep_their_dates(tmp_path, caplog,
                                                                          offset):
    """30 rows '2025-01-01', then '2025-01-31T00:00:00+13:00' …: the offset was looked for in the
    first row only, so the later rows were converted to UTC (11:00 the day before), snapped back a
    day and the first of them averaged with the last undated day."""
    p = tmp_path / "k.csv"
    dates = [f"{d:%Y-%m-%d}" + (f"T00:00:00{offset}" if i >= 30 else "")
             for i, d in enumerate(DAYS)]
    pd.DataFrame({"date": dates, "revenue": REV}).to_csv(p, index=False)
    with caplog.at_level(logging.WARNING, logger="shocklab"):
        ds = load_kpis_file(p)
    k = ds.tables["kpis_daily"]
    assert (k["date"].to_numpy() == DAYS.to_numpy()).all()
    utc = "11:00 the day before" if offset == "+13:00" else "05:00 that day"
    assert f"local midnights with a UTC offset ({offset})" in caplog.text and utc in caplog.text
    np.testing.assert_allclose(k["revenue"].to_numpy(), REV)
    assert ds.ingest["resampled_rows"] == 0 and ds.ingest["_utc_offset"] is None


def test_sub_daily_rows_with_a_later_offset_are_still_converted(tmp_path):
    """Hourly rows, undated offset first then '+02:00': not midnights, so converted to UTC as
    before (the later rows two hours earlier), and the offset found is the one labels follow."""
    hours = pd.date_range("2025-03-01", periods=72, freq="h")
    text = [f"{t:%Y-%m-%dT%H:%M:%S}" + ("+02:00" if i >= 10 else "Z") for i, t in enumerate(hours)]
    p = tmp_path / "h.csv"
    pd.DataFrame({"ts": text, "v": np.arange(72.0)}).to_csv(p, index=False)
    ds = load_kpis_file(p)
    assert ds.ingest["_utc_offset"] == "+02:00"


# ---- --kpis: negative store counts ---------------------------------------------------------------

def _kpis(tmp_path, **cols):
    p = tmp_path / "k.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "revenue": REV, **cols}).to_csv(p, index=False)
    return p


@pytest.mark.parametrize("col", ["orders", "sessions"])
def test_negative_store_counts_in_a_kpis_file_are_refused(cli, tmp_path, col):
    values = np.full(len(DAYS), 100)
    values[[6, 9]] = [-3, -50]
    p = _kpis(tmp_path, **{col: values})
    _bad(cli, tmp_path, p, f"column {col!r} has 2 negative values", "first: -3", "data row 7")


def test_a_negative_count_in_a_long_file_names_its_kpi(cli, tmp_path):
    rows = [(f"{d:%Y-%m-%d}", kpi, -1.0 if (i, kpi) == (11, "orders") else 10.0)
            for i, d in enumerate(DAYS) for kpi in ("revenue", "orders")]
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["date", "kpi", "value"]).to_csv(p, index=False)
    _bad(cli, tmp_path, p, "KPI 'orders'", "1 negative value", "data row 24")


def test_negative_revenue_and_own_columns_still_read(tmp_path):
    """A day's net revenue after refunds, a temperature, a profit: a store count alone cannot be
    negative."""
    rev = REV.copy()
    rev[3] = -120.5
    p = tmp_path / "k.csv"
    pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"), "revenue": rev,
                  "temperature": np.linspace(-10, 10, len(DAYS))}).to_csv(p, index=False)
    k = load_kpis_file(p).tables["kpis_daily"]
    assert k["revenue"].iloc[3] == -120.5 and k["temperature"].iloc[0] == -10


# ---- --events JSON encodings ---------------------------------------------------------------------

WINDOWS = [{"start": "2025-01-20", "end": "2025-01-22"}]


@pytest.mark.parametrize("encode", [
    lambda t: b"\xef\xbb\xbf" + t.encode(),     # Notepad's / PowerShell's UTF-8 with a mark
    lambda t: t.encode("utf-16"),               # PowerShell 5's Out-File: UTF-16 LE with a mark
    lambda t: b"\xfe\xff" + t.encode("utf-16-be"),
])
def test_an_events_json_with_a_byte_order_mark_reads_like_the_plain_file(cli, tmp_path, encode):
    from evaluation.labels import load_events_file

    plain, marked = tmp_path / "plain.json", tmp_path / "events.json"
    plain.write_text(json.dumps(WINDOWS))
    marked.write_bytes(encode(json.dumps(WINDOWS)))
    want = load_events_file(plain, ["revenue"])
    assert load_events_file(marked, ["revenue"]) == want and len(want) == 1
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--events", marked, "--out", tmp_path / "run")
    assert r.returncode == 0, r.stderr
    scored = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    got = [(e["start"], e["end"]) for e in scored["event_detail"]]
    assert got == [("2025-01-20", "2025-01-22")]


# ---- --kpis Parquet with a repeated column name --------------------------------------------------

def test_a_parquet_file_with_a_repeated_column_name_says_so(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays(
        [pa.array(DAYS.date, pa.date32()), pa.array(REV), pa.array(REV)],
        names=["date", "revenue", "revenue"]), p)
    _bad(cli, tmp_path, p, "duplicate column name 'revenue'")


# ---- no voting detector (item 9) ------------------------------------------------------------

VOTERS = ["rolling_zscore", "rolling_zscore_week", "count_likelihood", "isolation_forest",
          "prophet_residual", "product_watch"]


def test_a_config_with_no_detector_is_refused_not_nothing_happened(cli, tmp_path):
    """'--set detectors={}': the consensus had no voter and the run said "no incident" (exit 0,
    one warning among others)."""
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--out", tmp_path / "run", "--set",
            "detectors={}")
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and "no voting detector is configured (detectors: none)" in line
    assert "--detectors oracle runs the oracle alone" in line, r.stderr
    assert not (tmp_path / "run").exists()


def test_every_voter_disabled_names_them(cli, tmp_path):
    p = _kpis(tmp_path)
    off = [a for v in VOTERS for a in ("--set", f"detectors.{v}.enabled=false")]
    r = cli("analysis", "--kpis", p, "--out", tmp_path / "run", *off)
    line = r.stderr.strip()
    assert r.returncode == 2 and len(line.splitlines()) == 1, r.stderr
    assert f"every voting detector is off ({', '.join(VOTERS)}: enabled: false)" in line, line
    assert "--set detectors.rolling_zscore.enabled=true" in line
    assert not (tmp_path / "run").exists()


STORE_VOTERS = [v for v in VOTERS if v != "product_watch"]


def test_product_watch_alone_is_no_voter_where_no_product_series_is_watched(cli, tmp_path):
    """product_watch votes on product series only: with every store voter off it was counted
    as a voter, so a --kpis run (no product series) ran no detector at all and said exit 0, or
    exit 1 under a gate (audit 2026-12-05)."""
    p = _kpis(tmp_path)
    off = [a for v in STORE_VOTERS for a in ("--set", f"detectors.{v}.enabled=false")]
    r = cli("analysis", "--kpis", p, "--out", tmp_path / "run", *off)
    line = r.stderr.strip()
    assert r.returncode == 2 and len(line.splitlines()) == 1, r.stderr
    assert "every voting detector is off (" + ", ".join(STORE_VOTERS) in line, line
    assert "product_watch watches product series only" in line, line
    assert not (tmp_path / "run").exists()


def test_the_gate_needs_a_voter_that_can_alarm():
    from analytics.config import load_analysis_config
    from analytics.config_checks import alarming_voters

    cfg = load_analysis_config(None, [f"detectors.{v}.enabled=false" for v in STORE_VOTERS])
    assert alarming_voters(cfg) == ["product_watch"]       # store data, products watched
    assert alarming_voters(cfg, products=False) == []       # --kpis input: no product series
    flat = load_analysis_config(None, ["dimensions=[overall,channel]"])
    voters = alarming_voters(flat)
    assert "product_watch" not in voters and "rolling_zscore" in voters


def test_product_watch_alone_counts_on_store_data_only_with_products_watched(tiny_world,
                                                                             tmp_path):
    from api.jobs import JobManager
    from shocklab.errors import InputError

    jobs = JobManager(tmp_path / "reports")
    off = [f"detectors.{v}.enabled=false" for v in STORE_VOTERS]
    assert jobs.plan(tiny_world, None, off)   # product series watched: product_watch can alarm
    no_products = "dimensions=[overall,channel,country,category]"
    with pytest.raises(InputError, match="product_watch watches product series only"):
        jobs.plan(tiny_world, None, [*off, no_products])


def test_a_request_disabling_every_voter_is_refused_before_it_starts(tiny_world, tmp_path):
    """POST /runs with overrides turning every voter off: 202, then a run reporting nothing."""
    from api.jobs import JobManager
    from shocklab.errors import InputError

    jobs = JobManager(tmp_path / "reports")
    off = [f"detectors.{v}.enabled=false" for v in VOTERS]
    want = r'detector is off .*overrides detectors\.rolling_zscore\.enabled=true.*"detectors"'
    with pytest.raises(InputError, match=want):
        jobs.plan(tiny_world, None, off)
    assert jobs.plan(tiny_world, ["oracle"], off)   # named: the oracle alone, as documented
    assert jobs.plan(tiny_world, None, off[1:])     # one voter left


# ---- a log file that cannot be written (item 11) ---------------------------------------------

def test_a_log_file_that_cannot_be_opened_is_one_warning(cli, tmp_path, monkeypatch):
    """A log directory under a regular file (or a shocklab.log that is a directory) dropped the
    log without a word, while a write failing later warned (audit 2026-12-05)."""
    (tmp_path / "afile").write_text("x")
    for log_dir in (tmp_path / "afile" / "sub", tmp_path / "logdir"):
        if log_dir.name == "logdir":
            (log_dir / "shocklab.log").mkdir(parents=True)
        monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(log_dir))
        out = tmp_path / f"run-{log_dir.name}"
        r = cli("analysis", "--kpis", _kpis(tmp_path), "--out", out, "--quiet")
        assert r.returncode == 0, r.stderr
        warned = [ln for ln in r.stderr.splitlines() if "cannot open the log file" in ln]
        assert len(warned) == 1 and "this run is not logged there" in warned[0], r.stderr
        assert (out / "run.json").is_file()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_log_file_on_a_full_disk_is_one_warning_then_dropped(cli, tmp_path, monkeypatch):
    """Every record written to a log file on a full disk printed a "--- Logging error ---"
    traceback on stderr (21 of them in the audit's --quiet run)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "shocklab.log").symlink_to("/dev/full")   # every write: ENOSPC
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(logs))
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Logging error" not in r.stderr and "Traceback" not in r.stderr, r.stderr[:2000]
    warned = [line for line in r.stderr.splitlines() if "shocklab.log" in line]
    assert len(warned) == 1 and "no space left on device" in warned[0], r.stderr
    assert "not logged" in warned[0] and (tmp_path / "run" / "run.json").exists()


def test_a_failing_log_file_is_named_in_no_internal_error_line(tmp_path, monkeypatch, capsys):
    """After the log file failed, an internal error does not send the user to it."""
    import logging

    from shocklab import cli as shcli

    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", str(logs))

    def main(argv):
        log = shcli.setup_logging("test")
        fh = next(h for h in logging.getLogger("shocklab").handlers
                  if isinstance(h, logging.FileHandler))

        def full(*a):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(fh.stream, "write", full)
        for i in range(5):
            log.info("line %d", i)
        raise ValueError("boom")

    assert shcli.run_cli(main, []) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Logging error" not in err and len(lines) == 2, err   # one warning, one error line
    assert "shocklab.log" in lines[0] and "no space left on device" in lines[0]
    assert lines[1].startswith("internal error: ValueError: boom")
    assert "rerun with --debug" in lines[1] and "traceback in" not in lines[1]


@pytest.mark.parametrize("flag", ["--kpis", "--calendar"])
def test_a_row_with_more_fields_than_the_header_names_its_data_row(cli, tmp_path, flag):
    """A ragged row said pandas' "cannot read (Error tokenizing data. C error: Expected 2 fields
    in line 3, saw 3)", a file line, where --events names the data row (docs audit 2026-12-05)."""
    rag = tmp_path / "rag.csv"
    if flag == "--kpis":
        rag.write_text("date,revenue\n2025-01-01,5\n2025-01-02,6,7\n2025-01-03,7\n")
        args = ["--kpis", rag]
    else:
        rag.write_text("date,name\n2025-01-05,sale\n2025-01-09,spring,extra\n")
        args = ["--kpis", _kpis(tmp_path), "--calendar", rag]
    r = cli("analysis", *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert f"{rag}: data row 2 has 3 fields, the header 2" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("flags", "says"), [
    (["--detectors", "product_watch"], "--detectors product_watch: none of them can raise an "
                                       "incident on this input"),
    (["--step", "7"], "--step: '7' has no unit"),
    (["--no-verify"], "--no-verify applies to --data only"),
])
def test_flags_that_could_not_act_on_a_kpis_file_are_refused(cli, tmp_path, flags, says):
    """The CLI help audit (2026-12-05): product_watch named alone on a --kpis file ran nothing,
    exit 0; '--step 7' was 7 nanoseconds and the error blamed the file's gaps; --no-verify was
    ignored where its sibling flags say they apply to one input only."""
    r = cli("analysis", "--kpis", _kpis(tmp_path), "--out", tmp_path / "run", *flags)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and says in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()
