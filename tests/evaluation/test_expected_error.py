"""bench/expected_error.py: the expected value's error split into its parts (synthetic errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

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


KEYS = [("orders", "overall", "all"), ("orders", "channel", "email"),
        ("orders", "channel", "paid")]


def test_event_regions_place_days_by_scope_kind_and_lasting_bands():
    """A transient event on the email channel: its days and the 30 after on email and the
    store, never on another channel (a paid-channel event falls inside them). A lasting
    store-wide one: its days, then the bands 5–14, 15–28, 29–56 days after its end (days 1–4
    after it are rest). A planned event is ignored; an event's own days win over another's
    after-days."""
    grid = pd.date_range("2024-01-01", periods=300, freq="D")
    day = {i: grid[i].strftime("%Y-%m-%d") for i in range(300)}
    events = [   # as truth/events.json writes them
        {"event_id": "E01", "start": day[50], "end": day[52], "scope": {"channel": "email"}},
        {"event_id": "E02", "start": day[100], "end": day[104], "scope": {}, "persistent": True},
        {"event_id": "E03", "start": day[60], "end": day[61], "scope": {"channel": "paid"}},
        {"event_id": "P01", "start": day[200], "end": day[210], "scope": {}, "expected": True},
    ]
    reg = expected_error.event_regions(grid, KEYS, events)
    names = np.array(expected_error.REGIONS)[reg]
    assert list(names[50:53, 1]) == ["event"] * 3 and names[50, 0] == "event"
    assert names[50, 2] == "rest"
    assert all(names[i, 1] == "after" for i in range(53, 83))
    assert names[83, 1] == "rest"
    # the paid event's own days on the store beat the email event's after-days there
    assert names[60, 2] == "event" and names[60, 0] == "event" and names[60, 1] == "after"
    assert all(names[i, 2] == "after" for i in range(62, 92))
    assert set(names[100:105].ravel()) == {"event"}
    assert set(names[105:109].ravel()) == {"rest"}
    assert set(names[109:119].ravel()) == {"lasting 5-14"}
    assert set(names[119:133].ravel()) == {"lasting 15-28"}
    assert set(names[133:161].ravel()) == {"lasting 29-56"}
    assert set(names[161:].ravel()) == {"rest"}               # the planned event: nothing


def test_region_error_reads_error_against_the_local_noise():
    """err is 0.5 noise sds on the 'after' days and 0 elsewhere: that region's error variance is
    0.25 and its bias +0.5, the rest 0. A series whose noise sd doubles halfway (a lasting step
    that halves it) with an error of one local sd throughout reads ~1 in both halves: the sd is
    local, not the series' whole-history one."""
    rng = np.random.default_rng(4)
    t = 400
    region = np.full((t, 2), len(expected_error.REGIONS) - 1, dtype=np.int8)
    region[150:180, 0] = expected_error.REGIONS.index("after")
    sd = np.c_[np.full(t, 0.05), np.r_[np.full(t // 2, 0.05), np.full(t // 2, 0.10)]]
    noise = sd * rng.standard_normal((t, 2))
    err = np.zeros((t, 2))
    err[150:180, 0] = 0.5 * 0.05
    one = expected_error.region_error(err[:, :1], noise[:, :1], region[:, :1]).set_index("region")
    assert one.loc["after", "days"] == 30
    assert abs(one.loc["after", "z2"] - 0.25) < 0.08 and abs(one.loc["after", "bias"] - 0.5) < 0.15
    assert one.loc["rest", "z2"] == 0 and one.loc["rest", "beyond_1_5"] == 0
    assert one.loc["event", "days"] == 0 and np.isnan(one.loc["event", "z2"])
    late = region[:, 1:].copy()
    late[t // 2:] = expected_error.REGIONS.index("lasting 29-56")
    two = expected_error.region_error(sd[:, 1:], noise[:, 1:], late).set_index("region")
    # a whole-history sd (~0.08) would read 0.4 before the step and 1.6 after it
    assert 0.7 < two.loc["rest", "z2"] < 1.4
    assert 0.7 < two.loc["lasting 29-56", "z2"] < 1.4
