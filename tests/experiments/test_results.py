"""Scorecard flattening, result tables and the seeded bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from experiments.cell import scorecard_metrics
from experiments.config import Bootstrap
from experiments.results import bootstrap_interval, leaderboard

BOOT = Bootstrap(resamples=1000, seed=3)


def test_headline_mode_is_lifted_and_noise_left_out():
    card = {
        "schema": "x",
        "settings": {"mode": "strict", "early_days": 1},
        "headline": {"mode": "strict", "recall": 0.5},
        "events": {"unexpected": 8, "by_type": {"flash_sale": 1}},
        "failed_detectors": {"prophet_residual": "boom"},
        "strict": {
            "consensus": {
                "recall": 0.5,
                "median_delay_days": None,
                "by_type": {"a": {"recall": 1}},
            },
            "detectors": {"oracle": {"recall": 1.0}},
            "oracle_equal_fp": None,
        },
        "lenient": {"consensus": {"recall": 0.75}},
        "event_detail": [{"event_id": "E01"}],
    }
    m = scorecard_metrics(card)
    assert m["consensus.recall"] == 0.5 and m["lenient.consensus.recall"] == 0.75
    assert m["detectors.oracle.recall"] == 1.0 and m["consensus.by_type.a.recall"] == 1.0
    assert math.isnan(m["consensus.median_delay_days"])
    assert (
        m["headline.recall"] == 0.5
        and m["events.unexpected"] == 8
        and m["failed_detectors.count"] == 1
    )
    assert not any(k.startswith(("strict.", "settings.", "event_detail", "schema")) for k in m)


def test_bootstrap_is_seeded_per_name_and_covers_the_mean():
    x = np.random.default_rng(0).uniform(0.5, 1.0, 12)
    a = bootstrap_interval(x, BOOT, "s1/consensus.recall")
    assert a == bootstrap_interval(x, BOOT, "s1/consensus.recall")
    assert a != bootstrap_interval(x, BOOT, "s2/consensus.recall")
    assert a[0] < x.mean() < a[1]
    assert bootstrap_interval(np.array([0.5, 0.5]), BOOT, "n") == (0.5, 0.5)
    assert bootstrap_interval(np.array([0.4, np.nan]), BOOT, "n") == (0.4, 0.4)


def test_leaderboard_ranks_and_does_not_depend_on_row_order():
    rows = []
    for sid, base in (("sA", 0.5), ("sB", 0.8), ("sC", 0.6)):
        for seed in range(4):
            rows.append(
                {
                    "cell_id": f"{sid}-seed{seed}",
                    "setting_id": sid,
                    "seed": seed,
                    "status": "ok",
                    "param:analysis.t": {"sA": 2.0, "sB": 3.0, "sC": 4.0}[sid],
                    "consensus.f1": base + 0.01 * seed,
                    "consensus.median_delay_days": 1.0 + seed,
                }
            )
    df = pd.DataFrame(rows)
    board = leaderboard(df, ["consensus.f1", "consensus.median_delay_days"], "consensus.f1", BOOT)
    assert board["setting_id"].tolist() == ["sB", "sC", "sA"] and board["rank"].tolist() == [
        1,
        2,
        3,
    ]
    assert board.loc[0, "analysis.t"] == 3.0 and board.loc[0, "n_seeds"] == 4
    assert board.loc[0, "consensus.f1.mean"] == pytest.approx(0.815)
    shuffled = leaderboard(
        df.sample(frac=1, random_state=1),
        ["consensus.f1", "consensus.median_delay_days"],
        "consensus.f1",
        BOOT,
    )
    pd.testing.assert_frame_equal(board, shuffled, check_exact=True)
    by_delay = leaderboard(
        df, ["consensus.f1", "consensus.median_delay_days"], "consensus.median_delay_days", BOOT
    )
    assert by_delay["rank"].tolist() == [1, 2, 3]  # all delays equal: ties keep setting order
    assert by_delay["setting_id"].tolist() == ["sA", "sB", "sC"]


def test_example_experiment_files_validate():
    from pathlib import Path

    from experiments.config import load_experiment
    from experiments.experiment import settings_of

    root = Path(__file__).resolve().parents[2]
    counts = {
        p.stem: len(settings_of(load_experiment(p)))
        for p in sorted((root / "config/experiments").glob("*.yaml"))
    }
    assert counts == {
        "ci_gate": 1,
        "detectability": 14,
        "detector_sweep": 8,
        "null_world": 1,
        "random_world": 1,
    }


def test_example_experiment_files_ask_only_for_metrics_their_analysis_produces():
    """null_world.yaml asked for false_alerts.detectors.prophet_residual while the shipped analysis
    runs no Prophet: a warning and an empty leaderboard column on every run."""
    from pathlib import Path

    from experiments.config import load_experiment, parse_check
    from experiments.experiment import plan
    from experiments.metric_names import producible_metrics

    root = Path(__file__).resolve().parents[2]
    for p in sorted((root / "config/experiments").glob("*.yaml")):
        exp = load_experiment(p)
        known: set[str] = set()
        for raw in {id(t.analysis): t.analysis for t in plan(exp, "unused")[1]}.values():
            known |= producible_metrics(raw)
        asked = [*exp.config.metrics, *(parse_check(c)[0] for c in exp.config.gate.checks)]
        assert [m for m in asked if m not in known] == [], p.name


def test_example_paths_resolve_from_any_working_directory(tmp_path, monkeypatch):
    from pathlib import Path

    from experiments.config import load_experiment

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(tmp_path)
    exp = load_experiment(root / "config/experiments/ci_gate.yaml")
    assert exp.scenario_path == root / "config/scenarios/small.yaml"
    assert exp.analysis_path == root / "config/analysis.yaml"


def _small_experiment(tmp_path, body: str):
    """An experiment file on the small scenario and the shipped analysis, seed 1, plus ``body``."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: t\nscenario: {root / 'config/scenarios/small.yaml'}\n"
                    f"analysis: {root / 'config/analysis.yaml'}\n{body}seeds: [1]\n")
    return path


