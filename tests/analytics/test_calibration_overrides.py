"""A calibration mapping that names only some settings keeps the detector's shipped values for the
others (``DetectorConfig._calibration_onto_defaults``): a one-key ``--set`` used to reset the
fitted Student-t tail to a normal one, silently."""

from __future__ import annotations

import pytest

from analytics.config import load_analysis_config
from analytics.detectors.calibrate import CalibrationConfig
from analytics.detectors.rolling_zscore import RollingZScoreConfig
from shocklab.errors import InputError


def test_one_key_set_keeps_the_shipped_tail():
    shipped = load_analysis_config(None, []).detectors["rolling_zscore"].calibration
    assert shipped.tail_df == 13 and shipped.tail_gain == 1.11
    cal = load_analysis_config(
        None, ["detectors.rolling_zscore.calibration.tail_gain=1.2"]
    ).detectors["rolling_zscore"].calibration
    assert cal.tail_gain == 1.2
    assert cal.tail_df == 13                      # was None (a normal tail) before the fix
    assert cal.model_dump(exclude={"tail_gain"}) == shipped.model_dump(exclude={"tail_gain"})
    # an explicit null still means a normal tail
    cal = load_analysis_config(
        None, ["detectors.rolling_zscore.calibration.tail_df=null"]
    ).detectors["rolling_zscore"].calibration
    assert cal.tail_df is None and cal.tail_gain == 1.11


def test_per_window_maps_keep_the_windows_not_named():
    cfg = RollingZScoreConfig.model_validate(
        {"type": "rolling_zscore",
         "window_calibration": {"3": {"tail_gain": 2.0}, 14: {"tail_df": 5}}}
    )
    got = {k: (c.tail_df, c.tail_gain) for k, c in cfg.window_calibration.items()}
    assert got == {3: (10.0, 2.0), 7: (7.5, 1.4), 14: (5.0, 1.0)}
    # a full object is taken as given
    cfg = RollingZScoreConfig.model_validate(
        {"type": "rolling_zscore", "calibration": CalibrationConfig(tail_gain=2.0)}
    )
    assert cfg.calibration.tail_df is None and cfg.calibration.tail_gain == 2.0


def test_the_shipped_config_is_unchanged_by_the_merge():
    cfg = load_analysis_config(None, [])
    week = cfg.detectors["rolling_zscore_week"].calibration   # a full mapping in analysis.yaml
    assert (week.tail_df, week.tail_gain) == (7.5, 1.4)
    forest = cfg.detectors["isolation_forest"].calibration
    assert forest.tail_df is None and forest.tail_gain == 1.14


def test_a_mapping_for_a_list_setting_is_bad_input_not_a_crash():
    # the merge looks at every mapping given for a setting with a default factory: a list
    # default (log_kpis) must be left to validation (one clear error), not crash the merge
    with pytest.raises(InputError, match="log_kpis"):
        load_analysis_config(None, ["detectors.rolling_zscore.log_kpis={a: 1}"])
