"""Session 42's audit of docs/ARCHITECTURE.md principle 3 ("bounds on every number"): the
oracle's `windows` took any integer (`--set 'detectors.oracle.windows=[-5]'` ran to exit 0 with a
-5-day window) and a per-window calibration any key (`window_calibration.-3.tail_gain=1.1` keyed
a calibration no window reads, silently)."""

from __future__ import annotations

import pytest

from analytics.config import load_analysis_config
from shocklab.errors import InputError


@pytest.mark.parametrize("override,where", [
    ("detectors.oracle.windows=[-5]", "detectors.oracle.windows[0]"),
    ("detectors.oracle.windows=[3, 0]", "detectors.oracle.windows[1]"),
    ("detectors.oracle.windows=[100000]", "detectors.oracle.windows[0]"),
    ("detectors.rolling_zscore.window_calibration.-3.tail_gain=1.1",
     "detectors.rolling_zscore.window_calibration[-3]"),
    ("detectors.rolling_zscore.share_calibration.0.tail_gain=1.1",
     "detectors.rolling_zscore.share_calibration[0]"),
    ("detectors.count_likelihood.window_calibration.0.tail_gain=1.1",
     "detectors.count_likelihood.window_calibration[0]"),
])
def test_a_window_out_of_bounds_is_refused_naming_it(override, where):
    with pytest.raises(InputError) as e:
        load_analysis_config(None, [override])
    msg = str(e.value)
    assert len(msg.splitlines()) == 1 and where in msg, msg


def test_windows_in_bounds_still_load():
    cfg = load_analysis_config(None, ["detectors.oracle.windows=[1, 10000]",
                                      "detectors.rolling_zscore.windows=[3, 7, 14]",
                                      "detectors.rolling_zscore.window_calibration.14.tail_gain=1.3"])
    assert cfg.detectors["oracle"].windows == [1, 10000]
    assert cfg.detectors["rolling_zscore"].window_calibration[14].tail_gain == 1.3
