"""How a user's text file is encoded, decided once for every CSV reader (--kpis, --calendar,
--events, --transactions): Excel's "Unicode text" export is UTF-16 with a byte-order mark
(ff fe or fe ff); read as UTF-8 it was "cannot read ('utf-8' codec can't decode byte 0xff …)".
And how its fields are separated (``separator``: ',', ';', tab or '|', from the header line) and
whether its numbers have decimal commas (``decimal_commas``, in a ';'-separated file).
A compressed file (``.csv.gz``, ``.bz2``, ``.zip``, ``.xz``, ``.zst``) is looked at decompressed,
as pandas reads it: sniffed on its raw bytes, a valid ``calendar.csv.gz`` was refused now and then
("cannot tell the column separator": the gzip header's timestamp held a tab beside a comma).
A file that is no text at all (gzipped under its .csv name, a workbook or Parquet file renamed
.csv) is refused by its first bytes, naming what it is (``refuse_binary``)."""

from __future__ import annotations

import io
import lzma
import re
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def not_a_file(path: Path, what: str) -> str:
    """The error line for an input ``path`` that is no regular file: missing, or something that
    exists but cannot be read twice (``--kpis <(cmd)`` gives /dev/fd/63, a pipe: "KPI file not
    found" named a path that was there)."""
    if path.is_dir():
        return f"{path}: is a directory, not a {what}"
    if path.exists():
        return (f"{path}: is not a regular file (a pipe, a device or a socket); save the "
                f"{what} to a file and pass that")
    return f"{path}: {what} not found"


@contextmanager
def _opened(path: Path):
    """The file as a binary stream of what pandas' readers see: decompressed as its extension
    says (pandas' own inference: .gz .bz2 .zip .xz .zst .tar…), else its bytes."""
    from pandas.io.common import get_handle

    with get_handle(path, "rb", compression="infer", is_text=False) as handles:
        yield handles.handle


# a file failing to read or decompress: a .gz cut short (EOFError) or corrupt inside (zlib.error,
# which is no OSError: it was an internal error), a .zst without zstandard … The sniffers then
# guess, and the readers word it as bad input
UNREADABLE = (OSError, EOFError, ValueError, ImportError, zlib.error, lzma.LZMAError,
              zipfile.BadZipFile)

COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")


def plain_suffix(path: Path) -> str:
    """The suffix that names the file's format, a compression's left out: 'labels.csv.gz' ->
    '.csv' (lower case)."""
    path = Path(path)
    if path.suffix.lower() in COMPRESSIONS:
        path = path.with_suffix("")
    return path.suffix.lower()


WORKBOOKS = (".xlsx", ".xlsm", ".xls", ".xlsb", ".ods", ".numbers")


def refuse_workbook(path: Path, flag: str, reads: str) -> None:
    """A spreadsheet workbook given where a text table is read: one line saying to save the sheet
    as CSV (--calendar said "Error tokenizing data", --events "cannot read JSON")."""
    suffix = plain_suffix(path)
    if suffix in WORKBOOKS:
        from .errors import InputError

        raise InputError(f"{path}: a spreadsheet workbook ({suffix}); {flag} reads {reads}: save "
                         "the sheet as CSV (CSV UTF-8) and pass that")


# the first bytes of a binary format given where CSV text is read (a Parquet file or a workbook
# renamed .csv, a table compressed under its old name): it was parsed as text, and the error
# quoted its bytes ("column '\x8b\x08…' is not a timestamp") or advised quoting a separator.
# (what it is, the suffix that reads it, how to get the text out of it)
MAGIC = (
    (b"\x1f\x8b", ("gzip-compressed", ".gz", "decompress")),
    (b"\xfd7zXZ\x00", ("xz-compressed", ".xz", "decompress")),
    (b"\x28\xb5\x2f\xfd", ("zstd-compressed", ".zst", "decompress")),
    (b"PK\x03\x04", ("a ZIP archive", ".zip", "unzip")),
    (b"PK\x05\x06", ("a ZIP archive", ".zip", "unzip")),   # an empty one
    (b"PAR1", ("a Parquet file", ".parquet", "")),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", ("an Excel 97-2003 workbook (or another OLE2 file)",
                                          ".xls", "")),
)
SNIFF_BYTES = 4096
_BZIP2 = re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)")   # strict: a header "BZh…" is text
# C0 control bytes a text file does not hold (tab, LF, VT, FF, CR and ESC it may)
_TEXT_BYTES = bytes([9, 10, 11, 12, 13, 27, *range(32, 256)])


