"""RFM on a hand-made table with known answers; rule segments; cluster naming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.customers import clusters, rfm, segments
from analytics.customers.config import ClustersConfig, CustomersConfig, RfmConfig
from shocklab.configio import validate
from shocklab.errors import InputError


def _orders(rows: list[tuple[str, str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["order_id", "customer_id", "order_date", "net_revenue", "status"]
    )


@pytest.fixture
def hand_made() -> pd.DataFrame:
    """Ten customers A..J: A bought 10 times, J once; recency grows from A to J; the data end
    (2025-01-31) is set by a cancelled order, which counts for the end date only."""
    rows = []
    for i, c in enumerate("ABCDEFGHIJ"):
        last = pd.Timestamp("2025-01-31") - pd.Timedelta(days=3 * i)
        for k in range(10 - i):  # A: 10 orders ... J: 1 order, one week apart
            d = last - pd.Timedelta(days=7 * k)
            rows.append((f"{c}{k}", c, d.date().isoformat(), 10.0 * (10 - i), "completed"))
    rows.append(("X1", "A", "2025-01-31", 999.0, "cancelled"))  # ignored for F and M
    rows.append(("R1", "J", "2024-12-01", 5.0, "returned"))     # returned orders count
    return _orders(rows)


def test_rfm_known_answers(hand_made):
    t = rfm.compute_rfm(hand_made).set_index("customer_id")
    assert list(t.index) == list("ABCDEFGHIJ")
    assert t.loc["A", "recency_days"] == 0 and t.loc["J", "recency_days"] == 27
    assert (
        t.loc["A", "frequency"] == 10 and t.loc["J", "frequency"] == 2
    )  # 1 completed + 1 returned
    assert t.loc["A", "monetary"] == pytest.approx(1000.0)   # the cancelled 999 is not counted
    assert t.loc["J", "monetary"] == pytest.approx(15.0)
    # distinct values: two customers per quintile, 5 = best (recent, frequent, high spend)
    assert list(t["r_score"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(t["m_score"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    # I and J both have 2 orders: the tie shares the lowest rank's score (1), H (3 orders) is next
    assert list(t["f_score"]) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert t.loc["A", "rfm_code"] == "555"
    assert t.loc["A", "mean_gap_days"] == pytest.approx(7.0)
    assert np.isnan(
        rfm.compute_rfm(_orders([("o", "Z", "2025-01-01", 1.0, "completed")]))["overdue"][0]
    )


def test_the_usual_gap_is_between_purchase_days_not_orders():
    """Two orders of one day (an invoice split in two) made a 0-day gap: A, whose two orders fell
    on one day 41 days ago, read as 41x overdue (At Risk four days after buying); B, ordering
    twice on day 0 and once on day 40, had a 20-day usual gap. Now A has no cadence yet (one
    purchase day) and B's gap is 40 days; frequency still counts orders."""
    t = rfm.compute_rfm(_orders([
        ("a1", "A", "2025-01-01", 10.0, "completed"), ("a2", "A", "2025-01-01", 5.0, "completed"),
        ("b1", "B", "2024-12-02", 10.0, "completed"), ("b2", "B", "2024-12-02", 5.0, "completed"),
        ("b3", "B", "2025-01-11", 10.0, "completed"),
        ("c1", "C", "2025-02-11", 1.0, "completed"),  # the data's end: A 41 days, B 31 days ago
    ])).set_index("customer_id")
    assert list(t["frequency"]) == [2, 3, 1]
    assert np.isnan(t.loc["A", "mean_gap_days"]) and np.isnan(t.loc["A", "overdue"])
    assert t.loc["B", "mean_gap_days"] == pytest.approx(40.0)
    assert t.loc["B", "overdue"] == pytest.approx(31 / 40)


def test_rfm_as_of_ignores_later_orders(hand_made):
    t = rfm.compute_rfm(hand_made, as_of="2025-01-20").set_index("customer_id")
    assert t.loc["A", "frequency"] == 8  # orders on 01-24 and 01-31 are after as_of
    assert t.loc["A", "recency_days"] == 3


