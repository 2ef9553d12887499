"""A KPI file whose timestamps carry a UTC offset (``2024-03-01T00:00:00+02:00``) is converted to
UTC; labels written without an offset are read as UTC. A researcher's windows written in the
file's local time (as NAB's are, beside its naive timestamps) then silently missed their rows by
the offset: on a 5-minute file a window found at NAB standard 0.86 scored −1.22 (missed, and the
detection an FP). The run now warns, naming the offset; labels with offsets, or a file in UTC
(``Z``), warn nothing."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from analytics.external import load_kpis_file
from evaluation.labels import labels_truth


def _file(tmp_path, suffix: str):
    ts = pd.date_range("2024-03-01", periods=600, freq="5min")
    v = 50 + np.random.default_rng(0).normal(0, 1, 600)
    f = tmp_path / "k.csv"
    pd.DataFrame({"timestamp": [t.strftime("%Y-%m-%dT%H:%M:%S") + suffix for t in ts],
                  "value": v.round(3)}).to_csv(f, index=False)
    return f


@pytest.mark.parametrize("suffix, labels, warned", [
    ("+02:00", ["2024-03-02 04:10:00", "2024-03-02 07:30:00"], True),
    ("+02:00", ["2024-03-02T04:10:00+02:00", "2024-03-02T07:30:00+02:00"], False),
    ("Z", ["2024-03-02 04:10:00", "2024-03-02 07:30:00"], False),
    ("", ["2024-03-02 04:10:00", "2024-03-02 07:30:00"], False),
])
def test_naive_labels_on_a_file_with_utc_offsets_warn(tmp_path, caplog, suffix, labels, warned):
    f = _file(tmp_path, suffix)
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps([{"start": labels[0], "end": labels[1]}]))
    ds = load_kpis_file(f)
    with caplog.at_level(logging.WARNING, logger="shocklab.analysis"):
        truth = labels_truth(ev, ds)
    hits = [r.getMessage() for r in caplog.records if "UTC offset" in r.getMessage()]
    assert bool(hits) is warned, hits
    if warned:
        assert str(ev) in hits[0] and "+02:00" in hits[0] and str(f) in hits[0]
    start = pd.Timestamp(truth.events[0]["start"])   # the window as scored: UTC
    assert start == pd.Timestamp("2024-03-02 02:10" if "+02:00" in labels[0] else labels[0])


def test_a_compressed_or_parquet_file_keeps_its_offset(tmp_path):
    """The readers of a .csv.gz and a Parquet file hand over times already in UTC: the offset is
    read from the file's first row as text (gz) or from the column's zone (Parquet)."""
    import gzip

    f = _file(tmp_path, "+02:00")
    gz = tmp_path / "k.csv.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    assert load_kpis_file(gz).ingest["_utc_offset"] == "+02:00"
    pq = tmp_path / "k.parquet"
    ts = pd.date_range("2024-03-01", periods=300, freq="h", tz="Europe/Berlin")
    pd.DataFrame({"timestamp": ts, "value": np.arange(300.0)}).to_parquet(pq)
    assert load_kpis_file(pq).ingest["_utc_offset"] == "Europe/Berlin"
    pd.DataFrame({"timestamp": ts.tz_convert("UTC"), "value": np.arange(300.0)}).to_parquet(pq)
    assert load_kpis_file(pq).ingest["_utc_offset"] is None
