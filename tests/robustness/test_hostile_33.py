"""Hostile inputs of the session-33 audit, replayed against the CLIs in-process: out-of-range
dates (silently wrapped round by the nanosecond cast, or an internal error), compressed files
cut short or of the wrong kind, a --step with no duration in it or coarser than the file, and
config files and flags the suite did not try. Bad input is exit 2, one line naming the thing at
fault, nothing written and nothing of the user's moved or changed."""

from __future__ import annotations

import bz2
import gzip
import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.robustness.txgen import transactions, write_csv
from tests.simulation.simtools import tiny_config

SKIP = {"logs", "state"}   # the CLIs' own log file and alert state, not outputs


def _tree(d: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and directory (None) under ``d``."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(d.rglob("*")) if p.relative_to(d).parts[0] not in SKIP}


def _kpis(n: int = 40, start: str = "2024-01-01") -> str:
    g = np.random.default_rng(7)
    return pd.DataFrame({
        "date": pd.date_range(start, periods=n, freq="D").strftime("%Y-%m-%d"),
        "orders": g.poisson(100, n),
        "revenue": g.normal(5000, 300, n).round(2),
    }).to_csv(index=False)


KPIS = _kpis()
TX_ROW = "599999,20001,ITEM,1,{},1.0,12001.0,United Kingdom\n"


def _tx(tmp: Path, year: str = "2011", n: int = 600) -> str:
    path = write_csv(transactions(n, 30), tmp / "_tx.csv")
    text = path.read_text().replace("2011-", f"{year}-")
    path.unlink()
    return text


def _gz_cut(text: str) -> bytes:
    # a fixed header timestamp, the one of CI's failing run (stop 47): its bytes hold a tab, and
    # the sniffer read the raw bytes' "header line" as splitting at ',' and tab alike
    whole = gzip.compress(text.encode(), mtime=0x6B12E709)
    return whole[:len(whole) // 2]


def _bz2_cut(text: str) -> bytes:
    whole = bz2.compress(text.encode())
    return whole[:len(whole) // 2]


def _parquet_far(tmp: Path) -> None:
    days = pd.date_range("2024-01-01", periods=40).as_unit("s") + pd.Timedelta(days=365 * 7000)
    pd.DataFrame({"date": days, "orders": range(40)}).to_parquet(tmp / "k.parquet")


def _tiny_yaml(**changes) -> str:
    return yaml.safe_dump(tiny_config(**changes), sort_keys=False)


# (id, which CLI, its arguments, files to write first {name: text | bytes | callable}, needles
# the one stderr line must hold). "data" in the arguments is a fresh copy of the tiny world.
REFUSED = [
    # ---- timestamps outside 1678-2261: were wrapped round silently (year 9024 analysed as 2009)
    ("kpis-year-9024", "analysis", ["--kpis", "k.csv"],
     {"k.csv": KPIS.replace("2024-", "9024-")},
     ["k.csv", "'date'", "'9024-01-01' is out of range", "data row 1"]),
    ("kpis-year-1024", "analysis", ["--kpis", "k.csv"],
     {"k.csv": KPIS.replace("2024-", "1024-")}, ["'1024-01-01' is out of range", "data row 1"]),
    # one stray row: the message named a gap "after 1816-03-29 05:56:08.066" (wrapped round)
    ("kpis-one-row-9999", "analysis", ["--kpis", "k.csv"],
     {"k.csv": KPIS + "9999-12-31,100,5000\n"}, ["'9999-12-31' is out of range", "data row 41"]),
    ("kpis-long-layout", "analysis", ["--kpis", "k.csv"],
     {"k.csv": "timestamp,kpi,value\n" + "".join(f"9024-01-{i:02d},orders,{i}\n"
                                                 for i in range(1, 29))},
     ["'timestamp'", "'9024-01-01' is out of range"]),
    ("kpis-hourly-3024", "analysis", ["--kpis", "k.csv"],
     {"k.csv": "timestamp,v\n" + "".join(f"3024-01-01T{h:02d}:00:00,{h}\n" for h in range(24))},
     ["is out of range", "data row 1"]),
    ("kpis-parquet-year-9019", "analysis", ["--kpis", "k.parquet"], {"k.parquet": _parquet_far},
     ["k.parquet", "is out of range", "data row 1"]),
    # ---- a transaction file whose every date is out of range: was exit 3 (OutOfBoundsDatetime)
    ("tx-year-9011", "analysis", ["--transactions", "t.csv"], {"t.csv": lambda d: _tx(d, "9011")},
     ["t.csv", "InvoiceDate", "not a date", "'9011-"]),
    ("tx-year-1011", "analysis", ["--transactions", "t.csv"], {"t.csv": lambda d: _tx(d, "1011")},
     ["InvoiceDate", "'1011-"]),
    ("tx-year-9011-date-format", "analysis",
     ["--transactions", "t.csv", "--date-format", "%Y-%m-%d %H:%M:%S"],
     {"t.csv": lambda d: _tx(d, "9011")}, ["InvoiceDate", "'9011-"]),
    # ---- a data directory: exit 3 (order_ts), or "Casting from date32[day] to timestamp[ns]"
    ("data-order-ts-9999", "analysis", ["--data", "data", "--no-verify"],
     {("data/orders.csv", "2025-01-01 00:00", "9999-01-01 00:00"): None},
     ["data/orders.csv", "'order_ts' is out of range", "'9999-01-01 00:00", "data row 1"]),
    ("data-order-date-9999", "analysis", ["--data", "data", "--no-verify"],
     {("data/orders.csv", ",2025-01-01,", ",9999-01-01,"): None},
     ["'order_date' is out of range", "'9999-01-01'", "data row 1"]),
    ("data-traffic-year-1000", "analysis", ["--data", "data", "--no-verify"],
     {("data/website_traffic.csv", "2025-01-01", "1000-01-01"): None},
     ["website_traffic.csv", "'date' is out of range", "'1000-01-01'"]),
    # ---- compressed files cut short or not what their name says: were exit 3
    ("kpis-gz-cut-short", "analysis", ["--kpis", "k.csv.gz"], {"k.csv.gz": _gz_cut(KPIS)},
     ["k.csv.gz: cannot read", "Compressed file ended"]),
    ("kpis-bz2-cut-short", "analysis", ["--kpis", "k.csv.bz2"], {"k.csv.bz2": _bz2_cut(KPIS)},
     ["k.csv.bz2: cannot read"]),
    ("kpis-zip-not-a-zip", "analysis", ["--kpis", "k.zip"], {"k.zip": b"PK\x03\x04garbage"},
     ["k.zip: cannot read", "not a zip file"]),
    ("kpis-xz-plain-text", "analysis", ["--kpis", "k.csv.xz"], {"k.csv.xz": KPIS},
     ["k.csv.xz: cannot read"]),
    ("calendar-gz-cut-short", "analysis", ["--kpis", "k.csv", "--calendar", "c.csv.gz"],
     {"k.csv": KPIS, "c.csv.gz": _gz_cut("date\n" + "2024-02-01\n" * 50)},
     ["c.csv.gz: cannot read the calendar"]),
    # ---- --step: 'nan' parsed as NaT (exit 3); one far too coarse analysed one period
    ("step-nan", "analysis", ["--kpis", "k.csv", "--step", "nan"], {"k.csv": KPIS},
     ["--step", "'nan'"]),
    ("step-coarser-than-the-file", "analysis", ["--kpis", "k.csv", "--step", "100000D"],
     {"k.csv": KPIS}, ["k.csv", "40 timestamps into 1 period", "at least 3", "--step"]),
    ("step-two-periods", "analysis", ["--kpis", "k.csv", "--step", "30D"], {"k.csv": KPIS},
     ["into 2 period", "at least 3"]),
    # ---- config files and flags the suite did not try (refused already; kept refused)
    ("config-latin1", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml().replace("scenario: tiny", "scenario: café").encode("latin-1")},
     ["c.yaml", "not UTF-8 (byte 0xe9 at line 1, column 14); save the file as UTF-8"]),
    ("config-utf16", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml().encode("utf-16")}, ["c.yaml", "not UTF-8 (byte 0xff at line 1"]),
    ("config-python-tag", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml() + "x: !!python/object/apply:os.system ['touch PWNED']\n"},
     ["c.yaml", "invalid YAML", "python/object"]),
    ("config-unhashable-key", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml() + "? [a, b]\n: 1\n"}, ["c.yaml", "unhashable key"]),
    ("config-two-documents", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml() + "---\nseed: 3\n"}, ["c.yaml", "another document"]),
    ("config-nul-character", "generate", ["--config", "c.yaml"],
     {"c.yaml": _tiny_yaml() + "# \x00\n"}, ["c.yaml", "#x0000"]),
    ("analysis-config-scalar", "analysis", ["--kpis", "k.csv", "--config", "c.yaml"],
     {"k.csv": KPIS, "c.yaml": "hello\n"}, ["c.yaml", "top level must be a mapping", "str"]),
    ("set-into-a-number", "generate", ["--config", "c.yaml", "--set", "seed.x=1"],
     {"c.yaml": _tiny_yaml()}, ["seed.x=1", "seed is not a mapping or list"]),
    # ---- outputs that would replace an input
    ("out-is-the-kpis-file", "analysis", ["--kpis", "k.csv", "--out", "k.csv"], {"k.csv": KPIS},
     ["k.csv", "not a directory"]),
    ("out-holds-the-kpis-file", "analysis", ["--kpis", "in/k.csv", "--out", "in"],
     {"in/k.csv": KPIS}, ["--out in", "contains the input in/k.csv"]),
    ("out-holds-the-transactions", "analysis", ["--transactions", "in/t.csv", "--out", "in"],
     {"in/t.csv": lambda d: _tx(d)}, ["--out in", "contains the input in/t.csv"]),
    ("kpis-dev-null", "analysis", ["--kpis", "/dev/null"], {}, ["/dev/null", "not a regular file"]),
]


