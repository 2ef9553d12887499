"""Churn (no leakage across the cutoff), cohorts and CLV on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.customers import churn, clv, cohorts, rfm
from analytics.customers.config import ChurnConfig, ClvConfig
from evaluation import customer_scores as truth_scores

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
    a = churn.run_churn(v, end, cfg, seed=5)
    assert a.status == "ok"
    for m in ("logistic_regression", "random_forest"):
        met = a.summary["models"][m]
        assert 0.7 < met["roc_auc"] <= 1.0
        assert sum(met["confusion_matrix"].values()) == a.summary["eval_customers"]
    # scored against the truth by the evaluation stage, from the out-of-time predictions
    ts = truth_scores.churn_truth_scores(truth, a.eval_customers, a.eval_p, end)
    for m in ("logistic_regression", "random_forest"):
        assert ts[f"{m}_roc_auc"] > 0.7
    assert set(a.summary["models"]["random_forest"]["importances"]) == set(churn.FEATURES)
    assert a.risk.between(0, 1).all() and len(a.risk) == v["customer_id"].nunique()
    b = churn.run_churn(v, end, cfg, seed=5)
    pd.testing.assert_series_equal(a.risk, b.risk)
    # the better model (out-of-time ROC-AUC) is the one calibrated and used (min for max passed)
    aucs = {m: a.summary["models"][m]["roc_auc"] for m in churn.MODELS}
    assert aucs[a.summary["best_model"]] == max(aucs.values())
    # cutoffs (module docstring): c_eval = end + 1 - N, so [c_eval, end] is N days; c_train
    # = c_eval - N (a cutoff one day early passed)
    n = a.summary["horizon_days"]
    c_eval, c_train = (pd.Timestamp(a.summary[k]) for k in ("eval_cutoff", "train_cutoff"))
    assert (end - c_eval).days + 1 == n and (c_eval - c_train).days == n


def test_churn_skips_short_data_with_a_reason():
    v = rfm.valid_orders(
        pd.DataFrame(
            {
                "order_id": ["1", "2"],
                "customer_id": ["A", "B"],
                "order_date": ["2025-01-01", "2025-01-20"],
                "net_revenue": [1.0, 2.0],
            }
        )
    )
    res = churn.run_churn(v, pd.Timestamp("2025-01-20"), ChurnConfig(), seed=0)
    assert res.status.startswith("skipped: needs") and res.risk is None


def test_cohort_matrix_known_answer():
    v = rfm.valid_orders(
        pd.DataFrame(
            {
                "order_id": list("123456"),
                "customer_id": ["A", "A", "B", "C", "C", "B"],
                "order_date": [
                    "2025-01-05",
                    "2025-02-10",
                    "2025-01-20",
                    "2025-02-01",
                    "2025-03-03",
                    "2025-03-30",
                ],
                "net_revenue": [1.0] * 6,
            }
        )
    )
    m, sizes = cohorts.retention_matrix(v, max_months=3)
    assert sizes.to_dict() == {"2025-01": 2, "2025-02": 1}
    assert m.loc["2025-01", 0] == 1.0 and m.loc["2025-01", 1] == 0.5 and m.loc["2025-01", 2] == 0.5
    assert m.loc["2025-02", 1] == 1.0
    assert np.isnan(m.loc["2025-02", 2])  # not observable yet: NaN, not 0
    assert list(m.columns) == [0, 1, 2]  # no empty columns up to max_months=3


def test_a_last_month_the_data_covers_in_part_is_not_read_as_lost_customers():
    """A file ending on the 9th counted that month's few orders as the month's retention: every
    cohort's last cell read low (Online Retail II ends 2011-12-09) and so did the summary means."""
    rows = [("a", "2025-01-05"), ("b", "2025-01-20"), ("a", "2025-02-10"), ("b", "2025-02-11"),
            ("a", "2025-03-02"), ("c", "2025-03-03")]
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": [str(i) for i in range(len(rows))], "customer_id": [c for c, _ in rows],
        "order_date": [d for _, d in rows], "net_revenue": 1.0}))
    m, sizes = cohorts.retention_matrix(v, max_months=6)
    assert sizes.to_dict() == {"2025-01": 2, "2025-03": 1}
    assert list(m.columns) == [0, 1]  # March (3 of 31 days) is not a month of data yet
    assert m.loc["2025-01", 1] == 1.0 and m.loc["2025-03", 0] == 1.0
    assert np.isnan(m.loc["2025-03", 1])
    full = rfm.valid_orders(pd.DataFrame({  # the same with March observed to its 29th: counted
        "order_id": ["x", *v["order_id"]], "customer_id": ["d", *v["customer_id"].astype(str)],
        "order_date": ["2025-03-29", *v["order_date"]], "net_revenue": 1.0}))
    m2, _ = cohorts.retention_matrix(full, max_months=6)
    assert list(m2.columns) == [0, 1, 2] and m2.loc["2025-01", 2] == 0.5