def _zip_kind(path: Path, head: bytes, compressed: bool) -> tuple[str, str, str]:
    """A ZIP archive's kind: an Excel workbook (xl/ inside), an OpenDocument spreadsheet, or a
    plain archive. Its central directory is read only from a file not itself compressed."""
    if b"opendocument.spreadsheet" in head[:128]:   # the 'mimetype' member comes first
        return "an OpenDocument spreadsheet", ".ods", ""
    if not compressed:
        try:
            with zipfile.ZipFile(path) as z:
                if any(n.startswith("xl/") for n in z.namelist()):
                    return "an Excel workbook (XLSX)", ".xlsx", ""
        except (OSError, ValueError, zipfile.BadZipFile):
            pass
    return "a ZIP archive", ".zip", "unzip"


def binary_kind(path: Path) -> tuple[str, str, str] | None:
    """What the file (as pandas' CSV reader would see it: decompressed as its extension says)
    is when it is no text: (what it is, the suffix that reads it or '', 'decompress' or 'unzip'
    or ''), by its first bytes; else None. Reads at most ``SNIFF_BYTES``.
    A file with a UTF-16 byte-order mark is text (the readers decode it); one NUL byte in text
    is left to the readers (it was read); BOM-less UTF-16 is named as such."""
    compressed = Path(path).suffix.lower() in COMPRESSIONS
    try:
        with _opened(path) as f:
            head = f.read(SNIFF_BYTES)
    except UNREADABLE:   # a .gz cut short, a .zst without zstandard: the reader words it
        return None
    if head.startswith(UTF16_BOMS):
        return None
    kind = _magic(head)
    if kind is not None:
        return _zip_kind(path, head, compressed) if kind[1] == ".zip" else kind
    if b"\x00" not in head:
        return None
    pairs = len(head) // 2   # ASCII in UTF-16: a NUL in every pair, on the same side
    nuls = sorted((head[0:2 * pairs:2].count(0), head[1:2 * pairs:2].count(0)))
    if nuls[1] >= 0.9 * pairs and nuls[0] <= 0.1 * pairs:
        return "UTF-16 text without a byte-order mark", "", ""
    controls = len(head.translate(None, _TEXT_BYTES))
    if controls >= 4 and controls * 100 >= len(head):
        return "binary data", "", ""
    return None


def refuse_format(path: Path, head: bytes, text: str) -> None:
    """InputError when ``head`` (a file's first bytes, decompressed as its name says) is a
    compressed file, an archive, a workbook or a Parquet file (``MAGIC``, bzip2) where ``text``
    (e.g. "JSON") was to be parsed — only by those magics: NULs are text in UTF-16/32 JSON.
    A gzipped labels.json said "cannot read JSON (UnicodeDecodeError …)"."""
    kind = _magic(head)
    if kind is not None:
        from .errors import InputError

        what, suffix, tool = kind
        fix = (f"decompress it, or name it {Path(path).name}{suffix} (read compressed)"
               if tool == "decompress" and (suffix != ".zst" or _zstd())
               else f"give its {text} text")
        raise InputError(f"{path}: {what}, not {text} text: {fix}")


def _magic(head: bytes) -> tuple[str, str, str] | None:
    """The ``MAGIC`` entry (or bzip2's) ``head`` starts with: (what, suffix, tool), or None."""
    kind = next((kind for magic, kind in MAGIC if head.startswith(magic)), None)
    if kind is None and _BZIP2.match(head):
        kind = ("bzip2-compressed", ".bz2", "decompress")
    return kind


def refuse_binary(path: Path, flag: str, reads: str, compressed: bool = True,
                  renames: tuple[str, ...] = ()) -> None:
    """InputError when ``path``, read as CSV text, is a compressed file, an archive, a workbook,
    a Parquet file or other binary data (``binary_kind``): one line naming what it is and what
    to do. ``flag``/``reads``: what reads the file and what it reads (for the line);
    ``compressed``: whether the reader decompresses a file named so (``kpis.csv.gz``);
    ``renames``: the other suffixes it reads (``.parquet``, ``.xlsx``)."""
    kind = binary_kind(path)
    if kind is None:
        return
    what, suffix, tool = kind
    path = Path(path)
    if what.startswith("UTF-16"):   # text, but no reader tells its encoding
        from .errors import InputError

        raise InputError(f"{path}: {what}: save it as CSV UTF-8 (or UTF-16 with the mark, as "
                         "Excel's Unicode text)")
    if path.suffix.lower() in COMPRESSIONS:   # what is inside is no text either
        fix = f"{flag} reads {reads}: save the table as CSV text and compress that"
        what = f"decompressed, {what}"
    elif tool and compressed and (suffix != ".zst" or _zstd()):
        fix = f"rename it {path.name}{suffix} ({flag} reads it compressed) or {tool} it"
    elif tool:
        fix = f"{tool} it ({flag} reads {reads})"
    elif suffix in renames:
        fix = f"rename it {path.with_suffix(suffix).name}"
    elif suffix in (".xlsx", ".xls", ".ods"):
        fix = "save the sheet as CSV (CSV UTF-8) and pass that"
    else:
        fix = f"{flag} reads {reads}: export the table as CSV"
    from .errors import InputError

    raise InputError(f"{path}: {what}, not CSV text: {fix}")


