"""Bug F4: a compressed or binary file named ``*.csv`` was parsed as text. A gzipped --kpis file
was "column '\\x8b\\x08…' is not a timestamp" (700 characters of escapes); a Parquet file or a
workbook renamed .csv was told to quote a value holding the separator; a gzipped --transactions
file "not an Online Retail layout"; a data directory's orders.csv gzipped in place "cannot read
('utf-8' codec can't decode byte 0x8b …)". Now each is exit 2 with one short line naming the
file, what it is (gzip, bzip2, xz, ZIP, an Excel workbook, Parquet, binary data) and what to do
(the name that reads it, or decompress it); the same bytes under that name are read."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.external import load_kpis_file
from analytics.transactions import load_transactions
from shocklab.errors import InputError
from shocklab.textfile import binary_kind, refuse_binary

DAYS = pd.date_range("2025-01-01", periods=60, freq="D")
KPIS = pd.DataFrame({"date": DAYS.strftime("%Y-%m-%d"),
                     "revenue": np.round(1000 + np.random.default_rng(0).normal(0, 20, 60), 1)})
TX = pd.DataFrame([[str(500000 + i), f"S{i % 7}", "Item", str(1 + i % 9),
                    f"2010-12-{1 + i % 28:02d} 10:00", f"{2.5 + i % 4:.2f}", str(12000 + i % 11),
                    "UK"] for i in range(60)],
                  columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                           "UnitPrice", "CustomerID", "Country"])


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _zip(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("table.csv", _csv(df))
    return buf.getvalue()


def _xlsx(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_excel(buf, index=False, engine="openpyxl")
    return buf.getvalue()


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def _ods(df: pd.DataFrame) -> bytes:   # the layout's first member only: odfpy is not installed
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<office:document-content/>")
    return buf.getvalue()


# kind: (the bytes of a table in it, what the line names, the file name that reads it or None)
KINDS = {
    "gzip": (lambda df: gzip.compress(_csv(df), mtime=0), "gzip", "{name}.gz"),
    "bzip2": (lambda df: bz2.compress(_csv(df)), "bzip2", "{name}.bz2"),
    "xz": (lambda df: lzma.compress(_csv(df)), "xz", "{name}.xz"),
    "zip": (_zip, "ZIP", "{name}.zip"),
    "xlsx": (_xlsx, "Excel workbook", None),
    "parquet": (_parquet, "Parquet", "{stem}.parquet"),
    "binary": (lambda df: bytes(range(256)) * 8, "binary data", None),
}


def _write(tmp_path: Path, kind: str, df: pd.DataFrame, name: str = "table.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(KINDS[kind][0](df))
    return p


def _one_line(r, path: Path, *needles: str) -> str:
    """Exit 2, one short stderr line naming ``path`` and ``needles``, no escapes, no output."""
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, r.stderr
    assert str(path) in line and len(line) < 300 and "\\" not in line, line
    for n in needles:
        assert n in line, line
    assert not Path("run").exists()
    return line


# ---- --kpis -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS))
def test_a_kpi_file_that_is_no_csv_text_is_named(kind, cli, tmp_path):
    p = _write(tmp_path, kind, KPIS)
    _, what, rename = KINDS[kind]
    fix = rename.format(name=p.name, stem=p.stem) if rename else ""
    _one_line(cli("analysis", "--kpis", p, "--out", "run", "--quiet"), p, what, "not CSV text",
              fix)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zip", "parquet"])
def test_the_name_the_line_gives_reads_the_same_bytes(kind, tmp_path):
    """The advice works: the file under the name the line gives is read, as the plain CSV."""
    p = _write(tmp_path, kind, KPIS)
    with pytest.raises(InputError):
        load_kpis_file(p)
    renamed = p.rename(tmp_path / KINDS[kind][2].format(name=p.name, stem=p.stem))
    want = load_kpis_file(_csv_file(tmp_path, KPIS)).tables["kpis_daily"]
    pd.testing.assert_frame_equal(load_kpis_file(renamed).tables["kpis_daily"], want)


def _csv_file(tmp_path: Path, df: pd.DataFrame) -> Path:
    p = tmp_path / "plain.csv"
    p.write_bytes(_csv(df))
    return p


# ---- --transactions, --calendar, --events -------------------------------------------------------

@pytest.mark.parametrize(("kind", "fix"), [
    ("gzip", "rename it tx.csv.gz"),
    ("xlsx", "rename it tx.xlsx"),            # --transactions reads workbooks
    ("parquet", "export the table as CSV"),   # … and no Parquet
])
def test_a_transactions_file_that_is_no_csv_text_is_named(kind, fix, cli, tmp_path):
    p = _write(tmp_path, kind, TX, "tx.csv")
    _one_line(cli("analysis", "--transactions", p, "--out", "run", "--quiet"), p,
              KINDS[kind][1], fix)


def test_a_workbook_renamed_as_the_line_says_is_read(tmp_path):
    p = _write(tmp_path, "xlsx", TX, "tx.csv")
    with pytest.raises(InputError, match="Excel workbook"):
        load_transactions(p)
    assert len(load_transactions(p.rename(tmp_path / "tx.xlsx")).tables["orders"]) == 60


@pytest.mark.parametrize(("flag", "df"), [
    ("--calendar", pd.DataFrame({"date": ["2025-01-20"], "name": ["sale"], "kind": ["campaign"],
                                 "scope": ["all"]})),
    ("--events", pd.DataFrame({"start": ["2025-01-20"], "end": ["2025-01-22"]})),
])
def test_a_gzipped_calendar_or_labels_file_is_named(flag, df, cli, tmp_path):
    kpis = _csv_file(tmp_path, KPIS)
    p = _write(tmp_path, "gzip", df, "side.csv")
    _one_line(cli("analysis", "--kpis", kpis, flag, p, "--out", "run", "--quiet"), p, "gzip",
              "rename it side.csv.gz")


def test_a_gzipped_labels_json_is_named_and_its_renamed_copy_read(cli, tmp_path):
    """`--events labels.json` gzipped under its name: "cannot read JSON (UnicodeDecodeError …)"
    named neither what it was nor the fix (a .json.gz is read compressed)."""
    import json

    kpis = _csv_file(tmp_path, KPIS)
    text = json.dumps([{"start": "2025-01-20", "end": "2025-01-22"}]).encode()
    p = tmp_path / "labels.json"
    p.write_bytes(gzip.compress(text, mtime=0))
    _one_line(cli("analysis", "--kpis", kpis, "--events", p, "--out", "run", "--quiet"), p,
              "gzip-compressed, not JSON text", "labels.json.gz")
    r = cli("analysis", "--kpis", kpis, "--events", p.rename(tmp_path / "labels.json.gz"),
            "--out", "run2", "--quiet")
    assert r.returncode == 0, r.stderr


# ---- a data directory ---------------------------------------------------------------------------

@pytest.mark.parametrize("table", ["orders", "website_traffic"])
def test_a_data_table_gzipped_in_place_is_named(table, cli, fresh_world):
    p = fresh_world / f"{table}.csv"
    p.write_bytes(gzip.compress(p.read_bytes(), mtime=0))
    line = _one_line(cli("analysis", "--data", fresh_world, "--out", "run", "--quiet"), p,
                     "gzip", "decompress it")
    assert ".csv.gz" not in line   # a data directory finds <table>.csv or .parquet only


def test_a_data_table_that_is_parquet_is_named(cli, fresh_world):
    p = fresh_world / "orders.csv"
    p.write_bytes(_parquet(pd.read_csv(p)))
    _one_line(cli("analysis", "--data", fresh_world, "--out", "run", "--quiet"), p, "Parquet",
              "rename it orders.parquet")


# ---- the sniffer --------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "what"), [
    (gzip.compress(b"date,x\n", mtime=0), "gzip-compressed"),
    (bz2.compress(b"date,x\n"), "bzip2-compressed"),
    (bz2.compress(b""), "bzip2-compressed"),
    (lzma.compress(b"date,x\n"), "xz-compressed"),
    (b"\x28\xb5\x2f\xfd\x04\x58" + bytes(20), "zstd-compressed"),   # no zstandard installed
    (_zip(KPIS), "a ZIP archive"),
    (_xlsx(KPIS), "an Excel workbook (XLSX)"),
    (_ods(KPIS), "an OpenDocument spreadsheet"),
    (_parquet(KPIS), "a Parquet file"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "an Excel 97-2003 workbook"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary data"),
    (b"SQLite format 3\x00" + bytes(4000), "binary data"),
    ("date,x\n2025-01-01,1\n".encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    ("date,x\n2025-01-01,1\n".encode("utf-16-be"), "UTF-16 text without a byte-order mark"),
])
def test_binary_kind_names_each_format(data, what, tmp_path):
    p = tmp_path / "f.csv"
    p.write_bytes(data)
    kind = binary_kind(p)
    assert kind is not None and kind[0].startswith(what), kind
    with pytest.raises(InputError, match="f.csv: "):
        refuse_binary(p, "--kpis", "CSV or Parquet")


TEXT = "date,Umsatz (€)\n2025-01-01,1002.5\n2025-01-02,998\n"


@pytest.mark.parametrize(("name", "data"), [
    ("plain.csv", TEXT.encode()),
    ("bom.csv", TEXT.encode("utf-8-sig")),
    ("utf16.csv", TEXT.encode("utf-16")),            # Excel's "Unicode text": with its mark
    ("utf16be.csv", b"\xfe\xff" + TEXT.encode("utf-16-be")),
    ("cp1252.csv", TEXT.encode("cp1252")),
    ("tabs.csv", TEXT.replace(",", "\t").encode()),
    ("stray_nul.csv", TEXT.replace("1002.5", "1002.5\x00").encode()),   # read today: still read
    ("empty.csv", b""),
    ("plain.csv.gz", gzip.compress(TEXT.encode(), mtime=0)),
    ("plain.csv.zip", _zip(KPIS)),
])
def test_text_is_not_flagged(name, data, tmp_path):
    p = tmp_path / name
    p.write_bytes(data)
    assert binary_kind(p) is None
    refuse_binary(p, "--kpis", "CSV or Parquet")


def test_a_compressed_name_is_looked_at_decompressed(tmp_path):
    """``k.csv.gz`` holding a Parquet file: what is inside is named, not the gzip around it."""
    p = tmp_path / "k.csv.gz"
    p.write_bytes(gzip.compress(_parquet(KPIS), mtime=0))
    with pytest.raises(InputError, match="decompressed, a Parquet file, not CSV text"):
        refuse_binary(p, "--kpis", "CSV or Parquet", renames=(".parquet",))


def test_the_sniffer_reads_only_the_files_start(tmp_path, monkeypatch):
    """A few KB, whatever the file's size (a binary file's 700 MB are not read to name it)."""
    import shocklab.textfile as tf

    p = tmp_path / "big.csv"
    p.write_bytes(TEXT.encode() * 20000)
    sizes = []
    real = tf._opened

    class Spy:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            sizes.append(n)
            return self.f.read(n)

    from contextlib import contextmanager

    @contextmanager
    def spying(path):
        with real(path) as f:
            yield Spy(f)

    monkeypatch.setattr(tf, "_opened", spying)
    assert binary_kind(p) is None
    assert sizes and all(0 < n <= tf.SNIFF_BYTES for n in sizes)


def test_the_columnar_reader_names_a_gzipped_orders_table(fresh_world):
    """``kpis_daily_from_files`` hands the data directory's CSV files to DuckDB: refused first."""
    pytest.importorskip("duckdb")
    from analytics.kpis_columnar import kpis_daily_from_files

    p = fresh_world / "orders.csv"
    p.write_bytes(gzip.compress(p.read_bytes(), mtime=0))
    with pytest.raises(InputError, match=r"orders\.csv: gzip-compressed, not CSV text"):
        kpis_daily_from_files(fresh_world)
