"""Visibility magnitudes for random worlds (``world.magnitude.mode: visibility``): once the
shocks are placed, set each one's effect so that the exact null's z of the shock over its window on
its scoped slice reaches its drawn target, widening scopes too small to be barely visible even at
the largest effect (see ``world_sampler``'s docstring; the same expectations and variances as
truth/baseline_daily, ``noise_model.py``). Split from ``world_sampler`` so each stays one concern.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from shocklab.truth import scope_kind

from .events import get_event_type

if TYPE_CHECKING:
    from .world_sampler import WorldSpec

WINDOWS = (1, 3, 7)   # the oracle's windows when the worlds were defined (it scores 1/2/3/4/7 since
                      # the 21st session); kept so a seed keeps its world


def _store_null(seed: int, store: dict[str, Any], calendar: list[dict]) -> tuple[Any, Any, Any]:
    """(setup, long null table of every cell slice, order-value moments) of the store with its
    planned calendar and no shock: the same expectations and variances truth/baseline_daily
    gets (simulation/noise_model.py)."""
    from . import noise_model
    from .config import SimulationConfig
    from .draw import build_setup

    cfg = SimulationConfig.model_validate(
        {**store, "seed": seed, "calendar": calendar, "events": []}
    )
    setup = build_setup(cfg)
    lam = setup.lam0
    mu = lam * setup.conv0 * (1 - cfg.basket.cancel_rate)
    table = noise_model.baseline_table(setup.days, setup.grid.channels, setup.grid.countries,
                                       lam, mu, cfg, setup.catalogue).to_pandas()
    return setup, table, mu


def _scope_rows(table: Any, setup: Any, scope: dict[str, Any], products: dict) -> dict:
    """Daily null columns (arrays over the period) of the slice a scope names."""
    from shocklab.catalogue import PAIR_SEP

    if "product" in scope:
        ov = table[table["dimension"] == "overall"]
        m = products[f"product:{int(scope['product'])}"]
        o, o_var = ov["orders"].to_numpy(float), ov["orders_var"].to_numpy(float)
        tau = m["tau"]
        return {
            "sessions": np.full(o.size, np.nan),
            "sessions_var": np.full(o.size, np.nan),
            "orders": o * tau,
            "orders_var": tau * o + tau**2 * (o_var - o),
            "revenue": o * m["v1"],
            "revenue_var": o * m["v2"] + (o_var - o) * m["v1"] ** 2,
            "aov": np.full(o.size, m["v1"] / tau),
            "aov_order_var": np.full(o.size, m["v2"] / tau - (m["v1"] / tau) ** 2),
        }
    if "category" in scope:
        dim, seg = "category", scope["category"]
    elif "channel" in scope and "country" in scope:
        dim, seg = "channel_country", f"{scope['channel']}{PAIR_SEP}{scope['country']}"
    elif "channel" in scope or "country" in scope:
        dim = "channel" if "channel" in scope else "country"
        seg = scope[dim]
    else:
        dim, seg = "overall", "all"
    r = table[(table["dimension"] == dim) & (table["segment"] == seg)]
    cols = ("sessions", "sessions_var", "orders", "orders_var", "revenue", "revenue_var", "aov",
            "aov_order_var")
    return {c: r[c].to_numpy(float) for c in cols}


def _z_per_unit(kpi: str, rows: dict, shape: np.ndarray, t0: int, cv_c2: float) -> float:
    """Exact-null z of a unit relative effect (times ``shape`` per day from day ``t0``) on ``kpi``
    of a slice: the best over the oracle's windows ending inside the shock's window."""
    o = rows["orders"]
    if kpi == "conversion_rate":     # orders given the sessions
        mean, var = o, o + o**2 * cv_c2
    elif kpi == "aov":               # sum of the order values of n orders
        mean, var = o * rows["aov"], o * rows["aov_order_var"]
    else:
        mean, var = rows[kpi], rows[f"{kpi}_var"]
    n, best = shape.size, 0.0
    sig = np.zeros(mean.size)
    stop = min(t0 + n, mean.size)
    sig[t0:stop] = shape[: stop - t0] * mean[t0:stop]
    for w in WINDOWS:
        for end in range(t0, stop):
            lo = max(end - w + 1, 0)
            v = float(np.sum(var[lo:end + 1]))
            if v > 0 and np.isfinite(v):
                best = max(best, float(np.sum(sig[lo:end + 1])) / math.sqrt(v))
    return best if np.isfinite(best) else 0.0


def _shape(profile: str, n: int) -> np.ndarray:
    t = np.arange(n, dtype=float)
    if profile == "spike":
        return 0.5 ** (t / max(n / 3.0, 0.5))
    return (t + 1) / n if profile == "ramp" else np.ones(n)


def _realized(ev: dict[str, Any], effect: float, returning: float) -> tuple[str, float]:
    """(primary KPI, its relative in-scope change) of a shock drawn with target ``effect``."""
    etype = ev["type"]
    if etype == "level_shift":
        return ("sessions" if ev.get("lever") == "traffic" else "conversion_rate"), effect
    if etype == "pricing_error":   # price x (1 - e), quantity x (1 + boost e)
        b = float(ev.get("demand_boost", 0.0))
        return "aov", effect * (1 - b + b * effect)
    if etype == "churn_wave":      # only returning customers' orders fall
        return "revenue", effect * returning
    if etype == "stockout" and "product" in ev["scope"]:
        return "revenue", 1.0      # a product runs out completely (share_out 1)
    kpi = get_event_type(etype).primary_kpi
    return kpi, effect


def _wider(scope: dict[str, Any], setup: Any, table: Any) -> list[dict[str, Any]]:
    """Scopes containing ``scope``, narrowest first (a cell's larger dimension first)."""
    if "product" in scope:
        cat = str(setup.catalogue.category[int(scope["product"]) - 1])
        return [{"category": cat}, {}]
    if "channel" in scope and "country" in scope:
        ov = table[table["dimension"].isin(["channel", "country"])]
        size = {(d, s): float(v) for d, s, v in
                ov.groupby(["dimension", "segment"])["orders"].sum().reset_index().itertuples(
                    index=False)}
        one = sorted(({"channel": scope["channel"]}, {"country": scope["country"]}),
                     key=lambda sc: -size.get(next(iter(sc.items())), 0.0))
        return [*one, {}]
    return [{}] if scope else []


def _kind(scope: dict[str, Any]) -> str:
    """The world's name of a scope's kind (``all`` for no scope)."""
    kind = scope_kind(scope)
    return "all" if kind == "overall" else kind


def fit_visibility(
    spec: WorldSpec,
    seed: int,
    store: dict[str, Any],
    calendar: list[dict],
    events: list[dict[str, Any]],
    targets: list[tuple[float, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Set each placed shock's magnitude so its exact-null z reaches its target (module
    docstring of ``MagnitudeSpec``); the type's other draws are replayed unchanged."""
    setup, table, mu = _store_null(seed, store, calendar)
    cfg = setup.cfg
    cv_c2 = cfg.conversion.day_noise_cv ** 2
    products = tuple(
        sorted({int(e["scope"]["product"]) for e in events if "product" in e["scope"]})
    )
    from . import noise_model

    moments = noise_model.order_value_moments(cfg, setup.catalogue, products)
    returning = float(np.sum(mu.sum(axis=(0, 2)) * (1 - setup.new_share)) / max(mu.sum(), 1e-12))
    lo, hi = spec.effect
    z_lo = spec.magnitude.z[0]
    period0 = dt.date.fromisoformat(store["period"]["start"])
    out = []
    for ev, (z, state) in zip(events, targets, strict=True):
        cls = get_event_type(ev["type"])
        t0 = (dt.date.fromisoformat(ev["start"]) - period0).days
        shape = _shape(ev.get("profile", "step"), int(ev["duration_days"]))
        per_unit: dict[str, float] = {}

        def zof(sc: dict[str, Any], e: float, ev: dict[str, Any] = ev, t0: int = t0,
                shape: np.ndarray = shape, per_unit: dict[str, float] = per_unit) -> float:
            """z of the shock on scope ``sc`` with effect ``e`` (linear in the realized change)."""
            kpi, eff = _realized({**ev, "scope": sc}, e, returning)
            key = repr(sorted(sc.items()))
            if key not in per_unit:
                rows = _scope_rows(table, setup, sc, moments)
                per_unit[key] = _z_per_unit(kpi, rows, shape, t0, cv_c2)
            return eff * per_unit[key]

        scope = dict(ev["scope"])
        if zof(scope, hi) < z_lo:   # even the largest effect is not barely visible: widen
            for wider in _wider(scope, setup, table):
                if _kind(wider) in cls.allowed_scopes and _kind(wider) in spec.scope_kinds:
                    scope = wider
                    if zof(scope, hi) >= z_lo:
                        break
        # the effect whose z is the target (z grows with the effect), clipped to [lo, hi]
        a, b = lo, hi
        if zof(scope, a) >= z:
            effect = a
        elif zof(scope, b) <= z:
            effect = b
        else:
            for _ in range(40):
                mid = math.sqrt(a * b)
                a, b = (mid, b) if zof(scope, mid) < z else (a, mid)
            effect = math.sqrt(a * b)
        g = np.random.Generator(np.random.PCG64())
        g.bit_generator.state = state
        params = cls.world_params(g, effect, _kind(scope))
        out.append({"type": ev["type"], "duration_days": ev["duration_days"], "scope": scope,
                    **params, "start": ev["start"]})
    return out
