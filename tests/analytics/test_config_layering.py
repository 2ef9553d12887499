"""An analysis YAML given with --config (or as an experiment's `analysis:` file) is layered over
the shipped config/analysis.yaml: a file that names only what it changes keeps the shipped
detection elsewhere. Before, what it omitted took the code's defaults, which are not the shipped
settings (Prophet on, a plain vote, no products, no multi-day windows) — silently."""

from __future__ import annotations

import json

import pytest

from analytics.config import (
    DEFAULT_CONFIG_PATH,
    analysis_yaml,
    layered,
    load_analysis_config,
    load_analysis_config_raw,
)
from shocklab.errors import InputError


def _dump(cfg) -> dict:
    return cfg.model_dump(mode="json")


def test_an_empty_file_is_the_shipped_config(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("")
    assert _dump(load_analysis_config(f)) == _dump(load_analysis_config(None))


def test_a_partial_file_changes_only_what_it_names(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("detectors:\n  rolling_zscore:\n    windows: [3]\nconsensus:\n"
                 "  combine_sensitivity: 0.2\n")
    mine, shipped = _dump(load_analysis_config(f)), _dump(load_analysis_config(None))
    assert mine["detectors"]["rolling_zscore"]["windows"] == [3]
    assert mine["consensus"]["combine_sensitivity"] == 0.2
    # everything else is the shipped file's: the same detectors, consensus rule and slices
    assert mine["consensus"]["combine"] == shipped["consensus"]["combine"] == "stouffer"
    assert not mine["detectors"]["prophet_residual"]["enabled"]
    assert mine["dimensions"] == shipped["dimensions"]
    mine["detectors"]["rolling_zscore"]["windows"] = shipped["detectors"]["rolling_zscore"][
        "windows"]
    mine["consensus"]["combine_sensitivity"] = shipped["consensus"]["combine_sensitivity"]
    assert mine == shipped


def test_base_none_is_the_file_alone_and_overrides_still_apply(tmp_path):
    f = tmp_path / "alone.yaml"
    f.write_text("base: none\nsensitivity: 0.05\n")
    cfg, raw = load_analysis_config_raw(f, ["consensus.min_votes=1"])
    assert raw == {"sensitivity": 0.05, "consensus": {"min_votes": 1}}
    assert cfg.consensus.combine == "vote"   # the code's default, not the shipped stouffer
    assert cfg.consensus.min_votes == 1


def test_a_detector_of_another_type_replaces_the_shipped_one():
    base = {"detectors": {"a": {"type": "x", "p": 1, "q": 2}, "b": {"type": "y", "r": 3}}}
    out = layered(base, {"detectors": {"a": {"type": "z", "s": 4}, "b": {"r": 5}}, "n": [1]})
    assert out == {"detectors": {"a": {"type": "z", "s": 4}, "b": {"type": "y", "r": 5}},
                   "n": [1]}
    assert base["detectors"]["b"]["r"] == 3   # the base is not changed in place


def test_the_shipped_file_is_read_as_it_is():
    assert analysis_yaml(DEFAULT_CONFIG_PATH) == analysis_yaml(str(DEFAULT_CONFIG_PATH))


def test_a_bad_base_is_one_line_naming_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("base: defaults\n")
    with pytest.raises(InputError, match=r"bad\.yaml: base: must be 'shipped'.*'defaults'"):
        load_analysis_config(f)


def test_run_analysis_with_a_partial_config_runs_the_shipped_detectors(synth_dir, tmp_path):
    """End to end: the run records the shipped detection with the one change the file made."""
    import run_analysis

    from shocklab.cli import run_cli

    f = tmp_path / "mine.yaml"
    f.write_text("sensitivity: 0.05\n")
    assert run_cli(run_analysis.main, ["--data", str(synth_dir), "--config", str(f), "--out",
                                       str(tmp_path / "run"), "--quiet", "--detectors",
                                       "rolling_zscore,isolation_forest"]) == 0
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["sensitivity"] == 0.05
    assert run["config"]["consensus"]["combine"] == "stouffer"
    assert not run["config"]["detectors"]["prophet_residual"]["enabled"]


def test_an_experiments_analysis_file_is_layered_too(tmp_path):
    from experiments.config import load_experiment
    from shocklab.configio import load_yaml

    (tmp_path / "mine.yaml").write_text("sensitivity: 0.05\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: layered\nscenario: {DEFAULT_CONFIG_PATH.parent / 'simulation.yaml'}\n"
                   "analysis: mine.yaml\nseeds: {count: 1}\n"
                   "analysis_overrides: {consensus.min_votes: 1}\n")
    e = load_experiment(exp)
    shipped = load_yaml(DEFAULT_CONFIG_PATH)
    assert e.analysis["sensitivity"] == 0.05 and e.analysis["consensus"]["min_votes"] == 1
    assert e.analysis["detectors"].keys() == shipped["detectors"].keys()
    assert e.analysis["consensus"]["combine"] == shipped["consensus"]["combine"]


@pytest.mark.parametrize("text, mode", [("on", "on"), ("off", "off"), ("auto", "auto"),
                                        ("'on'", "on")])
def test_product_prices_on_and_off_are_read_as_written(tmp_path, text, mode):
    """YAML 1.1 reads a bare on / off as a boolean: `--set product_prices=on` and a file's
    `product_prices: off` (the documented values) were exit 2, 'got True'."""
    f = tmp_path / "mine.yaml"
    f.write_text(f"product_prices: {text}\n")
    assert load_analysis_config(f).product_prices == mode
    cfg, _ = load_analysis_config_raw(None, [f"product_prices={text.strip(chr(39))}"])
    assert cfg.product_prices == mode


def test_a_bad_product_prices_names_the_values():
    with pytest.raises(InputError, match="product_prices: Input should be 'auto', 'on' or 'off'"):
        load_analysis_config_raw(None, ["product_prices=bogus"])


def test_the_old_name_retrain_every_is_read_in_a_layered_file_and_by_set(tmp_path):
    """`retrain_every` is documented as the old name of `refit_every`; layered over the shipped
    file (which says refit_every) it was a second key: 'detectors.isolation_forest.retrain_every:
    unknown key (check spelling…)', from a file, a --set and an experiment's overrides alike."""
    f = tmp_path / "old.yaml"
    f.write_text("detectors:\n  isolation_forest: {retrain_every: 30}\n")
    assert load_analysis_config(f).detectors["isolation_forest"].refit_every == 30
    # a later --set of either name wins over the file
    assert load_analysis_config(f, ["detectors.isolation_forest.refit_every=10"]).detectors[
        "isolation_forest"].refit_every == 10
    cfg = load_analysis_config(None, ["detectors.prophet_residual.retrain_every=90"])
    assert cfg.detectors["prophet_residual"].refit_every == 90
    # both names in one entry: which one? One line naming the entry
    f.write_text("detectors:\n  isolation_forest: {retrain_every: 30, refit_every: 60}\n")
    with pytest.raises(InputError, match=r"old.yaml: detectors.isolation_forest: retrain_every "
                                         r"is the old name of refit_every"):
        load_analysis_config(f)


def test_an_experiment_reads_the_old_name_in_its_overrides_and_grid(tmp_path):
    from experiments.config import load_experiment
    from experiments.experiment import plan
    from experiments.grid import cells, resolve_cell

    root = DEFAULT_CONFIG_PATH.parents[1]
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"name: t\nscenario: {root / 'config/scenarios/small.yaml'}\n"
        f"analysis: {DEFAULT_CONFIG_PATH}\n"
        "analysis_overrides: {detectors.isolation_forest.retrain_every: 30}\n"
        "grid: {analysis.detectors.prophet_residual.retrain_every: [90, 120]}\nseeds: [1]\n")
    exp = load_experiment(path)
    assert exp.analysis["detectors"]["isolation_forest"]["refit_every"] == 30
    settings, _ = plan(exp, tmp_path / "cache", validate=True)   # exit 2 before the fix
    _, ana = resolve_cell(cells(settings, [1])[1], exp.scenario, exp.analysis)
    assert ana["detectors"]["prophet_residual"]["refit_every"] == 120
    assert "retrain_every" not in ana["detectors"]["prophet_residual"]


def test_the_shipped_file_documents_every_shared_detector_setting():
    """Every detector's `mute_calendar` (default true) was documented nowhere in
    config/analysis.yaml, whose rolling_zscore comment sold `calendar: mute` as '(also never
    flag)': a researcher moving exclude -> mute saw no change (the default already mutes)."""
    from analytics.detectors.base import DetectorConfig, WalkForwardConfig

    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    shared = text[text.index("# Detectors: name -> settings."):text.index("\ndetectors:\n")]
    for name in [*DetectorConfig.model_fields, *WalkForwardConfig.model_fields]:
        if name != "type":
            assert name in shared, f"config/analysis.yaml: shared setting {name!r} undocumented"


def test_set_reaches_one_window_of_a_window_calibration():
    """'--set detectors.count_likelihood.window_calibration.3.tail_gain=1.0' (the file does not
    spell the mapping by window out) said "index 3 out of range": a number made a new list,
    which has no item to address. It is a mapping, merged onto the detector's shipped values."""
    cfg = load_analysis_config(None, [
        "detectors.count_likelihood.window_calibration.3.tail_gain=1.0",
        "detectors.rolling_zscore.window_calibration.7.tail_df=9"])
    cl = cfg.detectors["count_likelihood"].window_calibration
    shipped = load_analysis_config(None).detectors["count_likelihood"].window_calibration
    assert cl[3].tail_gain == 1.0 and cl[3].scale_cap == shipped[3].scale_cap == 3.5
    assert cl[7] == shipped[7]
    rz = cfg.detectors["rolling_zscore"].window_calibration
    assert rz[7].tail_df == 9 and rz[7].tail_gain == 1.4 and rz[3].tail_df == 10


def test_the_shipped_file_names_every_detector_type():
    """analysis.yaml's list of detector types left out product_watch (shipped, on) and
    level_shift (external.detectors)."""
    from analytics.detectors import REGISTRY

    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    listed = text[text.index("`type` picks the detector"):text.index("Shared settings:")]
    for name in REGISTRY:
        if name != "likelihood":   # the wrapper external.likelihood builds, not configured
            assert name in listed, name


def test_set_base_says_where_base_belongs():
    """'--set base=none' said 'base: unknown key (check spelling; see the commented default
    config)', and the commented config documents `base`."""
    with pytest.raises(InputError, match=r"--set 'base=none': base is read from a file .* "
                                         r"'base: none' at the top of a --config file"):
        load_analysis_config(None, ["base=none"])



@pytest.mark.parametrize(("bad", "good", "message"), [
    # a repeated KPI was every series of that KPI watched twice: its detections doubled and the
    # oracle failed ("Merge keys are not unique"), the run still exit 0
    ("kpis=[revenue, orders, revenue]", "kpis=[revenue, orders]",
     "kpis: 'revenue' is listed twice"),
    ("dimensions=[overall, channel, channel]", "dimensions=[overall, channel]",
     "dimensions: 'channel' is listed twice"),
    ("slice_kpis={country: [orders, orders]}", "slice_kpis={country: [orders]}",
     "slice_kpis.country: 'orders' is listed twice"),
    ("detectors.rolling_zscore.kpis=[aov, aov]", "detectors.rolling_zscore.kpis=[aov]",
     "detectors.rolling_zscore.kpis: 'aov' is listed twice"),
    ("consensus.required=[rolling_zscore, rolling_zscore]", "consensus.required=[rolling_zscore]",
     "consensus.required: 'rolling_zscore' is listed twice"),
    # the At-Risk monitor built the segment's series (and its alerts) twice
    ("customers.monitor.segments=[At Risk, At Risk]", "customers.monitor.segments=[At Risk]",
     "customers: monitor.segments: 'At Risk' is listed twice"),
    ("customers.actions.rules=[{action: a, segments: [New, New]}]",
     "customers.actions.rules=[{action: a, segments: [New]}]",
     r"customers: actions.rules\[0\].segments: 'New' is listed twice"),
])
def test_a_name_listed_twice_is_refused_naming_the_list(bad, good, message):
    with pytest.raises(InputError, match=message):
        load_analysis_config_raw(None, [bad])
    load_analysis_config_raw(None, [good])   # the same list without the repeat is valid


@pytest.mark.parametrize(("name", "message"), [
    # '' ran under its type's name: rolling_zscore's rows doubled in detections.csv, exit 0
    ("''", r"detectors: detector name '' must start with a letter"),
    ("a.b", r"detectors: detector name 'a\.b' must"),        # metric names split on the dot
    ("a,b", r"detectors: detector name 'a,b' must"),        # --detectors a,b splits on the comma
    ("'../x'", r"detectors: detector name '\.\./x' must"),
    ("consensus", r"detectors\.consensus: the name 'consensus' is kept for the consensus"),
    ("oracle", r"detectors\.oracle: the name 'oracle' is kept for the oracle \(type oracle\)"),
])
def test_a_detector_name_that_would_collide_or_split_is_refused(tmp_path, name, message):
    cfg = tmp_path / "a.yaml"
    cfg.write_text(f"detectors:\n  {name}: {{type: rolling_zscore}}\n")
    with pytest.raises(InputError, match=message):
        load_analysis_config(cfg)
    ext = tmp_path / "e.yaml"
    ext.write_text(f"external:\n  detectors:\n    {name}: {{type: rolling_zscore}}\n")
    with pytest.raises(InputError, match="external." + message):
        load_analysis_config(ext)
    ok = tmp_path / "ok.yaml"   # letters, digits, '_' and '-' are a name
    ok.write_text("detectors:\n  rz-2_b: {type: rolling_zscore}\n")
    assert load_analysis_config(ok).detectors["rz-2_b"].type == "rolling_zscore"
