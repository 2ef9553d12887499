"""Detectability: settings built from event templates, monotone recall curves, MDE."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
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


@pytest.mark.parametrize(("change", "message"), [
    ({"magnitude_key": "duration_days", "magnitudes": [2.5], "durations": [1]},
     "magnitude_key: duration_days is set by durations: (duration_key duration_days), the swept "
     "durations written over the magnitudes; give the event's magnitude field (drop_pct for "
     "channel_outage)"),
    ({"magnitude_key": "params.drop_pct", "duration_key": "params.drop_pct"},
     "magnitude_key: params.drop_pct is set by durations: (duration_key params.drop_pct)"),
    ({"magnitude_key": "duration_days", "magnitudes": [2, 4], "durations": []},
     "magnitude_key: duration_days is the events' duration (duration_key), which durations: "
     "sweeps; give the event's magnitude field (drop_pct for channel_outage)"),
    ({"magnitude_key": "start"}, "magnitude_key: start is the event's start date, not its size; "
     "give the event's magnitude field (drop_pct for channel_outage)"),
    ({"magnitude_key": "scope.product"}, "magnitude_key: scope.product is the event's scope, not "
     "its size"),
    ({"magnitude_key": "type"}, "magnitude_key: type is the event's type, not its size"),
])
def test_a_magnitude_key_the_sweep_does_not_size_by_is_refused(write_experiment, tmp_path,
                                                               capsys, change, message):
    """magnitude_key: duration_days with durations: [1] wrote each magnitude into duration_days
    and then the duration over it: magnitude 2.5 was never simulated, and mde.csv gave 2.5 as
    the minimum detectable effect, exit 0. A key that says which event it is, where or when is
    refused in the same words, before any cell (the world's check named a date, not the key)."""
    from run_experiment import main

    from shocklab.cli import run_cli

    path = write_experiment(kind="detectability", detectability={"targets": [
        {**TARGET, **change}]})
    out = tmp_path / "out"
    rc = run_cli(main, ["--config", str(path), "--out", str(out), "--executor", "serial",
                        "--no-progress", "--no-plots", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: {path}: detectability.targets[0]: {message}"), err
    assert not out.exists()
    # the event's magnitude field, and another size of it, are swept as before
    for key in ("params.drop_pct", "params.conversion_drop"):
        exp = load_experiment(write_experiment(kind="detectability", detectability={
            "targets": [{**TARGET, "magnitude_key": key}]}))
        first = detectability_settings(exp.config.detectability, {})[0]
        assert first.overrides["scenario.events"][0]["duration_days"] == 1
        assert first.overrides["scenario.events"][0]["params"][key.split(".")[1]] == 0.02
