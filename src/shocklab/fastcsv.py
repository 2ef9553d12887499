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

The column renderers take numpy arrays and pandas is imported only inside ``write_csv``: the
generator (``simulation.coltable``) renders its numpy columns with them without importing pandas.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .floatfmt import format_g, g_precision

if TYPE_CHECKING:
    import pandas as pd

_NS_PER_DAY = 86_400 * 10**9
_NS_PER_S = 10**9
_DISTINCT_MIN = 4096  # from this many cells, columns with few distinct values render each once
_PLAIN_FORMAT = re.compile(r"%\.\d{1,2}[gGfFeE]")  # float formats whose output needs no quotes


def np_array(values: np.ndarray, type, valid: np.ndarray | None = None):
    """``pa.array(values, type=type)`` for fixed-width numpy values (ints, floats, bools, and
    datetimes viewed as integers), zero-copy through ``Array.from_buffers``: ``pa.array`` on
    a numpy array imports pandas when it is installed (~0.35 s), which the generator avoids.
    ``valid``: False where the value is null."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    n = int(values.shape[0])
    if pa.types.is_boolean(type):
        data = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    else:
        if values.dtype.itemsize * 8 != type.bit_width:
            raise TypeError(f"np_array: {values.dtype} is not {type}")
        data = pa.py_buffer(values)
    if valid is None or bool(valid.all()):
        return pa.Array.from_buffers(type, n, [None, data], null_count=0)
    bitmap = pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))
    return pa.Array.from_buffers(type, n, [bitmap, data], null_count=n - int(valid.sum()))


def text_array(values, type=None):
    """``pa.array(values, type=pa.string())`` for a sequence of ``str`` (``None`` → null)
    without pandas (see ``np_array``); anything else than text raises ``Fallback``. The text
    is joined and encoded once (per value only when it is not ASCII)."""
    import pyarrow as pa

    type = pa.string() if type is None else type
    values = list(values)
    n = len(values)
    valid = None
    if None in values:
        valid = np.fromiter((v is not None for v in values), dtype=bool, count=n)
        values = ["" if v is None else v for v in values]
    try:
        joined = "".join(values)
    except TypeError:
        raise Fallback from None          # not text: pandas' str() rendering
    data = joined.encode("utf-8")
    if len(data) == len(joined):          # ASCII: one byte per character
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    else:
        lengths = np.fromiter((len(v.encode("utf-8")) for v in values), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64 if type == pa.large_string() else np.int32)
    np.cumsum(lengths, out=offsets[1:])
    bitmap, nulls = None, 0
    if valid is not None:
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
        nulls = n - int(valid.sum())
    return pa.Array.from_buffers(
        type, n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls)


class _Compute:
    """The few ``pyarrow.compute`` functions this module uses, with their default options,
    called through ``pyarrow._compute.call_function``: importing ``pyarrow.compute`` builds a
    docstring for every kernel (~30–60 ms), which the generator's start-up avoids."""

    @staticmethod
    def _call(name: str, args: list, options=None):
        from pyarrow._compute import call_function

        return call_function(name, args, options)

    def cast(self, arr, type):
        from pyarrow._compute import CastOptions

        return self._call("cast", [arr], CastOptions.safe(type))

    def match_substring(self, arr, pattern: str):
        from pyarrow._compute import MatchSubstringOptions

        return self._call("match_substring", [arr], MatchSubstringOptions(pattern))

    def match_substring_regex(self, arr, pattern: str):
        from pyarrow._compute import MatchSubstringOptions

        return self._call("match_substring_regex", [arr], MatchSubstringOptions(pattern))

    def replace_substring(self, arr, pattern: str, replacement: str):
        from pyarrow._compute import ReplaceSubstringOptions

        return self._call("replace_substring", [arr],
                          ReplaceSubstringOptions(pattern, replacement))

    def binary_join_element_wise(self, *strings, null_handling: str = "emit_null",
                                 null_replacement: str = ""):
        from pyarrow._compute import JoinOptions

        return self._call("binary_join_element_wise", list(strings),
                          JoinOptions(null_handling, null_replacement))

    def if_else(self, cond, left, right):
        return self._call("if_else", [cond, left, right])

    def is_valid(self, arr):
        return self._call("is_valid", [arr])

    def and_kleene(self, x, y):
        return self._call("and_kleene", [x, y])

    def any(self, arr):
        from pyarrow._compute import ScalarAggregateOptions

        return self._call("any", [arr], ScalarAggregateOptions(skip_nulls=True, min_count=1))

    def dictionary_encode(self, arr):
        from pyarrow._compute import DictionaryEncodeOptions

        return self._call("dictionary_encode", [arr], DictionaryEncodeOptions())

    def take(self, data, indices):
        from pyarrow._compute import TakeOptions

        return self._call("take", [data, indices], TakeOptions(boundscheck=True))


