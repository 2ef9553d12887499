"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005) for the CLV stage (``clv``): the mean
spend of a customer's repeat purchases, fitted by maximum likelihood, and its posterior mean."""

from __future__ import annotations

import numpy as np
from scipy import optimize, special


def _gg_nll(logp: np.ndarray, x: np.ndarray, m: np.ndarray) -> float:
    p, q, v = np.exp(logp)
    ll = (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
          + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))
    val = -float(np.mean(ll))
    return val if np.isfinite(val) else 1e10


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> dict[str, float]:
    """MLE of (p, q, v) from repeat customers' purchase counts x >= 1 and mean spend m > 0."""
    mean = float(np.mean(m))
    start = np.log([2.0, 3.0, 2.0 * mean])  # E[spend] = p v / (q - 1) = mean at the start
    bounds = [(np.log(1e-2), np.log(1e4)), (np.log(1.01), np.log(1e4)), (np.log(1e-6), np.log(1e9))]
    res = optimize.minimize(_gg_nll, start, args=(x, m), method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": 300})
    if not np.isfinite(res.fun) or res.fun >= 1e10:
        raise ValueError(f"Gamma-Gamma fit did not converge ({res.message})")
    return dict(zip(("p", "q", "v"), map(float, np.exp(res.x)), strict=True))


def gg_expected_spend(p: dict[str, float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Posterior mean spend per purchase; x = 0 (or m <= 0) gives the population mean."""
    pp, q, v = p["p"], p["q"], p["v"]
    x = np.where(m > 0, x, 0.0)
    return pp * (v + x * np.where(m > 0, m, 0.0)) / (pp * x + q - 1.0)