def refuse_data_binary(path: Path) -> None:
    """``refuse_binary`` for a data directory's CSV table: its tables are found as
    ``<table>.csv`` or ``<table>.parquet`` only, so a compressed one is to be decompressed."""
    refuse_binary(path, "a data directory", "plain .csv or .parquet tables", compressed=False,
                  renames=(".parquet",))


def _zstd() -> bool:
    """Whether pandas can read a .zst (it needs zstandard)."""
    import importlib.util

    return importlib.util.find_spec("zstandard") is not None


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed as its extension says (see ``_opened``)."""
    with _opened(path) as f:
        return f.read()


def is_utf16(path: Path) -> bool:
    """True when the file (decompressed) starts with a UTF-16 byte-order mark."""
    try:
        with _opened(path) as f:
            return f.read(2) in UTF16_BOMS
    except UNREADABLE:
        return False


def text_encoding(path: Path, default: str = "utf-8-sig") -> str:
    """``"utf-16"`` for a file with a UTF-16 byte-order mark (Python drops the mark), else
    ``default`` (``utf-8-sig`` reads UTF-8 with or without its mark)."""
    return "utf-16" if is_utf16(path) else default


def decoding(path: Path) -> str:
    """The 8-bit encoding a whole file decodes in: UTF-8, else Windows-1252 (Excel's CSV in
    Western locales: Latin-1 but for 0x80-0x9F, where it has '€', '–', '’' …, which Latin-1
    made control characters), else Latin-1 (the UCI exports; any byte decodes). Decided once on
    the bytes, so the file is parsed once (a Latin-1 file was parsed 4 times, each parse failing
    late in it); a compressed file's decompressed bytes (its raw ones decoded as Latin-1, and a
    UTF-8 'café' was read 'cafÃ©'). A UTF-16 file is ``text_encoding``'s."""
    data = read_bytes(path)
    for enc in ("utf-8", "cp1252"):
        try:
            data.decode(enc)
            return enc
        except UnicodeDecodeError:
            pass
    return "latin-1"


SEPARATORS = (",", ";", "\t", "|")


def first_lines(path: Path, n: int = 2) -> list[str]:
    """The file's first ``n`` lines as text, in its encoding ([] when unreadable)."""
    lines: list[str] = []
    try:
        with _opened(path) as raw, io.TextIOWrapper(raw, encoding=text_encoding(path),
                                                    errors="replace", newline="") as f:
            for _ in range(n):
                line = f.readline(65536)
                if not line:
                    break
                lines.append(line)
    except UNREADABLE:   # a .gz cut short: the whole lines read before its end, if any
        pass
    return lines


def _fields(line: str, sep: str) -> int:
    """How many fields ``sep`` splits a line into (a quoted separator is text)."""
    import csv

    try:
        return len(next(csv.reader([line.rstrip("\r\n")], delimiter=sep), [""]))
    except csv.Error:
        return 1


def separator(path: Path) -> str:
    """The field separator, decided on the header line: the one of ``,`` ``;`` tab ``|`` it holds
    most often (outside quotes), ',' when it holds none. A spreadsheet saved as CSV in a locale
    with decimal commas is ';'-separated; Excel's "Unicode text" and "Text" exports are
    tab-separated. A tie (``date;revenue, EUR``) is settled by the first data line: the separator
    that splits it into as many fields as the header; when that does not settle it either,
    InputError (one line saying so)."""
    lines = first_lines(path)
    if not lines:
        return ","
    counts = {sep: _fields(lines[0], sep) for sep in SEPARATORS}
    most = max(counts.values())
    if most == 1:
        return ","
    tied = [sep for sep in SEPARATORS if counts[sep] == most]
    if len(tied) > 1 and len(lines) > 1:
        tied = [sep for sep in tied if _fields(lines[1], sep) == most] or tied
    if len(tied) > 1:
        from .errors import InputError

        raise InputError(
            f"{path}: cannot tell the column separator: the header line splits into {most} "
            f"names at {' and at '.join(map(repr, tied))} alike"
            f"{' (and so does data row 1)' if len(lines) > 1 else ''}; save it as "
            f"comma-separated CSV, or quote the names that hold a separator")
    return tied[0]


