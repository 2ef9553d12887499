"""``"%.Ng" % v`` for a whole float64 array at once, the same strings as Python's.

``shocklab.fastcsv`` renders ``to_csv(float_format="%.10g")`` columns (truth/baseline_daily.csv)
with this instead of a Python ``%`` per distinct value (~30 ms of a one-year world's 0.6 s
generation, holding the GIL while the simulation runs on the other thread).

How it stays exact: Python rounds the exact binary value to N significant digits. Here
``m = |v| · 10^k`` (k = N − 1 − the decimal exponent; 10^|k| is exact for |k| ≤ 22) is computed
in float64, so it is within half an ulp of the exact product: ≤ 2⁻¹⁹ for m < 2³⁴. Rounding
``m`` to the nearest integer therefore gives Python's digits unless m is within that of a half,
and every value whose fraction is within ``_TIE`` (1e-4, far wider than the error) of .5 is
formatted by Python, as are the ones outside the exact range (|k| > 22: below ~1e-13 or above
~1e31 for N = 10), infinities and precisions above 15. NaN is returned as a null. The digits are
then laid out as ``%g`` does: fixed notation for exponents −4 … N−1, else ``d.ddde±XX``;
trailing zeros and a bare point dropped; ``-`` for negative values and −0.0.
tests/shocklab/test_floatfmt.py compares it with Python's ``%`` on millions of values.
"""

from __future__ import annotations

import re

import numpy as np

_G_FORMAT = re.compile(r"%\.(\d{1,2})g")
_TIE = 1e-4
_MAX_K = 22          # 10**k is an exact float64 up to 10**22
_W = 24              # widest layout: -d.dddddddddddddde-308 (P = 15) is 22 characters


def g_precision(float_format: str) -> int | None:
    """N of a ``"%.Ng"`` format this module renders (1 ≤ N ≤ 15), else None."""
    m = _G_FORMAT.fullmatch(float_format)
    if m is None:
        return None
    n = int(m.group(1))
    return n if 1 <= n <= 15 else None


def format_g(values: np.ndarray, precision: int):
    """An arrow string array of ``"%.{precision}g" % v`` for each float64 value (NaN → null)."""
    import pyarrow as pa

    v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    n = v.size
    P = int(precision)
    nan = np.isnan(v)
    neg = np.signbit(v) & ~nan
    a = np.abs(v)
    zero = a == 0
    regular = np.isfinite(v) & ~zero
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        e = np.floor(np.log10(np.where(regular, a, 1.0))).astype(np.int64)
        digits, e, ok = _digits(a, e, P)
    ok &= regular
    python = ~ok & ~nan & ~zero          # infinities, extremes, near-ties: Python's %
    e[~ok] = 0
    # one row per value: its P digit characters, then the characters a layout may add
    ext = np.empty((n, P + _EXTRA), dtype=np.uint8)
    x = digits
    for j in range(P - 1, -1, -1):   # (astype("S") goes through Python ints: 10x slower)
        x, d = np.divmod(x, 10)
        ext[:, j] = d
    ext[:, :P] += ord("0")
    ext[:, P:P + 4] = np.frombuffer(b"-.0e", dtype=np.uint8)
    ext[:, P + 4] = np.where(e < 0, ord("-"), ord("+"))
    ae = np.abs(e)
    ext[:, P + 5] = ae // 100 % 10 + ord("0")
    ext[:, P + 6] = ae // 10 % 10 + ord("0")
    ext[:, P + 7] = ae % 10 + ord("0")
    # significant digits kept: trailing zeros dropped (at least one)
    nz = ext[:, P - 1::-1] != ord("0")
    s = P - np.argmax(nz, axis=1)
    s[~nz.any(axis=1)] = 1
    s[nan] = 0                         # NaN: an empty layout (a null)
    # a layout per (kind, sign, exponent, digits kept): few distinct ones, each built once
    kind = np.where(zero | ~ok, 0, np.where((e >= -4) & (e < P), 1, 2))
    key = ((kind * 2 + neg) * _E_SPAN + (e + _E_SPAN // 2)) * 16 + s
    present = np.zeros(3 * 2 * _E_SPAN * 16, dtype=bool)
    present[key] = True
    keys = np.flatnonzero(present)
    slot = np.zeros(present.size, dtype=np.int64)
    slot[keys] = np.arange(keys.size)
    which = slot[key].astype(np.uint16)
    # rows grouped by layout (a stable radix sort of small integers): each group's strings are
    # one (rows × length) block of the character buffer, gathered at once
    order = np.argsort(which, kind="stable")
    counts = np.bincount(which, minlength=keys.size)
    layouts = [np.asarray(_layout(k, P), dtype=np.intp) for k in keys.tolist()]
    lengths = np.array([len(x) for x in layouts], dtype=np.int64)
    if python.any():                   # these rows: Python's string, placed after the rest
        idx = np.flatnonzero(python)
        fmt = f"%.{P}g"
        py = [(fmt % x).encode("ascii") for x in v[idx].tolist()]
        order = np.concatenate([order[~python[order]], idx])
        counts = np.bincount(which[~python], minlength=keys.size)
    length = np.zeros(n, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    chunks = []
    start = 0
    for g, cnt in enumerate(counts.tolist()):
        if cnt:
            rows = order[start:start + cnt]
            # (np.take per axis: ~10x faster than one 2-D fancy index)
            block = np.take(np.take(ext, rows, axis=0), layouts[g], axis=1)
            chunks.append(block.reshape(-1))
            length[start:start + cnt] = lengths[g]
            start += cnt
    if python.any():
        chunks.append(np.frombuffer(b"".join(py), dtype=np.uint8))
        length[start:] = [len(t) for t in py]
    data = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
    np.cumsum(length, out=offsets[1:])
    bitmap, nulls = None, int(nan.sum())
    if nulls:
        bitmap = pa.py_buffer(np.packbits(~nan[order], bitorder="little"))
    grouped = pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets),
                                                     pa.py_buffer(data)], null_count=nulls)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    from shocklab.fastcsv import np_array, pc

    return pc.take(grouped, np_array(rank, pa.int64()))


