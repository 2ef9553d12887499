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
                         [("window=10", 14, 10), ("min_periods=60", 60, None)])
def test_min_periods_beyond_the_window_is_refused(name, override, mp, window):
    # every score was 0 (a score needs min_periods days inside the trailing window); None: the
    # shipped window (count_likelihood's 21 days, product_watch's 28)
    if window is None:
        window = load_analysis_config(None).detectors[name].window
    text = _refused(f"detectors.{name}.{override}")
    assert f"detectors.{name}: min_periods ({mp}) exceeds window ({window})" in text


@pytest.mark.parametrize("name", ["count_likelihood", "product_watch"])
def test_min_periods_equal_to_the_window_is_accepted(name):
    cfg = load_analysis_config(None, [f"detectors.{name}.window=14"])
    assert cfg.detectors[name].window == cfg.detectors[name].min_periods == 14


@pytest.mark.parametrize("key, days", [("phi_window", 10), ("price_window", 7)])
def test_product_windows_shorter_than_min_periods_are_refused(key, days):
    # phi stayed 0 (Poisson alone) / no price spread, hence no price score, ever: exit 0 before
    text = _refused(f"detectors.product_watch.{key}={days}")
    assert f"detectors.product_watch: {key} ({days}) is shorter than min_periods (14)" in text
    cfg = load_analysis_config(None, ["detectors.product_watch.phi_window=0",
                                      "detectors.product_watch.price_window=14"])
    assert cfg.detectors["product_watch"].phi_window == 0   # none (documented) and equal: fine


@pytest.mark.parametrize("override, message", [
    ("detectors.product_watch.dimensions=[channel]",
     "detectors.product_watch.dimensions: 'channel' is not a dimension the product watcher "
     "judges (product, category, overall)"),
    ("detectors.product_watch.kpis=[revenue]",
     "detectors.product_watch.kpis: 'revenue' is not a series the product watcher judges "
     "(orders, price)"),
    ("detectors.rolling_zscore.window_calibration.5.tail_gain=2",
     "detectors.rolling_zscore.window_calibration.5: 5 is not one of its windows (3, 7)"),
])
def test_a_detector_list_naming_what_it_never_sees_is_refused(override, message):
    assert message in _refused(override)


@pytest.mark.parametrize("override", [
    "detectors.product_watch.kpis=[price]",          # one of the two series it watches
    "detectors.product_watch.dimensions=[overall]",  # the store's list-price index
    "dimensions=[overall]",             # prophet_residual (off) keeps its [overall, channel]
    "detectors.rolling_zscore.windows=[3]",          # the shipped 7-day calibration may stay
    "detectors.rolling_zscore.dimensions=[overal]",  # --kpis input: any dimension name
    "detectors.rolling_zscore.log_kpis=[latency_ms]",
])
def test_legitimate_detector_lists_are_accepted(override):
    load_analysis_config(None, [override])


@pytest.mark.parametrize("override, message", [
    ("detectors.rolling_zscore.dimensions=[foo]",
     "detectors.rolling_zscore.dimensions: 'foo' is not an analysed dimension (`dimensions`) "
     "(overall, channel, country, category, product): the detector would watch nothing there"),
    ("detectors.count_likelihood.dimensions=[channel_country]",   # a dimension, not analysed
     "detectors.count_likelihood.dimensions: 'channel_country' is not an analysed dimension"),
    ("detectors.rolling_zscore.log_kpis=[foo]",
     "detectors.rolling_zscore.log_kpis: 'foo' is not a KPI (sessions"),
])
def test_on_store_data_a_name_no_series_has_is_refused(override, message):
    from analytics.config_checks import check_store_names

    cfg = load_analysis_config(None, [override])
    with pytest.raises(InputError) as exc:
        check_store_names(cfg)
    assert message in str(exc.value)
    check_store_names(load_analysis_config(None, [override, "detectors.rolling_zscore.enabled="
                                                  "false", "detectors.count_likelihood.enabled="
                                                  "false"]))   # switched off: not checked


def test_product_watch_on_the_overall_dimension_judges_only_the_price_index():
    import numpy as np
    import pandas as pd

    from analytics.detectors import REGISTRY
    from analytics.detectors.base import DetectorInput

    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    rng = np.random.default_rng(0)
    rows = [pd.DataFrame({"date": dates, "kpi": kpi, "dimension": "overall", "segment": "all",
                          "value": base + rng.normal(0, 0.01 * base, len(dates))})
            for kpi, base in (("revenue", 1000.0), ("orders", 50.0), ("price", 1.0))]
    cls = REGISTRY["product_watch"]
    det = cls(cls.config_class(dimensions=["overall"]), name="pw")
    out = det.detect(DetectorInput(series=pd.concat(rows, ignore_index=True),
                                   price_indexes=True))
    assert set(out["kpi"]) == {"price"}   # not the store's revenue and orders as products


@pytest.mark.parametrize("override, where", [
    # under a day, daily data's walk-forward fits saw no period (base.fit_blocks: lo = s -
    # int(cap * ppd) = s): every forest score 0, ok, exit 0
    ("detectors.isolation_forest.max_train_days=0.5", "detectors.isolation_forest.max_train_days"),
    # two periods of past scores, never min_history of them: no series' own scale, silently
    ("detectors.rolling_zscore.calibration.window_days=0.01",
     "detectors.rolling_zscore.calibration.window_days"),
    ("detectors.count_likelihood.window_calibration.3.window_days=0.5",
     "detectors.count_likelihood.window_calibration[3].window_days"),
])
def test_a_training_or_calibration_span_under_a_day_is_refused(override, where):
    assert f"{where}: Input should be greater than or equal to 1" in _refused(override)


def test_one_day_of_training_still_loads():
    cfg = load_analysis_config(None, ["detectors.isolation_forest.max_train_days=1",
                                      "detectors.rolling_zscore.calibration.window_days=1"])
    assert cfg.detectors["isolation_forest"].max_train_days == 1


def test_an_alerts_jsonl_path_that_is_a_directory_is_refused(tmp_path):
    # a directory: exit 0, no alert written anywhere, only undelivered_to: [jsonl] in insights
    text = _refused(f"customers.alerts.jsonl_path={tmp_path}")
    assert f"customers.alerts.jsonl_path: '{tmp_path}' is a directory" in text
    (tmp_path / "afile").write_text("x")
    text = _refused(f"customers.alerts.jsonl_path={tmp_path / 'afile' / 'alerts.jsonl'}")
    assert f"'{tmp_path / 'afile'}' is a file, not a directory" in text
    cfg = load_analysis_config(None, [f"customers.alerts.jsonl_path={tmp_path}/new/a.jsonl"])
    assert cfg.customers.alerts.jsonl_path == f"{tmp_path}/new/a.jsonl"   # made when written


def test_an_alerts_jsonl_path_that_is_a_directory_is_exit_2_before_anything_is_written(
        tmp_path, capsys):
    from run_analysis import main

    from shocklab.cli import run_cli

    out = tmp_path / "run"
    assert run_cli(main, ["--data", str(tmp_path / "nodata"), "--out", str(out), "--quiet",
                          "--set", f"customers.alerts.jsonl_path={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "customers.alerts.jsonl_path" in err[0] and "is a directory" in err[0]
    assert not out.exists()