def test_months_without_orders_before_the_data_end_are_observed_as_nobody_retained():
    """--as-of 2020-06-15 on a shop closed from April: the cohort table stopped at March (the
    last order's month), April and May read NaN ("not reached") where nobody came back (0), and
    a month-end as-of whose last days had no order left that month out as partial."""
    rows = [("a", "2020-01-05"), ("b", "2020-01-20"), ("a", "2020-02-10"), ("b", "2020-03-30")]
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": [str(i) for i in range(len(rows))], "customer_id": [c for c, _ in rows],
        "order_date": [d for _, d in rows], "net_revenue": 1.0}))
    m, _ = cohorts.retention_matrix(v, max_months=12, end=pd.Timestamp("2020-06-15"))
    assert list(m.columns) == [0, 1, 2, 3, 4]  # June (15 of 30 days) is still partial
    assert m.loc["2020-01"].tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    m_end, _ = cohorts.retention_matrix(v, max_months=12, end=pd.Timestamp("2020-04-30"))
    assert m_end.loc["2020-01"].tolist() == [1.0, 0.5, 0.5, 0.0]  # April observed to its end
    m_last, _ = cohorts.retention_matrix(v, max_months=12)  # default: the last order's day
    assert m_last.loc["2020-01"].tolist() == [1.0, 0.5, 0.5]


def test_cohort_matrix_equals_the_pair_count(store):
    """The integer-key cohort matrix equals counting distinct (cohort, age, customer) pairs with
    pandas (the earlier implementation), on ids given as strings without codes too."""
    orders, _ = store
    v = rfm.valid_orders(orders)
    d = v["order_date"]
    month = (d.dt.year * 12 + d.dt.month - 1).to_numpy()
    first = pd.Series(month).groupby(v["customer_id"].astype(str).to_numpy()).transform("min")
    pairs = pd.DataFrame({"cohort": first.to_numpy(), "age": month - first.to_numpy(),
                          "c": v["customer_id"].astype(str).to_numpy()})
    end = d.max()
    if (end + pd.offsets.MonthEnd(0) - end).days >= cohorts.PARTIAL_DAYS:  # a partial last month
        pairs = pairs[(month < month.max()) | (pairs["age"] == 0).to_numpy()]
        assert len(pairs) < len(v)  # the store ends mid-month: the rule is exercised
    for max_months in (2, 6, 24):
        p = pairs[pairs["age"] <= max_months].drop_duplicates()
        ref = p.groupby(["cohort", "age"]).size().unstack("age", fill_value=0)
        m, sizes = cohorts.retention_matrix(v, max_months)
        assert sizes.to_numpy().tolist() == ref[0].tolist()
        got = (m.fillna(0.0).to_numpy() * sizes.to_numpy()[:, None]).round().astype(int)
        want = ref.reindex(columns=range(m.shape[1]), fill_value=0).to_numpy()
        assert (got == want).all()
        plain = v.drop(columns="cust").assign(customer_id=v["customer_id"].astype(str))
        pd.testing.assert_frame_equal(cohorts.retention_matrix(plain, max_months)[0], m)


