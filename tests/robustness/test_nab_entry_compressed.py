"""A compressed NAB data file (`--kpis realTraffic/speed_7578.csv.gz`, `.zip` …) with NAB's
combined_windows.json was "no entry for 'speed_7578.csv.gz'": the entry is matched on the
file's name with the compression's suffix left out, as the KPI reader reads it."""

from __future__ import annotations

import json

import pytest

from evaluation.labels import load_events_file

WINDOWS = {"realTraffic/speed_7578.csv": [["2015-09-09 12:39:00", "2015-09-09 14:14:00"]],
           "realTraffic/speed_6005.csv": [["2015-09-10 12:39:00", "2015-09-10 14:14:00"]]}


@pytest.mark.parametrize("name", ["speed_7578.csv", "speed_7578.csv.gz", "speed_7578.csv.ZIP",
                                  "speed_7578.csv.bz2", "speed_7578.zip", "speed_7578.csv.zst"])
def test_a_compressed_kpi_file_finds_its_nab_entry(tmp_path, name):
    p = tmp_path / "combined_windows.json"
    p.write_text(json.dumps(WINDOWS))
    ev = load_events_file(p, ["value"], kpi_file=tmp_path / "realTraffic" / name)
    assert [(e["start"], e["end"]) for e in ev] == [("2015-09-09T12:39:00", "2015-09-09T14:14:00")]


def test_compressed_labels_and_data_run_end_to_end(cli, tmp_path):
    import gzip

    import numpy as np
    import pandas as pd

    t = pd.date_range("2015-09-08 11:39", periods=900, freq="5min")
    d = tmp_path / "realTraffic"
    d.mkdir()
    csv = pd.DataFrame({"timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                        "value": np.random.default_rng(2).normal(60, 5, len(t)).round(1)})
    (d / "speed_7578.csv.gz").write_bytes(gzip.compress(csv.to_csv(index=False).encode()))
    lab = tmp_path / "combined_windows.json.gz"
    lab.write_bytes(gzip.compress(json.dumps(WINDOWS).encode()))
    r = cli("analysis", "--kpis", d / "speed_7578.csv.gz", "--events", lab, "--out",
            tmp_path / "run", "--quiet")
    assert r.returncode == 0, r.stderr
    sm = json.loads((tmp_path / "run" / "scorecard.json").read_text())["series_metrics"]
    assert sm["windows"] == 1 and sm["nab_windows"] == 1
