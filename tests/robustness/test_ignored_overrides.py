"""`--set consensus.min_votes=…` (the example of `run_analysis.py --help`) changes nothing while the
consensus combines evidence (`consensus.combine: stouffer`, shipped): the run said nothing, so a
researcher tuning it read identical results as a finding. Now one warning names the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

# no plots: the warnings checked here are about the consensus and detector settings, read before
# any plot is drawn; the plots were most of each run's time
NO_PLOTS = ("--set", "insights.plots=false")


@pytest.fixture
def analyse(cli):
    """``analyse(*args)``: run_analysis.py in-process (tests/robustness/conftest.py ``cli``: the
    same ``run_cli(main)`` the script calls, its stderr captured), customers off, no plots."""
    def _analyse(*args: str):
        return cli("analysis", *args, "--quiet", "--set", "customers.enabled=false", *NO_PLOTS)
    return _analyse


def test_min_votes_under_combined_evidence_is_warned_about(analyse, tiny_world, tmp_path):
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "a"), "--set",
                "consensus.min_votes=1")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "consensus.min_votes" in ln]
    assert len(warn) == 1 and "consensus.combine=vote" in warn[0], r.stderr
    assert "consensus.anchors" not in r.stderr   # the shipped anchors vote: no anchors warning


def test_no_warning_when_the_vote_reads_it(analyse, tiny_world, tmp_path):
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "b"), "--set",
                "consensus.combine=vote", "--set", "consensus.min_votes=1")
    assert r.returncode == 0, r.stderr
    assert "consensus.min_votes" not in r.stderr


def _kpis_file(tmp_path: Path) -> Path:
    import numpy as np
    import pandas as pd

    g = np.random.default_rng(3)
    t = pd.date_range("2025-01-01", periods=24 * 30, freq="h")
    v = 100 + g.normal(0, 3, len(t))
    v[400:404] += 60
    f = tmp_path / "hourly.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"), "value": v.round(2)}).to_csv(
        f, index=False)
    return f


def test_a_consensus_key_the_kpis_profile_replaces_is_warned_about(analyse, tmp_path):
    """On --kpis input `consensus.suppress` comes from `external.suppress`: a `--set` of it was
    replaced without a word, and the consensus' log then named consensus.suppress=6h."""
    f = _kpis_file(tmp_path)
    r = analyse("--kpis", str(f), "--out", str(tmp_path / "k"), "--set",
                "consensus.suppress=2h", "--set", "consensus.min_votes=2")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "ignored on this file" in ln]
    assert any("--set consensus.suppress ignored" in w and "consensus.suppress=6h applies" in w
               and "--set external.suppress=" in w for w in warn), r.stderr
    assert any("--set consensus.min_votes ignored" in w and "external.min_votes" in w
               for w in warn), r.stderr
    # the external key itself is read, and then nothing is warned about
    r = analyse("--kpis", str(f), "--out", str(tmp_path / "k2"), "--set",
                "external.suppress=2h")
    assert r.returncode == 0, r.stderr
    assert "ignored on this file" not in r.stderr


def test_a_setting_that_picks_a_stores_series_is_warned_about_on_kpis_input(analyse, tmp_path):
    """`--set kpis=[orders]` or `dimensions=[overall]` on a --kpis file changed nothing but the
    run id (every series of the file analysed, no word; audit56 V7). One warning names them."""
    import numpy as np
    import pandas as pd

    days = pd.date_range("2025-01-01", periods=120, freq="D")
    g = np.random.default_rng(5)
    f = tmp_path / "k.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "orders": g.poisson(400, 120),
                  "sessions": g.poisson(12000, 120)}).to_csv(f, index=False)
    r = analyse("--kpis", str(f), "--out", str(tmp_path / "k"), "--set", "kpis=[orders]",
                "--set", "dimensions=[overall]")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "--set dimensions, kpis ignored" in ln]
    assert len(warn) == 1 and "a --kpis file's series are its columns" in warn[0], r.stderr
    det = pd.read_csv(tmp_path / "k" / "detections.csv")
    assert set(det["kpi"]) == {"orders", "sessions"}   # as the warning says: both analysed
    r = analyse("--kpis", str(f), "--out", str(tmp_path / "k2"), "--set", "sensitivity=0.2")
    assert r.returncode == 0 and "ignored on this file" not in r.stderr, r.stderr


