"""Exact tails of sums of order values, for the oracle's revenue and AOV nulls.

One order's value V has the distribution the simulator wrote to truth/order_value_null.csv
(``simulation/order_value_null.py``: atoms (value, p) of V given the order touches the scope).
Two sums are tested:

- AOV × n over a window with n observed orders: the sum of n independent values, characteristic
  function φ_V(t)ⁿ;
- revenue over a window whose order count N has mean m and variance v (negative binomial by
  moments, Poisson when v ≤ m): the compound sum, characteristic function G_N(φ_V(t)) with
  G_N(z) = (1 + (m/r)(1 − z))^(−r), r = m² / (v − m) (Poisson: exp(m(z − 1))). The base has a
  positive real part (|φ_V| ≤ 1), so the principal power is continuous.

Both are evaluated by FFT on a grid of ``GRID`` points covering the count's mean + ``PAD``
standard deviations, times the value's mean, + ``PAD`` standard deviations of that sum + the
largest single value, the atoms rebinned to it (one grid per distinct n for AOV, per point for
revenue); tails are mid-p sums of the grid's probabilities. Round-off leaves ~1e-13 per point, so
tail probabilities below ``P_RELIABLE`` are not trusted: there the caller keeps the smaller of
its own and ``P_RELIABLE`` (the score stays far above any threshold).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRID = 2048
PAD = 15.0             # standard deviations of the count and of the sum the grid covers
P_RELIABLE = 1e-11
CHUNK = 64             # distributions per FFT batch ([CHUNK, GRID] arrays, 1 MB)


def scope_atoms(table: pd.DataFrame | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{scope: (values, probabilities)} from truth/order_value_null (empty without it)."""
    if table is None or not len(table):
        return {}
    out = {}
    for scope, g in table.groupby("scope", sort=True):
        v = g["value"].to_numpy(float)
        p = g["p"].to_numpy(float)
        out[str(scope)] = (v, p / p.sum())
    return out


def compound_tails(
    values: np.ndarray,
    probs: np.ndarray,
    x: np.ndarray,
    n: np.ndarray | None = None,
    m: np.ndarray | None = None,
    v: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(P(S ≥ x), P(S ≤ x)) mid-p, per point, of S = the sum of ``n`` order values (AOV; one
    distribution per distinct n), or, with ``m``, ``v`` instead, of a compound sum over a count
    with that mean and variance (revenue). ``values``/``probs``: one scope's atoms. Non-finite
    inputs give NaN; a sum beyond the grid gets tail 0 on that side."""
    x = np.asarray(x, float)
    up = np.full(x.size, np.nan)
    lo = np.full(x.size, np.nan)
    if n is not None:
        nn = np.asarray(n, float)
        ok = np.isfinite(x) & np.isfinite(nn) & (nn >= 1)
        keys, inv = np.unique(nn[ok], return_inverse=True)     # one distribution per count
        k_mean, k_var = keys, np.zeros(keys.size)
    else:
        mm, vv = np.asarray(m, float), np.asarray(v, float)
        ok = np.isfinite(x) & np.isfinite(mm) & np.isfinite(vv) & (mm > 0)
        k_mean, k_var = mm[ok], np.maximum(vv[ok], mm[ok])
        inv = np.arange(k_mean.size)
    rows = np.flatnonzero(ok)
    if not rows.size:
        return up, lo
    mu = float(probs @ values)
    var1 = max(float(probs @ values**2) - mu**2, 0.0)
    vmax = float(values.max())
    n_hi = k_mean + (PAD * np.sqrt(k_var) + PAD if n is None else 0.0)   # the count's top
    top = n_hi * mu + PAD * np.sqrt(n_hi * var1) + vmax
    h = top / GRID
    for s in range(0, k_mean.size, CHUNK):
        kk = np.arange(s, min(s + CHUNK, k_mean.size))
        idx = np.minimum(np.rint(values[None, :] / h[kk, None]).astype(np.int64), GRID - 1)
        flat = (idx + (np.arange(kk.size) * GRID)[:, None]).ravel()
        pmf = np.bincount(flat, weights=np.broadcast_to(probs, idx.shape).ravel(),
                          minlength=kk.size * GRID).reshape(kk.size, GRID)
        phi = np.fft.rfft(pmf, axis=1)
        cm, cv = k_mean[kk][:, None], k_var[kk][:, None]
        if n is not None:
            psi = phi ** cm
        else:
            over = cv > cm * (1 + 1e-9)
            rr = np.where(over, cm**2 / np.where(over, cv - cm, 1.0), 1.0)
            with np.errstate(over="ignore", invalid="ignore"):
                psi = np.where(over, (1.0 + (cm / rr) * (1.0 - phi)) ** (-rr),
                               np.exp(cm * (phi - 1.0)))
        dist = np.clip(np.fft.irfft(psi, GRID, axis=1), 0.0, None)
        dist /= dist.sum(axis=1, keepdims=True)
        cdf = np.cumsum(dist, axis=1)
        sf = np.cumsum(dist[:, ::-1], axis=1)[:, ::-1]
        # the points whose distribution is in this batch
        pts = np.flatnonzero((inv >= s) & (inv < s + kk.size))
        r, j = rows[pts], inv[pts] - s
        pos = x[r] / h[inv[pts]]
        beyond = pos > GRID - 1
        at = np.clip(np.rint(pos), 0, GRID - 1).astype(np.int64)
        mass = dist[j, at]
        lo[r] = np.where(beyond, 1.0, np.maximum(cdf[j, at] - 0.5 * mass, 0.0))
        up[r] = np.where(beyond, 0.0, np.maximum(sf[j, at] - 0.5 * mass, 0.0))
    return up, lo
