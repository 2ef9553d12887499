"""NAB scoring plumbing at its edges (evaluation.nab): where a detection lands, profile files.
Each test failed against a hand-made mutant that tests/evaluation/test_nab*.py let pass
(audit-mutcli)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.nab import detections_from_starts


def test_a_detection_at_the_last_row_is_kept_and_one_after_the_file_dropped():
    ts = pd.date_range("2025-01-01", periods=5, freq="h").to_numpy()
    out = detections_from_starts(ts, [ts[-1]])
    assert out.tolist() == [0, 0, 0, 0, 1]
    out = detections_from_starts(ts, [ts[0], ts[-1] + np.timedelta64(30, "m")])
    assert out.tolist() == [1, 0, 0, 0, 0]
    between = ts[1] + np.timedelta64(10, "m")     # the first row at or after it
    assert detections_from_starts(ts, [between]).tolist() == [0, 0, 1, 0, 0]


def test_a_profiles_file_gives_every_profile_as_numbers(tmp_path):
    """NAB's config/profiles.json: every profile's CostMatrix, not the first one only."""
    import json

    from evaluation.nab import STANDARD_PROFILES, load_profiles

    raw = {name: {"CostMatrix": {k: str(v) if k == "fpWeight" else v for k, v in cost.items()}}
           for name, cost in STANDARD_PROFILES.items()}
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(raw))
    assert load_profiles(path) == STANDARD_PROFILES
    assert load_profiles() == STANDARD_PROFILES and load_profiles() is not STANDARD_PROFILES


def test_series_metrics_are_skipped_on_a_file_of_several_series():
    """NAB / affiliation scores are per series: a file with two KPIs (or slices) says why it has
    none instead of scoring one grid of several series as one."""
    from types import SimpleNamespace

    from evaluation.ts_metrics import add_series_metrics

    ts = pd.date_range("2025-01-01", periods=4, freq="h").to_numpy()
    ctx = SimpleNamespace(data=SimpleNamespace(ingest={"series": 2, "_raw_times": ts,
                                                       "kpis": ["a", "b"]}),
                          scorecard={})
    add_series_metrics(ctx)
    assert "one series" in ctx.scorecard["series_metrics"]["skipped"]