def test_expected_rate_is_the_exact_pareto_nbd_posterior_mean():
    """E[lambda | x, t_x, T] against a fine trapezoid over the death time; the earlier shortcut
    (death at t_x for the dead) overstates the rate of customers who stopped buying."""
    p = {"r": 1.1, "alpha": 150.0, "s": 100.0, "beta": 25000.0}
    x = np.array([0.0, 0.0, 1.0, 4.0, 10.0])
    tx = np.array([0.0, 0.0, 20.0, 300.0, 200.0])
    T = np.array([30.0, 600.0, 500.0, 320.0, 700.0])
    got = clv.pnbd_expected_rate(p, x, tx, T)
    r, a, s, b = p["r"], p["alpha"], p["s"], p["beta"]
    for i in range(len(x)):
        tau = np.linspace(tx[i], T[i], 200_001)
        # in logs (b^s overflows), both terms scaled by the same constant
        log_d = -(r + x[i]) * np.log(a + tau) + np.log(s) - (s + 1) * np.log(b + tau)
        log_a = -(r + x[i]) * np.log(a + T[i]) - s * np.log(b + T[i])
        top = max(log_d.max(), log_a)
        dens, alive = np.exp(log_d - top), np.exp(log_a - top)
        num = alive * (r + x[i]) / (a + T[i]) + np.trapezoid(dens * (r + x[i]) / (a + tau), tau)
        den = alive + np.trapezoid(dens, tau)
        assert got[i] == pytest.approx(num / den, rel=2e-3)
    pa = clv.pnbd_p_alive(p, x, tx, T)
    shortcut = (r + x) * (pa / (a + T) + (1 - pa) / (a + tx))
    assert got[1] < 0.9 * shortcut[1]  # a one-time buyer silent for 600 days


def test_clv_fits_and_ranks_true_rates(store):
    orders, truth = store
    v = rfm.valid_orders(orders)
    end = rfm.data_end_date(orders)
    cfg = ClvConfig(horizon_days=180)
    res = clv.run_clv(v, end, cfg)
    assert res.summary["status"] == "ok" and res.summary["model"] == "pareto_nbd+gamma_gamma"
    t = res.table
    assert (t["frequency"] <= t["orders"] - 1).all() and (t["recency"] <= t["T"]).all()
    assert np.isfinite(
        t[["clv", "clv_low", "clv_high", "p_alive", "expected_rate_per_year"]].to_numpy()
    ).all()
    assert (t["clv_low"] <= t["clv_high"]).all() and (t["clv_low"] >= 0).all()
    # the point is the posterior mean; a customer gone with probability >= the interval's level
    # has a [0, 0] interval (the interval holds 90 % of the posterior, the atom at 0 included)
    assert ((t["clv_high"] == 0) == (t["p_alive"] <= 1 - 0.9)).all()
    assert (t["clv_source"] == "model").all() and res.summary["unscored_customers"] == 0
    assert t["value_pct"].between(0, 1).all()
    ts = truth_scores.score_customers(t, truth, end, horizon_days=180, discount_rate_monthly=0.01,
                                      lifetime_days=None)
    assert ts["overall"]["p_alive_roc_auc"] > 0.7
    assert ts["overall"]["rate_spearman"] > 0.5


def test_pareto_nbd_quadrature_matches_the_closed_form():
    """The dropout integral by quadrature equals Fader & Hardie's hyp2f1 closed form."""
    from scipy.special import hyp2f1
    r, a, s, b = 1.1, 150.0, 2.0, 500.0
    x = np.array([0.0, 1.0, 3.0, 12.0, 40.0])
    tx = np.array([0.0, 30.0, 200.0, 400.0, 100.0])
    T = np.array([300.0, 365.0, 500.0, 700.0, 700.0])
    _, bracket = clv._pnbd_log_terms(np.array([r, a, s, b]), x, tx, T)
    rsx = r + s + x  # alpha < beta branch of the closed form
    a0 = (hyp2f1(rsx, r + x, rsx + 1, (b - a) / (b + tx)) / (b + tx) ** rsx
          - hyp2f1(rsx, r + x, rsx + 1, (b - a) / (b + T)) / (b + T) ** rsx)
    closed = np.log((a + T) ** -(r + x) * (b + T) ** -s + s / rsx * a0)
    np.testing.assert_allclose(bracket, closed, atol=1e-3)


