"""Read and validate a data directory (docs/ARCHITECTURE.md "Data directory") into a ``DataSet``.

Every problem — a missing file or column, a wrong type, a NaN, a duplicate key, an empty table, a
gap in the traffic dates, a negative or absurd amount, an order outside the manifest's period —
raises InputError with one line naming the file and the column.

Integrity: when ``manifest.json`` lists the files' sha256 and row counts (generate_data.py writes
both), every listed file is hashed and every table counted on load; a file changed or cut after
generation is an InputError naming it. ``verify=False`` (``--no-verify``) turns those mismatches
into warnings counted in ``DataSet.manifest["integrity"]`` (copied into run.json) — never silent.
CSV and Parquet are read alike (``<table>.csv`` or ``<table>.parquet``). ``truth/`` is not read
here: ``evaluation.truth`` reads it into the ``Truth`` object of the evaluation stages.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shocklab.catalogue import NS_YEARS, ORDER_STATUSES
from shocklab.errors import InputError, IntegrityError, first_line, json_kind
from shocklab.hashing import sha256_file
from shocklab.textfile import (
    UNREADABLE,
    control_character,
    csv_options,
    is_utf16,
    ragged_row,
    read_bytes,
    refuse_data_binary,
    refuse_format,
    refuse_implicit_index,
)

from .context import DataSet

# column kinds: id (kept as text), str, date (normalized day), datetime, int, float
SCHEMAS: dict[str, dict[str, str]] = {
    "products": {
        "product_id": "id",
        "name": "str",
        "category": "str",
        "unit_price": "float",
        "unit_cost": "float",
    },
    "customers": {
        "customer_id": "id",
        "signup_date": "date",
        "country": "str",
        "acquisition_channel": "str",
    },
    "website_traffic": {"date": "date", "channel": "str", "country": "str", "sessions": "float"},
    "orders": {
        "order_id": "id",
        "order_ts": "datetime",
        "order_date": "date",
        "customer_id": "id",
        "channel": "str",
        "country": "str",
        "status": "str",
        "items": "int",
        "units": "int",
        "gross_revenue": "float",
        "discount": "float",
        "net_revenue": "float",
    },
    "order_items": {
        "order_id": "id",
        "product_id": "id",
        "quantity": "int",
        "unit_price": "float",
        "discount_pct": "float",
    },
    "marketing_calendar": {"date": "date", "name": "str", "kind": "str", "scope": "str"},
}
REQUIRED = ("orders",)
OPTIONAL = ("products", "customers", "website_traffic", "order_items", "marketing_calendar")
MAY_BE_EMPTY = ("marketing_calendar",)
KEYS = {"products": ["product_id"], "customers": ["customer_id"], "orders": ["order_id"],
        "website_traffic": ["date", "channel", "country"]}
# columns that cannot be negative; any amount above MAX_ABS is a corrupt value (sums would overflow)
NON_NEGATIVE = {"orders": ("items", "units", "gross_revenue", "discount", "net_revenue"),
                "website_traffic": ("sessions",), "order_items": ("quantity", "unit_price"),
                "products": ("unit_price", "unit_cost")}
MAX_ABS = 1e12
# the command line's remedy for data that no longer matches its manifest (the API names its own)
VERIFY_REMEDY = ("regenerate it (if generate_data.py is writing it now, wait for it and run "
                 "again), or pass --no-verify to analyse it anyway")


def in_ns_range(dates: pd.Series) -> pd.Series:
    """Where ``dates`` (datetimes, any unit) fall in ``NS_YEARS``; NaT is False."""
    return dates.dt.year.between(*NS_YEARS)


def _bad_date(where: str, col: str, s: pd.Series, exc: Exception) -> str:
    """One line naming the first value of ``s`` that is not a date, and its data row."""
    conv = pd.to_datetime(s.astype(str), format="ISO8601", errors="coerce")
    bad = (conv.isna() | ~in_ns_range(conv)).to_numpy()
    if bad.any():   # out of the nanosecond range too (it said "Casting from date32[day] to …")
        row = int(np.flatnonzero(bad)[0])
        what = ("is not a date" if pd.isna(conv.iloc[row])
                else "is out of range (dates between {} and {})".format(*NS_YEARS))
        return f"{where}: column {col!r} {what}: {str(s.iloc[row])!r} (data row {row + 1})"
    return f"{where}: column {col!r} is not a date ({first_line(exc)})"


def find_table(base: Path, name: str, listed: Collection[str] = ()) -> Path | None:
    """``name``.csv or ``name``.parquet under ``base``; with ``listed`` (manifest.json's files,
    relative to ``base``) the one it lists first: an unlisted orders.csv put beside a Parquet
    data set's orders.parquet was read instead of it, and reported verified."""
    found = [p for p in (base / f"{name}.csv", base / f"{name}.parquet") if p.is_file()]
    return next((p for p in found if p.name in listed), found[0] if found else None)


