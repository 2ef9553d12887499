"""simulation.coltable writes the bytes pandas' writers give for the same table (the data
directory's contract), without pandas on the generation path; rand.search_right is an exact
searchsorted; generate_data.py imports neither pandas nor the scipy.special package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shocklab.fastcsv import write_csv as fast_write_csv
from simulation import coltable as ct
from simulation.rand import search_right

ROOT = Path(__file__).resolve().parents[2]


def _mixed(n: int = 300) -> ct.ColTable:
    rng = np.random.default_rng(5)
    floats = np.round(rng.normal(100, 50, n), 2)
    floats[[3, 17]] = np.nan
    floats[[5, 6, 7]] = [1e-7, 3e17, -0.0]
    labels = [f"label_{i}" for i in range(200)]            # > 127 categories: int16 codes
    words = np.array(["plain", "with,comma", 'with "quote"', "ünïcödé"], dtype=object)
    return ct.ColTable({
        "id": ct.ints(np.arange(n) * 7),
        "value": ct.floats(floats),
        "text": ct.strs(words[rng.integers(0, 4, n)]),
        "coded": ct.coded_strs(rng.integers(0, 3, n), ["a", "b,c", "d"]),
        "cat": ct.cat(rng.integers(0, 200, n), labels),
        "small_cat": ct.cat(rng.integers(0, 3, n), ["x", "y", "z"]),
        "ts": ct.times(np.datetime64("2025-01-01", "us") + rng.integers(0, 10**6, n)
                       .astype("timedelta64[s]")),
        "day": ct.times(np.datetime64("2025-01-01", "s")
                        + (rng.integers(0, 300, n) * 86400).astype("timedelta64[s]")),
        "const": ct.full(n, 0.25),
    })


def _pandas_parquet(df: pd.DataFrame, path: Path) -> bytes:
    df.to_parquet(path, index=False, engine="pyarrow", compression="zstd")
    return path.read_bytes()


def test_parquet_bytes_equal_pandas(tmp_path):
    t = _mixed()
    df = t.to_pandas()
    ref = pa.Table.from_pandas(df, preserve_index=False)
    mine = ct.arrow_table(t)
    assert mine.schema.equals(ref.schema, check_metadata=True)
    assert mine.equals(ref)
    ct.write_parquet(t, tmp_path / "a.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == _pandas_parquet(df, tmp_path / "b.parquet")


def test_empty_text_table_parquet_and_csv_equal_pandas(tmp_path):
    t = ct.ColTable({c: ct.strs([]) for c in ("date", "name", "kind", "scope")})
    df = pd.DataFrame([], columns=["date", "name", "kind", "scope"])
    ct.write_parquet(t, tmp_path / "a.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == _pandas_parquet(df, tmp_path / "b.parquet")
    ct.write_csv(t, tmp_path / "a.csv")
    df.to_csv(tmp_path / "b.csv", index=False, lineterminator="\n")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.parametrize("float_format", [None, "%.10g"])
def test_csv_bytes_equal_pandas(tmp_path, float_format):
    t = _mixed()
    df = t.to_pandas()
    ct.write_csv(t, tmp_path / "a.csv", float_format)
    df.to_csv(tmp_path / "b.csv", index=False, lineterminator="\n", float_format=float_format)
    fast_write_csv(df, tmp_path / "c.csv", float_format)
    a = (tmp_path / "a.csv").read_bytes()
    assert a == (tmp_path / "b.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()


def test_csv_falls_back_to_pandas_for_line_breaks(tmp_path):
    t = ct.ColTable({"a": ct.ints([1, 2]), "b": ct.strs(["x", "two\nlines"])})
    ct.write_csv(t, tmp_path / "a.csv")
    t.to_pandas().to_csv(tmp_path / "b.csv", index=False, lineterminator="\n")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_concat_take_and_sort_key():
    a = ct.ColTable({"s": ct.coded_strs([1, 0], ["b", "a"]), "v": ct.floats([1.0, 2.0])})
    b = ct.ColTable({"s": ct.strs(["c", "a"]), "v": ct.floats([3.0, 4.0])})
    both = ct.ColTable.concat([a, b])
    assert list(both["s"]) == ["a", "b", "c", "a"]
    assert list(both.sort_key("s")) == [0, 1, 2, 0]
    assert list(both.take(np.array([3, 0]))["v"]) == [4.0, 1.0]


def test_search_right_is_searchsorted():
    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(1, 3000))
        cdf = np.cumsum(rng.random(n))
        cdf /= cdf[-1]
        cdf[:3] = np.sort(np.round(cdf[:3] * 65536) / 65536)   # entries on bin edges
        cdf.sort()
        u = rng.random(40_000)
        u[:500] = rng.integers(0, 65536, 500) / 65536          # values on bin edges
        u[500:600] = cdf[rng.integers(0, n, 100)]               # values equal to cdf entries
        u[600:604] = [0.0, np.nextafter(1.0, 0.0), 1e-300, 5e-324]
        assert np.array_equal(search_right(cdf, u), np.searchsorted(cdf, u, side="right"))
        u[9] = (1.0, np.nan, -0.5, 2.0)[trial % 4]             # outside [0, 1): searched
        assert np.array_equal(search_right(cdf, u), np.searchsorted(cdf, u, side="right"))


PROBE = """
import atexit, runpy, sys
def report():
    print("LOADED", "pandas" in sys.modules, "scipy.special" in sys.modules,
          "pyarrow.fs" in sys.modules, "importlib.metadata" in sys.modules, file=sys.stderr)
atexit.register(report)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_generate_data_imports_neither_pandas_nor_scipy_special(tmp_path):
    """…nor pyarrow.parquet's filesystem layer (ssl, S3): Parquet is written by
    pyarrow._parquet's writer directly; nor importlib.metadata (pydantic's plugin lookup is
    skipped, the pandas version for the Parquet metadata read from pandas' version file)."""
    for fmt in ("csv", "parquet"):
        p = subprocess.run(
            [sys.executable, "-c", PROBE, str(ROOT / "generate_data.py"), "--config",
             str(ROOT / "config/scenarios/small.yaml"), "--out", str(tmp_path / fmt),
             "--format", fmt, "--quiet"],
            cwd=ROOT, capture_output=True, text=True,
            env={"PATH": "/usr/bin:/bin", "SHOCKLAB_LOG_DIR": "",
                 "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
        assert p.returncode == 0, p.stderr
        assert "LOADED False False False False" in p.stderr, p.stderr


def test_preloaded_ufuncs_serve_the_later_scipy_import():
    code = """
import sys
from simulation.rand import preload_special_ufuncs, special_ufuncs
preload_special_ufuncs()
assert "scipy.special" not in sys.modules
u = special_ufuncs()
import scipy.special
from scipy import stats
assert scipy.special.pdtr is u.pdtr and scipy.special._ufuncs is u
assert stats.poisson.ppf(0.5, 3.0) == 3.0
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
    assert p.stdout.strip() == "ok", p.stderr


def test_pandas_version_without_importing_pandas():
    code = """
import sys
from importlib.metadata import version
from simulation.coltable import _pandas_version
v = _pandas_version()
assert "pandas" not in sys.modules
assert v == version("pandas"), (v, version("pandas"))
import pandas
assert v == pandas.__version__
print("ok")
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"})
    assert p.stdout.strip() == "ok", p.stderr
