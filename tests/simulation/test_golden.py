"""Golden-file test: the tiny scenario must reproduce its stored daily KPIs, row counts and truth
exactly. A deliberate change of the generative model updates the file:

    SHOCKLAB_UPDATE_GOLDEN=1 python -m pytest tests/simulation/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

GOLDEN = Path(__file__).parent / "golden" / "tiny_summary.json"


def summarize(data_dir: Path) -> dict:
    orders = pd.read_csv(data_dir / "orders.csv")
    traffic = pd.read_csv(data_dir / "website_traffic.csv")
    kept = orders[orders.status != "cancelled"]
    daily = pd.DataFrame(
        {
            "sessions": traffic.groupby("date").sessions.sum(),
            "orders": kept.groupby("order_date").size(),
            "revenue": kept.groupby("order_date").net_revenue.sum().round(2),
        }
    ).fillna(0)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    return {
        "row_counts": manifest["row_counts"],
        "daily": {
            d: [int(r.sessions), int(r.orders), float(r.revenue)] for d, r in daily.iterrows()
        },
        "events": json.loads((data_dir / "truth" / "events.json").read_text()),
    }


def test_tiny_scenario_matches_golden(tiny_dir):
    got = summarize(tiny_dir)
    if os.environ.get("SHOCKLAB_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert got["row_counts"] == want["row_counts"]
    assert got["events"] == want["events"]
    diff = [d for d in want["daily"] if got["daily"].get(d) != want["daily"][d]]
    assert not diff, (
        f"{len(diff)} days differ from the golden file, first {diff[0]}: "
        f"{got['daily'].get(diff[0])} != {want['daily'][diff[0]]}"
    )
