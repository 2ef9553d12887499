"""Column tables without pandas: what the generator builds and writes.

Importing pandas costs ~0.35 s, as much as simulating a one-year world, so the generation path
(``generate_data.py``, ``simulation.api.generate``) never imports it: every table of the data
directory is a ``ColTable`` of typed numpy columns, written by pyarrow directly
(``write_parquet``, ``write_csv``) with the bytes ``DataFrame.to_parquet(engine="pyarrow",
compression="zstd", index=False)`` / ``shocklab.fastcsv.write_csv`` give for the DataFrame
``to_pandas()`` returns (the Parquet footer carries the same ``pandas`` schema metadata, with the
installed pandas version; tests/simulation/test_coltable.py compares both paths byte for byte).

Column kinds mirror the pandas dtypes the generator used to build:
``int`` (int64), ``float`` (float64), ``str`` (text; pandas' ``str`` dtype), ``cat`` (integer
codes into ``labels``; a pandas Categorical), ``time`` (numpy datetime64 of one unit). A ``str``
column may be stored coded like a ``cat`` one (``labels`` given): a long column of few distinct
values (dates, slice names) is encoded once per value.

Arrow arrays are built from numpy buffers (``shocklab.fastcsv.np_array`` / ``text_array``), never
with ``pa.array``, which imports pandas whenever it is installed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("int", "float", "str", "cat", "time")


@dataclass(frozen=True)
class Col:
    kind: str
    values: np.ndarray              # int64 / float64 / str / codes / datetime64
    labels: tuple[str, ...] = ()    # kind "cat", or a coded "str" column

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def coded(self) -> bool:
        return self.kind == "cat" or (self.kind == "str" and self.values.dtype != object)

    def take(self, idx: np.ndarray) -> Col:
        return Col(self.kind, self.values[idx], self.labels)

    def decoded(self) -> np.ndarray:
        """The values as pandas would hold them (labels for a coded column)."""
        if self.coded:
            return np.asarray(self.labels, dtype=object)[self.values]
        return self.values


def ints(values: Any) -> Col:
    return Col("int", np.asarray(values, dtype=np.int64))


def floats(values: Any) -> Col:
    return Col("float", np.asarray(values, dtype=np.float64))


def strs(values: Any) -> Col:
    return Col("str", np.asarray(values, dtype=object))


def coded_strs(codes: np.ndarray, labels: Sequence[str]) -> Col:
    """A text column given as codes into ``labels``."""
    return Col("str", np.asarray(codes, dtype=np.int64), tuple(labels))


def cat(codes: np.ndarray, labels: Sequence[str]) -> Col:
    return Col("cat", np.asarray(codes, dtype=np.int64), tuple(labels))


def times(values: np.ndarray) -> Col:
    v = np.asarray(values)
    if v.dtype.kind != "M":
        raise TypeError("times: a datetime64 array")
    return Col("time", v)


def full(n: int, value: str | float) -> Col:
    """A constant column (text or float), as pandas broadcasts a scalar."""
    if isinstance(value, str):
        return coded_strs(np.zeros(n, dtype=np.int64), (value,))
    return floats(np.full(n, value, dtype=np.float64))


class ColTable:
    """An ordered mapping column name → ``Col`` of one length."""

    def __init__(self, cols: dict[str, Col]) -> None:
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self.cols = dict(cols)

    @property
    def columns(self) -> list[str]:
        return list(self.cols)

    def __len__(self) -> int:
        return len(next(iter(self.cols.values()))) if self.cols else 0

    @property
    def size(self) -> int:
        """Cells (rows × columns), like ``DataFrame.size``."""
        return len(self) * len(self.cols)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name].decoded()

    def take(self, idx: np.ndarray) -> ColTable:
        return ColTable({k: c.take(idx) for k, c in self.cols.items()})

    def sort_key(self, name: str) -> np.ndarray:
        """Integer keys ordered as the column's values (text by code point, as pandas sorts)."""
        c = self.cols[name]
        if not c.coded:
            return np.unique(c.values, return_inverse=True)[1].reshape(-1)
        rank = np.unique(np.asarray(c.labels, dtype=object), return_inverse=True)[1].reshape(-1)
        return rank[c.values]

    @staticmethod
    def concat(parts: Sequence[ColTable]) -> ColTable:
        """Row-wise concatenation (same columns and kinds; ``cat`` columns share labels)."""
        out = {}
        for k, c in parts[0].cols.items():
            cols = [p.cols[k] for p in parts]
            if c.kind == "str" and any(x.coded for x in cols):
                # text: codes into the concatenated labels (a plain part adds its values)
                codes, labels = [], []
                for x in cols:
                    lab = x.labels if x.coded else tuple(x.values.tolist())
                    idx = x.values if x.coded else np.arange(len(x), dtype=np.int64)
                    codes.append(idx + len(labels))
                    labels.extend(lab)
                out[k] = coded_strs(np.concatenate(codes), labels)
            else:
                out[k] = Col(c.kind, np.concatenate([x.values for x in cols]), c.labels)
        return ColTable(out)

    def to_pandas(self):
        """The DataFrame the generator used to build (pandas is imported here, off the
        generation path)."""
        import pandas as pd

        data = {}
        for k, c in self.cols.items():
            if c.kind == "cat":
                data[k] = pd.Categorical.from_codes(c.values, categories=list(c.labels))
            elif c.kind == "str" and len(c) == 0:
                data[k] = pd.Series([], dtype=object)
            elif c.kind == "str":
                data[k] = c.decoded().tolist()
            else:
                data[k] = c.values
        return pd.DataFrame(data, columns=list(self.cols))


