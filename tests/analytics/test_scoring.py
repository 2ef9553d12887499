"""Scoring on hand-made events and incidents (docs/ARCHITECTURE.md definitions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.context import Incident
from evaluation.scoring import (
    Event,
    at_cut,
    at_fp,
    at_fp_cuts,
    at_fp_events,
    best_cut,
    bound_family,
    build_scorecard,
    format_table,
    is_product,
    match_matrix,
    matches,
    metrics,
    recall_at_fp,
)

EV = {
    "event_id": "E01",
    "type": "channel_outage",
    "expected": False,
    "start": "2025-06-10",
    "end": "2025-06-12",
    "scope": {"channel": "paid_social"},
    "effects": {"sessions": -0.17, "orders": -0.16, "aov": 0.001},
    "scope_effects": {"sessions": -0.6, "orders": -0.58, "aov": 0.0},
    "primary_kpi": "sessions",
    "primary_direction": "down",
}
HOLIDAY = {
    "event_id": "P01",
    "type": "holiday",
    "expected": True,
    "start": "2025-07-01",
    "end": "2025-07-02",
    "scope": {},
    "effects": {"revenue": 0.5},
    "primary_kpi": "sessions",
}


def inc(start: str, end: str | None = None, kpi: str = "sessions", direction: str = "down",
        dimension: str = "overall", segment: str = "all", peak: float = 5.0) -> Incident:
    s, e = pd.Timestamp(start), pd.Timestamp(end or start)
    return Incident(
        incident_id=f"I-{kpi}-{dimension}-{segment}-{start}-{direction}",
        kpi=kpi,
        dimension=dimension,
        segment=segment,
        start=s,
        end=e,
        direction=direction,
        detectors=["a"],
        level="single",
        confidence=0.5,
        severity="low",
        peak_score=peak,
        actual=1.0,
        expected=1.0,
        magnitude_pct=0.0,
    )


def ok(
    i: Incident,
    ev: dict = EV,
    mode: str = "strict",
    early: int = 1,
    late: int = 2,
    min_effect: float = 0.05,
):
    return matches(i, Event.from_dict(ev), mode, early, late, min_effect)


@pytest.mark.parametrize("start,end,expected", [
    ("2025-06-09", None, True),          # exactly early_days before the start
    ("2025-06-08", None, False),         # one day too early
    ("2025-06-14", None, True),          # exactly late_days after the end
    ("2025-06-15", None, False),         # one day too late
    ("2025-06-09", "2025-06-20", True),  # starts in the window and runs past it
    # already running when the event began: it did not flag the event (its onset decides)
    ("2025-06-01", "2025-06-20", False),
    ("2025-06-08", "2025-06-12", False),
])
def test_early_late_edges(start, end, expected):
    assert ok(inc(start, end)) is expected


def test_an_incident_running_into_a_planned_day_is_on_it():
    """Expected (calendar) events keep the overlap rule: an incident that began before a planned
    day and runs into it is on that day (a false positive there), not a new alarm."""
    planned = Event.from_dict({**EV, "expected": True})
    hit = match_matrix([inc("2025-06-01", "2025-06-20")], [planned], "strict", 1, 2, 0.05,
                       expected_events=True)
    assert hit[0, 0]


def test_strict_needs_kpi_direction_and_slice():
    assert ok(inc("2025-06-10", kpi="orders"))                         # moved -16 % overall
    assert not ok(inc("2025-06-10", kpi="orders", direction="up"))     # wrong direction
    assert not ok(inc("2025-06-10", kpi="aov", direction="up"))        # +0.1 % < min_effect
    assert not ok(inc("2025-06-10", kpi="revenue"))                    # not among the effects
    assert ok(inc("2025-06-10", kpi="orders", dimension="channel", segment="paid_social"))
    assert not ok(
        inc("2025-06-10", kpi="orders", dimension="channel", segment="organic")
    )  # other channel
    assert ok(inc("2025-06-10", kpi="orders", dimension="country", segment="DE"))  # not excluded
    # lenient: any KPI, any slice, any direction
    assert ok(
        inc("2025-06-10", kpi="revenue", direction="up", dimension="channel", segment="organic"),
        mode="lenient",
    )


def test_min_effect_is_inclusive_and_waived_inside_the_scope_without_in_slice_effects():
    """An effect of exactly min_effect counts; inside the scoped slice, when truth records no
    in-slice effects, any move the right way counts (the overall effects understate it), while
    a crossing slice still needs min_effect."""
    edge = {**EV, "effects": {"sessions": -0.17, "orders": -0.05}, "scope_effects": None}
    assert ok(inc("2025-06-10", kpi="orders"), ev=edge)
    small = {**EV, "effects": {"sessions": -0.17, "orders": -0.01}, "scope_effects": None}
    in_scope = inc("2025-06-10", kpi="orders", dimension="channel", segment="paid_social")
    assert ok(in_scope, ev=small)
    assert not ok(inc("2025-06-10", kpi="orders", dimension="channel", segment="paid_social",
                      direction="up"), ev=small)
    assert not ok(inc("2025-06-10", kpi="orders", dimension="country", segment="DE"), ev=small)


def test_primary_kpi_counts_in_its_direction():
    ev = {**EV, "effects": {"sessions": -0.01}, "scope_effects": None}
    assert ok(
        inc("2025-06-10"), ev=ev
    )  # primary KPI, primary direction, though |effect| < min_effect
    assert not ok(inc("2025-06-10", direction="up"), ev=ev)


def test_primary_kpi_exception_only_on_the_scope_and_the_whole_store():
    """The exception holds where the recorded (overall) effect understates the change: the
    overall series and the slices the scope names. A slice crossing the scope (another
    dimension, a product) moves by about the recorded effect, so it needs min_effect: otherwise a
    noise spike on any of hundreds of product series inside the window would count."""
    small = {**EV, "effects": {"sessions": -0.01, "orders": -0.01}}
    assert ok(inc("2025-06-10"), ev=small)                                      # overall
    assert ok(inc("2025-06-10", dimension="channel", segment="paid_social"), ev=small)
    assert not ok(inc("2025-06-10", dimension="country", segment="DE"), ev=small)   # crossing
    assert not ok(inc("2025-06-10", dimension="product", segment="7"), ev=small)
    # crossing slices still match on a recorded effect that reaches min_effect
    assert ok(inc("2025-06-10", dimension="country", segment="DE"))            # sessions -17 %
    # a store-wide event: only the overall series gets the exception
    store = {**small, "scope": {}, "scope_effects": None}
    assert ok(inc("2025-06-10"), ev=store)
    assert not ok(inc("2025-06-10", dimension="category", segment="books"), ev=store)
    # a category scope: its products are in the scoped slice, another category's excluded
    cat = {**small, "scope": {"category": "books"}, "scope_effects": None}
    books = Event.from_dict(cat).with_members({"7": "books", "8": "toys"})
    assert matches(inc("2025-06-10", dimension="product", segment="7"), books, "strict", 1, 2,
                   0.05)
    assert not matches(inc("2025-06-10", dimension="product", segment="8"), books, "strict", 1,
                       2, 0.05)
    # a product scope: its category contains it (the exception holds), another category crosses
    prod = {**small, "scope": {"product": 7}, "scope_effects": None}
    p7 = Event.from_dict(prod).with_members({"7": "books", "8": "toys"})
    assert p7.parent_category == "books"
    assert matches(inc("2025-06-10", dimension="category", segment="books"), p7, "strict", 1, 2,
                   0.05)
    assert not matches(inc("2025-06-10", dimension="category", segment="toys"), p7, "strict", 1,
                       2, 0.05)


def test_event_without_effects_matches_any_kpi():
    ev = {"event_id": "X1", "start": "2025-06-10", "end": "2025-06-10"}
    assert ok(inc("2025-06-10", kpi="whatever", direction="up"), ev=ev)


def test_metrics_expected_events_are_false_positives_shown_apart():
    events = [Event.from_dict(EV), Event.from_dict(HOLIDAY)]
    incs = [
        inc("2025-06-11"),
        inc("2025-06-12", kpi="orders"),
        inc("2025-07-01", kpi="revenue", direction="up"),
        inc("2025-08-01"),
    ]
    m, delays = metrics(incs, events, "strict", 1, 2, 0.05)
    assert m["events"] == 1 and m["detected"] == 1 and m["recall"] == 1.0
    assert (
        m["incidents"] == 4 and m["true_incidents"] == 2 and m["fp"] == 2 and m["fp_expected"] == 1
    )
    assert m["precision"] == 0.5 and m["f1"] == pytest.approx(2 * 0.5 / 1.5, abs=1e-4)
    assert delays == {"E01": 1} and m["median_delay_days"] == 1.0
    assert m["by_type"] == {
        "channel_outage": {"events": 1, "detected": 1, "recall": 1.0, "median_delay_days": 1.0}
    }


def test_sub_daily_windows_delays_and_fp_expected():
    """On sub-daily data an event ending on a day covers that whole day, and the delay counts
    calendar days (an event from noon caught the next morning: 1 day). An incident on an
    unexpected event is a hit even where it overlaps an expected one: not fp_expected."""
    ev = Event.from_dict({**EV, "start": "2025-06-10T12:00", "end": "2025-06-12"})
    late_hour = inc("2025-06-12T15:00")
    assert matches(late_hour, ev, "strict", 1, 0, 0.05)
    assert not matches(inc("2025-06-13T00:00"), ev, "strict", 1, 0, 0.05)
    _, delays = metrics([inc("2025-06-11T06:00")], [ev], "strict", 1, 0, 0.05)
    assert delays == {"E01": 1}
    both = [Event.from_dict(EV), Event.from_dict({**HOLIDAY, "start": "2025-06-11",
                                                  "end": "2025-06-11"})]
    m, _ = metrics([inc("2025-06-11")], both, "strict", 1, 2, 0.05)
    assert (m["true_incidents"], m["fp"], m["fp_expected"]) == (1, 0, 0)


def test_median_delay_is_the_median_of_the_events_delays():
    evs = [Event.from_dict({**EV, "event_id": f"E{k}", "start": f"2025-0{k}-10",
                            "end": f"2025-0{k}-12"}) for k in (3, 4, 5)]
    incs = [inc("2025-03-10"), inc("2025-04-10"), inc("2025-05-13")]   # delays 0, 0, 3
    m, delays = metrics(incs, evs, "strict", 1, 2, 0.05)
    assert sorted(delays.values()) == [0, 0, 3]
    assert (m["median_delay_days"], m["mean_delay_days"]) == (0.0, 1.0)


def test_delay_counts_from_the_alarm_not_from_an_onset_found_afterwards():
    """An incident whose onset was moved back (consensus.onset_back) to the event's first day but
    raised two days later: matched by its onset, delayed by its alarm (``confirmed``)."""
    ev = Event.from_dict(EV)                                         # 2025-06-10 .. 06-12
    moved = inc("2025-06-10", "2025-06-13")
    moved.confirmed = pd.Timestamp("2025-06-12")
    m, delays = metrics([moved], [ev], "strict", 1, 2, 0.05)
    assert (m["recall"], delays) == (1.0, {"E01": 2})
    assert moved.to_dict()["confirmed"] == "2025-06-12"
    assert inc("2025-06-11").to_dict()["confirmed"] == "2025-06-11"  # not moved: its start
    early = inc("2025-06-10T06:00")                                   # the tz-aware path too
    early.start, early.end = (t.tz_localize("UTC") for t in (early.start, early.end))
    early.confirmed = pd.Timestamp("2025-06-11T09:00", tz="UTC")
    ev_tz = Event.from_dict({**EV, "start": "2025-06-10T00:00+00:00",
                             "end": "2025-06-12T00:00+00:00"})
    assert metrics([early], [ev_tz], "strict", 1, 2, 0.05)[1] == {"E01": 1}


def test_incidents_json_writes_every_time_as_a_timestamp_when_one_falls_inside_a_day():
    from analytics.outputs import incident_record

    day = inc("2025-06-10", "2025-06-12")
    assert (incident_record(day)["start"], incident_record(day)["confirmed"]) == (
        "2025-06-10", "2025-06-10")
    day.confirmed = pd.Timestamp("2025-06-11T06:00")      # raised inside a day
    rec = incident_record(day)
    assert (rec["start"], rec["end"], rec["confirmed"]) == (
        "2025-06-10T00:00:00", "2025-06-12T00:00:00", "2025-06-11T06:00:00")


def test_no_incidents_and_no_events():
    events = [Event.from_dict(EV)]
    m, _ = metrics([], events, "strict", 1, 2, 0.05)
    assert (
        m["recall"] == 0.0
        and m["precision"] == 1.0
        and m["f1"] == 0.0
        and m["median_delay_days"] is None
    )


def test_f1_is_null_without_events():
    """Recall is undefined without unexpected events, so is F1: null, not 0 (a 0 would pull an
    experiment's mean F1 over seeds down for a seed that had nothing to find)."""
    one = [inc("2025-06-02")]
    for incidents in ([], one):
        m, _ = metrics(incidents, [], "strict", 1, 2, 0.05)
        assert m["recall"] is None and m["f1"] is None and m["events"] == 0
    assert metrics(one, [], "strict", 1, 2, 0.05)[0]["precision"] == 0.0


def test_recall_at_equal_fp_takes_top_scores():
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]
    oracle = [inc("2025-06-10", peak=9.0), inc("2025-08-01", peak=8.0), inc("2025-09-01", peak=4.0)]
    assert (
        recall_at_fp(oracle, events, "strict", 1, 2, 0.05, fp_budget=0) == 0.5
    )  # stops before the FP
    assert recall_at_fp(oracle, events, "strict", 1, 2, 0.05, fp_budget=1) == 1.0
    # the oracle's precision over the incidents taken: 2 true of 3 at budget 1, 1 of 1 at 0
    assert at_fp(oracle, events, "strict", 1, 2, 0.05, fp_budget=1) == (1.0, 2 / 3)
    assert at_fp(oracle, events, "strict", 1, 2, 0.05, fp_budget=0) == (0.5, 1.0)


