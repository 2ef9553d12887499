"""The CLV model's dropout from acquisition cohorts (``customers.dropout``): the baseline hazard
and churn waves recovered from cohorts, the wave terms of the Pareto/NBD likelihood against a
brute-force integral, and the model fitted with them end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.customers import clv
from analytics.customers.activity import StoreClock
from analytics.customers.config import ClvConfig
from analytics.customers.dropout import MAX_SURVIVAL_SE, Dropout, cohort_dropout

N_DAYS, LIFETIME, WAVE_DAY, WAVE_Q = 588, 200.0, 300, 0.6


def _store(per_day: int = 20, seed: int = 5, wave_q: float = WAVE_Q, shape: float = 2.0):
    """Customers acquired evenly over N_DAYS (the acquisition is their first purchase), Gamma
    purchase rates (mean 0.04 a day, shape ``shape``), exponential lifetimes (mean LIFETIME) and
    a wave on WAVE_DAY that takes ``wave_q`` of the customers alive then."""
    g = np.random.default_rng(seed)
    acq = np.repeat(np.arange(N_DAYS), per_day)
    n = len(acq)
    lam = g.gamma(shape, 0.04 / shape, n)
    death = acq + g.exponential(LIFETIME, n)
    hit = (acq < WAVE_DAY) & (death > WAVE_DAY) & (g.random(n) < wave_q)
    death = np.where(hit, WAVE_DAY, death)
    stop = np.minimum(death, N_DAYS)
    k = g.poisson(lam * np.maximum(stop - acq, 0))
    cust = np.repeat(np.arange(n), k)
    day = np.floor(acq[cust] + g.random(len(cust)) * (stop - acq)[cust]).astype(np.int64)
    return acq, cust, day


def test_cohort_dropout_recovers_the_baseline_hazard_and_the_wave():
    acq, cust, day = _store()
    key = np.unique(cust * N_DAYS + day)                 # distinct purchase days
    kc, kd = key // N_DAYS, key % N_DAYS
    rep = kd > acq[kc]                                   # the acquisition day is not a repeat
    d = cohort_dropout(acq, kd[rep], acq[kc[rep]], N_DAYS)
    assert d is not None
    assert 1.0 / d.mu == pytest.approx(LIFETIME, rel=0.15)
    # the wave, split over the boundaries around it; nothing flagged far from it
    assert len(d.wave_pos) >= 1 and np.all(np.abs(d.wave_pos - WAVE_DAY) <= 28)
    assert 1.0 - np.prod(1.0 - d.wave_q) == pytest.approx(WAVE_Q, abs=0.1)
    # too short a history: no estimate (the model fits its own dropout)
    assert cohort_dropout(acq, kd[rep], acq[kc[rep]], 8 * 28) is None


def _brute_force_p_alive(p, x, tx, T, n, g, waves):
    """P(alive) by a fine trapezoid over the death time (days since the first purchase)."""
    r, a, s, b = p
    grid, A = np.arange(n + 1), np.concatenate([[0.0], np.cumsum(g)])
    out = []
    for xi, txi, Ti in zip(x, tx, T, strict=True):
        t0 = n - Ti
        crossed = [(pp - t0, q) for pp, q in waves if t0 + txi < pp <= t0 + Ti]
        tau = np.linspace(txi, Ti, 400_001)
        act = np.interp(t0 + tau, grid, A) - np.interp(t0, grid, A)
        surv = np.ones_like(tau)  # the waves survived up to tau
        for d, q in crossed:
            surv = np.where(tau >= d, surv * (1 - q), surv)
        # every term scaled by a^(r+x) b^s (no underflow)
        lam = (1 + act / a) ** -(r + xi)
        alive = lam[-1] * (1 + Ti / b) ** -s * surv[-1]
        f = lam * s / b * (1 + tau / b) ** -(s + 1) * surv
        integral = float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(tau)))
        masses = 0.0
        for d, q in crossed:
            at = np.searchsorted(tau, d)
            before = surv[at - 1] if at > 0 else 1.0
            masses += q * before * lam[min(at, len(tau) - 1)] * (1 + d / b) ** -s
        out.append(alive / (alive + integral + masses))
    return np.array(out)


def test_wave_terms_match_a_brute_force_integral():
    """P(alive) with two waves and a falling activity clock equals the trapezoid over the death
    time; with waves of share ~0 it equals the model without waves."""
    n = 500
    g = np.linspace(2.0, 0.5, n)
    g = g / g.mean()
    waves = [(180.0, 0.5), (330.0, 0.3)]
    p = {"r": 1.3, "alpha": 60.0, "s": 100.0, "beta": 100.0 * 300.0}
    x = np.array([0.0, 2.0, 5.0, 1.0, 8.0])
    tx = np.array([0.0, 40.0, 100.0, 300.0, 380.0])
    T = np.array([450.0, 420.0, 400.0, 350.0, 400.0])
    drop = Dropout(mu=1 / 300, wave_pos=np.array([w[0] for w in waves]),
                   wave_q=np.array([w[1] for w in waves]))
    got = clv.pnbd_p_alive(p, x, tx, T, StoreClock(g=g, g_end=0.5, dropout=drop))
    want = _brute_force_p_alive(tuple(p.values()), x, tx, T, n, g, waves)
    np.testing.assert_allclose(got, want, rtol=2e-3)
    tiny = Dropout(mu=1 / 300, wave_pos=drop.wave_pos, wave_q=np.array([1e-12, 1e-12]))
    np.testing.assert_allclose(
        clv.pnbd_p_alive(p, x, tx, T, StoreClock(g=g, g_end=0.5, dropout=tiny)),
        clv.pnbd_p_alive(p, x, tx, T, StoreClock(g=g, g_end=0.5)), rtol=1e-3)


def test_run_clv_takes_the_dropout_from_cohorts():
    """End to end on the waved store: the lifetime is the baseline's (an age-based fit reads the
    wave as short lives), the wave is reported, every customer is scored; ``dropout: fitted``
    keeps the fitted dropout."""
    acq, cust, day = _store(per_day=8)
    start = pd.Timestamp("2024-01-01")
    ids = np.concatenate([np.arange(len(acq)), cust])
    days = np.concatenate([acq, day])
    orders = pd.DataFrame({"order_id": np.arange(len(ids)), "customer_id": ids.astype(str),
                           "order_date": start + pd.to_timedelta(days, unit="D"),
                           "net_revenue": 50.0})
    end = start + pd.Timedelta(days=N_DAYS - 1)
    res = clv.run_clv(orders, end, ClvConfig())
    d = res.summary["dropout"]
    assert d is not None and d["mean_lifetime_days"] == pytest.approx(LIFETIME, rel=0.25)
    assert d["waves"] and res.summary["unscored_customers"] == 0
    fitted = clv.run_clv(orders, end, ClvConfig(dropout="fitted"))
    assert fitted.summary["dropout"] == {"source": "fitted"}   # forced: no reason to give
    pn = fitted.summary["purchase_model_params"]
    assert pn["beta"] / pn["s"] < 0.8 * d["mean_lifetime_days"]


def _orders(**store) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The small store's orders (4 acquisitions a day) and the analysis' last day."""
    acq, cust, day = _store(**({"per_day": 4} | store))
    start = pd.Timestamp("2024-01-01")
    ids = np.concatenate([np.arange(len(acq)), cust])
    orders = pd.DataFrame({"order_id": np.arange(len(ids)), "customer_id": ids.astype(str),
                           "order_date": start + pd.to_timedelta(np.concatenate([acq, day]),
                                                                 unit="D"),
                           "net_revenue": 50.0})
    return orders, start + pd.Timedelta(days=N_DAYS - 1)


