"""The README's console sample (the scorecard of `python generate_data.py && python
run_analysis.py`) is what the current code prints. It went stale once (the oracle's row kept an
earlier oracle's 846 incidents / 269 false positives): docs must match behaviour. So are the
texts the README quotes from that run's insights (a title it gave as an example, `revenue down
-77.9%: stockout …`, and a product id, `product 16`, were no longer in the default run)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


# texts the README quotes from the default run's insights.json, each as the README writes it
QUOTED = (
    "revenue down -27.5%: stockout (2025-11-11 to 2025-11-14; flagged 2025-11-11 to 2025-11-20)",
    "orders in product 6 down -100.0% vs expected",
    "Restock for category electronics (the product watcher flagged product 6)",
    "orders in country GB up +90.9%: flash sale or promotion",
    "orders in channel email down -25.7% vs expected from 2025-01-21 to 2025-01-28 (8 days); the "
    "change is in 2025-01-21 to 2025-01-22, which deviated down -81.6% vs the same weekdays around "
    "them",
    "revenue down -11.5% week over week (2025-12-25 to 2025-12-31 vs 2025-12-18 to 2025-12-24). "
    "The previous week held planned christmas_rush (2025-12-18 to 2025-12-19), so the comparison "
    "is not like for like.",
)


# The oracle's incident count is the one cell that has differed between machines with the same
# code: 795 on the machines of sessions up to the fifty-eighth and in their CI, 796 on a fresh AMD
# EPYC machine without AVX-512 (fifty-ninth session; every other cell and the insights the same;
# there, numpy, scipy, pandas and duckdb each swapped for their previous release, numpy's X86_V3
# kernels switched off, two OpenBLAS core types and the oracle's cut moved by 1e-6 changed
# nothing). Not found (docs/history/performance.md). That count may differ by one; nothing else.
ORACLE_INCIDENTS_SLACK = 1


def _same_row(readme: str, run: str) -> bool:
    """The README's row is the run's, except the oracle's incident count within the slack."""
    if readme == run:
        return True
    a, b = readme.split(), run.split()
    if not (a and a[0] == "oracle" and len(a) == len(b) == 9 and b[0] == "oracle"):
        return False
    return (a[:5] + a[6:] == b[:5] + b[6:] and a[5].isdigit() and b[5].isdigit()
            and abs(int(a[5]) - int(b[5])) <= ORACLE_INCIDENTS_SLACK)


def test_same_row_allows_only_the_oracles_incident_count_to_move_by_one():
    row = "oracle                   1.00   0.73  0.85   0.00     795  211     14       1.00"
    assert _same_row(row, row.replace(" 795 ", " 796 "))
    assert not _same_row(row, row.replace(" 795 ", " 797 "))
    assert not _same_row(row, row.replace(" 211 ", " 212 "))
    other = row.replace("oracle", "rolling_zscore")
    assert not _same_row(other, other.replace(" 795 ", " 796 "))


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
    assert len(block) > len(table), "README: the console sample is shorter than the scorecard"
    for readme_row, run_row in zip(block, table, strict=False):
        assert _same_row(readme_row, run_row), f"README {readme_row!r} != run {run_row!r}"
    ins = card["insights"]
    assert block[len(table)] == (
        f"insights on {ins['events']} matched events: root cause "
        f"{ins['root_cause_accuracy']:.2f} · KPI attribution {ins['kpi_attribution']:.2f} · "
        f"signature {ins['signature_accuracy']:.2f} · median magnitude error "
        f"{ins['magnitude_error_median']:.2f}")
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    insights = (tmp_path / "run" / "insights.json").read_text(encoding="utf-8")
    for text in QUOTED:
        assert text in readme, f"README no longer quotes {text!r}: update QUOTED"
        assert json.dumps(text)[1:-1] in insights, f"the default run does not say {text!r}"
