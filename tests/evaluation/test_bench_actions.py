"""bench/bench_actions.py: the action engine's targeting against truth and its promises (a
hand-made run directory in the real layout; no analysis run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_actions as ba  # noqa: E402


def _run(tmp_path: Path, win_back_recency: int = 200, urgent_overdue: float = 2.0) -> Path:
    data, run = tmp_path / "data", tmp_path / "run"
    (data / "truth").mkdir(parents=True)
    (run / "customers").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"data": {"path": str(data)}}))
    rows = [  # id, action, recency, r, overdue, p_alive, churned?, tier
        ("1", "urgent VIP call", 60, 3, urgent_overdue, 0.5, False, "high"),
        ("2", "urgent VIP call", 90, 3, 3.0, 0.4, True, "high"),
        ("3", "win-back offer", win_back_recency, 2, 5.0, 0.1, True, "low"),
        ("4", "win-back offer", 150, 2, 4.0, 0.2, True, "low"),
        ("5", "cross-sell", 5, 5, 0.2, 0.99, False, "medium"),
        ("6", "no action", 400, 1, 9.0, 0.01, True, "low"),
    ]
    pd.DataFrame({"customer_id": [r[0] for r in rows], "last_order_date": "2025-12-31",
                  "recency_days": [r[2] for r in rows], "r_score": [r[3] for r in rows],
                  "overdue": [r[4] for r in rows], "p_alive": [r[5] for r in rows]}
                 ).to_csv(run / "customers" / "segments.csv", index=False)
    pd.DataFrame({"customer_id": [r[0] for r in rows], "action": [r[1] for r in rows]}
                 ).to_csv(run / "customers" / "actions.csv", index=False)
    pd.DataFrame({"customer_id": [r[0] for r in rows],
                  "churn_date": ["2025-06-01" if r[6] else "" for r in rows],
                  "value_tier": [r[7] for r in rows]}
                 ).to_csv(data / "truth" / "customers.csv", index=False)
    return run


def test_lifts_are_shares_over_the_base_rate(tmp_path):
    t, broken = ba.world_table(_run(tmp_path))
    assert broken == []
    u = t.set_index("action").loc["urgent VIP call"]
    assert u["share"] == pytest.approx(2 / 6)
    assert u["alive"] == pytest.approx(0.5)
    assert u["alive_lift"] == pytest.approx(0.5 / (2 / 6))   # alive: customers 1 and 5
    assert u["high_lift"] == pytest.approx(1.0 / (2 / 6))    # high: customers 1 and 2
    assert ba.main([str(tmp_path / "run")]) == 0


def test_a_broken_promise_is_named_and_fails(tmp_path, capsys):
    run = _run(tmp_path, win_back_recency=400, urgent_overdue=0.5)
    _, broken = ba.world_table(run)
    assert any("inside the customer's usual gap" in b for b in broken)
    assert any("win-back offer at recency 400 (Lost from 400)" in b for b in broken)
    assert ba.main([str(run)]) == 1
    assert "BROKEN" in capsys.readouterr().out


def test_a_run_without_customers_or_truth_is_one_line_exit_2(tmp_path):
    """A run without customers/ (a --kpis run), or whose data has no truth/ (a --transactions
    file): each was an 'internal error' (exit 3) naming a FileNotFoundError or
    NotADirectoryError."""
    import shutil
    import subprocess

    from shocklab.errors import InputError

    run = _run(tmp_path)
    shutil.rmtree(tmp_path / "data" / "truth")
    with pytest.raises(InputError, match=r"has no truth/customers.csv"):
        ba.world_table(run)
    shutil.rmtree(run / "customers")
    bench = Path(__file__).resolve().parents[2] / "bench" / "bench_actions.py"
    p = subprocess.run([sys.executable, str(bench), str(run)], capture_output=True, text=True)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "no customers/segments.csv in the run directory" in p.stderr
