"""An impossible date in a data table (edited by hand, analysed with --no-verify) said
"column 'order_date' is not a date (Time data 2025-01-32 is not ISO8601 format. You might want to
try:)" — pandas' hint cut at its colon, and no row. The line names the value and the data row."""

from __future__ import annotations


def test_an_impossible_date_names_the_value_and_the_row(fresh_world, cli, tmp_path):
    f = fresh_world / "orders.csv"
    lines = f.read_text().splitlines(keepends=True)
    head = lines[0].rstrip("\n").split(",")
    col = head.index("order_date")
    row = lines[3].rstrip("\n").split(",")
    row[col] = row[col][:8] + "32"
    lines[3] = ",".join(row) + "\n"
    f.write_text("".join(lines))
    r = cli("analysis", "--data", fresh_world, "--no-verify", "--out", tmp_path / "run", "--quiet")
    assert r.returncode == 2
    line = r.stderr.strip().splitlines()[-1]
    assert "order_date" in line and row[col] in line and "data row 3" in line, line
    assert "You might want to try" not in line
    assert not (tmp_path / "run").exists()
