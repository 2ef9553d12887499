"""Product series (analytics/watch.py ``product_kpis``) and the product_watch detector
(analytics/detectors/product_watch.py): its contract, its two tests, its null and the consensus
rule for product series."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import ndtr

from analytics.config import load_analysis_config
from analytics.detectors import REGISTRY, DetectorInput
from analytics.detectors.base import OUTPUT_COLUMNS
from analytics.watch import product_grid, product_kpis, watched_products


def _make(**over):
    cls = REGISTRY["product_watch"]
    return cls(cls.config_class(**over), name="product_watch")


def _world(n_days=200, n_cat=3, per_cat=5, total=600.0, seed=5, stockout=None, price_cut=None,
           cat_drop=None, lumpy=0.0):
    """Long product series with their category exposure: each category's orders are Poisson,
    each product's orders Binomial(category orders, its share); list prices constant.
    ``stockout`` = (product, first day, days): zero orders; ``price_cut`` = (product, day,
    factor); ``cat_drop`` = (category, first day, days, factor) scales a category's orders;
    ``lumpy`` > 0: each product's share varies day to day by a gamma factor of that CV (real
    demand's overdispersion)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-01", periods=n_days, freq="D")
    rows, expo = [], []
    for c in range(n_cat):
        n_c = rng.poisson(total / n_cat, n_days).astype(float)
        if cat_drop and cat_drop[0] == c:
            s, k, f = cat_drop[1:]
            n_c[s:s + k] = np.round(n_c[s:s + k] * f)
        shares = rng.uniform(0.04, 0.2, per_cat)
        for j in range(per_cat):
            pid = f"{c}{j}"
            day = (rng.gamma(1 / lumpy**2, lumpy**2, n_days) if lumpy else np.ones(n_days))
            x = rng.binomial(n_c.astype(int), np.clip(shares[j] * day, 0, 1)).astype(float)
            price = np.full(n_days, 10.0 + j)
            if stockout and stockout[0] == pid:
                x[stockout[1]:stockout[1] + stockout[2]] = 0.0
            if price_cut and price_cut[0] == pid:
                price[price_cut[1]] *= price_cut[2]
            price[x == 0] = np.nan
            for kpi, v in (("orders", x), ("price", price)):
                rows.append(pd.DataFrame({"date": dates, "kpi": kpi, "dimension": "product",
                                          "segment": pid, "value": v}))
            expo.append(pd.DataFrame({"date": dates, "dimension": "product", "segment": pid,
                                      "parent": f"cat{c}", "parent_orders": n_c}))
    series = pd.concat(rows, ignore_index=True).sort_values(
        ["kpi", "dimension", "segment", "date"], kind="stable").reset_index(drop=True)
    return DetectorInput(series=series, exposure=pd.concat(expo, ignore_index=True),
                         sensitivity=0.1)


def test_contract_and_a_stockout_is_the_top_score():
    inp = _world(stockout=("11", 150, 3))
    out = _make().detect(inp)
    assert list(out.columns) == OUTPUT_COLUMNS and len(out) == len(inp.series)
    assert np.isfinite(out["score"]).all() and out["flag"].dtype == bool
    np.testing.assert_allclose(out["actual"].to_numpy(), inp.series["value"].to_numpy())
    mine = out[(out["segment"] == "11") & (out["kpi"] == "orders")]
    hit = mine[mine["flag"]]
    assert not hit.empty and set(hit["direction"]) == {"down"}
    assert hit["date"].min() == pd.Timestamp("2025-01-01") + pd.Timedelta(days=150)
    assert mine.loc[mine["score"].idxmin(), "date"] in set(hit["date"])
    # nothing else in the world is flagged at the shipped knob
    assert not out.loc[~((out["segment"] == "11") & (out["kpi"] == "orders")), "flag"].any()


def test_a_category_wide_drop_is_not_each_products_news():
    """Every product of a category halves with it: their share is unchanged, no flag."""
    out = _make().detect(_world(cat_drop=(1, 150, 4, 0.3)))
    assert not out["flag"].any()
    # the same drop on one product alone is flagged
    one = _make().detect(_world(stockout=("12", 150, 4)))
    assert one.loc[one["segment"] == "12", "flag"].any()


