"""The README's console sample (the scorecard of `python generate_data.py && python
run_analysis.py`) is what the current code prints. It went stale once (the oracle's row kept an
earlier oracle's 846 incidents / 269 false positives): docs must match behaviour."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"The console shows the scorecard.*?```\n(.*?)```", text, re.S)
    assert m, "README: the console sample is gone"
    return [ln for ln in m.group(1).splitlines() if ln.strip()]


@pytest.mark.slow
def test_the_readme_console_sample_is_the_default_runs_scorecard(cli, tmp_path):
    from evaluation.pipeline import format_table

    assert cli("generate", "--config", ROOT / "config" / "simulation.yaml", "--out",
               tmp_path / "data", "--quiet").returncode == 0
    r = cli("analysis", "--data", tmp_path / "data", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / "run" / "scorecard.json").read_text())
    table = [ln for ln in format_table(card).splitlines() if ln.strip()]
    block = _readme_block()
    assert block[:len(table)] == table
    ins = card["insights"]
    assert block[len(table)] == (
        f"insights on {ins['events']} matched events: root cause "
        f"{ins['root_cause_accuracy']:.2f} · KPI attribution {ins['kpi_attribution']:.2f} · "
        f"signature {ins['signature_accuracy']:.2f} · median magnitude error "
        f"{ins['magnitude_error_median']:.2f}")
