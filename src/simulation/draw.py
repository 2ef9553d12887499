"""Drawing one world: the fixed noise and uniforms every twin shares (``Setup``), the levers of a
set of events, and traffic → orders → baskets → customers for one lever set (``Run``).

Shapes: D days, C channels, K countries, P products. Cell = (day, channel, country).

Randomness (see rand.py): cell-level noise comes from fixed-shape Generator draws and count
variables are sampled by inverse CDF from fixed uniforms, so a cell whose levers did not move has
exactly the same sessions and orders in every twin; per-order and per-line draws are hashes of the
cell key and the order's index, so the k-th order of a cell has the same basket in every twin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shocklab.catalogue import ORDER_STATUSES
from shocklab.seeding import rng

from . import calendar as cal
from . import customers as cu
from .config import SimulationConfig
from .events import EventBase, Grid, Levers
from .products import Catalogue, build_catalogue
from .rand import binom_ppf, child_keys, geometric_extra, poisson_ppf, search_right, uniforms

KIND_NEW, KIND_RETURNING, KIND_FRAUD = 0, 1, 2
STATUS = np.array(ORDER_STATUSES)
# Fraudulent orders: bulk buys of expensive goods, often caught and cancelled.
FRAUD_EXTRA_ITEMS, FRAUD_EXTRA_QTY, FRAUD_CANCEL, FRAUD_SESSIONS_PER_ORDER = 1.0, 1.0, 0.35, 3.0


@dataclass
class Setup:
    """Everything that is the same in every twin of one world."""

    cfg: SimulationConfig
    days: np.ndarray            # [D] datetime64[D]
    grid: Grid
    catalogue: Catalogue
    lam0: np.ndarray            # [D, C, K] expected human sessions (planned calendar included)
    conv0: np.ndarray           # [D, C, K] expected conversion
    new_share: np.ndarray       # [C]
    noise_traffic: np.ndarray   # [D, C, K] Gamma day × cell multiplier (mean 1)
    noise_conv: np.ndarray      # [D] Gamma day multiplier of conversion (mean 1)
    u: dict[str, np.ndarray]    # fixed uniforms [D, C, K] per count variable
    cell_key: np.ndarray        # [D, C, K] uint64
    initial: cu.CustomerArrays

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.lam0.shape


@dataclass
class Run:
    """One simulated world (actual or a twin)."""

    sessions: np.ndarray        # [D, C, K] incl. bots
    # orders, one entry per order, in (day, second, key) order
    o_day: np.ndarray
    o_channel: np.ndarray
    o_country: np.ndarray
    o_kind: np.ndarray
    o_key: np.ndarray
    o_sec: np.ndarray
    o_status: np.ndarray        # index into STATUS
    o_items: np.ndarray
    o_units: np.ndarray
    o_gross: np.ndarray
    o_discount: np.ndarray
    o_net: np.ndarray
    # lines
    l_order: np.ndarray         # index into the order arrays
    l_product: np.ndarray       # 0-based product index
    l_qty: np.ndarray
    l_price: np.ndarray
    l_disc: np.ndarray
    customers: cu.CustomerArrays | None = None
    o_customer: np.ndarray | None = None  # index into customers
    o_first: np.ndarray | None = None     # order placed by a first-time customer

    _cubes: dict[str, np.ndarray] | None = None

    def cubes(self) -> dict[str, np.ndarray]:
        """Non-cancelled orders, revenue and units per (day, channel, country) cell, computed
        once."""
        if self._cubes is None:
            shape = self.sessions.shape
            kept = self.o_status != 1
            flat = np.ravel_multi_index(
                (self.o_day[kept], self.o_channel[kept], self.o_country[kept]), shape
            )
            n = int(np.prod(shape))
            self._cubes = {
                "orders": np.bincount(flat, minlength=n).reshape(shape).astype(float),
                "revenue": np.bincount(flat, weights=self.o_net[kept], minlength=n).reshape(shape),
                "units": np.bincount(flat, weights=self.o_units[kept], minlength=n).reshape(shape),
            }
        return self._cubes

    def daily(
        self,
        n_days: int,
        cell_mask: np.ndarray | None = None,
        product_mask: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Daily KPI sums [D] over the whole store, a (channel, country) cell mask [C, K], or the
        lines of a product mask [P] (then sessions are not defined, and ``list_value`` is the
        lines' quantity × charged unit price before the line discount: list value / units is
        the price per unit sold)."""
        if product_mask is not None:
            kept = self.o_status != 1
            lmask = product_mask[self.l_product] & kept[self.l_order]
            lday = self.o_day[self.l_order][lmask]
            value = np.round(self.l_qty[lmask] * self.l_price[lmask] * (1 - self.l_disc[lmask]), 2)
            touched = np.bincount(self.l_order[lmask], minlength=self.o_day.size) > 0
            return {
                "sessions": np.full(n_days, np.nan),
                "orders": np.bincount(self.o_day[touched], minlength=n_days).astype(float),
                "revenue": np.bincount(lday, weights=value, minlength=n_days),
                "units": np.bincount(lday, weights=self.l_qty[lmask], minlength=n_days),
                "list_value": np.bincount(
                    lday, weights=self.l_qty[lmask] * self.l_price[lmask], minlength=n_days
                ),
            }
        m = np.ones(self.sessions.shape[1:], bool) if cell_mask is None else cell_mask
        out = {"sessions": (self.sessions * m[None]).sum(axis=(1, 2)).astype(float)}
        out.update({k: (v * m[None]).sum(axis=(1, 2)) for k, v in self.cubes().items()})
        return out