def test_pareto_nbd_recovers_simulated_parameters():
    """MLE on data drawn from the model itself finds its parameters (within sampling error)."""
    g = np.random.default_rng(11)
    n, r, a, mu = 4000, 1.5, 100.0, 1 / 300
    lam = g.gamma(r, 1 / a, n)
    T = g.uniform(100, 700, n)
    death = g.exponential(1 / mu, n)
    alive_for = np.minimum(death, T)
    x = g.poisson(lam * alive_for)
    # the last purchase of x Poisson events in [0, alive_for] is the max of x uniforms
    tx = np.where(x > 0, alive_for * g.beta(np.maximum(x, 1), 1), 0.0)
    p = clv.fit_pareto_nbd(x.astype(float), tx, T)
    assert p["r"] / p["alpha"] == pytest.approx(r / a, rel=0.15)
    assert p["s"] / p["beta"] == pytest.approx(mu, rel=0.3)
    pa = clv.pnbd_p_alive(p, x.astype(float), tx, T)
    assert np.isfinite(pa).all() and ((pa >= 0) & (pa <= 1)).all()


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
    """Too few repeat buyers for Gamma-Gamma: no exception, a reason, historical value flagged."""
    v = rfm.valid_orders(
        pd.DataFrame(
            {
                "order_id": list("123456"),
                "customer_id": list("ABCDEA"),
                "order_date": [
                    "2025-01-01",
                    "2025-01-02",
                    "2025-01-03",
                    "2025-01-04",
                    "2025-01-05",
                    "2025-02-01",
                ],
                "net_revenue": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
            }
        )
    )
    res = clv.run_clv(v, pd.Timestamp("2025-03-01"), ClvConfig())
    assert res.summary["status"].startswith(
        "fallback: historical value for every customer (ValueError: only 1"
    )
    assert "\n" not in res.summary["status"] and res.summary["unscored_customers"] == 5
    t = res.table
    assert (t["clv_source"] == "historical").all() and t.loc["A", "clv"] == t.loc[
        "A", "historical_value"
    ] == 70.0
    assert t["value_pct"].idxmax() == "A"


