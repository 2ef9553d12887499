"""The exact distribution of one order's value, written to truth for the oracle
(truth/order_value_null.csv).

``noise_model`` gives the oracle two moments of an order's value V; revenue and AOV tails built
from those (a gamma) are too thin: V is skewed beyond a gamma (a few orders with many lines or
expensive goods). Here V's whole distribution is computed from the basket model draw.py draws:

    V = (1 − d) · Σ_{l=1..L} q_l · price(J_l)·1[J_l in scope]

with L = 1 + Geometric(basket.items_mean − 1) lines, quantities q = 1 + Geometric(
basket.quantity_mean − 1), products J by popularity and the order's discount d from
``discount_levels`` / ``discount_probs`` (no event acting: list prices, no discount lever). A line's
value Y has a finite set of atoms (quantity × list price, 0 outside the scope); the sum over a
geometric number of lines has the generating function (1 − ρ)·φ_Y / (1 − ρ·φ_Y) (ρ = a / (1 + a)),
evaluated by FFT on a fine grid covering the mean + 40 standard deviations; the discount scales
the grid. Per scope ("all", each category) the table keeps V given the order touches the scope
(V > 0) as (value, probability) atoms, rebinned to at most ``MAX_ATOMS``, with ``tau`` = P(the
order touches the scope). Prices are not rounded to cents here (as in ``noise_model``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .coltable import ColTable, coded_strs, floats
from .noise_model import order_value_moments

FINE_GRID = 1 << 16     # points of the fine FFT grid
MAX_ATOMS = 4096        # atoms kept per scope
TAIL = 1e-16            # upper-tail mass dropped from the table


def _geometric_pmf(mean: float, tol: float = 1e-18) -> np.ndarray:
    """P(G = k), k = 0, 1, … of a geometric count with the given mean, truncated where the
    remaining mass is below ``tol`` (as ``rand.geometric_extra`` draws it)."""
    if mean <= 0:
        return np.ones(1)
    r = mean / (1.0 + mean)
    k_max = int(np.ceil(np.log(tol) / np.log(r))) + 1
    return (1.0 - r) * r ** np.arange(k_max)


def order_value_atoms(cfg: Any, catalogue: Any,
                      in_scope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, probabilities) of V given V > 0 for the products ``in_scope`` ([P] bool)."""
    b = cfg.basket
    pop = np.asarray(catalogue.popularity, float)
    pop = pop / pop.sum()
    price = np.asarray(catalogue.price, float)
    a = b.items_mean - 1.0
    rho = a / (1.0 + a)
    q_pmf = _geometric_pmf(b.quantity_mean - 1.0)            # P(q = 1 + k)
    qty = np.arange(1, q_pmf.size + 1, dtype=float)
    # mean and sd of the scope's value before the discount: bounds the fine grid
    pi_s = pop[in_scope]
    e_q, e_q2 = float(q_pmf @ qty), float(q_pmf @ qty**2)
    ey = e_q * float(pi_s @ price[in_scope])
    ey2 = e_q2 * float(pi_s @ price[in_scope] ** 2)
    e_l = 1.0 + a
    var_l = a * (1.0 + a)
    mean = e_l * ey
    sd = np.sqrt(e_l * (ey2 - ey**2) + var_l * ey**2)
    top = mean + 40.0 * sd + float(qty[-1] * price[in_scope].max(initial=0.0))
    h = top / FINE_GRID
    # one line's value on the grid: quantity x price inside the scope, 0 outside
    idx = np.rint(qty[:, None] * price[in_scope][None, :] / h).astype(np.int64)
    w = q_pmf[:, None] * pi_s[None, :]
    keep = idx < FINE_GRID
    y = np.bincount(idx[keep], weights=w[keep], minlength=FINE_GRID)[:FINE_GRID]
    y[0] += 1.0 - pi_s.sum()
    phi = np.fft.rfft(y)
    v = np.fft.irfft((1.0 - rho) * phi / (1.0 - rho * phi), FINE_GRID)
    v = np.clip(v, 0.0, None)
    # the order's discount scales the whole value
    probs = np.asarray(b.discount_probs, float) / np.sum(b.discount_probs)
    levels = np.round(np.clip(np.asarray(b.discount_levels, float), 0.0, 0.9), 2)
    grid = np.arange(FINE_GRID, dtype=float)
    out = np.zeros(FINE_GRID)
    for p_d, d in zip(probs, levels, strict=True):
        out += np.bincount(np.rint(grid * (1.0 - d)).astype(np.int64), weights=p_d * v,
                           minlength=FINE_GRID)[:FINE_GRID]
    pos = out[1:] / max(out[1:].sum(), 1e-300)
    # drop the far upper tail, then rebin to at most MAX_ATOMS atoms at their mean value
    sf = np.cumsum(pos[::-1])[::-1]
    n = int(np.searchsorted(-sf, -TAIL, side="right")) or pos.size
    pos, vals = pos[:n], (np.arange(1, n + 1) * h)
    block = max(1, int(np.ceil(n / MAX_ATOMS)))
    pad = (-n) % block
    pb = np.r_[pos, np.zeros(pad)].reshape(-1, block)
    vb = np.r_[vals, np.zeros(pad)].reshape(-1, block)
    mass = pb.sum(axis=1)
    at = np.where(mass > 0, (pb * vb).sum(axis=1) / np.where(mass > 0, mass, 1.0), vb[:, 0])
    nz = mass > 0
    return at[nz], mass[nz] / mass[nz].sum()


def order_value_null_table(cfg: Any, catalogue: Any) -> ColTable:
    """truth/order_value_null (columns scope, tau, value, p): per scope ("all", then each
    category in name order) the atoms (value, p) of one order's value given it touches the scope,
    and tau, P(an order touches it), exact from ``noise_model.order_value_moments``."""
    cats = np.asarray(catalogue.category, dtype=object)
    scopes = ["all", *sorted(set(cats))]
    mom = order_value_moments(cfg, catalogue)
    parts = []
    for s in scopes:
        vals, p = order_value_atoms(cfg, catalogue, np.ones(cats.size, bool) if s == "all"
                                    else cats == s)
        parts.append((s, mom[s]["tau"], vals, p))
    n = [len(v) for _, _, v, _ in parts]
    code = np.repeat(np.arange(len(scopes)), n)
    return ColTable({
        "scope": coded_strs(code, scopes),
        "tau": floats(np.repeat([t for _, t, _, _ in parts], n)),
        "value": floats(np.concatenate([v for _, _, v, _ in parts])),
        "p": floats(np.concatenate([p for _, _, _, p in parts])),
    })
