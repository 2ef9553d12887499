"""A compressed user file (``.csv.gz``, ``.bz2``, ``.xz``, ``.zip``) is sniffed decompressed, as
pandas reads it. Sniffed on its raw bytes, a valid ``calendar.csv.gz`` was refused when the gzip
header's timestamp held a tab beside a comma (CI, stop 47: "cannot tell the column separator"), a
';'-separated ``kpis.csv.gz`` was read as one column, and a UTF-8 transactions ``.csv.gz`` was
decoded as Latin-1 ('Curaçao' read 'CuraÃ§ao')."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile

import pandas as pd
import pytest

from analytics.external import load_kpis_file
from analytics.external_calendar import load_calendar
from analytics.transactions import load_transactions
from shocklab.textfile import csv_header, csv_options, decoding

# the gzip header's mtime CI's cut-short calendar had: its bytes are '\t\xe7\x12k'
CI_MTIME = 0x6B12E709


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=CI_MTIME)


def _zip(data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.csv", data)
    return buf.getvalue()


COMPRESSORS = {".gz": _gz, ".bz2": bz2.compress, ".xz": lzma.compress, ".zip": _zip}


def test_the_gzip_header_ci_had_holds_a_tab_and_a_comma_before_any_newline():
    """The premise: read as text, that file's first line splits at ',' and at tab alike."""
    raw = _gz(b"date,name,kind,scope\n2024-02-01,Sale,promo,all\n")
    first = raw.split(b"\n")[0]
    assert b"\t" in first and b"," in first


@pytest.mark.parametrize("suffix", list(COMPRESSORS))
@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_a_compressed_file_is_sniffed_on_its_text(tmp_path, suffix, sep):
    f = tmp_path / f"k.csv{suffix}"
    f.write_bytes(COMPRESSORS[suffix](f"date{sep}revenue\n2025-01-01{sep}15\n".encode()))
    assert csv_options(f) == {"encoding": "utf-8-sig", "sep": sep}
    assert csv_header(f) == ["date", "revenue"]


def test_a_utf16_file_compressed_is_utf16(tmp_path):
    f = tmp_path / "k.csv.gz"
    f.write_bytes(_gz("date\trevenue\n2025-01-01\t15\n".encode("utf-16")))
    assert csv_options(f) == {"encoding": "utf-16", "sep": "\t"}


def test_a_compressed_file_is_decoded_on_its_decompressed_bytes(tmp_path):
    f = tmp_path / "t.csv.gz"
    f.write_bytes(_gz("Country\nCuraçao\n".encode()))
    assert decoding(f) == "utf-8"
    f.write_bytes(_gz("Country\nCuraçao\n".encode("cp1252")))
    assert decoding(f) == "cp1252"


def test_a_valid_gzipped_calendar_is_read(tmp_path):
    f = tmp_path / "c.csv.gz"
    f.write_bytes(_gz(b"date,name,kind,scope\n2024-02-01,Sale,promo,all\n"))
    days = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=60), "dimension": "overall",
                         "segment": "all", "orders": 100.0})
    cal, _ = load_calendar(f, days)
    assert list(cal["name"]) == ["Sale"]
    assert list(cal["date"].astype(str).str[:10]) == ["2024-02-01"]


def test_a_semicolon_kpi_file_gzipped_with_decimal_commas_is_read(tmp_path):
    rows = "".join(f"2025-01-{d:02d};{100 + d},5\n" for d in range(1, 29))
    f = tmp_path / "k.csv.gz"
    f.write_bytes(_gz(("date;revenue\n" + rows).encode()))
    kpis = load_kpis_file(f).tables["kpis_daily"]
    assert kpis["revenue"].iloc[:3].tolist() == [101.5, 102.5, 103.5]


def test_a_utf8_transactions_file_gzipped_keeps_its_letters(tmp_path):
    lines = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    lines += [f"{536365 + i},85123A,MUG,2,2010-12-0{1 + i % 5} 08:26,2.55,{17850 + i % 3},Curaçao"
              for i in range(12)]
    f = tmp_path / "t.csv.gz"
    f.write_bytes(_gz(("\n".join(lines) + "\n").encode()))
    orders = load_transactions(f).tables["orders"]
    assert set(orders["country"]) == {"Curaçao"}