def test_a_price_change_of_one_product_is_flagged_and_a_category_repricing_is_not():
    out = _make().detect(_world(price_cut=("21", 160, 0.7)))
    price = out[out["kpi"] == "price"]
    flagged = price[price["flag"]]
    assert set(flagged["segment"]) == {"21"} and set(flagged["direction"]) == {"down"}
    assert set(flagged["date"]) == {pd.Timestamp("2025-01-01") + pd.Timedelta(days=160)}
    # every product of category 2 repriced by the same factor that day: the category's news
    inp = _world()
    s = inp.series
    day = pd.Timestamp("2025-01-01") + pd.Timedelta(days=160)
    sel = (s["kpi"] == "price") & s["segment"].str.startswith("2") & (s["date"] == day)
    s.loc[sel, "value"] *= 0.7
    assert not _make().detect(inp)["flag"].any()


def test_orders_rising_are_not_flagged_unless_asked():
    inp = _world()
    s = inp.series
    sel = (s["kpi"] == "orders") & (s["segment"] == "01") & s["date"].between(
        pd.Timestamp("2025-06-01"), pd.Timestamp("2025-06-03"))
    s.loc[sel, "value"] *= 3
    assert not _make().detect(inp)["flag"].any()
    both = _make(orders_direction="both").detect(inp)
    assert set(both.loc[both["flag"], "segment"]) == {"01"}


def test_causal_and_short_history():
    inp = _world(n_days=120)
    a = _make().detect(inp)
    changed = inp.series.copy()
    late = changed["date"] >= pd.Timestamp("2025-04-11")
    changed.loc[late & (changed["kpi"] == "orders"), "value"] = 0.0
    b = _make().detect(DetectorInput(series=changed, exposure=inp.exposure))
    early = (a["date"] < pd.Timestamp("2025-04-11")).to_numpy()
    np.testing.assert_array_equal(a["score"].to_numpy()[early], b["score"].to_numpy()[early])
    assert b.loc[~early, "flag"].any()
    short = _world(n_days=20)
    assert not _make().detect(short)["flag"].any()


def test_without_exposure_orders_are_not_scored():
    inp = _world(stockout=("11", 150, 3))
    det = _make()
    out = det.detect(DetectorInput(series=inp.series))
    assert (out.loc[out["kpi"] == "orders", "score"] == 0).all()
    assert any("no category orders" in w for w in det.warnings_)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_orders_null_is_honest(seed):
    """Shock-free binomial shares: the realized rate of score <= -t is at most the normal's
    one-sided tail and within a small factor of it, for t = 2 and 3 — the knob is an upper bound
    that still means something. Conservative: the tails are inclusive (a discrete count) and the
    null is Poisson given the category's orders, wider than the binomial by 1 / (1 - share)."""
    out = _make(windows=[], sensitivity=10.0).detect(
        _world(n_days=700, n_cat=4, per_cat=10, total=400.0, seed=seed))
    sc = out.loc[(out["kpi"] == "orders") & out["date"].ge("2025-03-01"), "score"].to_numpy()
    for t in (2.0, 3.0):
        rate = float(np.mean(sc <= -t))
        nominal = float(ndtr(-t))
        assert 0.1 * nominal <= rate <= 1.15 * nominal, (t, rate, nominal)


def test_overdispersed_demand_is_fitted_not_flagged():
    """Demand whose share varies ±40 % day to day: with the Poisson share alone a third of the
    products would page at the shipped knob within the year; with each product's fitted
    overdispersion the realized rate stays at the knob's order and a stockout is still found."""
    inp = _world(n_days=400, n_cat=4, per_cat=10, total=800.0, seed=3, lumpy=0.4,
                 stockout=("21", 300, 5))
    plain = _make(phi_window=0).detect(inp)
    fitted = _make().detect(inp)
    on = (plain["kpi"] == "orders") & (plain["segment"] != "21")
    late = plain["date"] >= pd.Timestamp("2025-07-01")
    assert plain.loc[on & late, "flag"].sum() >= 10
    sc = fitted.loc[on & late, "score"].to_numpy()
    assert float(np.mean(sc <= -3.0)) <= 2.0 * float(ndtr(-3.0))
    assert not fitted.loc[on & late, "flag"].any()
    assert fitted.loc[fitted["segment"] == "21", "flag"].any()


