"""Product series' truth: truth/product_null.csv (the simulator), the ``price`` effect of scoped
events (truth/events.json) and the oracle's null of product orders and price."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.simulation.simtools import tiny_config

from analytics.detectors import DetectorInput
from evaluation.oracle import MAX_SCORE, ExactOracle, OracleConfig, baseline_long
from evaluation.truth import find_truth
from simulation.api import generate, simulate_config

# the most popular products of the tiny world at seed 11 (truth/product_null.csv's tau)
STOCKOUT = {"type": "stockout", "start": "2025-02-10", "duration_days": 5, "share_out": 1.0}
PRICING = {"type": "pricing_error", "start": "2025-03-10", "duration_days": 3,
           "price_drop_pct": 0.4, "demand_boost": 0.0}


def _config(events: list[dict]) -> dict:
    return tiny_config(events=events, calendar=[], traffic={"base_sessions": 20000})


def _generate(out: Path, events: list[dict]) -> Path:
    generate(_config(events), out)
    return out


def _events(stocked: int, priced: int) -> list[dict]:
    return [{**STOCKOUT, "scope": {"product": stocked}}, {**PRICING, "scope": {"product": priced}},
            {**PRICING, "start": "2025-01-20", "scope": {"category": "books"}}]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory) -> Path:
    """The tiny world without any event (and no calendar)."""
    return _generate(tmp_path_factory.mktemp("quiet") / "d", [])


def _top_products(d: Path, n: int) -> list[int]:
    pn = pd.read_csv(d / "truth" / "product_null.csv")
    return pn.sort_values("tau", ascending=False)["product_id"].head(n).tolist()


@pytest.fixture(scope="module")
def shocked(tmp_path_factory, quiet) -> tuple[Path, int, int]:
    """The same world with a stockout of its most popular product and a pricing error on the
    second (popularity does not depend on events: the catalogue is the seed's)."""
    a, b = _top_products(quiet, 2)
    return _generate(tmp_path_factory.mktemp("shocked") / "d", _events(a, b)), a, b


def product_series(d: Path) -> pd.DataFrame:
    """Observed product series (long: date, kpi, dimension 'product', segment, value): orders =
    non-cancelled orders with a line of the product, price = Σ unit_price·quantity / Σ quantity
    (NaN on a day without units); every product on every day."""
    orders = pd.read_csv(d / "orders.csv", usecols=["order_id", "order_date", "status"])
    items = pd.read_csv(d / "order_items.csv")
    kept = orders[orders["status"] != "cancelled"]
    x = items.merge(kept, on="order_id")
    x["date"] = pd.to_datetime(x["order_date"]).dt.normalize()
    x["lv"] = x["unit_price"] * x["quantity"]
    g = x.groupby(["date", "product_id"]).agg(
        orders=("order_id", "nunique"), lv=("lv", "sum"), q=("quantity", "sum"))
    dates = pd.date_range(orders["order_date"].min(), orders["order_date"].max()).normalize()
    pids = pd.read_csv(d / "products.csv")["product_id"]
    g = g.reindex(pd.MultiIndex.from_product([dates, pids], names=["date", "product_id"]))
    out = []
    for kpi, v in (("orders", g["orders"].fillna(0.0)), ("price", g["lv"] / g["q"])):
        out.append(pd.DataFrame({
            "date": g.index.get_level_values("date").astype("datetime64[ns]"),
            "kpi": kpi, "dimension": "product",
            "segment": g.index.get_level_values("product_id").astype(str), "value": v.to_numpy(),
        }))
    return (pd.concat(out, ignore_index=True)
            .sort_values(["kpi", "dimension", "segment", "date"]).reset_index(drop=True))


def oracle_scores(d: Path, series: pd.DataFrame, **kw) -> pd.DataFrame:
    truth = find_truth(d)
    base = baseline_long(truth.baseline, ["orders"], truth.product_null, **kw)
    return ExactOracle(OracleConfig()).detect(DetectorInput(series=series, baseline=base))


# --- (a) truth/product_null.csv ------------------------------------------------------------------

def test_product_null_is_written_deterministically(quiet, tmp_path):
    again = _generate(tmp_path / "again", [])
    a = (quiet / "truth" / "product_null.csv").read_bytes()
    assert a == (again / "truth" / "product_null.csv").read_bytes()
    assert a.splitlines()[0] == b"product_id,category,price,tau,v1,v2,u1,u2"
    manifest = json.loads((quiet / "manifest.json").read_text())
    assert "truth/product_null.csv" in manifest["files"]


def test_product_null_matches_the_simulated_data(quiet):
    pn = pd.read_csv(quiet / "truth" / "product_null.csv")
    products = pd.read_csv(quiet / "products.csv")
    assert pn["product_id"].tolist() == products["product_id"].tolist()
    assert pn["category"].tolist() == products["category"].tolist()
    assert np.allclose(pn["price"], products["unit_price"], rtol=0, atol=1e-9)
    assert 0 < pn["tau"].min() and pn["tau"].max() < 1
    series = product_series(quiet)
    # no event: every unit sold at its list price
    price = series[series["kpi"] == "price"].dropna(subset=["value"])
    listed = price["segment"].astype(int).map(pn.set_index("product_id")["price"])
    assert np.abs(price["value"] - listed).max() < 0.005
    # touched orders of the biggest products: mean M·tau within 4 sd of the period's sum
    base = pd.read_csv(quiet / "truth" / "baseline_daily.csv")
    over = base[base["dimension"] == "overall"]
    M, V = over["orders"].to_numpy(float), over["orders_var"].to_numpy(float)
    orders = series[series["kpi"] == "orders"]
    for pid in _top_products(quiet, 5):
        tau = float(pn.loc[pn["product_id"] == pid, "tau"].iloc[0])
        seen = orders.loc[orders["segment"] == str(pid), "value"].sum()
        mean, var = (M * tau).sum(), (tau * M + tau**2 * (V - M)).sum()
        assert abs(seen - mean) < 4 * np.sqrt(var), (pid, seen, mean, np.sqrt(var))
        assert abs(seen - mean) < 0.1 * mean, (pid, seen, mean)


# --- (b) the price effect of scoped events -------------------------------------------------------

def test_scoped_events_record_their_price_effect(shocked):
    d, stocked, priced = shocked
    events = find_truth(d).events
    by = {(e["type"], tuple(e["scope"].items())): e for e in events if not e["expected"]}
    pe = by[("pricing_error", (("product", priced),))]
    assert pe["scope_effects"]["price"] == pytest.approx(-PRICING["price_drop_pct"], abs=0.005)
    cat = by[("pricing_error", (("category", "books"),))]
    assert cat["scope_effects"]["price"] == pytest.approx(-PRICING["price_drop_pct"], abs=0.02)
    # a stockout sells nothing in its scope: no price to compare, the effect is omitted
    so = by[("stockout", (("product", stocked),))]
    assert so["scope_effects"]["units"] == -1.0 and "price" not in so["scope_effects"]
    # the overall effects carry the store's list price per unit sold: diluted by the scope
    assert all("price" in e["effects"] for e in events if not e["expected"])
    assert cat["scope_effects"]["price"] < cat["effects"]["price"] < -0.005
    assert pe["scope_effects"]["price"] < pe["effects"]["price"] < 0


def test_a_store_wide_pricing_error_records_the_price_overall(tmp_path):
    """Scope all: every product's list price falls, so the overall and in-scope price effects
    are the drop (product price incidents under it are then judged against a price effect)."""
    d = _generate(tmp_path / "all", [{**PRICING, "scope": {}}])
    ev = next(e for e in find_truth(d).events if not e["expected"])
    assert ev["effects"]["price"] == pytest.approx(-PRICING["price_drop_pct"], abs=0.005)
    assert ev["scope_effects"]["price"] == ev["effects"]["price"]


def test_run_daily_list_value_is_the_price_per_unit_sold(shocked):
    """``Run.daily``'s list value / units of a product is its observed price (order_items'
    unit_price, before the line discount), mispriced days included."""
    d, stocked, priced = shocked
    world = simulate_config(_config(_events(stocked, priced)))
    D = world.setup.shape[0]
    mask = np.zeros(world.setup.catalogue.size, bool)
    mask[priced - 1] = True
    daily = world.actual.daily(D, product_mask=mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        got = daily["list_value"] / daily["units"]
    series = product_series(d)
    seen = series[(series["kpi"] == "price") & (series["segment"] == str(priced))]["value"]
    assert np.allclose(got, seen.to_numpy(float), equal_nan=True, rtol=0, atol=1e-9)


# --- (c) the oracle on product series ------------------------------------------------------------

def _days(ev: dict, lag: int = 0) -> pd.DatetimeIndex:
    start = pd.Timestamp(ev["start"])
    return pd.date_range(start, start + pd.Timedelta(days=ev["duration_days"] - 1 + lag))


def test_oracle_scores_product_orders_and_price(shocked):
    d, stocked, priced = shocked
    series = product_series(d)
    top = [str(p) for p in _top_products(d, 10)]
    series = series[series["segment"].isin(top)]
    out = oracle_scores(d, series, segments=top)
    assert out["score"].notna().sum() > 0.9 * len(out) - out["actual"].isna().sum()
    orders = out[out["kpi"] == "orders"]
    s = orders[orders["segment"] == str(stocked)].set_index("date")["score"]
    stock = _days(STOCKOUT)
    assert (s.loc[stock] <= -5).all(), s.loc[stock]
    # other days of the orders series (not in an event's window or its trailing windows)
    shocked_days = _days(STOCKOUT, 7).union(_days(PRICING, 7)).union(
        _days({**PRICING, "start": "2025-01-20"}, 7))
    calm = orders[~orders["date"].isin(shocked_days)]["score"].to_numpy()
    assert np.mean(np.abs(calm) < 3) > 0.98, np.sort(np.abs(calm))[-10:]
    # price: the maximum score on the mispriced days, 0 on every other day with units
    price = out[(out["kpi"] == "price") & out["actual"].notna()]
    p = price[price["segment"] == str(priced)].set_index("date")["score"]
    assert np.allclose(p.loc[_days(PRICING)], -MAX_SCORE, atol=1e-3)   # scores: 4 decimals
    others = price[~((price["segment"] == str(priced)) & price["date"].isin(_days(PRICING)))]
    # books mispriced in January: the top products of that category score there too
    books = set(pd.read_csv(d / "products.csv").query("category == 'books'")["product_id"]
                .astype(str))
    jan = others["segment"].isin(books) & others["date"].isin(
        _days({**PRICING, "start": "2025-01-20"}))
    assert np.allclose(others.loc[jan, "score"], -MAX_SCORE, atol=1e-3) and jan.any()
    assert (others.loc[~jan, "score"] == 0).all()


def test_oracle_without_a_product_null_falls_back(shocked):
    d, stocked, _ = shocked
    truth = find_truth(d)
    series = product_series(d)
    series = series[series["segment"].isin([str(stocked), "1"])]
    # an older truth layout (no product_null), or a product missing from it: no crash, no null
    for products in (None, truth.product_null[truth.product_null["product_id"] != "1"]):
        base = baseline_long(truth.baseline, ["orders"], products)
        out = ExactOracle(OracleConfig()).detect(DetectorInput(series=series, baseline=base))
        assert len(out) == len(series)
        missing = out["segment"] == "1" if products is not None else out["segment"].notna()
        assert out.loc[missing, "expected"].isna().all()


def test_oracle_product_orders_are_calibrated_on_a_quiet_world(quiet):
    truth = find_truth(quiet)
    series = product_series(quiet)
    series = series[series["kpi"] == "orders"]
    base = baseline_long(truth.baseline, ["orders"], truth.product_null)
    out = ExactOracle(OracleConfig(windows=[])).detect(DetectorInput(series=series, baseline=base))
    s = out["score"].to_numpy()
    assert np.isfinite(s).all() and len(s) == 40 * 90
    # N(0, 1) under the null (40 products x 90 days)
    # (a Poisson null, without the shared day factors' overdispersion, gives a std of ~1.09)
    assert abs(s.mean()) < 0.1 and 0.95 < s.std() < 1.05, (s.mean(), s.std())
    assert np.mean(np.abs(s) >= 3) < 0.01


def _given_category(d: Path) -> pd.DataFrame:
    """Oracle scores of product orders with ``product_null: category`` (the exposure from the
    analysis' own product series, analytics.watch.product_kpis)."""
    from analytics.loading import load_data_dir
    from analytics.watch import product_kpis

    truth, ds = find_truth(d), load_data_dir(d)
    dates = pd.date_range(ds.tables["orders"]["order_date"].min(),
                          ds.tables["orders"]["order_date"].max())
    wide, expo = product_kpis(ds.tables, dates)
    series = (wide.melt(id_vars=["date", "dimension", "segment"], value_vars=["orders"],
                        var_name="kpi").sort_values(["kpi", "dimension", "segment", "date"])
              .reset_index(drop=True)[["date", "kpi", "dimension", "segment", "value"]])
    base = baseline_long(truth.baseline, ["orders"], truth.product_null)
    cfg = OracleConfig(windows=[], product_null="category")
    out = ExactOracle(cfg).detect(DetectorInput(series=series, baseline=base, exposure=expo))
    return out.merge(expo[["date", "segment", "parent_orders"]], on=["date", "segment"])


def test_oracle_given_the_category_is_calibrated_and_sees_a_stockout(quiet, shocked):
    """``product_null: category``: binomial given the category's orders — the day and the
    store's moves cancel, so on a quiet world the scores are at most standard normal (the
    binomial is read as Poisson where it is narrower: conservative) and a stockout still scores
    far out."""
    q = _given_category(quiet)
    s = q["score"].to_numpy()
    assert abs(s.mean()) < 0.1 and 0.8 < s.std() < 1.05, (s.mean(), s.std())
    # the expectation is a fixed share of the category's observed orders, day by day
    one = q[q["segment"] == q.groupby("segment")["actual"].sum().idxmax()]
    share = one["expected"] / one["parent_orders"]
    assert one["expected"].std() > 0 and share.std() < 1e-9 * share.mean()
    assert np.mean(np.abs(s) >= 3) < 0.01
    d, stocked, _ = shocked
    out = _given_category(d)
    days = out[(out["segment"] == str(stocked)) & out["date"].between(
        pd.Timestamp(STOCKOUT["start"]), pd.Timestamp(STOCKOUT["start"]) + pd.Timedelta(days=4))]
    assert (days["score"] <= -5).all(), days


def test_window_price_is_omitted_when_either_side_sold_nothing():
    """``window_effects`` compares list value per unit only where both the actual and the twin
    sold units in the window (its docstring): the twin side of that guard was untested (mutant
    S31 dropped it; a twin without sales then divided by zero)."""
    from simulation.twins import window_effects

    def side(units, value):
        return {"sessions": np.full(3, np.nan), "orders": np.array([1.0, 1, 1]),
                "revenue": np.array([10.0, 10, 10]), "units": np.asarray(units, float),
                "list_value": np.asarray(value, float)}

    sold, none = side([1, 2, 1], [10, 20, 10]), side([0, 0, 0], [0, 0, 0])
    assert window_effects(sold, side([1, 1, 1], [5, 5, 5]), 0, 2)["price"] == 1.0
    assert "price" not in window_effects(sold, none, 0, 2)
    assert "price" not in window_effects(none, sold, 0, 2)
