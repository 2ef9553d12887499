"""Churn (no leakage across the cutoff), cohorts and CLV on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.customers import churn, clv, cohorts, rfm
from analytics.customers.config import ChurnConfig, ClvConfig

CUTOFF = pd.Timestamp("2024-10-01")


def test_features_use_only_orders_before_the_cutoff(store):
    """Changing, deleting or adding anything dated on/after the cutoff must not move a feature."""
    orders, _ = store
    v = rfm.valid_orders(orders)
    before = churn.features_at(v, CUTOFF)
    after = v["order_date"] >= CUTOFF
    assert after.sum() > 100  # the test means something: there is future data to leak

    tampered = v.copy()
    tampered.loc[after, "net_revenue"] *= 100
    tampered = tampered[~(after & (np.arange(len(v)) % 2 == 0))]  # drop half the future orders
    extra = v[~after].head(50).assign(order_id=lambda d: "F" + d["order_id"],
                                      order_date=CUTOFF)          # new orders ON the cutoff day
    tampered = pd.concat([tampered, extra], ignore_index=True)
    pd.testing.assert_frame_equal(before, churn.features_at(tampered, CUTOFF))


def test_a_feature_that_peeks_is_caught(store):
    """The check above has teeth: features computed through the cutoff day differ."""
    orders, _ = store
    v = rfm.valid_orders(orders)
    peeking = churn.features_at(v, CUTOFF + pd.Timedelta(days=1))
    assert not churn.features_at(v, CUTOFF).equals(peeking)


def test_label_window_is_cutoff_inclusive_horizon_exclusive():
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": ["a1", "a2", "b1", "b2", "c1"],
        "customer_id": ["A", "A", "B", "B", "C"],
        "order_date": ["2024-09-01", "2024-10-01", "2024-09-01", "2024-10-31", "2024-09-15"],
        "net_revenue": [1.0] * 5}))
    f = churn.features_at(v, CUTOFF)
    y = churn.labels_at(v, f.index, CUTOFF, horizon_days=30)
    assert y.to_dict() == {"A": 0, "B": 1, "C": 1}  # B's order on day 30 is outside [cutoff, +30)
    assert f.loc["A", "frequency"] == 1  # the order on the cutoff day is not a feature


def test_churn_models_scored_against_truth_and_deterministic(store):
    orders, truth = store
    v = rfm.valid_orders(orders)
    end = rfm.data_end_date(orders)
    cfg = ChurnConfig(horizon_days=60, rf_trees=30)
    a = churn.run_churn(v, end, cfg, seed=5, truth_customers=truth)
    assert a.status == "ok"
    for m in ("logistic_regression", "random_forest"):
        met = a.summary["models"][m]
        assert 0.7 < met["roc_auc"] <= 1.0
        assert sum(met["confusion_matrix"].values()) == a.summary["eval_customers"]
        assert a.summary["truth"][f"{m}_roc_auc"] > 0.7
    assert set(a.summary["models"]["random_forest"]["importances"]) == set(churn.FEATURES)
    assert a.risk.between(0, 1).all() and len(a.risk) == v["customer_id"].nunique()
    b = churn.run_churn(v, end, cfg, seed=5, truth_customers=truth)
    pd.testing.assert_series_equal(a.risk, b.risk)


def test_churn_skips_short_data_with_a_reason():
    v = rfm.valid_orders(pd.DataFrame({"order_id": ["1", "2"], "customer_id": ["A", "B"],
                                       "order_date": ["2025-01-01", "2025-01-20"], "net_revenue": [1.0, 2.0]}))
    res = churn.run_churn(v, pd.Timestamp("2025-01-20"), ChurnConfig(), seed=0)
    assert res.status.startswith("skipped: needs") and res.risk is None


def test_cohort_matrix_known_answer():
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": list("123456"), "customer_id": ["A", "A", "B", "C", "C", "B"],
        "order_date": ["2025-01-05", "2025-02-10", "2025-01-20", "2025-02-01", "2025-03-03", "2025-03-30"],
        "net_revenue": [1.0] * 6}))
    m, sizes = cohorts.retention_matrix(v, max_months=3)
    assert sizes.to_dict() == {"2025-01": 2, "2025-02": 1}
    assert m.loc["2025-01", 0] == 1.0 and m.loc["2025-01", 1] == 0.5 and m.loc["2025-01", 2] == 0.5
    assert m.loc["2025-02", 1] == 1.0
    assert np.isnan(m.loc["2025-02", 2])  # not observable yet: NaN, not 0
    assert list(m.columns) == [0, 1, 2]  # no empty columns up to max_months=3


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_clv_fits_and_ranks_true_rates(store, model):
    orders, truth = store
    v = rfm.valid_orders(orders)
    res = clv.run_clv(v, rfm.data_end_date(orders), ClvConfig(horizon_days=180, model=model), truth)
    assert res.summary["status"] == "ok" and res.summary["model"] == model
    assert res.summary["truth"]["p_alive_roc_auc_vs_true_alive"] > 0.6
    t = res.table
    assert (t["frequency"] <= t["orders"] - 1).all() and (t["recency"] <= t["T"]).all()
    assert np.isfinite(t[["clv", "p_alive", "expected_rate_per_year"]].to_numpy()).all()
    assert res.summary["truth"]["spearman_expected_rate_vs_true_rate"] > 0.5
    assert t["value_pct"].between(0, 1).all()


def test_clv_summary_convention():
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": list("1234"), "customer_id": ["A", "A", "A", "B"],
        "order_date": ["2025-01-01", "2025-01-01", "2025-01-11", "2025-01-21"],
        "net_revenue": [10.0, 5.0, 30.0, 7.0]}))
    s = clv.summary_data(v, pd.Timestamp("2025-01-31"))
    # A: two purchase days -> one repeat, 10 days apart, first 30 days ago, repeat value 30
    assert s.loc["A"].tolist() == pytest.approx([1.0, 10.0, 30.0, 30.0])
    assert s.loc["B"].tolist() == pytest.approx([0.0, 0.0, 10.0, 0.0])


def test_clv_failure_keeps_historical_value():
    """Too few repeat buyers for Gamma-Gamma: no exception, a reason, historical value kept."""
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": list("123456"), "customer_id": list("ABCDEA"),
        "order_date": ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04", "2025-01-05", "2025-02-01"],
        "net_revenue": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]}))
    res = clv.run_clv(v, pd.Timestamp("2025-03-01"), ClvConfig())
    assert res.summary["status"].startswith("failed: penalizer 0.001: ")
    assert res.summary["status"].count("; penalizer ") == 2 and "\n" not in res.summary["status"]
    assert "clv" not in res.table and res.table.loc["A", "historical_value"] == 70.0
    assert res.table["value_pct"].idxmax() == "A"