def test_oracle_splits_its_budget_between_products_and_the_store():
    """Two product false positives outrank the store's events: one threshold spends the budget
    on them and finds nothing; the analysis judges products with their own knob, so the oracle
    may too (docs/ARCHITECTURE.md "Scoring")."""
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]
    oracle = [inc("2025-01-05", kpi="orders", direction="up", dimension="product", segment="7",
                  peak=9.0),
              inc("2025-02-05", kpi="orders", direction="up", dimension="product", segment="8",
                  peak=8.0),
              inc("2025-06-10", peak=5.0), inc("2025-08-01", peak=3.0), inc("2025-09-01", peak=2.0)]
    args = ("strict", 1, 2, 0.05)
    assert at_fp_events(oracle, events, *args, fp_budget=1)[0] == 0.0
    r, p, found = at_fp_events(oracle, events, *args, fp_budget=1, family=is_product)
    assert (r, p, found) == (1.0, 2 / 3, {"E01", "E02"})
    assert at_fp_events(oracle, events, *args, fp_budget=0, family=is_product)[:2] == (0.5, 1.0)
    best = best_cut(oracle, events, *args, family=is_product)
    assert best == {"f1": 0.8, "precision": 0.6667, "recall": 1.0, "threshold": 2.0,
                    "incidents": 3, "fp": 1, "lowest": 2.0, "family_threshold": None,
                    "family_lowest": 8.0}
    assert best_cut(oracle, events, *args)["f1"] < 0.8


