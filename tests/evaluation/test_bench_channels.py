"""bench/bench_channels.py: the channels section against the counterfactual twin (a hand-made
run directory in the real layout; no analysis run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_channels as bc  # noqa: E402

DATES = pd.date_range("2025-06-01", periods=35, freq="D")  # 28 baseline days, then the window
WINDOW = DATES[28:]


def _run(tmp_path: Path) -> Path:
    data, run = tmp_path / "data", tmp_path / "run"
    (data / "truth").mkdir(parents=True)
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"data": {"path": str(data)}}))
    # channel, window multiplier of actual revenue over the twin, reported change, flagged
    rows = [("a", 0.7, -30.0, True), ("b", 1.0, -20.0, True), ("c", 0.8, -5.0, False),
            ("d", 1.0, 1.0, False)]
    cf, kp = [], []
    for ch, mult, _, _ in rows:
        twin = pd.DataFrame({"date": DATES, "channel": ch, "sessions": 1000.0, "orders": 20.0,
                             "revenue": 2000.0})
        act = twin.assign(revenue=twin["revenue"] * twin["date"].isin(WINDOW).map(
            {True: mult, False: 1.0}))
        cf.append(twin)
        kp.append(act.rename(columns={"channel": "segment"}).assign(dimension="channel"))
    pd.concat(cf).to_csv(data / "truth" / "counterfactual_daily.csv", index=False)
    pd.concat(kp).to_csv(run / "kpis_daily.csv", index=False)
    events = [{"event_id": "E01", "expected": False, "start": str(WINDOW[2].date()),
               "end": str(WINDOW[3].date()), "scope": {"channel": "a"},
               "scope_effects": {"revenue": -0.3, "conversion_rate": 0.0}},
              {"event_id": "E02", "expected": False, "start": str(WINDOW[0].date()),
               "end": str(WINDOW[0].date()), "scope": {"channel": "b"},
               "scope_effects": {"revenue": -0.05, "conversion_rate": 0.0}}]
    (data / "truth" / "events.json").write_text(json.dumps(events))
    channels = [{"channel": ch, "underperforming": flag, "revenue_vs_baseline_pct": rep,
                 "conversion_vs_baseline_pct": 0.0} for ch, _, rep, flag in rows]
    (run / "insights.json").write_text(json.dumps({"channels": {
        "window_start": str(WINDOW[0].date()), "window_end": str(WINDOW[-1].date()),
        "channels": channels}}))
    return run


def test_true_changes_false_flags_and_misses(tmp_path, capsys):
    t = bc.channel_table(_run(tmp_path)).set_index("channel")
    assert t["true_rev"].to_dict() == pytest.approx({"a": -30.0, "b": 0.0, "c": -20.0, "d": 0.0})
    assert t["true_conv"].abs().max() == pytest.approx(0.0)
    assert t["false_flag"].to_dict() == {"a": False, "b": True, "c": False, "d": False}
    assert t["missed"].to_dict() == {"a": False, "b": False, "c": True, "d": False}
    # only a's event is a real shortfall (b's moved its revenue -5 %)
    assert t["event"].to_dict() == {"a": True, "b": False, "c": False, "d": False}
    s = bc.summarize(t.reset_index())
    assert (s["flags"], s["false_flags"], s["missed"], s["shortfalls"], s["event_flags"]) == \
        (2, 1, 1, 2, 1)
    # |reported - true| over channels x {revenue, conversion}: 0, 20, 15, 1 and four zeros
    assert s["median_abs_err"] == pytest.approx(0.0)
    assert bc.main([str(tmp_path / "run")]) == 0
    assert "false_flags 1, missed 1" in capsys.readouterr().out


def test_a_run_without_truth_or_channels_is_one_line_exit_2(tmp_path):
    """A --transactions or --kpis run (no truth/), a path that is not a run, a run without a
    channels section: each was an 'internal error' (exit 3) naming a NotADirectoryError,
    TypeError or FileNotFoundError."""
    import subprocess

    from shocklab.errors import InputError

    run = _run(tmp_path)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({"data": {"path": None, "source": "kpis"}}))
    with pytest.raises(InputError, match=r"its data \(a --kpis file\) has no truth/"):
        bc.channel_table(run)
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_channels.py"
    p = subprocess.run([sys.executable, str(bench), str(run)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "has no truth/counterfactual_daily.csv" in p.stderr
    with pytest.raises(InputError, match="not a run directory"):
        bc.channel_table(tmp_path / "data")
    (run / "run.json").write_text(json.dumps(meta))
    (run / "insights.json").write_text(json.dumps({"channels": None}))
    with pytest.raises(InputError, match="insights.json has no channels section"):
        bc.channel_table(run)
