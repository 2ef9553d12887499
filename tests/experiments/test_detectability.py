"""Detectability: settings built from event templates, monotone recall curves, MDE."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
from tests.experiments.exp_fakes import fake_cell

from experiments.config import Detectability, load_experiment
from experiments.detectability import detectability_settings, minimum_detectable_effect
from experiments.experiment import run

TARGET = {"event_type": "channel_outage", "magnitude_key": "params.drop_pct",
          "magnitudes": [0.02, 0.1, 0.3, 0.6], "durations": [1, 4],
          "events": [{"type": "channel_outage", "start": "2025-01-10", "duration_days": 2,
                      "params": {"drop_pct": 0.5}}]}


def test_settings_write_magnitude_and_duration_into_templates():
    det = Detectability(targets=[TARGET])
    settings = detectability_settings(det, {"events": [{"type": "flash_sale"}]})
    assert len(settings) == 8
    first = settings[0]
    assert first.params == {"event_type": "channel_outage", "duration_days": 1, "magnitude": 0.02}
    assert first.overrides == {
        "scenario.events": [
            {
                "type": "channel_outage",
                "start": "2025-01-10",
                "duration_days": 1,
                "params": {"drop_pct": 0.02},
            }
        ]
    }
    kept = detectability_settings(Detectability(targets=[TARGET], keep_scenario_events=True),
                                  {"events": [{"type": "flash_sale"}]})
    assert kept[0].overrides["scenario.events"][0] == {"type": "flash_sale"}


def test_mde_needs_recall_to_stay_above_the_bar():
    curve = pd.DataFrame({
        "event_type": "t", "duration_days": 1, "entity": ["a"] * 4 + ["b"] * 4,
        "magnitude": [0.1, 0.2, 0.3, 0.4] * 2,
        "recall": [0.85, 0.5, 0.9, 1.0,    # a lucky weak point does not count: MDE 0.3
                   0.1, 0.2, 0.5, 0.7]})   # never reaches 0.8
    mde = minimum_detectable_effect(curve, 0.8).set_index("entity")
    assert mde.loc["a", "mde"] == 0.3 and mde.loc["a", "recall_at_mde"] == 0.9
    assert math.isnan(mde.loc["b", "mde"]) and mde.loc["b", "max_recall"] == 0.7


def test_fake_detectability_recovers_monotone_recall(write_experiment, tmp_path):
    # an unquoted YAML date in a template must survive hashing and the overrides
    target = {**TARGET, "events": [{**TARGET["events"][0], "start": dt.date(2025, 1, 10)}]}
    exp = load_experiment(write_experiment(kind="detectability", seeds={"count": 4},
                                           detectability={"targets": [target]}))
    assert "start: 2025-01-10\n" in exp.path.read_text()
    out = run(exp, tmp_path / "out", executor="serial", cell_fn=fake_cell, progress=False)
    curve = out.detectability
    assert set(curve["entity"]) == {"consensus", "oracle", "fast", "slow"}
    for _, g in curve.groupby(["duration_days", "entity"]):
        assert np.all(np.diff(g["recall"].to_numpy()) >= 0), g
    mde = out.mde.set_index(["duration_days", "entity"])
    # the fast detector needs a smaller shock than the slow one; longer shocks are easier
    assert mde.loc[(1, "fast"), "mde"] < mde.loc[(1, "slow"), "mde"] or \
        math.isnan(mde.loc[(1, "slow"), "mde"])
    assert mde.loc[(4, "fast"), "mde"] <= mde.loc[(1, "fast"), "mde"]
    assert (tmp_path / "out" / "mde.csv").exists()
    assert sorted(p.name for p in (tmp_path / "out" / "plots").iterdir()) == [
        "detectability_channel_outage_1d.png", "detectability_channel_outage_4d.png"]