# ---------------------------------------------------------------------------------------------
# Parquet


@functools.cache
def _pandas_version() -> str:
    """The installed pandas' version, without importing pandas (~0.35 s) or importlib.metadata
    (~10-40 ms, and a walk of sys.path): a meson-built pandas writes it to
    ``pandas/_version_meson.py``; anything else asks importlib.metadata."""
    import sys

    pd = sys.modules.get("pandas")
    if pd is not None:
        return pd.__version__
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("pandas")
        text = (Path(spec.origin).parent / "_version_meson.py").read_text(encoding="utf-8")
        return re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M).group(1)
    except (AttributeError, OSError, TypeError, ValueError):
        from importlib.metadata import version

        return version("pandas")


def _code_type(n_labels: int):
    """pandas' codes dtype for a Categorical of ``n_labels`` categories."""
    import pyarrow as pa

    for bound, np_type, pa_type in ((127, "int8", pa.int8()), (32767, "int16", pa.int16()),
                                    (2**31 - 1, "int32", pa.int32())):
        if n_labels < bound:
            return np_type, pa_type
    return "int64", pa.int64()


def _text(c: Col, type=None):
    """The arrow text array of a ``str`` column (coded: each label encoded once)."""
    import pyarrow as pa

    from shocklab.fastcsv import text_array

    if not c.coded:
        return text_array(c.values.tolist(), type)
    from shocklab.fastcsv import pc

    labels = text_array(list(c.labels), type)
    return pc.take(labels, np_array(c.values, pa.int64()))


def _arrow_column(name: str, c: Col, empty: bool) -> tuple[Any, dict[str, Any]]:
    """(arrow array, pandas metadata entry) as ``pa.Table.from_pandas`` makes them."""
    import pyarrow as pa

    meta: dict[str, Any] = {"name": name, "field_name": name}
    if empty and c.kind == "str":
        arr = pa.nulls(0)
        meta.update(pandas_type="empty", numpy_type="object", metadata=None)
    elif c.kind == "int":
        arr = np_array(c.values, pa.int64())
        meta.update(pandas_type="int64", numpy_type="int64", metadata=None)
    elif c.kind == "float":
        arr = np_array(c.values, pa.float64(), valid=~np.isnan(c.values))   # NaN -> null
        meta.update(pandas_type="float64", numpy_type="float64", metadata=None)
    elif c.kind == "str":
        arr = _text(c, pa.large_string())
        meta.update(pandas_type="object", numpy_type="str", metadata=None)
    elif c.kind == "cat":
        from shocklab.fastcsv import text_array

        np_type, pa_type = _code_type(len(c.labels))
        # pandas' str categories: large_string values
        arr = pa.DictionaryArray.from_arrays(np_array(c.values.astype(np_type), pa_type),
                                             text_array(list(c.labels), pa.large_string()))
        meta.update(pandas_type="categorical", numpy_type=np_type,
                    metadata={"num_categories": len(c.labels), "ordered": False})
    elif c.kind == "time":
        unit = np.datetime_data(c.values.dtype)[0]
        arr = np_array(c.values.view(np.int64), pa.timestamp(unit), valid=~np.isnat(c.values))
        meta.update(pandas_type="datetime", numpy_type=str(c.values.dtype), metadata=None)
    else:  # pragma: no cover - Col kinds are fixed
        raise ValueError(f"unknown column kind {c.kind!r}")
    return arr, meta


