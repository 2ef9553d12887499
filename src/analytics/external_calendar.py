"""A ``--kpis`` run's planned calendar: ``--calendar FILE`` (CSV or Parquet).

The same layout as a data directory's ``marketing_calendar.csv`` (``date,name,kind,scope``), so
that a store's calendar can be passed as it is; the table it becomes is the one a store run reads
(``ds.tables["marketing_calendar"]``), so the detectors (``calendar: exclude`` keeps planned days
out of baselines, ``mute_calendar``), the consensus (``consensus.mute_calendar``) and the insights
(planned incidents and episodes) treat it exactly as they treat a store's.

Columns (header names in any case; other columns are ignored, with a warning)
------------------------------------------------------------------------------
- ``date`` (required): the planned day, ISO ``YYYY-MM-DD`` (a time of day is dropped).
- ``end`` (optional): the last day of a range, inclusive; empty = the ``date`` day only.
- ``name`` (optional, default ``planned``), ``kind`` (optional, default ``campaign``).
- ``scope`` (optional, default ``all``): ``all`` concerns every series of the file; ``dim=value``
  (``channel=email``; several joined by commas; a value may hold commas itself, ``country=Korea,
  Republic of``: text without ``=`` after a comma continues the value) concerns the slice
  ``dimension=dim, segment=value`` of a long-layout file and every series of other dimensions
  (the overall ones too), not the other segments of ``dim`` — the store's rule
  (``detectors.calendar.calendar_mask``).
  A ``dim`` the file does not carry concerns every series (a channel campaign moves the overall
  KPIs; a warning counts such rows). A ``value`` the file does not carry for a ``dim`` it does
  carry is an error naming the row (a typo would otherwise be read as "the other segments only").
Empty cells of optional columns take the defaults. A date is the day as written, its offset (if
any) dropped: ``2025-03-02T00:00:00+05:00`` is 2 March, as a KPI file's local midnights are read
as their dates (it was converted to UTC first, 1 March, so the promotion's day was flagged and the
day before muted). On sub-daily files a planned day covers all of its periods.

Bad input — a missing or unreadable file, no ``date`` column, an empty or unparsable date, an
``end`` before its ``date``, a malformed scope — raises InputError naming the row (1-based data
row, header excluded), so the run exits 2 with one line and writes nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from shocklab.errors import InputError, first_line
from shocklab.textfile import (
    UNREADABLE,
    csv_header,
    csv_options,
    first_repeat,
    not_a_file,
    ragged_row,
    refuse_binary,
    refuse_implicit_index,
    refuse_workbook,
)

from .detectors.base import scope_pairs

log = logging.getLogger("shocklab.analysis")

COLUMNS = ("date", "end", "name", "kind", "scope")
DEFAULTS = {"name": "planned", "kind": "campaign", "scope": "all"}
MAX_RANGE_DAYS = 3660   # one row spanning more than ~10 years is a typo in a year


def _read(path: Path) -> pd.DataFrame:
    if path.is_dir():
        raise InputError(f"{path}: is a directory; --calendar takes a CSV (date,name,kind,scope)")
    if not path.is_file():
        raise InputError(not_a_file(path, "calendar file"))
    refuse_workbook(path, "--calendar", "CSV (date,name,kind,scope) or Parquet")
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path).astype("string")
        else:
            refuse_binary(path, "--calendar", "CSV (date,name,kind,scope) or Parquet",
                          renames=(".parquet",))
            df = pd.read_csv(path, dtype=str, keep_default_na=False,
                             **csv_options(path))
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: calendar file is empty (no header)") from None
    except (*UNREADABLE, pd.errors.ParserError) as exc:   # a .gz cut short: EOFError
        raise InputError(f"{path}: " + (ragged_row(exc) or "cannot read the calendar (" + (
            first_line(exc) or type(exc).__name__) + ")")) from None
    if path.suffix.lower() != ".parquet":
        refuse_implicit_index(df, path)
    return df


def _day(text: str, where: str, col: str, row: int) -> pd.Timestamp:
    if not text:
        raise InputError(f"{where}: column {col!r} is empty (data row {row})")
    try:
        ts = pd.Timestamp(pd.to_datetime(text, format="ISO8601"))
        if pd.isna(ts):   # 'NaN', 'NaT': pandas' words for no date
            raise ValueError(text)
    except (ValueError, TypeError):
        raise InputError(
            f"{where}: column {col!r} is not a date: {text!r} (data row {row}; write YYYY-MM-DD)"
        ) from None
    try:   # the table's dates are nanoseconds: year 0001 failed later as an internal error
        ts = ts.as_unit("ns")
    except (ValueError, OverflowError):
        raise InputError(
            f"{where}: column {col!r}: {text!r} is out of range (data row {row}; dates between "
            f"{pd.Timestamp.min.year + 1} and {pd.Timestamp.max.year - 1})"
        ) from None
    if ts.tzinfo is not None:   # the day as written (its wall clock), not its UTC day
        ts = ts.tz_localize(None)
    return ts.normalize()


def _slices(kpis_daily: pd.DataFrame) -> dict[str, set[str]]:
    pairs = kpis_daily[["dimension", "segment"]].drop_duplicates()
    out: dict[str, set[str]] = {}
    for d, s in zip(pairs["dimension"].astype(str), pairs["segment"].astype(str), strict=True):
        out.setdefault(d, set()).add(s)
    return out


def _scope(text: str, where: str, row: int, slices: dict[str, set[str]]) -> tuple[str, bool]:
    """(the scope as the detectors read it, whether it names a dimension the file lacks)."""
    if text.lower() == "all":
        return "all", False
    parts, foreign = [], False
    pairs = [(d.strip(), v.strip()) for d, v in scope_pairs(text)]
    # scope_pairs drops text before the first '=' (no pair to continue): a malformed scope too
    if "=" not in text.split(",")[0] or not all(d and v and d != "overall" for d, v in pairs):
        raise InputError(
            f"{where}: column 'scope' must be all or dimension=segment (e.g. channel=email), "
            f"got {text!r} (data row {row})"
        )
    for dim, value in pairs:
        if dim not in slices:
            foreign = True
        elif value not in slices[dim]:
            raise InputError(
                f"{where}: scope {text!r} (data row {row}): the KPI file has no segment "
                f"{value!r} in dimension {dim!r} (it has {', '.join(sorted(slices[dim]))})"
            )
        parts.append(f"{dim}={value}")
    return ",".join(parts), foreign


def load_calendar(
    path: str | Path, kpis_daily: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The planned days of ``path`` as a ``marketing_calendar`` table (one row per day: date,
    name, kind, scope; see the module docstring) and what run.json records about it."""
    path = Path(path)
    where = str(path)
    df = _read(path)
    # the names as written: pandas renames a repeat 'date.1'
    header = list(map(str, df.columns)) if path.suffix.lower() == ".parquet" else csv_header(path)
    dup = first_repeat((h for h in header if h.strip().lower() in COLUMNS),
                       key=lambda h: h.strip().lower())
    if dup is not None:  # which of the two holds the days?
        raise InputError(f"{where}: column {dup.strip().lower()!r} appears twice")
    cols = {str(c).strip().lower(): c for c in df.columns}
    if "date" not in cols:
        raise InputError(
            f"{where}: no 'date' column (got {', '.join(map(str, df.columns)) or 'none'}; the "
            "layout is date[,end],name,kind,scope as in a data directory's marketing_calendar.csv)"
        )
    extra = [str(c) for k, c in cols.items() if k not in COLUMNS]
    if extra:
        log.warning("%s: column(s) %s ignored (a calendar reads date, end, name, kind, scope)",
                    where, ", ".join(repr(c) for c in extra))
    slices = _slices(kpis_daily)
    cell = {k: df[cols[k]].fillna("").astype(str).str.strip().tolist() if k in cols
            else [""] * len(df) for k in COLUMNS}
    rows: list[tuple[pd.Timestamp, str, str, str]] = []
    foreign = 0
    for i in range(len(df)):
        r = i + 1
        start = _day(cell["date"][i], where, cols["date"], r)
        end = _day(cell["end"][i], where, cols["end"], r) if cell["end"][i] else start
        if end < start:
            raise InputError(f"{where}: end {end.date()} is before date {start.date()} "
                             f"(data row {r})")
        # in Python's datetime: pandas' Timedelta overflows past 292 years (1700 to 2260 was an
        # internal error, exit 3)
        if (end.to_pydatetime() - start.to_pydatetime()).days > MAX_RANGE_DAYS:
            raise InputError(f"{where}: date {start.date()} to end {end.date()} spans more than "
                             f"{MAX_RANGE_DAYS} days (data row {r}): a typo in a year?")
        scope, other = _scope(cell["scope"][i] or DEFAULTS["scope"], where, r, slices)
        foreign += other
        name = cell["name"][i] or DEFAULTS["name"]
        kind = cell["kind"][i] or DEFAULTS["kind"]
        rows += [(d, name, kind, scope) for d in pd.date_range(start, end, freq="D")]
    cal = pd.DataFrame(rows, columns=["date", "name", "kind", "scope"])
    cal["date"] = pd.to_datetime(cal["date"]).astype("datetime64[ns]")
    for c in ("name", "kind", "scope"):
        cal[c] = cal[c].astype(object)
    cal = cal.sort_values(["date", "name"], kind="mergesort").reset_index(drop=True)
    dates = pd.DatetimeIndex(pd.to_datetime(kpis_daily["date"])).normalize()
    lo, hi = (dates.min(), dates.max()) if len(dates) else (None, None)
    inside = cal["date"].between(lo, hi) if lo is not None else cal["date"].isna()
    days = cal["date"].nunique()
    days_in = cal.loc[inside, "date"].nunique()
    if not len(df):
        log.warning("%s: the calendar has no rows: no planned days", where)
    elif days_in == 0:
        log.warning("%s: none of the calendar's %d planned day(s) falls in the KPI file's period "
                    "%s … %s", where, days, lo.date() if lo is not None else "?",
                    hi.date() if hi is not None else "?")
    elif days_in < days:
        log.info("%s: %d of %d planned day(s) fall outside the KPI file's period (ignored)",
                 where, days - days_in, days)
    if foreign:
        log.warning("%s: %d row(s) scoped to a dimension the KPI file does not carry: they "
                    "concern every series (as a store run's channel campaign concerns the overall "
                    "KPIs)", where, foreign)
    info = {"file": where, "rows": int(len(df)), "days": int(days), "days_in_period": int(days_in),
            "rows_other_dimension": int(foreign), "copy": "marketing_calendar.csv"}
    return cal, info