def test_churn_metrics_equal_sklearns():
    """The confusion counts and ratios come from one bincount: the same floats as sklearn's."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    g = np.random.default_rng(3)
    for y, p in ((g.integers(0, 2, 5000), g.random(5000)),
                 (np.zeros(50, int), g.random(50)),          # one class: no ROC-AUC
                 (g.integers(0, 2, 40), np.zeros(40))):      # nothing predicted positive
        m = churn._metrics(y, p, 0.5)
        pred = (p >= 0.5).astype(int)
        assert m["accuracy"] == accuracy_score(y, pred)
        assert m["precision"] == precision_score(y, pred, zero_division=0)
        assert m["recall"] == recall_score(y, pred, zero_division=0)
        assert m["f1"] == f1_score(y, pred, zero_division=0)
        cm = m["confusion_matrix"]
        assert cm["tp"] == int(((y == 1) & (pred == 1)).sum())
        assert cm["fp"] == int(((y == 0) & (pred == 1)).sum())
        assert (m["roc_auc"] is None) == (len(np.unique(y)) < 2)
        if m["roc_auc"] is not None:  # from a precomputed curve: the same float as sklearn's
            from sklearn.metrics import roc_auc_score, roc_curve
            fpr, tpr, _ = roc_curve(y, p)
            assert churn._metrics(y, p, 0.5, roc=(fpr, tpr))["roc_auc"] == roc_auc_score(y, p)


def test_activity_clock_of_ones_is_the_calendar_model():
    """A clock with g = 1 everywhere reproduces the calendar Pareto/NBD (likelihood, P(alive),
    rate, forecast): the clock only re-times the purchase process."""
    p = {"r": 1.1, "alpha": 150.0, "s": 3.0, "beta": 400.0}
    q = np.array([p["r"], p["alpha"], p["s"], p["beta"]])
    x = np.array([0.0, 1.0, 4.0, 10.0])
    tx = np.array([0.0, 20.0, 300.0, 200.0])
    T = np.array([30.0, 500.0, 320.0, 700.0])
    ones = clv.StoreClock(g=np.ones(731), g_end=1.0)
    for a, b in zip(clv._pnbd_log_terms(q, x, tx, T), clv._pnbd_log_terms(q, x, tx, T, ones),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    pa = clv.pnbd_p_alive(p, x, tx, T)
    np.testing.assert_allclose(clv.pnbd_expected_rate(p, x, tx, T),
                               clv.pnbd_expected_rate(p, x, tx, T, ones), rtol=1e-9)
    np.testing.assert_allclose(clv.pnbd_expected_purchases(p, 365.0, x, T, pa),
                               clv.pnbd_expected_purchases(p, 365.0, x, T, pa, ones), rtol=1e-9)
    half = clv.StoreClock(g=np.ones(731), g_end=0.5)  # the forecast follows the current level
    np.testing.assert_allclose(clv.pnbd_expected_purchases(p, 365.0, x, T, pa, half),
                               0.5 * clv.pnbd_expected_purchases(p, 365.0, x, T, pa), rtol=1e-9)


def test_store_clock_sees_the_per_customer_intensity_fall():
    """Customers acquired over the period buying at lambda x 1.5 a day before day 200 and
    lambda x 0.5 after it (no dropout): the estimated activity falls about 3x and the forecast
    level is the late one."""
    g = np.random.default_rng(11)
    n_c, days = 3000, 400
    first = g.integers(0, days, n_c)
    lam = g.gamma(2.0, 1 / 80.0, n_c)               # mean 1 / 40 a day
    level = np.where(np.arange(days) < 200, 1.5, 0.5)
    buys = g.random((n_c, days)) < lam[:, None] * level[None, :]
    buys &= np.arange(days)[None, :] > first[:, None]
    buys[np.arange(n_c), first] = True
    ci, di = np.nonzero(buys)
    start = pd.Timestamp("2024-01-01")
    orders = pd.DataFrame({"order_id": np.arange(len(ci)).astype(str),
                           "customer_id": [f"C{i:05d}" for i in ci],
                           "order_date": start + pd.to_timedelta(di, unit="D"),
                           "net_revenue": 10.0})
    end = start + pd.Timedelta(days=days - 1)
    clock = clv.store_clock(orders, end, {"r": 2.0, "alpha": 80.0, "s": 100.0, "beta": 1e6})
    early, late = clock.g[40:180].mean(), clock.g[220:380].mean()
    assert 2.2 < early / late < 4.0
    assert clock.g_end == pytest.approx(late, rel=0.25) and clock.g_end < 0.8


def test_end_intensity_factor_is_the_last_days_intensity_over_the_average():
    """Country A's customers order every 10 days, then every 20 days in the last 90 (27 orders,
    then 5): its truth rates (period averages, 32 orders in 360 days) are extrapolated at
    (5 / 90) / (32 / 360) of themselves; country B's steady customers keep theirs."""
    start = pd.Timestamp("2024-01-01")
    rows = []
    for i in range(10):
        for cid, late_gap in ((f"A{i}", 20), (f"B{i}", 10)):
            d = list(range(i % 10, 270, 10)) + list(range(270 + i % late_gap, 360, late_gap))
            rows += [(f"{cid}-{k}", cid, start + pd.Timedelta(days=k), 1.0) for k in d]
    orders = pd.DataFrame(rows, columns=["order_id", "customer_id", "order_date", "net_revenue"])
    ids = [f"{c}{i}" for c in "AB" for i in range(10)]
    customers = pd.DataFrame({"customer_id": ids, "signup_date": "2023-06-01",
                              "country": [c[0] for c in ids]})
    truth = pd.DataFrame({"customer_id": ids, "purchase_rate": 36.5, "churn_date": ""})
    f = truth_scores.end_intensity_factor(truth, customers, orders,
                                          start + pd.Timedelta(days=359))
    assert f.loc["A3"] == pytest.approx((5 / 90) / (32 / 360), rel=1e-9)
    assert f.loc["B3"] == pytest.approx(1.0, rel=1e-9)
    assert truth_scores.end_intensity_factor(truth, None, orders, start) is None


