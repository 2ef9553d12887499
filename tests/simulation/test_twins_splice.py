"""Twins drawn on the days their levers differ from the actual's, spliced into the actual's orders
elsewhere, are the twins drawn over the whole period, array for array."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from simulation import engine
from simulation.config import load_simulation_config
from simulation.draw import Run, lever_days, splice_days
from simulation.twins import simulate_twins

ROOT = Path(__file__).resolve().parents[2]
ARRAYS = [f.name for f in fields(Run) if f.name not in ("customers", "o_customer", "o_first",
                                                        "_cubes")]


def _same(a: Run, b: Run) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        assert np.array_equal(x, y), name


@pytest.mark.parametrize("scenario", ["config/scenarios/small.yaml",
                                      "config/scenarios/random_world.yaml"])
def test_spliced_twins_equal_whole_twins(scenario):
    cfg, _ = load_simulation_config(ROOT / scenario)
    setup = engine.build_setup(cfg)
    events = engine.resolve_events(cfg)
    levers = engine.levers_for(setup, events)
    actual = engine.simulate_run(setup, levers, with_customers=True)
    whole = simulate_twins(setup, events)
    spliced = simulate_twins(setup, events, actual=(actual, levers))
    assert list(whole) == list(spliced)
    partial_days = []
    for key, run in whole.items():
        _same(spliced[key], run)
        acting = [e for e in events if e.id in key]
        partial_days.append(int(lever_days(engine.levers_for(setup, acting), levers).sum()))
    # the point: twins draw part of the period (and at least one day each)
    assert 0 < max(partial_days) < setup.shape[0]


def test_splice_on_no_day_and_every_day():
    cfg, _ = load_simulation_config(ROOT / "config/scenarios/small.yaml")
    setup = engine.build_setup(cfg)
    events = engine.resolve_events(cfg)
    levers = engine.levers_for(setup, events)
    actual = engine.simulate_run(setup, levers, with_customers=False)
    D = setup.shape[0]
    for days in (np.zeros(D, bool), np.ones(D, bool)):
        part = engine.simulate_run(setup, levers, False, days=days)
        _same(splice_days(actual, part, days), actual)