def test_set_on_an_experiment_adds_an_override_key_not_a_section(tmp_path):
    """'--set analysis_overrides.detectors.rolling_zscore.type=rolling_zscore' (a key the file's
    analysis_overrides did not have) ran the experiment with that one detector at code defaults:
    the nested 'detectors' mapping replaced the analysis' whole detectors section."""
    from experiments.config import load_experiment
    from experiments.experiment import plan

    path = _small_experiment(
        tmp_path, "analysis_overrides: {customers.enabled: false}\n"
        "grid: {analysis.detectors.rolling_zscore.window: [14, 28]}\n")
    exp = load_experiment(path, ["analysis_overrides.detectors.isolation_forest.window=14",
                                 "grid.analysis.detectors.isolation_forest.n_estimators=[50]"])
    dets = exp.analysis["detectors"]
    assert {"rolling_zscore", "count_likelihood", "isolation_forest"} <= set(dets)
    assert dets["isolation_forest"]["window"] == 14
    assert dets["isolation_forest"]["type"] == "isolation_forest"
    assert exp.config.analysis_overrides == {"customers.enabled": False,
                                             "detectors.isolation_forest.window": 14}
    settings, _ = plan(exp, tmp_path / "cache", validate=True)
    assert [s.params for s in settings] == [
        {"analysis.detectors.rolling_zscore.window": w,
         "analysis.detectors.isolation_forest.n_estimators": 50} for w in (14, 28)]


def test_a_mapping_override_merges_into_the_section_it_names(tmp_path):
    """analysis_overrides: {consensus: {min_votes: 3}} (nested YAML, not the dotted key)
    replaced the shipped consensus with {min_votes: 3}: every other setting at the code's
    defaults (a plain vote instead of the combined evidence), validated and run without a word.
    Likewise a grid value {combine: vote} and scenario_overrides: {traffic: {...}}."""
    from experiments.config import load_experiment
    from experiments.experiment import plan
    from experiments.grid import cells, resolve_cell

    path = _small_experiment(
        tmp_path, "analysis_overrides: {consensus: {min_votes: 3}, detectors: {isolation_forest: "
        "{window: 14}}}\n"
        "scenario_overrides: {traffic: {base_sessions: 9000}}\n"
        "grid: {analysis.consensus: [{tolerance_days: 1}],\n"
        "       analysis.detectors.rolling_zscore: [{type: count_likelihood}]}\n")
    exp = load_experiment(path)
    cons, dets = exp.analysis["consensus"], exp.analysis["detectors"]
    assert cons["min_votes"] == 3 and cons["combine"] == "stouffer" and cons["combine_rho"] == 0.55
    assert dets["isolation_forest"]["window"] == 14 and dets["isolation_forest"]["n_estimators"]
    assert {"count_likelihood", "oracle", "product_watch"} <= set(dets)
    assert exp.scenario["traffic"]["base_sessions"] == 9000
    assert exp.scenario["traffic"]["trend_annual"] == 0.1          # small.yaml's, kept
    settings, _ = plan(exp, tmp_path / "cache", validate=True)
    _, ana = resolve_cell(cells(settings, [1])[0], exp.scenario, exp.analysis)
    assert ana["consensus"]["tolerance_days"] == 1 and ana["consensus"]["min_votes"] == 3
    assert ana["consensus"]["combine"] == "stouffer"
    # a detector of another type still replaces the entry (as in a layered analysis file)
    assert ana["detectors"]["rolling_zscore"] == {"type": "count_likelihood"}