pc = _Compute()


def init_compute() -> None:
    """Register Arrow's compute kernels now, before a second thread uses pyarrow.

    The first import of ``pyarrow._compute`` runs ``arrow::compute::Initialize``, which adds
    ~300 functions to the process-wide function registry one by one; the registry's lookups take
    no lock. A lookup on another thread meanwhile (the Parquet writer's ``unique`` and ``take``
    for a dictionary column's statistics, a kernel of this module) can miss a function that was
    registered long before: ``ArrowKeyError: No function registered with name: unique``, about
    one generator run in a hundred when a writer thread's first ``pc`` call imported it while the
    other wrote Parquet. Call it before other threads use pyarrow, or as the initializer of each
    thread of a pool while the thread that started it uses no pyarrow (``simulation.io``'s
    writers): a thread importing a module another thread is importing waits for the import to
    finish. Importing ``pyarrow.compute`` or pandas registers them too (both import
    ``pyarrow._compute``); this costs only the kernels' registration (~5-10 ms)."""
    import pyarrow._compute  # noqa: F401


def _distinct_int64(values: np.ndarray):
    """The distinct values of an int64 numpy array (numpy, in order of first appearance) and
    each value's index into them (an arrow int32 array), by Arrow's hash: no sort of every
    value."""
    import pyarrow as pa

    enc = pc.dictionary_encode(np_array(np.ascontiguousarray(values, dtype=np.int64), pa.int64()))
    d = enc.dictionary
    if len(d) == 0:
        return np.empty(0, dtype=np.int64), enc.indices
    return np.frombuffer(d.buffers()[1], dtype=np.int64)[d.offset:d.offset + len(d)], enc.indices


def text_scalar(value: str):
    """An arrow string scalar for compute calls (``pa.scalar`` and Python literals passed to
    ``pyarrow.compute`` import pandas, see ``np_array``)."""
    return text_array([value])[0]


def _or_false(mask):
    """``pc.fill_null(mask, False)`` without a Python literal (see ``text_scalar``)."""
    return pc.and_kleene(mask, pc.is_valid(mask))


def bool_numpy(mask) -> np.ndarray:
    """A boolean arrow array as a numpy bool array, null → False (``to_numpy`` on a boolean
    array imports pandas, see ``np_array``)."""
    n, off = len(mask), mask.offset
    bufs = mask.buffers()

    def bits(buf):
        return np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")[off:off + n]

    out = bits(bufs[1]).astype(bool)
    if mask.null_count:
        out &= bits(bufs[0]).astype(bool)
    return out


class Fallback(Exception):
    """A column pyarrow cannot render exactly as pandas does."""


def _float_strings(values: np.ndarray):
    values = np.ascontiguousarray(values, dtype=np.float64)
    if len(values) >= _DISTINCT_MIN:  # each distinct bit pattern rendered once, then gathered
        uniq, idx = _distinct_int64(values.view(np.int64))
        if 2 * len(uniq) <= len(values):
            return pc.take(_each_float_string(uniq.view(np.float64)), idx)
    return _each_float_string(values)


