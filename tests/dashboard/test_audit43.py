"""Session 43's dashboard findings (each test failed on the code before it): customer ids that
lost their leading zeros on the Customers page, customers without a churn risk left out of the
churn table and the action list by the risk slider at its full range, and a Compare link naming a
run B that is not there, shown as another run without a word."""

from __future__ import annotations

from tests.dashboard.apptest import texts
from tests.servefix import ZERO, zero_padded


def test_customer_ids_keep_their_leading_zeros_on_the_customers_page(page, roots, tmp_path,
                                                                    monkeypatch):
    """The churn table (and the action list and its download, made from the same table) held
    int64 ids: 000123 showed as 123."""
    import pandas as pd

    reports = tmp_path / "reports"
    zero_padded(roots.reports / "tx", reports / "zeros")
    seg = reports / "zeros" / "customers" / "segments.csv"
    df = pd.read_csv(seg, dtype=str, keep_default_na=False)
    want = set(df["customer_id"])
    monkeypatch.setenv("SHOCKLAB_REPORTS", str(reports))
    at = page("customers", "zeros")
    acts = at.multiselect(key="cu_act")
    acts.set_value(acts.options).run()   # every action, "no action" too
    tables = [t.value for t in at.dataframe if "customer_id" in t.value.columns]
    assert len(tables) == 2, [list(t.value.columns) for t in at.dataframe]  # churn, action list
    for t in tables:
        ids = t["customer_id"].tolist()
        assert ids and all(isinstance(i, str) and i.startswith(ZERO) for i in ids), ids[:3]
        assert set(ids) <= want


def test_a_compare_link_to_a_missing_run_b_says_which_run_it_shows(page):
    at = page("compare", "sim", other="gone-run")
    b = at.selectbox(key="cmp_b").value
    assert "No run `gone-run` under `" in texts(at) and f"showing `{b}`." in texts(at)
    assert [w.value for w in at.warning if "gone-run" in w.value]
    at = page("compare", "sim", other="sim")   # run A itself
    assert "(it is run A); showing" in texts(at)
    at = page("compare", "sim", other="sim-k1")
    assert not [w.value for w in at.warning if "No run" in w.value]


def test_customers_without_a_churn_risk_are_listed_until_the_risk_is_narrowed(page, roots):
    """The fixture's `tx` run has three customers and no churn risk (too little history): the
    slider at 0-1 dropped all three from the churn table and the action list (NaN is in no
    range); a narrowed range still asks for a risk."""
    import pandas as pd

    seg = pd.read_csv(roots.reports / "tx" / "customers" / "segments.csv", dtype=str)
    assert seg["churn_risk"].isna().all() and len(seg) == 3
    at = page("customers", "tx")
    acts = at.multiselect(key="cu_act")
    acts.set_value(acts.options).run()
    tables = [t.value for t in at.dataframe if "customer_id" in t.value.columns]
    assert len(tables) == 2 and all(len(t) == 3 for t in tables), [len(t) for t in tables]
    at.slider(key="cu_risk").set_value((0.2, 1.0)).run()
    tables = [t.value for t in at.dataframe if "customer_id" in t.value.columns]
    assert all(len(t) == 0 for t in tables), [len(t) for t in tables]
