"""Sub-daily seasonal factors (NAB audit, session 44): each clock hour's factor is the median of its
readings (a few spikes in an hour no longer set it, and each reading counts once whichever day it
is in), and the switch from hour-of-day to hour-of-week factors flags nothing on unchanged data."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.detectors import DetectorInput, get_detector_class
from analytics.detectors.slots import slot_factor

PPD = 288  # 5-minute periods


def _frame(dates: pd.DatetimeIndex, value: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"date": dates, "kpi": "value", "dimension": "overall",
                         "segment": "all", "value": value})


def _zscore(series: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """rolling_zscore with the --kpis profile's options at NAB's knob (3)."""
    cls = get_detector_class("rolling_zscore")
    det = cls(cls.config_class(early_min=24, flat_floor=1.0), name="rolling_zscore")
    det.parts = {}
    out = det.detect(DetectorInput(series=series, periods_per_day=PPD, sensitivity=3.0))
    return out.assign(date=series["date"].to_numpy()).set_index("date"), det.parts


def _spiky(days: int = 21) -> tuple[pd.DataFrame, np.ndarray]:
    """Flat by hour (10 + N(0, 0.5)), and every day two readings of 03:xx spike to 110."""
    dates = pd.date_range("2024-04-01", periods=days * PPD, freq="5min")
    rng = np.random.default_rng(3)
    value = 10 + rng.normal(0, 0.5, len(dates))
    spike = np.zeros(len(dates), bool)
    for d in range(days):
        spike[d * PPD + 36 + rng.choice(12, 2, replace=False)] = True  # two of 03:00-03:55
    value[spike] = 110.0
    return _frame(dates, value), spike


def test_a_few_spikes_do_not_set_their_hours_factor():
    series, spike = _spiky()
    f = slot_factor(series["value"].to_numpy()[:, None], PPD, 8, start=series["date"].iloc[0])[:, 0]
    known = np.isfinite(f)
    assert known[2 * PPD:].all()  # from the third day on
    # every hour ~1, the spiked 03:00 hour too (the mean of its readings is 26.7, 2.7x the others)
    assert np.abs(f[known] - 1).max() < 0.05
    out, _ = _zscore(series)
    flag = out["flag"].to_numpy()
    late = np.arange(len(flag)) >= 2 * PPD  # once the factor exists
    assert flag[spike & late].all()  # the spikes are found
    # and the other rows are not read as drops (before: 191 flagged, 189 of them 'down': the
    # spiked hour's rows divided by its inflated factor)
    assert flag[~spike & late].sum() <= 2


def test_an_hours_factor_counts_readings_not_days():
    """Two earlier days: 05:xx has twelve readings of 10 on the first and one of 30 on the second;
    06:xx has no reading on the first day. Pooled readings: 05:xx's median is 10 (a day's mean of
    one reading counted as much as the other day's twelve: 20) and 06:xx has a factor."""
    dates = pd.date_range("2024-04-01", periods=3 * PPD, freq="5min")
    x = np.full(len(dates), 10.0)
    hour, day = dates.hour.to_numpy(), np.arange(len(dates)) // PPD
    x[(hour == 5) & (day == 1)] = np.nan
    x[np.flatnonzero((hour == 5) & (day == 1))[0]] = 30.0
    x[(hour == 6) & (day == 0)] = np.nan
    f = slot_factor(x[:, None], PPD, 8, start=dates[0])[:, 0]
    third = day == 2
    np.testing.assert_allclose(f[third], 1.0, rtol=1e-12)


def test_a_mostly_zero_series_is_not_adjusted():
    """Every hour's median 0 (1 % spikes on zeros): factor 1 once known, not NaN (the unadjusted
    early path's widened tail would let a spike ten times the usual height pass:
    tests/analytics/test_short_history.py)."""
    rng = np.random.default_rng(2)
    x = np.where(rng.random(PPD * 21) < 0.01, 20.0, 0.0)[:, None]
    f = slot_factor(x, PPD, 8, start=pd.Timestamp("2024-04-01"))[:, 0]
    assert np.isnan(f[: 2 * PPD]).all() and (f[2 * PPD:] == 1.0).all()


def _week_pattern(spike_at: pd.Timestamp | None = None):
    """5-minute data from a Wednesday 12:00: weekdays 100, weekends 70, flat within the day,
    N(0, 1); the hour-of-week factor takes over at the third week's first row."""
    dates = pd.date_range("2024-04-03 12:00", periods=21 * PPD, freq="5min")
    rng = np.random.default_rng(1)
    value = np.where(dates.day_of_week < 5, 100.0, 70.0) + rng.normal(0, 1, len(dates))
    if spike_at is not None:
        value[dates == spike_at] += 10.0
    return _frame(dates, value), dates[0] + pd.Timedelta("14D")


def test_the_switch_to_hour_of_week_factors_flags_nothing_unchanged():
    series, switch = _week_pattern()
    out, parts = _zscore(series)
    after = out.loc[switch: switch + pd.Timedelta("3h")]
    assert after["flag"].sum() == 0  # before: 11 of 37 rows flagged, scores down to -5.1
    assert after["score"].abs().max() < 3
    # the rows scored with the hour-of-week factor carry it; their reference before the switch
    # (Wednesday morning, a weekday) was divided by it too: centre ~ 100 / 1.094
    f = pd.Series(parts["factor"][:, 0], out.index)
    assert abs(f[switch] - 100 / ((5 * 100 + 2 * 70) / 7)) < 0.01
    centre = pd.Series(parts[1][1][:, 0], out.index)
    assert abs(centre[switch] - (5 * 100 + 2 * 70) / 7) < 1


def test_a_spike_at_the_switch_is_still_flagged():
    spike = pd.Timestamp("2024-04-17 12:30")  # half an hour after the switch
    series, switch = _week_pattern(spike)
    out, _ = _zscore(series)
    assert spike - switch == pd.Timedelta("30min")
    assert out.loc[spike, "flag"] and out.loc[spike, "score"] > 0
    window = out.loc[switch: switch + pd.Timedelta("3h")]
    assert window["flag"].sum() == 1


def test_scores_around_the_switch_stay_causal():
    """The reference of a row after the switch is divided by that week's hour-of-week factor;
    no row's score may depend on later data (the week before the switch included)."""
    series, switch = _week_pattern()
    cut = switch + pd.Timedelta("2h")
    later = series.copy()
    later.loc[later["date"] >= cut, "value"] *= 3.0
    a, _ = _zscore(series)
    b, _ = _zscore(later)
    pd.testing.assert_frame_equal(a.loc[: cut - pd.Timedelta("5min")],
                                  b.loc[: cut - pd.Timedelta("5min")])
