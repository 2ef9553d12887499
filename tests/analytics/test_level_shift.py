"""level_shift: steps and variance changes flagged, isolated spikes not; causal; switched on for
--kpis input only (config section ``external.detectors``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.config import load_analysis_config
from analytics.detectors import DetectorInput
from analytics.detectors.level_shift import LevelShift, LevelShiftConfig
from analytics.external import external_profile

N = 288 * 6  # six days of 5-minute periods


def _series(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=len(values), freq="5min"),
            "kpi": "value",
            "dimension": "overall",
            "segment": "all",
            "value": values,
        }
    )


def _detect(values: np.ndarray, sensitivity: float = 1.0, **cfg) -> pd.DataFrame:
    det = LevelShift(LevelShiftConfig(enabled=True, **cfg))
    inp = DetectorInput(series=_series(values), periods_per_day=288, sensitivity=sensitivity)
    return det.detect(inp)


def _noise(seed: int = 0) -> np.ndarray:
    return 50 + np.random.default_rng(seed).normal(0, 1, N)


def test_step_is_flagged_soon_after_it_starts():
    x = _noise()
    at = 4 * 288
    x[at:] += 6  # six noise sigmas
    out = _detect(x)
    first = int(np.flatnonzero(out["flag"].to_numpy())[0])
    assert at <= first <= at + 6  # the recent median moves after window // 2 + 1 periods
    assert out["direction"].iloc[first] == "up"
    assert not out["flag"].iloc[: at].any()  # no false alarm on six days of plain noise


def test_isolated_spikes_are_not_a_shift():
    x = _noise(1)
    x[[800, 1000, 1003, 1300]] += 40  # spikes: one, two close together, one
    out = _detect(x)
    assert not out["flag"].any()


def test_variance_change_is_flagged():
    x = _noise(2)
    at = 4 * 288
    x[at:] = 50 + (x[at:] - 50) * 5  # same level, five times the spread
    assert _detect(x, 10.0)["flag"].iloc[at : at + 48].any()
    assert not _detect(x, 10.0)["flag"].iloc[: at].any()


def test_flat_stretch_then_step_stays_finite():
    x = np.r_[np.zeros(600), np.full(N - 600, 3.0)]
    out = _detect(x)
    assert np.isfinite(out["score"]).all()
    assert out["flag"].iloc[600:610].any()


def test_causal():
    x = _noise(3)
    y = x.copy()
    y[-100:] += 20
    a, b = _detect(x), _detect(y)
    np.testing.assert_array_equal(a["score"].iloc[:-100], b["score"].iloc[:-100])


def test_scores_from_the_first_hours_without_seasonal_adjustment():
    out = _detect(_noise(4))
    first = int(np.flatnonzero(out["score"].to_numpy() != 0)[0])
    assert first < 2 * (6 + 36)  # hours, not the two days of the hour-of-day factor
    adj = _detect(_noise(4), seasonal_adjust=True)
    assert (adj["score"].iloc[: 2 * 288] == 0).all()  # the hour-of-day factor needs two days


def test_external_detectors_only_on_kpis_profile():
    cfg = load_analysis_config(
        None, ["external.detectors={level_shift: {type: level_shift, window: 4}}"]
    )
    assert "level_shift" not in cfg.voting_detectors()  # store runs: untouched
    ext = external_profile(cfg, 300.0)
    assert "level_shift" in ext.voting_detectors()
    assert ext.detectors["level_shift"].window == 4
    assert ext.detectors["level_shift"].calibration.tail == cfg.external.tail
    off = load_analysis_config(
        None, ["external.detectors={level_shift: {type: level_shift, enabled: false}}"]
    )
    assert "level_shift" not in external_profile(off, 300.0).voting_detectors()


@pytest.mark.parametrize("bad", ["{level_shift: {type: level_shift, window: 0}}",
                                 "{x: {type: nosuch}}"])
def test_bad_external_detector_is_an_input_error(bad):
    from shocklab.errors import InputError

    with pytest.raises(InputError):
        load_analysis_config(None, [f"external.detectors={bad}"])


def test_daily_cycle_steps_are_not_shifts_after_the_first_day():
    x = _noise(5) + 10 * ((np.arange(N) % 288) >= 144)  # a square wave: one step up, one down a day
    on = _detect(x)["flag"].to_numpy()
    off = _detect(x, daily_reference=False)["flag"].to_numpy()
    assert on[2 * 288 :].sum() <= 3  # judged against the previous day too: a stray flag at most
    assert off[2 * 288 :].sum() > 100  # the adjacent reference alone reads every step as a shift


def test_external_solo_switch():
    cfg = load_analysis_config(None, ["consensus.solo_sensitivity=0.003"])
    assert external_profile(cfg, 300.0).consensus.solo_sensitivity == 0.003
    off = load_analysis_config(None, ["consensus.solo_sensitivity=0.003", "external.solo=false"])
    assert external_profile(off, 300.0).consensus.solo_sensitivity is None
    assert off.consensus.solo_sensitivity == 0.003  # store runs: untouched


def test_the_reference_ends_where_the_recent_window_starts_and_daily_data_has_no_daily_reference():
    """expected = the median of the ``reference`` periods before the ``window`` recent ones; on
    daily data ``daily_reference`` (a sub-daily rule) changes nothing."""
    x = _noise(5)
    series = _series(x)
    core = LevelShift(LevelShiftConfig(enabled=True))._detect_core(
        series, DetectorInput(series=series, periods_per_day=288))
    for t in (100, 1000):
        assert core["expected"].iloc[t] == np.median(x[t - 41:t - 5])
    daily = series.assign(date=pd.date_range("2024-01-01", periods=len(x), freq="D"))[:400]
    runs = [LevelShift(LevelShiftConfig(enabled=True, daily_reference=d))._detect_core(
        daily, DetectorInput(series=daily)) for d in (True, False)]
    pd.testing.assert_frame_equal(runs[0], runs[1])


def _week_pattern(step_at: pd.Timestamp | None = None) -> tuple[pd.DataFrame, pd.Timestamp]:
    """5-minute data from a Wednesday 12:00: weekdays 100, weekends 70, flat within the day,
    N(0, 1); the hour-of-week factor takes over at the third week's first row."""
    dates = pd.date_range("2024-04-03 12:00", periods=21 * 288, freq="5min")
    rng = np.random.default_rng(1)
    value = np.where(dates.day_of_week < 5, 100.0, 70.0) + rng.normal(0, 1, len(dates))
    if step_at is not None:
        value[dates >= step_at] *= 1.3
    frame = _series(value).assign(date=dates)
    return frame, dates[0] + pd.Timedelta("14D")


def test_seasonal_adjust_switching_to_hour_of_week_factors_flags_nothing_unchanged():
    """The hour-of-day factor (over the mean day) gives way to the hour-of-week one (over the
    week's mean) at the third week: two scales. Dividing each row's windows by its own row's
    factor put both in one reference (21 of the 73 rows of the next 6 h flagged, raw level down
    to -7.9, on data that never changes); each row is now scored on its own factor's scale."""
    frame, switch = _week_pattern()
    det = LevelShift(LevelShiftConfig(enabled=True, seasonal_adjust=True))
    out = det.detect(DetectorInput(series=frame, periods_per_day=288, sensitivity=3.0))
    out.index = frame["date"]
    after = out.loc[switch: switch + pd.Timedelta("6h")]
    assert after["flag"].sum() == 0
    # a real step after the switch is still found, within the hours after it
    step = switch + pd.Timedelta("1D")
    frame, _ = _week_pattern(step)
    out = det.detect(DetectorInput(series=frame, periods_per_day=288, sensitivity=3.0))
    out.index = frame["date"]
    assert out.loc[step: step + pd.Timedelta("2h"), "flag"].any()
    assert not out.loc[switch: switch + pd.Timedelta("6h"), "flag"].any()
