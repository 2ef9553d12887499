"""How a user's text file is encoded, decided once for every CSV reader (--kpis, --calendar,
--events, --transactions): Excel's "Unicode text" export is UTF-16 with a byte-order mark
(ff fe or fe ff); read as UTF-8 it was "cannot read ('utf-8' codec can't decode byte 0xff …)"."""

from __future__ import annotations

from pathlib import Path

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def is_utf16(path: Path) -> bool:
    """True when the file starts with a UTF-16 byte-order mark."""
    try:
        with open(path, "rb") as f:
            return f.read(2) in UTF16_BOMS
    except OSError:
        return False


def text_encoding(path: Path, default: str = "utf-8-sig") -> str:
    """``"utf-16"`` for a file with a UTF-16 byte-order mark (Python drops the mark), else
    ``default`` (``utf-8-sig`` reads UTF-8 with or without its mark)."""
    return "utf-16" if is_utf16(path) else default


def separator(path: Path) -> str:
    """The header line's field separator: ',' unless it has none and ';' or a tab separates its
    names (a spreadsheet saved as CSV in a locale with decimal commas; Excel's "Unicode text"
    export is tab-separated)."""
    try:
        with open(path, encoding=text_encoding(path), errors="replace", newline="") as f:
            head = f.readline(65536)
    except OSError:
        return ","
    if "," in head:
        return ","
    return max((";", "\t"), key=head.count) if (";" in head or "\t" in head) else ","


def csv_options(path: Path) -> dict[str, str]:
    """``encoding`` and ``sep`` for pandas/csv reading a comma-separated input: a UTF-16 file's
    separator is sniffed (Excel's "Unicode text" is tab-separated), a UTF-8 file's is ','."""
    if is_utf16(path):
        return {"encoding": "utf-16", "sep": separator(path)}
    return {"encoding": "utf-8-sig", "sep": ","}


def csv_header(path: Path) -> list[str]:
    """The first line's column names as written (pandas renames a repeated name 'date.1'), in
    the file's encoding and separator as ``csv_options`` reads it; [] when unreadable."""
    import csv

    try:
        opts = csv_options(path)
        with path.open(encoding=opts["encoding"], errors="replace", newline="") as f:
            return [c.strip() for c in next(csv.reader(f, delimiter=opts["sep"]), [])]
    except (OSError, csv.Error):
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


def refuse_implicit_index(df, path: Path) -> None:
    """A first data row with more fields than the header: pandas silently takes the extra
    leading fields as the row index and shifts every value one column or more to the right
    (a date column then "holds numbers" or "is not a date"). Raise InputError saying so."""
    import pandas as pd

    from .errors import InputError

    if not isinstance(df.index, pd.RangeIndex):   # what every engine gives a well-formed file
        sep = separator(path)
        if sep != "," and not is_utf16(path):   # '2025-01-01;100,0' under a header 'date;x'
            raise InputError(f"{path}: the header is separated by {sep!r}, not commas: save the "
                             f"file as comma-separated CSV (decimal points, not commas)")
        raise InputError(f"{path}: data row 1 has more fields than the header's "
                         f"{len(df.columns)} (quote a value that holds a comma)")
