"""Fast CSV writing with pyarrow, byte-identical to ``df.to_csv(path, index=False,
lineterminator="\\n")``.

pandas formats every cell in Python-level loops (~1.5 s for a one-year world's 400 k rows); the
pyarrow writer is C++ and several times faster. The two differ in a few renderings, which this
module reconciles column by column so the files stay the same bytes:
- floats: arrow prints ``1`` for 1.0 (pandas ``1.0``) and plain decimals below 1e-4 (pandas uses
  an exponent); whole numbers get ``.0`` appended and the rare tiny/huge values are formatted by
  Python's ``repr`` (which is what pandas prints);
- datetimes: pandas prints a date-only column as ``YYYY-MM-DD`` and a column with times as
  ``YYYY-MM-DD HH:MM:SS``; they are written as arrow ``date32`` / ``timestamp[s]``, which render
  the same way;
- booleans: pandas prints ``True``/``False``;
- strings with a comma or a quote are quoted as Python's csv module does (arrow's writer refuses
  them unquoted, so such tables are joined row by row in arrow compute).
Anything else — sub-second timestamps, time zones, strings with line breaks, mixed object
columns, a one-column table — goes to pandas' own writer, so the output never changes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

_NS_PER_DAY = 86_400 * 10**9
_NS_PER_S = 10**9
_DISTINCT_MIN = 4096  # from this many cells, columns with few distinct values render each once
_PLAIN_FORMAT = re.compile(r"%\.\d{1,2}[gGfFeE]")  # float formats whose output needs no quotes


class _Fallback(Exception):
    """A column pyarrow cannot render exactly as pandas does."""


def _float_strings(values: np.ndarray):
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) >= _DISTINCT_MIN:  # each distinct bit pattern rendered once, then gathered
        enc = pa.array(values.view(np.int64)).dictionary_encode()
        if 2 * len(enc.dictionary) <= len(values):
            return _each_float_string(enc.dictionary.to_numpy().view(np.float64)).take(enc.indices)
    return _each_float_string(values)


def _each_float_string(values: np.ndarray):
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(values, from_pandas=True)  # NaN -> null -> empty cell, as pandas' na_rep=""
    s = pc.cast(arr, pa.string())
    finite = np.isfinite(values)
    a = np.abs(values)
    # Python switches to an exponent below 1e-4 and from 1e16; arrow at other points
    odd = finite & (((a < 1e-4) & (a > 0)) | (a >= 1e16))
    odd |= pc.fill_null(pc.match_substring(s, "e"), False).to_numpy(zero_copy_only=False)
    whole = finite & ~odd & (values == np.round(values))
    if whole.any():
        s = pc.if_else(pa.array(whole), pc.binary_join_element_wise(s, ".0", ""), s)
    if odd.any():
        idx = np.flatnonzero(odd)
        out = np.array(s.to_pylist(), dtype=object)
        out[idx] = [repr(float(v)) for v in values[idx]]
        s = pa.array(out, type=pa.string())
    return s


def _formatted_float_strings(values: np.ndarray, float_format: str):
    """``float_format % v`` per value, NaN → null (pandas' ``to_csv(float_format=...)``): each
    distinct bit pattern is formatted once (so -0.0 and 0.0 stay apart)."""
    import pyarrow as pa

    enc = pa.array(np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
                   ).dictionary_encode()                # hashed: no sort of every value
    uniq = enc.dictionary.to_numpy(zero_copy_only=False)
    strs = [None if v != v else float_format % v for v in uniq.view(np.float64).tolist()]
    if not _PLAIN_FORMAT.fullmatch(float_format):  # a bare %.Ng / %.Nf / %.Ne prints no , " \n
        joined = "".join(s for s in strs if s is not None)
        if any(ch in joined for ch in ',"\r\n'):
            raise _Fallback                           # pandas would quote these cells
    return pa.array(strs, type=pa.string()).take(enc.indices)


def _datetime_array(s: pd.Series):
    import pyarrow as pa

    if getattr(s.dt, "tz", None) is not None:
        raise _Fallback
    ns = s.to_numpy("datetime64[ns]")
    na = np.isnat(ns)
    i8 = ns.view(np.int64)[~na]
    if (i8 % _NS_PER_DAY == 0).all():
        return pa.array(ns.astype("datetime64[D]"), mask=na if na.any() else None)
    if (i8 % _NS_PER_S == 0).all():
        return pa.array(ns.astype("datetime64[s]"), mask=na if na.any() else None)
    raise _Fallback


def _string_array(values: np.ndarray | pd.Series):
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        arr = pa.array(values, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise _Fallback from None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not _has_special(arr):  # most columns: no cell can need quoting
        return arr
    if len(arr) >= _DISTINCT_MIN:  # a few distinct strings (labels, reasons): each checked once
        enc = pc.dictionary_encode(arr)
        if 2 * len(enc.dictionary) <= len(arr):
            return _quoted(enc.dictionary).take(enc.indices)
    return _quoted(arr)


def _has_special(arr) -> bool:
    """Can a cell of the string array ``arr`` hold a comma, a quote or a line break? (one scan of
    its character buffer; a hit outside the array's slice only costs the exact check)"""
    data = arr.buffers()[2]
    if data is None:
        return False
    raw = data.to_pybytes()
    return any(raw.find(ch) >= 0 for ch in (b",", b'"', b"\r", b"\n"))


def _quoted(arr):
    """``arr`` with the cells quoted that Python's csv module quotes (QUOTE_MINIMAL)."""
    import pyarrow.compute as pc

    if pc.any(pc.match_substring_regex(arr, r"[\r\n]")).as_py():
        raise _Fallback                               # line breaks: pandas' own quoting
    need = pc.fill_null(pc.match_substring_regex(arr, r'[,"]'), False)
    if pc.any(need).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
        arr = pc.if_else(need, quoted, arr)
    return arr


def _joined_rows(table) -> bytes:
    """The rows of ``table`` (cells already rendered or castable to text) joined by hand: for
    tables with quoted cells, which arrow's writer will not leave unquoted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in table.columns]
    rows = pc.binary_join_element_wise(*cols, ",", null_handling="replace", null_replacement="")
    lines = pc.binary_join_element_wise(rows, "\n", "")  # each row with its line end
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    # no nulls: the character buffer between the first and last offsets is the rows in order
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2].to_pybytes()[start:end]


def _column(s: pd.Series, float_format: str | None = None):
    import pyarrow as pa

    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        cats = dt.categories
        if not (pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object):
            raise _Fallback
        labels = _string_array(np.asarray(cats, dtype=object))
        codes = s.cat.codes.to_numpy()
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=codes < 0), labels
        ).dictionary_decode()
    if pd.api.types.is_bool_dtype(dt):
        if dt != np.dtype(bool):
            raise _Fallback
        return pa.array(np.where(s.to_numpy(), "True", "False"), type=pa.string())
    if pd.api.types.is_integer_dtype(dt):
        if not isinstance(dt, np.dtype):
            raise _Fallback  # nullable ints print <NA> handling differently
        return pa.array(s.to_numpy())
    if pd.api.types.is_float_dtype(dt):
        if not isinstance(dt, np.dtype):
            raise _Fallback
        values = s.to_numpy(np.float64)
        return (_float_strings(values) if float_format is None
                else _formatted_float_strings(values, float_format))
    if pd.api.types.is_datetime64_dtype(dt):
        return _datetime_array(s)
    if pd.api.types.is_string_dtype(dt):
        if dt == np.dtype(object) and pd.api.types.infer_dtype(s, skipna=True) not in (
            "string",
            "empty",
        ):
            raise _Fallback                            # bytes, dates, mixed objects: pandas' str()
        return _string_array(s)
    raise _Fallback


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str | None = None) -> None:
    """Write ``df`` like ``df.to_csv(path, index=False, lineterminator="\\n",
    float_format=float_format)``, usually via pyarrow. ``float_format``: a ``%`` format such as
    ``"%.6g"``, applied to every float column (NaN stays an empty cell)."""
    cols = [str(c) for c in df.columns]
    simple_header = len(cols) > 1 and len(set(cols)) == len(cols) and not any(
        c == "" or any(ch in c for ch in ',"\r\n') for c in cols)
    if simple_header and len(df):
        try:
            import pyarrow as pa
            import pyarrow.csv as pcsv

            table = pa.table(
                {c: _column(df.iloc[:, i], float_format) for i, c in enumerate(cols)}
            )
            header = (",".join(cols) + "\n").encode("utf-8")
            try:
                with open(path, "wb") as fh:   # header by hand: arrow would quote the names
                    fh.write(header)
                    pcsv.write_csv(
                        table,
                        fh,
                        pcsv.WriteOptions(
                            include_header=False, quoting_style="none", batch_size=1 << 16
                        ),
                    )
            except pa.ArrowInvalid:  # quoted cells (commas, quotes): the rows joined by hand
                with open(path, "wb") as fh:
                    fh.write(header + _joined_rows(table))
            return
        except (_Fallback, ImportError):
            pass
    df.to_csv(path, index=False, lineterminator="\n", float_format=float_format)