def read_table(path: Path, schema: dict[str, str] | None = None,
               csv: dict[str, str] | None = None) -> pd.DataFrame:
    """Read one CSV/Parquet file; id-like columns are kept as text. ``csv``: a user's file's
    ``textfile.csv_options`` (``--kpis``: its header line's separator, ';' or tabs too); a data
    directory's tables are comma-separated (UTF-16 ones sniffed; binary ones refused)."""
    ids = {c: str for c, k in (schema or {}).items() if k in ("id", "str")}
    sniff = csv is not None
    if not sniff and path.suffix != ".parquet":
        refuse_data_binary(path)
    sep = ","
    try:
        if path.suffix == ".parquet":
            df = pd.read_parquet(path)
        elif sniff or is_utf16(path):   # a user's export: Excel's "Unicode text", ';' or tabs
            opts = csv or csv_options(path)
            sep = opts["sep"]
            df = _read_csv(path, ids, opts)
        else:
            df = _read_csv(path, ids, None)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty (no header)") from None
    except Exception as exc:   # e.g. a .gz cut short, a .zst without zstd; and any of pyarrow's
        # own (ArrowNotImplementedError is a RuntimeError, ArrowCapacityError none of those: exit 3)
        if not isinstance(exc, (*UNREADABLE, pd.errors.ParserError)) and not _from_arrow(exc):
            raise
        raise InputError(f"{path}: " + (ragged_row(exc) or "cannot read (" + (
            first_line(exc) or type(exc).__name__) + ")")) from None
    if path.suffix != ".parquet":   # a Parquet file may keep an index of its own
        refuse_implicit_index(df, path, sep if not sniff else None)
    return df


def _read_csv(path: Path, ids: dict, opts: dict[str, str] | None) -> pd.DataFrame:
    """pandas' CSV reader: the pyarrow parser (several times faster on large files) for a plain
    UTF-8 comma-separated file, else the C parser with ``opts`` (encoding, sep)."""
    if opts is not None and opts != {"encoding": "utf-8-sig", "sep": ","}:
        return pd.read_csv(path, dtype=ids, **opts)
    try:
        return pd.read_csv(path, dtype=ids, engine="pyarrow")
    except Exception as exc:
        # also any of pyarrow's own: its multi-threaded type inference can lose a chunk while a
        # column's type is widened (a date column with one impossible date: "a chunk failed
        # converting for an unknown reason", an ArrowException that is no ValueError), now and
        # then, under load; it was an internal error (exit 3). The C parser reads the same frame.
        if not isinstance(exc, (ValueError, TypeError, ImportError, pd.errors.ParserError)) \
                and not _from_arrow(exc):
            raise
        return pd.read_csv(path, dtype=ids)


def _from_arrow(exc: Exception) -> bool:
    """Is ``exc`` one of pyarrow's own errors (some are no ValueError or OSError)?"""
    return type(exc).__module__.startswith("pyarrow")


