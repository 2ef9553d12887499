"""The CI gate audit of the forty-fifth session: a baseline written with ``3.0`` where the
experiment says ``3`` is compared (it was left out without a word), what a baseline cannot
compare is exit 2 before any cell runs, the detail's two means are over the seeds compared, a
per-metric ``max_drop`` may name a ``--gate`` metric, and ``>1`` on a recall is exit 2."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pandas as pd
import pytest
from tests.experiments.test_gate import BOOT, results
from tests.experiments.test_hostile_37 import _cli, _run

from experiments.config import load_experiment
from experiments.gate import align_baseline, check_baseline
from shocklab.errors import InputError


def _with_overrides(df: pd.DataFrame, overrides: dict) -> pd.DataFrame:
    return df.assign(overrides=json.dumps(overrides, sort_keys=True))


def test_a_baseline_setting_written_with_3_0_is_the_experiments_3():
    base = _with_overrides(results([0.9, 0.8, 0.95], setting="s_old"), {"threshold": 3.0})
    cur = {"s_new": {"threshold": 3}, "s_other": {"threshold": 5}}
    got = align_baseline(base, cur)
    assert set(got["setting_id"]) == {"s_new"}
    res = check_baseline(results([0.9, 0.8, 0.95], setting="s_new"), got,
                         [("consensus.recall", True)], BOOT)
    assert [r.setting_id for r in res] == ["s_new"] and res[0].passed
    # a baseline setting that already has this experiment's id keeps it (no two become one)
    both = pd.concat([base, _with_overrides(results([0.7] * 3, setting="s_new"),
                                            {"threshold": 3})])
    assert sorted(set(align_baseline(both, cur)["setting_id"])) == ["s_new", "s_old"]


def test_the_detail_means_are_over_the_seeds_compared():
    base = results([0.9, 0.8, 0.95], seeds=[1, 2, 3])
    cur = results([0.88, 0.6, 0.93, 0.5], seeds=[1, 2, 3, 4])
    base = base[base["seed"] != 2]   # the baseline's seed 2 failed or was not run
    (r,) = check_baseline(cur, base, [("consensus.recall", True)], BOOT)
    m = re.search(r"mean ([-\d.]+) vs baseline ([-\d.]+): change ([-\d.]+)", r.detail)
    assert m, r.detail
    c, b, d = map(float, m.groups())
    assert c == pytest.approx((0.88 + 0.93) / 2, abs=1e-4) and b == pytest.approx(0.925, abs=1e-4)
    assert d == pytest.approx(c - b, abs=2e-4)
    assert "paired over 2 seeds; 2 seeds with a value on one side only left out" in r.detail


def test_a_baseline_without_a_compared_metric_is_exit_2_before_any_cell(write_experiment,
                                                                         tmp_path, monkeypatch):
    import experiments.experiment as experiment

    exp = load_experiment(write_experiment())
    base = _run(exp, tmp_path / "base").results

    def no_cells(*args, **kwargs):
        raise AssertionError("a cell ran with a baseline that cannot be compared")

    monkeypatch.setattr(experiment, "run_tasks", no_cells)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="metric 'consensus.f1' is not in the results"):
        _run(exp, out, baseline=base.drop(columns=["consensus.f1"]))
    assert not out.exists()
    # no setting in common: the same, before any cell
    other = base.assign(setting_id="s_nothing", overrides='{"analysis.threshold": 9.0}')
    with pytest.raises(InputError, match="no setting in common"):
        _run(exp, out, baseline=other)
    assert not out.exists()


def test_a_setting_the_baseline_lacks_is_named(write_experiment, tmp_path, caplog):
    base = _run(load_experiment(write_experiment(grid={"analysis.threshold": [3.0]})),
                tmp_path / "base").results
    exp2 = load_experiment(write_experiment("exp2.yaml", grid={"analysis.threshold": [3, 5.0]}))
    with caplog.at_level(logging.WARNING, logger="shocklab.experiments"):
        outcome = _run(exp2, tmp_path / "out", baseline=base)
    assert re.search(r"--baseline has no run of threshold=5\.0 \(s[0-9a-f]+\)", caplog.text), \
        caplog.text
    # 3 is compared with the baseline's 3.0 (they were two ids: nothing compared, exit 0)
    assert {r.label for r in outcome.gate} == {"threshold=3"} and outcome.gate


def test_a_per_metric_max_drop_may_name_a_gate_metric(tiny_experiment, tmp_path, capsys):
    exp = tiny_experiment("tiny")
    rc, err = _cli(capsys, "--config", str(exp), "--out", str(tmp_path / "base"))
    assert rc == 0, err
    gate = "detectors.rolling_zscore.recall>=0.1"
    rc, err = _cli(capsys, "--config", str(exp), "--out", str(tmp_path / "out"),
                   "--baseline", str(tmp_path / "base"), "--gate", gate,
                   "--set", "gate.max_drop.detectors.rolling_zscore.recall=0.1")
    assert rc == 0, err   # was exit 2: "is not a compared metric"
    checks = json.loads((tmp_path / "out" / "gate.json").read_text())["checks"]
    assert any(c["check"] == "detectors.rolling_zscore.recall vs baseline" for c in checks)
    # a typo in a max_drop key is still refused
    rc, err = _cli(capsys, "--config", str(exp), "--out", str(tmp_path / "out2"),
                   "--baseline", str(tmp_path / "base"), "--gate", gate,
                   "--set", "gate.max_drop.detectors.rolling_zscore.recal=0.1")
    assert rc == 2 and "is not a compared metric" in err, err


@pytest.mark.parametrize("gate", ["consensus.recall>1", "consensus.precision<0"])
def test_a_bar_strictly_beyond_the_bounds_is_exit_2(write_experiment, tmp_path, capsys, gate):
    rc, err = _cli(capsys, "--config", str(write_experiment()), "--out", str(tmp_path / "o"),
                   "--gate", gate)
    assert rc == 2 and "can never be met" in err and not Path(tmp_path / "o").exists(), err
