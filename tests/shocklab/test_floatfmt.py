"""shocklab.floatfmt.format_g: the strings of Python's ``"%.Ng" % v``, vectorised."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shocklab import fastcsv
from shocklab.floatfmt import format_g, g_precision

EDGES = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, 0.1, 1 / 3, 2 / 3, 1e-5, 1.5e-05, 1e-4, 1e-300,
         9.99999999995e-5, 9.9999999995e-5, 99999.999995, 123456789.5, 1234567890.5,
         9999999999.5, 9999999999.4, 1e9, 1e10, 12345678901.0, 1e16, 1e31, 1e32, 1e100, 1e-13,
         1e-14, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, math.inf, -math.inf,
         math.nan, 123.456, -987654.3210987]


def _python(values: np.ndarray, precision: int) -> list[str | None]:
    fmt = f"%.{precision}g"
    return [None if v != v else fmt % v for v in values.tolist()]


def _worlds(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    p10 = 10.0 ** np.arange(-16, 33)
    return {
        "magnitudes": rng.standard_normal(n) * 10.0 ** rng.integers(-25, 40, n),
        "short decimals": rng.integers(-10**9, 10**9, n) / 10.0 ** rng.integers(0, 12, n),
        # an 11th digit of 5: the value sits next to a rounding half
        "near halves": (rng.integers(10**10, 10**11, n) * 10 + 5) / 10.0 ** rng.integers(1, 20, n),
        "integers": rng.integers(-10**13, 10**13, n).astype(float),
        "powers of ten": np.concatenate([p10, -p10, np.nextafter(p10, 0), np.nextafter(p10, 1e300),
                                         p10 * (1 - 5e-11), p10 * (1 + 5e-11)]),
        "edges": np.array(EDGES),
    }


@pytest.mark.parametrize("precision", [10, 1, 2, 6, 12, 15])
def test_format_g_matches_python(precision: int) -> None:
    rng = np.random.default_rng(precision)
    for name, values in _worlds(rng, 20_000 if precision == 10 else 4_000).items():
        got = format_g(values, precision).to_pylist()
        want = _python(values, precision)
        bad = [(v, g, w) for v, g, w in zip(values.tolist(), got, want, strict=True) if g != w]
        assert not bad, f"{name}, %.{precision}g: {bad[:5]}"


def test_format_g_keeps_order_shape_and_nulls() -> None:
    values = np.array([[math.nan, -0.0], [2.5e-7, math.nan]]).reshape(-1)
    arr = format_g(values, 10)
    assert arr.to_pylist() == [None, "-0", "2.5e-07", None]
    assert arr.null_count == 2
    assert format_g(np.zeros(0), 10).to_pylist() == []


def test_g_precision() -> None:
    assert g_precision("%.10g") == 10
    assert g_precision("%.1g") == 1
    for other in ("%.16g", "%.0g", "%.10f", "%10g", "%.10G", "x%.10g", "%.6e"):
        assert g_precision(other) is None


@pytest.mark.parametrize("fmt", ["%.10g", "%.3g", "%.4f"])
def test_formatted_float_column_is_python_percent(fmt: str) -> None:
    """fastcsv's float_format path (distinct values, then gathered) prints what pandas does."""
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.standard_normal(6000) * 1e3, np.array(EDGES)])
    values = np.concatenate([values, values[::3]])      # repeats: the distinct-values path
    got = fastcsv.float_column(values, fmt).to_pylist()
    assert got == [None if v != v else fmt % v for v in values.tolist()]
