"""run_analysis.py: exit codes, outputs, determinism, external series, failing detectors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import run_analysis

from shocklab.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--detectors", "rolling_zscore,isolation_forest,oracle"]


def cli(*args: str) -> int:
    return run_cli(run_analysis.main, list(args))


def test_bad_flag_exits_2_from_repo_root():
    p = subprocess.run(
        [sys.executable, "run_analysis.py", "--bogus"], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [
        "error: run_analysis.py: unrecognized arguments: --bogus (see --help)"
    ]


@pytest.mark.parametrize("script,args,needle", [
    ("analysis", ["--min-recall=--"], "argument --min-recall: invalid float value: '--'"),
    ("analysis", ["--set=--"], "--set '--': expected dotted.key=value"),
    ("analysis", ["--data=--"], "--: data directory not found"),
    ("experiment", ["--workers=--"], "argument --workers: invalid int value: '--'"),
    ("experiment", ["--executor=--"], "argument --executor: invalid choice: '--'"),
])
def test_a_double_dash_as_a_flags_value_is_one_line_exit_2(tmp_path, capsys, script, args,
                                                          needle):
    """argparse handed '--min-recall=--' an empty list past the flag's type and choices: exit 3
    (internal error) for a bad gate value, and '--executor=--' ran the experiment on the default
    executor (audit-cigate)."""
    import run_experiment

    out = tmp_path / "out"
    if script == "analysis":
        code = cli(*args, "--out", str(out))
    else:
        code = run_cli(run_experiment.main, ["--config", str(ROOT / "config/experiments/"
                                                              "ci_gate.yaml"), *args,
                                             "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and needle in err, (code, err)
    assert not out.exists()


def test_missing_data_dir_exits_2_and_writes_nothing(tmp_path, capsys):
    assert cli("--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")) == 2
    assert "data directory not found" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_unknown_detector_lists_known(synth_dir, tmp_path, capsys):
    assert (
        cli("--data", str(synth_dir), "--out", str(tmp_path / "run"), "--detectors", "zscore") == 2
    )
    err = capsys.readouterr().err
    assert (
        "unknown detector 'zscore' (known: rolling_zscore, rolling_zscore_week, count_likelihood, "
        "isolation_forest, prophet_residual, product_watch, oracle)"
        in err
    )
    assert not (tmp_path / "run").exists()


def test_bad_config_value_exits_2(synth_dir, tmp_path, capsys):
    assert (
        cli(
            "--data",
            str(synth_dir),
            "--out",
            str(tmp_path / "r"),
            "--set",
            "detectors.rolling_zscore.window=1",
        )
        == 2
    )
    assert (
        "detectors.rolling_zscore.window: Input should be greater than or equal to 3"
        in capsys.readouterr().err
    )
    assert (
        cli("--data", str(synth_dir), "--out", str(tmp_path / "r"), "--set", "kpis=[profit]") == 2
    )
    assert "unknown KPI 'profit'" in capsys.readouterr().err


def test_run_writes_outputs_and_gate_fails_with_1(synth_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli("--data", str(synth_dir), "--out", str(out), *FAST, "--min-recall", "0.5") == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "kpis_daily.csv",
        "detections.csv",
        "incidents.json",
        "scorecard.json",
        "run.json",
        "tables",
    } <= names
    card = json.loads((out / "scorecard.json").read_text())
    assert card["headline"]["recall"] == 1.0
    run = json.loads((out / "run.json").read_text())
    assert run["detector_status"]["rolling_zscore"]["ok"] and "detect" in run["timings_seconds"]
    # one list of versions: run.json and insights.json record the same packages and versions
    insights = json.loads((out / "insights.json").read_text())
    assert run["versions"] == insights["run"]["versions"]
    assert {"python", "shocklab", "numpy", "pandas", "scikit-learn"} <= set(run["versions"])
    assert "Scoring (strict" in capsys.readouterr().out
    # an impossible bar: exit 1 naming the figure and the bar; the run directory is still written
    assert (
        cli(
            "--data",
            str(synth_dir),
            "--out",
            str(out),
            *FAST,
            "--set",
            "detectors.rolling_zscore.threshold=90",
            "--set",
            "detectors.isolation_forest.threshold=90",
            "--min-recall",
            "0.9",
        )
        == 1
    )
    assert "FAILED: consensus recall 0.0000 < --min-recall 0.9" in capsys.readouterr().err
    assert (out / "scorecard.json").exists()


def test_gate_message_shows_the_figure_the_bar_was_held_to(tmp_path, capsys):
    """Two of three labelled windows caught: recall 0.6667 in the scorecard. A bar equal to it
    passes; one just above fails, and the message said "consensus recall 0.667 < --min-recall
    0.66675" — a figure above the bar, read as a pass that failed (audit-cigate)."""
    rng = np.random.default_rng(0)
    v = 100 + rng.normal(0, 2, 120)
    v[60:62] -= 40
    v[90:92] -= 40
    kpis, ev = tmp_path / "k.csv", tmp_path / "ev.json"
    pd.DataFrame({"date": pd.date_range("2025-01-01", periods=120).strftime("%Y-%m-%d"),
                  "signups": v.round(2)}).to_csv(kpis, index=False)
    ev.write_text(json.dumps([{"start": "2025-03-02", "end": "2025-03-03"},
                              {"start": "2025-04-01", "end": "2025-04-02"},
                              {"start": "2025-02-10", "end": "2025-02-10"}]))
    out = tmp_path / "run"
    args = ["--kpis", str(kpis), "--events", str(ev), "--out", str(out), "--quiet"]
    assert cli(*args, "--min-recall", "0.6667", "--min-precision", "1") == 0
    head = json.loads((out / "scorecard.json").read_text())["headline"]
    assert (head["recall"], head["precision"]) == (0.6667, 1.0)
    capsys.readouterr()
    assert cli(*args, "--min-recall", "0.66675") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FAILED: consensus recall 0.6667 < --min-recall 0.66675" in err[0], err
    assert (out / "scorecard.json").exists()


