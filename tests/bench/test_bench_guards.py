"""Bench commands on inputs the docs audit of 2026-12-05 found them failing on."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "bench"))

    def load(name: str):
        return __import__(name)

    return load


def test_bench_insights_reads_a_run_whose_labels_have_no_type(bench):
    """A --kpis run with --events (NAB windows: type_ok None) ended in a TypeError traceback."""
    row = {"type_ok": None, "root_cause_ok": None, "magnitude_error": None,
           "magnitude_error_overall": None}
    line = bench("bench_insights")._agg([row, row])
    assert line.startswith("events   2") and "type accuracy n/a" in line


@pytest.mark.parametrize("rows", ["0", "-5"])
def test_bench_nab_refuses_too_few_ingest_rows(bench, monkeypatch, capsys, rows):
    """--ingest-rows 0 was read as "not given" and ran the whole NAB benchmark; -5 was an
    OverflowError traceback."""
    monkeypatch.setattr(sys, "argv", ["bench_nab.py", "--ingest-rows", rows])
    assert bench("bench_nab").main() == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: --ingest-rows {rows}: give at least 10 rows"
