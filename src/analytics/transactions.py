"""Real transaction files in the Online Retail layouts -> a ShockLab ``DataSet``.

Two layouts are recognised (CSV or XLSX; every sheet of a workbook in the layout is read, one
after the other — a row is then named in its sheet —, and a sheet of notes is left out, warned):

* Online Retail II: ``Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID,
  Country``
* Online Retail:    ``InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
  CustomerID, Country``

Cleaning — each row is counted once, under the first reason that applies, in this order:
``bad_value`` (unparseable date, quantity or price, or a line amount beyond 1e12),
``exact_duplicate``, ``missing_customer_id`` (empty, or an export's word for empty: NaN, NULL,
#N/A, None, NA), ``cancellation`` (invoice starting with "C"; these
become ``status="cancelled"`` orders, kept for the cancellation-rate KPI but not for revenue or
customer models), ``non_positive_quantity``, ``non_positive_price``, ``date_outlier`` (an order day
cut off from the rest by more than ``OUTLIER_GAP_DAYS`` at either end of the file, holding under 1 %
of the rows: a typo such as an order dated 2030 would otherwise stretch every KPI table to that
year). The report is in ``DataSet.manifest["cleaning"]`` (its counts also in one info line);
outliers are also logged as a warning, and so are bad values (``bad_values``: per column, the
count, first data row and cell as read).

A ``Currency`` (or ``Currency Code``) column, when present, must hold one currency (blank cells
aside): amounts are summed as written, never converted, so several currencies are an InputError;
the one currency is reported as ``cleaning["currency"]``.

A CSV file whose header is separated by ';' (or tabs) instead of commas is read with that
separator; in a ';'-separated file a number with one comma and no point ('2,55') has a decimal
comma, and where Quantity or Price holds one the file's points group thousands ('1.000' = 1000,
'12.345,67'; a point grouping nothing, '2.5', is then a bad value). In a ',', tab or '|' file
Quantity and Price are read as --kpis reads numbers (``textfile.number_style``): in a ',' file a
comma groups thousands ('5,000', Excel's quoted cell); in a tab or '|' file where another number
proves it ('1,250.00'), too, and a decimal comma ('2,55') where one proves that; both styles, or
a tab file's '5,000' that nothing decides, is an InputError naming the value and its row (such
lines were left out as bad values, their revenue lost).

Dates: ISO (``2010-12-01 08:26:00``) or day/month/year with ``/``, ``.`` or ``-`` (a time on a
24- or 12-hour clock: ``8:26 PM``; fractional seconds; a UTC offset or zone word after the time,
``+0100``, ``-05:00``, ``Z``, ``UTC``). Whether such
dates are day-first or month-first is decided for the whole file: a first number above 12 proves
day-first, a second above 12 proves month-first, both in one file is an error; with no proof the
file is read month-first (the UCI export) and the ambiguous rows are counted and warned about.
A UTC offset is dropped (``utc_offsets_dropped``): the local time written decides the order's
day, with or without ``date_format`` (``--date-format``, which overrides the detection; a ``%z``
or ``%Z`` at its end reads the offset and drops it). The decision and the counts are in
``cleaning["dates"]``.

Mapping to the DESIGN tables: an invoice is an order (channel "online", no discounts, net revenue =
quantity x price summed; an invoice number carrying several customers or days is one order per
(customer, day), ``<invoice>/2`` … — ``split_invoices``), a line is an order item, a stock code
is a product (category "uncategorized"), a customer's signup date is their first order day. There
is no traffic, so ``website_traffic`` is empty and conversion cannot be computed.

Size (~810 lines, one module on purpose): reading (encodings, separators, column names), cleaning
and building the orders of one file format share its column names, the cleaning reasons and the
report they fill.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from shocklab.errors import InputError, first_line
from shocklab.hashing import sha256_file
from shocklab.spreadsheet import warn_formula_ids
from shocklab.textfile import (
    THOUSANDS,
    UNREADABLE,
    comma_locale,
    decimal_commas,
    decoding,
    is_utf16,
    not_a_file,
    number_style,
    refuse_binary,
    refuse_control_characters,
    separator,
    thousands_commas,
)

from .context import DataSet
from .loading import MAX_ABS, in_ns_range

log = logging.getLogger("shocklab.transactions")

# normalized header -> canonical name
ALIASES = {
    "invoice": "invoice", "invoiceno": "invoice",
    "stockcode": "stock_code",
    "description": "description",
    "quantity": "quantity",
    "invoicedate": "invoice_date",
    "price": "price", "unitprice": "price",
    "customerid": "customer_id",
    "country": "country",
}
REQUIRED = ("invoice", "stock_code", "quantity", "invoice_date", "price", "customer_id")
LAYOUTS = (
    "Invoice, StockCode, Description, Quantity, InvoiceDate, Price, Customer ID, Country",
    "InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice, CustomerID, Country",
)
REASONS = ("bad_value", "exact_duplicate", "missing_customer_id", "cancellation",
           "non_positive_quantity", "non_positive_price", "date_outlier")
OUTLIER_GAP_DAYS = 60
MISSING_IDS = ("nan", "null", "none", "n/a", "#n/a", "na", "<na>")  # Customer ID, lower-cased
# a numeric d/m/y date, with a time on a 24- or 12-hour clock (P: AM / PM), fractional seconds
# (F) and, after the time, a UTC offset or zone word (Z: '+0100', '-05:00', 'Z', 'UTC', 'GMT').
# Without F and Z such rows missed the day-/month-first decision of --transactions, --kpis and
# label files and went to pandas' month-first guess ('01/12/2010 11:18+0000' was 12 January).
_DMY = (r"^(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<y>\d{4}|\d{2})"
        r"(?:[ T]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,](?P<F>\d{1,9}))?)?"
        r"(?:\s*(?P<P>[AaPp])\.?[Mm]\.?)?"
        r"(?:\s*(?P<Z>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?))?)?\s*$")


def _norm(col: object) -> str:
    return "".join(ch for ch in str(col).lower() if ch.isalnum())


def _has_layout(df: pd.DataFrame) -> bool:
    return set(REQUIRED) <= {ALIASES.get(_norm(c)) for c in df.columns}


def _row(sheets: list[tuple[str, int]] | None, i: int) -> tuple[str | None, int]:
    """Data row ``i`` (0-based, over the whole file) as (sheet, 1-based data row in it): the
    sheets of a workbook are read one after the other (``sheets``: name and rows of each)."""
    for name, n in sheets or []:
        if i < n:
            return name, i + 1
        i -= n
    return None, i + 1


def _row_text(sheets: list[tuple[str, int]] | None, i: int) -> str:
    sheet, row = _row(sheets, i)
    return f"data row {row}" if sheet is None else f"sheet {sheet!r} data row {row}"


def _read_raw(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The file's cells as text, and the separator its header line gave (None: a workbook).

    A workbook's sheets in the Online Retail layout are read one after the other (``attrs
    ["sheets"]``: each one's name and rows, so that a row is named in its sheet); a sheet of
    notes or a pivot table is left out, warned."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":   # was parsed as CSV: "cannot read CSV file (ParserError: …)"
        raise InputError(f"{path}: --transactions reads .csv and .xlsx files, not Parquet: "
                         "export the table as CSV (or give a KPI table with --kpis)")
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            sheets = pd.read_excel(
                path, sheet_name=None, dtype=str, engine="openpyxl" if suffix != ".xls" else None
            )
            frames = {name: df for name, df in sheets.items() if len(df.columns)}
            if not frames:
                raise InputError(f"{path}: workbook has no sheet with data")
            laid = {name: df for name, df in frames.items() if _has_layout(df)}
            if laid and len(laid) < len(frames):  # its rows were all bad_value, every column
                log.warning("%s: sheet(s) %s left out: not in the Online Retail layout", path,
                            ", ".join(repr(n) for n in frames if n not in laid))
                frames = laid
            raw = pd.concat(list(frames.values()), ignore_index=True)
            if len(frames) > 1:
                raw.attrs["sheets"] = [(str(n), len(df)) for n, df in frames.items()]
            return raw, None
        refuse_binary(path, "--transactions", "CSV or XLSX", renames=(".xlsx",))
        sep = separator(path)
        if is_utf16(path):  # Excel's "Unicode text": read as Latin-1 its names were not found
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                               encoding="utf-16"), sep
        enc = decoding(path)
        try:  # pyarrow's parser: same frame, ~2x faster on a 1 M-line file
            return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                               encoding=enc, engine="pyarrow"), sep
        except Exception:  # noqa: BLE001 — ragged rows …: the C parser below reads or words the error
            pass
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_values=[""],
                           encoding=enc), sep
    except InputError:
        raise
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except (*UNREADABLE, KeyError, pd.errors.ParserError) as exc:   # a .csv.gz corrupt: zlib's
        kind = "workbook" if suffix.startswith(".xls") else "CSV file"
        raise InputError(f"{path}: cannot read {kind} ({type(exc).__name__}: "
                         f"{first_line(exc, 120)})") from None
    except Exception as exc:  # openpyxl raises its own zip/xml errors on a corrupt workbook
        raise InputError(f"{path}: cannot read file ({type(exc).__name__})") from None


def _canonical(raw: pd.DataFrame, path: Path) -> tuple[pd.DataFrame, str]:
    mapping: dict[str, str] = {}
    names = set(map(str, raw.columns))
    for c in raw.columns:
        # the readers rename a repeated header 'Country' to 'Country.1'
        base, dot, n = str(c).rpartition(".")
        repeat = base if dot and n.isdigit() and base in names else None
        key = ALIASES.get(_norm(repeat if repeat is not None else c))
        if key is None:
            continue
        if key in mapping.values():  # two columns for one field: which one holds it?
            first = next(k for k, v in mapping.items() if v == key)
            raise InputError(
                f"{path}: column {repeat!r} appears twice" if repeat is not None else
                f"{path}: columns {first!r} and {c!r} both give {key}: keep one")
        mapping[c] = key
    missing = [k for k in REQUIRED if k not in mapping.values()]
    if missing:
        raise InputError(f"{path}: not an Online Retail layout, missing column(s) for "
                         f"{', '.join(missing)} (expected '{LAYOUTS[0]}' or '{LAYOUTS[1]}')")
    layout = (
        "online_retail"
        if any(_norm(c) in ("invoiceno", "unitprice") for c in mapping)
        else "online_retail_ii"
    )
    df = raw.rename(columns=mapping)[list(mapping.values())]
    for opt in ("description", "country"):
        if opt not in df:
            df[opt] = pd.NA
    return df, layout


class DmyOrder(NamedTuple):
    """Numeric d/m/y dates of a text column and what decides their order for the whole column."""

    parts: pd.DataFrame        # _DMY's groups per row (NaN where the row is not d/m/y)
    dmy: np.ndarray            # the row is a numeric d/m/y date
    day_first: np.ndarray      # its first number is above 12: proves day-first
    month_first: np.ndarray    # its second number is above 12: proves month-first
    ambiguous: np.ndarray      # could be either (both at most 12 and different)
    conflict: tuple[int, int] | None  # first rows proving each order, when both occur


def dmy_order(text: pd.Series) -> DmyOrder:
    """How a column's numeric dates (``02/01/2025``) order day and month, vectorized; the
    callers decide what a conflict or ambiguity means (--transactions, --kpis, labels)."""
    parts = text.str.extract(_DMY)
    dmy = parts["a"].notna().to_numpy()
    a = pd.to_numeric(parts["a"], errors="coerce").to_numpy()
    b = pd.to_numeric(parts["b"], errors="coerce").to_numpy()
    day_first, month_first = dmy & (a > 12), dmy & (b > 12)
    conflict = ((int(np.flatnonzero(day_first)[0]), int(np.flatnonzero(month_first)[0]))
                if day_first.any() and month_first.any() else None)
    return DmyOrder(parts, dmy, day_first, month_first,
                    dmy & (a <= 12) & (b <= 12) & (a != b), conflict)


# a time of day followed by a UTC offset or zone letter: group 1 is the date and time as written
OFFSET = r"^(.*\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*(?:Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)$"


# a --date-format ending in a UTC offset or zone name ('%d/%m/%Y %H:%M:%S%z')
_FORMAT_ZONE = re.compile(r"\s*%[zZ]\s*$")


def parse_dates(ts: pd.Series, date_format: str | None = None, where: str = "InvoiceDate",
                sheets: list[tuple[str, int]] | None = None) -> tuple[pd.Series, dict[str, Any]]:
    """Vectorized timestamp parsing with day-first detection; returns (datetimes, report).
    ``sheets``: a workbook's sheets (``_row``), to name a row in its sheet.

    Each distinct text is parsed once and its rows take the result (an invoice's lines share
    one time: ~50 k texts for Online Retail II's 1.07 M rows). Every step reads a text alone,
    so the rows' datetimes are the same; counts weigh a text by its rows, and the texts are in
    order of first appearance, so the first text that does something is the first row's."""
    codes, texts = pd.factorize(ts.astype("string"), use_na_sentinel=False)
    u = pd.Series(texts, name=ts.name).str.strip()
    parsed, report = _parse_texts(u, np.bincount(codes, minlength=len(u)), codes, date_format,
                                  where, sheets)
    out = parsed.iloc[codes]
    out.index = ts.index
    return out, report


def _parse_texts(ts: pd.Series, n: np.ndarray, codes: np.ndarray, date_format: str | None,
                 where: str, sheets: list[tuple[str, int]] | None
                 ) -> tuple[pd.Series, dict[str, Any]]:
    """``parse_dates`` of distinct texts ``ts`` (stripped, NA included); ``n``: rows of each,
    ``codes``: each row's text (``row`` finds a text's first row)."""

    def rows(mask: Any) -> int:
        return int(n[np.asarray(mask, dtype=bool)].sum())

    def row(i: int) -> int:
        return int(np.argmax(codes == i))

    if date_format:
        zone = _FORMAT_ZONE.search(date_format)
        text, fmt = ts, date_format
        if zone:   # the offset is dropped, as without --date-format: the local time decides
            text, fmt = ts.str.replace(OFFSET, r"\1", regex=True), date_format[:zone.start()]
        try:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
            if parsed.dt.tz is not None:   # %z elsewhere than at the end: its wall time
                parsed = parsed.dt.tz_localize(None)
        except ValueError as exc:
            raise InputError(
                f"--date-format {date_format!r}: not a usable format ({exc})"
            ) from None
        given = ts.notna()
        if given.any() and parsed[given].isna().all():
            first = ts[given].iloc[0]
            raise InputError(
                f"--date-format {date_format!r}: matches none of the {where} values "
                f"(first: {first!r}); give the file's layout, or leave the flag out to detect it"
            )
        miss = given & parsed.isna()   # weighted by rows: ts holds each distinct text once
        if rows(miss) > 0.01 * rows(given):   # dates of another layout: the format is wrong
            other = pd.to_datetime(text[miss], errors="coerce", format="mixed", dayfirst=True)
            if other.notna().any():   # '29/05/2011' under '%m/%d/%Y' (those it did match: swapped)
                first = ts[miss][other.notna()].iloc[0]
                raise InputError(
                    f"--date-format {date_format!r}: {rows(miss):,} of the {rows(given):,} "
                    f"{where} values are dates it does not match (first: {first!r}), so the file's "
                    "layout is another; give that one, or leave the flag out to detect it")
        fixed = {
            "layout": f"--date-format {date_format}",
            "ambiguous_rows": 0,
            "unparsed_rows": rows(parsed.isna() & ts.notna()),
        }
        if zone:
            fixed["utc_offsets_dropped"] = rows(text.ne(ts).fillna(False))
        return _ns(parsed), fixed
    o = dmy_order(ts)
    parts, dmy, day_first, month_first, ambiguous = (o.parts, o.dmy, o.day_first, o.month_first,
                                                     o.ambiguous)
    if o.conflict is not None:
        i, j = o.conflict
        raise InputError(
            f"{where}: both day-first ({ts.iloc[i]!r}, {_row_text(sheets, row(i))}) and "
            f"month-first ({ts.iloc[j]!r}, {_row_text(sheets, row(j))}) dates in one file; pass "
            "--date-format"
        )
    layout = "day-first" if day_first.any() else "month-first"
    report: dict[str, Any] = {
        "layout": layout if dmy.any() else "iso",
        "detected_from": rows(day_first if day_first.any() else month_first),
        "ambiguous_rows": rows(ambiguous) if not (day_first.any() or month_first.any()) else 0,
    }
    if report["ambiguous_rows"]:
        first = int(np.flatnonzero(ambiguous)[0])
        report["first_ambiguous"] = {"row": row(first) + 1, "value": str(ts.iloc[first])}
        log.warning("%s: %d date(s) such as %r could be day- or month-first; read as month-first "
                    "(pass --date-format '%%d/%%m/%%Y %%H:%%M' if they are day-first)",
                    where, report["ambiguous_rows"], str(ts.iloc[first]))
    day, month = (parts["a"], parts["b"]) if layout == "day-first" else (parts["b"], parts["a"])
    year = parts["y"].where(parts["y"].str.len() == 4, "20" + parts["y"])
    hour = parts["H"].fillna("0")
    if parts["P"].notna().any():  # 12 AM is 0 h, 12 PM 12 h; '13:05 PM' is no time (NaT)
        h = pd.to_numeric(parts["H"], errors="coerce")
        pm = parts["P"].str.lower().eq("p")
        h12 = (h % 12 + pm.astype(float) * 12).where((h >= 1) & (h <= 12), 99)
        hour = hour.where(parts["P"].isna(), h12.astype("Int64").astype("string"))
    iso = (
        year
        + "-"
        + month.str.zfill(2)
        + "-"
        + day.str.zfill(2)
        + " "
        + hour.str.zfill(2)
        + ":"
        + parts["M"].fillna("00")
        + ":"
        + parts["S"].fillna("00")
    )
    frac = parts["F"].notna()
    if frac.any():
        iso = iso.where(~frac, iso + "." + parts["F"])
    zoned = parts["Z"].notna().to_numpy() & dmy
    if zoned.any():
        report["utc_offsets_dropped"] = rows(zoned)
        log.info("%s: %d date(s) carry a UTC offset (first %r); read as the local time written",
                 where, rows(zoned), str(ts.iloc[int(np.flatnonzero(zoned)[0])]))
    parsed = pd.Series(pd.NaT, index=ts.index, dtype="datetime64[ns]")
    if dmy.any():
        parsed[dmy] = _ns(pd.to_datetime(iso[dmy], errors="coerce",
                                         format="ISO8601" if frac.any() else "%Y-%m-%d %H:%M:%S"))
    rest = ~dmy & ts.notna().to_numpy()
    if (
        rest.any()
    ):  # ISO and anything else pandas reads unambiguously (Excel cells arrive as ISO text)
        text, dayfirst = ts[rest], layout == "day-first"
        other = _naive(text, dayfirst)
        if other is None:
            # UTC offsets (+0100, -05:00, Z): the wall-clock time as written is the shop's day
            # (offsets that change with summer time, or differ between rows, made pandas refuse
            # the column: "Mixed timezones detected"). Only such columns pay for the rewrite.
            local = text.str.replace(OFFSET, r"\1", regex=True)
            changed = local != text
            dropped = int(n[rest][np.asarray(changed, dtype=bool)].sum())
            report["utc_offsets_dropped"] = report.get("utc_offsets_dropped", 0) + dropped
            if changed.any():
                log.info("%s: %d date(s) carry a UTC offset (first %r); read as the local time "
                         "written", where, dropped, str(text[changed].iloc[0]))
            other = _naive(local, dayfirst)
            if other is None:   # an offset written some other way: read in UTC
                other = pd.to_datetime(local, errors="coerce", format="mixed", utc=True,
                                       dayfirst=dayfirst).dt.tz_convert(None)
        parsed[rest] = _ns(other)
    report["unparsed_rows"] = rows(parsed.isna() & ts.notna())
    return parsed, report


def _ns(dates: pd.Series) -> pd.Series:
    """datetime64[ns]; a date outside its range (``loading.NS_YEARS``: '9999-12-31') is no date
    (NaT, counted as one): pandas keeps it in seconds and the cast was an internal error."""
    return dates.where(in_ns_range(dates)).astype("datetime64[ns]")


def _naive(text: pd.Series, dayfirst: bool) -> pd.Series | None:
    """ISO 8601 first, pandas' mixed parser for the rest; None when any value carries a UTC
    offset (a time-zone-aware result, or pandas refusing mixed offsets)."""
    try:
        out = pd.to_datetime(text, errors="coerce", format="ISO8601")
        if out.dt.tz is not None:
            return None
        if out.isna().any():
            miss = out.isna()
            more = pd.to_datetime(text[miss], errors="coerce", format="mixed", dayfirst=dayfirst)
            if more.dt.tz is not None:
                return None
            out[miss] = more
    except (ValueError, TypeError):   # "Mixed timezones detected", aware and naive together
        return None
    return out


def _distinct(col: pd.Series) -> tuple[np.ndarray | None, pd.Series]:
    """A text column's distinct values (NA included, in order of first appearance) and each
    row's code, for what reads a value alone (its rows take the result: ``.iloc[codes]``);
    a column of other objects (1 and 1.0 would be one value) comes back whole, codes None."""
    if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in ("string",
                                                                                  "empty"):
        return None, col
    codes, texts = pd.factorize(col, use_na_sentinel=False)
    return codes, pd.Series(texts, name=col.name)


def _number(col: pd.Series, decimal_comma: bool, locale: bool = False,
            distinct: tuple[np.ndarray | None, pd.Series] | None = None,
            grouping: bool = False) -> pd.Series:
    """Numbers as written; with ``decimal_comma`` (a ';'-separated file) '2,55' is 2.55. In a
    decimal-comma locale (``locale``: ``textfile.comma_locale``) a point groups thousands, and a
    point grouping nothing is a bad value, named (``textfile.decimal_commas``); with ``grouping``
    (``_comma_style`` "thousands") a comma groups thousands ('5,000' is 5000). Each distinct
    text is read once (Online Retail II: ~5 k prices, ~60 quantities in 1.07 M rows);
    ``distinct``: ``_distinct(col)`` when the caller has it already."""
    codes, text = distinct if distinct is not None else _distinct(col)
    if decimal_comma or grouping:
        text = text.astype("string").str.strip()
        fixed = decimal_commas(text, locale) if decimal_comma else thousands_commas(text)
        text = pd.Series(fixed.to_numpy(dtype=object, na_value=np.nan), index=text.index)
    out = pd.to_numeric(text, errors="coerce")
    if codes is not None:
        out = out.iloc[codes]
        out.index = col.index
    return out


NUMBER_COLUMNS = {"quantity": "Quantity", "price": "Price"}


def _comma_style(distinct: dict[str, tuple[np.ndarray | None, pd.Series]], sep: str | None,
                 names: dict[str, str], sheets: list[tuple[str, int]] | None) -> str | None:
    """How a ',', tab or '|' file's Quantity and Price use commas (``textfile.number_style``, as
    --kpis reads them): "thousands" ('5,000', '1,250.00'), "comma" (a decimal comma, '2,55') or
    None. Both in one file, or in a tab or '|' file a '5,000' that nothing decides (5000 or
    5.000?), is an InputError naming the value and its row: such lines were left out as bad
    values (exit 0, their revenue lost). ``names``: the columns' names in the file."""
    if sep not in (",", "\t", "|"):
        return None
    cols = [(c, d[1]) for c, d in distinct.items() if d[0] is not None]

    def cell(found: tuple[str, int, str]) -> str:
        c, i, value = found
        row = int(np.argmax(distinct[c][0] == i))   # the text's first row
        return f"{value!r}, column {names[c]!r}, {_row_text(sheets, row)}"

    style, dec, grp = number_style(cols, sep)
    if dec is not None:
        raise InputError(f"numbers with a decimal comma ({cell(dec)}) and with commas grouping "
                         f"thousands ({cell(grp)}) in one file: write every number one way")
    if style is None and sep != ",":
        for c, text in cols:
            hit = text.astype("string").str.strip().str.fullmatch(THOUSANDS).fillna(False)
            if hit.any():
                i = int(np.flatnonzero(hit.to_numpy(bool))[0])
                value = str(text.iloc[i]).strip()
                row = _row_text(sheets, int(np.argmax(distinct[c][0] == i)))
                raise InputError(
                    f"column {names[c]!r}: {value!r} ({row}) could group thousands "
                    f"({value.replace(',', '')}) or hold a decimal comma "
                    f"({value.replace(',', '.')}), and no number of the file decides: write "
                    f"{value.replace(',', '')} or {value.replace(',', '.')}")
    return style


def _parse(df: pd.DataFrame, date_format: str | None = None, sep: str | None = ",",
           sheets: list[tuple[str, int]] | None = None, names: dict[str, str] | None = None
           ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The canonical columns read: text stripped, numbers (``sep``: the file's separator, None
    for a workbook; ``names``: the number columns' names in the file) and dates."""
    distinct = {c: _distinct(df[c]) for c in NUMBER_COLUMNS}   # each column's texts once
    style = _comma_style(distinct, sep, {**NUMBER_COLUMNS, **(names or {})}, sheets)
    decimal_comma = sep == ";" or style == "comma"
    out = pd.DataFrame(index=df.index)
    for c in ("invoice", "stock_code", "description", "country", "customer_id"):
        out[c] = df[c].astype("string").str.strip().replace("", pd.NA)
    # "17850.0" (Excel / float export) and "17850" are the same customer, and so is "17850,0"
    # (a decimal-comma export)
    out["customer_id"] = out["customer_id"].str.replace(
        r"[.,]0+$" if decimal_comma else r"\.0+$", "", regex=True)
    # an export's word for an empty cell ("NaN", "NULL", "#N/A") is no customer (every such row
    # was one customer "NaN" holding all the guest orders)
    out["customer_id"] = out["customer_id"].mask(
        out["customer_id"].str.lower().isin(MISSING_IDS), pd.NA)
    comma = decimal_comma and comma_locale([d[1] for d in distinct.values()])
    for c, d in distinct.items():
        out[c] = _number(df[c], decimal_comma, comma, distinct=d, grouping=style == "thousands")
    parsed, report = parse_dates(df["invoice_date"], date_format, sheets=sheets)
    out["invoice_ts"] = parsed.astype("datetime64[ns]")
    return out, report


def _date_outliers(ts: pd.Series, ok: pd.Series) -> pd.Series:
    """Rows whose day is cut off from the bulk of the file by a gap > OUTLIER_GAP_DAYS at either end
    and which hold at most 1 % of the rows: typos, not history (a file under 100 rows keeps every
    day: one row of four is history)."""
    day = ts.dt.normalize()
    days = np.sort(day[ok].dropna().unique())
    out = pd.Series(False, index=ts.index)
    if len(days) < 2:
        return out
    gaps = np.flatnonzero(np.diff(days) > np.timedelta64(OUTLIER_GAP_DAYS, "D"))
    n_ok = int(ok.sum())
    limit = n_ok // 100   # max(1, …) dropped a 4-row file's first and last rows (25 % each)
    lo, hi = days[0], days[-1]
    for g in gaps:  # trim from the left while the cut-off part is tiny
        if int((ok & (day <= days[g])).sum()) <= limit:
            lo = days[g + 1]
    for g in gaps[::-1]:
        if int((ok & (day >= days[g + 1])).sum()) <= limit:
            hi = days[g]
    return ok & ((day < lo) | (day > hi))


def _bad_text(detail: dict[str, dict[str, Any]]) -> str:
    """"Price: 6000 row(s) empty or not a number, first data row 1: '£6.95'; …" """
    what = {"Invoice": "empty", "StockCode": "empty", "InvoiceDate": "empty or not a date",
            "Quantity x Price": "beyond 1e12"}
    return "; ".join(
        f"{col}: {d['rows']} row(s) {what.get(col, 'empty or not a number')}, first "
        + (f"sheet {d['sheet']!r} " if d.get("sheet") is not None else "")
        + f"data row {d['first_row']}" + (f": {d['value']!r}" if d.get("value") is not None else "")
        for col, d in detail.items())


def clean(df: pd.DataFrame, raw: pd.DataFrame | None = None,
          sheets: list[tuple[str, int]] | None = None
          ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], list[str]]:
    """Split parsed rows into (sales lines, cancellation lines, report, warnings). Vectorized.
    The warnings (rows left out as bad values or date outliers) are for the caller to log once
    the file is known to have rows left: with none left its one error line says it.

    raw : the canonical columns as read (strings), same rows: a bad value is quoted from it.
    sheets : a workbook's sheets (``_row``): a bad value's first row is named in its sheet.
    """
    reason = pd.Series(pd.NA, index=df.index, dtype="string")

    def mark(mask: pd.Series, name: str) -> None:
        reason[mask.fillna(False).astype(bool) & reason.isna()] = name

    with np.errstate(over="ignore"):
        amount = (df["quantity"] * df["price"]).abs()
    absurd = ~np.isfinite(amount) & amount.notna() | (
        amount > MAX_ABS
    )  # 1e308 would overflow every sum
    bad = {  # column -> rows it makes bad_value (a row may be bad in several)
        "Invoice": df["invoice"].isna(), "StockCode": df["stock_code"].isna(),
        "Quantity": df["quantity"].isna(), "Price": df["price"].isna(),
        "InvoiceDate": df["invoice_ts"].isna(), "Quantity x Price": absurd,
    }
    any_bad = pd.Series(False, index=df.index)
    for m in bad.values():
        any_bad |= m.fillna(False).astype(bool)
    mark(any_bad, "bad_value")
    mark(df.duplicated(keep="first"), "exact_duplicate")
    mark(df["customer_id"].isna(), "missing_customer_id")
    mark(df["invoice"].str.upper().str.startswith("C"), "cancellation")
    mark(df["quantity"] <= 0, "non_positive_quantity")
    mark(df["price"] <= 0, "non_positive_price")
    mark(
        _date_outliers(df["invoice_ts"], reason.isna() | reason.eq("cancellation")), "date_outlier"
    )
    counts = reason.value_counts()
    report = {
        "rows_read": int(len(df)),
        "removed": {r: int(counts.get(r, 0)) for r in REASONS},
        "rows_kept": int(reason.isna().sum()),
    }
    report["note"] = ("each row counted once, under the first reason in this order; "
                      "cancellations are kept as cancelled orders for the cancellation-rate KPI")
    detail = {}
    for col, m in bad.items():
        rows = np.flatnonzero(np.asarray(m.fillna(False), dtype=bool))
        if len(rows):
            src = {"Invoice": "invoice", "StockCode": "stock_code", "Quantity": "quantity",
                   "Price": "price", "InvoiceDate": "invoice_date"}.get(col)
            shown = raw[src].iloc[rows[0]] if raw is not None and src in raw else None
            sheet, first = _row(sheets, int(rows[0]))
            detail[col] = {"rows": int(len(rows)), "first_row": first,
                           "value": None if shown is None or shown != shown else str(shown)}
            if sheet is not None:
                detail[col]["sheet"] = sheet
    warnings: list[str] = []
    if detail:
        report["bad_values"] = detail
        warnings.append(f"{report['removed']['bad_value']} row(s) left out as bad_value: "
                        f"{_bad_text(detail)}")
    if report["removed"]["date_outlier"]:
        bad = df.loc[reason.eq("date_outlier").fillna(False), "invoice_ts"]
        warnings.append(f"{len(bad)} row(s) dated far from the rest of the file "
                        f"({bad.min().date()} … {bad.max().date()}) left out as date_outlier")
    return (df[reason.isna()].copy(), df[reason.eq("cancellation").fillna(False)].copy(), report,
            warnings)


def _orders(lines: pd.DataFrame, status: str) -> pd.DataFrame:
    amount = (lines["quantity"].abs() * lines["price"]).round(4)
    g = lines.assign(_amount=amount, _units=lines["quantity"].abs()).groupby("invoice", sort=True)
    o = pd.DataFrame({
        "order_ts": g["invoice_ts"].min(),
        "customer_id": g["customer_id"].first(),
        "country": g["country"].first().fillna("unknown"),
        "items": g["stock_code"].nunique().astype(np.int64),
        "units": g["_units"].sum().round().astype(np.int64),
        "gross_revenue": g["_amount"].sum().round(2),
    }).reset_index().rename(columns={"invoice": "order_id"})
    o["order_date"] = o["order_ts"].dt.normalize()
    o["channel"] = "online"
    o["status"] = status
    o["discount"] = 0.0
    o["net_revenue"] = o["gross_revenue"]
    return o[["order_id", "order_ts", "order_date", "customer_id", "channel", "country", "status",
              "items", "units", "gross_revenue", "discount", "net_revenue"]]


def _split_invoices(sales: pd.DataFrame, cancels: pd.DataFrame
                    ) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """An invoice is one order of one customer on one day. An invoice number whose lines carry
    several customers or days (numbering reset per year or per till, a merged export) was read as
    one order of its first customer on its first day, moving the others' revenue there; each
    (customer, day) part is now its own order, ``<invoice>/2``, ``<invoice>/3`` … after the first
    (in customer, day order). Returns the lines with ``invoice`` so renamed and how many invoice
    numbers were split."""
    split = 0
    parts = []
    for lines in (sales, cancels):
        if lines.empty:
            parts.append(lines)
            continue
        key = pd.DataFrame({"invoice": lines["invoice"], "customer_id": lines["customer_id"],
                            "day": lines["invoice_ts"].dt.normalize()})
        groups = key.drop_duplicates().sort_values(["invoice", "customer_id", "day"])
        rank = groups.groupby("invoice", sort=False).cumcount()
        if int(rank.max()) == 0:
            parts.append(lines)
            continue
        split += int(groups.loc[rank > 0, "invoice"].nunique())
        groups["order_id"] = groups["invoice"].where(
            rank == 0, groups["invoice"] + "/" + (rank + 1).astype(str))
        ids = key.merge(groups, on=["invoice", "customer_id", "day"], how="left")["order_id"]
        parts.append(lines.assign(invoice=ids.to_numpy()))
    if split:
        log.warning("%d invoice number(s) carry lines of several customers or days: each "
                    "(customer, day) is read as its own order (<invoice>/2 …)", split)
    return parts[0], parts[1], split


def _mode(df: pd.DataFrame, key: str, col: str) -> pd.Series:
    """Most frequent non-null ``col`` per ``key`` (ties: alphabetically first), vectorized."""
    n = df.groupby([key, col], sort=True).size().rename("n").reset_index()
    n = n.sort_values([key, "n", col], ascending=[True, False, True], kind="stable")
    return n.drop_duplicates(key).set_index(key)[col]


def _currency(raw: pd.DataFrame, path: Path) -> str | None:
    """The file's one currency, when a ``Currency`` column names it (None: no such column, or
    every cell blank). Several currencies are an InputError: amounts are summed as written, so
    ¥1,200 would count as 1,200 of the store's money in revenue, monetary value and CLV."""
    col = next((c for c in raw.columns if _norm(c) in ("currency", "currencycode")), None)
    if col is None:
        return None
    codes = raw[col].astype("string").str.strip().str.upper().replace("", pd.NA).dropna()
    counts = codes.value_counts()
    if len(counts) > 1:
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        listed = ", ".join(f"{k} {v} row{'s' if v != 1 else ''}"
                           for k, v in list(counts.items())[:5])
        more = f", … {len(counts) - 5} more" if len(counts) > 5 else ""
        raise InputError(
            f"{path}: column {str(col)!r} holds several currencies ({listed}{more}): amounts "
            "are summed as written, not converted: convert them to one currency or split the "
            f"file per currency (without a {str(col)!r} column they are summed as written)")
    return str(counts.index[0]) if len(counts) else None


def load_transactions(path: str | Path, date_format: str | None = None) -> DataSet:
    """Read, clean and map an Online Retail file (CSV/XLSX). Bad input -> InputError, one line.

    date_format : strftime format of the InvoiceDate column (None: ISO or detected d/m/y order).
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(
            f"{path}: is a directory; --transactions takes a transactions file (CSV or XLSX)")
    if not path.is_file():
        raise InputError(not_a_file(path, "transactions file"))
    raw, sep = _read_raw(path)   # the header line is read once: its separator comes back
    sheets = raw.attrs.get("sheets")  # a workbook of several sheets: rows named in their sheet
    if raw.empty:
        raise InputError(f"{path}: no data rows")
    df, layout = _canonical(raw, path)
    country = next((str(c) for c in raw.columns if ALIASES.get(_norm(c)) == "country"), "country")
    # a segment name: a '\x07' or a quoted newline vanished from the outputs' names
    refuse_control_characters(df["country"].astype("string").str.strip(), str(path), country)
    currency = _currency(raw, path)
    try:
        names = {ALIASES[_norm(c)]: str(c) for c in raw.columns
                 if ALIASES.get(_norm(c)) in NUMBER_COLUMNS}
        parsed, dates = _parse(df, date_format, sep, sheets, names)
    except InputError as exc:  # the dates' and numbers' messages name the column: name the file
        raise InputError(f"{path}: {exc}") from None
    sales, cancels, report, warnings = clean(parsed, df, sheets)
    report["dates"] = dates
    if currency is not None:
        report["currency"] = currency
    if sales.empty:   # the error line alone: its warnings would say the same twice more
        why = f"; {_bad_text(report['bad_values'])}" if report.get("bad_values") else ""
        raise InputError(
            f"{path}: no valid sales rows left after cleaning "
            f"(removed: {', '.join(f'{k} {v}' for k, v in report['removed'].items() if v)}{why})"
        )
    for text in warnings:
        log.warning("%s", text)
    why = {"missing_customer_id": " (guest sales: in no KPI, revenue included)",
           "cancellation": " (lines of cancelled orders: the cancellation rate only)"}
    log.info("%s: %d row(s) read, %d kept%s", path.name, report["rows_read"], report["rows_kept"],
             "; left out: " + ", ".join(f"{r} {n}{why.get(r, '')}"
                                        for r, n in report["removed"].items() if n)
             if report["rows_kept"] < report["rows_read"] else "")
    sales, cancels, report["split_invoices"] = _split_invoices(sales, cancels)
    orders = pd.concat([_orders(sales, "completed"), _orders(cancels, "cancelled")] if len(cancels)
                       else [_orders(sales, "completed")], ignore_index=True)
    orders = orders.sort_values(["order_ts", "order_id"], kind="stable").reset_index(drop=True)
    # a stock code on several lines of an invoice is one order line; its unit price is what a
    # unit cost on average (quantity-weighted), so quantity x unit price is what was paid (the
    # plain mean of 10 at 1.00 and 1 at 9.00 said 11 x 5.00 = 55 where 19 was paid)
    items = (sales.assign(_amount=sales["quantity"] * sales["price"])
             .groupby(["invoice", "stock_code"], sort=True)
             .agg(quantity=("quantity", "sum"), _amount=("_amount", "sum")).reset_index()
             .rename(columns={"invoice": "order_id", "stock_code": "product_id"}))
    items["unit_price"] = items.pop("_amount") / items["quantity"]
    items["quantity"] = items["quantity"].round().astype(np.int64)
    items["discount_pct"] = 0.0
    pg = sales.groupby("stock_code", sort=True)
    products = pd.DataFrame({
        "name": _mode(sales, "stock_code", "description").reindex(pg.size().index).fillna(""),
        "category": "uncategorized",
        "unit_price": pg["price"].median().round(4),
        "unit_cost": np.nan,
    }).reset_index().rename(columns={"stock_code": "product_id"})
    done = orders[orders["status"] == "completed"]
    cg = done.groupby("customer_id", sort=True)
    customers = pd.DataFrame({
        "signup_date": cg["order_date"].min(),
        "country": _mode(done, "customer_id", "country").reindex(cg.size().index).fillna("unknown"),
        "acquisition_channel": "unknown",
    }).reset_index()
    warn_formula_ids(customers["customer_id"], path)   # kept as read: the key to the file
    traffic = pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[ns]"),
            "channel": pd.Series(dtype=object),
            "country": pd.Series(dtype=object),
            "sessions": pd.Series(dtype=float),
        }
    )
    calendar = pd.DataFrame(
        {
            "date": pd.Series(dtype="datetime64[ns]"),
            "name": pd.Series(dtype=object),
            "kind": pd.Series(dtype=object),
            "scope": pd.Series(dtype=object),
        }
    )
    report.update(
        {
            "orders": int(len(done)),
            "cancelled_orders": int((orders["status"] == "cancelled").sum()),
            "customers": int(len(customers)),
            "products": int(len(products)),
        }
    )
    manifest = {
        "source": "transactions", "file": path.name, "layout": layout, "sha256": sha256_file(path),
        "date_range": {"start": orders["order_date"].min().date().isoformat(),
                       "end": orders["order_date"].max().date().isoformat()},
        "row_counts": {"orders": int(len(orders)), "order_items": int(len(items)),
                       "products": int(len(products)), "customers": int(len(customers))},
        "cleaning": report,
    }
    tables = {"products": products, "customers": customers, "website_traffic": traffic,
              "orders": orders, "order_items": items, "marketing_calendar": calendar}
    return DataSet(path=path, tables=tables, manifest=manifest, source="transactions")
