"""The data-directory reader's value checks (analytics.loading), in-process: each test failed
against a hand-made mutant of the check it names that the file-level tests let pass
(audit-mutcli)."""

from __future__ import annotations

import pandas as pd
import pytest

from analytics.loading import coerce
from shocklab.errors import InputError


@pytest.mark.parametrize("values", [["1", "2.5"], [1.0, 2.5]])
def test_a_fractional_count_is_refused_in_a_whole_number_column(values):
    """order_items.quantity 2.5 was truncated to 2 units without a word."""
    df = pd.DataFrame({"quantity": values})
    with pytest.raises(InputError, match="'quantity' must hold whole numbers"):
        coerce(df, {"quantity": "int"}, "order_items.csv")
    out = coerce(pd.DataFrame({"quantity": ["1", "3"]}), {"quantity": "int"}, "order_items.csv")
    assert out["quantity"].tolist() == [1, 3]


def test_a_table_file_the_manifest_does_not_list_is_a_mismatch(tmp_path):
    """A manifest with hashes vouches for its files only: an orders.parquet dropped beside (or
    instead of) the generated orders.csv was read unverified."""
    from analytics.loading import verify_manifest
    from shocklab.errors import IntegrityError
    from shocklab.hashing import sha256_file

    (tmp_path / "products.csv").write_text("product_id\n1\n")
    (tmp_path / "orders.parquet").write_bytes(b"PAR1")
    manifest = {"files": {"products.csv": sha256_file(tmp_path / "products.csv")}}
    where = {"products": str(tmp_path / "products.csv"),
             "orders": str(tmp_path / "orders.parquet")}
    with pytest.raises(IntegrityError, match="orders.parquet: not listed in manifest.json"):
        verify_manifest(tmp_path, manifest, {}, verify=True, where=where)
    report = verify_manifest(tmp_path, manifest, {}, verify=False, where=where)
    assert report["verified"] is False and len(report["mismatches"]) == 1
    clean = verify_manifest(tmp_path, manifest, {}, verify=True,
                            where={"products": where["products"]})
    assert clean["verified"] is True and clean["mismatches"] == []


@pytest.mark.parametrize("ev, match", [
    ({"start": "2025-01-02", "end": "2025-01-01"}, "end 2025-01-01 00:00:00 is before start"),
    ({"start": "2025-01-01T10:00", "end": "2025-01-01T09:00"}, "is before start"),
    ({"start": "2025-01-01T10:00+02:00", "end": "2025-01-01T12:00"},
     "give both with a UTC offset or neither"),
])
def test_a_label_window_that_is_reversed_or_half_zoned_is_refused(ev, match):
    from evaluation.truth import event_window

    with pytest.raises(InputError, match=match):
        event_window(ev, "labels.json: event 1")


def test_a_one_point_and_a_zoned_label_window_are_read_as_given():
    from evaluation.truth import event_window

    s, e = event_window({"start": "2025-01-01", "end": "2025-01-01"}, "w")
    assert s == e == pd.Timestamp("2025-01-01")
    s, e = event_window({"start": "2025-01-01T10:00+02:00", "end": "2025-01-01T12:00+02:00"}, "w")
    assert (s, e) == (pd.Timestamp("2025-01-01T08:00"), pd.Timestamp("2025-01-01T10:00"))


@pytest.mark.parametrize("error", ["ArrowNotImplementedError", "ArrowCapacityError"])
def test_a_pyarrow_error_reading_a_table_is_bad_input(tmp_path, monkeypatch, error):
    """pyarrow's errors that are no OSError/ValueError (a RuntimeError, a plain ArrowException)
    escaped ``read_table`` as internal errors (exit 3); they are one "cannot read" line."""
    import pyarrow as pa

    from analytics.loading import read_table

    f = tmp_path / "orders.parquet"
    pd.DataFrame({"order_id": ["1"]}).to_parquet(f)

    def fail(*_a, **_k):
        raise getattr(pa, error)("Support for codec 'lzo' not built")

    monkeypatch.setattr(pd, "read_parquet", fail)
    with pytest.raises(InputError, match=r"orders\.parquet: cannot read \(Support for codec"):
        read_table(f)


def test_an_error_of_ours_while_reading_is_not_reworded(tmp_path, monkeypatch):
    from analytics.loading import read_table

    f = tmp_path / "orders.parquet"
    pd.DataFrame({"order_id": ["1"]}).to_parquet(f)
    monkeypatch.setattr(pd, "read_parquet", lambda *_a, **_k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        read_table(f)