def coerce(
    df: pd.DataFrame, schema: dict[str, str], where: str, allow_nan: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Check columns exist, have no NaN and convert to their kind; raise InputError otherwise."""
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise InputError(f"{where}: missing column {missing[0]!r} (expected {', '.join(schema)})")
    out = df.copy(deep=False)  # whole-column assignment replaces (pandas >= 2): df is untouched
    for col, kind in schema.items():
        s = out[col]
        if s.isna().any() and col not in allow_nan:
            row = int(np.flatnonzero(s.isna().to_numpy())[0])
            raise InputError(f"{where}: column {col!r} has an empty/NaN value (data row {row + 1})")
        if kind in ("id", "str"):
            out[col] = s.astype(str)
        elif kind in ("date", "datetime"):
            try:
                conv = (
                    (_arrow_dates(s) if kind == "date" else None)
                    if not pd.api.types.is_datetime64_any_dtype(s)
                    else s
                )
                if conv is None:
                    conv = pd.to_datetime(s, format="ISO8601")
            except (ValueError, TypeError) as exc:
                raise InputError(_bad_date(where, col, s, exc)) from None
            if getattr(conv.dt, "tz", None) is not None:
                conv = conv.dt.tz_localize(None)
            try:   # year 9999 in order_ts: OutOfBoundsDatetime escaped as an internal error
                out[col] = (conv.dt.normalize() if kind == "date" else conv).astype("M8[ns]")
            except (ValueError, OverflowError) as exc:
                raise InputError(_bad_date(where, col, s, exc)) from None
        elif isinstance(s.dtype, np.dtype) and s.dtype.kind in "iu":  # read as integers already
            out[col] = s.astype("int64" if kind == "int" else float)
        elif isinstance(s.dtype, np.dtype) and s.dtype.kind == "f" and kind == "float":
            if np.isinf(s.to_numpy()).any():
                raise InputError(f"{where}: column {col!r} has an infinite value")
            out[col] = s.astype(float)
        else:
            conv = pd.to_numeric(s, errors="coerce")
            bad = conv.isna() & s.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"{where}: column {col!r} must be numeric, got {s.iloc[row]!r} (data row "
                    f"{row + 1})"
                )
            if not np.isfinite(conv.dropna().to_numpy(dtype=float)).all():
                raise InputError(f"{where}: column {col!r} has an infinite value")
            if kind == "int":
                if (conv.dropna() % 1 != 0).any():
                    raise InputError(f"{where}: column {col!r} must hold whole numbers")
                conv = conv.astype("int64") if not conv.isna().any() else conv
            out[col] = conv.astype(float) if kind == "float" else conv
    return out


def _arrow_dates(s: pd.Series) -> pd.Series | None:
    """A column of ``datetime.date`` objects (what pandas' pyarrow CSV reader makes of a date-only
    column) as datetime64[ns] midnights, converted by Arrow in one pass; None when it holds
    anything else (then ``pd.to_datetime`` decides, with its own errors)."""
    if s.dtype != object or len(s) == 0 or type(s.iloc[0]) is not dt.date:
        return None
    import pyarrow as pa

    try:
        days = pa.array(s.to_numpy(), type=pa.date32(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    return pd.Series(days.cast(pa.timestamp("ns")).to_numpy(zero_copy_only=False),
                     index=s.index, name=s.name)


def check_unique(df: pd.DataFrame, keys: list[str], where: str) -> None:
    if len(keys) == 1 and _strictly_increasing(df[keys[0]]):
        return  # e.g. generated ids in file order: no hashing of every id needed
    dup = df.duplicated(keys, keep=False)
    if dup.any():
        first = df.loc[dup, keys].iloc[0].tolist()   # shown as written, not as Python reprs
        shown = ", ".join(v.date().isoformat() if isinstance(v, pd.Timestamp) and v == v.normalize()
                          else str(v) for v in first)
        raise InputError(f"{where}: duplicate key ({', '.join(keys)}) = ({shown})")


def _strictly_increasing(col: pd.Series) -> bool:
    """Is an Arrow-backed string column without nulls strictly increasing (so without
    duplicates)? One comparison per row in Arrow; False when it cannot tell cheaply."""
    if not isinstance(col.array, pd.arrays.ArrowStringArray) or len(col) < 2:
        return False
    import pyarrow as pa
    import pyarrow.compute as pc

    a = pa.array(col.array)
    if a.null_count:
        return False
    return bool(pc.all(pc.greater(a[1:], a[:-1])).as_py())


def check_no_gap(dates: pd.Series, where: str, col: str = "date") -> None:
    """Every day between the first and the last must be present."""
    days = pd.DatetimeIndex(dates.unique()).sort_values()
    if len(days) < 2:
        return
    full = pd.date_range(days[0], days[-1], freq="D")
    if len(full) != len(days):
        missing = full.difference(days)
        raise InputError(f"{where}: column {col!r} has a gap: {missing[0].date()} is missing "
                         f"({len(missing)} day{'s' if len(missing) > 1 else ''} in all)")


def validate_tables(
    tables: dict[str, pd.DataFrame], where: dict[str, str]
) -> dict[str, pd.DataFrame]:
    """Validate observable tables (shared with the transactions loader)."""
    out = {}
    for name, df in tables.items():
        loc = where.get(name, name)
        if df.empty and name not in MAY_BE_EMPTY:
            raise InputError(f"{loc}: table is empty")
        schema = SCHEMAS.get(name)
        df = coerce(df, schema, loc) if schema else df
        if name in KEYS:
            check_unique(df, KEYS[name], loc)
        out[name] = df
    if "orders" in out:
        bad = ~out["orders"]["status"].isin(ORDER_STATUSES)
        if bad.any():
            raise InputError(
                f"{where.get('orders', 'orders')}: column 'status' has "
                f"{out['orders']['status'][bad].iloc[0]!r} "
                f"(allowed: {', '.join(ORDER_STATUSES)})"
            )
    if "website_traffic" in out:
        check_no_gap(
            out["website_traffic"]["date"], where.get("website_traffic", "website_traffic")
        )
    check_plausible(out, where)
    return out


def check_plausible(tables: dict[str, pd.DataFrame], where: dict[str, str]) -> None:
    """Negative counts or amounts, and amounts beyond ``MAX_ABS``, are errors (one line, first
    row)."""
    for name, cols in NON_NEGATIVE.items():
        df = tables.get(name)
        if df is None:
            continue
        loc = where.get(name, name)
        for col in cols:
            if col not in df.columns:
                continue
            v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            for bad, what, why in (
                (v < 0, "negative", ""),
                (np.abs(v) > MAX_ABS, "implausibly large", f"|x| > {MAX_ABS:.0e}; "),
            ):
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    n = int(bad.sum())
                    raise InputError(
                        f"{loc}: column {col!r} has {n} {what} value{'s' if n > 1 else ''} "
                        f"({why}first: {float(v[row])!r} in data row {row + 1})"
                    )


def check_period(
    tables: dict[str, pd.DataFrame], where: dict[str, str], manifest: dict[str, Any]
) -> None:
    """Orders and traffic must fall inside the manifest's period (a stray date would stretch every
    KPI table to it)."""
    period = manifest.get("period") or manifest.get("date_range")
    if not isinstance(period, dict) or "start" not in period or "end" not in period:
        return
    try:
        start, end = pd.Timestamp(period["start"]), pd.Timestamp(period["end"])
    except (ValueError, TypeError):
        raise InputError(f"manifest.json: period {period!r} is not a pair of dates") from None
    for name, col in (("orders", "order_date"), ("website_traffic", "date")):
        df = tables.get(name)
        if df is None or df.empty:
            continue
        d = df[col]
        bad = ((d < start) | (d > end)).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(
                f"{where.get(name, name)}: {int(bad.sum())} row(s) dated outside the manifest "
                "period "
                f"{start.date()} … {end.date()} (first: {d.iloc[row].date()} in data row {row + 1})"
            )


def verify_manifest(base: Path, manifest: dict[str, Any], raw: dict[str, pd.DataFrame],
                    verify: bool = True, where: dict[str, str] | None = None) -> dict[str, Any]:
    """Compare files and row counts with ``manifest.json``; a table file read (``where``) that a
    manifest with hashes does not list is a mismatch too. A mismatch raises InputError (or, with
    ``verify=False``, is logged and counted). Returns the integrity report."""
    import logging

    log = logging.getLogger("shocklab.loading")
    report: dict[str, Any] = {"verified": False, "checked_files": 0, "mismatches": []}
    files = manifest.get("files")
    counts = manifest.get("row_counts")
    if not isinstance(files, dict) and not isinstance(counts, dict):
        report["note"] = "manifest.json lists no file hashes or row counts: nothing to verify"
        return report
    problems: list[str] = []
    for rel, digest in sorted((files or {}).items()):
        p = base / rel
        if not p.is_file():
            problems.append(f"{p}: listed in manifest.json but missing")
            report.setdefault("missing", []).append(rel)   # part of the run id (run_analysis)
            continue
        report["checked_files"] += 1
        actual = sha256_file(p)
        if actual != digest:
            report.setdefault("actual_sha256", {})[rel] = actual
            problems.append(
                f"{p}: sha256 does not match manifest.json (the file changed after generation)"
            )
    if isinstance(files, dict) and files:
        for p in sorted((where or {}).values()):
            if Path(p).name not in files:
                problems.append(f"{p}: not listed in manifest.json (added after generation?)")
    for name, n in sorted((counts or {}).items()):
        if name in raw and isinstance(n, int) and len(raw[name]) != n:
            p = (where or {}).get(name) or find_table(base, name)
            problems.append(
                f"{p}: {len(raw[name]):,} data rows, manifest.json says {n:,} (truncated or "
                "edited?)"
            )
    if problems and verify:
        detail = problems[0] + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        raise IntegrityError(
            f"{detail}; {VERIFY_REMEDY}", detail
        )
    for msg in problems:
        log.warning("integrity: %s (--no-verify: analysed anyway)", msg)
    report["mismatches"] = problems
    report["verified"] = verify and not problems
    return report


def read_json(path: Path) -> Any:
    """A JSON file (a .json.gz decompressed) in UTF-8, with or without a byte-order mark, or in
    UTF-16 / UTF-32 (``json.detect_encoding``, as ``json.loads`` of bytes decides; Windows tools
    write both: a mark was "Unexpected UTF-8 BOM", UTF-16 "'utf-8' codec can't decode byte
    0xff", where CSV and YAML files so written are read)."""
    data = b""
    try:
        data = read_bytes(path)
        text = data.decode(json.detect_encoding(data))   # utf-8-sig drops the mark
        if not text.strip():   # json's "Expecting value: line 1 column 1 (char 0)"
            raise InputError(f"{path}: file is empty")
        return json.loads(text)
    except (*UNREADABLE, RecursionError) as exc:
        # ValueError beyond JSONDecodeError (and UnicodeDecodeError): an integer of more than
        # 4300 digits; RecursionError: arrays nested 10^5 deep (both were exit 3)
        refuse_format(path, data[:16], "JSON")   # a gzipped file named .json: say what it is
        first = first_line(exc, 160) or "nested too deep"
        raise InputError(f"{path}: cannot read JSON ({type(exc).__name__}: {first})") from None


def _arrow_system_pool() -> Any:
    """pyarrow allocating with malloc (not its mimalloc/jemalloc pool, which keeps the freed
    buffers of the CSV/Parquet readers: ~200 MB after loading the default world), so that
    ``release_unused`` (malloc_trim) can hand the readers' temporaries back after loading.
    Process-wide; the bytes read are the same. None without pyarrow."""
    try:
        import pyarrow as pa
    except ImportError:
        return None
    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    return pa


def read_ahead_imports(path: str | Path) -> None:
    """Import what ``load_data_dir(path)`` imports on use (the readers pandas loads lazily), so
    that a thread loading the data directory imports nothing while the caller imports other
    modules (two threads importing the same modules at once can deadlock)."""
    import importlib

    names = ["pyarrow", "pyarrow.csv", "pyarrow.compute", "pyarrow.pandas_compat",
             "pyarrow.vendored.version", "pandas.io.parsers.arrow_parser_wrapper",
             "pandas.core.arrays.arrow._arrow_utils"]
    if Path(path).is_dir() and any(Path(path).glob("*.parquet")):
        names += ["pyarrow.parquet", "pyarrow.dataset", "pyarrow.substrait",
                  "pandas.core.arrays.arrow.extension_types"]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def load_data_dir(path: str | Path, verify: bool = True) -> DataSet:
    """Read a data directory written by generate_data.py (or laid out the same way).

    verify : False turns hash / row-count mismatches with manifest.json into counted warnings.
    """
    pa = _arrow_system_pool()
    try:
        return _load_data_dir(path, verify)
    finally:
        if pa is not None:  # the readers' freed buffers back to the OS (a forked worker shares
            pa.default_memory_pool().release_unused()  # what stays)


def _load_data_dir(path: str | Path, verify: bool) -> DataSet:
    base = Path(path)
    if not base.exists():
        raise InputError(f"{base}: data directory not found (generate one with generate_data.py)")
    if not base.is_dir():
        raise InputError(f"{base}: not a directory")
    manifest = read_json(base / "manifest.json") if (base / "manifest.json").is_file() else {}
    if not isinstance(manifest, dict):   # was read as no manifest: nothing verified, exit 0
        raise InputError(f"{base / 'manifest.json'}: expected a JSON object (generate_data.py's "
                         f"manifest), got {json_kind(manifest)}: regenerate the data set")
    for key in ("files", "row_counts"):
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            raise InputError(f"{base / 'manifest.json'}: {key!r} must be an object (name: "
                             f"value), got {json_kind(manifest[key])}: regenerate the data set")
    for key in ("scenario", "scenario_name"):   # it heads insights.md: a newline wrote a heading
        if isinstance(name := manifest.get(key), str) and (why := control_character(name)):
            raise InputError(f"{base / 'manifest.json'}: {key}: {name!r} {why}: regenerate the "
                             "data set (generate_data.py refuses such a name)")
    files = manifest.get("files")
    listed = files if isinstance(files, dict) else {}
    raw: dict[str, pd.DataFrame] = {}
    where: dict[str, str] = {}
    for name in (*REQUIRED, *OPTIONAL):
        p = find_table(base, name, listed)
        if p is None:
            if name in REQUIRED:
                raise InputError(f"{base}: missing file {name}.csv (or {name}.parquet)")
            continue
        raw[name] = read_table(p, SCHEMAS[name])
        where[name] = str(p)
    integrity = verify_manifest(base, manifest, raw, verify, where)
    tables = validate_tables(raw, where)
    check_period(tables, where, manifest)
    manifest = {**manifest, "integrity": integrity}
    return DataSet(path=base, tables=tables, manifest=manifest, source="simulated")
