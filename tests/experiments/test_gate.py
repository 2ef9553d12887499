"""Gate verdicts and exit codes on hand-made results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from experiments.config import Bootstrap, parse_check
from experiments.gate import check_absolute, check_baseline, enforce, load_baseline
from shocklab.cli import run_cli
from shocklab.errors import GateFailure, InputError

BOOT = Bootstrap(resamples=2000, seed=0)


def results(recalls, setting="s1", seeds=None, status=None):
    seeds = seeds or list(range(len(recalls)))
    return pd.DataFrame({
        "cell_id": [f"{setting}-seed{s}" for s in seeds], "setting_id": setting, "seed": seeds,
        "status": status or ["ok"] * len(recalls), "error": None, "consensus.recall": recalls,
        "consensus.median_delay_days": [1.0] * len(recalls)})


def exit_code(gate_results) -> int:
    return run_cli(lambda argv: enforce(gate_results) or 0, [])


def test_miss_within_noise_passes():
    # mean 0.88 < 0.9, but seeds range 0.8 … 0.96: the interval covers the bar
    res = check_absolute(
        results([0.8, 0.96, 0.84, 0.92]), [parse_check("consensus.recall>=0.9")], BOOT
    )
    assert [r.passed for r in res] == [True]
    assert exit_code(res) == 0


def test_miss_beyond_noise_fails_with_exit_1_and_names_figure_and_bar(capsys):
    res = check_absolute(
        results([0.7, 0.72, 0.69, 0.71]), [parse_check("consensus.recall>=0.9")], BOOT
    )
    assert not res[0].passed
    assert exit_code(res) == 1
    err = capsys.readouterr().err
    assert (
        "consensus.recall>=0.9 [s1]" in err
        and "entirely below the bar >=0.9" in err
        and "mean 0.705" in err
    )


def test_upper_bar_and_failed_cells():
    delay = check_absolute(
        results([0.5] * 3), [parse_check("consensus.median_delay_days<=0.5")], BOOT
    )
    assert not delay[0].passed and "entirely above" in delay[0].detail
    crashed = check_absolute(results([0.95, None, 0.97], status=["ok", "error", "ok"]),
                             [parse_check("consensus.recall>=0.9")], BOOT)
    assert not crashed[0].passed and "1 of 3 cells failed" in crashed[0].detail


def test_baseline_unchanged_passes_and_consistent_drop_fails():
    base = results([0.9, 0.8, 0.95, 0.85, 0.9])
    same = check_baseline(
        results([0.9, 0.8, 0.95, 0.85, 0.9]), base, [("consensus.recall", True)], BOOT
    )
    assert same[0].passed and exit_code(same) == 0
    # a small drop on every seed is beyond the (paired) noise
    drop = check_baseline(
        results([0.87, 0.77, 0.92, 0.82, 0.87]), base, [("consensus.recall", True)], BOOT
    )
    assert not drop[0].passed and "paired over 5 seeds" in drop[0].detail
    assert exit_code(drop) == 1
    # an uneven change whose interval straddles zero is noise
    mixed = check_baseline(
        results([0.95, 0.75, 1.0, 0.8, 0.9]), base, [("consensus.recall", True)], BOOT
    )
    assert mixed[0].passed
    # max_drop tolerates a drop of that size
    tolerated = check_baseline(
        results([0.87, 0.77, 0.92, 0.82, 0.87]),
        base,
        [("consensus.recall", True)],
        BOOT,
        max_drop=0.05,
    )
    assert tolerated[0].passed


def test_bad_gate_and_baseline_inputs(tmp_path):
    with pytest.raises(InputError, match="expected metric>=number"):
        parse_check("consensus.recall=>0.9")
    with pytest.raises(InputError, match="metric 'consensus.recal' is not in the results"):
        check_absolute(results([0.9]), [parse_check("consensus.recal>=0.9")], BOOT)
    with pytest.raises(InputError, match="file not found"):
        load_baseline(tmp_path / "nope.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable parquet file"):
        load_baseline(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="no setting in common"):
        check_baseline(
            results([0.9]), results([0.9], setting="s2"), [("consensus.recall", True)], BOOT
        )
    assert GateFailure.exit_code == 1


def test_a_baseline_may_be_the_earlier_experiment_directory(tmp_path):
    """--baseline runs/experiments/ci_gate (the earlier run's --out) said "file not found"; it
    reads the results.parquet in it. A directory without one says so."""
    earlier = tmp_path / "ci_gate"
    earlier.mkdir()
    with pytest.raises(InputError, match="is a directory without results.parquet; give an"):
        load_baseline(earlier)
    results([0.9, 0.8]).to_parquet(earlier / "results.parquet")
    got = load_baseline(earlier)
    assert got["consensus.recall"].tolist() == [0.9, 0.8]
    assert got.equals(load_baseline(earlier / "results.parquet"))


@pytest.mark.parametrize("bar", ["1e999", "-1e999", "1.2.3"])
def test_a_bar_that_is_not_a_finite_number_is_bad_input(bar):
    """'--gate consensus.recall>=1e999' read the bar as inf: every run failed the gate, exit 1
    (a quality verdict) for a mistyped check; the file's gate.checks let it through too."""
    from experiments.config import Gate
    from shocklab.configio import validate

    with pytest.raises(InputError, match=f"'{bar}' is not a finite number"):
        parse_check(f"consensus.recall>={bar}")
    with pytest.raises(InputError, match=rf"^x.yaml: checks: .*'{bar}' is not a finite"):
        validate(Gate, {"checks": [f"consensus.recall>={bar}"]}, "x.yaml")
    assert parse_check("consensus.fp<=1e2") == ("consensus.fp", "<=", 100.0)


@pytest.mark.parametrize("check,why", [
    ("consensus.recall>=1.5", "the bar 1.5 can never be met"),
    ("consensus.precision>1.01", "the bar 1.01 can never be met"),
    ("detectors.oracle.f1<=-0.1", "the bar -0.1 can never be met"),
    ("consensus.recall>=-0.2", "the bar -0.2 can never be missed"),
    ("oracle_equal_fp.oracle_recall<2", "the bar 2 can never be missed"),
    # strictly beyond a bound: no mean can meet it either (">1" failed every run, exit 1)
    ("consensus.recall>1", "the bar 1 can never be met"),
    ("consensus.f1<0", "the bar 0 can never be met"),
])
def test_a_bar_outside_0_1_on_a_fraction_is_bad_input(check, why):
    """'--gate consensus.recall>=1.5' (or 15 for 0.15) failed every run with exit 1, a quality
    verdict for a mistyped check, and 'consensus.recall>=-0.2' passed every run; run_analysis.py
    refuses the same bars for --min-recall with exit 2 (audit-cigate)."""
    from experiments.config import Gate
    from shocklab.configio import validate

    with pytest.raises(InputError, match=f"between 0 and 1, so {why}"):
        parse_check(check)
    with pytest.raises(InputError, match=rf"^x.yaml: checks: .*between 0 and 1, so {why}"):
        validate(Gate, {"checks": [check]}, "x.yaml")
    # figures that are no fraction take any bar; the bounds themselves are bars
    for ok in ("consensus.median_delay_days<=-1", "consensus.fp<=12",
               "headline.recall_vs_oracle>=1.1", "oracle_equal_fp.ratio>=1.05",
               "consensus.recall>=1", "consensus.f1>=0"):
        assert parse_check(ok)[0] == ok.split("<")[0].split(">")[0]


def test_gate_interval_is_the_leaderboard_interval():
    from experiments.results import leaderboard

    df = results([0.7, 0.95, 0.81, 0.88, 0.9])
    board = leaderboard(df, ["consensus.recall"], "consensus.recall", BOOT)
    res = check_absolute(df, [parse_check("consensus.recall>=0.9")], BOOT)
    lo, hi = board.loc[0, "consensus.recall.ci_low"], board.loc[0, "consensus.recall.ci_high"]
    assert f"CI [{lo:.4g}, {hi:.4g}]" in res[0].detail


def test_every_cell_failed_is_a_failed_gate_naming_the_first_error(capsys):
    """With every cell failed (a full disk) the results have no metric column: the gate said
    "metric 'consensus.recall' is not in the results" (exit 2), hiding why. It fails like a
    partly failed experiment, with the cells' first error."""
    res = results([None, None, None], status=["error"] * 3)
    res["error"] = "OSError: [Errno 28] No space left on device"
    res = res.drop(columns=["consensus.recall"])
    out = check_absolute(res, [parse_check("consensus.recall>=0.6")], BOOT)
    assert [r.passed for r in out] == [False]
    assert "3 of 3 cells failed" in out[0].detail and "No space left" in out[0].detail
    assert exit_code(out) == 1
    # a typo is still bad input while some cell has figures
    with pytest.raises(InputError, match="consensus.recal"):
        check_absolute(results([0.9, 0.9]), [parse_check("consensus.recal>=0.6")], BOOT)


def test_baseline_compares_the_files_metrics_and_the_gated_ones():
    """A gate check narrowed --baseline to the gated metrics: with ci_gate.yaml (recall and
    precision gated) an F1 or delay regression was never compared."""
    from experiments.gate import baseline_metrics

    got = baseline_metrics([parse_check("consensus.recall>=0.6")],
                           ["consensus.recall", "consensus.f1", "consensus.median_delay_days"])
    assert got == [("consensus.recall", True), ("consensus.f1", True),
                   ("consensus.median_delay_days", False)]
    assert baseline_metrics([], ["consensus.f1"]) == [("consensus.f1", True)]
    # a gated metric keeps the direction of its operator
    assert baseline_metrics([parse_check("consensus.f1<=0.99")], ["consensus.f1"]) == [
        ("consensus.f1", False)]


def test_baseline_leaves_out_what_describes_the_worlds():
    """random_world.yaml's metrics hold world descriptors (events.unwatched, oracle_best.*) and the
    oracle's own figures at the consensus' budget: --baseline failed a run with fewer unwatched
    events or a lower oracle threshold as "worse beyond seed-to-seed noise" (exit 1). A gate
    check on one still compares it, in its operator's direction."""
    from experiments.config import load_experiment
    from experiments.gate import baseline_metrics, describes_world

    cfg = load_experiment(Path(__file__).resolve().parents[2] / "config" / "experiments"
                          / "random_world.yaml")
    got = dict(baseline_metrics([], cfg.config.metrics))
    assert {"consensus.f1", "oracle_equal_fp.ratio", "false_alerts.consensus"} <= set(got)
    assert not {"events.unwatched", "events.unexpected", "oracle_best.threshold", "oracle_best.f1",
                "oracle_equal_fp.oracle_recall", "oracle_equal_fp.oracle_f1"} & set(got)
    assert describes_world("lenient.oracle_best.f1") and not describes_world("lenient.consensus.f1")
    assert baseline_metrics([parse_check("events.unwatched<=3")], ["events.unwatched"]) == [
        ("events.unwatched", False)]
    # the audit's case end to end: a baseline with one more unwatched event passes now
    base = results([0.80, 0.82, 0.81, 0.79]).assign(**{"events.unwatched": [1.0, 2.0, 1.0, 2.0]})
    now = results([0.80, 0.82, 0.81, 0.79]).assign(**{"events.unwatched": [0.0, 1.0, 0.0, 1.0]})
    out = check_baseline(now, base, baseline_metrics([], ["consensus.recall", "events.unwatched"]),
                         BOOT)
    assert [r.passed for r in out] == [True] and "consensus.recall" in out[0].check


def test_levels_counted_without_the_product_watcher():
    """The shipped config has four voters, one of them the product watcher, which is no level:
    a cell writes consensus_levels k1-k3, and the name check accepted k4 (it then failed after
    every cell had run)."""
    from analytics.config import DEFAULT_CONFIG_PATH
    from experiments.metric_names import producible_metrics
    from shocklab.configio import load_yaml

    names = producible_metrics(load_yaml(DEFAULT_CONFIG_PATH))
    assert "consensus_levels.k3.recall" in names
    assert not any(n.startswith("consensus_levels.k4") for n in names)


def test_false_alert_rates_improve_downwards():
    """``false_alerts.consensus`` (a metric of random_world.yaml, null_world.yaml's rank_by) was
    read as higher-is-better: --baseline passed a rise in false alerts beyond noise and failed a
    fall, and null_world's leaderboard ranked the noisiest setting first (audit-metrics)."""
    from experiments.config import higher_is_better
    from experiments.gate import baseline_metrics
    from experiments.results import leaderboard

    assert not higher_is_better("false_alerts.consensus")
    assert not higher_is_better("false_alerts.detectors.rolling_zscore")
    assert higher_is_better("consensus.recall") and not higher_is_better("consensus.fp")
    assert not higher_is_better("oracle_equal_fp.seen_at_cut")   # events the bound lost
    assert baseline_metrics([], ["false_alerts.consensus"]) == [("false_alerts.consensus", False)]

    def fa(values, setting="s1"):
        df = results([0.9] * len(values), setting=setting)
        return df.assign(**{"false_alerts.consensus": values})

    base = fa([0.010, 0.012, 0.011, 0.009])
    worse = check_baseline(fa([0.050, 0.052, 0.049, 0.051]), base,
                           [("false_alerts.consensus", higher_is_better("false_alerts.consensus"))],
                           BOOT)
    better = check_baseline(fa([0.001, 0.002, 0.001, 0.002]), base,
                            [("false_alerts.consensus",
                              higher_is_better("false_alerts.consensus"))], BOOT)
    assert [r.passed for r in worse] == [False] and [r.passed for r in better] == [True]
    board = leaderboard(pd.concat([fa([0.05] * 4, "noisy"), fa([0.01] * 4, "quiet")]),
                        ["false_alerts.consensus"], "false_alerts.consensus", BOOT)
    assert board["setting_id"].tolist() == ["quiet", "noisy"]


@pytest.mark.parametrize(("op", "passed"), [(">=", True), (">", False), ("<=", True), ("<", False)])
def test_a_mean_exactly_on_the_bar_meets_an_inclusive_bar_only(op, passed):
    """Every seed at 0.9: the interval is [0.9, 0.9]. ``>=0.9`` and ``<=0.9`` are met; ``>0.9``
    and ``<0.9`` are missed beyond doubt (module docstring: for ``>`` the upper end at or below
    the bar fails). No test held a figure on the bar: ``>=`` failing there passed."""
    res = check_absolute(results([0.9] * 4), [parse_check(f"consensus.recall{op}0.9")], BOOT)
    assert [r.passed for r in res] == [passed], res[0].detail


def test_lower_is_better_baseline_fails_only_when_the_whole_interval_is_worse():
    """The mirror of the recall checks for a lower-is-better metric (median delay): a rise on
    every seed fails, an uneven change whose interval straddles zero passes. Only the clear
    cases were tested: failing on the interval's upper end alone (mutant X06) passed."""
    base = results([0.9] * 5).assign(**{"consensus.median_delay_days": [2.0, 3.0, 2.0, 4.0, 3.0]})
    metric = [("consensus.median_delay_days", False)]

    def cur(delays):
        return results([0.9] * 5).assign(**{"consensus.median_delay_days": delays})

    rise = check_baseline(cur([3.0, 4.0, 3.0, 5.0, 4.0]), base, metric, BOOT)
    assert not rise[0].passed and "entirely above 0" in rise[0].detail
    mixed = check_baseline(cur([1.0, 4.0, 2.0, 3.0, 5.0]), base, metric, BOOT)
    assert mixed[0].passed, mixed[0].detail


def test_two_shared_seeds_are_compared_paired_and_disjoint_seeds_unpaired():
    """Paired from two shared seeds on (the module docstring), else each side resampled apart;
    the reported change is current minus baseline either way (a drop reads negative)."""
    base = results([0.9, 0.8], seeds=[1, 2])
    paired = check_baseline(results([0.7, 0.6], seeds=[1, 2]), base,
                            [("consensus.recall", True)], BOOT)
    assert "paired over 2 seeds" in paired[0].detail and "change -0.2" in paired[0].detail
    apart = check_baseline(results([0.7, 0.6], seeds=[3, 4]), base,
                           [("consensus.recall", True)], BOOT)
    assert "unpaired, 2 vs 2 seeds" in apart[0].detail and "change -0.2" in apart[0].detail


def test_a_strict_lower_bar_is_compared_as_higher_is_better():
    """``metric>bar`` asks for more, like ``>=``: the baseline comparison must read the metric
    as higher-is-better (mutant X10 read ``>`` as lower-is-better and passed)."""
    from experiments.gate import baseline_metrics

    for op, higher in ((">", True), (">=", True), ("<", False), ("<=", False)):
        assert baseline_metrics([("x.score", op, 1.0)], []) == [("x.score", higher)], op


def test_an_interval_ending_at_the_bar_is_not_beyond_it():
    """Resampled means of equal figures carry float error (six seeds at 0.8 average to
    0.7999999999999999): five seeds at recall 0.8 and one at 0.6 read "CI [0.7, 0.8] ... is
    entirely below the bar >=0.8" (exit 1), and unchanged figures over other seeds read "worse
    beyond seed-to-seed noise" against their baseline (audit-cigate)."""
    at_bar = check_absolute(results([0.8] * 5 + [0.6]), [parse_check("consensus.recall>=0.8")],
                            BOOT)
    assert [r.passed for r in at_bar] == [True], at_bar[0].detail
    assert "CI [0.7, 0.8]" in at_bar[0].detail and exit_code(at_bar) == 0
    # the strict operators: an interval ending at the bar misses it
    assert not check_absolute(results([0.8] * 5 + [0.6]), [parse_check("consensus.recall>0.8")],
                              BOOT)[0].passed
    assert check_absolute(results([0.2] * 5 + [0.4]), [parse_check("consensus.recall<=0.2")],
                          BOOT)[0].passed
    assert not check_absolute(results([0.2] * 5 + [0.4]), [parse_check("consensus.recall<0.2")],
                              BOOT)[0].passed
    same = check_baseline(results([0.8] * 6, seeds=list(range(10, 16))),
                          results([0.8] * 5), [("consensus.recall", True)], BOOT)
    assert [r.passed for r in same] == [True], same[0].detail
    # a drop of exactly max_drop on every seed is tolerated, whatever its float error
    for cur, base in (([0.87, 0.77, 0.92], [0.92, 0.82, 0.97]), ([0.65, 0.75], [0.7, 0.8])):
        assert check_baseline(results(cur), results(base), [("consensus.recall", True)], BOOT,
                              max_drop=0.05)[0].passed


def test_a_gate_on_an_event_type_no_world_holds_fails_after_the_run(capsys):
    """README: a by_type figure of a type no world holds fails the gate after the run ("no
    value on any seed", exit 1). The results then have no such column at all, and the gate said
    "metric ... is not in the results" (exit 2, bad input) after every cell had run, and removed
    the earlier gate.json without a verdict (audit-cigate)."""
    check = parse_check("consensus.by_type.level_shift.recall>=0.5")
    out = check_absolute(results([0.9, 0.95, 1.0]), [check], BOOT)
    assert [r.passed for r in out] == [False]
    assert "has no value on any seed" in out[0].detail
    assert exit_code(out) == 1
    assert "consensus.by_type.level_shift.recall>=0.5 [s1]" in capsys.readouterr().err
    # against a baseline: no comparable values, a failed check, not bad input
    vs = check_baseline(results([0.9, 0.95]), results([0.9, 0.95]),
                        [("consensus.by_scope.product.recall", True)], BOOT)
    assert [r.passed for r in vs] == [False] and "no comparable values" in vs[0].detail
    # a name that is no world's figure is still bad input
    with pytest.raises(InputError, match="consensus.recal"):
        check_absolute(results([0.9]), [parse_check("consensus.recal>=0.6")], BOOT)


def test_a_gate_on_a_consensus_level_a_failed_voter_removed_fails():
    """A voter that crashed in a cell leaves fewer voters there, so the top k-of-n level does
    not exist on that seed: 'consensus_levels.k3.recall>=0.9' was the mean over the seeds where
    all three voted and passed with a voter failing on two seeds of three (audit-cigate
    leftover)."""
    df = results([1.0, 1.0, 1.0]).assign(**{
        "consensus.events": [8.0, 8.0, 8.0],
        "consensus_levels.k2.events": [8.0, 8.0, 8.0],
        "consensus_levels.k2.recall": [0.95, 0.9, 1.0],
        "consensus_levels.k3.events": [8.0, None, None],
        "consensus_levels.k3.recall": [0.95, None, None]})
    for check in ("consensus_levels.k3.recall>=0.9", "lenient.consensus_levels.k3.recall>=0.5"):
        got = check_absolute(df, [parse_check(check)], BOOT)
        assert [r.passed for r in got] == [False], got
        assert "consensus level k3 was not scored on 2 of 3 seeds" in got[0].detail
    assert check_absolute(df, [parse_check("consensus_levels.k2.recall>=0.9")], BOOT)[0].passed
    # on no seed (a voter failed everywhere): a failed check, not bad input
    gone = check_absolute(df.drop(columns=["consensus_levels.k3.events",
                                           "consensus_levels.k3.recall"]),
                          [parse_check("consensus_levels.k3.recall>=0.9")], BOOT)
    assert [r.passed for r in gone] == [False] and "not scored on 3 of 3" in gone[0].detail
    vs = check_baseline(df, df.assign(**{"consensus_levels.k3.recall": [0.95] * 3}),
                        [("consensus_levels.k3.recall", True)], BOOT)
    assert [r.passed for r in vs] == [False] and "not scored on 2 of 3" in vs[0].detail


def test_a_gate_on_a_detector_that_did_not_run_on_a_seed_fails():
    """A detector that crashed in a cell (the others voted; the cell is ok) has no figures
    there: its recall was averaged over the other seeds, so 'detectors.x.recall>=0.9' passed
    with x failing on two seeds of three, and with x failing on all of them the gate said the
    metric 'is not in the results' (exit 2, bad input) (audit-cigate)."""
    df = results([1.0, 1.0, 1.0]).assign(**{
        "consensus.events": [8.0, 8.0, 8.0],
        "detectors.x.events": [8.0, None, None], "detectors.x.recall": [0.95, None, None],
        "detectors.y.events": [8.0, 8.0, 8.0], "detectors.y.recall": [0.95, 0.9, 1.0],
        "false_alerts.detectors.x": [0.01, None, None],
        "detectors.y.median_delay_days": [None, None, 1.0]})   # no delay: nothing caught
    for check in ("detectors.x.recall>=0.9", "false_alerts.detectors.x<=0.5",
                  "lenient.detectors.x.recall>=0.5"):
        got = check_absolute(df, [parse_check(check)], BOOT)
        assert [r.passed for r in got] == [False], got
        assert "detector x did not run on 2 of 3 seeds" in got[0].detail
        assert exit_code(got) == 1
    # a detector that ran everywhere is judged on its figures, missing values and all
    assert check_absolute(df, [parse_check("detectors.y.recall>=0.9")], BOOT)[0].passed
    assert check_absolute(df, [parse_check("detectors.y.median_delay_days<=1")], BOOT)[0].passed
    # on no seed: a failed check, not bad input
    gone = check_absolute(df.drop(columns=["detectors.x.events", "detectors.x.recall"]),
                          [parse_check("detectors.x.recall>=0.9")], BOOT)
    assert [r.passed for r in gone] == [False] and "did not run on 3 of 3" in gone[0].detail
    vs = check_baseline(df, df.assign(**{"detectors.x.recall": [0.95] * 3}),
                        [("detectors.x.recall", True)], BOOT)
    assert [r.passed for r in vs] == [False] and "did not run on 2 of 3" in vs[0].detail
    # a baseline without the detector is a baseline of another analysis: bad input, as before
    with pytest.raises(InputError, match="--baseline detectors.x.recall vs baseline"):
        check_baseline(df, df.drop(columns=["detectors.x.recall"]),
                       [("detectors.x.recall", True)], BOOT)


def test_the_figures_in_a_verdict_are_on_their_side_of_the_bar():
    """Four significant digits put an upper end of 0.89996 at 0.9: "CI [0.8999, 0.9] ... is
    entirely below the bar >=0.9"; and a bar of 0.9000001 was named >=0.9 (audit-cigate)."""
    df = results([0.9] + [0.8999] * 4)
    got = check_absolute(df, [parse_check("consensus.recall>=0.9")], BOOT)[0]
    assert not got.passed and "CI [0.8999, 0.89996] over 5 seeds is entirely below the bar >=0.9" \
        in got.detail, got.detail
    fine = check_absolute(df, [parse_check("consensus.recall>=0.9000001")], BOOT)[0]
    assert fine.check == "consensus.recall>=0.9000001" and fine.detail.endswith(">=0.9000001")
    # away from the bar, four digits as before
    assert "mean 0.8999, 95% CI [0.8999, 0.9]" in check_absolute(
        df, [parse_check("consensus.recall>=0.5")], BOOT)[0].detail


def test_max_drop_per_metric_tolerates_each_metric_in_its_own_units():
    """gate.max_drop as a mapping: five points of recall and one day of delay are different
    sizes; one number had to serve both (0.05 days of delay, or a recall drop of 1)."""
    base = results([0.9, 0.8, 0.95, 0.85, 0.9])
    cur = results([0.87, 0.77, 0.92, 0.82, 0.87])
    cur["consensus.median_delay_days"] = 1.8          # 0.8 days later on every seed
    metrics = [("consensus.recall", True), ("consensus.median_delay_days", False)]
    both = check_baseline(cur, base, metrics, BOOT,
                          max_drop={"consensus.recall": 0.05, "consensus.median_delay_days": 1})
    assert [r.passed for r in both] == [True, True], [r.detail for r in both]
    assert "above +1" in both[1].detail and "below -0.05" in both[0].detail
    # a metric the mapping does not name gets 'default', else 0
    only_recall = check_baseline(cur, base, metrics, BOOT, max_drop={"consensus.recall": 0.05})
    assert [r.passed for r in only_recall] == [True, False]
    assert "entirely above 0" in only_recall[1].detail
    dflt = check_baseline(cur, base, metrics, BOOT,
                          max_drop={"consensus.recall": 0.01, "default": 2})
    assert [r.passed for r in dflt] == [False, True]
    # one number still applies to every metric: 0.05 days of delay fails, as before
    one = check_baseline(cur, base, metrics, BOOT, max_drop=0.05)
    assert [r.passed for r in one] == [True, False]


def test_max_drop_mapping_is_checked_when_the_file_is_read():
    from experiments.drops import max_drop_problem

    compared = ["consensus.recall", "consensus.median_delay_days"]
    assert max_drop_problem({"consensus.recall": 0.05, "consensus.median_delay_days": 3},
                            compared) is None
    assert max_drop_problem({"default": 0.02}, compared) is None
    typo = max_drop_problem({"consensus.recal": 0.05}, compared)
    assert typo.startswith("gate.max_drop: 'consensus.recal' is not a compared metric")
    assert "consensus.recall, consensus.median_delay_days" in typo
    frac = max_drop_problem({"consensus.recall": 5}, compared)
    assert frac.startswith("gate.max_drop.consensus.recall: 5 is a tolerated drop")
    assert max_drop_problem({"default": 1}, compared).startswith("gate.max_drop.default: 1")
    # the delay may take days under 'default' when the fraction has its own
    assert max_drop_problem({"consensus.recall": 0.05, "default": 2}, compared) is None
    # the command line's --gate adds metrics the file does not list: keys are not checked there
    assert max_drop_problem({"consensus.f1": 0.05}, ["consensus.recall"], keys=False) is None


def test_a_per_metric_max_drop_judges_a_real_experiment_run(write_experiment, tmp_path):
    """The file's mapping reaches the --baseline comparison: the run's gate.json passes a recall
    0.03 and a delay 0.5 days worse than the baseline under {recall: 0.05, delay: 1}, and fails
    the delay under one number (0.05 for both)."""
    import json

    from tests.experiments.exp_fakes import fake_cell

    from experiments.config import load_experiment
    from experiments.experiment import run

    def go(name, **fields):
        return run(load_experiment(write_experiment(f"{name}.yaml", **fields)),
                   tmp_path / name, cell_fn=fake_cell, progress=False, plots=False,
                   baseline=baseline)

    baseline = None
    first = go("base").results
    baseline = first.assign(**{"consensus.recall": first["consensus.recall"] + 0.03,
                               "consensus.median_delay_days":
                                   first["consensus.median_delay_days"] - 0.5})
    per = go("per", gate={"checks": [], "max_drop": {"consensus.recall": 0.05,
                                                     "consensus.median_delay_days": 1}})
    verdict = {c["metric"]: c["passed"]
               for c in json.loads((tmp_path / "per" / "gate.json").read_text())["checks"]}
    assert per.gate and all(r.passed for r in per.gate), [r.detail for r in per.gate]
    assert verdict["consensus.recall"] and verdict["consensus.median_delay_days"]
    one = go("one", gate={"checks": [], "max_drop": 0.05})
    failed = {r.metric for r in one.gate if not r.passed}
    assert failed == {"consensus.median_delay_days"}, [r.detail for r in one.gate]


def test_set_adds_a_metric_to_a_per_metric_max_drop(write_experiment):
    """--set gate.max_drop.consensus.median_delay_days=2: metric names hold dots, so the rest of
    the key is one metric (it nested {consensus: {median_delay_days: 2}}, refused as no drop)."""
    from experiments.config import load_experiment

    path = write_experiment(gate={"checks": [], "max_drop": {"consensus.recall": 0.05}})
    got = load_experiment(path, ["gate.max_drop.consensus.median_delay_days=2",
                                 "gate.max_drop.consensus.recall=0.02"]).config.gate.max_drop
    assert got == {"consensus.recall": 0.02, "consensus.median_delay_days": 2}


def test_set_one_metric_on_a_file_with_one_max_drop_keeps_it_for_the_others(write_experiment):
    """config/experiments/ci_gate.yaml sets ``max_drop: 0.0``; --set
    gate.max_drop.consensus.recall=0.02 stopped at the number ("gate.max_drop is not a mapping or
    list", exit 2). The number becomes the default, so every other metric keeps it."""
    from experiments.config import load_experiment
    from experiments.drops import drop_for

    path = write_experiment(gate={"checks": [], "max_drop": 0.01})
    got = load_experiment(path, ["gate.max_drop.consensus.recall=0.02"]).config.gate.max_drop
    assert got == {"default": 0.01, "consensus.recall": 0.02}
    assert drop_for(got, "consensus.f1") == 0.01 and drop_for(got, "consensus.recall") == 0.02
    # a whole-value --set before it is the default too (it stopped there the same way)
    got = load_experiment(path, ["gate.max_drop=0.03",
                                 "gate.max_drop.consensus.recall=0.02"]).config.gate.max_drop
    assert got == {"default": 0.03, "consensus.recall": 0.02}
    # without a per-metric override the file's number stays a number
    assert load_experiment(path, ["gate.max_drop=0.03"]).config.gate.max_drop == 0.03
    assert load_experiment(path).config.gate.max_drop == 0.01


def test_set_one_metric_on_the_shipped_ci_gate(tmp_path):
    from experiments.config import load_experiment

    root = Path(__file__).resolve().parents[2]
    got = load_experiment(root / "config/experiments/ci_gate.yaml",
                          ["gate.max_drop.consensus.median_delay_days=1"]).config.gate.max_drop
    assert got == {"default": 0.0, "consensus.median_delay_days": 1}