def test_oracle_bound_does_not_alarm_in_the_warm_up():
    """An oracle false positive inside the scoring warm-up can match no counted event: the bound
    leaves it out (a detector whose warm-up is the scoring's raises none), its own metrics keep
    it."""
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    oracle = [inc("2025-01-03", peak=9.0), inc("2025-06-10", peak=5.0), inc("2025-08-01", peak=4.0),
              inc("2025-09-01", peak=3.0)]
    cons = [inc("2025-06-10"), inc("2025-09-01")]
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05,
                "warmup_days": 90, "data_start": "2025-01-01"}
    card = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings)
    oe = card["strict"]["oracle_equal_fp"]
    assert oe["fp_budget"] == 0 and oe["oracle_recall"] == 0.5 and oe["ratio"] == 2.0
    assert card["strict"]["oracle_best"]["lowest"] == 3.0
    assert card["strict"]["detectors"]["oracle"]["fp"] == 2
    # the warm-up as short as the false positive's distance from the event window: kept
    card = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {},
                           {**settings, "warmup_days": 1})
    assert card["strict"]["oracle_equal_fp"]["oracle_recall"] == 0.0


def test_the_bound_and_its_budget_cover_the_same_days():
    """One cut for both sides, by onset (matching reads it): an oracle incident that starts in the
    warm-up and runs past its end can match no counted event, so it is not the bound's false
    positive; a consensus false positive that starts in the warm-up is not in the budget (the
    oracle may not alarm there), though the consensus' precision still counts it."""
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05,
                "warmup_days": 90, "data_start": "2025-01-01"}   # cut: 2025-03-31
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    # the oracle: one incident from the warm-up into April (its highest), then the two events
    oracle = [inc("2025-03-20", "2025-04-05", peak=9.0), inc("2025-06-10", peak=5.0),
              inc("2025-09-01", peak=4.0)]
    cons = [inc("2025-06-10"), inc("2025-09-01")]
    oe = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings)["strict"][
        "oracle_equal_fp"]
    assert oe["fp_budget"] == 0 and oe["oracle_recall"] == 1.0   # was 0.0 (cut by the end)
    # a consensus false positive in the warm-up (February) and one after it (May)
    cons = [inc("2025-02-10"), inc("2025-05-01"), inc("2025-06-10")]
    card = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings)["strict"]
    assert card["consensus"]["fp"] == 2 and card["consensus"]["precision"] == pytest.approx(1 / 3,
                                                                                          abs=1e-4)
    assert card["oracle_equal_fp"]["fp_budget"] == 1                # was 2
    assert card["oracle_equal_fp"]["oracle_recall"] == 1.0


def _monthly_events(n: int, last_day: int) -> list[Event]:
    """``n`` store-wide copies of EV, E01 … in months 1 … n, from the 10th to ``last_day``."""
    return [Event.from_dict({**EV, "event_id": f"E{k:02d}", "start": f"2025-0{k}-10",
                             "end": f"2025-0{k}-{last_day}", "scope": {}}) for k in range(1, n + 1)]


def _brute_at_fp(oracle: list[Incident], events: list[Event], args: tuple, budget: int,
                 family) -> tuple[float, float, set[str]]:
    """Every tuple of cuts, one per family (the top c of each family's ranking, c = 0 … n):
    the ones finding the most events within ``budget`` false positives (then the highest
    precision, then the most incidents) — (recall, precision, the events each of them found)."""
    import itertools

    groups: dict = {}
    for i in oracle:
        groups.setdefault(family(i), []).append(i)
    orders = [sorted(g, key=lambda i: (-i.peak_score, i.incident_id)) for g in groups.values()]
    n_ev = sum(not e.expected for e in events)
    best: tuple = ((-1, 0.0, 0), [])
    for cs in itertools.product(*(range(len(o) + 1) for o in orders)):
        taken = [i for o, c in zip(orders, cs, strict=True) for i in o[:c]]
        mm = match_matrix(taken, events, *args)
        tp = int(mm.any(axis=1).sum())
        if len(taken) - tp > budget:
            continue
        found = {e.event_id for e, h in zip(events, mm.any(axis=0), strict=True) if h}
        key = (len(found), round(tp / len(taken), 12) if taken else 1.0, len(taken))
        if key > best[0]:
            best = (key, [found])
        elif key == best[0]:
            best[1].append(found)
    (n, prec, _), found = best
    return n / n_ev, prec, found


def test_oracle_split_is_the_best_pair_of_thresholds():
    """Against brute force on random worlds: the split's recall is the best over every way to
    share the budget (every pair of cuts), never below one threshold; its best F1 the best over
    every pair of cuts."""
    rng = np.random.default_rng(3)
    events = _monthly_events(5, last_day=10)
    args = ("strict", 1, 2, 0.05)
    for _ in range(25):
        oracle = []
        for n in range(int(rng.integers(0, 14))):
            month = int(rng.integers(1, 10))
            prod = bool(rng.random() < 0.5)
            oracle.append(inc(f"2025-0{month}-1{n % 10}", dimension="product" if prod else
                              "overall", segment=str(n) if prod else "all",
                              peak=float(rng.integers(1, 8))))
        prods = [i for i in oracle if is_product(i)]
        store = [i for i in oracle if not is_product(i)]
        for budget in range(4):
            got = at_fp_events(oracle, events, *args, fp_budget=budget, family=is_product)
            brute = _brute_at_fp(oracle, events, args, budget, is_product)
            assert got[0] == pytest.approx(brute[0]) and got[1] == pytest.approx(brute[1])
            assert got[2] in brute[2]
            assert got[0] >= at_fp_events(oracle, events, *args, fp_budget=budget)[0]
        best = best_cut(oracle, events, *args, family=is_product)["f1"]
        pairs = []
        for t0 in [np.inf, *sorted({i.peak_score for i in store})]:
            for t1 in [np.inf, *sorted({i.peak_score for i in prods})]:
                taken = [i for i in store if i.peak_score >= t0] + [
                    i for i in prods if i.peak_score >= t1]
                m = metrics(taken, events, *args)[0] if taken else {"f1": 0.0}
                pairs.append(m["f1"])
        assert best == pytest.approx(max(pairs), abs=1e-4)
        assert best >= best_cut(oracle, events, *args)["f1"] - 1e-4


