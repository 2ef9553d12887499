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