def _distinct(acq, cust, day):
    key = np.unique(cust * N_DAYS + day)                 # distinct purchase days
    kc, kd = key // N_DAYS, key % N_DAYS
    rep = kd > acq[kc]
    return kd[rep], acq[kc[rep]], kc[rep]


def test_the_baselines_precision_comes_from_the_customers_the_cohorts_hold():
    """mu_rel_se: the baseline's standard error (relative) from the per-customer counts. A large
    store knows its baseline (and keeps its wave); a small one with spread-out rates (Gamma shape
    1, 3 acquisitions a day: ~100 customers a cohort) read a 200-day lifetime as 1,073 days from
    noise — its relative standard error says so (session 43's audit)."""
    acq, cust, day = _store(per_day=20)
    big = cohort_dropout(acq, *_distinct(acq, cust, day)[:2], N_DAYS,
                         repeat_cust=_distinct(acq, cust, day)[2])
    assert big is not None and len(big.wave_pos)
    assert big.mu_rel_se * big.mu * 365 < 0.5 * MAX_SURVIVAL_SE      # known: cohorts kept
    acq, cust, day = _store(per_day=3, seed=4, wave_q=0.0, shape=1.0)
    rd, rf, rc = _distinct(acq, cust, day)
    small = cohort_dropout(acq, rd, rf, N_DAYS, repeat_cust=rc)
    assert small is not None and 1.0 / small.mu > 4 * LIFETIME   # the noise the guard catches
    assert small.mu_rel_se * small.mu * 365 > MAX_SURVIVAL_SE       # and says so
    assert np.isnan(cohort_dropout(acq, rd, rf, N_DAYS).mu_rel_se)   # no customers: unknown


