"""A KPI file carrying its own per-row labels (`timestamp,value,label`: NAB's results-file
layout) was analysed with the label as a KPI: its 0 -> 1 steps became incidents matched to the
windows they mark (recall 1.00). It is exit 2 naming the column and what to do instead."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analytics.external import load_kpis_file


def _file(tmp_path, col="label", labels=None):
    t = pd.date_range("2015-09-08 11:39", periods=600, freq="5min")
    g = np.random.default_rng(1)
    lab = np.zeros(len(t), dtype=int)
    lab[300:320] = 1
    d = tmp_path / "realTraffic"
    d.mkdir(exist_ok=True)
    f = d / "speed_7578.csv"
    pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                  "value": g.normal(60, 5, len(t)).round(1),
                  col: lab if labels is None else labels(len(t))}).to_csv(f, index=False)
    return f


@pytest.mark.parametrize("col", ["label", "is_anomaly", "Anomaly"])
def test_a_label_column_in_the_kpi_file_is_exit_2(cli, tmp_path, col):
    f = _file(tmp_path, col)
    ev = tmp_path / "combined_windows.json"
    ev.write_text(json.dumps({"realTraffic/speed_7578.csv": [["2015-09-09 12:39:00",
                                                               "2015-09-09 14:14:00"]]}))
    r = cli("analysis", "--kpis", f, "--events", ev, "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert line.startswith(f"error: {f}: column {col!r} holds per-row 0/1 anomaly labels"), line
    assert "--events" in line
    assert not (tmp_path / "run").exists()


def test_a_column_named_label_that_is_no_0_1_label_stays_a_kpi(tmp_path):
    f = _file(tmp_path, "label", labels=lambda n: np.arange(n) % 7)
    ds = load_kpis_file(f)
    assert ds.ingest["series"] == 2
