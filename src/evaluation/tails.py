"""The few ``scipy.stats`` functions the oracle calls, written with the compiled special functions
``scipy.stats`` itself calls for them, in the same order and with the same edge rules: the same
floats (tests/evaluation/test_tails.py compares them bit for bit), without importing
``scipy.stats`` (~0.4 s of every analysis's start-up, on the critical path before the stage
scheduler's fork; count_likelihood's ``nbinom_terms`` does the same for the negative binomial).

- ``poisson_terms(k, mu)``: ``poisson.sf(k, mu)``, ``poisson.pmf(k, mu)`` and
  ``poisson.cdf(k - 1, mu)`` for integer-valued ``k`` and ``mu > 0`` (the oracle's counts);
- ``gamma_sf_cdf(x, a, scale)``: ``gamma.sf`` and ``gamma.cdf`` at ``x`` (shape ``a``, ``scale``;
  ``loc`` 0);
- ``norm_isf(q)``: ``norm.isf(q)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammainc, gammaincc, gammaln, ndtri, pdtr, pdtrc, xlogy


def poisson_terms(k: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sf(k), pmf(k), cdf(k − 1)) of the Poisson with mean ``mu`` at finite integer-valued ``k``:
    ``pdtrc(floor(k))``, ``exp(xlogy(k, mu) − gammaln(k + 1) − mu)`` and ``pdtr(floor(k − 1))``,
    each clipped to [0, 1]; below the support (k < 0) sf is 1, pmf and the cdf 0; NaN where
    ``mu`` is not ≥ 0 — as ``scipy.stats.poisson`` gives them."""
    k, mu = np.broadcast_arrays(np.asarray(k, float), np.asarray(mu, float))
    sf, pmf, below = np.ones(k.shape), np.zeros(k.shape), np.zeros(k.shape)
    good = mu >= 0
    on = good & (k >= 0)
    ko, mo = k[on], mu[on]
    sf[on] = np.clip(pdtrc(np.floor(ko), mo), 0, 1)
    pmf[on] = np.clip(np.exp(xlogy(ko, mo) - gammaln(ko + 1) - mo), 0, 1)
    km = np.floor(k - 1)
    b = good & (km >= 0)
    below[b] = np.clip(pdtr(np.floor(km[b]), mu[b]), 0, 1)
    for a in (sf, pmf, below):
        a[~good] = np.nan
    return sf, pmf, below


def gamma_sf_cdf(x: np.ndarray, a: np.ndarray, scale: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(sf, cdf) of the gamma with shape ``a`` and ``scale`` at ``x``: the regularized incomplete
    gamma functions of ``x / scale`` inside the support, 1 / 0 at or below 0, 0 / 1 at +inf, NaN
    where the parameters are invalid or ``x`` is NaN, as ``scipy.stats.gamma`` gives them."""
    x, a, scale = np.broadcast_arrays(*(np.asarray(v, float) for v in (x, a, scale)))
    y = (x - 0) / scale
    good = (a > 0) & (scale > 0)
    inside = good & (0 < y) & (y < np.inf)
    sf, cdf = np.zeros(y.shape), np.zeros(y.shape)
    bad = ~good | np.isnan(y)
    sf[bad] = cdf[bad] = np.nan
    sf[good & (y <= 0)] = 1.0
    cdf[good & (y >= np.inf)] = 1.0
    sf[inside] = gammaincc(a[inside], y[inside])
    cdf[inside] = gammainc(a[inside], y[inside])
    return sf, cdf


def norm_isf(q: np.ndarray | float) -> np.ndarray | float:
    """The standard normal's inverse survival function: −ndtri(q) on (0, 1), −inf at 1, +inf at
    0, NaN elsewhere."""
    qa = np.asarray(q, float)
    out = np.full(qa.shape, np.nan)
    out[qa == 1] = -np.inf
    out[qa == 0] = np.inf
    inside = (0 < qa) & (qa < 1)
    out[inside] = -ndtri(qa[inside]) * 1 + 0
    return out[()] if out.ndim == 0 else out


__all__ = ["gamma_sf_cdf", "norm_isf", "poisson_terms"]
