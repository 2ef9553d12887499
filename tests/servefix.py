"""Real run and experiment directories for the API and dashboard tests, built once per test
process (the API, dashboard and browser tests share them; under pytest-xdist each worker that
runs one of them builds its own, in its own temp dir, so a test that briefly adds a file or a
symlink inside these roots is never seen by another worker's tests).

- ``reports/sim``: the small scenario cut to 20 weeks, analysed without Prophet detectors;
- ``reports/sim-k1``: the same data, one voter and min_votes 1, no customer models (for Compare);
- ``reports/kpis``: a ``--kpis`` run (two synthetic series, one labelled window);
- ``reports/tx``: a ``--transactions`` run (the Online Retail II fixture: no truth);
- ``runs/sweep``: a 2 settings x 2 seeds sweep with a gate; ``runs/detect``: a detectability run.

No run draws plots: neither the API nor the dashboard reads one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
END = "2025-05-20"
FAST = ["--detectors", "rolling_zscore,rolling_zscore_week,isolation_forest,oracle"]
NO_PLOTS = ["--set", "insights.plots=false", "--set", "customers.plots=false"]
_BUILT: dict[str, Roots] = {}


@dataclass(frozen=True)
class Roots:
    base: Path
    data: Path
    reports: Path
    runs: Path


def _scenario(path: Path) -> Path:
    doc = yaml.safe_load((ROOT / "config/scenarios/small.yaml").read_text())
    doc["period"]["end"] = END
    doc["events"] = [e for e in doc["events"] if str(e["start"]) < "2025-05-01"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _kpis(base: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    signups = 1000 + rng.normal(0, 20, 120)
    signups[60:63] -= 400
    tickets = 50 + rng.normal(0, 2, 120)
    tickets[90] += 30
    csv = base / "kpis.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "signups": signups.round(1),
                  "tickets": tickets.round(2)}).to_csv(csv, index=False)
    events = base / "kpi_events.json"
    events.write_text(json.dumps([{"event_id": "K1", "start": "2025-03-02", "end": "2025-03-04",
                                   "kpi": "signups", "direction": "down"}]))
    return csv, events


def _experiments(base: Path, scenario: Path, runs: Path) -> None:
    from run_experiment import main as exp_main

    from shocklab.cli import run_cli
    common = {
        "scenario": str(scenario),
        "analysis": str(ROOT / "config/analysis.yaml"),
        "analysis_overrides": {
            "detectors.prophet_residual.enabled": False,
            "detectors.isolation_forest.enabled": False,
            "customers.enabled": False,
            "insights.forecast.enabled": False,
        },
        "metrics": ["consensus.recall", "consensus.precision", "consensus.f1"],
        "bootstrap": {"resamples": 200},
    }
    sweep = {
        "name": "sweep",
        "kind": "sweep",
        **common,
        "grid": {"analysis.consensus.min_votes": [1, 2]},
        "seeds": [1, 2],
        "gate": {"checks": ["consensus.recall>=0.5"]},
    }
    outage = [{"type": "site_outage", "start": s, "duration_days": 1, "drop_pct": 0.5}
              for s in ("2025-02-11", "2025-03-25")]
    detect = {
        "name": "detect",
        "kind": "detectability",
        **common,
        "seeds": [1],
        "detectability": {
            "targets": [
                {
                    "event_type": "site_outage",
                    "magnitude_key": "drop_pct",
                    "magnitudes": [0.05, 0.6],
                    "events": outage,
                }
            ]
        },
    }
    for doc in (sweep, detect):
        cfg = base / f"{doc['name']}.yaml"
        cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
        code = run_cli(
            exp_main,
            [
                "--config",
                str(cfg),
                "--out",
                str(runs / doc["name"]),
                "--workers",
                "1",
                "--no-progress",
                "--no-plots",
                "--quiet",
            ],
        )
        assert code == 0, f"experiment {doc['name']} exited {code}"


def build(tmp_path_factory) -> Roots:
    """Generate, analyse and sweep once per process; return the roots."""
    if "roots" in _BUILT:
        return _BUILT["roots"]
    keep = os.environ.get("SHOCKLAB_TEST_SERVE_DIR")  # developer aid: reuse a build across sessions
    if keep:  # one build per xdist worker (gw0, gw1, ...): two workers never write one directory
        keep = str(Path(keep) / os.environ.get("PYTEST_XDIST_WORKER", ""))
    if keep and (Path(keep) / "runs" / "detect" / "mde.csv").is_file():
        base = Path(keep)
        _BUILT["roots"] = Roots(
            base=base, data=base / "data", reports=base / "reports", runs=base / "runs"
        )
        return _BUILT["roots"]
    from generate_data import main as gen_main
    from run_analysis import main as ana_main

    from shocklab.cli import run_cli
    base = Path(keep) if keep else tmp_path_factory.mktemp("serve")
    base.mkdir(parents=True, exist_ok=True)
    data, reports, runs = base / "data", base / "reports", base / "runs"
    scenario = _scenario(base / "scenario.yaml")
    assert (
        run_cli(gen_main, ["--config", str(scenario), "--out", str(data / "small"), "--quiet"]) == 0
    )

    def analyse(name: str, *args: str) -> None:
        code = run_cli(ana_main, [*args, "--out", str(reports / name), "--quiet"])
        assert code == 0, f"analysis {name} exited {code}"

    kcsv, kev = _kpis(base)
    # no plots in any run: neither the API nor the dashboard reads one
    analyse("tx", "--transactions", str(ROOT / "tests/fixtures/transactions/online_retail_ii.csv"),
            *NO_PLOTS)
    analyse("kpis", "--kpis", str(kcsv), "--events", str(kev), *NO_PLOTS)
    analyse("sim-k1", "--data", str(data / "small"), "--detectors", "rolling_zscore,oracle",
            "--set", "consensus.min_votes=1", "--set", "customers.enabled=false", *NO_PLOTS)
    analyse(
        "sim", "--data", str(data / "small"), *FAST, *NO_PLOTS
    )  # written last: the newest run, the default
    _experiments(base, scenario, runs)
    _BUILT["roots"] = Roots(base=base, data=data, reports=reports, runs=runs)
    return _BUILT["roots"]


ZERO = "00"  # what zero_padded puts before every customer id (000001 … in session 43's audit)


def zero_padded(src: Path, dst: Path) -> None:
    """A copy of the --transactions run ``src`` whose customer ids are written with leading
    zeros, as the analysis writes a transactions file's ``Customer ID`` 000001 (as read)."""
    import shutil

    shutil.copytree(src, dst)
    for name in ("segments.csv", "actions.csv", "clv.csv"):
        f = dst / "customers" / name
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
        df["customer_id"] = ZERO + df["customer_id"]
        df.to_csv(f, index=False)
