"""bench/selection_frontier.py: corroboration, event-level scores, the features a rule could
read, and the cross-validated selector (hand-made incident lists; no analysis run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import selection_frontier as sf  # noqa: E402


def _inc(dim, seg, kpi, start, end=None, *, peak=4.0, ev=(), det=("count_likelihood",),
         direction="down"):
    return {"dim": dim, "seg": seg, "kpi": kpi, "dir": direction, "start": start,
            "end": end or start, "det": list(det), "peak": peak, "mag": -10.0, "ev": list(ev)}


def test_corroboration_counts_other_series_starting_within_a_day():
    a = _inc("channel", "email", "orders", "2025-03-10")
    pool = [a,
            _inc("channel", "email", "orders", "2025-03-11", direction="up"),  # same series
            _inc("channel", "email", "revenue", "2025-03-09"),               # other KPI, -1 day
            _inc("overall", "all", "orders", "2025-03-11"),                  # +1 day
            _inc("overall", "all", "orders", "2025-03-10"),                  # same series again
            _inc("country", "DE", "orders", "2025-03-12")]                   # 2 days: too far
    assert sf.corroboration([a], pool) == [2]
    assert sf.corroboration([a], pool, days=2) == [3]


def test_event_scores_count_incidents_for_precision_and_events_for_recall():
    incs = [_inc("overall", "all", "orders", "2025-01-01", ev=["E1"]),
            _inc("channel", "a", "orders", "2025-01-01", ev=["E1"]),
            _inc("channel", "b", "orders", "2025-02-01"),
            _inc("channel", "c", "orders", "2025-03-01", ev=["E2"])]
    f1, p, r, fp = sf.event_scores(incs, ["E1", "E2", "E3", "E4"])
    assert (p, r, fp) == (0.75, 0.5, 1)
    assert f1 == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert sf.event_scores([], ["E1"]) == (0.0, 0.0, 0.0, 0)


def test_features_take_each_voters_peak_on_the_same_series_and_direction():
    k1 = [_inc("channel", "email", "orders", "2025-03-10", "2025-03-12", peak=5.0, ev=["E1"],
               det=("count_likelihood", "rolling_zscore"))]
    world = {"events": ["E1"], "consensus": [], "k1": k1, "voters": {
        "count_likelihood": [_inc("channel", "email", "orders", "2025-03-11", peak=5.0),
                             _inc("channel", "email", "orders", "2025-04-01", peak=9.0)],
        "rolling_zscore": [_inc("channel", "email", "orders", "2025-03-12", peak=3.5),
                           _inc("channel", "email", "orders", "2025-03-10", peak=7.0,
                                direction="up")]}}
    row = sf.features(world).iloc[0]
    assert row["peak_count_likelihood"] == 5.0   # the April incident does not overlap
    assert row["peak_rolling_zscore"] == 3.5     # the rising one is another direction
    assert (row["votes"], row["days"], row["corroboration"], row["up"]) == (2, 3, 0, 0.0)
    assert row["kpi"] == sf.KPIS.index("orders") and row["dim"] == sf.DIMS.index("channel")
    assert bool(row["true"])


def _worlds(n=10, seed=1):
    """Worlds where true incidents have high peaks and false ones low: a selector must find it."""
    g = np.random.default_rng(seed)
    worlds = {}
    for w in range(n):
        k1, events = [], []
        for j in range(30):
            true = j % 3 == 0
            ev = [f"E{j}"] if true else []
            events += ev
            k1.append(_inc("channel", f"c{j}", "orders", f"2025-{1 + j % 12:02d}-{1 + j:02d}",
                           peak=float(g.uniform(6, 9) if true else g.uniform(3, 4)), ev=ev))
        worlds[f"s{w}"] = {"events": events, "consensus": k1[:5], "k1": k1,
                           "voters": {"count_likelihood": k1}}
    return worlds


def test_selector_cross_validated_finds_a_separable_rule(capsys):
    worlds = _worlds()
    prob = sf.selector(worlds)
    assert sorted(prob) == sorted(worlds)
    for w, d in worlds.items():   # every world scored by a model that never saw it
        assert len(prob[w]) == len(d["k1"])
    out = sf.report(worlds, cuts=(0.5,))
    assert out["s"]["selector 0.5"][:3] == [1.0, 1.0, 1.0]
    # the "consensus" here keeps 5 of 30 incidents: 2 true, 2 of 10 events found
    assert out["s"]["consensus"][1] == pytest.approx(0.4)
    assert "pool s (10 worlds)" in capsys.readouterr().out


def test_load_round_trip_and_bad_files(tmp_path, capsys):
    from shocklab.errors import InputError

    f = tmp_path / "sel.json"
    f.write_text(json.dumps(_worlds()))
    assert sf.main(["--load", str(f)]) == 0
    assert "selector 0.5" in capsys.readouterr().out
    for text, says in ((None, "cannot read it"), ("[]", "not a selection_frontier"),
                       ('{"s1": {"events": []}}', "lacks")):
        g = tmp_path / "bad.json"
        if text is not None:
            g.write_text(text)
        elif g.exists():
            g.unlink()
        with pytest.raises(InputError, match=says):
            sf.main(["--load", str(g)])