def _tables():
    days = pd.date_range("2025-01-01", periods=4, freq="D")
    orders = pd.DataFrame({
        "order_id": [1, 2, 3, 4, 5],
        "order_date": [days[0], days[0], days[1], days[1], days[3]],
        "status": ["completed", "returned", "cancelled", "completed", "completed"],
    })
    items = pd.DataFrame({
        "order_id": [1, 1, 2, 3, 4, 5, 5],
        "product_id": [7, 7, 8, 7, 7, 9, 7],
        "quantity": [1, 3, 2, 5, 2, 1, 1],
        "unit_price": [10.0, 10.0, 4.0, 10.0, 8.0, 3.0, 10.0],
        "discount_pct": [0.0, 0.1, 0.0, 0.0, 0.2, 0.0, 0.0],
    })
    products = pd.DataFrame({"product_id": [7, 8, 9], "category": ["a", "a", "b"]})
    return days, {"orders": orders, "order_items": items, "products": products}


def test_product_kpis_count_orders_once_and_price_per_unit():
    days, tables = _tables()
    wide, expo = product_kpis(tables, days)
    p7 = wide[wide["segment"] == "7"].set_index("date")
    assert p7["orders"].tolist() == [1.0, 1.0, 0.0, 1.0]   # two lines of order 1 are one order;
    # order 3 is cancelled
    assert p7["price"].iloc[0] == 10.0 and p7["price"].iloc[1] == 8.0   # list price, no discount
    assert np.isnan(p7["price"].iloc[2])
    a = expo[expo["segment"] == "7"].set_index("date")
    assert (a["parent"] == "a").all()
    assert a["parent_orders"].tolist() == [2.0, 1.0, 0.0, 1.0]   # orders 1 and 2 touch category a
    assert set(wide["dimension"]) == {"product"}
    # products with fewer orders a day on average are not watched; no order lines: nothing
    few, _ = watched_products(product_grid(tables, days), min_orders=0.5,
                              n_days=len(days)).frames()
    assert set(few["segment"]) == {"7"}
    assert product_kpis({"orders": tables["orders"]}, days) is None


def test_other_detectors_leave_products_alone_unless_named():
    inp = _world(n_days=60, n_cat=1, per_cat=2)
    cls = REGISTRY["rolling_zscore"]
    assert cls(cls.config_class()).detect(inp).empty
    named = cls(cls.config_class(dimensions=["product"])).detect(inp)
    assert set(named["dimension"]) == {"product"}
    # a list-price index on a dimension a detector names is still the product watcher's alone
    s = inp.series[(inp.series["segment"] == "00") & (inp.series["kpi"] == "price")]
    index = s.assign(dimension="overall", segment="all")
    with_index = DetectorInput(series=pd.concat([inp.series, index], ignore_index=True),
                               exposure=inp.exposure, price_indexes=True)
    assert cls(cls.config_class(dimensions=["overall"])).detect(with_index).empty
    mine = _make().detect(with_index)
    assert ("price", "overall") in set(zip(mine["kpi"], mine["dimension"], strict=True))
    # without the indexes (a --kpis run), a series named `price` is a plain one: judged by a
    # detector that watches its dimension
    plain = dataclasses.replace(with_index, price_indexes=False)
    got = cls(cls.config_class(dimensions=["overall"])).detect(plain)
    assert set(zip(got["kpi"], got["dimension"], strict=True)) == {("price", "overall")}


