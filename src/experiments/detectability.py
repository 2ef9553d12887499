"""Detectability: recall against shock size, and the minimum detectable effect (MDE).

For each target event type, each duration and each magnitude, the scenario's ``events`` list is
replaced by the target's event templates with that magnitude and duration written in (other
unexpected events removed unless ``keep_scenario_events``), so recall in those worlds is the
recall for that type and size. Across seeds it is a detection rate with a bootstrap interval.

MDE of a detector (or the consensus, or the oracle) for a type and duration: the weakest
magnitude from which recall stays at or above ``min_recall`` for every stronger magnitude swept —
requiring it to stay there keeps a lucky weak point from passing as the limit. NaN when no swept
magnitude qualifies.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd

from shocklab.configio import apply_overrides

from .config import Bootstrap, Detectability, override_text
from .grid import Setting, make_setting
from .results import PARAM_PREFIX, by_seed, summarise

MAG, DUR, TYPE = "magnitude", "duration_days", "event_type"


def detectability_settings(det: Detectability, scenario: dict[str, Any]) -> list[Setting]:
    settings = []
    for target in det.targets:
        for duration in target.durations or [None]:
            for magnitude in target.magnitudes:
                events = []
                for template in target.events:
                    sets = [override_text(target.magnitude_key, magnitude)]
                    if duration is not None:
                        sets.append(override_text(target.duration_key, duration))
                    events.append(apply_overrides(copy.deepcopy(template), sets))
                if det.keep_scenario_events:
                    events = list(scenario.get("events") or []) + events
                params = {TYPE: target.event_type, DUR: duration, MAG: magnitude}
                settings.append(make_setting({"scenario.events": events}, params))
    return settings


def recall_columns(results: pd.DataFrame, det: Detectability) -> list[str]:
    if det.recall_metrics is not None:
        return list(det.recall_metrics)
    return [c for c in results.columns
            if c == "consensus.recall" or (c.startswith("detectors.") and c.count(".") == 2
                                           and c.endswith(".recall"))]


def curves(results: pd.DataFrame, det: Detectability, boot: Bootstrap) -> pd.DataFrame:
    """Long table: event_type, duration_days, entity (recall column), magnitude, n, recall mean,
    std and bootstrap interval — one row per point of each curve, in sweep order."""
    ok = by_seed(results[results["status"] == "ok"])
    order = {(t.event_type, m): i for t in det.targets for i, m in enumerate(t.magnitudes)}
    rows = []
    keys = [PARAM_PREFIX + TYPE, PARAM_PREFIX + DUR, PARAM_PREFIX + MAG]
    for col in recall_columns(results, det):
        if col not in ok.columns:
            continue
        for (etype, dur, mag), group in ok.groupby(keys, sort=False, dropna=False):
            s = summarise(group[col].to_numpy(dtype=float), boot,
                          f"detect/{etype}/{dur}/{mag}/{col}")
            rows.append(
                {
                    TYPE: etype,
                    DUR: dur,
                    "entity": col.removesuffix(".recall").removeprefix("detectors."),
                    MAG: mag,
                    "order": order.get((etype, mag), 0),
                    "n_seeds": s["n"],
                    "recall": s["mean"],
                    "recall_std": s["std"],
                    "recall_ci_low": s["ci_low"],
                    "recall_ci_high": s["ci_high"],
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out = out.sort_values([TYPE, DUR, "entity", "order"], kind="mergesort").drop(columns="order")
    return out.reset_index(drop=True)


def minimum_detectable_effect(curve: pd.DataFrame, min_recall: float) -> pd.DataFrame:
    """One row per (event_type, duration, entity): the MDE (NaN if never reached) and the recall
    at the strongest magnitude swept."""
    rows = []
    if curve.empty:
        return pd.DataFrame(columns=[TYPE, DUR, "entity", "mde", "recall_at_mde", "max_recall"])
    for (etype, dur, entity), g in curve.groupby([TYPE, DUR, "entity"], sort=True, dropna=False):
        recall = g["recall"].to_numpy(dtype=float)
        ok = np.nan_to_num(recall, nan=0.0) >= min_recall
        # suffix-all: ok from index i to the end (sweep order = weakest first)
        stays = np.flip(np.logical_and.accumulate(np.flip(ok)))
        idx = int(np.argmax(stays)) if stays.any() else None
        rows.append(
            {
                TYPE: etype,
                DUR: dur,
                "entity": entity,
                "mde": float(g[MAG].iloc[idx]) if idx is not None else math.nan,
                "recall_at_mde": float(recall[idx]) if idx is not None else math.nan,
                "max_recall": float(np.nanmax(recall)) if np.any(~np.isnan(recall)) else math.nan,
            }
        )
    return pd.DataFrame(rows)


# what an event's template fixes in a detectability sweep, never its size (the event's ``type``
# is the target's ``event_type``)
NOT_MAGNITUDES = {"type": "type", "id": "id", "start": "start date", "profile": "profile",
                  "scope": "scope"}


def swept_key_problem(event_type: str, key: str, dur: str, durations: bool) -> str | None:
    """Why a target's ``magnitude_key`` (``key``) is not the shock's size, else None. At
    ``duration_key`` (``dur``) the durations were written over the magnitudes (``duration_days``
    with ``durations: [1]``: magnitude 2.5 was never simulated, and mde.csv gave 2.5 as the
    minimum detectable effect, exit 0); at a key that says which event it is, where or when
    (``NOT_MAGNITUDES``) a number is no size (the world's check then named a date or a type, not
    the experiment's key)."""
    from simulation.events import EVENT_TYPES

    cls = EVENT_TYPES.get(event_type)   # an unknown type: the world's check names it
    give = "give the event's magnitude field" + (
        f" ({cls.magnitude_field} for {event_type})" if cls is not None else "")
    if key == dur or key.startswith(f"{dur}.") or dur.startswith(f"{key}."):
        if durations:
            return (f"magnitude_key: {key} is set by durations: (duration_key {dur}), the swept "
                    f"durations written over the magnitudes; {give}")
        return (f"magnitude_key: {key} is the events' duration (duration_key), which durations: "
                f"sweeps; {give}")
    head = key.split(".", 1)[0]
    if head in NOT_MAGNITUDES:
        return f"magnitude_key: {key} is the event's {NOT_MAGNITUDES[head]}, not its size; {give}"
    return None