def test_the_bound_splits_its_budget_per_kpi_and_dimension_against_brute_force():
    """``bound_family``: one family per (KPI, dimension). On random worlds of three KPIs on two
    dimensions the search (each family's undominated cuts, then one cut per family within the
    budget) equals every tuple of cuts, and never finds fewer events than the two families
    (store / products) or one threshold: each of those is one of the tuples."""
    rng = np.random.default_rng(11)
    events = _monthly_events(6, last_day=10)
    args = ("lenient", 1, 2, 0.05)                  # any KPI matches: every family can find
    for trial in range(40):
        oracle = []
        for n in range(int(rng.integers(0, 11))):
            month = int(rng.integers(1, 10))
            oracle.append(inc(f"2025-0{month}-1{n % 10}",
                              kpi=str(rng.choice(["sessions", "orders", "aov"])),
                              dimension=str(rng.choice(["overall", "channel"])),
                              segment=f"s{n}", peak=float(rng.integers(1, 9))))
        for budget in range(4):
            got = at_fp_cuts(oracle, events, *args, fp_budget=budget, family=bound_family)
            brute = _brute_at_fp(oracle, events, args, budget, bound_family)
            assert got[0] == pytest.approx(brute[0]), trial
            assert got[1] == pytest.approx(brute[1]) and got[2] in brute[2], trial
            # the cuts it names take what it found: every family's incidents at its cut
            taken = [i for i in oracle if got[3].get(bound_family(i)) is not None
                     and i.peak_score >= got[3][bound_family(i)]]
            mm = match_matrix(taken, events, *args)
            assert {e.event_id for e, h in zip(events, mm.any(axis=0), strict=True) if h} \
                >= got[2], trial
            for coarser in (is_product, None):
                assert got[0] >= at_fp_events(oracle, events, *args, fp_budget=budget,
                                              family=coarser)[0], trial


def test_the_bounds_search_is_guarded_and_says_when_it_is_not_proven(monkeypatch, caplog):
    """Many families each finding events at many costs can need more tuples of cuts than the
    search keeps (``MAX_STATES``): it then keeps the best ones, returns a valid cut (its
    incidents find what it reports) and warns that the result is not proven the best; within the
    limit it says nothing."""
    import logging

    from evaluation import scoring

    rng = np.random.default_rng(5)
    events = _monthly_events(9, last_day=10)
    args = ("lenient", 1, 2, 0.05)
    oracle = [inc(f"2025-0{int(rng.integers(1, 10))}-{int(rng.integers(8, 14))}",
                  kpi=str(rng.choice(["sessions", "orders", "aov", "revenue"])),
                  dimension=str(rng.choice(["overall", "channel", "country"])),
                  segment=f"s{n}", peak=float(rng.uniform(3, 9))) for n in range(120)]
    with caplog.at_level(logging.WARNING, logger="shocklab.analysis"):
        exact = at_fp_cuts(oracle, events, *args, fp_budget=12, family=bound_family)
    assert "not proven the best" not in caplog.text
    monkeypatch.setattr(scoring, "MAX_STATES", 4)
    with caplog.at_level(logging.WARNING, logger="shocklab.analysis"):
        kept = at_fp_cuts(oracle, events, *args, fp_budget=12, family=bound_family)
    assert "more than 4 ways to cut its 12 families within 12 false positives" in caplog.text
    assert kept[0] <= exact[0]
    taken = [i for i in oracle if kept[3].get(bound_family(i)) is not None
             and i.peak_score >= kept[3][bound_family(i)]]
    mm = match_matrix(taken, events, *args)
    assert len(taken) - int(mm.any(axis=1).sum()) <= 12
    assert {e.event_id for e, h in zip(events, mm.any(axis=0), strict=True) if h} >= kept[2]


def test_a_consensus_spending_its_false_alarms_on_one_kpi_is_within_the_bound():
    """Random world 125's shape: the consensus found an AOV event whose exact-null score lies
    under the store's null incidents on sessions, spending its one false alarm there (its voters'
    AOV null is thinner than the exact one). One threshold over every store series spends the
    budget on a sessions null incident and is beaten (ratio 2); a bound split per (KPI,
    dimension) cuts AOV apart and is not (``bound_family``)."""
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {},
           "effects": {"aov": 0.3}, "primary_kpi": "aov"}
    oracle = [inc("2025-06-10", peak=8.0),                          # E01 on sessions
              inc("2025-03-01", peak=6.0), inc("2025-04-01", peak=5.5),   # sessions nulls
              inc("2025-09-01", kpi="aov", direction="up", peak=4.0)]     # E02 on aov
    cons = [inc("2025-06-10"), inc("2025-09-01", kpi="aov", direction="up"),
            inc("2025-05-01", kpi="aov", direction="up")]           # one false positive
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]
    assert at_fp_events(oracle, events, "strict", 1, 2, 0.05, 1, family=is_product)[0] == 0.5
    oe = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {},
                         settings)["strict"]["oracle_equal_fp"]
    assert (oe["fp_budget"], oe["oracle_recall"], oe["ratio"]) == (1, 1.0, 1.0)
    assert oe["cuts"] == [{"family": "aov/overall", "cut": 4.0},
                          {"family": "sessions/overall", "cut": 8.0}]
    assert oe["consensus_only"] == [] and oe["oracle_precision"] == 1.0
    # the one-threshold bound beside it is the one beaten (no split with hindsight)
    assert (oe["oracle_recall_one_cut"], oe["ratio_one_cut"]) == (0.5, 2.0)


def test_the_scorecard_says_what_the_bound_finds_without_a_false_positive():
    """``oracle_recall_at_zero_fp``: the bound's search with a budget of 0. A null incident
    above an event's own in its family hides it at 0 FP and not at the consensus' 1; where every
    event's incident tops its family the two are equal (the ratio is then about power)."""
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {},
           "effects": {"aov": 0.3}, "primary_kpi": "aov"}
    cons = [inc("2025-06-10"), inc("2025-05-01")]                   # one false positive
    hidden = [inc("2025-03-01", peak=9.0), inc("2025-06-10", peak=8.0),   # null above E01
              inc("2025-09-01", kpi="aov", direction="up", peak=4.0)]     # E02 tops aov
    oe = build_scorecard([EV, ev2], {"oracle": hidden}, cons, {},
                         settings)["strict"]["oracle_equal_fp"]
    assert (oe["fp_budget"], oe["oracle_recall"], oe["oracle_recall_at_zero_fp"]) == (1, 1.0, 0.5)
    clear = [inc("2025-03-01", peak=7.0), *hidden[1:]]              # the null now below E01
    oe = build_scorecard([EV, ev2], {"oracle": clear}, cons, {},
                         settings)["strict"]["oracle_equal_fp"]
    assert oe["oracle_recall"] == oe["oracle_recall_at_zero_fp"] == 1.0
    # the console names both
    card = build_scorecard([EV, ev2], {"oracle": hidden}, cons, {}, settings)
    assert "oracle recall at 1 FP: 1.00" in format_table(card)
    assert "at 0 FP 0.50)" in format_table(card)


def test_oracle_best_cut_sweeps_its_thresholds():
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    prod = {**EV, "event_id": "E03", "start": "2025-10-01", "end": "2025-10-01",
            "scope": {"product": "P1"}}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]
    oracle = [inc("2025-06-10", peak=9.0), inc("2025-08-01", peak=8.0), inc("2025-09-01", peak=4.0),
              inc("2025-11-01", peak=3.0)]
    # cuts: 1 incident F1 2/3; 2: P 1/2 R 1/2; 3: P 2/3 R 1 -> F1 0.8 (best); 4: P 1/2 R 1
    best = best_cut(oracle, events, "strict", 1, 2, 0.05)
    assert best == {"f1": 0.8, "precision": 0.6667, "recall": 1.0, "threshold": 4.0,
                    "incidents": 3, "fp": 1, "lowest": 3.0}
    # equal peaks are taken together (no cut between them)
    tied = [inc("2025-06-10", peak=9.0), inc("2025-08-01", peak=9.0)]
    assert best_cut(tied, events, "strict", 1, 2, 0.05)["incidents"] == 2
    assert best_cut([], events, "strict", 1, 2, 0.05)["f1"] == 0.0
    assert best_cut(oracle, [Event.from_dict(HOLIDAY)], "strict", 1, 2, 0.05) is None
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05,
                "dimensions": ["overall", "channel", "country", "category"]}
    card = build_scorecard([EV, ev2, prod], {"oracle": oracle}, [], {}, settings)
    assert card["events"]["unwatched"] == 1
    assert card["events"]["by_scope"] == {"channel": 1, "overall": 1, "product": 1}


