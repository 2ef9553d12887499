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
