"""bench/bench_forecast.py: the forecast against the held-out days of a generated world."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import pytest
from tests.simulation.simtools import tiny_config

from shocklab.errors import InputError
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
    # a folder named d… is no default-scenario world: cut 90 days before its end as any other
    (tmp_path / "d_tiny").symlink_to(world)
    assert bf.world_rows(tmp_path / "d_tiny")[0]["total_pct"] == rows[0]["total_pct"]
    # a world of the default scenario (its manifest says so) is cut at 2025-12-31, the
    # scenario's own end: this one has nothing after it
    copy = tmp_path / "other_name"
    shutil.copytree(world, copy)
    man = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**man, "scenario": "default"}))
    with pytest.raises(InputError, match="fewer than 7 days after 2025-12-31"):
        bf.world_rows(copy)
    assert not logging.root.manager.disable   # main left logging as it found it
