"""False alerts per watched dimension (scorecard ``false_alerts.by_dimension``): the knob's unit,
per series per 90 days, over each dimension's series alone. Over every series a detector can hold
the knob while the whole store's few series run at several times it (the isolation forest: 0.39
on shock-free TRAIN worlds, 0.27 on the test stores, sixtieth session): the per-dimension figure
is how that shows."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from analytics.context import Incident
from evaluation.pipeline import false_alert_rates
from evaluation.scoring import build_scorecard, metrics

SETTINGS = {"mode": "strict", "early_days": 1, "late_days": 3, "min_effect": 0.03,
            "dimensions": ["overall", "channel", "country"]}
EVENT = {"event_id": "E01", "type": "site_outage", "expected": False, "start": "2025-03-01",
         "end": "2025-03-01", "scope": {}, "effects": {"sessions": -0.3},
         "primary_kpi": "sessions", "primary_direction": "down"}


def inc(day: str, dimension: str, segment: str, detector: str = "a") -> Incident:
    t = pd.Timestamp(day)
    return Incident(incident_id=f"I-{day}-{dimension}-{segment}", kpi="sessions",
                    dimension=dimension, segment=segment, start=t, end=t, direction="down",
                    detectors=[detector], level="single", confidence=1.0, severity="high",
                    peak_score=9.0, actual=1.0, expected=2.0, magnitude_pct=-50.0)


def detections(days: int, series: dict[str, list[tuple[str, str]]]) -> pd.DataFrame:
    """One row per (day, detector, series): ``series`` maps a detector to its (dimension,
    segment) series of the KPI sessions."""
    dates = pd.date_range("2025-01-01", periods=days, freq="D")
    rows = [(d, name, "sessions", dim, seg)
            for name, ss in series.items() for dim, seg in ss for d in dates]
    return pd.DataFrame(rows, columns=["date", "detector", "kpi", "dimension", "segment"])


def test_metrics_count_false_positives_per_dimension_with_zeros_for_quiet_ones():
    from evaluation.scoring import Event

    events = [Event.from_dict(EVENT)]
    incs = [inc("2025-03-01", "overall", "all"),          # the event's: a true incident
            inc("2025-05-01", "overall", "all"),          # false, on the store
            inc("2025-05-02", "country", "DE"), inc("2025-06-02", "country", "FR"),
            inc("2025-06-09", "channel_country", "email|DE")]   # a dimension not listed
    m, _ = metrics(incs, events, "strict", 1, 3, 0.03, ["overall", "channel", "country"])
    assert m["fp"] == 4
    assert m["fp_by_dimension"] == {"overall": 1, "channel": 0, "country": 2,
                                    "channel_country": 1}
    assert sum(m["fp_by_dimension"].values()) == m["fp"]


def test_rates_per_dimension_divide_by_that_dimensions_series():
    """180 days; detector a watches the store (1 series), 2 channels and 3 countries, the oracle
    (b) only the store. a's false positives: 2 on the store, 1 on a channel, none on countries."""
    days = 180
    a_series = [("overall", "all"), ("channel", "email"), ("channel", "seo"),
                ("country", "DE"), ("country", "FR"), ("country", "IT")]
    det = detections(days, {"a": a_series, "b": [("overall", "all")]})
    a_incs = [inc("2025-03-01", "overall", "all"), inc("2025-05-01", "overall", "all"),
              inc("2025-05-20", "overall", "all"), inc("2025-06-01", "channel", "seo")]
    card = build_scorecard([EVENT], {"a": a_incs, "b": []}, a_incs[1:], {}, SETTINGS,
                           oracle_name=None)
    fa = false_alert_rates(SimpleNamespace(detections=det), card, ["a"])
    spans = days / 90.0
    assert fa["detectors"]["a"] == pytest.approx(3 / (6 * spans), abs=1e-4)   # over every series
    by = fa["by_dimension"]
    assert list(by) == ["overall", "channel", "country"]
    assert by["overall"]["detectors"]["a"] == pytest.approx(2 / (1 * spans), abs=1e-4)
    assert by["channel"]["detectors"]["a"] == pytest.approx(1 / (2 * spans), abs=1e-4)
    assert by["country"]["detectors"]["a"] == 0.0
    assert by["overall"]["detectors"]["b"] == 0.0
    assert by["channel"]["detectors"]["b"] is None        # b watches no channel series
    assert by["channel"]["series"] == {"a": 2, "b": 0}
    # the consensus (a's three false incidents here) over the voters' series of each dimension
    assert by["overall"]["consensus"] == pytest.approx(2 / (1 * spans), abs=1e-4)
    assert by["country"]["consensus"] == 0.0
    # the per-dimension counts add up to the whole: series-weighted rates give the overall rate
    total = sum(v["detectors"]["a"] * v["series"]["a"] for v in by.values())
    assert total / 6 == pytest.approx(fa["detectors"]["a"], abs=1e-3)
    # no detections at all: the same layout, nothing in it
    empty = false_alert_rates(SimpleNamespace(detections=det.iloc[:0]), card, ["a"])
    assert empty["by_dimension"] == {} and empty["consensus"] is None


def test_by_dimension_rates_are_metrics_an_experiment_can_gate_and_rank_downwards():
    from analytics.config import DEFAULT_CONFIG_PATH
    from experiments.config import higher_is_better
    from experiments.gate import _detector_of
    from experiments.metric_names import _judges_consensus, check_metric_names, producible_metrics
    from shocklab.configio import load_yaml

    raw = load_yaml(DEFAULT_CONFIG_PATH)
    names = producible_metrics(raw)
    assert "false_alerts.by_dimension.overall.detectors.isolation_forest" in names
    assert "false_alerts.by_dimension.country.consensus" in names
    # accepted by the name check an experiment runs before any cell (InputError otherwise)
    check_metric_names([("false_alerts.by_dimension.overall.consensus", "gate")], [raw],
                       [("false_alerts.by_dimension.overall.detectors.isolation_forest",
                         "metrics")])
    assert not higher_is_better("false_alerts.by_dimension.overall.detectors.isolation_forest")
    assert not higher_is_better("false_alerts.by_dimension.channel.consensus")
    assert not higher_is_better("detectors.isolation_forest.fp_by_dimension.overall")
    assert not higher_is_better("consensus.fp_by_dimension.country")
    assert "consensus.fp_by_dimension.country" in names
    assert _detector_of("false_alerts.by_dimension.overall.detectors.isolation_forest") \
        == "isolation_forest"
    assert _judges_consensus("false_alerts.by_dimension.overall.consensus")
    assert not _judges_consensus("false_alerts.by_dimension.overall.detectors.oracle")
