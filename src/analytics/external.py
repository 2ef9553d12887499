"""Bring your own series: ``--kpis FILE`` (CSV or Parquet) with optional ``--events FILE``.

Layouts
-------
- **wide**: a timestamp column plus one numeric column per KPI; any names (``value``, ``date`` …
  are KPI names like any other). Text columns named ``dimension`` / ``segment`` mark slices.
- **long**: ``timestamp, kpi, value[, dimension, segment]`` — one row per KPI (and slice) per
  period, so one file can carry slices. Chosen automatically when a text ``kpi`` column and a
  ``value`` column exist, or forced with ``layout="long"``. An empty ``dimension`` is
  ``overall``, whose one segment is ``all``; an empty ``segment`` elsewhere, ``overall`` with
  another segment, or an empty ``kpi`` column is an InputError (``_check_slices``).
The timestamp column is the first column named timestamp/date/ds/time/datetime (any case), else
the first column. Time zones are converted to UTC.

Regularisation (what a real export needs; every count goes to a warning and to run.json)
-----------------------------------------------------------------------------------------
- The **step** is the modal difference between consecutive distinct timestamps (when no gap is
  shared by a fifth of them — timestamps jittered by seconds — the median gap rounded to a round
  duration: 1 s … 30 min, 1 h … 12 h, 1 day, 7 days) — unless fewer
  than half of that grid's periods would hold a row (irregular sampling: a sensor reporting every
  5 to 20 minutes), then the smallest multiple of it whose grid is at least half full
  (``MIN_COVERAGE``; ``step="modal"`` keeps the modal step, a duration string forces one). Rolling
  windows count periods, so a grid that is mostly gaps would leave them nearly empty.
- **Irregular steps**: each timestamp is snapped to the nearest point of the grid
  ``first timestamp + k × step``; rows that land on the same point are combined like duplicates.
  ``ds.ingest["_raw_slots"]`` keeps each file row's period, so NAB scoring places a flagged
  period's detection on its last file row: its value is known only then
  (``evaluation.ts_metrics.nab_detections``).
- **Duplicate timestamps** (a daylight-saving change, a double export) are combined per KPI and
  slice by ``duplicates``: ``mean`` (default; keeps the series' level, right for gauges and
  rates; a count — the store's counts and revenue, or a column declared by ``--sum-columns`` —
  is summed there, a line repeated verbatim once), ``sum`` (counts split over two rows) or
  ``first`` (both for every column).
- **Counts and gauges** (``day_rules``): a day of the store's counts and revenue, and of the
  file's own columns named by ``--sum-columns``, is the sum of its periods; a day of any other
  column of the file (a gauge: CPU %, latency, NAB's ``value``) is the mean of its periods.
- **Missing periods** become NaN rows of the grid: detectors see the gap, never a zero, and a
  NaN point is never flagged. Empty cells are missing values too.
- ``inf`` or text in a value column, or a timestamp that does not parse → InputError naming the
  row (1-based data row, header excluded) and the column.
- A CSV's encoding and separator (',', ';', tab, '|') are ``shocklab.textfile``'s; in a
  ';'-separated file '1,5' is 1.5. A control character in a dimension, segment or KPI name →
  InputError (the names go into file names, JSON and Markdown). Names are read as written:
  'NA' (Namibia), 'null' or 'None' in a dimension, segment or kpi column is a name, not a gap.

Labels (``--events``) are truth: ``evaluation.labels`` reads them (formats there) into the run's
``Truth``; ``ds.ingest`` keeps the KPI names they may refer to.

Size (~1150 lines, one module on purpose): the reader (most of it, with the spellings real exports
use: GA's YYYYMMDD and Date + Hour, ISO weeks, thousands separators, calendar-month rows refused),
its columns' day rules
(``day_rules``) and the config profile of such input (``external_profile``,
``sensitivity_rule``) are one piece: the profile reads what the reader found (the step), and
nothing else uses either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shocklab.catalogue import NS_YEARS, RATIO_KPIS, is_generic
from shocklab.errors import InputError
from shocklab.textfile import (
    CONTROL,
    comma_locale,
    csv_header,
    csv_options,
    decimal_commas,
    first_lines,
    first_repeat,
    not_a_file,
    number_style,
    plain_suffix,
    refuse_binary,
    refuse_control_characters,
    refuse_workbook,
    thousands_commas,
)

from .context import DataSet
from .loading import in_ns_range, read_table

if TYPE_CHECKING:
    from .config import AnalysisConfig

log = logging.getLogger("shocklab.analysis")

TIME_COLUMNS = ("timestamp", "date", "ds", "time", "datetime")
KEY_COLUMNS = ("date", "dimension", "segment")   # key columns of the internal kpis_daily table
DUPLICATE_RULES = ("mean", "sum", "first")
LAYOUTS = ("auto", "wide", "long")
MAX_GRID_FACTOR = 50   # refuse a grid this many times longer than the file (a stray timestamp)
MIN_COVERAGE = 0.5     # step "auto": the modal step's smallest multiple with this share of periods
MIN_FILLED = 0.1       # a grid emptier than this, most of it one gap: a stray timestamp
MIN_MODAL_SHARE = 0.2  # a modal gap rarer than this among the gaps is jitter: a round step instead
ROUND_STEPS = np.array([pd.Timedelta(x).value for x in (
    "1s", "2s", "5s", "10s", "15s", "30s", "1min", "2min", "5min", "10min", "15min", "20min",
    "30min", "1h", "2h", "3h", "4h", "6h", "12h", "1D", "7D")], dtype=np.int64)
MAX_STEP_FACTOR = 64   # … tried up to this multiple


MAX_ABS_VALUE = 1e100  # beyond it, a series' sums and squares can overflow float64


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _day_first(raw: pd.Series, where: str, tcol: str) -> bool:
    """Whether the column's numeric dates (``02/01/2025``) are day-first, decided for the whole
    column as for --transactions (``transactions.dmy_order``); both orders, or only dates that
    could be either, is an InputError (read element by element, '02/01/2025' was 1 February and
    '13/01/2025' 13 January in one file)."""
    from .transactions import dmy_order

    text = raw.astype("string").str.strip()
    o = dmy_order(text)
    if o.conflict is not None:
        i, j = o.conflict
        raise InputError(
            f"{where}: column {tcol!r} has both day-first ({text.iloc[i]!r}, data row {i + 1}) "
            f"and month-first ({text.iloc[j]!r}, data row {j + 1}) dates: write ISO 8601"
        )
    if not (o.day_first.any() or o.month_first.any()) and o.ambiguous.any():
        i = _first_bad(o.ambiguous)
        raise InputError(
            f"{where}: column {tcol!r}: {text.iloc[i]!r} (data row {i + 1}) could be day- or "
            f"month-first and no date in the file decides: write ISO 8601 (YYYY-MM-DD)"
        )
    return bool(o.day_first.any())


_OFFSET = re.compile(r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*([+-]\d\d(?::?\d\d)?|Z)$")


def _utc_offset(raw: pd.Series, csv: Path | None, opts: dict | None, tcol: str) -> str | None:
    """The first UTC offset written in the column, whichever row holds it (``+02:00``; a zone
    name of a Parquet column), None without one or for UTC (``Z``, ``+00:00``): the times are
    converted to UTC, and labels must be read the same way. The CSV reader may have converted
    the column already: then it is read again as text. (Taken from the first row, undated rows
    and then local midnights at '+13:00' found none: the later rows moved a day back.)"""
    if not len(raw):
        return None
    tz = getattr(raw.dtype, "tz", None)
    if tz is not None and csv is not None:
        try:
            raw = pd.read_csv(csv, dtype=str, usecols=[tcol], **(opts or {}))[tcol]
        except (ValueError, KeyError, OSError, pd.errors.ParserError):
            return None
    elif tz is not None:
        return None if str(tz) == "UTC" else str(tz)
    if not (pd.api.types.is_object_dtype(raw) or pd.api.types.is_string_dtype(raw)):
        return None
    found = raw.astype("string").str.strip().str.extract(_OFFSET.pattern, expand=False)
    found = found[found.notna() & (found != "Z") & found.str.strip("+-0:").ne("")]
    return None if found.empty else str(found.iloc[0])


def _local_midnights(raw: pd.Series, path: Path, opts: dict | None,
                     tcol: str, day_first: bool | None = None) -> np.ndarray | None:
    """The dates of a column whose every timestamp is a local midnight written with a UTC offset
    (``2025-03-01T00:00:00+01:00``: a warehouse's daily export), as naive datetime64[ns]; None
    when any has a time of day. Converted to UTC a daily file's every row was 23:00 (22:00 in
    summer) the day before, so each day's figure was reported under the previous date.
    ``day_first``: the column's numeric dates' order (``_dmy_layout``; None: ISO)."""
    tz, n = getattr(raw.dtype, "tz", None), len(raw)
    if tz is not None and opts is None:   # Parquet: its wall times
        wall = raw.dt.tz_localize(None)
    else:
        if tz is not None:   # the CSV reader converted it: the text as written (trailing empty
            # rows of the file left out, as they were from the frame)
            raw = pd.read_csv(path, usecols=[tcol], dtype=str, **opts)[tcol].iloc[:n]
        text = raw.astype("string").str.strip().str.replace(   # an offset after a time only
            r"(\d:\d\d(?::\d\d(?:[.,]\d+)?)?)\s*(?:[+-]\d\d(?::?\d\d)?|Z)$", r"\1",
            regex=True)   # (a date's own '-02' is no offset: '2025-01-02' is no '2025-01')
        wall = (pd.to_datetime(text, format="ISO8601", errors="coerce") if day_first is None
                else pd.to_datetime(text, format="mixed", errors="coerce", dayfirst=day_first))
    if len(wall) != n or wall.isna().any() or (wall != wall.dt.normalize()).any():
        return None
    return wall.to_numpy("datetime64[ns]")


def _dmy_layout(raw: pd.Series) -> bool | None:
    """Whether the column's numeric dates (``06.03.2024``) were read day-first (True) or
    month-first (False); None for other dates (ISO) or when nothing decided (the file was then
    refused by ``_day_first``, or its dates are all like ``01/01/2024``). Checked on the first
    value before the whole column is scanned: an ISO file costs nothing."""
    from .transactions import _DMY, dmy_order

    first = raw.iloc[0] if len(raw) else None
    if not isinstance(first, str) or not re.match(_DMY, first.strip()):
        return None
    o = dmy_order(raw.astype("string").str.strip())
    return True if o.day_first.any() else False if o.month_first.any() else None


def _yyyymmdd(raw: pd.Series, where: str, tcol: str) -> pd.Series | None:
    """Whole numbers that are all dates written YYYYMMDD (Google Analytics' ``Date``:
    20250101), as timestamps; None otherwise. They were "numbers, not timestamps" like epoch
    seconds, which in 1678-2261 have 9 or more digits (epoch seconds of 8 digits are 1970-73).
    Most of them YYYYMMDD dates but not all (``2025013``): InputError naming the first other."""
    if not pd.api.types.is_integer_dtype(raw) or not len(raw):
        return None
    v = raw.to_numpy()
    ts = pd.to_datetime(pd.Series(v, index=raw.index).astype(str), format="%Y%m%d",
                        errors="coerce")
    bad = ((v < 16780101) | (v > 22611231) | ts.isna()).to_numpy()
    if not bad.any():
        return ts
    if bad.mean() < 0.5:   # a date column with a malformed value, not epoch numbers
        i = _first_bad(bad)
        raise InputError(f"{where}: column {tcol!r}: {str(raw.iloc[i])!r} is no date written "
                         f"YYYYMMDD as the column's others (data row {i + 1})")
    return None


_ISO_WEEK = r"(\d{4})-?W(\d{2})(?:-?([1-7]))?"


def _iso_weeks(raw: pd.Series) -> pd.Series | None:
    """ISO 8601 week dates (``2025-W03``, ``2025W03``, ``2025-W03-1``) as the timestamp of their
    day (a week's Monday; NaT for a week the year lacks); None unless every value is written as
    one. pandas reads none of them ("not a timestamp")."""
    first = raw.iloc[0] if len(raw) else None
    if not isinstance(first, str) or not re.fullmatch(_ISO_WEEK, first.strip()):
        return None
    parts = raw.astype("string").str.strip().str.extract(f"^{_ISO_WEEK}$")
    if parts[0].isna().any():
        return None
    text = parts[0] + "-W" + parts[1] + "-" + parts[2].fillna("1")
    return pd.to_datetime(text, format="%G-W%V-%u", errors="coerce")


def _parse_times(raw: pd.Series, where: str, tcol: str) -> np.ndarray:
    """datetime64[ns] (naive UTC) of a timestamp column; InputError naming the first bad row."""
    if raw.isna().any():
        raise InputError(
            f"{where}: column {tcol!r} has an empty value (data row "
            f"{_first_bad(raw.isna().to_numpy()) + 1})"
        )
    if pd.api.types.is_datetime64_any_dtype(raw):
        ts = raw
    elif (ymd := _yyyymmdd(raw, where, tcol)) is not None:
        ts = ymd
    elif pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        # epoch numbers are ambiguous (seconds, milliseconds …): pandas reads them as nanoseconds
        raise InputError(
            f"{where}: column {tcol!r} holds numbers ({str(raw.iloc[0])!r} in data row 1), not "
            f"timestamps: write them as ISO 8601 text, e.g. 2025-01-01 or 2025-01-01T13:00:00"
        )
    elif (week := _iso_weeks(raw)) is not None:
        if week.isna().any():   # 2025-W53: 2025 has 52 ISO weeks
            i = _first_bad(week.isna().to_numpy())
            raise InputError(f"{where}: column {tcol!r}: {raw.iloc[i]!r} is no ISO week (data "
                             f"row {i + 1})")
        ts = week
    else:
        try:
            ts = pd.to_datetime(raw, format="ISO8601")
        except (ValueError, TypeError):
            dayfirst = _day_first(raw, where, tcol)
            try:  # mixed offsets / formats: element-wise, then name the first that fails; ISO
                # rows as ISO (dateutil's dayfirst read '2025-01-02' beside '13/01/2025' as 1 Feb)
                ts = pd.to_datetime(raw, format="ISO8601", errors="coerce", utc=True)
                rest = ts.isna().to_numpy()
                if rest.any():
                    ts[rest] = pd.to_datetime(raw[rest], format="mixed", errors="coerce",
                                              utc=True, dayfirst=dayfirst)
            except (ValueError, TypeError):
                ts = pd.Series(pd.NaT, index=raw.index)
            if ts.isna().any():
                i = _first_bad(ts.isna().to_numpy())
                raise InputError(
                    f"{where}: column {tcol!r} is not a timestamp: {raw.iloc[i]!r} (data row "
                    f"{i + 1})"
                ) from None
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    # pandas keeps year 9024 in seconds; to_numpy("datetime64[ns]") wrapped it round to 2009
    far = (~in_ns_range(ts)).to_numpy()
    if far.any():
        i = _first_bad(far)
        raise InputError(f"{where}: column {tcol!r}: {str(raw.iloc[i])!r} is out of range (data "
                         f"row {i + 1}; timestamps between {NS_YEARS[0]} and {NS_YEARS[1]})")
    return ts.to_numpy("datetime64[ns]")


def _comma_text(df: pd.DataFrame, path: Path, opts: dict[str, str], known: bool = False) -> bool:
    """A file whose numbers have decimal commas (a ';' file: ``textfile.comma_locale``; ``known``:
    decided by ``_number_style``): its columns the reader took for numbers ('1.000' read as 1.0)
    are replaced, in place, by their text as written, so that a point is read as grouping
    thousands. Returns whether it is one."""
    kinds = {c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
             for c in df.columns}
    if not known and not comma_locale([df[c] for c, num in kinds.items() if not num]):
        return False
    num = [c for c, is_num in kinds.items() if is_num]
    if num:
        text = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=num, **opts)
        for c in num:
            df[c] = text[c].to_numpy()
    return True


def _number_style(df: pd.DataFrame, path: Path, sep: str, skip: Sequence[str]) -> str | None:
    """``textfile.number_style`` of a ',', tab or '|' file's text columns (but ``skip``: the
    timestamp and label columns); both styles in one file → InputError naming one cell of each
    (read either way, the other's numbers were a thousandfold off)."""
    cols = [(c, df[c]) for c in df.columns if c not in skip and _is_text(df[c])]
    style, dec, grp = number_style(cols, sep)
    if dec is not None:
        raise InputError(
            f"{path}: numbers with a decimal comma ({dec[2]!r}, column {dec[0]!r}, data row "
            f"{dec[1] + 1}) and with commas grouping thousands ({grp[2]!r}, column {grp[0]!r}, "
            f"data row {grp[1] + 1}) in one file: write every number one way")
    return style


# thousands grouped by a space, no-break space, narrow no-break space (French, Excel) or an
# apostrophe (Swiss): no decimal separator is either, so the grouping is plain
SPACE_GROUPED = r"[+-]?\d{1,3}(?:[ '\u00a0\u202f]\d{3})+(?:[.,]\d+)?"
_SYMBOL = re.compile(r"[%$€£¥₹]|\b(?:EUR|USD|GBP|CHF)\b")


def _not_a_number_hint(value: str, locale: bool, sep: str | None) -> str:
    """Why a value is no number, when it can tell: a currency symbol or percent sign, a comma
    the file's other numbers do not explain."""
    if _SYMBOL.search(value):
        return ("; write plain numbers: no currency symbol, code or percent sign (a percentage "
                "as 12.5 or 0.125, in one unit for the whole column)")
    if locale and "." in value:
        return "; the file's numbers have decimal commas, so a point groups thousands"
    if "," in value and sep in ("\t", "|"):
        return ("; a comma there could group thousands (1,234) or be a decimal comma (1,234 = "
                "1.234), and no number of the file decides: write 1234 or 1.234")
    if "," in value:
        return "; write a decimal point and no thousands separator (1234.5)"
    return ""


def _numeric(col: pd.Series, where: str, name: str, commas: bool = False,
             locale: bool = False, grouping: bool = False, sep: str | None = None) -> np.ndarray:
    """float values of a value column: empty cells → NaN; text or ±inf → InputError (row named).
    ``commas`` (a ';'-separated file): '1,5' is 1.5; ``locale`` (its numbers have decimal
    commas): a point groups thousands ('1.000' is 1000; '2.5' is no number there); ``grouping``
    (``_number_style`` "thousands"): commas group thousands ('1,234.5' is 1234.5)."""
    if pd.api.types.is_bool_dtype(col):
        raise InputError(f"{where}: column {name!r} must be numeric, got booleans")
    if pd.api.types.is_numeric_dtype(col):
        vals = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        text = col.astype("string").str.strip()
        spaced = text.str.fullmatch(SPACE_GROUPED).fillna(False)   # '10 037,70', "10'037.70"
        if spaced.any():
            text = text.where(~spaced, text.str.replace(r"[ '\u00a0\u202f]", "", regex=True))
        s = decimal_commas(text, locale) if commas else thousands_commas(text) if grouping \
            else text
        vals = pd.to_numeric(s.replace("", pd.NA), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        bad = np.isnan(vals) & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
        if bad.any():
            i = _first_bad(bad)
            why = _not_a_number_hint(str(col.iloc[i]), locale, sep)
            if not why and not np.isfinite(vals).any():   # a text column ('Wednesday', 'DE')
                why = ("; every value is text: a KPI column holds numbers (leave this one out; "
                       "slices are columns named dimension and segment, e.g. country / DE)")
            raise InputError(f"{where}: column {name!r} must be numeric, got {col.iloc[i]!r} "
                             f"(data row {i + 1}){why}")
    inf = np.isinf(vals)
    if inf.any():
        i = _first_bad(inf)
        raise InputError(
            f"{where}: column {name!r} has an infinite value {vals[i]} (data row {i + 1})"
        )
    with np.errstate(invalid="ignore"):
        huge = np.abs(vals) > MAX_ABS_VALUE
    if huge.any():  # sums and squares of such values overflow to inf (an internal error)
        i = _first_bad(huge)
        raise InputError(
            f"{where}: column {name!r} has a value too large to analyse: {vals[i]:g} (data row "
            f"{i + 1}; at most ±{MAX_ABS_VALUE:g})"
        )
    return vals


# the store's counts and their ratios: none can be negative (--data refuses a negative count,
# ``loading.NON_NEGATIVE``); revenue and aov can be (a day's refunds), and so can a file's own
# columns (a temperature, a profit)
NON_NEGATIVE_KPIS = frozenset(("sessions", "orders", "units", "new_customers",
                               "returning_customers", "cancelled_orders", "placed_orders",
                               "conversion_rate", "cancellation_rate"))


def _refuse_negative_counts(path: Path, kpis: list[str], values: np.ndarray,
                            kpi_codes: np.ndarray | None, vcol: str | None) -> None:
    """A negative store count (``NON_NEGATIVE_KPIS``) is an InputError naming the column (a long
    file's KPI), how many and the first (file order): they were analysed (exit 0)."""
    for j, name in enumerate(kpis):
        if name not in NON_NEGATIVE_KPIS:
            continue
        col = values[:, j] if kpi_codes is None else np.where(kpi_codes == j, values[:, 0], 0)
        with np.errstate(invalid="ignore"):
            neg = col < 0
        if neg.any():
            i, n = _first_bad(neg), int(neg.sum())
            what = f"column {name!r}" if kpi_codes is None else f"KPI {name!r} (column {vcol!r})"
            raise InputError(f"{path}: {what} has {n} negative value{'s' * (n > 1)} (first: "
                             f"{float(col[i])!r} in data row {i + 1}): a store count cannot be "
                             f"negative")


def _check_slices(raw_seg: pd.Series, dim: np.ndarray, seg: np.ndarray, where: str,
                  scol: str) -> None:
    """An empty segment only in 'overall' rows (where it is 'all'), and 'overall' only with 'all':
    an empty one under 'channel' made a series 'channel all' beside the real channels, and
    'overall' with 'web' an overall series that was one channel's."""
    empty = (raw_seg.astype("string").fillna("").str.strip() == "").to_numpy(bool)
    bad = empty & (dim != "overall")
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{where}: column {scol!r} is empty in a {dim[i]!r} row (data row "
                         f"{i + 1}): only 'overall' rows may leave it empty")
    bad = (dim == "overall") & (seg != "all")
    if bad.any():
        i = _first_bad(bad)
        raise InputError(f"{where}: column {scol!r} is {seg[i]!r} in an 'overall' row (data row "
                         f"{i + 1}): 'overall' has the one segment 'all' (or empty); give a "
                         f"slice its dimension")


HOUR_COLUMNS = ("hour", "hour of day", "hour_of_day", "hourofday")


def _hour_column(df: pd.DataFrame, cols: list[str], ts: np.ndarray, skip, where: str,
                 tcol: str) -> tuple[str | None, np.ndarray | None]:
    """The name and hours (0-23) of a column named like an hour (``Hour``: Google Analytics'
    Date + Hour export) beside dates without a time that repeat, or (None, None). Analysed as a
    KPI, the file was read daily, each day the mean of its 24 rows (one "duplicate rows
    combined" warning). A column most of whose values are such hours but not all (``24``,
    empty): InputError naming the first other (it was read daily, the whole column a KPI)."""
    hcol = next((c for c in cols if c not in skip and c.strip().lower() in HOUR_COLUMNS), None)
    day = np.int64(86_400 * 10**9)
    if (hcol is None or pd.api.types.is_bool_dtype(df[hcol])
            or (ts.view(np.int64) % day).any() or len(pd.unique(ts)) == len(ts)):
        return None, None
    h = pd.to_numeric(df[hcol], errors="coerce").to_numpy(float)
    ok = np.isfinite(h) & (h == np.round(h)) & (h >= 0) & (h <= 23)
    if ok.all():
        return hcol, h.astype(np.int64)
    if ok.mean() <= 0.5:   # a KPI named like an hour
        return None, None
    i = _first_bad(~ok)
    what = "is empty" if pd.isna(df[hcol].iloc[i]) else f"holds {str(df[hcol].iloc[i])!r}"
    raise InputError(f"{where}: column {hcol!r} (the hour of the day of column {tcol!r}: 0-23) "
                     f"{what} (data row {i + 1}); rename the column if it is a KPI")


def _find(cols: list[str], name: str) -> str | None:
    return next((c for c in cols if c.strip().lower() == name), None)


def _is_text(col: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _sorted_unique(a: np.ndarray, counts: bool = False):
    """np.unique for an already sorted array, in one linear pass (no hashing, no sort)."""
    start = np.flatnonzero(np.r_[True, a[1:] != a[:-1]]) if a.size else np.array([], dtype=np.int64)
    if not counts:
        return a[start]
    return a[start], start, np.diff(np.r_[start, a.size])


def _modal_step(ts_sorted: np.ndarray) -> np.int64:
    """The most common gap between consecutive distinct timestamps; when no gap is that common
    (fewer than ``MIN_MODAL_SHARE`` of them: timestamps jittered by a few seconds, so every gap
    is a little different), the median gap rounded to the nearest ``ROUND_STEPS`` duration."""
    d = np.diff(_sorted_unique(ts_sorted.view(np.int64)))
    if d.size == 0:
        return np.int64(0)
    vals, _, counts = _sorted_unique(np.sort(d), counts=True)
    i = int(np.argmax(counts))   # ties: the smaller step
    if counts[i] >= MIN_MODAL_SHARE * d.size:
        return vals[i]
    med = float(np.median(d))
    return ROUND_STEPS[int(np.argmin(np.abs(np.log(ROUND_STEPS / med))))]


def _coverage(off: np.ndarray, step: int) -> float:
    """Share of the periods of a grid of ``step`` (from the first timestamp) holding a row."""
    slot = (off + step // 2) // step
    return len(_sorted_unique(slot)) / (int(slot[-1]) + 1)


CALENDAR_STEP = pd.Timedelta("28D").value   # a modal step this long may be a calendar month's


def _refuse_calendar_steps(path: Path, tcol: str, ts: np.ndarray, slot: np.ndarray,
                           step: np.int64) -> None:
    """Rows a calendar month (quarter, year) apart have gaps of 28 to 31 days: no fixed step
    holds them. On the modal step's grid (31 days) a 4-year monthly export drifted off its
    months: 46 of 48 rows snapped, a December dated 7 December, two months averaged into one
    period -- analysed as it was, with one warning line. InputError instead (not for gaps
    within a day of each other: a fixed cadence drifting by a DST hour in UTC snaps as before)."""
    days = np.diff(_sorted_unique(ts.view(np.int64))) / 86_400e9
    if days.max() - days.min() < 1 - 1e-9:   # months differ by days; an hour's drift (a
        return                               # 28-day cadence at 09:00 local across DST) is no
    merged = int(len(slot) - len(_sorted_unique(slot)))   # calendar
    raise InputError(
        f"{path}: column {tcol!r}: rows {days.min():g} to {days.max():g} days apart (calendar "
        f"months or quarters?) fit no fixed step: on a grid of "
        f"{pd.Timedelta(int(step), 'ns').days} days they drift off their dates"
        + (f" and {merged} row(s) would be averaged with a neighbour" if merged else "")
        + "; give daily or weekly rows, or force a step with --step (e.g. --step 30D)")


def choose_step(ts_sorted: np.ndarray, how: str = "auto") -> np.int64:
    """The grid step (ns): ``modal``, ``auto`` (the modal step's smallest multiple whose grid is
    at least ``MIN_COVERAGE`` full; the modal step if none up to ``MAX_STEP_FACTOR`` is) or a
    duration string."""
    if how not in ("auto", "modal"):
        from .consensus import parse_duration  # 1d / 1D alike

        if str(how).strip().replace(".", "", 1).isdigit() and float(how) > 0:   # '7': 7 ns
            raise InputError(f"--step: {how!r} has no unit; give a duration such as 10min, 1h "
                             "or 1D")
        try:
            td = parse_duration(how)
        except (ValueError, TypeError):
            raise InputError(f"--step: expected auto, modal or a duration (e.g. 10min), got "
                             f"{how!r}") from None
        if pd.isna(td) or td <= pd.Timedelta(0):   # 'nan' parses as NaT: refused here
            raise InputError(f"--step: must be positive, got {how!r}")
        return np.int64(td.value)
    step = _modal_step(ts_sorted)
    if how == "modal" or step <= 0:
        return step
    off = ts_sorted.view(np.int64) - ts_sorted[0].astype(np.int64)
    for m in range(1, MAX_STEP_FACTOR + 1):
        if _coverage(off, int(step) * m) >= MIN_COVERAGE:
            return np.int64(step * m)
    return step


OTHER_FORMATS = (".json", ".jsonl", ".ndjson", ".xml", ".html", ".htm", ".pdf")


def _refuse_other_formats(path: Path) -> None:
    """A workbook or a JSON export given as --kpis was read as CSV: "cannot read (Error
    tokenizing data …)" of an .xlsx, "table is empty" of a .json of records."""
    refuse_workbook(path, "--kpis", "CSV or Parquet")
    suffix = plain_suffix(path)
    if suffix in OTHER_FORMATS:
        labels = " (labelled windows, NAB's combined_windows.json: --events)" * (suffix == ".json")
        raise InputError(f"{path}: a {suffix[1:].upper()} file; --kpis reads CSV (plain or "
                         f"compressed) or Parquet: a timestamp column and one column per KPI"
                         f"{labels}")


def _refuse_preamble(path: Path) -> None:
    """A report export whose first line is a '#' comment (Google Analytics writes a preamble:
    '# All Web Site Data', '# Start date: 20250101' …, then the table, then more sections): was
    "cannot read (Error tokenizing data. C error: Expected 1 fields in line 7, saw 2)"."""
    first = next(iter(first_lines(path, 1)), "")
    if first.lstrip("\ufeff").lstrip().startswith("#"):
        raise InputError(f"{path}: line 1 is a comment ({first.strip()[:40]!r}): a report's "
                         f"preamble, as Google Analytics writes one? Keep only the table: its "
                         f"header row first, one row per timestamp")


def _refuse_labels(df: pd.DataFrame, path: Path) -> None:
    """A labels CSV (start,end windows) given as --kpis: it was "column 'end' must be numeric,
    got Timestamp(…)", as if the KPI file had a bad cell."""
    low = {str(c).strip().lower(): c for c in df.columns}
    if "start" in low and "end" in low and not pd.api.types.is_numeric_dtype(df[low["end"]]):
        raise InputError(f"{path}: columns {low['start']!r} and {low['end']!r} hold windows: a "
                         "labels file? it goes to --events, the KPI series to --kpis")


# per-row 0/1 anomaly labels (NAB's results files: timestamp,value,label)
PER_ROW_LABELS = ("label", "is_anomaly", "anomaly")


def _refuse_label_column(df: pd.DataFrame, path: Path, tcol: str) -> None:
    """A column of per-row 0/1 labels beside the KPI (NAB's results-file layout) was analysed as
    a KPI: its 0 -> 1 steps became incidents matched to the very windows they mark (recall
    1.00). Labels are truth, never data: they go to --events as windows."""
    for c in df.columns:
        if c == tcol or c.strip().lower() not in PER_ROW_LABELS:
            continue
        v = df[c].dropna().astype(str).str.strip().str.lower()
        if len(v) and v.isin(("0", "1", "0.0", "1.0", "true", "false")).all():
            raise InputError(
                f"{path}: column {c!r} holds per-row 0/1 anomaly labels (NAB's results-file "
                "layout), not a KPI: drop it from the --kpis file and pass the labelled windows "
                "with --events (NAB's combined_windows.json, or a CSV of start,end rows)")


def _drop_trailing_empty_rows(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Rows empty in every column at the end of the file (a spreadsheet's ',,' lines) are no
    data: they were "column 'date' has an empty value (data row 201)". Elsewhere an empty
    timestamp stays an error."""
    filled = df.notna().to_numpy().any(axis=1)
    last = len(filled) - int(np.argmax(filled[::-1])) if filled.any() else 0
    if last == len(df) or last == 0:
        return df
    log.warning("%s: %d empty row(s) after data row %d left out", path, len(df) - last, last)
    return df.iloc[:last]


def _refuse_parquet_repeats(path: Path) -> None:
    """A Parquet file's column name written twice is named as the CSV reader names it (pandas
    said "cannot read (Multiple matches for FieldRef.Name(revenue) …)"); a file that is no
    Parquet is left to the reader, which words it."""
    try:
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
    except (ImportError, OSError, ValueError):   # ArrowInvalid is a ValueError
        return
    dup = first_repeat(names)
    if dup is not None:
        raise InputError(f"{path}: duplicate column name {dup!r}")


def load_kpis_file(
    path: str | Path,
    duplicates: str = "mean",
    layout: str = "auto",
    step: str = "auto",
    sum_columns: Sequence[str] = (),
) -> DataSet:
    """Read, validate and regularise an external KPI file into a DataSet whose
    ``tables["kpis_daily"]`` is ready (see the module docstring); ``ds.ingest`` records what was
    done (step, missing periods, duplicates, resampled rows), how each column makes a day
    (``day_figures``, see ``day_rules``) and the raw row times for NAB scoring. ``step``: auto |
    modal | a duration (see the module docstring); ``sum_columns``: the file's own columns that
    are counts (``--sum-columns``)."""
    path = Path(path)
    if duplicates not in DUPLICATE_RULES:
        raise InputError(
            f"--duplicates: must be one of {', '.join(DUPLICATE_RULES)}, got {duplicates!r}"
        )
    if layout not in LAYOUTS:
        raise InputError(f"--layout: must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if path.is_dir():
        raise InputError(f"{path}: is a directory; --kpis takes a KPI file (CSV or Parquet)")
    if not path.is_file():
        raise InputError(not_a_file(path, "KPI file"))
    text = path.suffix.lower() != ".parquet"   # CSV, plain or compressed (.csv.gz …)
    if text:
        _refuse_other_formats(path)
        refuse_binary(path, "--kpis", "CSV (plain or compressed) or Parquet",
                      renames=(".parquet",))
        _refuse_preamble(path)
    else:
        _refuse_parquet_repeats(path)
    opts = csv_options(path) if text else None   # encoding and separator, sniffed once
    df = read_table(path, csv=opts)
    if df.empty:
        raise InputError(f"{path}: table is empty")
    df = _drop_trailing_empty_rows(df, path)
    if not text and (isinstance(df.index, (pd.DatetimeIndex, pd.MultiIndex))
                     or df.index.name is not None):
        # df.set_index("date").to_parquet(): the timestamps came back as the index, and the
        # first KPI column was read as the time ("holds numbers, not timestamps")
        df = df.reset_index()
    df.columns = [str(c).strip() for c in df.columns]   # ' Revenue ' was a KPI ' Revenue '
    header = csv_header(path, opts) if text else list(df.columns)
    if len(header) == len(df.columns):
        # a spreadsheet's trailing separators ('date,revenue,,'): nameless columns empty in every
        # row are no KPI; they were "duplicate column name ''"
        blank = [c for c, h in zip(df.columns, header, strict=True)
                 if not h.strip() and df[c].isna().all()]
        if blank:
            keep = [h for c, h in zip(df.columns, header, strict=True) if c not in blank]
            df = df.drop(columns=blank)
            header = keep
    cols = list(df.columns)
    dup = first_repeat(header)  # the CSV reader renames a repeat
    sep = opts["sep"] if opts is not None else None
    commas = sep == ";"   # '1,5' is 1.5 (a decimal-comma locale)
    if dup is not None:
        raise InputError(f"{path}: duplicate column name {dup!r}")
    tcol = next((c for c in cols if c.strip().lower() in TIME_COLUMNS), None)
    if tcol is None:
        tcol = cols[0]
        if not pd.isna(pd.to_datetime(tcol, format="ISO8601", errors="coerce")):
            raise InputError(
                f"{path}: the first row looks like data ({tcol!r} is a timestamp), not a header: "
                f"the file needs a header row naming its columns (timestamp, then one per KPI)"
            )
        _refuse_labels(df, path)
    nameless = [i for i, (c, h) in enumerate(zip(cols, header, strict=False))
                if not str(h).strip() and c != tcol] if len(header) == len(cols) else []
    if nameless:   # was analysed as a KPI named 'Unnamed: 0' (and a NAB file had two series)
        raise InputError(
            f"{path}: column {nameless[0] + 1} has no name in the header (a saved row index, as "
            f"pandas' to_csv writes by default?): name it, or write the file without it"
        )
    _refuse_label_column(df, path, tcol)
    offset = _utc_offset(df[tcol], None if path.suffix.lower() == ".parquet" else path, opts, tcol)
    ts = _parse_times(df[tcol], str(path), tcol)
    day_first = _dmy_layout(df[tcol])
    if offset is not None and (local := _local_midnights(df[tcol], path, opts, tcol,
                                                         day_first)) is not None:
        i = int(np.argmax(ts != local))   # the first row its offset moved
        utc = pd.Timestamp(ts[i])
        log.warning("%s: column %r holds local midnights with a UTC offset (%s): read as their "
                    "dates (in UTC each was %s %s)", path, tcol, offset, utc.strftime("%H:%M"),
                    "the day before" if utc < pd.Timestamp(local[i]) else "that day")
        ts, offset = local, None   # labels without an offset are then these dates
    locale = commas and _comma_text(df, path, opts)   # after the times: they stay as read
    grouping = False
    if sep is not None and not commas:   # ',', tab or '|': '1,234.5' or a tab file's '1002,5'
        style = _number_style(df, path, sep, [tcol, *(c for c in (
            _find(cols, n) for n in ("kpi", "dimension", "segment")) if c)])
        if style == "comma":
            commas = locale = _comma_text(df, path, opts, known=True)
        grouping = style == "thousands"

    kcol, vcol = _find(cols, "kpi"), _find(cols, "value")
    if layout != "wide" and kcol is not None and vcol is not None and df[kcol].isna().all():
        # read as numbers, it made auto pick the wide layout and analyse 'kpi' and 'value'
        raise InputError(f"{path}: column {kcol!r} is empty (data row 1): the long layout "
                         f"(timestamp, kpi, value) needs a KPI name in every row")
    long = layout == "long" or (
        layout == "auto"
        and kcol is not None
        and vcol is not None
        and kcol != tcol
        and vcol != tcol
        and _is_text(df[kcol])
    )
    dcol, scol = _find(cols, "dimension"), _find(cols, "segment")
    if long:
        if kcol is None or vcol is None:
            raise InputError(
                f"{path}: the long layout needs columns 'kpi' and 'value' (got {', '.join(cols)})"
            )
        extra = [c for c in cols if c not in (tcol, kcol, vcol, dcol, scol)]
        if extra:
            raise InputError(f"{path}: unexpected column {extra[0]!r} in the long layout "
                             f"(timestamp, kpi, value[, dimension, segment])")
    elif dcol is not None and scol is not None and _is_text(df[dcol]) != _is_text(df[scol]):
        # 'segment' of numbers (stores 101, 102) beside a text 'dimension': names as written
        # (it was "give both 'dimension' and 'segment' columns, or neither", of a file with both)
        num = scol if _is_text(df[dcol]) else dcol
        df[num] = (pd.read_csv(path, usecols=[num], dtype=str, keep_default_na=False, **opts)[
            num].iloc[:len(df)].to_numpy() if opts is not None else df[num].astype("string"))
    else:   # wide: text dimension/segment columns are slice keys; everything else is a KPI
        dcol = dcol if dcol is not None and _is_text(df[dcol]) else None
        scol = scol if scol is not None and _is_text(df[scol]) else None
    if (dcol is None) != (scol is None):
        raise InputError(f"{path}: give both 'dimension' and 'segment' columns, or neither")
    if opts is not None:   # names as written: the CSV reader turned 'NA' (Namibia) into a gap
        labels = [c for c in (dcol, scol, kcol if long else None) if c and df[c].isna().any()]
        if labels:   # only a label column with a gap is read again
            written = pd.read_csv(path, usecols=labels, dtype=str, keep_default_na=False, **opts)
            if len(written) == len(df):
                for c in labels:
                    df[c] = written[c].where(written[c].str.strip() != "")
    names = {c: df[c].astype("string").fillna("").str.strip() for c in (dcol, scol) if c}
    for c, text in names.items():   # a '\x07' vanished from the outputs' names
        refuse_control_characters(text, str(path), c)
    dim = names[dcol].replace("", "overall").to_numpy(object) if dcol else None
    seg = names[scol].replace("", "all").to_numpy(object) if scol else None
    if dcol:
        _check_slices(df[scol], dim, seg, str(path), scol)
    if long:
        knames = df[kcol].astype("string")
        if knames.isna().any() or (knames.str.strip() == "").any():
            i = _first_bad((knames.isna() | (knames.str.strip() == "")).fillna(True).to_numpy())
            raise InputError(f"{path}: column {kcol!r} has an empty KPI name (data row {i + 1})")
        refuse_control_characters(knames.str.strip(), str(path), kcol)
        kpi_codes, kpis = pd.factorize(knames.str.strip(), sort=False)
        kpis = [str(k) for k in kpis]
        values = _numeric(df[vcol], str(path), vcol, commas, locale, grouping, sep)[:, None]
    else:
        hcol, hours = _hour_column(df, cols, ts, (tcol, dcol, scol), str(path), tcol)
        if hours is not None:   # GA4's Date + Hour: one timestamp (it was 24 duplicates a day)
            ts = ts + hours * np.timedelta64(3600, "s")
            log.warning("%s: column %r (0-23) read as the hour of the day of column %r", path,
                        hcol, tcol)
        kpis = [c for c in cols if c not in (tcol, dcol, scol, hcol)]
        if not kpis:
            raise InputError(f"{path}: no KPI columns besides the timestamp column {tcol!r}")
        bad = next((k for k in kpis if re.search(CONTROL, k)), None)
        if bad is not None:
            raise InputError(f"{path}: column name {bad!r} holds a control character "
                             f"{ascii(re.search(CONTROL, bad).group())[1:-1]} (header): remove it "
                             f"(names go into file names, JSON and Markdown)")
        values = np.column_stack([_numeric(df[k], str(path), k, commas, locale, grouping, sep)
                                    for k in kpis])
        kpi_codes = None
    _refuse_negative_counts(path, kpis, values, kpi_codes, vcol)
    empty = [k for k, col in zip([vcol] if long else kpis, values.T, strict=True)
             if np.isnan(col).all()]   # analysed, it said "0 incidents" of a file of no numbers
    named = f"column{'s' * (len(empty) > 1)} {', '.join(map(repr, empty))}"
    if len(empty) == values.shape[1]:
        raise InputError(f"{path}: no values to analyse: {named} empty in every row")
    if empty:
        log.warning("%s: %s empty in every row: nothing is analysed there", path, named)
    del df
    n_distinct = len(pd.unique(ts))
    if n_distinct < 3:
        raise InputError(f"{path}: need at least 3 distinct timestamps, got {n_distinct}")

    # ---- the grid: first timestamp + k × modal step
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    if dcol is not None:
        dim, seg = dim[order], seg[order]
    if kpi_codes is not None:
        kpi_codes = kpi_codes[order]
    t0 = ts[0].astype(np.int64)
    modal = _modal_step(ts)
    given = step not in ("auto", "modal")   # --step 10min: the user's, not chosen here
    step = choose_step(ts, step)
    off = ts.view(np.int64) - t0
    slot = (off + step // 2) // step   # nearest grid point (a tie goes to the later one)
    resampled = int(np.count_nonzero(off != slot * step))
    n_slots = int(slot[-1]) + 1
    if resampled and not given and step >= CALENDAR_STEP:
        _refuse_calendar_steps(path, tcol, ts, slot, step)
    if n_slots < 3:   # --step 100000D: one period of the mean of the file was "analysed"
        raise InputError(f"{path}: a step of {pd.Timedelta(int(step), 'ns')} puts the file's "
                         f"{n_distinct} timestamps into {n_slots} period(s); need at least 3"
                         + (" (give a shorter --step)" if given else ""))

    if dcol is None:
        key_codes, key_labels = (
            np.zeros(len(ts), dtype=np.int64),
            np.array(["overall\x1fall"], dtype=object),
        )
    else:
        key_codes, key_labels = pd.factorize(
            pd.Series(dim, dtype=object) + "\x1f" + pd.Series(seg, dtype=object)
        )
    n_keys = len(key_labels)
    gaps = np.diff(ts.view(np.int64))
    filled = len(_sorted_unique(slot))   # periods holding a row (slot is sorted)
    if n_slots * n_keys > MAX_GRID_FACTOR * max(len(ts), 1000) or (
            not given and filled < MIN_FILLED * n_slots and 2 * gaps.max() > off[-1]):
        # the second: one stray row (1970-01-01 before 200 days of 2025) made a grid of 20,099
        # days, 99.9 % gaps, analysed with one warning line (the first allows 50,000 periods)
        i = int(np.argmax(gaps))
        raise InputError(
            f"{path}: column {tcol!r}: a gap of {step_text(gaps[i] / 1e9)} after "
            f"{pd.Timestamp(ts[i])} would need {n_slots:,} periods of {step_text(step / 1e9)} "
            f"for {len(ts):,} rows ({n_slots - filled:,} of them empty; data rows "
            f"{int(order[i]) + 1} and {int(order[i + 1]) + 1} are either side of it); split the "
            f"file or fix the timestamp")

    # ---- combine rows that share (slice, KPI, grid point): exact duplicates and snapping
    # collisions; under the default mean a count (the store's counts and revenue, and a column
    # declared with --sum-columns: day rule ``sum``) is summed, an exact copy of a row once
    n_k = len(kpis)
    internal = {k: (f"{k}_kpi" if k in KEY_COLUMNS else k) for k in kpis}
    rules = day_rules(path, internal, sum_columns)
    counted = np.array([rules[internal[k]] == "sum" for k in kpis]) & (duplicates == "mean")
    summed_kpis = [internal[k] for k, c in zip(kpis, counted, strict=True) if c]
    rule = duplicates + (f" (counts summed: {', '.join(summed_kpis)})"
                         if summed_kpis else "")
    if kpi_codes is None:   # wide: a row holds every KPI of one (slice, slot)
        cell = key_codes.astype(np.int64) * n_slots + slot
    else:                   # long: a row holds one value of one (slice, KPI, slot)
        cell = (key_codes.astype(np.int64) * n_k + kpi_codes) * n_slots + slot
    cell_vals = values      # [rows, KPIs] (wide) or [rows, 1] (long)
    cell_order = np.argsort(cell, kind="stable")   # cheap when already sorted (one series)
    uniq = _sorted_unique(cell[cell_order])
    n_dup_rows = int(len(cell) - len(uniq))
    exact_dups = 0
    if n_dup_rows:
        # rows sharing a cell AND a timestamp are duplicates; the rest are snapping collisions
        pair = pd.DataFrame({"c": cell, "t": ts.view(np.int64)})
        exact_dups = int(pair.duplicated().sum())
        combined = pd.DataFrame(cell_vals).groupby(cell, sort=True)
        if duplicates == "sum":
            out_vals = combined.sum(min_count=1).to_numpy()
        elif duplicates == "mean":
            out_vals = combined.mean().to_numpy().copy()
            if counted.any():   # averaged, 10-minute counts on a 15-minute grid lost 18 %
                # a line of the file repeated (same slice, timestamp and values) is one reading,
                # not two; two readings at one timestamp (a repeated local hour) both count
                once = ~pd.DataFrame(cell_vals).assign(_c=cell, _t=pair["t"]).duplicated(
                    ).to_numpy()
                sums = pd.DataFrame(cell_vals[once]).groupby(cell[once], sort=True).sum(
                    min_count=1).to_numpy()
                if kpi_codes is None:
                    out_vals[:, counted] = sums[:, counted]
                else:
                    take = counted[(uniq // n_slots) % n_k]
                    out_vals[take] = sums[take]
        else:
            out_vals = combined.first().to_numpy()
    else:
        out_vals = cell_vals[cell_order]
    dense = np.full((n_keys, n_slots, n_k), np.nan)
    if kpi_codes is None:
        kk, ss = np.divmod(uniq, n_slots)
        dense[kk, ss, :] = out_vals
    else:
        kq, ss = np.divmod(uniq, n_slots)
        kk, kp = np.divmod(kq, n_k)
        dense[kk, ss, kp] = out_vals[:, 0]

    present = np.zeros((n_keys, n_slots), dtype=bool)
    present[key_codes, slot] = True
    missing_periods = int((~present).sum())
    missing_values = int(np.isnan(dense).sum() - (~present).sum() * n_k)

    grid = (t0 + np.arange(n_slots, dtype=np.int64) * step).view("datetime64[ns]")
    labels = [str(lab).split("\x1f", 1) for lab in key_labels]
    for k, v in internal.items():
        if k != v:
            log.warning(
                "%s: KPI column %r is stored as %r (the name is a key of kpis_daily)", path, k, v
            )
    out = pd.DataFrame({"date": np.tile(grid, n_keys),   # every column at once (no
                        "dimension": np.repeat([lab[0] for lab in labels], n_slots),  # insert
                        "segment": np.repeat([lab[1] for lab in labels], n_slots),  # per KPI:
                        **{internal[k]: dense[:, :, j].reshape(-1)  # a warning each past 100)
                           for j, k in enumerate(kpis)}})
    del dense
    # overall first, then slices (the detectors' and plots' order)
    if n_keys > 1:
        rank = out["dimension"].ne("overall").to_numpy()
        out = out.iloc[np.lexsort((np.arange(len(out)), rank))].reset_index(drop=True)

    step_td = pd.Timedelta(int(step), "ns")
    info = {
        "layout": "long" if long else "wide",
        "rows": int(len(ts)),
        "step": str(step_td),
        "step_seconds": step_td.total_seconds(),
        "modal_step": str(pd.Timedelta(int(modal), "ns")),
        "periods": n_slots,
        "series": n_keys * n_k,
        "missing_periods": missing_periods,
        "missing_values": missing_values,
        "duplicate_rows": exact_dups,
        "duplicates_rule": duplicates,
        "duplicates_summed": summed_kpis,
        "resampled_rows": resampled,
        "combined_rows": n_dup_rows,
        "kpis": list(internal.values()),
        "day_figures": rules,
    }
    step_s, modal_s = step_text(step / 1e9), step_text(modal / 1e9)   # '10 min', not
    # '0 days 00:10:00'
    if step != modal and given:
        # said "the modal step would leave more than half the periods empty" of a step the user
        # gave (--step 100000D: every row in one period)
        log.warning("%s: --step %s, not the file's modal step %s: %s", path, step_s, modal_s,
                    f"the rows in one period are combined by --duplicates {rule}"
                    if step > modal else "the periods without a row are gaps")
    elif step != modal:
        log.warning(
            "%s: step %s (the modal step %s would leave more than half the periods empty; "
            "--step modal keeps it)",
            path,
            step_s,
            modal_s,
        )
    if missing_periods:
        log.warning(
            "%s: %d missing period(s) of %s (of %d) kept as gaps: never flagged, never zero",
            path,
            missing_periods,
            step_s,
            n_slots * n_keys,
        )
    if exact_dups:
        log.warning(
            "%s: %d duplicate timestamp row(s) combined by --duplicates %s",
            path,
            exact_dups,
            rule,
        )
    if resampled:
        log.warning(
            "%s: %d row(s) off the %s grid snapped to the nearest period%s",
            path,
            resampled,
            step_s,
            f" ({n_dup_rows - exact_dups} collision(s) combined by --duplicates {rule})"
            if n_dup_rows - exact_dups
            else "",
        )
    ds = DataSet(path=None, tables={"kpis_daily": out}, source="kpis",
                 manifest={"scenario": path.stem, "kpi_file": str(path)})
    ds.ingest = {
        **info,
        "_raw_times": ts,
        "_raw_slots": slot if n_keys == 1 else None,
        "_file": str(path),
        "_utc_offset": offset,   # e.g. '+02:00': labels without one are read as UTC (--events)
        "_day_first": day_first,   # numeric dates' order (None: ISO): --events labels' default
        "_kpis": list(kpis),   # the file's KPI names and their internal names, for --events labels
        "_names": dict(internal),
    }
    return ds


def day_rules(path: Path, names: dict[str, str], sum_columns: Sequence[str]) -> dict[str, str]:
    """How each KPI column's periods make a day (and its days a window), by internal name: ``sum``
    for the store's counts and revenue and for the file's own columns named in ``sum_columns``
    (requests, signups: ``--sum-columns``), ``pooled`` for the store's ratios (weighted by their
    denominator), ``mean`` for any other column — a gauge (CPU %, latency, a temperature, NAB's
    ``value``), whose day is the mean of its observed periods. ``names``: the file's column names
    and their internal names; a name in ``sum_columns`` that is neither → InputError."""
    wanted = [c.strip() for c in sum_columns if c.strip()]
    known = {**{v: v for v in names.values()}, **names}
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise InputError(
            f"--sum-columns: {', '.join(map(repr, unknown))} not a KPI column of {path} (its "
            f"columns: {', '.join(sorted(names)) or 'none'})")
    ratios = [c for c in wanted if known[c] in RATIO_KPIS]
    if ratios:
        raise InputError(f"--sum-columns: {', '.join(ratios)} is a ratio KPI (pooled by its "
                         "denominator per day), not a count")
    summed = {known[c] for c in wanted}
    for name, v in names.items():   # 'Sessions' (Google Analytics) is no store 'sessions'
        store = re.sub(r"[\s-]+", "_", name.strip().lower())
        if v not in summed and is_generic(v) and not is_generic(store) and store not in names:
            log.warning("%s: column %r is read as a gauge (its day is the mean of its periods), "
                        "not as the store KPI %r (names are exact): rename it %r%s", path, name,
                        store, store, "" if store in RATIO_KPIS
                        else f", or name it a count with --sum-columns {name!r}")
    return {v: "pooled" if v in RATIO_KPIS else
            "sum" if not is_generic(v) or v in summed else "mean" for v in names.values()}


def averaged_columns(ds: DataSet) -> frozenset[str]:
    """The columns whose day figure is the mean of their periods (``day_figures`` ``mean``: a
    --kpis file's gauges); empty for store data and transaction files."""
    rules = (getattr(ds, "ingest", None) or {}).get("day_figures") or {}
    return frozenset(k for k, v in rules.items() if v == "mean")


def ingest_summary(ds: DataSet) -> dict[str, Any]:
    """The JSON-safe part of ``ds.ingest`` (for run.json)."""
    return {k: v for k, v in (getattr(ds, "ingest", None) or {}).items() if not k.startswith("_")}


DAY_SECONDS = 86400.0   # a step this long or longer is "daily or coarser"


def step_text(seconds: float) -> str:
    """A step as people write it: 1 day, 6 h, 5 min, 30 s."""
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''}"
    return f"{seconds:g} s"


def sensitivity_rule(cfg: AnalysisConfig, step_seconds: float | None = None) -> dict[str, Any]:
    """The sensitivity a ``--kpis`` run uses, its source and why (run.json
    ``external_sensitivity``). ``external.sensitivity`` was chosen for NAB's score on NAB's files,
    all sub-daily (5 to 80 minutes): it applies under a one-day step (or an unknown one). Daily or
    coarser input uses the analysis-wide ``sensitivity`` like store data (there 3 per 90 days is
    an alert a month per series; 10, shipped until 2026-12-03, one every nine days). ``cfg``:
    the config before ``external_profile``."""
    ext, step = cfg.external, step_seconds
    daily = step is not None and step >= DAY_SECONDS - 1e-6
    kind = "step unknown" if step is None else (
        f"{'daily or coarser' if daily else 'sub-daily'} input (step {step_text(step)})")
    if not daily and ext.sensitivity is not None:
        src, why = "external.sensitivity", "external.sensitivity, chosen on NAB's sub-daily files"
    elif not daily:
        src, why = "sensitivity", "external.sensitivity is null"
    else:
        src, why = "sensitivity", "the analysis-wide sensitivity, as on store data" + (
            f"; external.sensitivity ({ext.sensitivity:g}) is for sub-daily files"
            if ext.sensitivity is not None else "")
    value = ext.sensitivity if src == "external.sensitivity" else cfg.sensitivity
    return {"sensitivity": float(value), "source": src, "daily": daily,
            "step_seconds": None if step is None else float(step), "why": f"{kind}: {why}"}


def _auto_tails(d: Any, tail: str) -> dict[str, Any]:
    """Every calibration of detector settings ``d`` left on ``tail: auto`` -- ``calibration``
    and the per-window maps (``window_calibration`` ...) -- with ``tail`` instead, as updates."""
    from .detectors.calibrate import CalibrationConfig

    def one(c: CalibrationConfig) -> CalibrationConfig:
        return c.model_copy(update={"tail": tail}) if c.tail == "auto" else c

    out: dict[str, Any] = {}
    for key in type(d).model_fields:
        v = getattr(d, key)
        if isinstance(v, CalibrationConfig):
            out[key] = one(v)
        elif isinstance(v, dict) and v and all(isinstance(c, CalibrationConfig)
                                               for c in v.values()):
            out[key] = {k: one(c) for k, c in v.items()}
    return out


def external_profile(cfg: AnalysisConfig, step_seconds: float | None = None) -> AnalysisConfig:
    """The analysis config as a ``--kpis`` run uses it: ``cfg.external`` applied (the calibrator
    tail of detectors left on ``auto``, the detectors added for external series only
    (``external.detectors``), every voter wrapped in the score likelihood
    (``external.likelihood``, ``detectors.likelihood``), rolling_zscore's short-history options
    (``external.early_min``, ``external.flat_floor``), the sensitivity by the file's step
    (``sensitivity_rule``), consensus suppression, k and solo path, and the merge gap as periods
    of the file's step ``step_seconds``). Store runs never call this, so their behaviour cannot
    change. Returns a new config (``cfg`` untouched); run.json records the effective one."""
    ext = cfg.external
    gap = cfg.consensus.merge_gap_days
    if ext.merge_gap is not None and step_seconds:
        from .consensus import parse_duration

        secs = parse_duration(ext.merge_gap).total_seconds()
        gap = max(1, int(np.ceil(secs / step_seconds - 1e-9)))  # the store's merge gap is days
    from .detectors import REGISTRY

    dets = {}
    for name, d in cfg.detectors.items():
        off = {"enabled": False} if getattr(REGISTRY[d.type], "store_only", False) else {}
        dets[name] = d.model_copy(update={**_auto_tails(d, ext.tail), **off})  # store-only off
    for name, d in ext.detectors.items():  # --kpis-only detectors (e.g. level_shift)
        on = d.enabled if "enabled" in d.model_fields_set else True
        dets[name] = d.model_copy(update={**_auto_tails(d, ext.tail), "enabled": on})
    short = {k: v for k, v in (("early_min", ext.early_min), ("flat_floor", ext.flat_floor))
             if v is not None}
    if short:  # rolling_zscore's short-history scoring (detectors/short_history.py)
        for name, d in list(dets.items()):
            if d.type == "rolling_zscore":
                dets[name] = d.model_copy(update=short)
    if ext.likelihood is not None:  # every voter judged against its own recent scores
        from .detectors.likelihood import LikelihoodConfig

        for name, d in list(dets.items()):
            if (d.enabled and REGISTRY[d.type].votes and d.type != "likelihood"
                    and not REGISTRY[d.type].only_products):   # no product series here: wrapped,
                dets[name] = LikelihoodConfig(                  # product_watch ran as a voter
                    **ext.likelihood.model_dump(), enabled=True, inner=d.model_dump()
                )
    cons = cfg.consensus.model_copy(
        update={
            "suppress": ext.suppress,
            "merge_gap_days": gap,
            "combine": "vote",  # NAB was chosen on the vote rule (issue 9's stouffer: store data)
            # an alarm's time is its onset: NAB credits earliness, and an onset moved back along
            # the flags after the rule held would date the alarm before it was raised
            "onset_back": 0,
            **({} if ext.solo else {"solo_sensitivity": None}),
            **({"min_votes": ext.min_votes} if ext.min_votes is not None else {}),
        }
    )
    return cfg.model_copy(
        update={
            "detectors": dets,
            "consensus": cons,
            "sensitivity": sensitivity_rule(cfg, step_seconds)["sensitivity"],
        }
    )