COMMA_DECIMAL = r"[+-]?\d*,\d+"                       # '2,55', '-0,5'
GROUPED = r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?"      # '1.000', '12.345,67'


def decimal_commas(text, comma_locale: bool = False):
    """A string Series with a number written with one decimal comma and no point ('2,55',
    '-0,5': a ';'-separated export in a decimal-comma locale) rewritten with a point; other
    values as they are. In a decimal-comma locale (``comma_locale``, see ``comma_locale``) a
    point groups thousands: '1.000' is 1000 (read as 1.0 it was a thousandfold off, silently) and
    '12.345,67' 12345.67, and a point that groups nothing ('2.5') makes no number there (empty)."""
    if comma_locale:
        grouped = text.str.fullmatch(GROUPED).fillna(False)
        text = text.where(~grouped, text.str.replace(".", "", regex=False))
        text = text.mask(text.str.contains(".", regex=False).fillna(False), "")
    comma = text.str.fullmatch(COMMA_DECIMAL).fillna(False)
    return text.where(~comma, text.str.replace(",", ".", regex=False))


def comma_locale(columns) -> bool:
    """Whether the number columns (string Series) of a ';'-separated file are written in a
    decimal-comma locale: a value with a decimal comma ('2,55'), or grouped by points before a
    comma ('1.234,5'). Without one, a point is a decimal point."""
    for text in columns:
        text = text.astype("string").str.strip()
        if bool((text.str.fullmatch(COMMA_DECIMAL) | (text.str.fullmatch(GROUPED)
                 & text.str.contains(",", regex=False))).fillna(False).any()):
            return True
    return False


THOUSANDS = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?"   # '1,234', '1,234,567.5' (a point locale)


def number_style(columns, sep: str):
    """How the numbers written as text in a file separated by ``sep`` (',', tab or '|'; a ';' file
    is ``comma_locale``'s) use commas: ``"comma"`` (a decimal comma: '1002,5', '1.234,5' -- Excel's
    "Text (tab delimited)" export in a decimal-comma locale), ``"thousands"`` (commas group
    thousands: '1,234.5', '1,234,567' -- a report export in a decimal-point locale) or None
    (no comma in a number). ``columns``: (name, string Series) pairs. '1,234' alone proves
    neither: in a ','-separated file it groups thousands (a decimal-comma locale does not write
    ','-separated files); in a tab or '|' file it stays unread (the reader names it). Both
    styles in one file → ``(None, (name, row, value), (name, row, value))``, the first value
    of each, for the caller's error line."""
    import numpy as np

    first: dict[str, tuple] = {}
    ambiguous = False
    for name, text in columns:
        text = text.astype("string").str.strip()
        dec = text.str.fullmatch(COMMA_DECIMAL) | (text.str.fullmatch(GROUPED)
                                                    & text.str.contains(",", regex=False))
        grp = text.str.fullmatch(THOUSANDS)
        for kind, hit in (("comma", dec & ~grp), ("thousands", grp & ~dec)):
            hit = hit.fillna(False).to_numpy(bool)
            if kind not in first and hit.any():
                i = int(np.flatnonzero(hit)[0])
                first[kind] = (name, i, str(text.iloc[i]))
        ambiguous = ambiguous or bool((dec & grp).fillna(False).any())
    if len(first) == 2:
        return None, first["comma"], first["thousands"]
    if first:
        return next(iter(first)), None, None
    return ("thousands" if ambiguous and sep == "," else None), None, None


def thousands_commas(text):
    """A string Series with its numbers' thousands commas dropped ('1,234.5' → '1234.5'); other
    values as they are (``number_style`` "thousands")."""
    grouped = text.str.fullmatch(THOUSANDS).fillna(False)
    return text.where(~grouped, text.str.replace(",", "", regex=False))


CONTROL = r"[\x00-\x1f\x7f-\x9f]"   # C0 and C1 control characters (tab and newline too)


def control_character(name: str) -> str | None:
    """Why ``name`` (a segment's, a calendar entry's or an event's id, a scenario's, a customer
    segment's or action's) cannot hold the control character it holds; None if it holds none. A
    tab or newline in a country broke insights.md's headings and error lines across lines
    (--transactions refuses one in Country likewise), one in a scenario's name injected a heading
    into insights.md. The one-value form of ``refuse_control_characters``."""
    hit = re.search(CONTROL, name)
    if hit is None:
        return None
    return (f"holds a control character {ascii(hit.group())[1:-1]} (names go into file names, "
            "JSON and Markdown)")