def test_ties_go_to_the_higher_precision_split_and_the_higher_threshold():
    """at_fp_events: among budget splits finding as many events, the higher precision; best_cut:
    among cuts of equal F1, the fewest incidents (the highest threshold)."""
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]
    store = [inc("2025-06-10", peak=9.0), inc("2025-11-01", peak=8.0),
             inc("2025-09-01", peak=7.0), inc("2025-09-02", peak=6.0)]
    prods = [inc("2025-11-01", dimension="product", segment="P1", peak=9.0),
             inc("2025-09-01", dimension="product", segment="P2", peak=8.0)]
    # budget 1: the store's FP buys both events with 3 true of 4 taken; the products' FP both
    # events with 2 of 3
    recall, precision, found = at_fp_events(store + prods, events, "strict", 1, 2, 0.05, 1,
                                            family=is_product)
    assert (recall, precision, found) == (1.0, 0.75, {"E01", "E02"})
    # cuts: 1 incident P 1 R 1/2 (F1 2/3) ties 4 incidents P 1/2 R 1 (F1 2/3): the first wins
    tie = [inc("2025-06-10", peak=9.0), inc("2025-11-01", peak=8.0), inc("2025-12-01", peak=7.0),
           inc("2025-09-01", peak=6.0)]
    best = best_cut(tie, events, "strict", 1, 2, 0.05)
    assert (best["f1"], best["threshold"], best["incidents"]) == (0.6667, 9.0, 1)


def test_scorecard_layout_and_matched_ids():
    truth = [EV, HOLIDAY]
    a = [inc("2025-06-10"), inc("2025-08-01")]
    oracle = [inc("2025-06-10", peak=9.0)]
    cons = [inc("2025-06-10")]
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    card = build_scorecard(
        truth,
        {"a": a, "oracle": oracle},
        cons,
        {"k1": a},
        settings,
        oracle_name="oracle",
        failed={"prophet_residual": "RuntimeError: cannot fit"},
    )
    assert card["schema"] == "shocklab.scorecard/1"
    assert card["events"] == {"unexpected": 1, "expected": 1, "by_type": {"channel_outage": 1},
                              "by_scope": {"channel": 1}, "unwatched": None}
    assert card["strict"]["oracle_best"] == {"f1": 1.0, "precision": 1.0, "recall": 1.0,
                                             "threshold": 9.0, "incidents": 1, "fp": 0,
                                             "lowest": 9.0, "family_threshold": None,
                                             "family_lowest": None}
    assert card["headline"]["recall"] == 1.0 and card["headline"]["precision"] == 1.0
    assert card["strict"]["detectors"]["a"]["precision"] == 0.5
    assert card["strict"]["oracle_equal_fp"] == {
        "fp_budget": 0,
        "oracle_recall": 1.0,
        "oracle_recall_at_zero_fp": 1.0,
        "oracle_recall_one_cut": 1.0,
        "ratio_one_cut": 1.0,
        "consensus_recall": 1.0,
        "ratio": 1.0,
        "oracle_precision": 1.0,
        "oracle_f1": 1.0,
        "consensus_only": [],
        "oracle_only": [],
        "cuts": [{"family": "sessions/overall", "cut": 9.0}],
        "consensus_only_detail": None,   # no oracle points given
        "seen_at_cut": None,
    }
    assert card["event_detail"][0]["detected_by"] == {"a": 0, "consensus": 0, "oracle": 0}
    assert [i.matched_event_id for i in a] == ["E01", None] and cons[0].matched_event_id == "E01"
    table = format_table(card)
    assert "CONSENSUS (configured)" in table and "prophet_residual FAILED" in table


def test_ratio_uses_unrounded_recalls():
    """Both find 2 of 3 events: the ratio is exactly 1 (not 0.6667 / 0.666… = 1.0001, which
    read as a consensus above the oracle bound)."""
    evs = [{**EV, "event_id": f"E0{i}", "start": d, "end": d}
           for i, d in enumerate(["2025-06-10", "2025-07-10", "2025-08-10"], 1)]
    found = ["2025-06-10", "2025-07-10"]
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    card = build_scorecard(evs, {"oracle": [inc(d, peak=9.0) for d in found]},
                           [inc(d) for d in found], {}, settings, oracle_name="oracle")
    oe = card["strict"]["oracle_equal_fp"]
    assert oe["consensus_recall"] == 0.6667 and oe["ratio"] == 1.0


def test_equal_fp_names_the_events_behind_a_ratio_above_one():
    """Per world the exact-null oracle is a bound in expectation only: a voter can score one event
    higher than the exact null by chance. The scorecard names such events (and the converse), so a
    ratio above 1 is traceable to them; here the consensus catches E02 with no false positive and
    the oracle reaches it only after two false positives (budget 0)."""
    evs = [{**EV, "event_id": f"E0{i}", "start": d, "end": d}
           for i, d in enumerate(["2025-06-10", "2025-07-10", "2025-08-10"], 1)]
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    oracle = [inc("2025-06-10", peak=9.0), inc("2025-08-10", peak=8.0),
              inc("2025-05-01", peak=7.0), inc("2025-05-15", peak=6.0), inc("2025-07-10", peak=5.0)]
    card = build_scorecard(evs, {"oracle": oracle},
                           [inc("2025-06-10"), inc("2025-07-10")], {}, settings,
                           oracle_name="oracle")
    oe = card["strict"]["oracle_equal_fp"]
    assert oe["fp_budget"] == 0 and oe["ratio"] == 1.0   # 2/3 each, but not the same events
    assert oe["consensus_only"] == ["E02"] and oe["oracle_only"] == ["E03"]


def test_a_product_inside_a_category_scope_is_in_the_scoped_slice():
    """A category pricing error moves the list price of every product in the category: a price
    incident on one of them is judged by the in-scope effects (a match); one on a product of
    another category is excluded (as a sibling channel is); without the product -> category map
    products stay another dimension (the overall effects, which have no price: no match)."""
    ev = {"event_id": "E07", "type": "pricing_error", "expected": False, "start": "2025-06-10",
          "end": "2025-06-11", "scope": {"category": "books"},
          "effects": {"aov": -0.02, "revenue": -0.02},
          "scope_effects": {"aov": -0.3, "revenue": -0.3, "price": -0.3},
          "primary_kpi": "aov", "primary_direction": "down"}
    cats = {"7": "books", "8": "toys"}
    mine = inc("2025-06-10", kpi="price", dimension="product", segment="7")
    other = inc("2025-06-10", kpi="price", dimension="product", segment="8")
    e = Event.from_dict(ev)
    assert matches(mine, e.with_members(cats), "strict", 1, 3, 0.03)
    assert not matches(other, e.with_members(cats), "strict", 1, 3, 0.03)
    assert not matches(mine, e, "strict", 1, 3, 0.03)
    # another category's product stays excluded even where the recorded effect is large
    big = Event.from_dict({**ev, "effects": {**ev["effects"], "price": -0.3}}).with_members(cats)
    assert matches(mine, big, "strict", 1, 3, 0.03)
    assert not matches(other, big, "strict", 1, 3, 0.03)
    settings = {"early_days": 1, "late_days": 3, "min_effect": 0.03, "mode": "strict"}
    card = build_scorecard([ev], {"d": [mine, other]}, [mine, other], {}, settings,
                           oracle_name=None, product_category=cats)
    assert card["strict"]["consensus"]["fp"] == 1 and card["strict"]["consensus"]["recall"] == 1