def test_config_accepts_the_product_dimension():
    cfg = load_analysis_config(None, ["dimensions=[overall,category,product]",
                                      "product_min_orders=2"])
    assert "product" in cfg.dimensions and cfg.product_min_orders == 2
    assert "product_watch" in cfg.detectors and cfg.detectors["product_watch"].enabled


ROOT = Path(__file__).resolve().parents[2]


def _generate(cfg_path: Path, out: Path) -> Path:
    """generate_data.py in this process (``run_cli(main)``, as the script runs it)."""
    from generate_data import main

    from shocklab.cli import run_cli

    assert run_cli(main, ["--config", str(cfg_path), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def product_world(tmp_path_factory):
    """The small scenario plus a stockout of its best-selling product, a pricing error on the
    second (ids read from a first generation of the same store) and one on a whole category."""
    tmp = tmp_path_factory.mktemp("products")
    base = _generate(ROOT / "config/scenarios/small.yaml", tmp / "base")
    items = pd.read_csv(base / "order_items.csv")
    top = items["product_id"].value_counts().index[:2].tolist()
    raw = yaml.safe_load((ROOT / "config/scenarios/small.yaml").read_text())
    raw["events"] = [*raw["events"],
                     {"type": "stockout", "start": "2025-03-27", "duration_days": 4,
                      "share_out": 1.0, "scope": {"product": int(top[0])}},
                     {"type": "pricing_error", "start": "2025-04-08", "duration_days": 2,
                      "price_drop_pct": 0.3, "scope": {"product": int(top[1])}},
                     {"type": "pricing_error", "start": "2025-04-22", "duration_days": 1,
                      "price_drop_pct": 0.25, "scope": {"category": "fashion"}}]
    cfg = tmp / "scenario.yaml"
    cfg.write_text(yaml.safe_dump(raw, sort_keys=False))
    return _generate(cfg, tmp / "data")


@pytest.mark.slow
def test_products_watched_end_to_end(product_world, tmp_path):
    from evaluation.pipeline import analyse
    from shocklab.configio import apply_overrides

    raw = yaml.safe_load((ROOT / "config/analysis.yaml").read_text())
    assert "product" in raw["dimensions"]  # the shipped default watches products
    # no plots in either run (a third of each run's time): nothing below reads a plot
    raw = apply_overrides(raw, ["insights.plots=false", "customers.plots=false"])
    plain_raw = {**raw, "dimensions": [d for d in raw["dimensions"] if d != "product"]}
    plain = analyse(product_world, plain_raw, out_dir=tmp_path / "plain")
    card = analyse(product_world, raw, out_dir=tmp_path / "prod")
    ev = {e["event_id"]: e for e in card["event_detail"]}
    mine = [e for e in ev.values() if e["scope_kind"] == "product"]
    assert len(mine) == 2 and all("consensus" in e["detected_by"] for e in mine), mine
    # the oracle sees them as well (an exact null of the product series)
    assert all("oracle" in e["detected_by"] for e in mine), mine
    assert card["events"]["unwatched"] == 0 and plain["events"]["unwatched"] == 2
    # the category's pricing error: one incident on its list-price index, none per product
    cat = next(e for e in ev.values() if e["type"] == "pricing_error"
               and e["scope_kind"] == "category")
    assert "consensus" in cat["detected_by"] and "oracle" in cat["detected_by"], cat
    assert "product_watch" in card["settings"]["voters"]
    assert "product_watch" not in plain["strict"]["detectors"]   # nothing to watch: not run
    # every other series' consensus is exactly what it was without products
    a = json.loads((tmp_path / "plain" / "incidents.json").read_text())["incidents"]
    b = json.loads((tmp_path / "prod" / "incidents.json").read_text())["incidents"]
    assert [i for i in b if i["dimension"] != "product" and i["kpi"] != "price"] == a
    index = [i for i in b if i["kpi"] == "price" and i["dimension"] != "product"]
    assert ("category", "fashion") in {(i["dimension"], i["segment"]) for i in index}
    assert not [i for i in b if i["dimension"] == "product" and i["kpi"] == "price"
                and i["start"] == "2025-04-22"]   # no product of the category on its own
    prod = [i for i in b if i["dimension"] == "product"]
    assert {i["kpi"] for i in prod} == {"orders", "price"}
    assert all(i["detectors"] == ["product_watch"] for i in prod)
    # the insights speak of the product: stock for its orders, the listing for its price, and no
    # store-wide driver breakdown
    ids = {i["incident_id"]: i["kpi"] for i in prod}
    det = json.loads((tmp_path / "prod" / "insights_details.json").read_text())["incidents"]
    acts = {kpi: det[i]["recommended_action"] for i, kpi in ids.items()}
    assert "Check stock and the listing of product" in acts["orders"]
    assert "Check the list price of product" in acts["price"]
    assert all(det[i]["drivers"]["scope"] == "unknown" for i in ids)
    # their episodes stand apart from the store's, typed by what the watcher flagged and named by
    # the product's category (the finest slice the drivers measure: the root cause's convention),
    # unless a store episode overlapping them has an incident on that category: then they are
    # part of it (one event, one episode; twenty-first session), and it names the product
    eps = json.loads((tmp_path / "prod" / "insights.json").read_text())["episodes"]
    cats = pd.read_csv(product_world / "products.csv").set_index("product_id")["category"]
    every = {i["incident_id"]: i for i in b}
    for ep in (e for e in eps if set(e["incident_ids"]) & set(ids)):
        prods = {every[x]["segment"] for x in ep["incident_ids"] if x in ids}
        store = [every[x] for x in ep["incident_ids"] if x not in ids]
        if store:   # folded: the store episode holds an incident on the product's category
            assert any(i["dimension"] == "category" and i["segment"] in {cats[int(p)]
                       for p in prods} for i in store), ep["incident_ids"]
            assert any(f"product {p}" in json.dumps(ep) for p in prods), ep["title"]
            continue
        kpis = {ids[i] for i in ep["incident_ids"]}
        assert ep["diagnosis"]["type"] == ("pricing_error" if "price" in kpis else "stockout")
        assert ep["drivers"]["top"]["dimension"] == "category"
        assert ep["drivers"]["top"]["value"] in {cats[int(p)] for p in prods}


def test_price_index_moves_with_a_category_and_not_with_one_product():
    """The list-price index: 1 while prices hold; a category-wide cut moves its category's index
    (and the store's median only when enough products move); one product's cut moves neither."""
    from analytics.watch import price_index, product_grid

    days = pd.date_range("2025-01-01", periods=3, freq="D")
    pids = list(range(1, 9))                  # 1-4 category a, 5-8 category b
    orders = pd.DataFrame({"order_id": range(1, 25), "order_date": np.repeat(days, 8),
                           "status": "completed"})
    price = {p: 10.0 + p for p in pids}
    rows = []
    for o, (d, p) in enumerate(((d, p) for d in range(3) for p in pids), start=1):
        cut = 0.5 if (d == 1 and p <= 4) or (d == 2 and p == 5) else 1.0
        rows.append({"order_id": o, "product_id": p, "quantity": 1,
                     "unit_price": price[p] * cut, "discount_pct": 0.0})
    tables = {"orders": orders, "order_items": pd.DataFrame(rows),
              "products": pd.DataFrame({"product_id": pids, "category": ["a"] * 4 + ["b"] * 4,
                                        "unit_price": [price[p] for p in pids]})}
    idx = price_index(tables["products"], product_grid(tables, days))
    idx = idx.set_index(["dimension", "segment", "date"])["price"]
    assert idx[("category", "a")].tolist() == [1.0, 0.5, 1.0]    # every product of a cut on day 1
    assert idx[("category", "b")].tolist() == [1.0, 1.0, 1.0]    # one product of b on day 2
    assert idx[("overall", "all")].tolist() == [1.0, 0.75, 1.0]  # the store's median: 4 of 8 cut


def test_a_kpis_column_named_price_is_a_plain_series(tmp_path):
    """``price`` is the list-price indexes' KPI only when products are watched: in a --kpis file
    it is the user's own series, judged by the voters like any other (never product_watch)."""
    from run_analysis import main as ana_main

    from shocklab.cli import run_cli
    rng = np.random.default_rng(1)
    days = pd.date_range("2025-01-01", periods=200)
    price = 100 + rng.normal(0, 1, 200)
    price[150:153] += 15
    visits = 1000 + rng.normal(0, 20, 200)
    path = tmp_path / "k.csv"
    pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "price": price.round(2),
                  "visits": visits.round(1)}).to_csv(path, index=False)
    assert run_cli(ana_main, ["--kpis", str(path), "--out", str(tmp_path / "run"), "--quiet",
                              "--set", "insights.plots=false"]) == 0
    doc = json.loads((tmp_path / "run" / "incidents.json").read_text())
    assert "product_watch" not in doc["by_detector"]
    det = pd.read_csv(tmp_path / "run" / "detections.csv")
    assert set(det.loc[det["kpi"] == "price", "detector"]) >= {"rolling_zscore", "isolation_forest"}
    spike = [i for i in doc["incidents"] if i["kpi"] == "price" and i["start"] == "2025-05-31"]
    assert spike and "product_watch" not in spike[0]["detectors"], doc["incidents"]