KPI_ROWS = ("date,revenue\n" + "".join(f"2025-01-{d:02d},{100 + d}\n" for d in range(1, 29))
            ).encode() * 8


def _corrupt_gz(data: bytes) -> bytes:
    """A gzip file whose deflate stream is broken inside (not cut short): zlib.error, which is
    no OSError, when read."""
    raw = bytearray(_gz(data))
    for i in range(30, 60):
        raw[i] ^= 0xFF
    return bytes(raw)


def test_the_corrupt_gzip_premise():
    import zlib

    with pytest.raises(zlib.error):
        gzip.decompress(_corrupt_gz(KPI_ROWS))


def test_a_kpi_file_corrupt_inside_is_bad_input(tmp_path):
    """It was an internal error (exit 3: zlib.error escaped read_table)."""
    from shocklab.errors import InputError

    f = tmp_path / "k.csv.gz"
    f.write_bytes(_corrupt_gz(KPI_ROWS))
    with pytest.raises(InputError, match=r"k\.csv\.gz: cannot read \(Error -3 while decompressing"):
        load_kpis_file(f)


def test_a_calendar_corrupt_inside_is_bad_input(tmp_path):
    from shocklab.errors import InputError

    f = tmp_path / "c.csv.gz"
    f.write_bytes(_corrupt_gz(b"date,name\n" + b"2024-02-01,Sale\n" * 200))
    days = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=60), "dimension": "overall",
                         "segment": "all", "orders": 100.0})
    with pytest.raises(InputError, match=r"c\.csv\.gz: cannot read the calendar \(Error -3"):
        load_calendar(f, days)


@pytest.mark.parametrize(("name", "text"), [
    ("labels.csv", "start,end\n2025-01-10,2025-01-12\n"),
    ("labels.json", '[{"start": "2025-01-10", "end": "2025-01-12"}]'),
])
def test_a_compressed_events_file_is_read_like_the_plain_one(tmp_path, name, text):
    """'labels.csv.gz' was taken for JSON ("cannot read JSON (UnicodeDecodeError …)"), and a
    '.json.gz' could not be read either."""
    from evaluation.labels import load_events_file

    plain, packed = tmp_path / name, tmp_path / f"{name}.gz"
    plain.write_text(text)
    packed.write_bytes(_gz(text.encode()))
    events = load_events_file(packed, ["revenue"])
    assert events == load_events_file(plain, ["revenue"])
    assert len(events) == 1 and str(events[0]["start"])[:10] == "2025-01-10"


def test_an_events_csv_corrupt_inside_is_bad_input(tmp_path):
    from evaluation.labels import load_events_file
    from shocklab.errors import InputError

    f = tmp_path / "labels.csv.gz"
    f.write_bytes(_corrupt_gz(b"start,end\n" + b"2025-01-10,2025-01-12\n" * 200))
    with pytest.raises(InputError, match=r"labels\.csv\.gz: cannot read CSV \(error: Error -3 "):
        load_events_file(f, ["revenue"])


def test_a_transaction_file_corrupt_inside_says_why(tmp_path):
    """It said "cannot read file (error)": zlib's error went to the catch-all, type name only."""
    from shocklab.errors import InputError

    f = tmp_path / "t.csv.gz"
    f.write_bytes(_corrupt_gz(b"InvoiceNo,StockCode,Quantity\n" + b"536365,85123A,2\n" * 300))
    why = r"t\.csv\.gz: cannot read CSV file \(error: Error -3 while decompressing"
    with pytest.raises(InputError, match=why):
        load_transactions(f)


def test_the_format_suffix_leaves_out_a_compression():
    from shocklab.textfile import plain_suffix

    assert [plain_suffix(n) for n in ("a.csv.gz", "A.JSON.BZ2", "a.csv", "a.gz", "a.tsv.zst")] \
        == [".csv", ".json", ".csv", "", ".tsv"]