def test_setting_labels():
    from experiments.experiment import setting_label
    from experiments.grid import make_setting

    assert setting_label(make_setting({})) == "base config"
    assert setting_label(make_setting({"analysis.detectors.z.threshold": 3.0})) == "threshold=3.0"
    long = setting_label(
        make_setting({"analysis.dimensions": ["overall", "channel", "country", "category"]})
    )
    assert long.startswith("dimensions=['overall', 'channel', 'country'") and long.endswith("…")


def test_setting_labels_name_two_settings_of_one_name_apart(tmp_path, monkeypatch):
    """A grid over rolling_zscore's and the forest's ``window`` summed up as '#1 window=14,
    window=28' (and two ``settings`` entries as 'window=14' twice): which detector's window?"""
    import matplotlib.axes

    from experiments.experiment import setting_labels
    from experiments.grid import make_setting
    from experiments.plots import sweep_plots

    rz = "analysis.detectors.rolling_zscore.window"
    forest = "analysis.detectors.isolation_forest.window"
    a, b = make_setting({rz: 14, forest: 28}), make_setting({"analysis.consensus.combine": "vote"})
    assert setting_labels([a, b]) == {
        a.setting_id: "rolling_zscore.window=14, isolation_forest.window=28",
        b.setting_id: "combine=vote"}
    c, d = make_setting({rz: 14}), make_setting({forest: 14})
    assert set(setting_labels([c, d]).values()) == {"rolling_zscore.window=14",
                                                   "isolation_forest.window=14"}
    board = pd.DataFrame({rz: [14, 28, 14, 28], forest: [7, 7, 14, 14],
                          "m.mean": [0.5, 0.6, 0.7, 0.8], "m.ci_low": [0.4] * 4,
                          "m.ci_high": [0.9] * 4, "rank": [4, 3, 2, 1]})
    legends, titles = [], []
    orig_errorbar, orig_title = matplotlib.axes.Axes.errorbar, matplotlib.axes.Axes.set_title

    def errorbar(self, *args, label=None, **kw):
        legends.append(label)
        return orig_errorbar(self, *args, label=label, **kw)

    def set_title(self, text, *args, **kw):
        titles.append(text)
        return orig_title(self, text, *args, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar", errorbar)
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", set_title)
    sweep_plots(board, [rz, forest], "m", tmp_path)
    assert "m vs rolling_zscore.window" in titles and "m vs isolation_forest.window" in titles
    assert "isolation_forest.window=7" in legends and "rolling_zscore.window=28" in legends


def test_example_sweeps_vary_only_knobs_the_analysis_reads():
    """detector_sweep.yaml swept consensus.min_votes while the shipped consensus combines
    evidence (``combine: stouffer``), which ignores min_votes and required: half of its grid was
    the same cell twice (F1 0.986 for min_votes 1 and 2), a no-op sold as a finding."""
    from pathlib import Path

    import yaml

    from experiments.config import load_experiment
    from experiments.experiment import settings_of

    root = Path(__file__).resolve().parents[2]
    base = yaml.safe_load((root / "config/analysis.yaml").read_text())
    ignored_by_stouffer = {"analysis.consensus.min_votes", "analysis.consensus.required"}
    for p in sorted((root / "config/experiments").glob("*.yaml")):
        exp = load_experiment(p)
        for s in settings_of(exp):
            params = dict(s.params)
            overrides = {**exp.config.analysis_overrides, **{
                k.removeprefix("analysis."): v for k, v in params.items()}}
            combine = overrides.get("consensus.combine", base["consensus"]["combine"])
            if combine == "stouffer":
                swept = ignored_by_stouffer & set(params)
                assert not swept, f"{p.name}: {sorted(swept)} is ignored with combine: stouffer"


@pytest.mark.parametrize("confidence", [0.8, 0.95])
def test_bootstrap_interval_has_its_confidence(confidence):
    """A percentile interval of the mean at ``confidence`` is close to the normal one, mean ±
    z(1 - alpha/2) · sd / sqrt(n), for 200 uniform values. Only its seeding and that it covers
    the mean were tested: an interval with the tails not halved (mutant X13: 90 % asked, 80 %
    given) passed."""
    from scipy.stats import norm

    x = np.random.default_rng(7).uniform(0.0, 1.0, 200)
    lo, hi = bootstrap_interval(x, Bootstrap(resamples=20_000, seed=1, confidence=confidence),
                                "s/m")
    half = norm.ppf(1 - (1 - confidence) / 2) * x.std() / math.sqrt(x.size)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.06)
    assert (lo + hi) / 2 == pytest.approx(x.mean(), abs=0.1 * half)