_EXTRA = 8           # after the P digits: - . 0 e, the exponent's sign, its three digits
_E_SPAN = 1024       # exponents -512 … 511 in the layout key


def _layout(key: int, P: int) -> list[int]:
    """The columns of a value's row (``format_g``'s ``ext``) that make up its string."""
    s = key % 16
    rest = key // 16
    e = rest % _E_SPAN - _E_SPAN // 2
    kind, neg = divmod(rest // _E_SPAN, 2)
    minus, dot, zero, e_char, e_sign = P, P + 1, P + 2, P + 3, P + 4
    out = [minus] if neg else []
    if kind == 0:                      # zero, NaN (s = 0: nothing); Python formats the rest
        return out + [zero] if s else []
    if kind == 1 and e >= 0:           # fixed: e + 1 integer digits, then the fraction
        out += list(range(e + 1))
        if s > e + 1:
            out += [dot] + list(range(e + 1, s))
        return out
    if kind == 1:                      # fixed, below 1: 0.00ddd
        return out + [zero, dot] + [zero] * (-e - 1) + list(range(s))
    out.append(0)                      # exponent: d[.ddd]e±XX
    if s > 1:
        out += [dot] + list(range(1, s))
    out += [e_char, e_sign]
    out += [P + 5, P + 6, P + 7] if abs(e) >= 100 else [P + 6, P + 7]
    return out


def _digits(a: np.ndarray, e: np.ndarray, P: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the P significant digits of ``a`` as an integer in [10^(P-1), 10^P), the decimal
    exponent after rounding, where both are exact): see the module docstring."""
    lo, hi = 10.0 ** (P - 1), 10.0 ** P
    m = np.zeros(a.shape)
    ok = np.zeros(a.shape, dtype=bool)
    for _ in range(2):   # log10's floor may be one off next to a power of ten
        k = P - 1 - e
        inside = np.abs(k) <= _MAX_K
        kk = np.where(inside, k, 0)
        scale = 10.0 ** np.abs(kk)
        m = np.where(kk >= 0, a * scale, a / scale)
        low, high = m < lo, m >= hi
        e = e - low + high
        ok = inside
        if not (low | high)[inside & np.isfinite(a)].any():
            break
    ok &= (m >= lo) & (m < hi)
    frac = m - np.floor(m)
    ok &= np.abs(frac - 0.5) > _TIE
    r = np.rint(m)
    carry = r >= hi
    r = np.where(carry, lo, r)
    e = e + carry
    return np.where(ok, r, lo).astype(np.int64), e, ok