def _setup(tmp: Path, files: dict, fresh_world: Path | None) -> None:
    for name, text in files.items():
        if isinstance(name, tuple):   # (a data directory's file, old, new): edit the world
            rel, old, new = name
            p = tmp / rel
            p.write_text(p.read_text().replace(old, new, 1))
            continue
        p = tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(text):
            text = text(tmp)
            if text is None:
                continue
        (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)


@pytest.mark.parametrize(("which", "args", "files", "needles"),
                         [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_a_hostile_input_is_one_line_exit_2_and_nothing_written(
        which, args, files, needles, cli, tmp_path, request):
    world = request.getfixturevalue("fresh_world") if "data" in args else None
    _setup(tmp_path, files, world)
    before = _tree(tmp_path)
    out = [] if "--out" in args else ["--out", "o"]
    r = cli(which, *args, *out)
    err = r.stderr.strip()
    assert r.returncode == 2, err
    assert "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert _tree(tmp_path) == before   # no output, no temporary, no input changed or moved


@pytest.mark.skipif(importlib.util.find_spec("zstandard") is not None,
                    reason="zstandard installed: the missing-package path cannot happen")
def test_a_zst_file_without_its_package_is_one_line(cli, tmp_path):
    """pandas raised ImportError ('Import zstandard failed'): exit 3, "a bug in ShockLab"."""
    (tmp_path / "k.csv.zst").write_text(KPIS)
    r = cli("analysis", "--kpis", tmp_path / "k.csv.zst", "--out", tmp_path / "o")
    assert r.returncode == 2 and "k.csv.zst: cannot read" in r.stderr, r.stderr
    assert "zstandard" in r.stderr and "\n" not in r.stderr.strip()
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("stray", ["9999-12-31 10:00:00", "31/12/9999 10:00"])
def test_one_transaction_dated_9999_is_left_out_and_counted(stray, cli, tmp_path):
    """One row of year 9999 among good ones was exit 3 (OutOfBoundsDatetime, ISO and day-first
    alike); it is a bad date like any other: left out, counted, named."""
    f = tmp_path / "t.csv"
    f.write_text(_tx(tmp_path) + TX_ROW.format(stray))
    r = cli("analysis", "--transactions", f, "--out", tmp_path / "o", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "1 row(s) left out as bad_value" in r.stderr and stray in r.stderr, r.stderr
    orders = pd.read_csv(tmp_path / "o" / "kpis_daily.csv", usecols=["date"])
    assert orders["date"].max() < "2012"


@pytest.mark.parametrize("eol", ["mixed", "cr"])
def test_a_kpi_file_with_mixed_or_old_mac_line_endings_reads_like_the_lf_file(eol, tmp_path):
    from analytics.external import load_kpis_file

    lines = KPIS.splitlines()
    text = ("".join(line + ("\r\n", "\r", "\n")[i % 3] for i, line in enumerate(lines))
            if eol == "mixed" else "\r".join(lines) + "\r")
    (tmp_path / "lf.csv").write_text(KPIS)
    (tmp_path / "odd.csv").write_bytes(text.encode())
    want = load_kpis_file(tmp_path / "lf.csv").tables["kpis_daily"]
    got = load_kpis_file(tmp_path / "odd.csv").tables["kpis_daily"]
    pd.testing.assert_frame_equal(got, want)


def test_a_config_with_a_byte_order_mark_or_crlf_generates_the_same_world(cli, tmp_path):
    text = _tiny_yaml()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode())
    for name in ("a", "b"):
        r = cli("generate", "--config", tmp_path / f"{name}.yaml", "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "a" / "orders.csv").read_bytes() == \
        (tmp_path / "b" / "orders.csv").read_bytes()


def test_a_zip_holding_one_csv_is_read_like_the_csv(tmp_path):
    from analytics.external import load_kpis_file

    (tmp_path / "k.csv").write_text(KPIS)
    with zipfile.ZipFile(tmp_path / "k.csv.zip", "w") as z:
        z.writestr("k.csv", KPIS)
    pd.testing.assert_frame_equal(load_kpis_file(tmp_path / "k.csv.zip").tables["kpis_daily"],
                                  load_kpis_file(tmp_path / "k.csv").tables["kpis_daily"])


def test_a_file_of_only_absurd_amounts_is_the_error_line_alone(cli, tmp_path):
    """Every row's quantity x price beyond 1e12: the run ends with one error line (it names the
    bad value); the two warnings before it said the same thing twice more (audit 51). With one
    such row among good ones the warning is said once."""
    from tests.robustness.txgen import transactions

    tx = transactions(n_rows=400, days=40)
    huge = tx.assign(Quantity=10**15)
    huge.to_csv(tmp_path / "huge.csv", index=False)
    r = cli("analysis", "--transactions", tmp_path / "huge.csv", "--out", tmp_path / "o",
            "--quiet")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "no valid sales rows left" in r.stderr and "beyond 1e12" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
    one = pd.concat([tx, huge.head(1)], ignore_index=True)
    one.to_csv(tmp_path / "one.csv", index=False)
    r = cli("analysis", "--transactions", tmp_path / "one.csv", "--out", tmp_path / "o1",
            "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("beyond 1e") == 1, r.stderr