def refuse_control_characters(names, where: str, column: str) -> None:
    """InputError naming the first of ``names`` (a string Series of segment or KPI names, one per
    data row) that holds a control character (``\\x07``, ``\\x1b``, a newline in a quoted
    field): names become file names, JSON keys and Markdown, where one vanished or broke a
    line. The character is shown escaped, the row 1-based (header excluded)."""
    import re

    import numpy as np

    from .errors import InputError

    hit = names.str.contains(CONTROL, regex=True).fillna(False).to_numpy(bool)
    if hit.any():
        i = int(np.flatnonzero(hit)[0])
        value = str(names.iloc[i])
        char = re.search(CONTROL, value).group()
        raise InputError(f"{where}: column {column!r} holds a control character "
                         f"{ascii(char)[1:-1]} in {value!r} (data row {i + 1}): remove it "
                         f"(names go into file names, JSON and Markdown)")


def csv_options(path: Path) -> dict[str, str]:
    """``encoding`` and ``sep`` for pandas/csv reading a user's CSV file (``--kpis``,
    ``--calendar``, ``--events``): its encoding (UTF-16 by its mark; else UTF-8, else
    Windows-1252 or Latin-1, as ``decoding`` decides for ``--transactions``: a KPI export of
    Excel in a Western European locale, a header 'Umsatz (€)', was "cannot read ('utf-8' codec
    can't decode byte 0x80 …)") and its header line's ``separator``."""
    enc = text_encoding(path)
    if enc != "utf-16":
        try:
            found = decoding(path)
            enc = enc if found == "utf-8" else found   # utf-8-sig: with or without its mark
        except UNREADABLE:   # a .gz cut short: the reader names it
            pass
    return {"encoding": enc, "sep": separator(path)}


def csv_header(path: Path, opts: dict[str, str] | None = None) -> list[str]:
    """The first line's column names as written (pandas renames a repeated name 'date.1'), in
    the file's encoding and separator as ``csv_options`` reads it (or ``opts``, what it gave);
    [] when unreadable."""
    import csv

    opts = opts or csv_options(path)
    try:
        with _opened(path) as raw, io.TextIOWrapper(raw, encoding=opts["encoding"],
                                                    errors="replace", newline="") as f:
            return [c.strip() for c in next(csv.reader(f, delimiter=opts["sep"]), [])]
    except (csv.Error, *UNREADABLE):
        return []


def first_repeat(names, key=lambda name: name) -> str | None:
    """The first of ``names`` whose ``key`` an earlier name already had (a repeated column)."""
    seen: set = set()
    for name in names:
        k = key(name)
        if k in seen:
            return name
        seen.add(k)
    return None


def ragged_row(exc: BaseException) -> str | None:
    """A CSV reader's error for a row with more fields than the header, as the data row it is
    (pandas counts file lines: "Expected 2 fields in line 3, saw 3" is data row 2), else None."""
    import re

    text = str(exc)
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if m:
        return (f"data row {int(m.group(2)) - 1} has {m.group(3)} fields, the header "
                f"{m.group(1)} (quote a value that holds the separator)")
    m = re.search(r"Expected (\d+) columns, got (\d+)", text)   # pyarrow's reader
    if m:
        return (f"a data row has {m.group(2)} fields, the header {m.group(1)} (quote a value "
                "that holds the separator)")
    return None


def refuse_implicit_index(df, path: Path, sep: str | None = None) -> None:
    """A first data row with more fields than the header: pandas silently takes the extra
    leading fields as the row index and shifts every value one column or more to the right
    (a date column then "holds numbers" or "is not a date"). Raise InputError saying so.
    ``sep``: the separator the file was read with (None: ``csv_options``', a user's file)."""
    import pandas as pd

    from .errors import InputError

    if not isinstance(df.index, pd.RangeIndex):   # what every engine gives a well-formed file
        found = separator(path)
        if sep is not None and sep != found:   # a data directory's table saved with ';'
            raise InputError(f"{path}: the header is separated by {found!r}, not commas: save "
                             f"the file as comma-separated CSV (decimal points, not commas)")
        name = "comma" if found == "," else f"{found!r}"
        raise InputError(f"{path}: data row 1 has more fields than the header's "
                         f"{len(df.columns)} (quote a value that holds a {name})")
