"""``--quiet``: warnings, errors and the alerts of a console sink — an alert is what a user who
configured ``customers.alerts.console`` asked to see, also in cron or CI — and nothing else. The
help and the README said "only warnings and errors" while the alerts printed (qa7)."""

from __future__ import annotations

import logging
import os
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


def test_quiet_run_with_cjk_names_prints_no_missing_glyph_warnings(tmp_path):
    """Channel and KPI names in CJK: matplotlib warned "Glyph 32593 (…) missing from font(s)
    DejaVu Sans." once per character on stderr, under --quiet too (qa10)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    rows = []
    for t in pd.date_range("2025-01-01", periods=90, freq="D").strftime("%Y-%m-%d"):
        rows += [(t, "revenue", 1000 + rng.normal(0, 20), "channel", "网站"),
                 (t, "revenue", 400 + rng.normal(0, 20), "channel", "邮件"),
                 (t, "revenue", 1400 + rng.normal(0, 20), "overall", "all"),
                 (t, "销售额", 50 + rng.normal(0, 2), "overall", "all")]
    f = tmp_path / "cjk.csv"
    pd.DataFrame(rows, columns=["timestamp", "kpi", "value", "dimension", "segment"]).to_csv(
        f, index=False)
    r = subprocess.run([sys.executable, "-W", "default", str(ROOT / "run_analysis.py"),
                        "--kpis", str(f), "--out", str(tmp_path / "run"), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "SHOCKLAB_LOG_DIR": ""})
    assert r.returncode == 0, r.stderr[-800:]
    assert "Glyph" not in r.stderr and "missing from font" not in r.stderr, r.stderr[:800]
    assert (tmp_path / "run" / "plots" / "channels.png").is_file()


def test_only_the_missing_glyph_warning_is_silenced():
    import warnings

    from shocklab.figures import missing_glyphs_quiet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with missing_glyphs_quiet():
            warnings.warn("Glyph 32593 (\\N{CJK UNIFIED IDEOGRAPH-7F51}) missing from font(s) "
                          "DejaVu Sans.", UserWarning, stacklevel=1)
            warnings.warn("Glyph 32593 missing from current font.", UserWarning, stacklevel=1)
            warnings.warn("something else", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something else"]
