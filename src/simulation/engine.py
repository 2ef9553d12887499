"""The generative model, orchestrated: setup → events → the actual world → a counterfactual twin
for every unexpected event → the truth they imply.

One concern per module, in dependency order (no module imports one below it in this list):
``draw`` (the fixed noise every twin shares, levers, traffic → orders → baskets → customers),
``schedule`` (explicit and seeded random events), ``baseline`` (expected-KPI tables), ``twins``
(twin runs and truth records), and this module, which ties them into a ``World``. The names
other code imports from here (``Run``, ``Setup``, ``build_setup``, ``levers_for``,
``resolve_events``, ``simulate_run``, ``STATUS``) are re-exported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from shocklab.truth import TruthEvent

from . import customers as cu
from .baseline import baseline_daily, daily_table, expected_order_value
from .coltable import ColTable
from .config import SimulationConfig
from .draw import STATUS, Run, Setup, build_setup, levers_for, simulate_run
from .events import EVENT_TYPES, EventBase
from .schedule import resolve_events, sample_random_events
from .twins import planned_truth, simulate_twins, truth_records, unexpected_truth


@dataclass
class World:
    cfg: SimulationConfig
    setup: Setup
    events: list[EventBase]
    actual: Run
    twin: Run
    baseline_daily: ColTable        # ``.to_pandas()`` for a DataFrame
    counterfactual_daily: ColTable
    truth: list[TruthEvent]
    purchase_rate: np.ndarray
    runs: int = field(default=2)

    @cached_property
    def truth_events(self) -> list[dict[str, Any]]:
        """The truth records (sorted by start, then id) as truth/events.json stores them."""
        return truth_records(self.truth)


@dataclass
class Drawn:
    """What exists once the actual world is drawn, before the twins' truth: everything the
    observable tables and truth/customers depend on (truth/baseline_daily comes next,
    ``Sink.baseline``)."""

    cfg: SimulationConfig
    setup: Setup
    events: list[EventBase]
    actual: Run
    purchase_rate: np.ndarray


class Sink(Protocol):
    """Who takes the world's pieces as soon as they exist (``simulation.io.DataDirWriter``
    writes each on its threads while the rest is drawn)."""

    def orders(self, cfg: SimulationConfig, run: Run) -> None:
        """The actual orders and lines, before customers are attached."""

    def observed(self, drawn: Drawn) -> None:
        """The actual run with its customers; the twins are still being drawn."""

    def baseline(self, table: ColTable) -> None:
        """truth/baseline_daily (it depends on the setup and the events only): computed once the
        observable tables are being written, so the actual world — on the way to the
        largest file, orders — is drawn first."""


def simulate(cfg: SimulationConfig, sink: Sink | None = None) -> World:
    """The world of ``cfg``, handing its pieces to ``sink`` as they are drawn."""
    setup = build_setup(cfg)
    D = setup.shape[0]
    events = resolve_events(cfg)
    levers = levers_for(setup, events)
    actual = simulate_run(
        setup, levers, with_customers=True,
        on_orders=None if sink is None else (lambda run: sink.orders(cfg, run)))
    rate = cu.purchase_rate_per_year(actual.customers, D, actual.o_customer[~actual.o_first],
                                     len(cfg.countries))
    drawn = Drawn(cfg=cfg, setup=setup, events=events, actual=actual, purchase_rate=rate)
    if sink is not None:
        sink.observed(drawn)
    # after the observable tables: this thread would otherwise wait for orders' encoding
    base = baseline_daily(setup, events)
    if sink is not None:
        sink.baseline(base)
    # The twins are drawn here, on this thread, while the sink's threads write the tables:
    # drawing them on a second thread at the same time as the actual world was slower on this
    # 2-core machine under load (GIL hand-offs, memory bandwidth; bench_1m 5.6 vs 4.8 s,
    # one_year_4ch 1.61 vs 1.46 s at load ~6.5) and cost ~270 MB more on bench_1m.
    runs = simulate_twins(setup, events, actual=(actual, levers))
    truth, runs = unexpected_truth(setup, events, actual, runs)
    truth = sorted(truth + planned_truth(setup), key=lambda t: (t.start, t.event_id))
    twin0 = runs[frozenset()]
    return World(cfg=cfg, setup=setup, events=events, actual=actual, twin=twin0,
                 baseline_daily=base,
                 counterfactual_daily=daily_table(setup, twin0), truth=truth,
                 purchase_rate=rate, runs=1 + len(runs))


__all__ = ["EVENT_TYPES", "STATUS", "Drawn", "Run", "Setup", "World", "build_setup",
           "expected_order_value", "levers_for", "resolve_events", "sample_random_events",
           "simulate", "simulate_run"]