# ---------------------------------------------------------------------------------------------
# setup


def build_setup(cfg: SimulationConfig) -> Setup:
    days = cal.dates(cfg)
    D, C, K = len(days), len(cfg.channels), len(cfg.countries)
    catalogue = build_catalogue(cfg)
    grid = Grid(
        start=cfg.period.start,
        n_days=D,
        channels=tuple(cfg.channels),
        countries=tuple(cfg.countries),
        product_category=catalogue.category,
        product_key=catalogue.key,
    )
    ch = list(cfg.channels.values())
    share = np.array([c.share for c in ch])
    share = share / share.sum()
    cw = np.array(list(cfg.countries.values()), float)
    cw = cw / cw.sum()
    cal_traffic, cal_conv = cal.calendar_multipliers(cfg, D)
    lam0 = (
        cfg.traffic.base_sessions
        * cal.traffic_profile(cfg, days)[:, None, None]
        * (share[None, :, None] * cw[None, None, :])
        * cal_traffic[:, :, None]
    )
    conv0 = (
        np.array([c.conversion for c in ch])[None, :, None]
        * cal.conversion_profile(cfg, days)[:, None, None]
        * cal_conv[:, :, None]
    ) * np.ones((1, 1, K))
    g = rng(cfg.seed, "traffic.noise")
    day_cv, cell_disp = cfg.traffic.day_noise_cv, cfg.traffic.cell_dispersion
    day_noise = g.gamma(1 / day_cv**2, day_cv**2, size=D) if day_cv > 0 else np.ones(D)
    cell_noise = (
        g.gamma(1 / cell_disp, cell_disp, size=(D, C, K)) if cell_disp > 0 else np.ones((D, C, K))
    )
    gc = rng(cfg.seed, "conversion.noise")
    ccv = cfg.conversion.day_noise_cv
    noise_conv = gc.gamma(1 / ccv**2, ccv**2, size=D) if ccv > 0 else np.ones(D)
    u = {
        name: rng(cfg.seed, f"counts.{name}").random((D, C, K))
        for name in ("sessions", "bots", "new", "returning", "fraud")
    }
    cell_key = (
        rng(cfg.seed, "orders.cell_keys")
        .integers(0, np.iinfo(np.int64).max, size=(D, C, K), dtype=np.int64)
        .astype(np.uint64)
    )
    return Setup(
        cfg=cfg,
        days=days,
        grid=grid,
        catalogue=catalogue,
        lam0=lam0,
        conv0=conv0,
        new_share=np.array([c.new_customer_share for c in ch]),
        noise_traffic=day_noise[:, None, None] * cell_noise,
        noise_conv=noise_conv,
        u=u,
        cell_key=cell_key,
        initial=cu.initial_customers(cfg),
    )


def levers_for(setup: Setup, events: list[EventBase]) -> Levers:
    D, C, K = setup.shape
    lv = Levers.neutral(D, C, K, setup.catalogue.size)
    for ev in events:
        ev.apply(lv, setup.grid)
    return lv


# ---------------------------------------------------------------------------------------------
# one world


