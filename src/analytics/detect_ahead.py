"""Detectors run beside the detection chain: the stage scheduler's customers worker, its branch
done, runs them while this process runs the other detectors and the oracle (``analytics.schedule``,
the ``defer`` / ``settle`` of ``stage_detect``).

``defer`` names them (``DEFERRED_TYPES``: the isolation forest, ~0.9 s of the chain, and
scikit-learn's import then left to the worker) in ``ctx.ahead`` before the fork and returns one
job per detector; ``stage_detect`` leaves each a place (its status, a name among its frames,
``ctx.detections`` unset until then). A job builds the watched series (``ctx.watched`` when this
process has them, else ``pipeline.detector_input`` from the KPIs handed over) and runs the
detector as ``stage_detect`` would (``pipeline.detect_one``), its frame into ``ctx.ahead``, its
status into ``ctx.detector_status`` (merged into its place at the join). The job runs once,
wherever it is claimed first: the worker, or this process when its chain gets there first.
``settle``, after the join and before the first stage that reads every detector's result
(``needs_deferred``: consensus), assembles ``ctx.detections`` as in order: the frames in the
config's order, then what the stages in between appended (the oracle's rows). Same bytes as
in order (tests/analytics/test_schedule.py, tests/analytics/test_detect_ahead.py).
"""

from __future__ import annotations

import functools

import pandas as pd

from .context import RunContext

DEFERRED_TYPES = ("isolation_forest",)
DEFERRED, PIECES = "detect.deferred", "detect.pieces"  # ctx.ahead: what defer noted, detect left


def defer(ctx: RunContext) -> list[tuple[str, object]]:
    """The detectors ``stage_detect`` leaves to these jobs (enabled, of ``DEFERRED_TYPES``, not
    made for product series alone), as (job name, job); noted in ``ctx.ahead``."""
    from .detectors import REGISTRY
    from .pipeline import _product_only

    cfg = ctx.config
    names = [n for n, d in cfg.detectors.items()
             if d.enabled and d.type in DEFERRED_TYPES and not REGISTRY[d.type].needs_truth
             and not _product_only(cfg, n)]
    if names:
        ctx.ahead[DEFERRED] = tuple(names)
    return [(f"detect.{n}", functools.partial(run, name=n)) for n in names]


def run(ctx: RunContext, name: str) -> None:
    """One deferred detector on the watched series: its frame (None: failed) into ``ctx.ahead``."""
    from .pipeline import detect_one, detector_input

    inp = ctx.watched if ctx.watched is not None else detector_input(ctx)
    ctx.ahead[f"detect.{name}"] = detect_one(ctx, name, inp)


def settle(ctx: RunContext) -> None:
    """``ctx.detections`` as in order, once every deferred detector's frame is in ``ctx.ahead``:
    ``stage_detect``'s frames, then the rows appended since (the oracle's), as its stage
    would have appended them."""
    from .pipeline import assemble_detections

    ctx.ahead.pop(DEFERRED, None)
    pieces = ctx.ahead.pop(PIECES, None)
    if pieces is None:  # stage_detect did not run, or ran every detector itself
        return
    missing = [p for p in pieces if isinstance(p, str) and f"detect.{p}" not in ctx.ahead]
    if missing:
        raise RuntimeError(f"deferred detector(s) {', '.join(missing)} never ran")
    appended = ctx.detections
    assemble_detections(ctx, [f for f in (ctx.ahead.pop(f"detect.{p}") if isinstance(p, str)
                                          else p for p in pieces) if f is not None])
    if appended is not None:
        have = ctx.detections is not None and len(ctx.detections)
        ctx.detections = (pd.concat([ctx.detections, appended], ignore_index=True) if have
                          else appended)


__all__ = ["DEFERRED", "DEFERRED_TYPES", "PIECES", "defer", "run", "settle"]
