"""Same config + seed → identical bytes; another seed → other data; an added event changes only
the days it acts on (common random numbers)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.simulation.simtools import tiny_config

from simulation.api import generate


def _manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_same_seed_gives_byte_identical_files(tmp_path, tiny_dir):
    again = tmp_path / "again"
    generate(tiny_config(), again)
    files = sorted(p.relative_to(tiny_dir) for p in tiny_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (tiny_dir / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_gives_other_data(tmp_path, tiny_dir):
    other = tmp_path / "other"
    generate(tiny_config(seed=12), other)
    a, b = _manifest(tiny_dir)["files"], _manifest(other)["files"]
    for name in ("orders.csv", "website_traffic.csv", "order_items.csv"):
        assert a[name] != b[name], name


def test_manifest_hashes_match_files_and_has_no_clock(tiny_dir):
    import hashlib

    m = _manifest(tiny_dir)
    for rel, digest in m["files"].items():
        assert hashlib.sha256((tiny_dir / rel).read_bytes()).hexdigest() == digest
    text = (tiny_dir / "manifest.json").read_text()
    assert "time" not in text.lower() and m["seed"] == 11 and m["row_counts"]["orders"] > 0


def test_manifest_hashes_every_file_and_an_edited_truth_config_is_caught(tmp_path, tiny_dir):
    """truth/config.json (the customer scores read its mean lifetime) was written after the
    manifest and hashed nowhere: an edit of it went unnoticed by run_analysis.py's check."""
    import shutil

    from analytics.loading import load_data_dir
    from shocklab.errors import InputError

    m = _manifest(tiny_dir)
    present = {p.relative_to(tiny_dir).as_posix() for p in tiny_dir.rglob("*") if p.is_file()}
    assert set(m["files"]) == present - {"manifest.json", ".shocklab-output"}
    edited = tmp_path / "edited"
    shutil.copytree(tiny_dir, edited)
    cfg = edited / "truth" / "config.json"
    cfg.write_text(cfg.read_text().replace('"mean_lifetime_days": 200.0',
                                           '"mean_lifetime_days": 900.0'))
    assert cfg.read_text() != (tiny_dir / "truth" / "config.json").read_text()
    with pytest.raises(InputError, match=r"config\.json: sha256 does not match manifest"):
        load_data_dir(edited)


def test_a_table_file_the_manifest_does_not_list_is_not_read_as_verified(tmp_path, tiny_dir):
    """An orders.csv put beside a Parquet data set's orders.parquet was read instead of it (CSV
    first) and reported verified: it is not hashed, and its row count matched."""
    from analytics.loading import load_data_dir
    from shocklab.errors import InputError

    pq = tmp_path / "pq"
    generate(tiny_config(), pq, fmt="parquet")
    orders = pd.read_parquet(pq / "orders.parquet")
    doctored = orders.assign(net_revenue=orders["net_revenue"] * 10)
    doctored.to_csv(pq / "orders.csv", index=False)
    ds = load_data_dir(pq)   # the listed orders.parquet, verified
    assert ds.manifest["integrity"]["verified"]
    assert ds.tables["orders"]["net_revenue"].sum() == pytest.approx(orders["net_revenue"].sum())
    (pq / "orders.parquet").unlink()   # only the unlisted file is left: a mismatch, named
    with pytest.raises(InputError, match=r"orders\.parquet: listed in manifest\.json but "
                       r"missing \(\+1 more\)"):
        load_data_dir(pq)
    problems = load_data_dir(pq, verify=False).manifest["integrity"]["mismatches"]
    assert any(m.endswith("orders.csv: not listed in manifest.json (added after generation?)")
               for m in problems), problems