def test_quintile_ties_and_direction():
    assert rfm.quintile_scores([1, 1, 1, 1, 1, 1, 2, 3, 4, 5]).tolist() == [1] * 6 + [4, 4, 5, 5]
    assert rfm.quintile_scores([0, 10, 20, 30, 40], higher_is_better=False).tolist() == [
        5,
        4,
        3,
        2,
        1,
    ]
    ref = np.array([0, 3, 3, 7, 9, 9, 9, 12])
    for hib in (True, False):
        vals = np.array([0, 1, 3, 8, 9, 20])
        assert rfm.int_scores_against(vals, rfm.int_reference(ref), hib).tolist() == \
            rfm.quintile_scores(vals, hib, reference=ref).tolist()


def test_the_bottom_rank_scores_1_in_a_tiny_store():
    # ceil(5 rank / n) starts above 1 below five customers: two one-order customers were F = 3,
    # and the one who ordered once beside a repeat buyer could be "Loyal"
    assert rfm.quintile_scores([1, 1]).tolist() == [1, 1]
    assert rfm.quintile_scores([1, 4]).tolist() == [1, 5]
    assert rfm.quintile_scores([5, 1, 3], higher_is_better=False).tolist() == [1, 5, 4]
    assert rfm.int_scores_against(np.array([1, 4]), rfm.int_reference(np.array([1, 4])),
                                  True).tolist() == [1, 5]


def test_segments_first_match_and_default():
    cfg = validate(RfmConfig, {"segments": [
        {"name": "Champions", "r": {"min": 4}, "f": {"min": 4}},
        {"name": "At Risk", "r": {"max": 2}, "f": {"min": 3}},
        {"name": "Slipping", "f": {"min": 3}, "overdue": {"min": 2.0}},
    ], "default_segment": "Rest"}, "t")
    seg = segments.assign_segments(np.array([5, 1, 3, 3, 3]), np.array([5, 5, 3, 3, 1]),
                                   np.ones(5), np.array([0.5, 9.0, 2.5, 1.0, np.nan]), cfg)
    assert seg.tolist() == ["Champions", "At Risk", "Slipping", "Rest", "Rest"]
    assert segments.segment_counts(seg, cfg) == {
        "Champions": 1,
        "At Risk": 1,
        "Slipping": 1,
        "Rest": 2,
    }


def test_default_segments_cover_every_rf_cell():
    cfg = RfmConfig()
    r, f = np.meshgrid(np.arange(1, 6), np.arange(1, 6))
    seg = segments.assign_segments(r.ravel(), f.ravel(), np.ones(25), np.full(25, np.nan), cfg)
    assert cfg.default_segment not in seg


@pytest.mark.parametrize(
    "data, match",
    [
        (
            {"rfm": {"segments": [{"name": "X", "r": {"min": 4, "max": 2}}]}},
            r"rfm\.segments\[0\]\.r: min \(4\) must be <= max",
        ),
        ({"monitor": {"segments": ["At Rsk"]}}, r"'At Rsk' is not a configured segment"),
        ({"churn": {"horizon_days": 3}}, r"churn\.horizon_days: .*greater than or equal to 14"),
        ({"clusters": {"kk": 3}}, r"clusters\.kk: unknown key"),
    ],
)
def test_config_errors_name_the_path(data, match):
    with pytest.raises(InputError, match=match):
        validate(CustomersConfig, data, "analysis.yaml")