CELL = {   # an outage of organic x CA: the cell's sessions -75 %, its conversion up by mix
    "event_id": "E11", "type": "channel_outage", "expected": False, "start": "2025-06-10",
    "end": "2025-06-10", "scope": {"channel": "organic", "country": "CA"},
    "effects": {"sessions": -0.04, "orders": -0.05, "conversion_rate": -0.01},
    "scope_effects": {"sessions": -0.75, "orders": -0.7, "conversion_rate": 0.2},
    "container_effects": [
        {"dimension": "channel", "segment": "organic",
         "effects": {"sessions": -0.2, "orders": -0.25, "conversion_rate": -0.06}},
        {"dimension": "country", "segment": "CA",
         "effects": {"sessions": -0.3, "orders": -0.02, "conversion_rate": 0.4}},
    ],
    "primary_kpi": "sessions", "primary_direction": "down",
}


def test_a_slice_containing_the_scope_is_judged_by_its_own_recorded_effect():
    """A channel x country event moves its channel and country by their own effects, not the
    cell's: CA's conversion falls when its best-converting cell goes dark while the cell's own
    conversion rises (seed 120's audit, seventeenth session). Read from truth
    ``container_effects``; without them the cell's effects apply as before."""
    conv_down = inc("2025-06-10", kpi="conversion_rate", dimension="channel", segment="organic")
    assert ok(conv_down, ev=CELL)          # the channel's own -6 %, not the cell's +20 %
    assert not ok(conv_down, ev={**CELL, "container_effects": []})   # the cell's +20 %: no match
    # its own effect must reach min_effect: CA's orders moved -2 %
    assert not ok(inc("2025-06-10", kpi="orders", dimension="country", segment="CA"), ev=CELL)
    assert ok(inc("2025-06-10", kpi="orders", dimension="country", segment="CA"),
              ev={**CELL, "container_effects": []})
    # the primary KPI counts in the container's direction whatever its size
    small = {**CELL, "container_effects": [
        {"dimension": "country", "segment": "CA", "effects": {"sessions": -0.01}}]}
    assert ok(inc("2025-06-10", dimension="country", segment="CA"), ev=small)
    assert not ok(inc("2025-06-10", dimension="country", segment="CA", direction="up"), ev=small)
    # ... also against the event's primary direction (a ratio can move against the scope's)
    against = {**CELL, "container_effects": [
        {"dimension": "country", "segment": "CA", "effects": {"sessions": 0.01}}]}
    assert ok(inc("2025-06-10", dimension="country", segment="CA", direction="up"), ev=against)
    assert not ok(inc("2025-06-10", dimension="country", segment="CA"), ev=against)
    # the cell itself is still judged by the in-scope effects; a sibling country is excluded
    assert ok(inc("2025-06-10", kpi="conversion_rate", direction="up",
                  dimension="channel_country", segment="organic|CA"), ev=CELL)
    assert not ok(inc("2025-06-10", kpi="sessions", dimension="country", segment="US"), ev=CELL)


def test_a_channel_x_country_cell_is_inside_or_outside_a_scope():
    """Watched cells (``channel_country``): a cell of the scoped channel is inside a channel
    scope (judged by the in-scope effects), a cell of another channel is excluded."""
    assert ok(inc("2025-06-10", kpi="sessions", dimension="channel_country",
                  segment="paid_social|DE"))                               # inside: -60 %
    assert not ok(inc("2025-06-10", kpi="sessions", dimension="channel_country",
                      segment="organic|DE"))                                # another channel
    assert not ok(inc("2025-06-10", kpi="sessions", dimension="channel_country",
                      segment="organic|US"), ev=CELL)                       # another cell
    assert ok(inc("2025-06-10", kpi="sessions", dimension="channel_country", segment="organic|CA"),
              ev=CELL)


def test_a_product_scope_category_uses_its_recorded_effect():
    """A stockout of one product: its category's AOV moves by the category's own recorded effect
    (which can reach min_effect where the store's does not); without a record the store's
    effects apply there, as before."""
    ev = {"event_id": "E17", "type": "stockout", "expected": False, "start": "2025-06-10",
          "end": "2025-06-14", "scope": {"product": 7},
          "effects": {"orders": -0.01, "revenue": -0.02, "aov": -0.01},
          "scope_effects": {"orders": -1.0, "revenue": -1.0},
          "container_effects": [{"dimension": "category", "segment": "grocery",
                                 "effects": {"orders": -0.1, "revenue": -0.2, "aov": -0.11}}],
          "primary_kpi": "orders", "primary_direction": "down"}
    cats = {"7": "grocery", "8": "toys"}
    aov = inc("2025-06-11", kpi="aov", dimension="category", segment="grocery")
    e = Event.from_dict(ev).with_members(cats)
    assert e.containers == {("category", "grocery"): {"orders": -0.1, "revenue": -0.2,
                                                      "aov": -0.11}}
    assert matches(aov, e, "strict", 1, 2, 0.05)
    old = Event.from_dict({**ev, "container_effects": []}).with_members(cats)
    assert not matches(aov, old, "strict", 1, 2, 0.05)              # the store's -1 %
    assert not matches(inc("2025-06-11", kpi="aov", dimension="category", segment="toys"), e,
                       "strict", 1, 2, 0.05)


def _run(start: str, end: str, records: list[tuple[str, float, float]], peak: float | None = None,
         **kw) -> tuple[Incident, list]:
    """An oracle incident over start..end and its onsets by cut (``Onsets``): (day, the day
    before's score, its score) for the days after the run's first where the score rises."""
    i = inc(start, end, peak=peak if peak is not None else records[-1][2], **kw)
    return i, [(pd.Timestamp(d), lo, hi) for d, lo, hi in records]


def test_the_bound_may_report_an_incident_from_its_first_day_reaching_the_cut():
    """A real move whose run began with a null flag days before the event (the traced cause of
    the two test worlds above the bound, s116 and s120): from its run's first day it is a false
    positive at every cut; a detector alarming at a cut t can report the first day reaching t,
    inside the event's window while t is above the early flag's score."""
    ev2 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    events = [Event.from_dict(EV), Event.from_dict(ev2)]       # E01's window: 06-09 .. 06-14
    moved, rec = _run("2025-06-05", "2025-06-12", [("2025-06-10", 3.1, 9.0)])
    oracle = [moved, inc("2025-08-01", peak=5.0), inc("2025-09-01", peak=4.0),
              inc("2025-10-01", peak=3.0)]
    onsets = {moved.incident_id: rec}
    args = ("strict", 1, 2, 0.05)
    assert at_fp_events(oracle, events, *args, fp_budget=0)[:2] == (0.0, 1.0)   # run onsets
    assert at_fp_events(oracle, events, *args, fp_budget=0, onsets=onsets)[:2] == (0.5, 1.0)
    assert at_fp_events(oracle, events, *args, fp_budget=1, onsets=onsets) == (1.0, 2 / 3,
                                                                                {"E01", "E02"})
    # at the lowest cut (3.0 < 3.1) the first day reaching it is the early flag's: no match
    # there, so a larger budget keeps the cut at 4.0 (the most events, not the most incidents)
    r, p, found = at_fp_events(oracle, events, *args, fp_budget=3, onsets=onsets)
    assert (r, p, found) == (1.0, 2 / 3, {"E01", "E02"})
    assert best_cut(oracle, events, *args, onsets=onsets)["f1"] == 0.8
    assert best_cut(oracle, events, *args)["f1"] == 0.4
    # through the scorecard: the consensus found both events with two false positives
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    cons = [inc("2025-06-10"), inc("2025-09-01"), inc("2025-11-01"), inc("2025-12-01")]
    plain = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings)
    cut = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings, oracle_onsets=onsets)
    assert plain["strict"]["oracle_equal_fp"]["ratio"] == 2.0             # above the bound
    assert plain["strict"]["oracle_equal_fp"]["consensus_only"] == ["E01"]
    assert cut["strict"]["oracle_equal_fp"]["ratio"] == 1.0
    assert cut["strict"]["oracle_equal_fp"]["consensus_only"] == []
    # one cut read directly (bench_visibility's "at the knob"): the same rule
    taken, mm = at_cut(oracle, events, *args, 4.0, onsets)
    assert [i.peak_score for i in taken] == [9.0, 5.0, 4.0]
    assert mm.any(axis=1).tolist() == [True, False, True]
    assert at_cut(oracle, events, *args, 3.0, onsets)[1].any(axis=1).tolist() == [
        False, False, True, False]
    assert not at_cut(oracle, events, *args, 4.0)[1][0].any()
    # no onset after the run's first day changes nothing
    same = {i.incident_id: [] for i in oracle}
    again = build_scorecard([EV, ev2], {"oracle": oracle}, cons, {}, settings, oracle_onsets=same)
    assert again["strict"] == plain["strict"]


