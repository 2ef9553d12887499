"""bench/expected_error.py: the expected value's error split into its parts (synthetic errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import expected_error  # noqa: E402

T, S = 700, 8


def _weekday() -> np.ndarray:
    return np.arange(T) % 7


def test_split_finds_a_shared_slow_error_as_common_and_noise_as_rest():
    """Every series shares a slow swing (sd 0.03 / √2); each adds its own day-to-day noise (sd
    0.02). The swing is the level's common part, the noise the rest; the idiosyncratic level is
    only the noise's 28-day mean. Days that are not quiet (a shock's 1.0) are left out."""
    rng = np.random.default_rng(3)
    t = np.arange(T)
    swing = 0.03 * np.sin(2 * np.pi * t / 180)
    err = swing[:, None] + 0.02 * rng.standard_normal((T, S))
    quiet = np.ones(T, bool)
    quiet[300:340] = False
    err[300:340] = 1.0
    tab = expected_error.split_error(err, quiet, np.array(["orders"] * S), _weekday())
    row = tab.iloc[0]
    assert row["series"] == S
    assert abs(row["common"] - 0.03 / np.sqrt(2)) < 0.003
    assert row["idiosyncratic"] < 0.006          # 0.02 / √28 ≈ 0.004
    assert abs(row["rest"] - 0.02) < 0.002
    assert row["weekday"] < 0.003
    assert row["total"] < 0.05                    # the non-quiet 1.0s are not in it


def test_split_sees_a_weekday_pattern_and_keeps_kpis_apart():
    """A weekday-shaped error (±0.02) on one KPI's series is the weekday part there, not on
    another KPI's series with none."""
    rng = np.random.default_rng(4)
    pattern = np.array([0.02, -0.02, 0.02, -0.02, 0.02, -0.02, 0.0])
    err = 0.005 * rng.standard_normal((T, 2 * S))
    err[:, :S] += pattern[_weekday()][:, None]
    kpis = np.array(["sessions"] * S + ["aov"] * S)
    tab = expected_error.split_error(err, np.ones(T, bool), kpis, _weekday()).set_index("kpi")
    assert tab.loc["sessions", "weekday"] > 0.015
    assert tab.loc["aov", "weekday"] < 0.003


def test_season_fit_reads_a_lag_as_a_negative_slope_coefficient():
    """An error that is -6 days of the truth's own slope (a level lagging a season) is read back
    as coefficient ≈ -6 with a small residual; an error unrelated to the season is not."""
    t = np.arange(T)
    log_truth = 0.25 * np.sin(2 * np.pi * t / 365)
    slope = np.gradient(log_truth)
    rng = np.random.default_rng(5)
    coef, resid, esd = expected_error.season_fit(-6 * slope + 0.001 * rng.standard_normal(T),
                                                 np.exp(log_truth))
    assert abs(coef[1] + 6) < 0.5 and resid < 0.2 * esd
    coef, resid, esd = expected_error.season_fit(0.02 * rng.standard_normal(T),
                                                 np.exp(log_truth))
    assert resid > 0.9 * esd


def test_split_of_too_few_quiet_days_is_an_empty_table_with_its_columns():
    """A world whose events leave fewer than 2 × 28 quiet days gives no row, not a frame without
    columns (the report skips it)."""
    quiet = np.zeros(T, bool)
    quiet[:40] = True
    tab = expected_error.split_error(np.zeros((T, 2)), quiet, np.array(["orders"] * 2),
                                     _weekday())
    assert tab.empty and {"kpi", "common", "total"} <= set(tab.columns)
