"""Typed ground truth of one simulated world: the record of one injected event, as the simulator
writes it to truth/events.json and evaluation reads it back. Shared by both sides (the simulator
validates every record it writes; evaluation parses with the same model), so the format is
defined once. ``Truth`` bundles one data set's truth for the evaluation stages. Only
``simulation`` and ``evaluation`` use them; analytics names the ``Truth`` type on its run context
and never reads it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:   # only annotations: simulation imports this module without pandas
    import pandas as pd


class SliceEffects(BaseModel):
    """The realized effect of an event on one watched slice that contains its scope without being
    it (``TruthEvent.container_effects``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dimension: str = Field(min_length=1)
    segment: str = Field(min_length=1)
    effects: dict[str, float] = Field(default_factory=dict)


class TruthEvent(BaseModel):
    """One injected event (``expected``: a planned calendar occurrence) and its realized effect.

    effects : relative change of each overall KPI over the window, actual vs counterfactual twin.
    scope_effects : the same inside the event's scoped slice (empty for planned events).
    container_effects : the same on each slice between the scope and the store: a channel x
        country scope's channel and country, a product scope's category (empty otherwise). A
        container's change is not the scope's: counts move by the scope's share, and a ratio
        (conversion, AOV) can move the other way by mix.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1)
    type: str
    expected: bool
    start: dt.date
    end: dt.date
    name: str | None = None                      # planned events
    profile: Literal["step", "spike", "ramp", "permanent"] = "step"
    persistent: bool = False
    scope: dict[str, Any] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    effects: dict[str, float] = Field(default_factory=dict)
    scope_effects: dict[str, float] = Field(default_factory=dict)
    container_effects: list[SliceEffects] = Field(default_factory=list)
    primary_kpi: str | None = None
    primary_direction: Literal["up", "down"] | None = None

    @property
    def scope_kind(self) -> str:
        return scope_kind(self.scope)


def scope_kind(scope: dict[str, Any]) -> str:
    """overall | channel | country | channel_country | category | product (scorecard by_scope)."""
    if "product" in scope:
        return "product"
    if "category" in scope:
        return "category"
    if "channel" in scope and "country" in scope:
        return "channel_country"
    return "channel" if "channel" in scope else "country" if "country" in scope else "overall"


@dataclass(frozen=True)
class Truth:
    """Everything only the simulator (or a label file) knows about a data set: handed to the
    evaluation stages through ``RunContext.truth``; no analytics module reads it
    (tests/test_truth_wall.py). Built by ``evaluation.truth`` (``find_truth``, ``load_truth``) or
    from labelled windows (``evaluation.labels``).

    events : the truth/events.json records as written (dicts the scorer parses), or labelled
        windows; ``typed_events()`` validates them with ``TruthEvent``.
    """

    events: list[dict[str, Any]]
    baseline: pd.DataFrame | None = None        # truth/baseline_daily (the oracle's null)
    counterfactual: pd.DataFrame | None = None  # truth/counterfactual_daily
    customers: pd.DataFrame | None = None       # truth/customers.csv
    noise: dict[str, Any] | None = None         # truth/noise_model.json
    product_null: pd.DataFrame | None = None    # truth/product_null.csv (product series' null)
    order_values: pd.DataFrame | None = None    # truth/order_value_null.csv (one order's value)
    path: Path | None = None                    # the data directory (truth/config.json is there)
    # labelled windows left out of the scoring, each {event_id, start, end, why}: outside the
    # data or wholly in a gap of it (``evaluation.labels``; run.json input_checks)
    left_out: list[dict[str, Any]] = field(default_factory=list)

    def typed_events(self) -> list[TruthEvent]:
        return [TruthEvent.model_validate(e) for e in self.events]

    @property
    def unexpected(self) -> list[TruthEvent]:
        return [e for e in self.typed_events() if not e.expected]
