"""A refused input is its one error line: the warnings of what was read or set before it (a --set
that replaces a whole mapping, a KPI file's gaps, a transactions file's dropped rows) wait for
every input's verdict, then reach the console only if the run goes on (audit56 V2, V3). Before,
each of these printed the warning and then the error: two lines for bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tests.robustness.conftest import write_yaml
from tests.simulation.simtools import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def _one_line(r) -> str:
    """The error line, and nothing else on either stream (without --quiet the console's
    warnings go to stdout)."""
    assert r.returncode == 2, r.stderr
    assert r.stdout.strip() == "", r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def _script(*args, tmp_path) -> subprocess.CompletedProcess:
    """A command as a user runs it (its own process and console logging)."""
    env = {**os.environ, "SHOCKLAB_LOG_DIR": str(tmp_path / "logs"),
           "SHOCKLAB_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_refused_config_is_one_line_after_a_set_that_replaces_a_mapping(tiny_world, tmp_path):
    raw = tiny_config(traffic={"base_sessions": 4000, "trend_annual": 0.1,
                               "yearly_amplitude": 0.1})
    cfg = write_yaml(tmp_path / "sim.yaml", raw)
    line = _one_line(_script("generate_data.py", "--config", cfg, "--out", tmp_path / "d",
                             "--set", "traffic={base_sessions: -1}", tmp_path=tmp_path))
    assert "traffic.base_sessions" in line and "replaces the whole mapping" not in line
    assert not (tmp_path / "d").exists()
    line = _one_line(_script("run_analysis.py", "--data", tiny_world, "--out", tmp_path / "r",
                             "--set", "consensus={min_votes: 0}", tmp_path=tmp_path))
    assert "consensus.min_votes" in line and "replaces the whole mapping" not in line
    # accepted, the warning is still there
    r = _script("generate_data.py", "--config", cfg, "--out", tmp_path / "d", "--set",
                "traffic={base_sessions: 3000}", "--quiet", tmp_path=tmp_path)
    assert r.returncode == 0 and "replaces the whole mapping" in r.stderr, r.stderr


def _gappy_kpis(tmp_path):
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    v = 100 + np.random.default_rng(3).normal(0, 2, 120)
    keep = np.ones(120, bool)
    keep[40:50] = False   # ten days missing: an ingest warning
    f = tmp_path / "k.csv"
    pd.DataFrame({"date": days[keep].strftime("%Y-%m-%d"), "orders": v[keep].round(1)}
                 ).to_csv(f, index=False)
    return f


def test_a_refused_flag_is_one_line_after_a_kpi_files_warnings(cli, tmp_path):
    f = _gappy_kpis(tmp_path)
    line = _one_line(cli("analysis", "--kpis", f, "--detectors", "product_watch", "--out",
                         tmp_path / "r"))
    assert line.startswith("error: --detectors product_watch") and "gap" not in line
    r = cli("analysis", "--kpis", f, "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0 and "kept as gaps" in r.stderr, r.stderr


def test_a_refused_as_of_is_one_line_after_a_transactions_files_warnings(cli, tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    t = pd.Timestamp("2011-01-03") + pd.to_timedelta(rng.integers(0, 120, n), unit="D")
    price = rng.uniform(1, 20, n).round(2).astype(object)
    price[7] = "1e300"   # beyond 1e12: left out with a warning
    f = tmp_path / "tx.csv"
    pd.DataFrame({"Invoice": 500000 + np.arange(n) // 2, "StockCode": 20000 + np.arange(n) % 9,
                  "Description": "ITEM", "Quantity": rng.integers(1, 5, n),
                  "InvoiceDate": t.strftime("%Y-%m-%d %H:%M:%S"), "Price": price,
                  "Customer ID": 12000 + rng.integers(0, 60, n), "Country": "United Kingdom"}
                 ).to_csv(f, index=False)
    line = _one_line(cli("analysis", "--transactions", f, "--as-of", "2030-01-01", "--out",
                         tmp_path / "r", "--quiet"))
    assert line.startswith("error: --as-of 2030-01-01") and "left out" not in line
    r = cli("analysis", "--transactions", f, "--out", tmp_path / "r", "--quiet")
    assert r.returncode == 0 and "left out" in r.stderr, r.stderr


def test_as_of_with_the_customer_models_off_is_refused(cli, tiny_world, tmp_path):
    """It changed the run id and nothing else (audit56 V8): exit 2, one line, nothing written."""
    line = _one_line(cli("analysis", "--data", tiny_world, "--out", tmp_path / "r", "--set",
                         "customers.enabled=false", "--as-of", "2025-03-01"))
    assert "--as-of 2025-03-01" in line and "customers.enabled: false" in line
    assert not (tmp_path / "r").exists()
