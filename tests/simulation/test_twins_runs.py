"""The counterfactual twins engine.simulate draws with twins.simulate_twins (handed to
unexpected_truth as ``runs``) are the runs unexpected_truth draws by itself."""

from __future__ import annotations

import numpy as np
from tests.simulation.simtools import tiny_config

from simulation import engine
from simulation.config import build_config
from simulation.twins import unexpected_truth


def test_simulated_twins_equal_the_ones_unexpected_truth_draws():
    cfg = build_config(tiny_config(), "<tiny>")
    world = engine.simulate(cfg)
    truth, runs = unexpected_truth(world.setup, world.events, world.actual)
    assert [t.model_dump() for t in truth] == [
        t.model_dump() for t in world.truth if not t.expected]
    assert len(runs) == world.runs - 1 and frozenset() in runs
    for name in ("sessions", "o_day", "o_key", "o_net", "l_product", "l_qty"):
        assert np.array_equal(getattr(runs[frozenset()], name), getattr(world.twin, name))


def test_a_twin_keeps_the_events_acting_on_any_day_of_its_window():
    """An event's twin keeps every other event active on a day of its window, the boundary days
    included: B starting on A's last day is in A's twin (else A's truth takes B's effect on that
    day), C ending the day before A starts is not. Only clear overlaps were tested: a strict
    comparison that dropped B (mutant S32) passed."""
    from simulation.twins import _twin_of

    events = [
        {"type": "site_outage", "id": "A", "start": "2025-02-10", "duration_days": 3},
        {"type": "payment_failure", "id": "B", "start": "2025-02-12", "duration_days": 2},
        {"type": "bot_traffic", "id": "C", "start": "2025-02-07", "duration_days": 3},
        {"type": "flash_sale", "id": "D", "start": "2025-02-13", "duration_days": 2},
    ]
    cfg = build_config(tiny_config(events=events, calendar=[]), "<tiny>")
    setup = engine.build_setup(cfg)
    twins = _twin_of(setup, engine.resolve_events(cfg))
    assert twins["A"] == {"B"} and twins["B"] == {"A", "D"} and twins["C"] == set()
