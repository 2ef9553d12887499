"""Records -> ``results.parquet`` (one row per cell) and ``leaderboard.csv`` (one row per setting).

Columns of results: ``cell_id, setting_id, seed, status, error, overrides`` (canonical JSON),
``param:<name>`` per swept parameter, one column per metric (the scorecard's numeric leaves by
dotted path, e.g. ``consensus.recall``), then timings, ``cache_hit`` and ``worker`` (host:pid).
Those describe how a run went, not what it found; they are the only columns that may differ between
executors (``IDENTITY_EXCLUDED``).

Intervals are percentile bootstraps of the mean over seeds. Each (setting, metric) draws from its
own generator, seeded from the experiment's bootstrap seed and the names, so an interval does not
change when other settings or metrics are added.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shocklab.seeding import rng as named_rng

from .config import Bootstrap, higher_is_better
from .grid import Setting

META_COLUMNS = ["cell_id", "setting_id", "seed", "status", "error", "overrides"]
TIMING_COLUMNS = [
    "time_generate_s",
    "time_analyse_s",
    "time_total_s",
    "time_cpu_s",
    "cache_hit",
    "worker",
]
IDENTITY_EXCLUDED = TIMING_COLUMNS
PARAM_PREFIX = "param:"


def _param_column(values: list[Any]) -> pd.Series:
    """Integers -> int64, numbers -> float, strings -> str, anything else (lists, mixtures) -> JSON
    text."""
    present = [v for v in values if v is not None]
    if present and len(present) == len(values) and all(type(v) is int for v in present):
        return pd.Series(values, dtype="int64")
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")
    if present and all(isinstance(v, str) for v in present):
        return pd.Series(values, dtype="object")
    return pd.Series(
        [None if v is None else json.dumps(v, sort_keys=True) for v in values], dtype="object"
    )


def results_frame(records: Sequence[dict[str, Any]], settings: dict[str, Setting]) -> pd.DataFrame:
    """One row per record, sorted by (setting_id, seed)."""
    records = sorted(records, key=lambda r: (r["setting_id"], int(r["seed"])))
    param_names: list[str] = []
    for s in settings.values():
        param_names += [k for k in s.params if k not in param_names]
    metric_names = sorted({m for r in records for m in r.get("metrics", {})})
    cols: dict[str, Any] = {
        "cell_id": [r["cell_id"] for r in records],
        "setting_id": [r["setting_id"] for r in records],
        "seed": pd.Series([int(r["seed"]) for r in records], dtype="int64"),
        "status": [r["status"] for r in records],
        "error": [r.get("error") for r in records],
        "overrides": [json.dumps(settings[r["setting_id"]].overrides, sort_keys=True)
                      if r["setting_id"] in settings else None for r in records],
    }
    for name in param_names:
        cols[PARAM_PREFIX + name] = _param_column(
            [settings[r["setting_id"]].params.get(name) if r["setting_id"] in settings else None
             for r in records])
    for m in metric_names:
        cols[m] = pd.Series(
            [r.get("metrics", {}).get(m, math.nan) for r in records], dtype="float64"
        )
    for col, key in zip(
        TIMING_COLUMNS[:4], ("generate_s", "analyse_s", "total_s", "cpu_s"), strict=True
    ):
        cols[col] = pd.Series(
            [r.get("timings", {}).get(key, math.nan) for r in records], dtype="float64"
        )
    cols["cache_hit"] = pd.Series([r.get("cache_hit") for r in records], dtype="boolean")
    cols["worker"] = pd.Series([r.get("worker") for r in records], dtype="object")
    return pd.DataFrame(cols)


def by_seed(results: pd.DataFrame) -> pd.DataFrame:
    """Rows in (setting, seed) order: bootstrap draws index the values, and float sums depend
    on order, so every statistic is taken over this order whatever order the rows came in."""
    return results.sort_values(["setting_id", "seed"], kind="mergesort")


def param_columns(results: pd.DataFrame) -> list[str]:
    return [c for c in results.columns if c.startswith(PARAM_PREFIX)]


def metric_columns(results: pd.DataFrame) -> list[str]:
    skip = set(META_COLUMNS) | set(TIMING_COLUMNS)
    return [c for c in results.columns if c not in skip and not c.startswith(PARAM_PREFIX)]


# Indices drawn at a time (16 MiB): all resamples at once took resamples × seeds of them and as
# many values, 16 GB at the schema's bounds (100,000 resamples of 10,000 seeds) for each setting
# and metric.
DRAW_CHUNK = 1 << 21


def resampled_means(x: np.ndarray, gen: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of ``resamples`` bootstrap resamples of ``x``, drawn in chunks of rows: the
    generator yields the same stream whatever the chunk, and each row's mean is its own, so
    the means are those of one (resamples, n) draw, bit for bit."""
    means = np.empty(resamples)
    rows = max(1, DRAW_CHUNK // max(1, x.size))
    for start in range(0, resamples, rows):
        stop = min(resamples, start + rows)
        means[start:stop] = x[gen.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    return means


def bootstrap_interval(values: np.ndarray, boot: Bootstrap, name: str) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    if x.size == 1 or np.all(x == x[0]):
        return float(x[0]), float(x[0])
    means = resampled_means(x, named_rng(boot.seed, f"bootstrap/{name}"), boot.resamples)
    alpha = (1.0 - boot.confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarise(values: np.ndarray, boot: Bootstrap, name: str) -> dict[str, float]:
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    lo, hi = bootstrap_interval(x, boot, name)
    return {
        "mean": float(x.mean()) if x.size else math.nan,
        "std": float(x.std(ddof=1)) if x.size > 1 else (0.0 if x.size else math.nan),
        "ci_low": lo, "ci_high": hi, "n": int(x.size),
    }


def leaderboard(results: pd.DataFrame, metrics: Sequence[str], rank_by: str, boot: Bootstrap
                ) -> pd.DataFrame:
    """Per setting: params, seeds ok/failed, and mean/std/CI of each metric; ranked by ``rank_by``
    (descending, or ascending for delays, false positives and false-alert rates:
    ``config.higher_is_better``). A metric absent from every row gives NaN columns."""
    params = param_columns(results)
    rows = []
    for sid, group in by_seed(results).groupby("setting_id", sort=True):
        ok = group[group["status"] == "ok"]
        row: dict[str, Any] = {"setting_id": sid}
        for p in params:
            row[p.removeprefix(PARAM_PREFIX)] = group[p].iloc[0]
        row["n_seeds"] = int(len(ok))
        row["n_failed"] = int(len(group) - len(ok))
        for m in metrics:
            values = ok[m].to_numpy(dtype=float) if m in ok.columns else np.array([])
            for stat, v in summarise(values, boot, f"{sid}/{m}").items():
                if stat != "n":
                    row[f"{m}.{stat}"] = v
        rows.append(row)
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    key = f"{rank_by}.mean"
    board = board.sort_values([key, "setting_id"], ascending=[not higher_is_better(rank_by), True],
                              na_position="last", kind="mergesort").reset_index(drop=True)
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board


def summary_table(results: pd.DataFrame, boot: Bootstrap) -> pd.DataFrame:
    """Long table over every metric of the scorecard (per detector, consensus level, event type,
    scope kind …): one row per (setting, metric) with mean, std, bootstrap interval and the number
    of seeds that had a value. Used for the test seeds of a train/test split."""
    rows = []
    metrics = metric_columns(results)
    for sid, group in by_seed(results).groupby("setting_id", sort=True):
        ok = group[group["status"] == "ok"]
        for m in metrics:
            values = ok[m].to_numpy(dtype=float)
            if np.isnan(values).all():
                continue
            rows.append({"setting_id": sid, "metric": m, **summarise(values, boot, f"{sid}/{m}")})
    return pd.DataFrame(
        rows, columns=["setting_id", "metric", "mean", "std", "ci_low", "ci_high", "n"]
    )