def test_leaderboard_counts_failed_seeds_apart_and_reports_the_sample_std():
    """n_seeds are the seeds with figures, n_failed the others; std is the sample standard
    deviation (ddof 1) of those figures. Neither was tested: counting failed cells as seeds, or
    the population std, passed (mutants X14, X16)."""
    values = [0.6, 0.7, 0.9]
    df = pd.DataFrame({"cell_id": [f"s-{i}" for i in range(4)], "setting_id": "s",
                       "seed": range(4), "status": ["ok", "ok", "error", "ok"],
                       "consensus.f1": [values[0], values[1], math.nan, values[2]]})
    row = leaderboard(df, ["consensus.f1"], "consensus.f1", BOOT).iloc[0]
    assert (row["n_seeds"], row["n_failed"]) == (3, 1)
    assert row["consensus.f1.mean"] == pytest.approx(np.mean(values))
    assert row["consensus.f1.std"] == pytest.approx(np.std(values, ddof=1))


def test_results_frame_orders_seeds_numerically_and_types_partial_params():
    """results.parquet rows are in (setting, seed) order with seeds compared as numbers (seed 10
    after seed 2); a swept integer a setting lacks is a float column with NaN, not an error; and
    summary_table leaves out a metric no seed has. None of the three was tested (mutants X20,
    X18, X17 passed)."""
    from experiments.grid import Setting
    from experiments.results import results_frame, summary_table

    settings = {"a": Setting("a", {"analysis.w": 7}, {"window": 7}), "b": Setting("b", {}, {})}
    records = [{"cell_id": f"{sid}-{seed}", "setting_id": sid, "seed": seed, "status": "ok",
                "metrics": {"consensus.recall": 0.5 + seed / 100, "consensus.f1": math.nan}}
               for sid in ("b", "a") for seed in (10, 2)]
    df = results_frame(records, settings)
    assert list(zip(df["setting_id"], df["seed"], strict=True)) == [
        ("a", 2), ("a", 10), ("b", 2), ("b", 10)]
    assert df["param:window"].dtype == "float64"
    assert df["param:window"].tolist()[:2] == [7.0, 7.0] and df["param:window"].isna().sum() == 2
    table = summary_table(df, BOOT)
    assert set(table["metric"]) == {"consensus.recall"}
    assert table.set_index("setting_id").loc["a", "n"] == 2


def test_experiment_plots_ignore_the_machines_matplotlib_style(tmp_path):
    """A user's matplotlibrc changed the experiment PNGs' bytes."""
    import matplotlib
    from tests.analytics.test_report import HOSTILE_STYLE

    from experiments.plots import sweep_plots

    rz = "analysis.detectors.rolling_zscore.window"
    board = pd.DataFrame({rz: [14, 28], "m.mean": [0.5, 0.6], "m.ci_low": [0.4] * 2,
                          "m.ci_high": [0.9] * 2, "rank": [2, 1]})
    ref = sweep_plots(board, [rz], "m", tmp_path / "a")
    with matplotlib.rc_context(HOSTILE_STYLE):
        got = sweep_plots(board, [rz], "m", tmp_path / "b")
    assert ref and [p.name for p in got] == [p.name for p in ref]
    assert [p.name for p, q in zip(ref, got, strict=True) if p.read_bytes() != q.read_bytes()] == []
