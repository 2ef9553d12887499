"""Whether an episode's change stayed needs 4 weeks after it (plus a week to settle); nearer the
data's end it was never measured, so a rise in the data's last five weeks could not read as a
new level (TRAIN random world s11's channel level shift of 2026-01-18 read as a flash sale).
Now the longest of 3 or 2 weeks that fits is used (docs/history/insights.md, 2026-12-05)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import drivers as dr
from analytics.insights.diagnosis import lasting, persistence


def _panel(orders: np.ndarray) -> tuple[dr.SlicePanel, pd.DatetimeIndex]:
    stamps = pd.date_range("2025-01-01", periods=len(orders), freq="D")
    kd = pd.DataFrame({"date": stamps, "dimension": "overall", "segment": "all",
                       "orders": orders})
    return dr.SlicePanel(kd), stamps


def _orders(n: int, step_at: int, factor: float, back_at: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(11)
    x = 1000 * rng.normal(1, 0.02, n)
    x[step_at:back_at] *= factor
    return x


def test_a_rise_in_the_last_weeks_is_measured_and_reads_as_lasting():
    # 200 days, a +40 % level from day 170: the episode (days 170-176) ends 23 days before the end
    panel, t = _panel(_orders(200, 170, 1.4))
    share, z = persistence(panel, "orders", t[170], t[176], 40.0)
    assert share is not None and z is not None
    assert share > 0.8 and z > 3, (share, z)
    assert lasting((share, z), 7)


def test_a_spike_in_the_last_weeks_is_measured_and_does_not_read_as_lasting():
    panel, t = _panel(_orders(200, 170, 1.4, back_at=173))   # three days, then back
    share, z = persistence(panel, "orders", t[170], t[172], 40.0)
    assert share is not None and abs(share) < 0.2, (share, z)
    assert not lasting((share, z), 3)


def test_too_near_the_end_or_the_start_stays_unmeasured():
    panel, t = _panel(_orders(200, 185, 1.4))                # 2 weeks + a week do not fit
    assert persistence(panel, "orders", t[185], t[190], 40.0) == (None, None)
    panel, t = _panel(_orders(200, 20, 1.4))                 # fewer than 4 weeks before
    assert persistence(panel, "orders", t[20], t[25], 40.0) == (None, None)


def test_where_four_weeks_fit_the_figures_are_as_before():
    panel, t = _panel(_orders(200, 100, 1.4))
    share, z = persistence(panel, "orders", t[100], t[106], 40.0)
    x = _orders(200, 100, 1.4)
    pre, post = x[72:100].sum(), x[114:142].sum()      # 4 weeks before; 4 weeks from a week after
    assert abs(share - (post / pre - 1) * 100 / 40.0) < 1e-3
