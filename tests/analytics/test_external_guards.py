"""--kpis reader guards (analytics.external), in-process. Each test failed against a hand-made
mutant that the file-shape tests let pass (audit-mutcli)."""

from __future__ import annotations

import pytest

from analytics.external import load_kpis_file
from shocklab.errors import InputError


def test_two_timestamps_are_too_few_and_three_enough(tmp_path):
    f = tmp_path / "k.csv"
    f.write_text("timestamp,x\n2025-01-01,1\n2025-01-02,2\n2025-01-02,3\n")
    with pytest.raises(InputError, match="need at least 3 distinct timestamps, got 2"):
        load_kpis_file(f)
    f.write_text("timestamp,x\n2025-01-01,1\n2025-01-02,2\n2025-01-03,3\n")
    assert len(load_kpis_file(f).tables["kpis_daily"]) == 3


def test_a_timestamp_far_from_the_rest_is_refused_before_a_huge_grid(tmp_path):
    """One typo'd year in a minute series would need millions of periods (memory, then hours):
    InputError naming the gap instead."""
    f = tmp_path / "k.csv"
    rows = [f"2025-01-01 00:{m:02d}:00,{m}" for m in range(30)] + ["2035-01-01 00:00:00,1"]
    f.write_text("timestamp,x\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="a gap of .* after 2025-01-01 00:29:00 would need"):
        load_kpis_file(f)


def test_a_grid_exactly_half_full_keeps_the_modal_step(tmp_path):
    """--step auto: the modal step unless its grid is less than half full (MIN_COVERAGE 0.5,
    "at least half full"): 8 hourly rows over 16 hours keep the hour."""
    f = tmp_path / "k.csv"
    hours = [0, 1, 2, 3, 12, 13, 14, 15]
    f.write_text("timestamp,x\n" + "".join(f"2025-01-01 {h:02d}:00:00,{h}\n" for h in hours))
    assert load_kpis_file(f).ingest["step_seconds"] == 3600


def test_a_tie_between_two_gaps_takes_the_smaller_step(tmp_path):
    f = tmp_path / "k.csv"
    hours = [0, 1, 3, 4, 6, 7, 9]          # gaps 1h, 2h, 1h, 2h, 1h, 2h: a tie
    f.write_text("timestamp,x\n" + "".join(f"2025-01-01 {h:02d}:00:00,{h}\n" for h in hours))
    assert load_kpis_file(f, step="modal").ingest["step_seconds"] == 3600
