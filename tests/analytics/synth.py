"""Hand-made data directories with known answers for the detection tests.

``make_data_dir`` writes a small store (2 channels × 2 countries × 2 categories) following the
docs/ARCHITECTURE.md data contract: noise-free-ish weekly traffic, Poisson orders, and optional
shocks that scale one channel's orders on given days. truth/ records the shocks and the
noise-free baseline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

CHANNELS = {"organic": 600.0, "paid": 400.0}
COUNTRIES = {"DE": 0.6, "FR": 0.4}
CATEGORIES = {"books": 20.0, "games": 50.0}
CONVERSION = 0.03


@dataclass
class Shock:
    event_id: str
    start: int          # day index
    days: int
    factor: float       # multiplies orders (and sessions) of the channel
    channel: str | None = None
    type: str = "demand_shock"
    expected: bool = False


@dataclass
class Synth:
    n_days: int = 120
    start: str = "2025-01-01"
    seed: int = 1
    shocks: list[Shock] = field(default_factory=list)
    calendar_days: list[int] = field(default_factory=list)
    with_traffic: bool = True


def make_data_dir(out: Path, spec: Synth | None = None) -> Path:
    spec = spec or Synth()
    rng = np.random.default_rng(spec.seed)
    out = Path(out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    days = pd.date_range(spec.start, periods=spec.n_days, freq="D")
    weekly = np.array([1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 0.9])[days.day_of_week]
    products = pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4"],
            "name": ["a", "b", "c", "d"],
            "category": ["books", "books", "games", "games"],
            "unit_price": [10.0, 30.0, 40.0, 60.0],
            "unit_cost": [5.0, 15.0, 20.0, 30.0],
        }
    )
    traffic_rows, order_rows, item_rows, base_rows = [], [], [], []
    oid = 0
    for ch, level in CHANNELS.items():
        mult = np.ones(spec.n_days)
        for s in spec.shocks:
            if s.channel in (None, ch):
                mult[s.start:s.start + s.days] *= s.factor
        for co, w in COUNTRIES.items():
            expected_sessions = level * w * weekly
            sessions = np.round(expected_sessions * mult + rng.normal(0, 3, spec.n_days)).clip(1)
            n_orders = rng.poisson(sessions * CONVERSION)
            for d in range(spec.n_days):
                traffic_rows.append((days[d], ch, co, sessions[d]))
                for _ in range(n_orders[d]):
                    oid += 1
                    pid = rng.integers(0, 4)
                    qty = int(rng.integers(1, 3))
                    price = float(products.unit_price[pid])
                    cancelled = rng.random() < 0.05
                    net = qty * price
                    order_rows.append(
                        (
                            f"O{oid:06d}",
                            days[d] + pd.Timedelta(hours=12),
                            days[d],
                            f"C{rng.integers(0, 400):04d}",
                            ch,
                            co,
                            "cancelled" if cancelled else "completed",
                            1,
                            qty,
                            net,
                            0.0,
                            net,
                        )
                    )
                    item_rows.append((f"O{oid:06d}", products.product_id[pid], qty, price, 0.0))
            base_rows.append(
                pd.DataFrame(
                    {"date": days, "channel": ch, "orders": expected_sessions * CONVERSION}
                )
            )
    pd.DataFrame(traffic_rows, columns=["date", "channel", "country", "sessions"]).to_csv(
        out / "website_traffic.csv", index=False
    )
    orders = pd.DataFrame(
        order_rows,
        columns=[
            "order_id",
            "order_ts",
            "order_date",
            "customer_id",
            "channel",
            "country",
            "status",
            "items",
            "units",
            "gross_revenue",
            "discount",
            "net_revenue",
        ],
    )
    orders.to_csv(out / "orders.csv", index=False)
    pd.DataFrame(
        item_rows, columns=["order_id", "product_id", "quantity", "unit_price", "discount_pct"]
    ).to_csv(out / "order_items.csv", index=False)
    products.to_csv(out / "products.csv", index=False)
    cust = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(400)],
            "signup_date": spec.start,
            "country": "DE",
            "acquisition_channel": "organic",
        }
    )
    cust.to_csv(out / "customers.csv", index=False)
    cal = pd.DataFrame(
        {
            "date": [days[i] for i in spec.calendar_days],
            "name": "sale",
            "kind": "campaign",
            "scope": "all",
        }
    )
    cal.to_csv(out / "marketing_calendar.csv", index=False)
    if not spec.with_traffic:
        (out / "website_traffic.csv").unlink()
    base = pd.concat(base_rows).groupby(["date", "channel"], as_index=False)["orders"].sum()
    overall = base.groupby("date", as_index=False)["orders"].sum().assign(channel="all")
    pd.concat([overall, base])[["date", "channel", "orders"]].to_csv(
        out / "truth" / "baseline_daily.csv", index=False
    )
    events = [
        {
            "event_id": s.event_id,
            "type": s.type,
            "expected": s.expected,
            "start": days[s.start].date().isoformat(),
            "end": days[s.start + s.days - 1].date().isoformat(),
            "scope": {"channel": s.channel} if s.channel else {},
            "params": {"factor": s.factor},
            "effects": {"orders": s.factor - 1, "revenue": s.factor - 1, "sessions": s.factor - 1},
            "primary_kpi": "orders",
        }
        for s in spec.shocks
    ]
    (out / "truth" / "events.json").write_text(json.dumps(events, indent=1))
    (out / "manifest.json").write_text(json.dumps({"scenario": "synth", "seed": spec.seed}))
    return out