def test_adding_an_event_leaves_other_days_unchanged(tmp_path):
    base, more = tmp_path / "base", tmp_path / "more"
    cfg = tiny_config()
    generate(cfg, base)
    extra = {
        "type": "payment_failure",
        "start": "2025-02-24",
        "duration_days": 2,
        "failure_pct": 0.5,
    }
    generate(tiny_config(events=cfg["events"] + [extra]), more)
    ta, tb = (pd.read_csv(d / "website_traffic.csv") for d in (base, more))
    pd.testing.assert_frame_equal(ta, tb)  # payment failures do not touch traffic
    oa, ob = (pd.read_csv(d / "orders.csv") for d in (base, more))
    window = ["2025-02-24", "2025-02-25"]
    before = lambda o: o[o.order_date < window[0]].reset_index(drop=True)  # noqa: E731
    after = lambda o: o[o.order_date > window[1]].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(before(oa), before(ob))
    # after the window only *who* placed a returning order can differ (the customer pool did)
    cols = [c for c in oa.columns if c != "customer_id"]
    pd.testing.assert_frame_equal(after(oa)[cols], after(ob)[cols])
    # … and inside the window the event really acted
    inside_a = oa[oa.order_date.isin(window)]
    inside_b = ob[ob.order_date.isin(window)]
    assert len(inside_b) < 0.7 * len(inside_a)


def test_counterfactual_twin_equals_actual_where_no_event_acts(tiny_dir):
    cf = pd.read_csv(tiny_dir / "truth" / "counterfactual_daily.csv")
    cf = cf[cf.channel == "all"].set_index("date")
    orders = pd.read_csv(tiny_dir / "orders.csv")
    traffic = pd.read_csv(tiny_dir / "website_traffic.csv")
    kept = orders[orders.status != "cancelled"]
    actual = pd.DataFrame(
        {
            "sessions": traffic.groupby("date").sessions.sum(),
            "orders": kept.groupby("order_date").size(),
            "revenue": kept.groupby("order_date").net_revenue.sum(),
        }
    )
    events = json.loads((tiny_dir / "truth" / "events.json").read_text())
    active = set()
    for e in events:
        if not e["expected"]:
            active |= {d.strftime("%Y-%m-%d") for d in pd.date_range(e["start"], e["end"])}
    quiet = [d for d in actual.index if d not in active]
    loud = sorted(active)
    assert len(quiet) > 60
    pd.testing.assert_series_equal(
        actual.loc[quiet, "sessions"].astype(float), cf.loc[quiet, "sessions"], check_names=False
    )
    pd.testing.assert_series_equal(
        actual.loc[quiet, "orders"].astype(float), cf.loc[quiet, "orders"], check_names=False
    )
    assert (actual.loc[quiet, "revenue"] - cf.loc[quiet, "revenue"]).abs().max() < 0.05
    assert (actual.loc[loud, "orders"] != cf.loc[loud, "orders"]).any()


def test_csv_and_parquet_hold_the_same_tables(tmp_path, tiny_dir):
    pq = tmp_path / "pq"
    generate(tiny_config(), pq, fmt="parquet")
    for name in (
        "orders",
        "order_items",
        "customers",
        "website_traffic",
        "products",
        "marketing_calendar",
    ):
        a = pd.read_csv(tiny_dir / f"{name}.csv")
        b = pd.read_parquet(pq / f"{name}.parquet")
        assert list(a.columns) == list(b.columns), name
        assert len(a) == len(b), name
        for col in a.columns:
            left, right = a[col], b[col]
            if pd.api.types.is_datetime64_any_dtype(right):
                left = pd.to_datetime(left)
            elif not pd.api.types.is_numeric_dtype(right):
                left, right = left.astype(str), right.astype(str)
            pd.testing.assert_series_equal(
                left, right, check_dtype=False, check_categorical=False, obj=f"{name}.{col}"
            )


def test_truth_config_reproduces_the_world(tmp_path, tiny_dir):
    """truth/config.json is the config that produced the data: generating from it gives the same
    files (its mappings keep their order — channels, countries and categories are drawn in it)."""
    again = tmp_path / "from_truth"
    generate(json.loads((tiny_dir / "truth" / "config.json").read_text()), again)
    for name in ("orders.csv", "order_items.csv", "website_traffic.csv", "products.csv"):
        assert (tiny_dir / name).read_bytes() == (again / name).read_bytes(), name
