"""Product watch: each watched product's orders against its share of its category, and its list
price against its own recent price (dimension ``product``; ``analytics/watch.py`` builds the
series). Size (~250 lines): one detector, its two tests, their windows and the overdispersion fit.

Why its own detector: a store has hundreds of products, so every product series costs false
alerts at the knob's rate, and a store-wide move (an outage, a campaign) moves every product at
once — judged on their own, products would flood the consensus with one incident per product for
every store event. Judged *given their category*, they stay quiet on everything that moves the
category as a whole (those are the category's and the store's incidents) and speak only when one
product departs from its siblings: a stockout (its orders collapse) or a pricing error (its list
price changes).

- **orders**: ``X`` = the product's orders over the last ``k`` days (1 and ``windows``), ``N``
  its category's orders over the same days, ``C`` / ``Nₚ`` the product's / category's orders over
  the ``window`` days before them. Given ``N``, ``X`` is Poisson with the product's share of the
  category; with the share estimated from ``C`` orders (a gamma posterior), ``X`` is negative
  binomial with mean ``E = C / Nₚ · N`` and variance ``E + E² / C`` — the predictive null,
  estimation error included — plus the product's own overdispersion ``φ E² / k`` (``φ`` fitted
  on its past 182 days of 1-day residuals, then twice more without the days beyond |score| 4
  under the previous fit: ~0 on Poisson demand
  like the simulator's, the day-to-day excess of real demand otherwise). The score is the
  signed normal score of the one-sided tail
  ``P(X <= x)`` (or ``P(X >= x)``); inclusive tails, so a discrete count never scores above its
  evidence. Conservative where a product is a large share of its category (given ``N`` the count
  is binomial, narrower than the Poisson by ``1 − share``): the knob is an upper bound there.
  ``orders_direction: down`` (shipped) keeps only collapses: a product's orders rising
  against its category is usually a sibling's stockout sending buyers over (substitution), or the
  product recovering after its own stockout (which lowered its trailing share).
- **price**: relative change of the day's list unit price from the median of the ``window`` days
  before, less its category's median change that day (categories with at least 3 priced products),
  over the robust spread of those changes in the ``price_window`` days before (1.4826 ×
  median |change|), floored at ``price_floor`` (a catalogue whose prices never move has zero
  spread: a 2.5 % repricing then scores 5 at the 0.5 % floor).

- **list-price indexes** (``watch.price_index``, kpi ``price`` on each category and on the store):
  1 + the median over the products sold that day of their price / catalogue price − 1, judged
  with the price test (nothing netted out): a category- or store-wide pricing error is one
  incident there, while the products' own price tests net it out.

Both are scores of a known null (the calibrator keeps them: ``prior`` 100 000 pseudo-scores of
scale 1), each window calibrated on its own and Bonferroni-combined (``base.combine_windows``).
The detector's own knob (``sensitivity``, 1e-3 expected false alerts per product series per 90
days, threshold 4.39) is far stricter than the store's, because products are many series.
Daily data only; without category exposure (no order lines) the orders test gives no score.
"""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from shocklab.catalogue import PRODUCT_DIMENSION

from .base import Detector, DetectorConfig, DetectorInput, check_min_periods, register
from .calibrate import CalibrationConfig, Wide, rolling, shift
from .count_likelihood import _signed, nbinom_terms

MIN_SIBLINGS = 3  # priced products of a category before its median change is taken out
PHI_TRIM = 4.0    # 1-day |score| beyond which a day stays out of the overdispersion fit
PHI_MAX = 1.0     # the overdispersion is never taken above this (a product that lumpy is noise)


class ProductWatchConfig(DetectorConfig):
    type: Literal["product_watch"] = "product_watch"
    sensitivity: float | None = Field(
        1e-3,
        gt=0,
        le=90,
        description="expected false alerts per product series per 90 days (products are many "
        "series: a store's knob of 0.1 over 300 products would be ~120 false alerts a year)",
    )
    window: int = Field(28, ge=7, le=10_000, description="days of the trailing share and price")
    min_periods: int = Field(
        14, ge=3, le=10_000, description="no score before this many days (at most `window`)"
    )
    windows: list[Annotated[int, Field(ge=1, le=10_000)]] = Field(
        default_factory=lambda: [3, 7],
        description="orders: sums over these many days besides 1 (a stockout of several days "
        "adds up), each against the share before the window",
    )
    phi_window: int = Field(
        182, ge=0, le=10_000,
        description="days of past 1-day residuals each product's overdispersion is fitted on "
        "(0: none, the Poisson share alone)",
    )
    orders_direction: Literal["down", "both"] = Field(
        "down", description="orders moves judged: down (collapses) | both"
    )
    price_window: int = Field(
        91, ge=7, le=10_000, description="days of past price changes the spread is measured on"
    )
    price_floor: float = Field(
        0.005, gt=0, le=1, description="the price spread is never below this relative change"
    )
    calibration: CalibrationConfig = Field(
        default_factory=lambda: CalibrationConfig(prior=100_000, tail_df=None),
        description="scores of a known null: kept as they are (the prior pins the scale at 1)",
    )

    @model_validator(mode="after")
    def _min_periods_within_window(self) -> ProductWatchConfig:
        check_min_periods(self)
        # the overdispersion and the price spread also need min_periods days in their windows:
        # shorter, φ stayed 0 (Poisson alone) or no price was ever scored, without a word
        for key, days in (("phi_window", self.phi_window), ("price_window", self.price_window)):
            if days and days < self.min_periods:
                none = ", 0 for no overdispersion," if key == "phi_window" else ""
                raise ValueError(f"{key} ({days}) is shorter than min_periods "
                                 f"({self.min_periods}): it would never hold enough days "
                                 f"(raise {key}{none} or lower min_periods)")
        return self