def _each_float_string(values: np.ndarray):
    import pyarrow as pa

    values = np.ascontiguousarray(values, dtype=np.float64)
    arr = np_array(values, pa.float64(), valid=~np.isnan(values))  # NaN -> null -> empty cell
    s = pc.cast(arr, pa.string())
    finite = np.isfinite(values)
    a = np.abs(values)
    # Python switches to an exponent below 1e-4 and from 1e16; arrow at other points
    odd = finite & (((a < 1e-4) & (a > 0)) | (a >= 1e16))
    odd |= bool_numpy(pc.match_substring(s, "e"))
    whole = finite & ~odd & (values == np.round(values))
    if whole.any():
        dot0 = pc.binary_join_element_wise(s, text_scalar(".0"), text_scalar(""))
        s = pc.if_else(np_array(whole, pa.bool_()), dot0, s)
    if odd.any():
        idx = np.flatnonzero(odd)
        out = s.to_pylist()
        for i, v in zip(idx.tolist(), values[idx].tolist(), strict=True):
            out[i] = repr(float(v))
        s = text_array(out)
    return s


def _formatted_float_strings(values: np.ndarray, float_format: str):
    """``float_format % v`` per value, NaN → null (pandas' ``to_csv(float_format=...)``): each
    distinct bit pattern is formatted once (so -0.0 and 0.0 stay apart)."""

    uniq, idx = _distinct_int64(np.ascontiguousarray(values, dtype=np.float64).view(np.int64))
    precision = g_precision(float_format)
    if precision is not None:   # "%.Ng": numpy-vectorised, the same strings as Python's %
        return pc.take(format_g(uniq.view(np.float64), precision), idx)
    strs = [None if v != v else float_format % v for v in uniq.view(np.float64).tolist()]
    if not _PLAIN_FORMAT.fullmatch(float_format):  # a bare %.Ng / %.Nf / %.Ne prints no , " \n
        joined = "".join(s for s in strs if s is not None)
        if any(ch in joined for ch in ',"\r\n'):
            raise Fallback                           # pandas would quote these cells
    return pc.take(text_array(strs), idx)


def _datetime_array(s: pd.Series, mode: str | None = None):
    if getattr(s.dt, "tz", None) is not None:
        raise Fallback
    return datetime_array(s.to_numpy("datetime64[ns]"), mode)


def datetime_mode(values: np.ndarray) -> str:
    """How pandas prints a naive datetime64 column: ``"date"`` when every value is a midnight,
    ``"second"`` when every value is a whole second (else ``Fallback``)."""
    ns = np.asarray(values).astype("datetime64[ns]")
    i8 = ns.view(np.int64)[~np.isnat(ns)]
    if (i8 % _NS_PER_DAY == 0).all():
        return "date"
    if (i8 % _NS_PER_S == 0).all():
        return "second"
    raise Fallback


def datetime_array(values: np.ndarray, mode: str | None = None):
    """A naive datetime64 column rendered as pandas prints it: ``date32`` when every value is a
    midnight, ``timestamp[s]`` when every value is a whole second (else ``Fallback``).
    ``mode``: that choice (``datetime_mode``) made beforehand on the whole column, when
    ``values`` is one part of it."""
    import pyarrow as pa

    ns = np.asarray(values).astype("datetime64[ns]")
    na = np.isnat(ns)
    valid = ~na if na.any() else None
    if (mode or datetime_mode(ns)) == "date":
        days = ns.astype("datetime64[D]").view(np.int64).astype(np.int32)
        return np_array(days, pa.date32(), valid)
    return np_array(ns.astype("datetime64[s]").view(np.int64), pa.timestamp("s"), valid)


