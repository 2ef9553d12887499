"""The metric names a cell can put in ``results.parquet``, known from the analysis config alone.

A cell's metrics are the numeric leaves of its scorecard (``cell.scorecard_metrics``). Their names
follow from the config: the detectors that run (the oracle too: experiment worlds have truth),
the k-of-n levels of the voters, the scoring mode (the other mode keeps its prefix) and the
false-alert rates. Only the ``by_type.<event type>`` / ``by_scope.<scope kind>`` figures depend
on the world: every registered shock type and scope kind is accepted here, and whether a world
holds such an event is known only after it ran (a gate on a type no world has then fails with
"has no value on any seed"). The names are taken from the real scorecard builder, run on one
synthetic event of each type and scope kind, so they cannot drift from what a cell writes.
"""

from __future__ import annotations

import difflib
from types import SimpleNamespace
from typing import Any

import pandas as pd

from shocklab.errors import InputError

# scope kinds of ``shocklab.truth.scope_kind`` (scorecard by_scope)
_SCOPES: tuple[dict[str, str], ...] = (
    {}, {"channel": "c"}, {"country": "x"}, {"channel": "c", "country": "x"}, {"category": "k"},
    {"product": "p"},
)


def producible_metrics(raw_analysis: dict[str, Any] | None) -> set[str]:
    """Every metric name a real cell with this (resolved) analysis mapping can produce."""
    from analytics.config import config_from_raw
    from analytics.detectors import REGISTRY
    from analytics.pipeline import level_voters
    from evaluation.pipeline import false_alert_rates
    from evaluation.scoring import build_scorecard
    from simulation.events import EVENT_TYPES

    from .cell import scorecard_metrics
    from .results import TIMING_COLUMNS

    cfg = config_from_raw(raw_analysis, "analysis config")
    ran = [n for n, d in cfg.detectors.items()
           if d.enabled and (not REGISTRY[d.type].needs_truth or cfg.scoring.include_oracle)]
    vs = [n for n in cfg.voting_detectors() if n in ran]
    lv = level_voters(cfg, vs)   # as stage_consensus counts them: product watchers are no level
    n_levels = (len({cfg.detectors[n].type for n in lv}) if cfg.consensus.count_by == "type"
                else len(lv))
    oracle = next((n for n in ran if cfg.detectors[n].type == "oracle"), None)
    events = [
        {"event_id": f"{t}-{i}", "type": t, "start": "2025-01-01", "end": "2025-01-02",
         "scope": scope, "effects": {"orders": -0.5}, "primary_kpi": "orders"}
        for t in sorted(EVENT_TYPES) for i, scope in enumerate(_SCOPES)
    ]
    settings = {**cfg.scoring.model_dump(exclude={"include_oracle"}), "data_start": None,
                "dimensions": list(cfg.dimensions), "voters": vs}
    card = build_scorecard(events, {n: [] for n in ran}, [], {f"k{k}": [] for k in
                                                                range(1, n_levels + 1)},
                           settings, oracle_name=oracle, failed={})
    det = pd.DataFrame({"date": ["2025-01-01"] * len(ran), "detector": ran, "kpi": "orders",
                        "dimension": "overall", "segment": "all"})
    card["false_alerts"] = false_alert_rates(SimpleNamespace(detections=det), card, vs)
    card["failed_detectors"] = {}
    return set(scorecard_metrics(card)) | {c for c in TIMING_COLUMNS if c.startswith("time_")}


def check_metric_names(wanted: list[tuple[str, str]], analyses: list[dict[str, Any] | None],
                       shown: list[tuple[str, str]] = ()) -> None:
    """InputError naming the first wanted ``(metric, where it was asked for)`` that no cell of the
    experiment can produce (the union over its distinct analysis mappings), with the closest
    known name. ``wanted`` are gated (a consensus figure needs a voting detector); ``shown``
    (``metrics:``, the curves' recall columns) are only drawn and ranked."""
    if not wanted and not shown:
        return
    known: set[str] = set()
    seen: list[Any] = []
    for raw in analyses:
        if raw in seen:
            continue
        seen.append(raw)
        known |= producible_metrics(raw)
    judged = [(m, w) for m, w in wanted if _judges_consensus(m)]
    if judged and not any(_has_voters(raw) for raw in seen):
        metric, where = judged[0]   # an empty consensus "failed" the gate: exit 1, not bad input
        raise InputError(f"{where}: '{metric}' judges the consensus, and the analysis enables no "
                         "voting detector (the oracle never votes)")
    for metric, where in [*wanted, *shown]:
        if metric in known:
            continue
        off = _disabled_detector(metric, seen)
        if off is not None:   # "did you mean detectors.oracle.recall?" sent users elsewhere
            raise InputError(f"{where}: metric '{metric}' reads the detector {off!r}, which this "
                             f"experiment's analysis switches off (enable it: --set "
                             f"analysis_overrides.detectors.{off}.enabled=true)")
        close = difflib.get_close_matches(metric, sorted(known), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]}?" if close else
                "metrics are scorecard paths such as consensus.recall, detectors.<name>.f1, "
                "false_alerts.consensus, lenient.consensus.recall")
        raise InputError(f"{where}: metric '{metric}' is not one this experiment's cells "
                         f"produce ({hint})")


def _disabled_detector(metric: str, analyses: list[Any]) -> str | None:
    """The detector a ``detectors.<name>.…`` metric names when every analysis of the experiment
    configures it switched off (None otherwise)."""
    parts = metric.removeprefix("lenient.").split(".")
    if len(parts) < 3 or parts[0] != "detectors":
        return None
    from analytics.config import config_from_raw

    name = parts[1]
    found = False
    for raw in analyses:
        det = config_from_raw(raw, "analysis config").detectors.get(name)
        if det is None:
            return None
        if det.enabled:
            return None
        found = True
    return name if found else None


def _judges_consensus(metric: str) -> bool:
    """A figure of the consensus (or compared with it: the oracle at the consensus' budget)."""
    parts = metric.removeprefix("lenient.").split(".")
    return parts[0] in ("consensus", "consensus_levels", "oracle_equal_fp", "headline") \
        or parts[:2] == ["false_alerts", "consensus"] \
        or (parts[:2] == ["false_alerts", "by_dimension"] and parts[3:4] == ["consensus"])


def _has_voters(raw_analysis: dict[str, Any] | None) -> bool:
    from analytics.config import config_from_raw

    return bool(config_from_raw(raw_analysis, "analysis config").voting_detectors())