def test_price_reference_and_overdispersion_use_the_days_before_only():
    """The price reference at t is the median of the ``window`` days before t (a repricing is
    judged against the old price until it is most of the window); the overdispersion fit leaves
    out days whose 1-day score is beyond PHI_TRIM (a stockout does not widen its own null)."""
    from analytics.detectors.product_watch import PHI_TRIM, ProductWatch, ProductWatchConfig

    cfg = ProductWatchConfig()
    price = np.r_[np.full(40, 10.0), np.full(30, 12.0)][:, None]
    _, ref = ProductWatch._price(price, np.array(["c"]), cfg)
    for t in (41, 54, 60, 69):
        assert ref[t, 0] == np.median(price[t - 28:t, 0])
    rng = np.random.default_rng(2)
    x = rng.poisson(10.0, (120, 1)).astype(float)
    mean, var = np.full_like(x, 10.0), np.full_like(x, 10.0)
    s1 = np.zeros_like(x)
    x[100], s1[100] = 0.0, -(PHI_TRIM + 1)                 # a stockout day, far out
    phi = ProductWatch._overdispersion(x, mean, var, s1, cfg)
    keep = np.ones(120, bool)
    keep[100] = False
    t = 110
    days = np.arange(120)
    use = keep & (days < t) & (days >= t - cfg.phi_window)
    want = np.clip(np.sum((x[use, 0] - 10.0) ** 2 - 10.0) / np.sum(np.full(use.sum(), 100.0)),
                   0.0, 1.0)
    assert phi[t, 0] == pytest.approx(want)