@pytest.mark.parametrize(("data", "key", "name", "escaped"), [
    ({"rfm": {"segments": [{"name": "At\nRisk", "f": {"min": 3}}]}},
     "rfm.segments[0].name", "At\nRisk", "\\n"),
    ({"rfm": {"segments": [{"name": "VIP", "r": {"min": 5}},
                           {"name": "# Lost\x00", "r": {"max": 2}}]}},
     "rfm.segments[1].name", "# Lost\x00", "\\x00"),
    ({"rfm": {"default_segment": "Ot\ther"}}, "rfm.default_segment", "Ot\ther", "\\t"),
    ({"actions": {"default_action": "none\r"}}, "actions.default_action", "none\r", "\\r"),
    ({"actions": {"rules": [{"action": "call\x1b[31m"}]}},
     "actions.rules[0].action", "call\x1b[31m", "\\x1b"),
    ({"monitor": {"namespace": "shop\x85"}}, "monitor.namespace", "shop\x85", "\\x85"),
])
def test_a_name_with_a_control_character_is_refused(data, key, name, escaped):
    """A segment named 'VIP\\n# Injected heading' went into the customer CSVs, the monitor's
    SQLite and insights.md (a heading of its own), exit 0; one that another key named split the
    error in two lines. Refused as a channel's is: the key, the name quoted, the character."""
    with pytest.raises(InputError) as err:
        validate(CustomersConfig, {"enabled": True, **data}, "analysis.yaml")
    text = str(err.value)
    assert "\n" not in text, text
    assert text.startswith(f"analysis.yaml: {key}: {name!r} holds a control character "
                           f"{escaped} (names go into file names, JSON and Markdown); choose "
                           "another name"), text


def test_an_unknown_segment_error_quotes_the_known_names():
    """The known names are listed quoted: the line holds one whatever they hold."""
    with pytest.raises(InputError) as err:
        validate(CustomersConfig, {"rfm": {"segments": [{"name": "VIP \u2013 Q4"}]},
                                   "monitor": {"segments": ["At Risk"]}}, "analysis.yaml")
    assert str(err.value) == ("analysis.yaml: monitor.segments: 'At Risk' is not a configured "
                              "segment ('VIP \u2013 Q4', 'Other')")
    # printable names (not ASCII only, spaces and '#' inside) are names
    cfg = validate(CustomersConfig, {
        "rfm": {"segments": [{"name": "VIP \u2013 Q4 #1"}], "default_segment": "Rest"},
        "monitor": {"segments": ["VIP \u2013 Q4 #1"], "namespace": "Shop \u00e9",
                    "shortfall": {"segment": "Rest"}},
        "actions": {"rules": [{"action": "call \u260e", "segments": ["Rest"]}],
                    "default_action": "none (yet)"}}, "analysis.yaml")
    assert cfg.rfm.names == ["VIP \u2013 Q4 #1", "Rest"]


def test_empty_orders_is_an_input_error():
    with pytest.raises(InputError, match="no rows"):
        rfm.compute_rfm(_orders([]))
    with pytest.raises(InputError, match="missing column"):
        rfm.valid_orders(pd.DataFrame({"order_id": [1]}))


def test_cluster_names_stable_under_reordering(store):
    orders, _ = store
    table = rfm.compute_rfm(orders)
    cfg = ClustersConfig(k=4)
    a = clusters.fit_clusters(table, cfg, random_state=3)
    shuffled = table.sample(frac=1.0, random_state=11)
    b = clusters.fit_clusters(shuffled, cfg, random_state=3)
    assert (a.labels.sort_index() == b.labels.sort_index()).all()
    assert a.centroids.equals(b.centroids)
    assert len(set(a.labels)) == 4


def test_cluster_names_follow_centroids_not_index():
    z = np.array([[-1.0, 1.0, 1.2],    # recent, frequent, big spender
                  [1.2, -0.9, -1.0],   # lapsed, low value
                  [0.0, 0.1, 0.0]])
    names = clusters.name_clusters(z)
    assert names == ["Active high-value", "Lapsed low-value", "Cooling mid-value"]
    perm = [2, 0, 1]
    assert clusters.name_clusters(z[perm]) == [names[i] for i in perm]
    # equal descriptions get a rank suffix by value, whatever their index
    twins = np.array([[-1.0, 0.6, 0.6], [-1.0, 2.0, 2.0]])
    assert clusters.name_clusters(twins) == ["Active high-value 2", "Active high-value 1"]
    assert clusters.name_clusters(twins[::-1]) == ["Active high-value 1", "Active high-value 2"]


