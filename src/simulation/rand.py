"""Counter-based random numbers for per-order and per-line draws.

Cell-level draws (one per day × channel × country) come from ``numpy.random.Generator`` streams
of fixed shape, so they are identical whether events are on or off. Per-order draws cannot work
that way (events change how many orders a cell has), so each order's uniforms are a hash of a
per-cell key drawn from a Generator, the order's kind and its index within the cell. The k-th
order of a cell therefore has the same basket, time and status in the actual world and in its
counterfactual twin: the twin differs only where an event acts ("common random numbers").

The mixer is SplitMix64's finalizer (Steele et al., 2014), a bijection on 64-bit integers whose
outputs pass BigCrush when fed a counter.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / float(1 << 53)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer, elementwise on uint64 (wrapping arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if x.ndim == 0:
            z = x + _GOLDEN
            z = (z ^ (z >> np.uint64(30))) * _M1
            z = (z ^ (z >> np.uint64(27))) * _M2
            return z ^ (z >> np.uint64(31))
        # arrays in place, with one scratch array: the same operations without a temporary per
        # step (large temporaries cost page faults as much as the arithmetic)
        z = x + _GOLDEN
        t = np.right_shift(z, np.uint64(30))
        z ^= t
        z *= _M1
        np.right_shift(z, np.uint64(27), out=t)
        z ^= t
        z *= _M2
        np.right_shift(z, np.uint64(31), out=t)
        z ^= t
        return z


def child_keys(keys: np.ndarray, index: np.ndarray | int, salt: int) -> np.ndarray:
    """Key of the ``index``-th child (order of a cell, line of an order) under ``salt``."""
    with np.errstate(over="ignore"):
        return mix64(
            np.asarray(keys, np.uint64)
            ^ mix64(np.asarray(index, np.uint64) * _GOLDEN + np.uint64(salt))
        )


def uniforms(keys: np.ndarray, stream: int) -> np.ndarray:
    """Uniform(0, 1) doubles, one per key, for draw number ``stream`` of that entity (never 0)."""
    with np.errstate(over="ignore"):
        bits = mix64(np.asarray(keys, np.uint64) + np.uint64(stream) * _GOLDEN)
    bits >>= np.uint64(11)
    u = bits.astype(np.float64)
    u += 0.5
    u *= _INV_2_53
    return u


def search_right(cdf: np.ndarray, u: np.ndarray, bins: int = 1 << 16) -> np.ndarray:
    """``np.searchsorted(cdf, u, side="right")``, exactly, for many ``u`` in [0, 1) against a
    short sorted ``cdf``: a lookup table over ``bins`` equal bins of [0, 1) answers every value
    whose bin holds no ``cdf`` entry (the bin edges k / bins are exact, and so is ``u · bins``
    for a power-of-two ``bins``); the few others are searched (all of them when a value lies
    outside [0, 1)).
    Random keys make a plain binary search miss the cache and the branch predictor: ~20 ns per
    value; the table is a few ns."""
    u = np.asarray(u, dtype=np.float64)
    if u.size < bins // 4 or not (u.min() >= 0.0 and u.max() < 1.0):   # NaN fails both
        return np.searchsorted(cdf, u, side="right")
    at = np.searchsorted(cdf, np.arange(bins + 1, dtype=np.float64) / bins, side="right")
    k = (u * bins).astype(np.intp)
    out = at[k]
    todo = np.flatnonzero((at[1:] != at[:-1])[k])   # bins holding a cdf entry
    if todo.size:
        out[todo] = np.searchsorted(cdf, u[todo], side="right")
    return out


def geometric_extra(u: np.ndarray, mean: np.ndarray | float) -> np.ndarray:
    """Inverse CDF of a geometric count on {0, 1, …} with the given mean (0 where mean <= 0)."""
    mean = np.broadcast_to(np.asarray(mean, float), u.shape)
    pos = mean > 0
    if pos.all():   # the usual case: the same arithmetic without the masked copies
        q = mean / (1.0 + mean)
        return np.floor(np.log(u) / np.log(q)).astype(np.int64)
    out = np.zeros(u.shape, dtype=np.int64)
    q = mean[pos] / (1.0 + mean[pos])  # P(k >= 1)
    out[pos] = np.floor(np.log(u[pos]) / np.log(q)).astype(np.int64)
    return out


def special_ufuncs() -> Any:
    """scipy.special's compiled ufuncs (``pdtr``, ``pdtrik``, ``_binom_ppf``, ``gammaincinv``,
    ``expit``, ``logit``: the objects ``scipy.special`` exports), the one way this package
    reaches them; loaded without the package when ``preload_special_ufuncs`` ran first."""
    mod = sys.modules.get("scipy.special._ufuncs")
    if mod is None:
        from scipy.special import _ufuncs as mod
    return mod


def preload_special_ufuncs() -> None:
    """Load ``scipy.special._ufuncs`` without running ``scipy/special/__init__.py``, whose
    array-API layer walks every numpy submodule (numpy.f2py, numpy.testing, …): ~0.15–0.2 s of a
    0.7 s generation. For a CLI's start-up, before any other thread imports anything: a
    stand-in ``scipy.special`` package is in ``sys.modules`` only while the extension modules
    load; a later ``import scipy.special`` runs the real package, which reuses them. Any
    failure falls back to the ordinary import."""
    if "scipy.special" in sys.modules or "scipy.special._ufuncs" in sys.modules:
        return
    import importlib
    import types

    try:
        import scipy

        stand_in = types.ModuleType("scipy.special")
        stand_in.__path__ = [str(Path(scipy.__file__).parent / "special")]
        stand_in.__package__ = "scipy.special"
        sys.modules["scipy.special"] = stand_in
        try:
            importlib.import_module("scipy.special._ufuncs")
        finally:
            if sys.modules.get("scipy.special") is stand_in:
                del sys.modules["scipy.special"]
    except Exception:  # noqa: BLE001 - any scipy layout change: the ordinary import
        sys.modules.pop("scipy.special._ufuncs", None)
        import scipy.special  # noqa: F401


# Inverse CDFs of the Poisson and binomial counts, on the same scipy.special ufuncs and with the
# same edge-case rules as ``scipy.stats.poisson.ppf`` / ``scipy.stats.binom.ppf`` (so the counts
# are bit-for-bit those of scipy.stats), without importing scipy.stats (~1 s of start-up).
def _ppf_shell(
    q: np.ndarray, ok: np.ndarray, upper: np.ndarray | float, core, *args: np.ndarray
) -> np.ndarray:
    q = np.asarray(q, float)
    shape = np.broadcast_shapes(q.shape, ok.shape, *(np.shape(a) for a in args))
    q = np.broadcast_to(q, shape)
    ok = np.broadcast_to(ok, shape)
    out = np.full(shape, np.nan)
    out[ok & (q == 0)] = -1.0                       # a - 1, a = 0 the support's left end
    top = ok & (q == 1)
    out[top] = np.broadcast_to(upper, shape)[top]   # the support's right end
    cond = ok & (q > 0) & (q < 1)
    if cond.any():
        out[cond] = core(q[cond], *(np.broadcast_to(a, shape)[cond] for a in args))
    return out


def _poisson_core(q: np.ndarray, mu: np.ndarray) -> np.ndarray:
    special = special_ufuncs()
    vals = np.ceil(special.pdtrik(q, mu))
    vals1 = np.maximum(vals - 1, 0)
    return np.where(special.pdtr(vals1, mu) >= q, vals1, vals)


def _binom_core(q: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    return special_ufuncs()._binom_ppf(q, n, p)


def poisson_ppf(q: np.ndarray, mu: np.ndarray | float) -> np.ndarray:
    """Smallest k with P(X <= k) >= q for X ~ Poisson(mu) (float array; -1 at q = 0, NaN for
    mu < 0)."""
    mu = np.asarray(mu, float)
    return _ppf_shell(q, mu >= 0, np.inf, _poisson_core, mu)


def binom_ppf(q: np.ndarray, n: np.ndarray, p: np.ndarray | float) -> np.ndarray:
    """Smallest k with P(X <= k) >= q for X ~ Binomial(n, p) (float array; NaN for invalid n, p)."""
    n, p = np.asarray(n), np.asarray(p, float)
    ok = (n >= 0) & (n == np.round(n)) & (p >= 0) & (p <= 1)
    return _ppf_shell(q, ok, n.astype(float), _binom_core, n, p)
