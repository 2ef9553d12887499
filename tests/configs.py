"""Real analysis configs for tests (no stand-ins): ``make_config(**overrides)`` is the model's
defaults with nested overrides, validated like a YAML file (also the ``make_config`` fixture)."""

from __future__ import annotations

from typing import Any

from analytics.config import AnalysisConfig, config_from_raw


def make_config(**overrides: Any) -> AnalysisConfig:
    """``AnalysisConfig`` defaults plus ``overrides`` (top-level keys, nested mappings), e.g.
    ``make_config(seed=3, customers={"plots": False}, insights={"forecast": {"enabled": False}})``.
    """
    return config_from_raw(overrides, "make_config")