def test_small_cohorts_fall_back_to_the_fitted_dropout():
    """The audit's stationary 1.5-3 k-customer files got CLV totals -30 % to +84 % off from the
    cohorts' noise; where the standard error of the baseline's log one-year survival is above
    MAX_SURVIVAL_SE the model fits its own dropout, and the summary says why."""
    orders, end = _orders(per_day=3, seed=4, wave_q=0.0, shape=1.0)
    res = clv.run_clv(orders, end, ClvConfig())
    d = res.summary["dropout"]
    assert d["source"] == "fitted" and "too uncertain" in d["cohorts_refused"]
    fitted = clv.run_clv(orders, end, ClvConfig(dropout="fitted"))
    pd.testing.assert_frame_equal(res.table, fitted.table)
    pn = res.summary["purchase_model_params"]
    assert 0.5 * LIFETIME < pn["beta"] / pn["s"] < 2 * LIFETIME   # the cohorts said 1,073 days


def test_too_short_a_history_for_cohorts_says_so():
    """Under MIN_STEPS measurable cohort steps (~9 months) the summary's dropout was a bare null
    while the config asked for cohorts (audit 2026-12-05): it names the fallback and why."""
    orders, end = _orders()
    short_end = pd.Timestamp("2024-01-01") + pd.Timedelta(days=200)
    orders = orders[orders["order_date"] <= short_end]
    d = clv.run_clv(orders, short_end, ClvConfig()).summary["dropout"]
    assert d["source"] == "fitted" and "fewer than 6 measurable" in d["cohorts_refused"], d


def _count_calls(monkeypatch) -> list[int]:
    """The rows of every call to ``clv.pnbd_alive_and_rate`` from now on (it still runs)."""
    calls: list[int] = []
    real = clv.pnbd_alive_and_rate
    monkeypatch.setattr(clv, "pnbd_alive_and_rate",
                        lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    return calls


def test_scoring_in_two_halves_gives_the_same_table(monkeypatch):
    """With a spare core the rows' P(alive) and rates are computed in two halves on two threads
    (``clv.HALVES_MIN`` lowered so the small store takes that path): the same table."""
    import analytics.schedule as schedule

    orders, end = _orders()
    monkeypatch.setattr(schedule, "spare_core", lambda: False)
    whole = clv.run_clv(orders, end, ClvConfig())
    monkeypatch.setattr(schedule, "spare_core", lambda: True)
    monkeypatch.setattr(clv, "HALVES_MIN", 10)
    calls = _count_calls(monkeypatch)
    halves = clv.run_clv(orders, end, ClvConfig())
    assert len(calls) == 2 and min(calls) > 0   # the two halves
    pd.testing.assert_frame_equal(whole.table, halves.table, check_exact=True)
    assert whole.summary == halves.summary


def test_scoring_in_blocks_of_rows_gives_the_same_table(monkeypatch):
    """Without a spare core the rows are scored in blocks of ``clv.SCORE_CHUNK`` (bounded
    temporaries): the same table as all rows at once."""
    import analytics.schedule as schedule

    orders, end = _orders()
    monkeypatch.setattr(schedule, "spare_core", lambda: False)
    monkeypatch.setattr(clv, "SCORE_CHUNK", 10**9)
    whole = clv.run_clv(orders, end, ClvConfig())
    monkeypatch.setattr(clv, "SCORE_CHUNK", 37)
    calls = _count_calls(monkeypatch)
    blocks = clv.run_clv(orders, end, ClvConfig())
    assert len(calls) > 2 and max(calls) == 37   # several blocks
    pd.testing.assert_frame_equal(whole.table, blocks.table, check_exact=True)
    assert whole.summary == blocks.summary
