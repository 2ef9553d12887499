"""The insights' channel table on a store of a few orders a day (analytics.insights.sections
``_channels``, planned.py): a channel's baseline is the median of its weeks' totals.

A shock-free store with Poisson orders and skewed order values: the sum of each day's
same-weekday median (the earlier baseline) sat well below a channel's usual week, so a quiet week
read as a rise (+18 %) and a real shortfall as a smaller one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.analytics.insights_synth import kpis_from_cube

from analytics import drivers as dr
from analytics.insights.sections import _channels
from analytics.insights_config import InsightsConfig

CH = ("email", "organic", "paid_search")
DAYS = 280


def sparse_cube(seed: int, orders_per_day: float = 1.5, cut: tuple[str, int, float] | None = None
                ) -> pd.DataFrame:
    """Three channels of ``orders_per_day`` orders (Poisson via binomial on Poisson sessions);
    an order's value lognormal (mean ~100, skewed). ``cut``: (channel, last days, factor) scales
    that channel's conversion over the data's last days."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=DAYS, freq="D")
    rows = []
    for c in CH:
        sessions = rng.poisson(150.0, DAYS)
        conv = np.full(DAYS, orders_per_day / 150.0)
        if cut is not None and cut[0] == c:
            conv[-cut[1]:] *= cut[2]
        orders = rng.binomial(sessions, conv)
        values = rng.lognormal(np.log(100.0) - 0.5 * 0.8 ** 2, 0.8, int(orders.sum()))
        revenue = np.add.reduceat(np.append(values, 0.0), np.r_[0, np.cumsum(orders)[:-1]])
        revenue = np.where(orders > 0, revenue, 0.0)
        rows.append(pd.DataFrame({"date": dates, "channel": c, "country": "US",
                                  "category": "apparel", "sessions": sessions.astype(float),
                                  "orders": orders.astype(float), "revenue": revenue}))
    return pd.concat(rows, ignore_index=True)


def weekly_tables(kpis: pd.DataFrame, cfg: InsightsConfig):
    """The channel table at every 7th day from day 120 on (as if the run ended there)."""
    ends = sorted(kpis["date"].unique())[120::7]
    return [_channels(dr.SlicePanel(kpis[kpis["date"] <= e]), cfg, None) for e in ends]


@pytest.fixture(scope="module")
def quiet():
    return kpis_from_cube(sparse_cube(seed=3))


def test_a_quiet_sparse_channel_reads_level_with_its_baseline(quiet):
    rows = [c for t in weekly_tables(quiet, InsightsConfig()) for c in t.channels]
    assert len(rows) == 3 * len(range(120, DAYS, 7))
    # revenue: the median week reads about level against the weeks' totals (against the sum of
    # each day's same-weekday median it read +18 %), and the baselines are about the weeks' mean
    # (0.82 of it before)
    assert abs(np.median([c.revenue_vs_baseline_pct for c in rows])) < 8
    assert np.mean([c.baseline_revenue for c in rows]) / np.mean([c.revenue for c in rows]) > 0.9


def test_a_real_shortfall_on_a_sparse_channel_is_flagged():
    # conversion -90 %: about one order in the week where ten are usual
    kpis = kpis_from_cube(sparse_cube(seed=3, cut=("organic", 7, 0.1)))
    t = _channels(dr.SlicePanel(kpis), InsightsConfig(), None)
    assert "organic" in t.underperformers
    org = next(c for c in t.channels if c.channel == "organic")
    assert org.revenue_vs_baseline_pct < -80 and org.conversion_vs_baseline_pct < -80
    assert org.reasons == [f"revenue {org.revenue_vs_baseline_pct:.1f}% vs its baseline",
                           f"conversion {org.conversion_vs_baseline_pct:.1f}% vs its baseline"]


@pytest.mark.parametrize("orders_per_day", [1.5, 6.0])
def test_the_count_noise_is_a_quiet_weeks_spread(orders_per_day):
    # conversion is orders given sessions (binomial): its noise is the quiet weeks' spread;
    # revenue adds the order values' spread (lognormal, cv ~0.95), so its noise is a floor
    kpis = kpis_from_cube(sparse_cube(seed=3, orders_per_day=orders_per_day))
    rows = [c for t in weekly_tables(kpis, InsightsConfig()) for c in t.channels]
    conv = np.std([c.conversion_vs_baseline_pct for c in rows])
    rev = np.std([c.revenue_vs_baseline_pct for c in rows])
    conv_noise = np.median([c.conversion_noise_pct for c in rows])
    rev_noise = np.median([c.revenue_noise_pct for c in rows])
    assert 0.75 < conv / conv_noise < 1.3
    assert rev / rev_noise > 1.0
    # sqrt((1 + pi/8) / the expected orders of a week)
    expected = 100 * np.sqrt((1 + np.pi / 8) / (7 * orders_per_day))
    assert rev_noise == pytest.approx(expected, rel=0.06)  # without pi/8: 0.85 of it


