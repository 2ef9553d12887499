"""The truth of a simulated data directory, typed: events (``shocklab.truth.TruthEvent``), the
shock-free baseline with the simulator's noise model, and the counterfactual twin's KPIs.

This is the oracle's and the scorers' only door to ``truth/``; analytics never imports it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from shocklab.errors import InputError
from shocklab.truth import TruthEvent

__all__ = ["Truth", "TruthEvent", "load_truth"]


@dataclass(frozen=True)
class Truth:
    events: list[TruthEvent]
    baseline: pd.DataFrame | None          # truth/baseline_daily: date, dimension, segment, KPIs, *_var
    counterfactual: pd.DataFrame | None    # truth/counterfactual_daily
    noise: dict[str, Any] | None           # truth/noise_model.json

    @property
    def unexpected(self) -> list[TruthEvent]:
        return [e for e in self.events if not e.expected]


def parse_events(raw: Any, source: str) -> list[TruthEvent]:
    if not isinstance(raw, list):
        raise InputError(f"{source}: expected a list of events")
    out = []
    for i, ev in enumerate(raw):
        try:
            out.append(TruthEvent.model_validate(ev))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise InputError(f"{source}: event [{i}].{loc}: {first['msg']}") from None
    return out


def load_truth(data_dir: str | Path) -> Truth:
    """Read ``<data_dir>/truth``; InputError when it is missing or malformed."""
    base = Path(data_dir) / "truth"
    if not (base / "events.json").is_file():
        raise InputError(f"{base}: no truth/events.json (not a simulated data directory)")
    events = parse_events(json.loads((base / "events.json").read_text(encoding="utf-8")), str(base / "events.json"))

    def table(name: str) -> pd.DataFrame | None:
        p = base / f"{name}.csv"
        return pd.read_csv(p, keep_default_na=False, na_values=[""]) if p.is_file() else None

    noise = base / "noise_model.json"
    return Truth(events=events, baseline=table("baseline_daily"), counterfactual=table("counterfactual_daily"),
                 noise=json.loads(noise.read_text(encoding="utf-8")) if noise.is_file() else None)
