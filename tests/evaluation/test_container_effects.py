"""bench/container_effects.py: a container's effect from its cell's share (numbers by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import container_effects  # noqa: E402


def test_a_high_converting_cell_going_dark_lowers_its_container_conversion():
    """The cell has 10 % of the country's sessions but 20 % of its orders (it converts twice as
    well). It loses 75 % of its sessions and orders, so its own conversion is flat. The country
    loses 7.5 % of its sessions and 15 % of its orders: its conversion falls by
    0.85 / 0.925 - 1 = -8.1 %."""
    cell = {"sessions": 100.0, "orders": 20.0, "revenue": 2000.0}
    country = {"sessions": 1000.0, "orders": 100.0, "revenue": 10000.0}
    eff = container_effects.container_effects(
        cell, country, {"sessions": -0.75, "orders": -0.75, "revenue": -0.75})
    assert eff["sessions"] == pytest.approx(-0.075)
    assert eff["orders"] == pytest.approx(-0.15)
    assert eff["conversion_rate"] == pytest.approx(0.85 / 0.925 - 1)
    assert eff["conversion_rate"] < -0.03            # a move strict scoring should credit
    assert eff["aov"] == pytest.approx(0.0)          # revenue and orders fall alike


def test_a_container_without_the_cell_moves_nothing():
    """An empty container share (0 shock-free sessions) gives no effect, not a division error."""
    eff = container_effects.container_effects(
        {"sessions": 0.0, "orders": 0.0, "revenue": 0.0},
        {"sessions": 0.0, "orders": 0.0, "revenue": 0.0},
        {"sessions": -0.5, "orders": -0.5, "revenue": -0.5})
    assert all(v == pytest.approx(0.0) for v in eff.values())