def test_cluster_k_by_silhouette(store):
    orders, _ = store
    res = clusters.fit_clusters(
        rfm.compute_rfm(orders), ClustersConfig(k_min=2, k_max=5), random_state=1
    )
    assert set(res.silhouette) == {2, 3, 4, 5}
    assert res.k == max(res.silhouette, key=res.silhouette.get)
    assert res.centroids["customers"].sum() == len(res.labels)


def test_analysis_yaml_customers_section_is_the_commented_default():
    """config/analysis.yaml documents every customers setting; it must stay equal to the
    defaults."""
    from shocklab.configio import load_yaml

    raw = load_yaml(Path(__file__).resolve().parents[3] / "config" / "analysis.yaml")["customers"]
    assert validate(CustomersConfig, raw, "config/analysis.yaml") == CustomersConfig()


def test_segment_lookup_equals_the_rules_customer_by_customer():
    """The monitor's table lookup gives every customer the segment the rules give, boundaries
    (overdue exactly 1, 4, 10) and NaN (one order) included."""
    cfg = RfmConfig()
    g = np.random.default_rng(3)
    n = 20_000
    r, f, m = (g.integers(1, 6, n) for _ in range(3))
    od = np.round(g.exponential(4, n) * 4) / 4
    od[g.random(n) < 0.1] = np.nan
    od[:6] = [1.0, 4.0, 10.0, 0.0, 10.25, 3.75]
    lut = segments.SegmentLookup(cfg)
    expected = segments.segment_codes(r, f, m, od, cfg)
    assert np.array_equal(lut.table[lut.cells(r, f, m, od)], expected)
    assert np.array_equal(lut.counts(r, f, m, od), np.bincount(expected, minlength=len(cfg.names)))


def test_activity_clock_is_causal():
    """Orders after a day never move the clock up to that day."""
    orders = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(300)],
        "customer_id": [f"C{i % 40}" for i in range(300)],
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(300) // 2, unit="D"),
        "net_revenue": 10.0})
    v = rfm.valid_orders(orders)
    d_min, full = rfm.activity_clock(v, int(v["day"].max()))
    cut = d_min + 100
    _, part = rfm.activity_clock(v[v["day"] <= cut], cut)
    np.testing.assert_array_equal(full[: len(part)], part)
    assert not np.allclose(full, np.arange(1, len(full) + 1))  # the clock is not plain days


def test_silhouette_equals_sklearns():
    """The matrix-product silhouette gives sklearn's value (singletons score 0)."""
    from sklearn.metrics import pairwise_distances, silhouette_score

    g = np.random.default_rng(5)
    for n, k in ((40, 2), (300, 5), (25, 8)):
        x = g.normal(size=(n, 3))
        lab = g.integers(0, k, n)
        lab[0] = k  # a singleton cluster
        lab = np.unique(lab, return_inverse=True)[1]
        d = pairwise_distances(x)
        assert abs(clusters._silhouette(d, lab) - silhouette_score(d, lab, metric="precomputed")) \
            < 1e-12


def test_rfm_scores_are_quintiles_of_the_columns(store):
    """r/f scores (counting ranks on the integer columns) equal the rank-based quintile scores."""
    orders, _ = store
    r = rfm.compute_rfm(orders)
    assert (r["r_score"].to_numpy()
            == rfm.quintile_scores(r["recency_days"], higher_is_better=False)).all()
    assert (r["f_score"].to_numpy() == rfm.quintile_scores(r["frequency"])).all()
    # m_score ranks spend (in hand_made spend and frequency rank alike: M from the frequency
    # column, mutant R11, passed)
    assert (r["m_score"].to_numpy() == rfm.quintile_scores(r["monetary"])).all()
    assert (r["m_score"].to_numpy() != rfm.quintile_scores(r["frequency"])).any()


