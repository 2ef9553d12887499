"""``gate.max_drop``: how much worse than the baseline a compared metric may get beyond the
seed-to-seed noise, in the metric's own units: one number for every compared metric, or one per
metric (``default`` for the others, else 0), why a value cannot judge a metric, and a
per-metric ``--set`` over one number (README, "Experiments"; config.py loads and validates the
file with it, gate.py reads it)."""

from __future__ import annotations

from typing import Any

import yaml

from shocklab.configio import safe_load


def is_fraction(metric: str) -> bool:
    """A recall, precision or F1 (``consensus.recall``, ``oracle_equal_fp.oracle_f1``,
    ``consensus.impact_weighted_recall`` …): a figure between 0 and 1. ``recall_vs_oracle`` and
    ``ratio`` are not (a voter can out-score the oracle in one world)."""
    leaf = metric.rsplit(".", 1)[-1]
    return leaf == "oracle_recall_at_equal_fp" or any(
        leaf == k or leaf.endswith("_" + k) for k in ("recall", "precision", "f1"))


DROP_DEFAULT = "default"  # gate.max_drop as a mapping: the tolerance of metrics it does not name


def drop_for(max_drop: float | dict[str, float], metric: str) -> float:
    """The tolerated worsening of ``metric`` (``gate.max_drop``: one number, or per metric with
    an optional ``default``, else 0)."""
    if isinstance(max_drop, dict):
        return float(max_drop.get(metric, max_drop.get(DROP_DEFAULT, 0.0)))
    return float(max_drop)


def max_drop_problem(max_drop: float | dict[str, float], metrics: list[str],
                     keys: bool = True) -> str | None:
    """Why ``gate.max_drop`` cannot judge the metrics a baseline comparison reads (None when it
    can): a change of a recall, precision or F1 lies between −1 and 1, so from 1 on no drop
    exceeds it and every comparison passed (``max_drop: 5`` for 0.05, exit 0 on any
    regression); delays (days) and alert rates have no such bound. As a mapping, a key that
    names no compared metric (a typo would leave that metric at the default) is refused too
    (``keys``: the file's own check; a ``--gate`` on the command line compares more)."""
    if keys and isinstance(max_drop, dict):
        unknown = [k for k in max_drop if k != DROP_DEFAULT and k not in metrics]
        if unknown:
            return (f"gate.max_drop: {unknown[0]!r} is not a compared metric (compared: "
                    f"{', '.join(dict.fromkeys(metrics)) or 'none'}; '{DROP_DEFAULT}' sets the "
                    "others)")
    for m in dict.fromkeys(metrics):
        drop = drop_for(max_drop, m)
        if drop >= 1 and is_fraction(m):
            where = (f"gate.max_drop.{m}" if isinstance(max_drop, dict) and m in max_drop
                     else "gate.max_drop" + (f".{DROP_DEFAULT}" if isinstance(max_drop, dict)
                                             else ""))
            return (f"{where}: {drop:g} is a tolerated drop in the metric's own units, and {m} "
                    f"is between 0 and 1: no drop of it can exceed {drop:g}, so the --baseline "
                    "comparison could never fail; give a fraction below 1 (five points: 0.05)")
    return None


def drops_as_mapping(data: Any, overrides: list[str] | None) -> tuple[Any, list[str]]:
    """``gate.max_drop`` of one number as ``{default: number}`` — the file's and a whole-value
    ``--set gate.max_drop=0.03`` — when an override sets one metric's tolerance (``--set
    gate.max_drop.consensus.recall=0.02``): the same tolerance for every other metric, where
    the override stopped at the number ("gate.max_drop is not a mapping or list") on
    config/experiments/ci_gate.yaml (``max_drop: 0.0``)."""
    items = list(overrides or [])
    if not any(o.partition("=")[0].strip().startswith("gate.max_drop.") for o in items):
        return data, items

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    for k, o in enumerate(items):
        key, _, raw = o.partition("=")
        if key.strip() == "gate.max_drop":
            try:
                value = safe_load(raw)
            except (yaml.YAMLError, ValueError, RecursionError):  # as apply_overrides reads it
                continue
            if number(value):
                items[k] = f"gate.max_drop={{{DROP_DEFAULT}: {raw.strip()}}}"
    gate = data.get("gate") if isinstance(data, dict) else None
    drop = gate.get("max_drop") if isinstance(gate, dict) else None
    if number(drop):
        data = {**data, "gate": {**gate, "max_drop": {DROP_DEFAULT: drop}}}
    return data, items