def string_array(values: np.ndarray | pd.Series):
    import pyarrow as pa

    if isinstance(values, np.ndarray):   # numpy text (the generator): no pandas import
        if values.dtype.kind == "U":
            values = values.astype(object)
        if values.dtype != object:
            raise Fallback
        arr = text_array(values.tolist())
    else:
        try:
            arr = pa.array(values, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            raise Fallback from None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not _has_special(arr):  # most columns: no cell can need quoting
        return arr
    if len(arr) >= _DISTINCT_MIN:  # a few distinct strings (labels, reasons): each checked once
        enc = pc.dictionary_encode(arr)
        if 2 * len(enc.dictionary) <= len(arr):
            return pc.take(_quoted(enc.dictionary), enc.indices)
    return _quoted(arr)


def _has_special(arr) -> bool:
    """Can a cell of the string array ``arr`` hold a comma, a quote or a line break? (one scan of
    the characters of its slice: a part of a long column shares the whole column's buffer, and
    copying all of it for every part cost the default run's writers ~0.2 s)"""
    import pyarrow as pa

    _, offsets, data = arr.buffers()[:3]
    if data is None:
        return False
    if offsets is not None and (pa.types.is_string(arr.type)
                                or pa.types.is_large_string(arr.type)):
        width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
        at = np.frombuffer(offsets, dtype=width)
        lo, hi = int(at[arr.offset]), int(at[arr.offset + len(arr)])
        data = data.slice(lo, hi - lo)
    raw = data.to_pybytes()
    return any(raw.find(ch) >= 0 for ch in (b",", b'"', b"\r", b"\n"))


def _quoted(arr):
    """``arr`` with the cells quoted that Python's csv module quotes (QUOTE_MINIMAL)."""
    if pc.any(pc.match_substring_regex(arr, r"[\r\n]")).as_py():
        raise Fallback                               # line breaks: pandas' own quoting
    need = _or_false(pc.match_substring_regex(arr, r'[,"]'))
    if pc.any(need).as_py():
        q = text_scalar('"')
        quoted = pc.binary_join_element_wise(q, pc.replace_substring(arr, '"', '""'), q,
                                             text_scalar(""))
        arr = pc.if_else(need, quoted, arr)
    return arr


def _write_joined(fh, table) -> None:
    """Write the rows of ``table`` (cells already rendered or castable to text) joined by hand,
    ``JOIN_ROWS`` at a time: for tables with quoted cells, which arrow's writer will not leave
    unquoted. (One slice's text in memory at a time: joined whole, the customers' actions
    table, ~30 MB of text, took ~150 MB.)"""
    import pyarrow as pa

    for a in range(0, table.num_rows, JOIN_ROWS):
        part = table.slice(a, JOIN_ROWS)
        cols = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string())
                for c in part.columns]
        rows = pc.binary_join_element_wise(*cols, text_scalar(","), null_handling="replace",
                                           null_replacement="")
        lines = pc.binary_join_element_wise(rows, text_scalar("\n"), text_scalar(""))  # + end
        if isinstance(lines, pa.ChunkedArray):
            lines = lines.combine_chunks()
        # no nulls: the character buffer between the first and last offsets is the rows in order
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
        fh.write(memoryview(lines.buffers()[2])[start:end])


def float_column(values: np.ndarray, float_format: str | None = None):
    """A float64 column rendered as pandas prints it (``float_format``: a ``%`` format)."""
    return (_float_strings(values) if float_format is None
            else _formatted_float_strings(values, float_format))


def _column(s: pd.Series, float_format: str | None = None, dt_mode: str | None = None):
    import pandas as pd
    import pyarrow as pa

    dt = s.dtype
    if isinstance(dt, pd.CategoricalDtype):
        cats = dt.categories
        if not (pd.api.types.is_string_dtype(cats.dtype) or cats.dtype == object):
            raise Fallback
        labels = string_array(np.asarray(cats, dtype=object))
        codes = s.cat.codes.to_numpy()
        return pa.DictionaryArray.from_arrays(
            pa.array(codes, mask=codes < 0), labels
        ).dictionary_decode()
    if pd.api.types.is_bool_dtype(dt):
        if dt != np.dtype(bool):
            raise Fallback
        return pa.array(np.where(s.to_numpy(), "True", "False"), type=pa.string())
    if pd.api.types.is_integer_dtype(dt):
        if not isinstance(dt, np.dtype):
            raise Fallback  # nullable ints print <NA> handling differently
        return pa.array(s.to_numpy())
    if pd.api.types.is_float_dtype(dt):
        if not isinstance(dt, np.dtype):
            raise Fallback
        return float_column(s.to_numpy(np.float64), float_format)
    if pd.api.types.is_datetime64_dtype(dt):
        return _datetime_array(s, dt_mode)
    if pd.api.types.is_string_dtype(dt):
        if dt == np.dtype(object) and pd.api.types.infer_dtype(s, skipna=True) not in (
            "string",
            "empty",
        ):
            raise Fallback                            # bytes, dates, mixed objects: pandas' str()
        return string_array(s)
    raise Fallback