def arrow_table(t: ColTable):
    """The arrow table ``pa.Table.from_pandas(t.to_pandas(), preserve_index=False)`` gives."""
    import pyarrow as pa

    empty = len(t) == 0
    arrays, metas = [], []
    for name, c in t.cols.items():
        arr, meta = _arrow_column(name, c, empty)
        arrays.append(arr)
        metas.append(meta)
    pandas_meta = {
        "index_columns": [], "column_indexes": [], "columns": metas, "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": _pandas_version(),
    }
    schema = pa.schema([pa.field(n, a.type) for n, a in zip(t.cols, arrays, strict=True)],
                       metadata={b"pandas": json.dumps(pandas_meta).encode("utf8")})
    return pa.Table.from_arrays(arrays, schema=schema)


def np_array(values: np.ndarray, type, valid: np.ndarray | None = None):
    from shocklab.fastcsv import np_array as _np_array

    return _np_array(values, type, valid)


# The options ``pyarrow.parquet.write_table`` gives the writer where they differ from the
# compiled writer's own defaults (pyarrow/parquet/core.py ``ParquetWriter.__init__``).
_PQ_OPTIONS = {"use_dictionary": True, "version": "2.6", "write_statistics": True,
               "writer_engine_version": "V2", "data_page_version": "1.0"}


def write_parquet(t: ColTable, path: str | Path) -> None:
    """``t.to_pandas().to_parquet(path, index=False, engine="pyarrow", compression="zstd")``:
    ``pyarrow.parquet.write_table``'s writer and options, called on ``pyarrow._parquet``
    directly (``pyarrow.parquet`` imports ``pyarrow.fs``, ssl and S3 support: ~10 ms of the
    generator's start-up). The bytes are the same (tests/simulation/test_coltable.py)."""
    from pyarrow._parquet import ParquetWriter

    table = arrow_table(t)
    writer = ParquetWriter(str(path), table.schema, compression="zstd", **_PQ_OPTIONS)
    try:
        writer.write_table(table, row_group_size=None)
    finally:
        writer.close()


# ---------------------------------------------------------------------------------------------
# CSV


def write_csv(t: ColTable, path: str | Path, float_format: str | None = None) -> None:
    """``shocklab.fastcsv.write_csv(t.to_pandas(), path, float_format)``: the same bytes, from the
    numpy columns (pandas only for the cases fastcsv hands to pandas' own writer)."""
    from shocklab import fastcsv

    cols = t.columns
    if fastcsv.simple_header(cols) and len(t) == 0:
        with open(path, "w", encoding="utf-8", newline="") as fh:   # pandas: the header alone
            fh.write(",".join(cols) + "\n")
        return
    if fastcsv.simple_header(cols):
        try:
            rendered = [_csv_column(c, float_format) for c in t.cols.values()]
        except fastcsv.Fallback:
            pass
        else:
            fastcsv.write_rendered(cols, rendered, path)
            return
    fastcsv.write_csv(t.to_pandas(), path, float_format)


def _csv_column(c: Col, float_format: str | None):
    import pyarrow as pa

    from shocklab import fastcsv

    if c.kind == "int":
        return np_array(c.values, pa.int64())
    if c.kind == "float":
        return fastcsv.float_column(c.values, float_format)
    if c.kind == "time":
        return fastcsv.datetime_array(c.values)
    if not c.coded:
        return fastcsv.string_array(c.values)
    # coded text or categorical: the labels rendered once, then decoded
    labels = fastcsv.string_array(np.asarray(c.labels, dtype=object))
    return fastcsv.pc.take(labels, np_array(c.values, pa.int64()))
