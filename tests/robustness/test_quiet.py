"""``--quiet``: warnings, errors and the alerts of a console sink — an alert is what a user who
configured ``customers.alerts.console`` asked to see, also in cron or CI — and nothing else. The
help and the README said "only warnings and errors" while the alerts printed (qa7)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from analytics.alerts import ConsoleSink
from shocklab.cli import setup_logging

ROOT = Path(__file__).resolve().parents[2]


def test_quiet_console_shows_alerts_and_warnings_not_progress(capsys, monkeypatch):
    monkeypatch.setenv("SHOCKLAB_LOG_DIR", "")
    log = setup_logging("analysis", quiet=True)
    log.info("analysing data -> reports/x")
    ConsoleSink(logging.getLogger("shocklab.customers")).send(
        {"severity": "high", "title": "'At Risk' grew", "text": "details"})
    log.warning("a warning")
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == ["ALERT [high] 'At Risk' grew — details", "a warning"]


@pytest.mark.parametrize(("script", "says"), [
    ("run_analysis.py", "only warnings, errors and alerts (customers.alerts.console)"),
    ("generate_data.py", "only warnings and errors"),   # they send no alerts
    ("run_experiment.py", "only warnings and errors"),
])
def test_quiet_help_says_what_it_prints(script, says):
    text = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True,
                          text=True, check=True, cwd=ROOT).stdout
    line = " ".join(text.split("\n  --quiet", 1)[1].split("\n  -", 1)[0].split())
    assert line.startswith(says) and "stderr" in line, line


def test_readme_says_alerts_print_under_quiet():
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert "`--quiet` prints only warnings, errors and the console sink's alerts" in readme
