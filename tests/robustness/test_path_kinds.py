"""A directory given where a file is expected said "KPI file not found" / "transactions file not
found" although the path exists: the line now says what it is."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("flag", "what"), [("--kpis", "KPI file"),
                                             ("--transactions", "transactions file")])
def test_a_directory_instead_of_a_file_is_named_as_such(flag, what, cli, tmp_path):
    d = tmp_path / "exports"
    d.mkdir()
    r = cli("analysis", flag, d, "--out", tmp_path / "run")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and str(d) in line
    assert "is a directory" in line and what in line and "not found" not in line
    assert not (tmp_path / "run").exists()
