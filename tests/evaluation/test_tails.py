"""``evaluation.tails`` gives the same floats as the ``scipy.stats`` calls it replaces in the
oracle, bit for bit, over the oracle's domain and its edges (so the oracle's scores, and every
output file, stay the same)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation import tails


def _same(a, b) -> None:
    """Bit for bit (signed zeros too), NaN where the other is NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    nan = np.isnan(a) & np.isnan(b)
    assert np.array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_poisson_terms_are_scipy_stats_poisson(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    mu = np.exp(rng.uniform(np.log(1e-4), np.log(2e5), n))
    k = np.round(mu * np.exp(rng.normal(0, 0.5, n)) + rng.integers(-3, 4, n))
    k[:50] = np.arange(-3, 47)                  # the edge of the support
    mu = np.concatenate([mu, [0.0, -1.0, np.nan, 5.0]])
    k = np.concatenate([k, [3.0, 3.0, 3.0, 0.0]])
    with np.errstate(all="ignore"):
        sf, pmf, below = tails.poisson_terms(k, mu)
        _same(sf, stats.poisson.sf(k, mu))
        _same(pmf, stats.poisson.pmf(k, mu))
        _same(below, stats.poisson.cdf(k - 1, mu))


@pytest.mark.parametrize("seed", [0, 1])
def test_gamma_sf_cdf_is_scipy_stats_gamma(seed):
    rng = np.random.default_rng(seed)
    n = 20_000
    a = np.exp(rng.uniform(np.log(1e-3), np.log(1e6), n))
    scale = np.exp(rng.uniform(np.log(1e-4), np.log(1e6), n))
    x = a * scale * np.exp(rng.normal(0, 0.7, n))
    x[:6] = [0.0, -1.0, np.inf, -np.inf, np.nan, -0.0]
    a = np.concatenate([a, [0.0, -2.0, np.nan, 1.0, 1.0]])
    scale = np.concatenate([scale, [1.0, 1.0, 1.0, 0.0, np.nan]])
    x = np.concatenate([x, [1.0, 1.0, 1.0, 1.0, 1.0]])
    with np.errstate(all="ignore"):
        sf, cdf = tails.gamma_sf_cdf(x, a, scale)
        _same(sf, stats.gamma.sf(x, a, scale=scale))
        _same(cdf, stats.gamma.cdf(x, a, scale=scale))


def test_norm_isf_is_scipy_stats_norm():
    q = np.concatenate([np.geomspace(1e-300, 0.5, 5000), np.linspace(0.0, 1.0, 1001),
                        [np.nan, -0.1, 1.1, 1e-320]])
    with np.errstate(all="ignore"):
        _same(tails.norm_isf(q), stats.norm.isf(q))
    assert tails.norm_isf(1e-300) == stats.norm.isf(1e-300)
    assert isinstance(tails.norm_isf(1e-300), float)
