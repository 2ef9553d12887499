"""Product catalogue: categories, log-normal list prices, Zipf-like popularity within categories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shocklab.seeding import rng

from .coltable import ColTable, floats, strs
from .config import PRICE_Z, SimulationConfig
from .rand import mix64


@dataclass(frozen=True)
class Catalogue:
    table: ColTable            # product_id, name, category, unit_price, unit_cost
    category: np.ndarray       # [P] category name
    price: np.ndarray          # [P] list price
    popularity: np.ndarray     # [P] purchase probability of a line (sums to 1)
    key: np.ndarray            # [P] uint64 stable hash per product

    @property
    def size(self) -> int:
        return len(self.price)


def _allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer counts proportional to weights, at least 1 each (largest remainder)."""
    w = weights / weights.sum()
    base = np.maximum(1, np.floor(w * total).astype(int))
    while base.sum() > total:
        base[np.argmax(base)] -= 1
    rem = w * total - base
    for i in np.argsort(-rem, kind="stable")[: total - base.sum()]:
        base[i] += 1
    return base


def build_catalogue(cfg: SimulationConfig) -> Catalogue:
    g = rng(cfg.seed, "products")
    names = list(cfg.products.categories)
    specs = [cfg.products.categories[n] for n in names]
    counts = _allocate(cfg.products.count, np.array([s.weight for s in specs]))
    category = np.repeat(np.array(names, dtype=object), counts)
    median = np.repeat([s.price_median for s in specs], counts)
    sigma = np.repeat([s.price_sigma for s in specs], counts)
    cost_ratio = np.repeat([s.cost_ratio for s in specs], counts)
    # z clipped to +-PRICE_Z (P ~ 2e-9 a product): the dearest price the config bounds, for every
    # seed (config.MAX_LIST_PRICE)
    z = g.standard_normal(len(category)).clip(-PRICE_Z, PRICE_Z)
    price = np.round(median * np.exp(sigma * z), 2).clip(0.5)
    # Popularity: Zipf over a random rank within each category, scaled by the category weight.
    popularity = np.empty(len(category))
    start = 0
    for spec, n in zip(specs, counts, strict=True):
        ranks = g.permutation(n) + 1
        z = 1.0 / ranks ** cfg.products.zipf_exponent
        popularity[start:start + n] = spec.weight * z / z.sum()
        start += n
    popularity /= popularity.sum()
    number = np.arange(1, len(category) + 1)
    ids = np.array([f"P{i:05d}" for i in number])
    table = ColTable(
        {
            "product_id": strs(ids),
            "name": strs([
                f"{c.replace('_', ' ').title()} item {i}"
                for c, i in zip(category, number, strict=True)
            ]),
            "category": strs(category.astype(str)),
            "unit_price": floats(price),
            "unit_cost": floats(np.round(price * cost_ratio, 2)),
        }
    )
    # the product in Python ints, wrapped as uint64 would wrap it: the same keys, without numpy's
    # "overflow in scalar multiply" warning on stderr for seeds above ~1.8e13 (even --quiet)
    base = np.uint64((cfg.seed & 0xFFFFFFFFFFFF) * 1_000_003 % 2**64)
    key = mix64(base + number.astype(np.uint64))
    return Catalogue(
        table=table, category=category.astype(str), price=price, popularity=popularity, key=key
    )