def test_a_flag_within_the_count_noise_says_so(quiet):
    flagged = [c for t in weekly_tables(quiet, InsightsConfig()) for c in t.channels
               if c.underperforming]
    assert len(flagged) >= 10  # a quiet store of ~10 orders a week per channel flags often
    within = [c for c in flagged if any("within twice its count noise" in r for r in c.reasons)]
    assert len(within) >= 0.9 * len(flagged)
    # a real -60 % on a channel of ~40 orders a week is beyond twice its noise (~18 %)
    kpis = kpis_from_cube(sparse_cube(seed=3, orders_per_day=6.0, cut=("email", 7, 0.4)))
    email = next(c for c in _channels(dr.SlicePanel(kpis), InsightsConfig(), None).channels
                 if c.channel == "email")
    assert email.underperforming and email.conversion_vs_baseline_pct < -45
    assert 2 * email.conversion_noise_pct < -email.conversion_vs_baseline_pct
    assert not any("count noise" in r for r in email.reasons)


def test_the_noise_follows_the_baseline_weeks():
    # a baseline of one week is as noisy as the window: sqrt((1 + pi/2) / n), not the 4 weeks'
    kpis = kpis_from_cube(sparse_cube(seed=3, orders_per_day=6.0))
    one = InsightsConfig(channels={"baseline_weeks": 1})
    rows = [c for t in weekly_tables(kpis, one) for c in t.channels]
    conv = np.std([c.conversion_vs_baseline_pct for c in rows])
    conv_noise = np.median([c.conversion_noise_pct for c in rows])
    assert 0.75 < conv / conv_noise < 1.3
    assert np.median([c.revenue_noise_pct for c in rows]) == pytest.approx(
        100 * np.sqrt((1 + np.pi / 2) / 42), rel=0.06)


def test_no_noise_beside_a_change_that_is_unknown():
    kpis = kpis_from_cube(sparse_cube(seed=3, orders_per_day=6.0))
    last = kpis["date"].max()
    # email's revenue unknown in the window (its orders and sessions known)
    gone = (kpis["dimension"] == "channel") & (kpis["segment"] == "email") & (
        kpis["date"] > last - pd.Timedelta(days=7))
    kpis.loc[gone, "revenue"] = np.nan
    email = next(c for c in _channels(dr.SlicePanel(kpis, gaps=True), InsightsConfig(),
                                      None).channels if c.channel == "email")
    assert email.revenue_vs_baseline_pct is None and email.revenue_noise_pct is None
    assert email.conversion_vs_baseline_pct is not None and email.conversion_noise_pct > 0


@pytest.mark.parametrize("value,text", [(0.0041234, "0.0041"), (5.67, "5.7"), (9.96, "10"),
                                        (21.4, "21"), (181.2, "181"), (4.46e151, ">999")])
def test_noise_text_keeps_two_significant_digits(value, text):
    from analytics.insights.common import noise_text

    assert noise_text(value) == text


def test_a_weekly_files_channels_have_a_baseline():
    # one row a week (Mondays): the six days between rows are no gap, so the baseline is the
    # median of the 4 weeks before (it was null on every channel: no flag for a halved channel)
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    rng = np.random.default_rng(5)
    rows = []
    for ch, n in (("email", 30.0), ("paid", 300.0)):
        orders = rng.poisson(n, len(weeks)).astype(float)
        if ch == "paid":
            orders[-1] = round(orders[-1] / 2)
        rows.append(pd.DataFrame({"date": weeks, "dimension": "channel", "segment": ch,
                                  "orders": orders, "revenue": orders * 50.0,
                                  "sessions": rng.poisson(n * 30, len(weeks)).astype(float)}))
    kpis = pd.concat(rows, ignore_index=True)
    t = _channels(dr.SlicePanel(kpis, gaps=True), InsightsConfig(), None)
    paid = next(c for c in t.channels if c.channel == "paid")
    assert "paid" in t.underperformers and not any("noise" in r for r in paid.reasons)
    assert -60 < paid.revenue_vs_baseline_pct < -40 and 5 < paid.revenue_noise_pct < 9
    email = next(c for c in t.channels if c.channel == "email")
    assert email.baseline_revenue == pytest.approx(50.0 * np.median(
        kpis.loc[kpis["segment"] == "email", "orders"].to_numpy()[-5:-1]))
