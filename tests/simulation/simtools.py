"""A tiny world (fast to simulate) and helpers shared by the simulation tests."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd

TINY = {
    "scenario": "tiny",
    "seed": 11,
    "period": {"start": "2025-01-01", "end": "2025-03-31"},
    "channels": {
        "organic": {"share": 0.6, "conversion": 0.03, "new_customer_share": 0.4},
        "email": {"share": 0.4, "conversion": 0.04, "new_customer_share": 0.1},
    },
    "countries": {"US": 0.6, "DE": 0.4},
    "traffic": {"base_sessions": 4000},
    "products": {"count": 40, "categories": {
        "gadgets": {"weight": 0.5, "price_median": 80.0},
        "books": {"weight": 0.5, "price_median": 15.0},
    }},
    "customers": {"initial": 800, "mean_lifetime_days": 200},
    "calendar": [{"name": "promo", "kind": "campaign", "dates": ["2025-03-03"], "duration_days": 2,
                  "traffic_uplift": 0.5}],
    "events": [
        {"type": "channel_outage", "start": "2025-02-10", "duration_days": 3, "drop_pct": 0.8,
         "scope": {"channel": "email"}},
        {"type": "flash_sale", "start": "2025-03-17", "duration_days": 2, "uplift": 0.6},
    ],
}


def tiny_config(**changes) -> dict:
    """A deep copy of the tiny scenario with top-level keys replaced."""
    raw = copy.deepcopy(TINY)
    raw.update(copy.deepcopy(changes))
    return raw


def read_dir(path: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_csv(p) for p in sorted(path.glob("*.csv"))}