def test_platt_is_sklearns_logistic_regression_at_its_optimum():
    """Newton on LogisticRegression(C=1e6)'s objective: the same map as sklearn solved tightly."""
    from sklearn.linear_model import LogisticRegression

    g = np.random.default_rng(4)
    for n in (5000, 60):
        z = g.normal(size=n)
        y = (g.random(n) < 1 / (1 + np.exp(-(0.4 + 1.3 * z)))).astype(int)
        p = 1 / (1 + np.exp(-z))
        ref = LogisticRegression(C=churn.PLATT_C, tol=1e-12, max_iter=10_000).fit(
            np.log(p / (1 - p))[:, None], y)
        q = np.linspace(0.02, 0.98, 25)
        want = ref.predict_proba(np.log(q / (1 - q))[:, None])[:, 1]
        np.testing.assert_allclose(churn._platt(p, y)(q), want, atol=1e-7)


def test_p_alive_calibration_error_is_the_weighted_gap_of_the_reliability_curve():
    """Two bins: 100 customers predicted 0.05 of whom 10 % alive, 300 predicted 0.95 of whom
    80 % alive: (100 x 0.05 + 300 x 0.15) / 400 = 0.125; a calibrated curve gives 0."""
    p = np.r_[np.full(100, 0.05), np.full(300, 0.95)]
    y = np.r_[np.arange(100) < 10, np.arange(300) < 240]
    curve = churn.reliability(p, y)
    assert truth_scores.calibration_error(curve) == pytest.approx(0.125, rel=1e-12)
    y_cal = np.r_[np.arange(100) < 5, np.arange(300) < 285]
    calibrated = churn.reliability(p, y_cal)
    assert truth_scores.calibration_error(calibrated) == pytest.approx(0, abs=1e-12)
    assert truth_scores.calibration_error([]) is None


def test_forest_probabilities_on_threads_equal_predict_proba(monkeypatch):
    """The forest's class-1 probabilities with the trees' leaves found on two threads and summed
    in tree order are predict_proba's floats, bit for bit."""
    from sklearn.ensemble import RandomForestClassifier

    g = np.random.default_rng(7)
    x = g.random((3000, 6))
    y = (x[:, 0] + 0.5 * g.random(3000) > 0.8).astype(int)
    model = RandomForestClassifier(n_estimators=11, max_depth=6, random_state=3).fit(x, y)
    x_new = g.random((5000, 6)) * 1.3
    monkeypatch.setattr(churn, "spare_core", lambda: True)
    got = churn._positive_proba(model, x_new)
    assert np.array_equal(got, model.predict_proba(x_new)[:, 1])
    monkeypatch.setattr(churn, "spare_core", lambda: False)
    assert np.array_equal(churn._positive_proba(model, x_new), got)


def test_cohort_partial_month_boundary_matches_the_docs():
    """(audit-custnum) README / docs/customers.md said a last month is partial when the data
    ends "more than 3 days" before it does; the code (and this test) read data ending on the
    28th of January (3 days before) as partial, on the 29th as full: the docs now say
    "3 days or more"."""

    def month_1(last: str) -> float:
        o = pd.DataFrame({"order_id": [1, 2, 3], "customer_id": ["a", "a", "b"],
                          "order_date": pd.to_datetime(["2023-12-05", "2024-01-02", last]),
                          "net_revenue": [1.0, 1.0, 1.0]})
        m, _ = cohorts.retention_matrix(rfm.valid_orders(o))
        return m.loc["2023-12"].get(1, float("nan"))

    assert pd.isna(month_1("2024-01-28"))
    assert month_1("2024-01-29") == 1.0


