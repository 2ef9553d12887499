"""truth/events.json ``container_effects``: the realized effect of a scoped event on each watched
slice that contains its scope (a channel x country scope's channel and country, a product scope's
category), checked against the data of the same world generated without the events (the
counterfactual twin shares every draw the events do not touch)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.simulation.simtools import tiny_config

from simulation.api import generate

FAILURE = {"type": "payment_failure", "start": "2025-02-10", "duration_days": 4,
           "failure_pct": 0.7, "scope": {"channel": "email", "country": "DE"}}
OUTAGE = {"type": "channel_outage", "start": "2025-03-10", "duration_days": 3, "drop_pct": 0.8,
          "scope": {"channel": "organic"}}
STOCKOUT = {"type": "stockout", "start": "2025-01-20", "duration_days": 5, "share_out": 1.0}


def _world(out: Path, events: list[dict]) -> Path:
    generate(tiny_config(events=events, calendar=[]), out)
    return out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory) -> tuple[Path, Path, int]:
    quiet = _world(tmp_path_factory.mktemp("quiet") / "d", [])
    top = int(pd.read_csv(quiet / "truth" / "product_null.csv")
              .sort_values("tau", ascending=False)["product_id"].iloc[0])
    shocked = _world(tmp_path_factory.mktemp("shocked") / "d",
                     [FAILURE, OUTAGE, {**STOCKOUT, "scope": {"product": top}}])
    return quiet, shocked, top


def _sums(d: Path, start: str, end: str, column: str | None = None, value: str | None = None,
          product_ids: set[int] | None = None) -> dict[str, float]:
    """Sessions, orders and revenue over [start, end] in the slice column == value (or the
    orders touching ``product_ids``)."""
    o = pd.read_csv(d / "orders.csv")
    o = o[(o["status"] != "cancelled") & o["order_date"].between(start, end)]
    t = pd.read_csv(d / "website_traffic.csv")
    t = t[t["date"].between(start, end)]
    if product_ids is not None:
        items = pd.read_csv(d / "order_items.csv")
        o = o[o["order_id"].isin(items.loc[items["product_id"].isin(product_ids), "order_id"])]
        return {"orders": float(len(o))}
    o, t = o[o[column] == value], t[t[column] == value]
    return {"sessions": float(t["sessions"].sum()), "orders": float(len(o)),
            "revenue": float(o["net_revenue"].sum())}


def _rel(a: float, b: float) -> float:
    return (a - b) / b


def test_channel_x_country_event_records_its_channel_and_country(worlds):
    quiet, shocked, _ = worlds
    events = json.loads((shocked / "truth" / "events.json").read_text())
    ev = next(e for e in events if e["type"] == "payment_failure")
    got = {(c["dimension"], c["segment"]): c["effects"] for c in ev["container_effects"]}
    assert set(got) == {("channel", "email"), ("country", "DE")}
    for (dim, seg), eff in got.items():
        a = _sums(shocked, ev["start"], ev["end"], dim, seg)
        b = _sums(quiet, ev["start"], ev["end"], dim, seg)
        assert eff["sessions"] == pytest.approx(_rel(a["sessions"], b["sessions"]), abs=1e-4)
        assert eff["orders"] == pytest.approx(_rel(a["orders"], b["orders"]), abs=1e-4)
        assert eff["revenue"] == pytest.approx(_rel(a["revenue"], b["revenue"]), abs=2e-4)
        # diluted: the container moves less than the cell, the same way
        assert ev["scope_effects"]["orders"] < eff["orders"] < -0.01
    # a channel scope has no container but the store; its record is empty
    assert next(e for e in events if e["type"] == "channel_outage")["container_effects"] == []


def test_product_event_records_its_category(worlds):
    quiet, shocked, top = worlds
    events = json.loads((shocked / "truth" / "events.json").read_text())
    ev = next(e for e in events if e["type"] == "stockout")
    products = pd.read_csv(quiet / "products.csv")
    cat = products.loc[products["product_id"] == top, "category"].item()
    [c] = ev["container_effects"]
    assert (c["dimension"], c["segment"]) == ("category", cat)
    ids = set(products.loc[products["category"] == cat, "product_id"])
    a = _sums(shocked, ev["start"], ev["end"], product_ids=ids)
    b = _sums(quiet, ev["start"], ev["end"], product_ids=ids)
    assert c["effects"]["orders"] == pytest.approx(_rel(a["orders"], b["orders"]), abs=1e-4)
    assert ev["scope_effects"]["orders"] == -1.0 < c["effects"]["orders"] < ev["effects"]["orders"]