def test_a_detector_restricted_to_nothing_watched_is_warned_about(analyse, tiny_world, tmp_path):
    """`detectors.rolling_zscore.dimensions: [overal]` (a typo) passed validation (on --kpis
    input any dimension name may exist) and the detector scored no series: ok in run.json, no
    word, one voter fewer. On store data it is exit 2 naming the setting (session 46: the store's
    dimensions are known); on --kpis input one warning names the setting, the value and what is
    watched."""
    import json

    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "d"), "--set",
                "detectors.rolling_zscore.dimensions=[overal, channel]")
    assert r.returncode == 2, r.stderr
    err = [ln for ln in r.stderr.splitlines() if "detectors.rolling_zscore.dimensions" in ln]
    assert len(err) == 1 and "'overal' is not an analysed dimension" in err[0], r.stderr
    assert not (tmp_path / "d").exists()
    f = _kpis_file(tmp_path)
    out = tmp_path / "k"
    r = analyse("--kpis", str(f), "--out", str(out), "--set",
                "detectors.rolling_zscore.dimensions=[overal, overall]")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "detectors.rolling_zscore.dimensions" in ln]
    assert len(warn) == 1 and "'overal' matches no watched series" in warn[0], r.stderr
    assert "overall" in warn[0].split("watched dimensions:")[1]
    status = json.loads((out / "run.json").read_text())["detector_status"]["rolling_zscore"]
    assert any("'overal'" in w for w in status["warnings"])
    r = analyse("--kpis", str(f), "--out", str(tmp_path / "e"))
    assert "matches no watched series" not in r.stderr


def test_a_required_detector_that_did_not_vote_is_warned_about(analyse, tiny_world, tmp_path):
    """`consensus.required: [prophet_residual]` (the example of the shipped comment) with
    Prophet off required nothing: the consensus drops a required name that is not a voter, and
    the run said nothing."""
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "r"), "--set",
                "consensus.combine=vote", "--set", "consensus.required=[prophet_residual]",
                "--set", "detectors.isolation_forest.enabled=false")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "consensus.required" in ln]
    assert len(warn) == 1 and "prophet_residual did not vote" in warn[0], r.stderr
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "s"), "--set",
                "consensus.combine=vote", "--set", "consensus.required=[rolling_zscore]",
                "--set", "detectors.isolation_forest.enabled=false")
    assert r.returncode == 0 and "consensus.required" not in r.stderr, r.stderr


def test_a_set_that_replaces_a_whole_mapping_is_warned_about(analyse, tiny_world, tmp_path):
    """`--set 'consensus={min_votes: 3}'` replaces the shipped consensus whole (a --config file
    would merge): combine, combine_sensitivity, ... silently took the code's defaults (a plain vote
    instead of combined evidence). One warning now names what was dropped and the dotted form."""
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "m"), "--set",
                "consensus={min_votes: 3}")
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "replaces the whole mapping" in ln]
    assert len(warn) == 1, r.stderr
    assert "combine" in warn[0] and "--set consensus.<key>=value" in warn[0], warn[0]
    # the dotted form changes one key and keeps the rest: nothing to warn about
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "n"), "--set",
                "consensus.combine_sensitivity=0.3")
    assert r.returncode == 0, r.stderr
    assert "replaces the whole mapping" not in r.stderr, r.stderr


def test_anchors_none_of_which_voted_are_warned_about(analyse, tiny_world, tmp_path):
    """`consensus.anchors` (shipped: count_likelihood, rolling_zscore) with both off: every voter
    anchors, as without the setting, and one warning says so (with them on, none: the min_votes
    test above)."""
    off = ("--set", "detectors.count_likelihood.enabled=false",
           "--set", "detectors.rolling_zscore.enabled=false")
    r = analyse("--data", str(tiny_world), "--out", str(tmp_path / "x"), *off)
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "consensus.anchors" in ln]
    assert len(warn) == 1 and "every voter anchors" in warn[0], r.stderr
