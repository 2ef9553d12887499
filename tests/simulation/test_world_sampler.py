"""Random worlds: coverage of types and scope kinds, packing feasibility, warm-up, determinism."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from shocklab.configio import load_yaml
from shocklab.errors import InputError
from simulation.api import generate
from simulation.config import build_config
from simulation.events import EVENT_TYPES
from simulation.world_sampler import SCOPE_KINDS, WorldSpec, expand_world

SCENARIO = "config/scenarios/random_world.yaml"


def _raw(seed: int, **world) -> dict:
    raw = load_yaml(SCENARIO)
    raw["seed"] = seed
    raw["world"] = {**raw["world"], **world}
    return raw


def _spans(cfg):
    """(start, end) day offsets of every shock and calendar occurrence."""
    off = [((e.start - cfg.period.start).days, (e.end - cfg.period.start).days) for e in cfg.events]
    off += [((d - cfg.period.start).days, (d - cfg.period.start).days + c.duration_days - 1)
            for c in cfg.calendar for d in c.dates]
    return sorted(off)


def test_every_type_and_scope_kind_appears_across_seeds_and_placement_rules_hold():
    spec = WorldSpec.model_validate(load_yaml(SCENARIO)["world"])
    types, kinds = set(), set()
    for seed in range(6):
        cfg = build_config(_raw(seed), "t")
        assert spec.shocks[0] <= len(cfg.events) <= spec.shocks[1]
        assert spec.channels[0] <= len(cfg.channels) <= spec.channels[1]
        assert spec.countries[0] <= len(cfg.countries) <= spec.countries[1]
        assert spec.categories[0] <= len(cfg.products.categories) <= spec.categories[1]
        assert spec.period_days[0] <= cfg.period.days <= spec.period_days[1]
        # every type in every world (the type cycle), shocks after the warm-up and before the margin
        assert {e.type for e in cfg.events} == set(EVENT_TYPES)
        spans = _spans(cfg)
        assert spans[0][0] >= spec.warmup_days
        assert spans[-1][1] <= cfg.period.days - 1 - spec.end_margin_days
        # packed: no overlap, at least min_gap_days between consecutive items
        for (_, e0), (s1, _) in zip(spans, spans[1:], strict=False):
            assert s1 - e0 - 1 >= spec.min_gap_days
        types |= {e.type for e in cfg.events}
        kinds |= {e.scope.kind for e in cfg.events}
    assert types == set(EVENT_TYPES)
    assert kinds == set(SCOPE_KINDS)


def test_a_request_at_the_feasibility_edge_never_fails_and_one_past_it_is_a_config_error():
    base = {"period_days": [200, 260], "warmup_days": 30, "end_margin_days": 0, "shocks": [20, 20],
            "calendar_entries": [3, 3], "min_gap_days": 0}
    need = WorldSpec.model_validate(base).worst_case_days()
    edge = {**base, "warmup_days": 200 - need}
    for seed in range(40):       # worst case fills the shortest period exactly: packing still fits
        cfg = build_config(_raw(seed, **edge), "t")
        assert len(cfg.events) == 20
    with pytest.raises(InputError, match=r"world.*shortest period leaves"):
        build_config(_raw(0, **{**edge, "warmup_days": 201 - need}), "t.yaml")


def test_bad_world_configs_are_one_line_errors_naming_the_key():
    with pytest.raises(InputError, match=r"t.yaml: channels: a config with a world: section"):
        build_config({**_raw(0), "channels": {}}, "t.yaml")
    with pytest.raises(InputError, match=r"t.yaml: world.shockz: unknown key"):
        build_config(_raw(0, shockz=[1, 2]), "t.yaml")
    with pytest.raises(InputError, match=r"world.*types: unknown event type 'meteor'"):
        build_config(_raw(0, types=["meteor"]), "t.yaml")
    # an effect that rounds to 0: the error named events[0].extra_orders_pct, a key it lacks
    with pytest.raises(InputError, match=r"t.yaml: world: effect: need 0.002 <= low"):
        build_config(_raw(0, effect=[0.001, 0.001], magnitude={"mode": "percent"}), "t.yaml")
    cfg = build_config(_raw(0, effect=[0.002, 0.002], magnitude={"mode": "percent"}), "t.yaml")
    assert all(ev.magnitude != 0 for ev in cfg.events)


def test_a_world_whose_dates_the_analysis_cannot_read_is_a_config_error():
    """A world of 1600 was written and then refused by the analysis (dates out of range); one
    starting 2261-06-01 was an internal error (its drawn period failed the config's check)."""
    for start in ("1600-01-01", "2261-06-01"):
        with pytest.raises(InputError, match=rf"t.yaml: world: start: {start} draws dates from "
                           r".*; the analysis reads dates from 1678 to 2261"):
            build_config(_raw(0, start=start), "t.yaml")
    for seed in range(5):   # the edges: signups from 1678, the last day in 2261
        lo = build_config(_raw(seed, start="1679-12-22"), "t")
        hi = build_config(_raw(seed, start="2259-01-01", period_days=[420, 548]), "t")
        assert lo.period.start >= dt.date(1679, 12, 22) and hi.period.end.year <= 2261


def test_expansion_is_deterministic_and_seed_dependent():
    a, b, c = (expand_world(_raw(s), "t") for s in (5, 5, 6))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["channels"] != c["channels"] or a["events"] != c["events"]


def test_null_world_has_no_shocks():
    cfg = build_config(_raw(3, shocks=[0, 0]), "t")
    assert cfg.events == [] and cfg.random_events.count == 0


def test_same_seed_same_bytes(tmp_path):
    small = {
        "period_days": [240, 240],
        "min_gap_days": 2,
        "sessions_per_day": [2000, 2500],
        "products": [150, 150],
        "warmup_days": 40,
        "shocks": [12, 12],
        "channels": [2, 3],
        "countries": [2, 3],
    }
    raw = _raw(11, **small)
    m1 = generate(raw, tmp_path / "a")
    m2 = generate(raw, tmp_path / "b")
    assert m1["files"] == m2["files"]
    truth = json.loads((tmp_path / "a" / "truth" / "events.json").read_text())
    shocks = [e for e in truth if not e["expected"]]
    assert len(shocks) == 12
    start = dt.date.fromisoformat(m1["period"]["start"])
    assert min(dt.date.fromisoformat(e["start"]) for e in shocks) >= start + dt.timedelta(days=40)