def test_the_bound_reports_an_incident_again_where_it_re_crosses_the_cut():
    """Random world 125's shape (the consensus above the bound, 1.13): an oracle run on US
    sessions began with another move (its peak, no event of its own), fell below the cut for two
    days and rose again on the day of a one-day outage. A detector alarming at a cut under that
    day's score raises a new alarm there (the consensus did); the bound's incident reports it too
    — from its first day reaching the cut only, it matched nothing and the consensus beat it."""
    e15 = {**EV, "event_id": "E15", "start": "2025-01-19", "end": "2025-01-19", "scope": {}}
    e02 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    events = [Event.from_dict(e15), Event.from_dict(e02)]
    # scores 01-11 3.5, 01-12 9.5, falling to 4 by 01-16, 01-17/18 2.0, 01-19 9.3, then falling
    run, rec = _run("2025-01-11", "2025-01-25",
                    [("2025-01-12", 3.5, 9.5), ("2025-01-19", 2.0, 9.3)], peak=9.5)
    first_reach = {run.incident_id: rec[:1]}           # the days reaching a new high only
    onsets = {run.incident_id: rec}
    oracle = [inc("2025-09-01", peak=9.9), run, inc("2025-08-01", peak=9.0)]
    args = ("strict", 1, 2, 0.05)
    assert at_fp_events(oracle, events, *args, fp_budget=1, onsets=first_reach) == (
        0.5, 1.0, {"E02"})                             # the run's false positive buys nothing
    # at the cut 9.0 (9.3 >= 9.0 > 2.0) the run's stretch from 01-19 matches E15
    assert at_fp_events(oracle, events, *args, fp_budget=1, onsets=onsets) == (
        1.0, 2 / 3, {"E02", "E15"})
    assert at_fp_events(oracle, events, *args, fp_budget=0, onsets=onsets)[0] == 0.5  # 9.5: none
    taken, mm = at_cut(oracle, events, *args, 9.0, onsets)
    assert mm.any(axis=1).tolist() == [True, True, False]
    assert not at_cut(oracle, events, *args, 9.5, onsets)[1][1].any()
    assert not at_cut(oracle, events, *args, 9.0, first_reach)[1][1].any()
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    cons = [inc("2025-01-19"), inc("2025-09-01"), inc("2025-11-01")]
    old = build_scorecard([e15, e02], {"oracle": oracle}, cons, {}, settings,
                          oracle_onsets=first_reach)
    new = build_scorecard([e15, e02], {"oracle": oracle}, cons, {}, settings, oracle_onsets=onsets)
    assert old["strict"]["oracle_equal_fp"]["ratio"] == 2.0
    assert new["strict"]["oracle_equal_fp"]["ratio"] == 1.0
    assert new["strict"]["oracle_equal_fp"]["consensus_only"] == []


def _path_records(start: pd.Timestamp, path: np.ndarray) -> list:
    """``Votes.onset_records``' rule on one run's scores: (day, the day before's score, its
    score) for every day after the first where the score rises."""
    return [(start + pd.Timedelta(days=d), float(path[d - 1]), float(path[d]))
            for d in range(1, len(path)) if path[d] > path[d - 1]]


def test_the_bound_with_onsets_by_cut_against_brute_force():
    """Random runs with arbitrary score paths (dips below the cut included): the vectorized table
    (``at_fp_events``, ``best_cut``) equals counting every cut directly — at the c-th peak t, each
    taken incident matches from its run's first day or from any day d where a stretch at or above
    t starts (path[d] >= t > path[d-1]), counted once — with the budget's cut the one finding the
    most events among those within it (ties: the highest precision, then the largest);
    ``at_cut`` reads the same cuts."""
    import dataclasses

    rng = np.random.default_rng(7)
    events = _monthly_events(6, last_day=11)
    args = ("strict", 1, 2, 0.05)
    for trial in range(60):
        oracle, onsets, paths = [], {}, {}
        for n in range(int(rng.integers(1, 16))):
            month, day = int(rng.integers(1, 8)), int(rng.integers(1, 20))
            start = pd.Timestamp(f"2025-0{month}-{day:02d}")
            length = int(rng.integers(1, 10))
            path = rng.choice(np.arange(10, 90), size=length) / 10.0
            path[0] = max(path[0], 3.0)                 # a run begins with a flag at 3.0
            i = inc(start.date().isoformat(),
                    (start + pd.Timedelta(days=length - 1)).date().isoformat(),
                    segment=f"s{n}", dimension="channel", peak=float(path.max()))
            oracle.append(i)
            onsets[i.incident_id] = _path_records(start, path)
            paths[i.incident_id] = path
        order = sorted(oracle, key=lambda i: (-i.peak_score, i.incident_id))
        table = []                                      # (found ids, true incidents) per top c
        for c in range(len(order) + 1):
            t = order[c - 1].peak_score if c else np.inf
            found, true = set(), 0
            for i in order[:c]:
                path = paths[i.incident_id]
                alts = [i.start + pd.Timedelta(days=d) for d in range(1, len(path))
                        if path[d] >= t > path[d - 1]]
                row = match_matrix([i, *(dataclasses.replace(i, start=a) for a in alts)],
                                   events, *args)
                hit = row.any(axis=0)
                found |= {e.event_id for e, h in zip(events, hit, strict=True) if h}
                true += bool(hit.any())
            table.append((found, true))
            if c:                                       # one cut read directly: the same rows
                taken, mm = at_cut(oracle, events, *args, t, onsets)
                got = {e.event_id for e, h in zip(events, mm.any(axis=0), strict=True) if h}
                if len(taken) == c:
                    assert (got, int(mm.any(axis=1).sum())) == (found, true), trial
        for budget in range(4):
            ok = [c for c in range(len(order) + 1) if c - table[c][1] <= budget]
            c = max(ok, key=lambda c: (len(table[c][0]), table[c][1] / c if c else 1.0, c))
            want = (len(table[c][0]) / len(events), table[c][1] / c if c else 1.0, table[c][0])
            got = at_fp_events(oracle, events, *args, fp_budget=budget, onsets=onsets)
            assert got[0] == pytest.approx(want[0]) and got[1] == pytest.approx(want[1]), trial
            assert got[2] == want[2], trial
        f1s = []
        for c in range(1, len(order) + 1):
            if c < len(order) and order[c].peak_score == order[c - 1].peak_score:
                continue                                # equal peaks go together
            r, p = len(table[c][0]) / len(events), table[c][1] / c
            f1s.append(2 * p * r / (p + r) if p + r else 0.0)
        assert best_cut(oracle, events, *args, onsets=onsets)["f1"] == pytest.approx(
            max(f1s), abs=1e-4), trial


