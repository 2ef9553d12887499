"""Analysis settings that did nothing (or silenced a detector) while the run said ok, exit 0:
each is now refused at load with one line naming the key and why (the config audit of session
46)."""

from __future__ import annotations

import pytest

from analytics.config import load_analysis_config
from shocklab.errors import InputError


def _refused(*overrides: str) -> str:
    with pytest.raises(InputError) as exc:
        load_analysis_config(None, list(overrides))
    text = str(exc.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", ["count_likelihood", "product_watch"])
@pytest.mark.parametrize("override, mp, window",
                         [("window=10", 14, 10), ("min_periods=60", 60, 28)])
def test_min_periods_beyond_the_window_is_refused(name, override, mp, window):
    # every score was 0 (a score needs min_periods days inside the trailing window)
    text = _refused(f"detectors.{name}.{override}")
    assert f"detectors.{name}: min_periods ({mp}) exceeds window ({window})" in text


@pytest.mark.parametrize("name", ["count_likelihood", "product_watch"])
def test_min_periods_equal_to_the_window_is_accepted(name):
    cfg = load_analysis_config(None, [f"detectors.{name}.window=14"])
    assert cfg.detectors[name].window == cfg.detectors[name].min_periods == 14
