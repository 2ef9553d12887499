"""`--set consensus.min_votes=…` (the example of `run_analysis.py --help`) changes nothing while the
consensus combines evidence (`consensus.combine: stouffer`, shipped): the run said nothing, so a
researcher tuning it read identical results as a finding. Now one warning names the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _analyse(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
               SHOCKLAB_LOG_DIR="", SHOCKLAB_STATE_DIR=str(cwd / "state"))
    return subprocess.run([sys.executable, str(ROOT / "run_analysis.py"), *args, "--quiet",
                           "--set", "customers.enabled=false"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_min_votes_under_combined_evidence_is_warned_about(tiny_world, tmp_path):
    r = _analyse("--data", str(tiny_world), "--out", str(tmp_path / "a"), "--set",
                 "consensus.min_votes=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warn = [ln for ln in r.stderr.splitlines() if "consensus.min_votes" in ln]
    assert len(warn) == 1 and "consensus.combine=vote" in warn[0], r.stderr


def test_no_warning_when_the_vote_reads_it(tiny_world, tmp_path):
    r = _analyse("--data", str(tiny_world), "--out", str(tmp_path / "b"), "--set",
                 "consensus.combine=vote", "--set", "consensus.min_votes=1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "consensus.min_votes" not in r.stderr
