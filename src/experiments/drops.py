"""``gate.max_drop``: how much worse than the baseline a compared metric may get beyond the
seed-to-seed noise, in the metric's own units: one number for every compared metric, or one per
metric (``default`` for the others, else 0), and why a value cannot judge a metric (README,
"Experiments"; config.py validates the file with it, gate.py reads it)."""

from __future__ import annotations


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