def test_run_clv_sees_no_order_after_its_end():
    """(audit-custnum) ``run_clv(orders, end)`` cut nothing at ``end``: a customer whose first
    order came after it was scored with T = -15 days and a later order of another customer
    entered their historical value, while the activity clock (``purchase_days``) did cut. The
    stage pre-filters, so only direct callers saw it; the stage's figures are unchanged."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(60):
        n = int(rng.integers(1, 5))
        for d in sorted(rng.integers(0, 300, size=n)):
            rows.append((f"c{i:03d}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(d)),
                         float(rng.uniform(10, 100))))
    o = pd.DataFrame(rows, columns=["customer_id", "order_date", "net_revenue"])
    o["order_id"] = np.arange(len(o))
    end = pd.Timestamp("2024-08-01")
    cut = o[o["order_date"] <= end]
    cfg = ClvConfig(activity_clock=False)
    full, ref = clv.run_clv(o, end, cfg).table, clv.run_clv(cut, end, cfg).table
    assert (full["T"] >= 0).all()
    pd.testing.assert_frame_equal(full, ref)


def test_recent_order_counts_and_a_one_order_gap():
    """orders_30d / orders_90d count the orders of the 30 / 90 days before the cutoff (the one 30
    days before included, 31 not), and a one-order customer's mean gap is their tenure (module
    docstring); an order on the threshold probability is predicted churned. None of these
    edges was tested (mutants Q02, Q04, Q07 passed)."""
    day = lambda k: (CUTOFF - pd.Timedelta(days=k)).date().isoformat()  # noqa: E731
    v = rfm.valid_orders(pd.DataFrame({
        "order_id": ["a1", "a2", "a3", "b1"], "customer_id": ["A", "A", "A", "B"],
        "order_date": [day(31), day(30), day(90), day(45)], "net_revenue": 1.0}))
    f = churn.features_at(v, CUTOFF)
    assert (f.loc["A", "orders_30d"], f.loc["A", "orders_90d"]) == (1, 3)
    assert f.loc["B", "mean_gap_days"] == f.loc["B", "tenure_days"] == 45
    m = churn._metrics(np.array([1, 0, 1]), np.array([0.5, 0.2, 0.9]), threshold=0.5)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 0, "fn": 0, "tp": 2}


def test_a_small_stores_forest_is_fitted_without_sklearns_bootstrap_warning():
    """A store of a few dozen customers: rf_max_samples 0.25 of 23 rows printed sklearn's
    'UserWarning: Using the fractional value max_samples=0.25 …' on the stderr of a --quiet run
    (edge-worlds audit). The forest now gets the count sklearn would draw, so it is the same
    forest, and no warning."""
    import warnings

    from sklearn.ensemble import RandomForestClassifier

    g = np.random.default_rng(3)
    x, y = g.normal(size=(23, 4)), np.r_[np.zeros(12, int), np.ones(11, int)]
    model = churn._models(ChurnConfig(), seed=1)["random_forest"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        churn._fit(model, x, y)
    assert model.get_params()["max_samples"] == 5
    ref = RandomForestClassifier(**{**model.get_params(), "max_samples": 0.25, "n_jobs": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.fit(x, y)
    np.testing.assert_array_equal(model.predict_proba(x), ref.predict_proba(x))


def test_a_horizon_longer_than_the_order_history_is_said_not_hidden(store):
    """365 days predicted from 4 weeks of orders was a 13x extrapolation read as a forecast
    (−87 % against the truth with a churn wave, +93 % without; audit-custlong): the summary
    names the history's length and, when the horizon is longer, says so."""
    orders, _ = store
    v = rfm.valid_orders(orders)
    end = rfm.data_end_date(orders)
    full = clv.run_clv(v, end, ClvConfig(horizon_days=180))
    assert full.summary["history_days"] == int(full.table["T"].max()) + 1 > 180
    assert "note" not in full.summary
    short_end = pd.Timestamp(end) - pd.Timedelta(days=int(full.summary["history_days"]) - 28)
    short = clv.run_clv(v, short_end, ClvConfig(horizon_days=365))
    assert short.summary["status"] == "ok" and short.summary["history_days"] == 28
    assert short.summary["note"].startswith("the 365-day horizon is 13.0x the 28 days of order")
