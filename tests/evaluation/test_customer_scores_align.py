"""``score_customers`` aligns the model's table with the truth by an Arrow-hashed id lookup: the
same customers, in the same order, as pandas' ``intersection`` + ``loc`` gave."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.customer_scores import churn_truth_scores, score_customers


def _tables(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = np.array([f"2024{i:010d}" for i in range(400)])
    truth = pd.DataFrame({
        "customer_id": ids,
        "purchase_rate": rng.gamma(2.0, 1.0, ids.size),
        "churn_date": np.where(rng.random(ids.size) < 0.4, "2024-06-01", ""),
        "value_tier": rng.choice(["low", "medium", "high"], ids.size),
    })
    # the model saw a shuffled subset plus customers the truth does not know
    seen = np.concatenate([rng.permutation(ids)[:300], ["X1", "X2"]])
    tab = pd.DataFrame({
        "p_alive": rng.random(seen.size),
        "expected_rate_per_year": rng.gamma(2.0, 1.0, seen.size),
        "frequency": rng.integers(0, 5, seen.size),
        "monetary_value": rng.gamma(3.0, 20.0, seen.size),
        "clv": rng.gamma(2.0, 50.0, seen.size),
    }, index=pd.Index(seen, name="customer_id"))
    tab["clv_low"], tab["clv_high"] = tab["clv"] * 0.5, tab["clv"] * 1.5
    return truth, tab


def test_alignment_matches_intersection_and_loc():
    truth, tab = _tables(np.random.default_rng(3))
    kw = dict(horizon_days=365, discount_rate_monthly=0.01, lifetime_days=300.0)
    end = pd.Timestamp("2024-12-31")
    got = score_customers(tab, truth, end, **kw)
    # the previous alignment, by hand: pre-aligned tables must give the same scores
    t = truth.drop_duplicates("customer_id").set_index("customer_id")
    common = tab.index.intersection(t.index)
    want = score_customers(tab.loc[common], t.loc[common].reset_index(), end, **kw)
    assert got == want and got["customers"] == 300
    p = {"m": np.random.default_rng(4).random(tab.index.size)}
    assert churn_truth_scores(truth, tab.index, p, end)["customers"] == 300