def simple_header(cols: list[str]) -> bool:
    """A header arrow's path can write: several distinct names that need no quoting."""
    return len(cols) > 1 and len(set(cols)) == len(cols) and not any(
        c == "" or any(ch in c for ch in ',"\r\n') for c in cols)


def write_rendered(cols: list[str], arrays: list, path: str | Path) -> None:
    """Write columns already rendered by this module's helpers (a simple header, rows > 0)."""
    _write_parts(cols, lambda: [arrays], path)


def _write_parts(cols: list[str], parts, path: str | Path) -> None:
    """Write the header, then each part's rendered columns in order (``parts()``: a fresh
    iterable of column lists on every call). Arrow writes the rows; when a part has cells that
    need quoting (arrow's writer refuses them) the file is started again with every part's rows
    joined by hand."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    header = (",".join(cols) + "\n").encode("utf-8")   # by hand: arrow would quote the names
    options = pcsv.WriteOptions(include_header=False, quoting_style="none", batch_size=1 << 16)
    pool = pa.default_memory_pool()
    for joined in (False, True):
        with open(path, "wb") as fh:
            fh.write(header)
            for arrays in parts():
                table = pa.table(dict(zip(cols, arrays, strict=True)))
                if joined:
                    _write_joined(fh, table)
                else:
                    try:
                        pcsv.write_csv(table, fh, options)
                    except pa.ArrowInvalid:  # quoted cells (commas, quotes): joined by hand
                        break
                arrays = table = None
                pool.release_unused()  # the part's cells, not kept beside the next part's
            else:
                return
        arrays = table = None  # the part arrow refused, freed before the parts are rendered again
        pool.release_unused()


# tables longer than this are rendered and written this many rows at a time: the rendered text of
# one part is in memory at once, not the whole file's (the default run's detections.csv: ~200 MB)
ROWS_PER_PART = 1 << 16
JOIN_ROWS = 1 << 14  # rows joined by hand at a time (``_write_joined``)


def write_csv(df: pd.DataFrame, path: str | Path, float_format: str | None = None) -> None:
    """Write ``df`` like ``df.to_csv(path, index=False, lineterminator="\\n",
    float_format=float_format)``, usually via pyarrow. ``float_format``: a ``%`` format such as
    ``"%.6g"``, applied to every float column (NaN stays an empty cell)."""
    cols = [str(c) for c in df.columns]
    if simple_header(cols) and len(df):
        try:
            if len(df) > ROWS_PER_PART:
                _write_in_parts(df, cols, path, float_format)
                return
            arrays = [_column(df.iloc[:, i], float_format) for i in range(len(cols))]
            write_rendered(cols, arrays, path)
            return
        except (Fallback, ImportError):
            pass
    df.to_csv(path, index=False, lineterminator="\n", float_format=float_format)


def _write_in_parts(df: pd.DataFrame, cols: list[str], path: str | Path,
                    float_format: str | None) -> None:
    """``write_rendered`` of ``df`` in parts of ``ROWS_PER_PART`` rows, the same bytes: every cell
    is rendered on its own, except the choice between dates and date-times of a datetime column,
    made on the whole column first. ``Fallback`` as ``_column`` raises it."""
    import pandas as pd

    modes = {}
    for i in range(len(cols)):
        s = df.iloc[:, i]
        if pd.api.types.is_datetime64_dtype(s.dtype) and getattr(s.dt, "tz", None) is None:
            modes[i] = datetime_mode(s.to_numpy("datetime64[ns]"))

    def parts():
        for a in range(0, len(df), ROWS_PER_PART):
            part = df.iloc[a:a + ROWS_PER_PART]
            yield [_column(part.iloc[:, i], float_format, modes.get(i)) for i in range(len(cols))]

    _write_parts(cols, parts, path)