def _points(rows: list[tuple[str, str, str, str, float]]) -> pd.DataFrame:
    """The oracle's flagged points (``evaluation.bound_check.POINT_COLUMNS``)."""
    return pd.DataFrame(rows, columns=["date", "kpi", "dimension", "segment", "score"]).assign(
        date=lambda d: pd.to_datetime(d["date"]).astype("datetime64[s]"))


def test_the_scorecard_tells_an_event_beneath_the_bounds_cut_from_one_it_lost():
    """``oracle_equal_fp.seen_at_cut`` (``evaluation.bound_check``): an event the consensus found
    and the bound did not is luck when the oracle's best point a match allows in its window is
    below the bound's cut, and a defect of the bound's incidents when it reaches the cut — random
    world 125's US outage under the old onsets (run start and first day reaching the cut only)
    is flagged, and with the re-crossing onsets it is no longer the consensus' alone."""
    e15 = {**EV, "event_id": "E15", "start": "2025-01-19", "end": "2025-01-19", "scope": {}}
    e02 = {**EV, "event_id": "E02", "start": "2025-09-01", "end": "2025-09-01", "scope": {}}
    e03 = {**EV, "event_id": "E03", "start": "2025-10-10", "end": "2025-10-10", "scope": {}}
    e04 = {**EV, "event_id": "E04", "start": "2025-11-10", "end": "2025-11-10", "scope": {}}
    e06 = {**EV, "event_id": "E06", "start": "2025-12-11", "end": "2025-12-11", "scope": {}}
    run, rec = _run("2025-01-11", "2025-01-25",
                    [("2025-01-12", 3.5, 9.5), ("2025-01-19", 2.0, 9.3)], peak=9.5)
    oracle = [inc("2025-09-01", peak=9.9), run, inc("2025-08-01", peak=9.0),
              inc("2025-10-10", peak=8.0), inc("2025-07-01", peak=5.0), inc("2025-11-10", peak=3.2)]
    points = _points([
        ("2025-09-01", "sessions", "overall", "all", -9.9),
        ("2025-01-12", "sessions", "overall", "all", -9.5),
        ("2025-01-19", "sessions", "overall", "all", -9.3),
        ("2025-08-01", "sessions", "overall", "all", -9.0),
        ("2025-10-10", "sessions", "overall", "all", -8.0),
        ("2025-07-01", "sessions", "overall", "all", -5.0),
        ("2025-11-10", "sessions", "overall", "all", -3.2),
        ("2025-11-11", "sessions", "overall", "all", 8.5),      # the wrong direction
        ("2025-11-11", "aov", "overall", "all", -8.5),          # a KPI the event barely moves
        ("2025-12-09", "sessions", "overall", "all", -9.5),     # an earlier fall, fading: the
        ("2025-12-10", "sessions", "overall", "all", -9.4),     # day of E06 raises no new alarm
    ])
    settings = {"mode": "strict", "early_days": 1, "late_days": 2, "min_effect": 0.05}
    cons = [inc(d) for d in ("2025-01-19", "2025-09-01", "2025-10-10", "2025-11-10",
                             "2025-12-11", "2025-12-01", "2025-12-05")]  # two false positives
    args = ([e15, e02, e03, e04, e06], {"oracle": oracle}, cons, {}, settings)
    old_card = build_scorecard(*args, oracle_onsets={run.incident_id: rec[:1]},
                               oracle_points=points)
    old = old_card["strict"]["oracle_equal_fp"]
    assert (old["fp_budget"], old["cuts"]) == (2, [{"family": "sessions/overall", "cut": 8.0}])
    assert old["consensus_only"] == ["E04", "E06", "E15"]
    fam = {"family": "sessions/overall", "cut": 8.0}
    assert old["consensus_only_detail"] == [
        {"event_id": "E04", "oracle_score": 3.2, **fam, "seen_at_cut": False},   # luck
        {"event_id": "E06", "oracle_score": 0.0, "family": None, "cut": None,   # only a fading
         "seen_at_cut": False},                                                 # fall
        {"event_id": "E15", "oracle_score": 9.3, **fam, "seen_at_cut": True}]    # the lost outage
    assert old["seen_at_cut"] == 1
    table = format_table(old_card)                          # the console says which is which
    assert ("found by the consensus alone: E04 (the oracle's best 3.20, its cut 8.00 on "
            "sessions/overall; below the cut: luck)") in table
    assert ("E15 (the oracle's best 9.30, its cut 8.00 on sessions/overall; at or above the cut: "
            "the bound lost it") in table
    assert "E06 (no point of the oracle's starts a stretch in its window; luck)" in table
    new = build_scorecard(*args, oracle_onsets={run.incident_id: rec},
                          oracle_points=points)["strict"]["oracle_equal_fp"]
    assert new["consensus_only"] == ["E06"] and new["seen_at_cut"] == 0
    assert new["cuts"] == [{"family": "sessions/overall", "cut": 3.2}]
    bare = build_scorecard(*args, oracle_onsets={run.incident_id: rec})["strict"]
    assert bare["oracle_equal_fp"]["seen_at_cut"] is None
    assert bare["oracle_equal_fp"]["consensus_only_detail"] is None


def test_the_bound_check_reads_each_point_against_its_own_familys_cut():
    """Each (KPI, dimension) family is cut apart (``bound_family``): a product point is seen at
    the cut only when it reaches the product family's cut (missing: nothing taken there, no cut
    to reach), a category point only the category family's."""
    from evaluation.bound_check import consensus_only_detail

    ev = Event.from_dict({**EV, "event_id": "E05", "start": "2025-03-10", "end": "2025-03-10",
                          "scope": {"product": 7}, "effects": {"orders": -0.01},
                          "scope_effects": {"orders": -0.9}, "primary_kpi": "orders"}
                         ).with_members({"7": "toys"})
    pts = _points([("2025-03-10", "orders", "product", "7", -6.0),
                   ("2025-03-10", "orders", "category", "toys", -4.0),
                   ("2025-03-20", "orders", "product", "7", -9.0)])   # outside the window

    def seen(cuts: dict[str, float]) -> list[dict]:
        return consensus_only_detail(pts, [ev], ["E05"], cuts, bound_family, "strict", 1, 2,
                                     0.05)

    assert seen({"orders/category": 5.0}) == [
        {"event_id": "E05", "oracle_score": 6.0, "family": "orders/product", "cut": None,
         "seen_at_cut": False}]
    assert seen({"orders/category": 5.0, "orders/product": 7.0})[0]["seen_at_cut"] is False
    got = seen({"orders/category": 5.0, "orders/product": 5.5})[0]   # the product point
    assert (got["seen_at_cut"], got["cut"]) == (True, 5.5)           # reaches its cut
    assert seen({"orders/category": 3.9, "orders/product": 7.0})[0]["seen_at_cut"] is True
    assert seen({"orders/overall": 3.9, "orders/product": 7.0})[0]["seen_at_cut"] is False
    assert consensus_only_detail(pts, [ev], [], {}, bound_family, "strict", 1, 2, 0.05) == []