def _valid_orders_reference(orders: pd.DataFrame) -> pd.DataFrame:
    """valid_orders the plain way: filter, convert, factorize, sort, categorical columns."""
    from analytics.customers.rfm import ORDER_COLUMNS, VALID_MARK, valid_mask

    out = orders.loc[valid_mask(orders), [*ORDER_COLUMNS, "channel"]].copy()
    out.attrs = {}
    out["order_date"] = pd.to_datetime(out["order_date"]).dt.normalize().astype("datetime64[ns]")
    out["net_revenue"] = pd.to_numeric(out["net_revenue"], errors="coerce").fillna(0.0)
    codes, uniques = pd.factorize(out["customer_id"], sort=True)
    day = out["order_date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    idx = np.argsort((day - day.min()) * (len(uniques) + 1) + codes, kind="stable")
    out["channel"] = out["channel"].astype("category")
    out = out.drop(columns="customer_id").iloc[idx].reset_index(drop=True)
    out["day"], out["cust"] = day[idx], codes[idx].astype(np.int64)
    out.insert(1, "customer_id", pd.Categorical.from_codes(out["cust"], categories=uniques))
    out.attrs[VALID_MARK] = True
    return out


@pytest.mark.parametrize("variant", ["typed", "text dates, object revenue", "digit ids"])
def test_valid_orders_equals_the_plain_filter_and_sort(variant):
    """Taking every column once from the input (codes of the whole column, categories no kept
    row uses dropped) gives the frame of the plain filter-convert-sort: customers and a channel
    seen only on cancelled orders, missing customers, statuses and revenue included."""
    g = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame({
        "order_id": [f"O{i}" for i in range(n)],
        "customer_id": pd.array(g.choice([f"C{i:03d}" for i in range(300)] + [None], n),
                                dtype="string"),
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(g.integers(0, 200, n), "D")
        + pd.to_timedelta(g.integers(0, 86400, n), "s"),
        "net_revenue": np.where(g.random(n) < 0.05, np.nan, g.random(n) * 100),
        "status": g.choice(["completed", "Cancelled", "returned", None], n),
        "channel": g.choice(["web", "app", None, "only_cancelled"], n),
    })
    df.loc[df["channel"] == "only_cancelled", "status"] = "cancelled"
    df.loc[df["customer_id"] == "C007", "status"] = "cancelled"
    if variant == "text dates, object revenue":
        df = df.assign(order_date=df["order_date"].dt.strftime("%Y-%m-%d %H:%M"),
                       net_revenue=df["net_revenue"].astype(object))
    elif variant == "digit ids":
        df = df.dropna(subset=["customer_id"]).reset_index(drop=True)
        df["customer_id"] = pd.array((np.arange(len(df)) % 97 + 10**13).astype(str),
                                     dtype="string")
        df = pd.concat([df] * 2, ignore_index=True)  # >= 1024 rows: the integer-key path
    got, want = rfm.valid_orders(df), _valid_orders_reference(df)
    pd.testing.assert_frame_equal(got, want, check_exact=True, check_categorical=True)
    assert got.attrs == want.attrs
    assert "only_cancelled" not in got["channel"].cat.categories
    assert variant == "digit ids" or "C007" not in got["customer_id"].cat.categories


@pytest.mark.parametrize("n", [7, 5000])
def test_rfm_codes_equal_the_text_concatenation(n):
    """The looked-up codes are the values and dtype of r.astype(str) + f + m."""
    g = np.random.default_rng(n)
    r, f, m = (pd.Series(g.integers(1, 6, n).astype(np.int8), index=np.arange(n) * 3)
               for _ in range(3))
    got, want = rfm.rfm_codes(r, f, m), r.astype(str) + f.astype(str) + m.astype(str)
    pd.testing.assert_series_equal(got, want, check_names=False)
    assert type(got.array) is type(want.array)


def test_recency_without_spread_is_neutral_not_lost():
    """Every order on one day (a one-day transactions file): all recencies tie. Quintile ranks
    would give everyone R = 1 and the rules would call them Lost; recency carries no
    information, so everyone gets the middle score and nobody is Lost. A week's spread or more
    scores recency as before."""
    rows = [(f"{c}{k}", c, "2025-01-31", 10.0 * (i + 1), "completed")
            for i, c in enumerate("ABCDEFGHIJ") for k in range(1 + i % 4)]
    t = rfm.compute_rfm(_orders(rows))
    assert set(t["r_score"]) == {rfm.NEUTRAL_R}
    seg = segments.segment_table(t, RfmConfig())["segment"]
    assert "Lost" not in set(seg) and "Hibernating" not in set(seg)
    # spread over 3 days: still too short; over 7 days: ranked (5 = the most recent)
    short = [(r[0], r[1], f"2025-01-{29 + i % 3}", r[3], r[4]) for i, r in enumerate(rows)]
    assert set(rfm.compute_rfm(_orders(short))["r_score"]) == {rfm.NEUTRAL_R}
    wide = [(r[0], r[1], f"2025-01-{24 + 7 * (i % 2)}", r[3], r[4]) for i, r in enumerate(rows)]
    assert len(set(rfm.compute_rfm(_orders(wide))["r_score"])) > 1
    # the threshold is the config's
    assert set(rfm.compute_rfm(_orders(short), cfg=RfmConfig(recency_min_span_days=1))
               ["r_score"]) != {rfm.NEUTRAL_R}


def test_at_risk_is_an_f_score_rule_and_the_readme_says_so():
    """"At Risk" is F score >= 3 (a quintile of order counts), not ">= 3 orders": with one-order
    customers tied in the low quintiles, F = 3 starts at 2 orders, so a 2-order customer 6x past
    their own gap is At Risk (36 % of the default world's At Risk have 2 orders). The README
    names the rules as the config does."""
    rows = [(f"o{i}", f"one{i}", "2025-01-20", 10.0, "completed") for i in range(8)]
    rows += [("a1", "two", "2024-12-20", 10.0, "completed"),
             ("a2", "two", "2024-12-26", 10.0, "completed")]  # gap 6 days, 36 days ago: 6x
    rows += [("z", "late", "2025-01-31", 10.0, "completed")]
    cfg = RfmConfig()
    t = segments.segment_table(rfm.compute_rfm(_orders(rows), cfg=cfg), cfg).set_index(
        "customer_id")
    assert t.loc["two", "frequency"] == 2 and t.loc["two", "f_score"] >= 3
    assert t.loc["two", "segment"] == "At Risk"
    readme = " ".join(
        (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8").split())
    assert "(≥ 3 orders" not in readme and "(≥ 2 orders" not in readme
    for rule in cfg.segments:
        if rule.name in ("At Risk", "Lapsing"):
            assert f"**{rule.name}** (F score ≥ {rule.f.min}," in readme, rule.name


def test_overdue_gap_shrinks_toward_the_pooled_gap_by_hand():
    """Expected gap = (span + k G) / (orders - 1 + k), G = sum(span) / sum(orders - 1) over
    repeat buyers (``overdue_ratio``). Spans 4 and 96 days over 2 and 10 orders: G = 100 / 10
    = 10; with k = 1 the gaps are 14 / 2 = 7 and 106 / 10 = 10.6, so recencies 14 and 21.2 are
    both 2x overdue; with k = 0 the own gaps 4 and 96 / 9. Only k = 0 (the default) was
    exercised: a wrong pooled gap or a missing k in the denominator (R07, R08) passed."""
    span, freq, rec = np.array([4.0, 96.0, 0.0]), np.array([2, 10, 1]), np.array([14.0, 21.2, 5.0])
    np.testing.assert_allclose(rfm.overdue_ratio(rec, span, freq, 1.0), [2.0, 2.0, np.nan])
    np.testing.assert_allclose(rfm.overdue_ratio(rec, span, freq, 0.0),
                               [3.5, 21.2 / (96 / 9), np.nan])


def test_activity_clock_runs_on_calendar_days_for_its_first_four_weeks():
    """With no trailing reference yet, the first 28 days are calendar days (one unit a day),
    however busy they are; untested (mutant R12 started the activity reading after 7 days)."""
    days = np.r_[np.arange(60) // 3, 20 + np.arange(300) // 6]   # activity doubles on day 20
    orders = pd.DataFrame({
        "order_id": [f"o{i}" for i in range(len(days))],
        "customer_id": [f"C{i % 30}" for i in range(len(days))],
        "order_date": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
        "net_revenue": 10.0})
    v = rfm.valid_orders(orders)
    _, clock = rfm.activity_clock(v, int(v["day"].max()))
    np.testing.assert_allclose(clock[:28], np.arange(1, 29))
    assert clock[-1] != len(clock)


def test_segment_bounds_are_inclusive_and_an_m_ceiling_alone_applies():
    """Rule bounds include their ends (R, F, M and overdue: ``min <= x <= max``), and a rule
    limiting M only from above (``m: {max: 2}``) still limits it. The overdue floor was never
    hit exactly, nor an M ceiling alone used: ``>`` for the floor (G03) or ignoring the ceiling
    (G02) passed; the table lookup is built from the same rules, so its test cannot tell."""
    cfg = validate(RfmConfig, {"segments": [
        {"name": "Small spenders", "m": {"max": 2}},
        {"name": "Overdue", "overdue": {"min": 2.0, "max": 4.0}},
    ], "default_segment": "Rest"}, "t")
    seg = segments.assign_segments(
        np.array([3, 3, 3, 3, 3]), np.array([3, 3, 3, 3, 3]), np.array([2, 3, 5, 5, 5]),
        np.array([0.5, 0.5, 2.0, 4.0, 4.01]), cfg)
    assert seg.tolist() == ["Small spenders", "Rest", "Overdue", "Overdue", "Rest"]
    lookup = segments.SegmentLookup(cfg)
    np.testing.assert_array_equal(
        lookup.counts(np.full(5, 3), np.full(5, 3), np.array([2, 3, 5, 5, 5]),
                      np.array([0.5, 0.5, 2.0, 4.0, 4.01])), [1, 2, 2])


def test_a_repeat_buyer_ten_times_past_their_gap_is_lost_whatever_their_r_quintile():
    """Beyond 10x their own gap a repeat buyer is Lost (At Risk ends there), not Champions or
    Loyal because the quintiles of a long history put 80 quiet days at R = 3-4 (the default
    world: 5,282 of 28,335 Champions and Loyal were 10-339x past their gap, 277 of them offered
    a cross-sell). The most recent fifth (R = 5) keeps its rule: two orders a day apart make a
    dozen quiet days "12x"."""
    end = pd.Timestamp("2025-06-30")
    rows, k = [], 0

    def buy(cust: str, *days_ago: int) -> None:
        nonlocal k
        for d in days_ago:
            k += 1
            rows.append((f"o{k}", cust, (end - pd.Timedelta(days=d)).date().isoformat(), 20.0,
                         "completed"))

    for i in range(12):  # buyers every 10 days, last seen 20..31 days ago: R = 3-5
        buy(f"steady{i}", *(20 + i + 10 * j for j in range(6)))
    for i in range(20):  # one-order customers long gone fill R 1-2
        buy(f"gone{i}", 300 + 10 * i)
    buy("quiet", 80, 86, 92, 98, 104, 110)   # gap 6 days, 80 days quiet: 13x
    buy("recent", 12, 13)                    # gap 1 day, 12 days quiet: 12x, but R = 5
    rows.append(("end", "late", end.date().isoformat(), 20.0, "cancelled"))  # the data's end
    cfg = RfmConfig()
    t = segments.segment_table(rfm.compute_rfm(_orders(rows), cfg=cfg), cfg).set_index(
        "customer_id")
    assert t.loc["quiet", "overdue"] > 10 and 3 <= t.loc["quiet", "r_score"] <= 4
    assert t.loc["quiet", "f_score"] >= 3   # the rule before: Loyal (R >= 3, F >= 3)
    assert t.loc["quiet", "segment"] == "Lost"
    assert t.loc["recent", "overdue"] > 10 and t.loc["recent", "r_score"] == 5
    assert t.loc["recent", "segment"] != "Lost"
    assert (t.loc[[f"steady{i}" for i in range(12)], "segment"] != "Lost").all()
