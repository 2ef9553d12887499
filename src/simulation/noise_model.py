"""The simulator's own null model, written to truth for the oracle: per date and watched slice the
expected KPIs with no shock acting, and the exact variance the generative model gives them.

Derivation (draw.py draws): in cell i, human sessions H_i ~ Poisson(λ_i·D·G_i) with a day factor D ~
Gamma(mean 1, CV² = traffic.day_noise_cv²) shared by all cells and a cell factor G_i ~ Gamma(mean 1,
variance = traffic.cell_dispersion); kept orders are a binomial thinning of H_i with a conversion
day factor C (CV² = conversion.day_noise_cv²), so given the factors they are Poisson(μ_i·D·C·G_i).
For a slice S with M = Σ μ_i:

    E[orders]   = M
    Var[orders] = M + (1 + cv_D²)(1 + cv_C²)(M² + disp·Σ μ_i²) − M²
    (sessions: the same with λ, and no C)

An order's net value V is (1 − discount)·Σ_lines quantity·price, lines = 1 + geometric, quantity
= 1 + geometric, products by popularity; with its first two moments m1, m2 (per category: the
order's value inside the category), revenue is a compound sum:

    E[revenue] = M·m1,  Var[revenue] = M·m2 + (Var[orders] − M)·m1²

and AOV given n orders has mean m1 and variance (m2 − m1²)/n (per touched order in a category).
Conversion given s sessions: orders have mean s·q and variance s·q + (s·q)²·(cv_C² + mix), where
mix (``conversion_mix_cv2``, ``_mix_cv2``) is the variance the cells' different conversions add
as their sessions move with their own factors G_i (a country whose referral traffic converts at
0.7 % and organic at 4.5 % converts higher on a day with little referral traffic).
Prices are not rounded in these moments (a cent on an order of tens of euros).

Products (truth/product_null.csv, ``product_null_table``): one row per product — ``product_id``
(1-based, as in products.csv), ``category``, ``price`` (its list price, no event acting), ``tau``
(P(an order touches it)), ``v1, v2, u1, u2`` (the order's value and units inside the product, as
above for a category). A product's daily touched orders thin the overall orders as a category's
do: mean M·tau, variance tau·M + tau²·(Var[orders] − M) with M, Var[orders] from the overall
baseline row; its price per unit sold is the list price exactly (no noise) on a day with units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shocklab.catalogue import NOISE_DIMENSIONS, PAIR_SEP

from .coltable import ColTable, coded_strs, floats, full, ints

NOISE_SCHEMA = "shocklab.noise_model/1"


def _slice_masks(
    channels: tuple[str, ...], countries: tuple[str, ...]
) -> list[tuple[str, str, np.ndarray]]:
    """(dimension, segment, [C, K] mask) of every cell slice the analysis can watch."""
    C, K = len(channels), len(countries)
    out = [("overall", "all", np.ones((C, K), bool))]
    out += [
        ("channel", ch, np.eye(C, dtype=bool)[i][:, None] & np.ones(K, bool)[None, :])
        for i, ch in enumerate(channels)
    ]
    out += [
        ("country", co, np.ones(C, bool)[:, None] & np.eye(K, dtype=bool)[j][None, :])
        for j, co in enumerate(countries)
    ]
    cells = []
    for i, ch in enumerate(channels):
        for j, co in enumerate(countries):
            m = np.zeros((C, K), bool)
            m[i, j] = True
            cells.append(("channel_country", f"{ch}{PAIR_SEP}{co}", m))
    return out + cells


def order_value_moments(
    cfg: Any, catalogue: Any, products: tuple[int, ...] | str = ()
) -> dict[str, dict[str, Any]]:
    """Per scope ("all", a category, and ``product:<id>`` for each of ``products``, ids 1-based):
    {"tau": P(order touches it), "v1", "v2": E[V], E[V²] of the order's value inside it (0 when
    not touched), "u1", "u2": the same for units}. ``products="all"``: instead of per-product
    keys, one "products" entry whose values are [P] arrays in product order (the same numbers)."""
    b = cfg.basket
    a, q = b.items_mean - 1.0, b.quantity_mean - 1.0
    e_l, e_ll = 1.0 + a, 2.0 * a * (1.0 + a)                 # E[L], E[L(L-1)]
    e_q, e_q2 = 1.0 + q, q * (1.0 + q) + (1.0 + q) ** 2      # E[q], E[q²]
    probs = np.asarray(b.discount_probs, float) / np.sum(b.discount_probs)
    lv = np.clip(np.asarray(b.discount_levels, float), 0.0, 0.9)
    e_k, e_k2 = float(probs @ (1 - lv)), float(probs @ (1 - lv) ** 2)
    rho = a / (1.0 + a)
    pop, price, cat = catalogue.popularity, catalogue.price, catalogue.category

    def moments(pi: Any, s1: Any, s2: Any) -> dict[str, Any]:
        # pi = Σ pop, s1 = Σ pop·price, s2 = Σ pop·price² over the scope (scalars or arrays)
        y1, y2 = e_q * s1, e_q2 * s2
        tau = 1.0 - (1.0 - pi) * (1.0 - rho) / (1.0 - rho * (1.0 - pi))
        return {
            "tau": tau,
            "v1": e_k * e_l * y1,
            "v2": e_k2 * (e_l * y2 + e_ll * y1**2),
            "u1": e_l * e_q * pi,
            "u2": e_l * e_q2 * pi + e_ll * (e_q * pi) ** 2,
        }

    def one(m: np.ndarray) -> dict[str, float]:
        r = moments(float(pop[m].sum()), float(pop[m] @ price[m]), float(pop[m] @ price[m] ** 2))
        return {k: float(v) for k, v in r.items()}

    out = {
        name: one(np.ones(pop.size, bool) if name == "all" else cat == name)
        for name in ["all", *sorted(set(cat))]
    }
    if isinstance(products, str) and products == "all":   # every product at once, as arrays
        out["products"] = moments(pop, pop * price, pop * price**2)
        return out
    for j in products:
        m = np.zeros(pop.size, bool)
        m[int(j) - 1] = True
        out[f"product:{int(j)}"] = one(m)
    return out


PRODUCT_NULL_COLUMNS = ("product_id", "category", "price", "tau", "v1", "v2", "u1", "u2")


def product_null_table(cfg: Any, catalogue: Any) -> ColTable:
    """truth/product_null: one row per product (1-based ``product_id`` as in products.csv) with
    its category, list price (no event acting) and the ``product:<id>`` moments of
    ``order_value_moments`` (tau, v1, v2, u1, u2), computed for all products at once."""
    m = order_value_moments(cfg, catalogue, products="all")["products"]
    cats = sorted(set(catalogue.category))
    code = np.searchsorted(np.array(cats, dtype=object), catalogue.category)
    return ColTable({
        "product_id": ints(np.arange(1, catalogue.size + 1)),
        "category": coded_strs(code, cats),
        "price": floats(np.asarray(catalogue.price, float)),
        **{k: floats(np.asarray(m[k], float)) for k in ("tau", "v1", "v2", "u1", "u2")},
    })


def _var(mean: np.ndarray, sq: np.ndarray, cv2: float, disp: float) -> np.ndarray:
    """Variance of a Poisson count mixed over a shared day factor (E[f²] = 1 + cv2) and independent
    cell factors (variance disp): mean + (1 + cv2)(mean² + disp·Σ cell mean²) − mean²."""
    return mean + (1.0 + cv2) * (mean**2 + disp * sq) - mean**2


def _mix_cv2(lam: np.ndarray, mu: np.ndarray, cv2: float, disp: float) -> np.ndarray:
    """The cell-mix variance of a slice's conversion, relative to its expected orders squared
    (``conversion_mix_cv2``). lam, mu: [D, cells] expected human sessions and kept orders. Given
    the slice's sessions s the null's orders are s·q (q = Σμ/Σλ), but each cell converts at its own
    q_i = μ_i/λ_i and its sessions move with its own factor G_i: the orders' departure from s·q is
    Σ (q_i − q)·H_i, of variance Σ (q_i − q)²·[λ_i + λ_i²·disp·(1 + cv2)] (H_i Poisson over D·G_i;
    the day factor D, shared, cancels: Σ (q_i − q)·λ_i = 0). 0 for a single cell."""
    with np.errstate(invalid="ignore", divide="ignore"):
        M_s, M_o = lam.sum(axis=1), mu.sum(axis=1)
        q_i = np.where(lam > 0, mu / lam, 0.0)
        dev2 = (q_i - (M_o / M_s)[:, None]) ** 2
        var = (dev2 * (lam + lam**2 * disp * (1.0 + cv2))).sum(axis=1)
        return np.where(M_o > 0, var / M_o**2, np.nan)


def baseline_table(
    days: np.ndarray,
    channels: tuple[str, ...],
    countries: tuple[str, ...],
    lam: np.ndarray,
    mu: np.ndarray,
    cfg: Any,
    catalogue: Any,
) -> ColTable:
    """Long baseline: one row per date × (dimension, segment) with expected KPIs and variances.

    lam, mu : [D, C, K] expected human sessions and expected kept (non-cancelled) orders per cell,
    with no shock acting (planned calendar and the lasting level of persistent events included).
    """
    cv_d2 = cfg.traffic.day_noise_cv**2
    cv_c2 = cfg.conversion.day_noise_cv**2
    disp = cfg.traffic.cell_dispersion
    mom = order_value_moments(cfg, catalogue)
    from .calendar import iso_dates

    date = iso_dates(days)
    n = len(date)
    frames = []

    def frame(
        dim: str,
        seg: str,
        sess: np.ndarray,
        sess_var: np.ndarray,
        orders: np.ndarray,
        orders_var: np.ndarray,
        m: dict[str, float],
        mix_cv2: np.ndarray,
    ) -> ColTable:
        tau = m["tau"]
        o, o_var = (
            orders * tau,
            tau * orders + tau**2 * (orders_var - orders),
        )  # thinned to touched orders
        with np.errstate(invalid="ignore", divide="ignore"):
            return ColTable(
                {
                    "date": coded_strs(np.arange(n), date),
                    "dimension": full(n, dim),
                    "segment": full(n, seg),
                    "sessions": floats(sess),
                    "orders": floats(o),
                    "revenue": floats(orders * m["v1"]),
                    "units": floats(orders * m["u1"]),
                    "conversion_rate": floats(np.where(sess > 0, o / sess, np.nan)),
                    "aov": floats(np.full(n, m["v1"] / tau)),
                    "sessions_var": floats(sess_var),
                    "orders_var": floats(o_var),
                    "revenue_var": floats(orders * m["v2"] + (orders_var - orders) * m["v1"] ** 2),
                    "units_var": floats(orders * m["u2"] + (orders_var - orders) * m["u1"] ** 2),
                    "aov_order_var": floats(np.full(n, m["v2"] / tau - (m["v1"] / tau) ** 2)),
                    "conversion_cv2": full(n, float(cv_c2)),
                    "conversion_mix_cv2": floats(mix_cv2),
                }
            )

    for dim, seg, mask in _slice_masks(channels, countries):
        lam_s, mu_s = lam[:, mask], mu[:, mask]
        M_s, M_o = lam_s.sum(axis=1), mu_s.sum(axis=1)
        frames.append(
            frame(
                dim,
                seg,
                M_s,
                _var(M_s, (lam_s**2).sum(axis=1), cv_d2, disp),
                M_o,
                _var(M_o, (mu_s**2).sum(axis=1), (1 + cv_d2) * (1 + cv_c2) - 1, disp),
                mom["all"],
                _mix_cv2(lam_s, mu_s, cv_d2, disp),
            )
        )
        if dim == "overall":
            nan = np.full(n, np.nan)
            o_var = _var(M_o, (mu_s**2).sum(axis=1), (1 + cv_d2) * (1 + cv_c2) - 1, disp)
            frames += [
                frame("category", c, nan, nan, M_o, o_var, mom[c], nan)
                for c in sorted(set(catalogue.category))
            ]
    out = ColTable.concat(frames)
    # by (dimension in NOISE_DIMENSIONS order, segment, date), ties in row order (stable)
    rank = {d: i for i, d in enumerate(NOISE_DIMENSIONS)}
    dim = out.cols["dimension"]
    dim_rank = np.array([rank.get(d, len(rank)) for d in dim.labels], dtype=np.int64)[dim.values]
    return out.take(np.lexsort((out.sort_key("date"), out.sort_key("segment"), dim_rank)))


def noise_params(cfg: Any) -> dict[str, Any]:
    """Global parameters of the null (truth/noise_model.json)."""
    return {
        "schema": NOISE_SCHEMA,
        "traffic_day_cv": cfg.traffic.day_noise_cv,
        "conversion_day_cv": cfg.conversion.day_noise_cv,
        "cell_dispersion": cfg.traffic.cell_dispersion,
        "families": {
            "sessions": "poisson-gamma (negative binomial by moments)",
            "orders": "poisson-gamma (negative binomial by moments)",
            "units": "compound (gamma by moments)",
            "revenue": "compound (gamma by moments; exact from truth/order_value_null on small "
            "sums)",
            "aov": "mean of n order values: var = aov_order_var / n (gamma by moments; exact from "
            "truth/order_value_null on small sums)",
            "conversion_rate": "orders given sessions s: mean s*q, "
            "var s*q + (s*q)^2 * (conversion_day_cv^2 + conversion_mix_cv2)",
        },
    }