@register
class ProductWatch(Detector):
    type_name = "product_watch"
    config_class = ProductWatchConfig
    watches_products = True
    only_products = True   # product series and the list-price indexes, nothing else

    def _detect_core(self, series: pd.DataFrame, inp: DetectorInput) -> pd.DataFrame:
        cfg: ProductWatchConfig = self.config  # type: ignore[assignment]
        wide = self.wide(series)
        ks = [1, *sorted({k for k in cfg.windows if k > 1})]
        labels = [f"score@{k}" for k in ks[1:]]
        self.warnings_ = []
        value = wide.to(series["value"].to_numpy(dtype=float))
        kpis = np.array([k for k, _, _ in wide.keys])
        scores = {k: np.full(value.shape, np.nan) for k in ks}
        expected = np.full(value.shape, np.nan)
        if inp.periods_per_day != 1:
            self.warnings_.append("product_watch scores daily data only: no scores here")
        else:
            o = np.flatnonzero(kpis == "orders")
            parent = self._exposure(wide, inp, o)
            if o.size and parent is None:
                self.warnings_.append("product_watch: no category orders, orders not scored")
            elif o.size:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    x = value[:, o]
                    s1, e1, var1 = self._orders(x, parent, 1, cfg, None)
                    phi = s1_phi = None   # s1_phi: the φ s1 was scored with
                    if cfg.phi_window:  # untrimmed first (wide), then trimmed with its own null
                        phi = self._overdispersion(x, e1, var1, None, cfg)
                        for _ in range(2):
                            s1, s1_phi = self._orders(x, parent, 1, cfg, phi)[0], phi
                            phi = self._overdispersion(x, e1, var1, s1, cfg)
                    expected[:, o] = e1
                    # the last trim usually leaves φ as it was (the same days trimmed): then the
                    # 1-day score is s1, bit for bit (~1/6 of the detector's negative binomials)
                    same = (phi is None) if s1_phi is None else (
                        phi is not None and phi.tobytes() == s1_phi.tobytes())
                    for k in ks:
                        s = s1 if k == 1 and same else self._orders(x, parent, k, cfg, phi)[0]
                        scores[k][:, o] = (np.minimum(s, 0.0) if cfg.orders_direction == "down"
                                           else s)
            p = np.flatnonzero(kpis == "price")
            if p.size:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", RuntimeWarning)
                    scores[1][:, p], expected[:, p] = self._price(
                        value[:, p], self._parents(wide, inp, p), cfg)
        out = pd.DataFrame({"score": wide.back(scores[1]), "expected": wide.back(expected)},
                           index=series.index)
        for k, c in zip(ks[1:], labels, strict=True):
            out[c] = wide.back(scores[k])
        return out

    @staticmethod
    def _exposure(wide: Wide, inp: DetectorInput, cols: np.ndarray) -> np.ndarray | None:
        """[period, len(cols)] orders of each product's category (NaN where unknown)."""
        ex = inp.exposure
        if ex is None or not len(ex) or not cols.size:
            return None
        ex = ex[ex["dimension"] == PRODUCT_DIMENSION]
        pv = ex.pivot_table(index="date", columns="segment", values="parent_orders",
                            aggfunc="first")
        segs = [wide.keys[j][2] for j in cols]
        return pv.reindex(index=wide.grid, columns=segs).to_numpy(dtype=float)

    @staticmethod
    def _parents(wide: Wide, inp: DetectorInput, cols: np.ndarray) -> np.ndarray:
        """The category of each product column; a column of no product (a price index) or of an
        unknown one is its own group (nothing is netted out of it)."""
        ex = inp.exposure
        cat = (ex.drop_duplicates("segment").set_index("segment")["parent"]
               if ex is not None and len(ex) else pd.Series(dtype=object))
        return np.array([cat.get(seg, f"\x00{dim}\x00{seg}") if dim == PRODUCT_DIMENSION
                         else f"\x00{dim}\x00{seg}" for _, dim, seg in
                         (wide.keys[j] for j in cols)], dtype=object)

    @staticmethod
    def _orders(x: np.ndarray, n: np.ndarray, k: int, cfg: ProductWatchConfig,
                phi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(raw score of the sum of the last ``k`` days, its mean per day, its variance without
        overdispersion) — see the module doc; ``phi``: the product's extra-Poisson variance per
        unit of the squared daily mean (its days' factors are independent: ``φ E² / k`` for a
        sum of ``k`` days)."""
        ok = np.isfinite(x) & np.isfinite(n)
        zero = np.zeros((1, x.shape[1]))
        cx = np.vstack([zero, np.cumsum(np.where(ok, x, 0.0), axis=0)])
        cn = np.vstack([zero, np.cumsum(np.where(ok, n, 0.0), axis=0)])
        cd = np.vstack([zero, np.cumsum(ok, axis=0)])
        t = np.arange(len(x))
        s0 = t - k + 1                                  # first day of the window
        lo = s0 - cfg.window                            # first day of the share's past
        valid = lo >= 0
        s0c, loc = np.clip(s0, 0, None), np.clip(lo, 0, None)
        c_past = cx[s0c] - cx[loc]
        n_past = cn[s0c] - cn[loc]
        days = cd[s0c] - cd[loc]
        x_w = cx[t + 1] - cx[s0c]
        n_w = cn[t + 1] - cn[s0c]
        full = (cd[t + 1] - cd[s0c]) == k
        good = (valid[:, None] & full & (days >= cfg.min_periods) & (n_past > 0) & (c_past > 0)
                & ok)
        mean = np.where(good, c_past / np.where(n_past > 0, n_past, 1.0) * n_w, np.nan)
        good &= mean > 0
        c = np.where(good, c_past, 1.0)
        extra = 1.0 / c + (0.0 if phi is None else np.nan_to_num(phi) / k)  # var = E + extra E²
        r = 1.0 / extra
        prob = r / (r + np.where(good, mean, 1.0))
        xi = np.where(good, np.round(x_w), 0.0)
        pmf, sf, below = nbinom_terms(xi, r, prob)
        up, low = sf + pmf, below + pmf                 # P(X >= x), P(X <= x): inclusive
        s = np.where(good, _signed(up, low), np.nan)
        return s, mean / k, mean * (1.0 + mean / c)

    @staticmethod
    def _overdispersion(x: np.ndarray, mean: np.ndarray, var: np.ndarray,
                        s1: np.ndarray | None, cfg: ProductWatchConfig) -> np.ndarray:
        """Each product's φ from its own past 1-day residuals (``phi_window`` days before each
        day; days whose 1-day score ``s1`` under the previous fit is beyond ``PHI_TRIM`` left
        out, so a stockout does not widen its null; ``s1`` None: every day):
        the moment estimate Σ((x − E)² − Var₀) / Σ E², clipped to [0, ``PHI_MAX``]. Zero on
        Poisson demand (the simulator's), the day-to-day excess of a real product's demand
        otherwise."""
        ok = np.isfinite(x) & np.isfinite(mean)
        if s1 is not None:
            ok &= np.isfinite(s1) & (np.abs(s1) < PHI_TRIM)
        num = np.where(ok, (x - mean) ** 2 - var, 0.0)
        den = np.where(ok, mean**2, 0.0)
        zero = np.zeros((1, x.shape[1]))
        cn, cd, cc = (np.vstack([zero, np.cumsum(a, axis=0)]) for a in (num, den, ok))
        t = np.arange(len(x))
        lo = np.clip(t - cfg.phi_window, 0, None)
        n_days = cc[t] - cc[lo]                         # the days before t (t itself excluded)
        with np.errstate(all="ignore"):
            phi = (cn[t] - cn[lo]) / (cd[t] - cd[lo])
        return np.where(n_days >= cfg.min_periods, np.clip(phi, 0.0, PHI_MAX), 0.0)

    @staticmethod
    def _price(price: np.ndarray, parent: np.ndarray, cfg: ProductWatchConfig
               ) -> tuple[np.ndarray, np.ndarray]:
        """Raw score of the day's list price against the median of the days before, net of its
        category's median change that day (categories with at least ``MIN_SIBLINGS`` priced
        products): a category-wide repricing is the category's news, not each product's."""
        ref = shift(rolling(price, cfg.window, cfg.min_periods, "median"), 1)
        rel = price / ref - 1.0
        for c in np.unique(parent):
            cols = np.flatnonzero(parent == c)
            if cols.size < MIN_SIBLINGS:
                continue
            sub = rel[:, cols]
            many = np.isfinite(sub).sum(axis=1) >= MIN_SIBLINGS
            med = np.where(many, np.nanmedian(np.where(many[:, None], sub, 0.0), axis=1), 0.0)
            rel[:, cols] = sub - med[:, None]
        spread = 1.4826 * shift(rolling(np.abs(rel), cfg.price_window, cfg.min_periods,
                                        "median"), 1)
        spread = np.where(np.isfinite(spread), np.maximum(spread, cfg.price_floor), np.nan)
        return rel / spread, ref
