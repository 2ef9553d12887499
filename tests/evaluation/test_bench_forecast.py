"""bench/bench_forecast.py: the forecast against the held-out days of a generated world."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from tests.simulation.simtools import tiny_config

from simulation.api import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_forecast as bf  # noqa: E402


@pytest.mark.slow
def test_the_last_90_days_are_compared_with_both_methods(tmp_path, capsys):
    world = tmp_path / "r_tiny"
    generate(tiny_config(period={"start": "2025-01-01", "end": "2025-06-29"}, events=[]), world)
    rows = bf.world_rows(world)
    assert [r["method"] for r in rows] == ["shipped", "raw additive"]
    for r in rows:
        assert len(r["blocks_pct"].split()) == 3                   # 90 days in 30-day blocks
        assert 0 <= r["in_band"] <= 1 and 0 < r["mape_pct"] < 50   # a quiet world, weekly shape
    assert rows[0] != rows[1]
    assert bf.main([str(world)]) == 0
    assert "means over all worlds" in capsys.readouterr().out
    # a default-scenario directory (d…) is cut at 2025-12-31: this one has nothing after it
    (tmp_path / "d_tiny").symlink_to(world)
    with pytest.raises(SystemExit, match="fewer than 7 days after 2025-12-31"):
        bf.world_rows(tmp_path / "d_tiny")
    assert not logging.root.manager.disable   # main left logging as it found it
