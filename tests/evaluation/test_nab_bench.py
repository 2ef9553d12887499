"""bench/bench_nab.py --cv: the shipped `external` settings are a point of the cross-validation
grid (so the README's in-sample figure of the shipped default is the one the grid scored), and the
grid's extra detectors and likelihood settings map back from the `external` section."""

from __future__ import annotations

import sys
from pathlib import Path

from analytics.config import load_analysis_config

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_nab  # noqa: E402


def test_shipped_external_settings_are_on_the_grid():
    cfg = load_analysis_config(None)
    ext = cfg.external
    point = {
        "extra": bench_nab._extra_key(ext.detectors),
        "tail": ext.tail,
        "sensitivity": ext.sensitivity,
        "suppress": ext.suppress,
        "min_votes": ext.min_votes or cfg.consensus.min_votes,
        "merge_gap": ext.merge_gap,
        "solo": ext.solo,
        "likelihood": bench_nab._likelihood_key(ext.likelihood),
        "short": bench_nab._short_key(ext),
    }
    for k, v in point.items():
        assert v in bench_nab.CV_GRID[k], (k, v)
    assert set(point) == set(bench_nab.CV_GRID)


def test_extra_key_of_external_detectors():
    assert bench_nab._extra_key({}) == "none"
    for key, settings in bench_nab.CV_EXTRA.items():
        flow = "{" + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}"
                               for k, v in settings.items()) + "}"
        cfg = load_analysis_config(None, [f"external.detectors={{x: {flow}}}"])
        assert bench_nab._extra_key(cfg.external.detectors) == key
    cfg = load_analysis_config(None, ["external.detectors={x: {type: level_shift, window: 3}}"])
    assert bench_nab._extra_key(cfg.external.detectors) is None  # off the grid


def test_likelihood_key_of_external_likelihood():
    assert bench_nab._likelihood_key(None) is None
    cfg = load_analysis_config(None, ["external.likelihood={}"])
    assert bench_nab._likelihood_key(cfg.external.likelihood) == "default"
    cfg = load_analysis_config(None, ["external.likelihood={window_days: 2}"])
    assert bench_nab._likelihood_key(cfg.external.likelihood) == "?"   # off the grid


def test_a_detector_switched_off_is_no_extra():
    cfg = load_analysis_config(
        None, ["external.detectors={isolation_forest: {type: isolation_forest, enabled: false}}"])
    assert bench_nab._extra_key(cfg.external.detectors) == "none"
    cfg = load_analysis_config(None, ["external.detectors={x: {type: level_shift}}"])
    assert bench_nab._extra_key(cfg.external.detectors) == "level_shift"   # added: switched on


def test_short_key_of_external_short_history():
    off = load_analysis_config(None, ["external.early_min=null", "external.flat_floor=null"])
    assert bench_nab._short_key(off.external) == "off"
    six = load_analysis_config(None, ["external.early_min=6"])
    assert bench_nab._short_key(six.external) == "early6"
    odd = load_analysis_config(None, ["external.early_min=7"])
    assert bench_nab._short_key(odd.external) is None   # off the grid


def test_a_nab_folder_without_its_labels_is_one_line(tmp_path):
    """A copy of NAB without labels/combined_windows.json ended in a FileNotFoundError
    traceback."""
    (tmp_path / "data" / "realTraffic").mkdir(parents=True)
    assert bench_nab.nab_problem(tmp_path) == (
        f"--nab {tmp_path}: no labels/combined_windows.json (NAB's label windows)")
    assert "no data/ folder" in bench_nab.nab_problem(tmp_path / "nope")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text("{}")
    assert bench_nab.nab_problem(tmp_path) is None