def test_price_index_is_the_groupby_median_it_replaced():
    """The list-price indexes are row medians of the [date x product] deviation matrix; they
    equal, bit for bit, the (date, category) groupby median over the long rows they were once
    built from (even counts: the mean of the two middle values; NaN under three products)."""
    from analytics.watch import ProductGrid, price_index

    rng = np.random.default_rng(7)
    n_t, n_k = 40, 23
    dates = pd.date_range("2025-01-01", periods=n_t).to_numpy()
    seg = np.array([f"{i:03d}" for i in range(n_k)], dtype=object)
    parent = np.array([["a", "b", "c"][i % 3] for i in range(n_k)], dtype=object)
    price = np.exp(rng.normal(1.0, 0.5, (n_t, n_k)))
    price[rng.random((n_t, n_k)) < 0.6] = np.nan          # most days a product sells nothing
    price[5] = np.nan                                      # a day without any sale
    zeros = np.zeros((n_t, n_k))
    grid = ProductGrid(dates, seg, parent, zeros, price, zeros)
    products = pd.DataFrame({"product_id": seg, "category": parent,
                             "unit_price": np.exp(rng.normal(1.0, 0.3, n_k))})
    got = price_index(products, grid).set_index(["dimension", "segment", "date"])["price"]
    # the reference: the long rows' groupby median, as price_index computed it before
    wide, expo = grid.frames()
    cat = pd.Series(products["unit_price"].to_numpy(float), index=seg)
    dev = wide["price"].to_numpy(float) / cat.reindex(wide["segment"]).to_numpy(float) - 1
    frame = pd.DataFrame({"date": wide["date"].to_numpy(), "parent": expo["parent"].to_numpy(),
                          "dev": dev}).dropna(subset=["dev"])
    for dim, keys in (("category", ["date", "parent"]), ("overall", ["date"])):
        g = frame.groupby(keys)["dev"]
        med = g.median().where(g.count() >= 3).reset_index()
        if dim == "overall":
            med["parent"] = "all"
        for s, part in med.groupby("parent", sort=True):
            want = 1.0 + part.set_index("date")["dev"].reindex(pd.DatetimeIndex(dates))
            have = got[(dim, s)]
            assert np.array_equal(have.to_numpy(), want.to_numpy(), equal_nan=True), (dim, s)
            assert have.notna().sum() > 5 and np.isnan(have.iloc[5])


