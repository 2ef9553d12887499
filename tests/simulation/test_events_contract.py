"""One contract test over every registered event type: it validates, it moves its primary KPI in
its declared direction within its scope, it leaves the world outside its window alone, and its
truth record carries the DESIGN.md fields."""

from __future__ import annotations

import pytest
from tests.simulation.simtools import tiny_config

from simulation.api import simulate_config
from simulation.events import EVENT_TYPES

SCOPES = {"channel": {"channel": "email"}, "channel_country": {"channel": "email", "country": "US"},
          "country": {"country": "US"}, "category": {"category": "gadgets"}, "product": {"product": 1},
          "all": {}}
START = "2025-02-12"


def _scope_for(cls) -> dict:
    kind = cls.default_scope_kind if cls.default_scope_kind in cls.allowed_scopes else cls.allowed_scopes[0]
    return SCOPES[kind]


@pytest.fixture(scope="module", params=sorted(EVENT_TYPES))
def world_with(request):
    cls = EVENT_TYPES[request.param]
    event = {"type": request.param, "start": START, "scope": _scope_for(cls)}
    world = simulate_config(tiny_config(events=[event], calendar=[]))
    return request.param, cls, world


def test_registered_types_cover_the_issue():
    required = {"flash_sale", "site_outage", "payment_failure", "channel_outage", "bot_traffic",
                "pricing_error", "stockout", "level_shift", "churn_wave", "fraud_orders"}
    assert required <= set(EVENT_TYPES)


def test_truth_record_has_design_fields(world_with):
    name, cls, world = world_with
    (rec,) = [e for e in world.truth_events if not e["expected"]]
    assert rec["type"] == name and rec["event_id"] == "E01" and rec["start"] == START
    assert {"sessions", "orders", "revenue", "aov"} <= set(rec["effects"]) or cls.default_scope_kind in ("category", "product")
    assert rec["primary_kpi"] in ("sessions", "orders", "revenue", "aov", "conversion_rate")
    assert rec["params"][cls.magnitude_field] == getattr(world.events[0], cls.magnitude_field)


def test_primary_effect_has_declared_sign_in_scope(world_with):
    name, cls, world = world_with
    (rec,) = [e for e in world.truth_events if not e["expected"]]
    effects = rec["scope_effects"] if rec["scope"] else rec["effects"]
    kpi, direction = rec["primary_kpi"], rec["primary_direction"]
    if kpi not in effects:  # product-level scopes have no sessions: judge revenue instead
        kpi = "revenue"
    value = effects[kpi]
    assert abs(value) >= 0.05, f"{name}: {kpi} moved only {value:+.3f}"
    assert (value > 0) == (direction == "up"), f"{name}: {kpi} {value:+.3f}, declared {direction}"


def test_event_changes_nothing_before_it_starts(world_with):
    name, _, world = world_with
    import numpy as np

    D = world.setup.shape[0]
    a, t = world.actual.daily(D), world.twin.daily(D)
    s = (np.datetime64(START) - np.datetime64("2025-01-01")).astype(int)
    for kpi in ("sessions", "orders", "revenue"):
        np.testing.assert_allclose(a[kpi][:s], t[kpi][:s], err_msg=f"{name}: {kpi} changed before the event")
    assert any(not np.allclose(a[k][s:], t[k][s:]) for k in ("sessions", "orders", "revenue")), name
