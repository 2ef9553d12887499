"""docs/ARCHITECTURE.md "Data directory" is what generate writes and what analytics reads: every
file of its table exists in a generated world and no file is missing from the table; each CSV
holds the columns the table names; the observable tables' columns are the loader's schema."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from analytics.loading import SCHEMAS
from shocklab.catalogue import ORDER_STATUSES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses and backticks."""
    out, depth, tick, cur = [], 0, False, ""
    for ch in text:
        if ch == "`":
            tick = not tick
        elif not tick and ch == "(":
            depth += 1
        elif not tick and ch == ")":
            depth -= 1
        if ch == "," and depth == 0 and not tick:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [*out, cur.strip()]


def table() -> dict[str, list[str]]:
    """file (as in the data directory: products.csv, truth/events.json) -> columns it names."""
    section = DOC.split("## Data directory", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or len(cells) < 3 or cells[0] in ("file", "---"):
            continue
        # "ch\|co" in a cell is an escaped pipe, not a column break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        name, cols = cells[0], cells[-1]
        name = name if "." in name else f"{name}.csv"
        names = []
        for item in _split_top(cols):
            m = re.fullmatch(r"([a-z][a-z0-9_]*)\s*(\(.*\))?\s*(:.*)?", item, re.S)
            if m:
                names.append(m.group(1))
        names += re.findall(r"`([a-z][a-z0-9_]*_(?:var|cv2))`", cols)  # baseline's variances
        rows[name] = names
    return rows


def test_the_table_is_read():
    t = table()
    assert t["orders.csv"][:3] == ["order_id", "order_ts", "order_date"]
    assert "conversion_cv2" in t["truth/baseline_daily.csv"]
    assert t["truth/product_null.csv"] == ["product_id", "category", "price", "tau", "v1", "v2",
                                           "u1", "u2"]


def test_every_file_of_a_generated_world_is_in_the_table(tiny_dir):
    written = {p.relative_to(tiny_dir).as_posix() for p in tiny_dir.rglob("*")
               if p.is_file() and not p.name.startswith(".")}
    assert written == set(table())


@pytest.mark.parametrize("name", [n for n in table() if n.endswith(".csv")])
def test_each_csv_holds_the_columns_the_table_names(tiny_dir, name):
    with open(tiny_dir / name, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    missing = [c for c in table()[name] if c not in header]
    assert missing == [], f"{name}: the doc names {missing}, the file has {header}"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_the_observable_tables_are_the_loaders_schema(name):
    assert table()[f"{name}.csv"] == list(SCHEMAS[name])


def test_order_statuses_are_the_catalogues():
    row = next(line for line in DOC.splitlines() if line.startswith("| orders |"))
    listed = re.search(r"status \(([^)]*)\)", row).group(1)
    assert tuple(s.strip() for s in listed.split(",")) == ORDER_STATUSES