def _expand(counts: np.ndarray, cell_key: np.ndarray, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat cell index and per-order key for ``counts`` [D, C, K] orders of one kind."""
    n = counts.ravel().astype(np.int64)
    cell = np.repeat(np.arange(n.size), n)
    first = np.cumsum(n) - n
    idx = np.arange(cell.size) - np.repeat(first, n)
    return cell, cu.child_keys(cell_key.ravel()[cell], idx, salt=0x0D + kind)


def _counts(setup: Setup, levers: Levers, sub: slice | np.ndarray) -> tuple[np.ndarray, ...]:
    """Sessions (bots and fraud included) and new, returning and fraudulent order counts of the
    cells of the days ``sub`` (a slice or a [D] mask)."""
    u, lam0, conv0 = setup.u, setup.lam0[sub], setup.conv0[sub]
    lam = lam0 * setup.noise_traffic[sub] * levers.traffic[sub]
    human = poisson_ppf(u["sessions"][sub], lam).astype(np.int64)
    bots = poisson_ppf(u["bots"][sub], lam0 * levers.bot_pct[sub]).astype(np.int64)
    p = np.clip(conv0 * setup.noise_conv[sub][:, None, None] * levers.conversion[sub], 0, 0.9)
    n_new = binom_ppf(u["new"][sub], human, p * setup.new_share[None, :, None]).astype(np.int64)
    n_ret = binom_ppf(
        u["returning"][sub],
        human,
        np.clip(p * (1 - setup.new_share[None, :, None]) * levers.returning[sub], 0, 1),
    ).astype(np.int64)
    # one order per human session at most: the two binomials are drawn apart (so the returning
    # lever moves only returning orders), and near the 0.9 clip their sum could pass the sessions
    np.minimum(n_ret, human - n_new, out=n_ret)
    n_fraud = poisson_ppf(u["fraud"][sub], lam0 * conv0 * levers.fraud_pct[sub]).astype(np.int64)
    sessions = human + bots + np.rint(n_fraud * FRAUD_SESSIONS_PER_ORDER).astype(np.int64)
    return sessions, n_new, n_ret, n_fraud


def simulate_run(setup: Setup, levers: Levers, with_customers: bool,
                 on_orders: Callable[[Run], None] | None = None,
                 days: np.ndarray | None = None) -> Run:
    """One world for ``levers``. ``on_orders(run)``: called once orders and lines exist, before
    customers are attached (``simulation.io`` starts writing order_items there). ``days`` [D]
    bool: sessions and orders on those days only (zero elsewhere); each is what the whole run
    has, since a day's draws depend on that day's levers only (``splice_days``)."""
    cfg, cat = setup.cfg, setup.catalogue
    D, C, K = setup.shape
    b = cfg.basket

    # --- traffic and order counts per cell (inverse CDF on fixed uniforms) ---
    if days is None:
        sessions, n_new, n_ret, n_fraud = _counts(setup, levers, slice(None))
    else:   # the days drawn only (elementwise draws: the same values); zero elsewhere
        sel = np.asarray(days, bool)
        sessions, n_new, n_ret, n_fraud = (np.zeros((D, C, K), np.int64) for _ in range(4))
        for full, part in zip((sessions, n_new, n_ret, n_fraud), _counts(setup, levers, sel),
                              strict=True):
            full[sel] = part

    parts = [
        (_expand(n, setup.cell_key, kind), kind)
        for kind, n in ((KIND_NEW, n_new), (KIND_RETURNING, n_ret), (KIND_FRAUD, n_fraud))
    ]
    cell = np.concatenate([p_[0][0] for p_ in parts])
    key = np.concatenate([p_[0][1] for p_ in parts])
    kind = np.concatenate([np.full(p_[0][0].size, p_[1], np.int8) for p_ in parts])
    day, rest = np.divmod(cell, C * K)
    channel, country = np.divmod(rest, K)
    fraud = kind == KIND_FRAUD

    # --- per-order draws ---
    hour_cdf = np.cumsum(b.hour_profile) / np.sum(b.hour_profile)
    hour = np.minimum(search_right(hour_cdf, uniforms(key, 0)), 23)
    sec = hour * 3600 + np.floor(uniforms(key, 1) * 3600).astype(np.int64)
    n_items = 1 + geometric_extra(
        uniforms(key, 2), np.where(fraud, b.items_mean - 1 + FRAUD_EXTRA_ITEMS, b.items_mean - 1)
    )
    us = uniforms(key, 3)
    cancel = np.where(fraud, FRAUD_CANCEL, b.cancel_rate)
    status = np.where(us < cancel, 1, np.where(us < cancel + b.return_rate, 2, 0)).astype(np.int8)
    disc_cdf = np.cumsum(b.discount_probs) / np.sum(b.discount_probs)
    level = np.asarray(b.discount_levels)[
        np.minimum(search_right(disc_cdf, uniforms(key, 4)), len(disc_cdf) - 1)
    ]
    order_disc = np.where(fraud, 0.0, level) + levers.discount_add.ravel()[cell]
    del us, cancel, level   # large worlds: temporaries go as soon as they are used (memory peak)

    # --- lines ---
    line_order = np.repeat(np.arange(key.size), n_items)
    line_idx = np.arange(line_order.size) - np.repeat(np.cumsum(n_items) - n_items, n_items)
    lkey = child_keys(key[line_order], line_idx, salt=0x11E)
    del line_idx
    pop_cdf = np.cumsum(cat.popularity)
    fraud_w = cat.popularity * cat.price  # fraudsters favour expensive goods
    fraud_cdf = np.cumsum(fraud_w) / fraud_w.sum()
    lu = uniforms(lkey, 0)
    lfraud = fraud[line_order]
    product = search_right(pop_cdf / pop_cdf[-1], lu)
    if lfraud.any():
        product[lfraud] = search_right(fraud_cdf, lu[lfraud])
    product = np.minimum(product, cat.size - 1)
    lday = day[line_order]
    in_stock = levers.stock[lday, product] > 0
    qty_mean = np.where(
        lfraud,
        b.quantity_mean - 1 + FRAUD_EXTRA_QTY,
        (b.quantity_mean - 1) * levers.quantity[lday, product],
    )
    qty = 1 + geometric_extra(uniforms(lkey, 1), qty_mean)
    del lkey, lu, lfraud, qty_mean
    price = np.round(cat.price[product] * levers.price[lday, product], 2)
    disc = np.round(np.clip(order_disc[line_order], 0.0, 0.9), 2)
    del lday

    # stockouts: lines of unavailable products vanish; orders with no line left are lost sales
    line_order, product, qty, price, disc = (
        a[in_stock] for a in (line_order, product, qty, price, disc)
    )
    kept_lines = np.bincount(line_order, minlength=key.size)
    keep = kept_lines > 0
    line_gross = np.round(qty * price, 2)
    line_discount = np.round(line_gross * disc, 2)
    gross = np.bincount(line_order, weights=line_gross, minlength=key.size)
    discount = np.bincount(line_order, weights=line_discount, minlength=key.size)
    units = np.bincount(line_order, weights=qty, minlength=key.size).astype(np.int64)
    del in_stock, line_gross, line_discount

    # chronological order of the kept orders: by (day, second), ties in generation order (cell,
    # kind, index in cell), which is the same in every twin
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(day[idx] * 86_400 + sec[idx], kind="stable")]
    # lines of one order are contiguous: gather the blocks in the new order (no sort needed)
    block_start = np.cumsum(kept_lines) - kept_lines
    lens = kept_lines[idx]
    lo = np.repeat(block_start[idx] - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
    run = Run(
        sessions=sessions,
        o_day=day[idx],
        o_channel=channel[idx],
        o_country=country[idx],
        o_kind=kind[idx],
        o_key=key[idx],
        o_sec=sec[idx],
        o_status=status[idx],
        o_items=kept_lines[idx],
        o_units=units[idx],
        o_gross=np.round(gross[idx], 2),
        o_discount=np.round(discount[idx], 2),
        o_net=np.round(gross[idx] - discount[idx], 2),
        l_order=np.repeat(np.arange(idx.size), lens),
        l_product=product[lo],
        l_qty=qty[lo],
        l_price=price[lo],
        l_disc=disc[lo],
    )
    if on_orders is not None:
        on_orders(run)
    if with_customers:
        _attach_customers(setup, levers, run)
    return run


def lever_days(a: Levers, b: Levers) -> np.ndarray:
    """[D] bool: the days on which two lever sets differ in anything an order depends on (the
    churn actions act on customers only)."""
    out = np.zeros(a.traffic.shape[0], bool)
    for name in ("traffic", "bot_pct", "conversion", "returning", "discount_add", "fraud_pct",
                 "price", "quantity", "stock"):
        x, y = getattr(a, name), getattr(b, name)
        out |= (x != y).reshape(x.shape[0], -1).any(axis=1)
    return out


_ORDER_FIELDS = ("o_day", "o_channel", "o_country", "o_kind", "o_key", "o_sec", "o_status",
                 "o_items", "o_units", "o_gross", "o_discount", "o_net")
_LINE_FIELDS = ("l_product", "l_qty", "l_price", "l_disc")


def splice_days(base: Run, part: Run, days: np.ndarray) -> Run:
    """The run whose sessions and orders are ``part``'s on ``days`` and ``base``'s elsewhere
    (``part``: ``simulate_run(..., days=days)``), in the whole run's order: orders are sorted
    by day first, so the result is slices of the two, a run of days at a time (copies, no
    gather). Customers are not carried over."""
    D = days.size
    bounds = np.flatnonzero(np.diff(days.astype(np.int8))) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [D]]).tolist()
    pieces = []   # (run, first order, end order) per run of days
    for d0, d1 in zip(starts, ends, strict=True):
        src = part if days[d0] else base
        lo, hi = np.searchsorted(src.o_day, [d0, d1]).tolist()
        if hi > lo:
            pieces.append((src, lo, hi))
    line_start = {id(r): np.concatenate([[0], np.cumsum(r.o_items)]) for r in (base, part)}
    out: dict[str, list[np.ndarray]] = {f: [] for f in (*_ORDER_FIELDS, "l_order",
                                                         *_LINE_FIELDS)}
    n = 0
    for src, lo, hi in pieces:
        for f in _ORDER_FIELDS:
            out[f].append(getattr(src, f)[lo:hi])
        l0, l1 = line_start[id(src)][[lo, hi]].tolist()
        out["l_order"].append(src.l_order[l0:l1] + (n - lo))
        for f in _LINE_FIELDS:
            out[f].append(getattr(src, f)[l0:l1])
        n += hi - lo

    def joined(f: str) -> np.ndarray:
        like = getattr(base, f)
        return np.concatenate(out[f]) if out[f] else like[:0].copy()

    sessions = base.sessions.copy()
    sessions[days] = part.sessions[days]
    return Run(sessions=sessions, **{f: joined(f) for f in out})


def _attach_customers(setup: Setup, levers: Levers, run: Run) -> None:
    cfg = setup.cfg
    first = run.o_kind != KIND_RETURNING
    ret = np.flatnonzero(~first)
    # customers created by first-time orders, in chronological order; seq = rank within the day
    fi = np.flatnonzero(first)
    new = cu.new_customers(
        cfg,
        run.o_day[fi],
        cu._rank_within(run.o_day[fi]),
        run.o_country[fi],
        run.o_channel[fi],
        run.o_key[fi],
        run.o_kind[fi] == KIND_FRAUD,
    )
    pool = cu.concat(setup.initial, new)
    cu.apply_churn_waves(pool, levers.churn)
    who = np.full(run.o_day.size, -1, np.int64)
    who[fi] = setup.initial.signup_day.size + np.arange(fi.size)
    who[ret] = cu.assign_returning(pool, run.o_day[ret], run.o_country[ret], run.o_key[ret])
    orphan = np.flatnonzero(who < 0)
    if orphan.size:
        # No living customer in the country (tiny or young populations): the order becomes a
        # first order of a new customer, appended after the pool so earlier ids are unaffected.
        extra = cu.new_customers(
            cfg,
            run.o_day[orphan],
            np.zeros(orphan.size, np.int64),
            run.o_country[orphan],
            run.o_channel[orphan],
            run.o_key[orphan],
            np.zeros(orphan.size, bool),
        )
        who[orphan] = pool.signup_day.size + np.arange(orphan.size)
        pool = cu.concat(pool, extra)
        first = first.copy()
        first[orphan] = True
        # orders are chronological, so orphan days are sorted; their seq starts after ORPHAN_SEQ
        pool.seq[-orphan.size :] = cu.ORPHAN_SEQ + cu._rank_within(run.o_day[orphan])
    run.customers, run.o_customer, run.o_first = pool, who, first