def test_a_gate_with_no_voting_detector_is_bad_input(synth_dir, tmp_path, capsys):
    """'--detectors oracle --min-recall 0.5': the oracle never votes, so the consensus was empty
    and the gate "failed" with recall 0 (exit 1: a quality verdict for a run that could not
    have one). Without a gate the oracle alone still runs (audit-cigate)."""
    out = tmp_path / "run"
    assert cli("--data", str(synth_dir), "--out", str(out), "--detectors", "oracle",
               "--min-precision", "0.5") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "judge the consensus, and --detectors oracle " \
        "enables no voting detector" in err, err
    assert not out.exists()
    assert cli("--data", str(synth_dir), "--out", str(out), "--detectors", "oracle") == 0


def test_identical_inputs_identical_bytes(synth_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert cli("--data", str(synth_dir), "--out", str(a), *FAST) == 0
    assert cli("--data", str(synth_dir), "--out", str(b), *FAST) == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != "run.json")
    assert len(files) >= 8
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_default_out_is_deterministic_run_id(synth_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("--data", str(synth_dir), *FAST) == 0
    (run_dir,) = list((tmp_path / "reports").iterdir())
    assert run_dir.name.startswith("synth-") and len(run_dir.name) == len("synth-") + 12
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_dir.name


def test_without_truth_no_scorecard_and_gates_are_bad_input(synth_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    shutil.rmtree(data / "truth")
    assert (
        cli(
            "--data",
            str(data),
            "--out",
            str(tmp_path / "r"),
            *FAST[:1],
            "rolling_zscore,isolation_forest",
        )
        == 0
    )
    assert not (tmp_path / "r" / "scorecard.json").exists()
    assert (tmp_path / "r" / "incidents.json").exists()
    assert cli("--data", str(data), "--out", str(tmp_path / "r2"), "--detectors", "oracle") == 2
    assert cli("--data", str(data), "--out", str(tmp_path / "r3"), "--min-recall", "0.5") == 2
    assert "need truth" in capsys.readouterr().err


@pytest.mark.parametrize("field,value,msg", [
    ("container_effects", [{"dimension": "channel", "effects": {}}], "container_effects[0]"),
    ("container_effects", {"channel": {}}, "'container_effects' must be a list"),
    ("scope_effects", {"sessions": "minus 60 %"}, "'scope_effects' must map"),
])
def test_malformed_truth_effects_are_bad_input(synth_dir, tmp_path, capsys, field, value, msg):
    """Scoring reads the effects fields of truth/events.json: a malformed one is one line naming
    the file, the event and the field, exit 2 before any stage runs, and no run directory."""
    data = tmp_path / "data"
    shutil.copytree(synth_dir, data)
    path = data / "truth" / "events.json"
    events = json.loads(path.read_text())
    events[0][field] = value
    path.write_text(json.dumps(events))
    out = tmp_path / "r"
    assert cli("--data", str(data), "--out", str(out), "--no-verify", *FAST) == 2
    err = capsys.readouterr().err
    assert msg in err and "events.json: event [0]" in err and "Traceback" not in err
    assert not out.exists()


def test_failing_detector_does_not_kill_the_run(synth_dir, tmp_path, monkeypatch):
    from analytics.detectors.isolation_forest import IsolationForestDetector

    def boom(self, series, inp):
        raise RuntimeError("cannot fit\nsecond line")
    monkeypatch.setattr(IsolationForestDetector, "_detect_core", boom)
    out = tmp_path / "run"
    assert cli("--data", str(synth_dir), "--out", str(out), *FAST) == 0
    inc = json.loads((out / "incidents.json").read_text())
    assert inc["detector_status"]["isolation_forest"] == {
        "ok": False,
        "error": "RuntimeError: cannot fit",
    }
    assert inc["rule"]["voters"] == ["rolling_zscore"]
    card = json.loads((out / "scorecard.json").read_text())
    assert card["failed_detectors"] == {"isolation_forest": "RuntimeError: cannot fit"}
    assert card["headline"]["recall"] == 1.0


def _hourly(tmp_path, edit=None):
    rng = np.random.default_rng(5)
    ts = pd.date_range("2025-03-01", periods=24 * 40, freq="h")
    daily = 1 + 0.3 * np.sin(2 * np.pi * np.arange(len(ts)) / 24)
    df = pd.DataFrame(
        {
            "timestamp": ts,
            "requests": 500 * daily * (1 + rng.normal(0, 0.03, len(ts))),
            "errors": 20 + rng.normal(0, 1, len(ts)),
        }
    )
    df.loc[800:802, "requests"] *= 0.3
    if edit:
        df = edit(df)
    path = tmp_path / "kpis.csv"
    df.to_csv(path, index=False)
    events = tmp_path / "events.json"
    events.write_text(
        json.dumps(
            [
                {
                    "start": str(ts[800]),
                    "end": str(ts[802]),
                    "kpi": "requests",
                    "direction": "down",
                    "type": "outage",
                }
            ]
        )
    )
    return path, events


def test_external_hourly_series_scored(tmp_path):
    path, events = _hourly(tmp_path)
    out = tmp_path / "run"
    assert (
        cli(
            "--kpis",
            str(path),
            "--events",
            str(events),
            "--out",
            str(out),
            "--detectors",
            "rolling_zscore,isolation_forest",
            "--set",
            "consensus.min_votes=1",
        )
        == 0
    )
    card = json.loads((out / "scorecard.json").read_text())
    assert card["headline"]["recall"] == 1.0
    det = pd.read_csv(out / "detections.csv")
    assert set(det["kpi"]) == {"requests", "errors"} and det["date"].str.contains(":").all()
    incs = json.loads((out / "incidents.json").read_text())["incidents"]
    assert len({i["incident_id"] for i in incs}) == len(incs)
    assert any(i["incident_id"].startswith("I-requests-overall-all-2025-04-03T0") for i in incs), (
        incs
    )


@pytest.mark.parametrize(
    "events,message",
    [
        ([{"start": "2025-03-02"}], r"each event needs 'start' and 'end'"),
        (
            [{"start": "2025-03-05", "end": "2025-03-02"}],
            r"end 2025-03-02 00:00:00 is before start",
        ),
        (
            [{"start": "2025-03-02", "end": "2025-03-02", "kpi": "latency"}],
            r"'latency' is not a column of the KPI file",
        ),
    ],
)
def test_external_bad_events_exit_2(tmp_path, capsys, events, message):
    path, ev = _hourly(tmp_path)
    ev.write_text(json.dumps(events))
    assert cli("--kpis", str(path), "--events", str(ev), "--out", str(tmp_path / "run")) == 2
    assert re.search(message, capsys.readouterr().err)


def test_analyse_entry_for_sweeps(synth_dir):
    """The experiment runner's call: a raw mapping after overrides, no run directory."""
    from evaluation.pipeline import analyse
    from shocklab.configio import apply_overrides, load_yaml

    raw = apply_overrides(load_yaml(ROOT / "config" / "analysis.yaml"),
                          ["detectors.prophet_residual.enabled=false", "consensus.min_votes=1",
                           "insights.plots=false", "customers.plots=false"])   # none read here
    card = analyse(synth_dir, raw_config=raw)
    assert card["settings"]["voters"] == [  # product_watch: alone, on product series only
        "rolling_zscore",
        "count_likelihood",
        "isolation_forest",
        "product_watch",
    ]
    assert card["settings"]["min_votes"] == 1 and card["headline"]["recall"] == 1.0
    only = analyse(synth_dir, raw_config=raw, detectors=["rolling_zscore"])
    assert only["settings"]["voters"] == ["rolling_zscore"]


@pytest.mark.parametrize(
    "edit,message",
    [
        # gaps, duplicates and empty cells are handled (tests/analytics/test_external_kpis.py);
        # these are not
        (
            lambda d: d.assign(requests=d["requests"].where(d.index != 5, -np.inf)),
            r"column 'requests' has an infinite",
        ),
        (lambda d: d.iloc[:2], r"need at least 3 distinct timestamps, got 2"),
        (
            lambda d: d.assign(errors=d["errors"].astype(object).where(d.index != 9, "x")),
            r"got 'x' \(data row 10\)",
        ),
        (lambda d: d.iloc[:0], r"table is empty"),
    ],
)
def test_external_bad_input_exits_2(tmp_path, capsys, edit, message):
    path, _ = _hourly(tmp_path, edit)
    assert (
        cli("--kpis", str(path), "--out", str(tmp_path / "run"), "--detectors", "rolling_zscore")
        == 2
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_every_detector_failing_still_writes_a_run(synth_dir, tmp_path, monkeypatch, capsys):
    from analytics.detectors.rolling_zscore import RollingZScore

    def boom(self, series, inp):
        raise ValueError("no data left")
    monkeypatch.setattr(RollingZScore, "_detect_core", boom)
    out = tmp_path / "run"
    assert (
        cli(
            "--data",
            str(synth_dir),
            "--out",
            str(out),
            "--detectors",
            "rolling_zscore",
            "--min-recall",
            "0.5",
        )
        == 1
    )
    card = json.loads((out / "scorecard.json").read_text())
    assert card["headline"]["recall"] == 0.0 and card["strict"]["consensus"]["incidents"] == 0
    assert card["failed_detectors"] == {"rolling_zscore": "ValueError: no data left"}
    assert "consensus recall 0.0000 < --min-recall 0.5" in capsys.readouterr().err


# ---------------------------------------------------------------- --transactions and --as-of
TRANSACTIONS = ROOT / "tests" / "fixtures" / "transactions" / "online_retail_ii.csv"


def test_transactions_file_runs_everything_but_scoring(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        cli("--transactions", str(TRANSACTIONS), "--out", str(out), *FAST[:1], "rolling_zscore")
        == 0
    )
    assert not (out / "scorecard.json").exists()
    doc = json.loads((out / "insights.json").read_text())
    cleaning = doc["customers"]["cleaning"]
    assert cleaning["rows_read"] > cleaning["rows_kept"] > 0  # the fixture has dirty rows
    assert sum(cleaning["removed"].values()) == cleaning["rows_read"] - cleaning["rows_kept"]
    assert (out / "customers" / "segments.csv").is_file()
    assert json.loads((out / "run.json").read_text())["data"]["source"] == "transactions"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transactions", "nope.csv"], "nope.csv"),
        (["--transactions", str(TRANSACTIONS), "--kpis", str(TRANSACTIONS)], "give one"),
        # --data beside another input was ignored without a word (the other one was analysed)
        (["--data", str(TRANSACTIONS.parent), "--transactions", str(TRANSACTIONS)],
         "--data and --transactions are two different inputs: give one"),
        (["--data", str(TRANSACTIONS.parent), "--kpis", str(TRANSACTIONS)],
         "--data and --kpis are two different inputs: give one"),
        (
            ["--transactions", str(TRANSACTIONS), "--as-of", "2025-13-01"],
            "--as-of: expected a date YYYY-MM-DD",
        ),
    ],
)
def test_transactions_and_as_of_bad_input(tmp_path, capsys, args, message):
    assert cli(*args, "--out", str(tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_as_of_runs_the_monitor_for_one_day_with_persistent_state(synth_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    day = pd.read_csv(synth_dir / "orders.csv").order_date.max()
    assert cli("--data", str(synth_dir), "--as-of", day, *FAST) == 0
    (run_dir,) = list((tmp_path / "reports").iterdir())
    assert run_dir.name.endswith(f"-as-of-{day}")  # one run directory per judged day
    assert (tmp_path / "state" / "customers.sqlite").is_file()  # cooldowns survive the run
    doc = json.loads((run_dir / "insights.json").read_text())
    assert doc["customers"]["as_of"] == day


def test_help_run_id_names_the_labels_and_suffix_run_id_uses(tmp_path):
    """--help said run ids are always <scenario>-<hash>; a --kpis run's is the file's name and an
    --as-of run's ends in -as-of-<DATE> (run_analysis.main adds it)."""
    from tests.configs import make_config

    from analytics.context import DataSet
    from analytics.pipeline import run_id

    text = " ".join(run_analysis.build_parser().format_help().split())
    assert "-as-of-<DATE> with --as-of" in text and "--kpis/--transactions file's name" in text
    ds = DataSet(tables={}, manifest={}, path=tmp_path / "metrics.csv", source="kpis")
    assert run_id(ds, make_config(), "0" * 64).startswith("metrics")


def test_help_says_a_config_file_is_layered_over_the_shipped_one(tmp_path):
    """--help said only "analysis config"; a partial file is layered over config/analysis.yaml
    (ARCHITECTURE principle 3), which a user setting one key needs to know."""
    from analytics.config import load_analysis_config

    text = " ".join(run_analysis.build_parser().format_help().split())
    assert "layered over this checkout's config/analysis.yaml" in text and "base: none" in text
    part = tmp_path / "part.yaml"
    part.write_text("consensus:\n  min_votes: 3\n")
    cfg = load_analysis_config(part, [])
    shipped = load_analysis_config(None, [])
    assert cfg.consensus.min_votes == 3
    assert cfg.model_dump(exclude={"consensus"}) == shipped.model_dump(exclude={"consensus"})


def test_help_says_no_verify_still_checks_and_records(tmp_path):
    """--help said --no-verify skips the checks; they still run, and each mismatch becomes a
    warning in run.json's input_checks (and a new run id) instead of exit 2."""
    from analytics.loading import verify_manifest

    text = " ".join(run_analysis.build_parser().format_help().split())
    assert "skip the sha256" not in text and "recorded in run.json input_checks" in text
    (tmp_path / "a.csv").write_text("x\n1\n")
    manifest = {"files": {"a.csv": "0" * 64}}
    report = verify_manifest(tmp_path, manifest, {}, verify=False)
    assert report["verified"] is False and report["mismatches"]


@pytest.mark.parametrize("flags", [["--transactions", "tx.csv"], ["--kpis", "k.csv"]])
def test_a_gate_without_truth_is_refused_before_the_file_is_read(tmp_path, capsys, flags):
    """--transactions f --min-recall 0.5 read (and warned about) the whole file before saying a
    transaction file has no truth: two lines on stderr, the first about a file it then refused.
    A file that is not even there shows the order: the gate's error comes first."""
    rc = run_cli(run_analysis.main, [*flags, "--min-recall", "0.5", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "need truth" in err, err


def test_help_says_detectors_switches_on_a_disabled_one():
    """--help said "run only these configured detectors"; a detector the config leaves off
    (prophet_residual) runs when named, as the README's example relies on."""
    from tests.configs import make_config

    from analytics.pipeline import select_detectors

    text = " ".join(run_analysis.build_parser().format_help().split())
    assert "enabled: false runs too" in text
    cfg = make_config(detectors={"rolling_zscore": {"type": "rolling_zscore"},
                                 "prophet_residual": {"type": "prophet_residual",
                                                      "enabled": False}})
    picked = select_detectors(cfg, ["prophet_residual"])
    assert picked.detectors["prophet_residual"].enabled
    assert not picked.detectors["rolling_zscore"].enabled


def test_a_store_only_detector_named_in_detectors_runs_on_kpis_input():
    """ARCHITECTURE: external_profile switches count_likelihood (store_only) off for --kpis
    input, and --detectors, applied after it, switches a named one back on."""
    from analytics.config import load_analysis_config
    from analytics.external import external_profile
    from analytics.pipeline import select_detectors

    profile = external_profile(load_analysis_config(None, []), 86400.0)
    assert not profile.detectors["count_likelihood"].enabled
    assert select_detectors(profile, ["count_likelihood"]).detectors["count_likelihood"].enabled