def test_price_index_without_products_is_none():
    """Order lines whose products the catalogue does not list: an empty grid, no index."""
    from analytics.watch import price_index

    days = pd.date_range("2025-01-01", periods=3)
    tables = {"orders": pd.DataFrame({"order_id": [1, 2], "order_date": days[:2],
                                      "status": "completed"}),
              "order_items": pd.DataFrame({"order_id": [1, 2], "product_id": [5, 6],
                                           "quantity": [1, 1], "unit_price": [1.0, 2.0]}),
              "products": pd.DataFrame({"product_id": pd.Series([], dtype=int),
                                        "category": pd.Series([], dtype=str),
                                        "unit_price": pd.Series([], dtype=float)})}
    grid = product_grid(tables, days)
    assert grid.price.shape == (3, 0)
    assert price_index(tables["products"], grid) is None
    assert watched_products(grid, 1.0, 3) is None


@pytest.mark.parametrize("phi_window", [0, 182])
def test_the_one_day_score_is_not_computed_again_under_the_same_phi(monkeypatch, phi_window):
    """After the overdispersion's last trim φ is usually what the 1-day score was computed
    with (the same days trimmed; always so without a fit, ``phi_window`` 0): the 1-day score is
    then that score, not computed a second time (one ``_orders`` call less, ~1/6 of the
    detector's negative binomials on the default run), and the scores are the same."""
    cls = REGISTRY["product_watch"]
    orders, fits = cls._orders, cls._overdispersion
    calls, phis = [], []

    def counted(x, n, k, cfg, phi):
        calls.append(k)
        return orders(x, n, k, cfg, phi)

    def fitted(*a):
        phis.append(fits(*a))
        return phis[-1]

    def last_looks_new(*a):  # the last fit's zeros signed: the same φ to the scores, new bytes
        phis.append(fits(*a))
        return np.where(phis[-1] == 0, -0.0, phis[-1]) if len(phis) == 3 else phis[-1]

    monkeypatch.setattr(cls, "_orders", staticmethod(counted))
    inp = _world(stockout=("11", 150, 3))
    if phi_window:
        monkeypatch.setattr(cls, "_overdispersion", staticmethod(last_looks_new))
        recomputed = _make(phi_window=phi_window).detect(inp)
        assert calls == [1, 1, 1, 1, 3, 7]   # the last fit looked new: the 1-day score again
        calls.clear()
        phis.clear()
        monkeypatch.setattr(cls, "_overdispersion", staticmethod(fitted))
    out = _make(phi_window=phi_window).detect(inp)
    if phi_window:  # the world's φ settles: the last two fits agree, and so do the scores
        assert len(phis) == 3 and np.array_equal(phis[1], phis[2])
        pd.testing.assert_frame_equal(out, recomputed)
    # the first 1-day score, the two trims' (with a fit), then the 3- and 7-day windows only
    assert calls == [1, *([1, 1] if phi_window else []), 3, 7]
