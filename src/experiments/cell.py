"""One cell of a sweep — generate (cached), analyse, score — as a plain function a worker runs.

Kept import-light on purpose: a worker process imports this module, the simulator and the
pipeline, nothing else of the experiment machinery (no dask, pandas tables of results, plots).
A cell never raises for an ordinary error: it returns a record with ``status: "error"`` so the
sweep goes on and the failure is written down.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import GenerateFn, KeyFn, WorldCache

AnalyseFn = Callable[..., dict[str, Any]]   # (data_dir, raw_config) -> scorecard


@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs, picklable and free of shared state."""

    cell_id: str
    setting_id: str
    seed: int
    scenario: dict[str, Any]            # resolved scenario mapping, ``seed`` set
    analysis: dict[str, Any] | None     # resolved analysis mapping (None: pipeline default)
    config_hash: str                    # identity of (scenario, analysis); resume checks it
    cache_dir: str
    data_format: str = "parquet"


def flatten_metrics(scorecard: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested scorecard as ``{"consensus.recall": 0.9, …}``.

    Booleans and lists are skipped; ``None`` (e.g. the delay of a detector that caught nothing)
    becomes NaN so the column still exists.
    """
    out: dict[str, float] = {}
    if isinstance(scorecard, dict):
        for key, value in scorecard.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                out.update(flatten_metrics(value, path))
            elif value is None:
                out[path] = math.nan
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                out[path] = float(value)
    return out


def scorecard_metrics(scorecard: dict[str, Any]) -> dict[str, float]:
    """The scorecard's numeric leaves, with the headline scoring mode lifted to the top.

    ``strict.consensus.recall`` becomes ``consensus.recall`` when strict is the headline mode
    (the other mode keeps its prefix: ``lenient.consensus.recall``), so gates and rankings read
    ``consensus.recall``, ``detectors.rolling_zscore.f1``, ``detectors.oracle.recall``. The
    settings echo and per-event detail are left out; ``failed_detectors.count`` counts detectors
    that crashed inside the pipeline.
    """
    mode = (scorecard.get("headline") or {}).get("mode") or (scorecard.get("settings") or {}).get("mode")
    out: dict[str, float] = {}
    for key, value in scorecard.items():
        if key in ("schema", "settings", "event_detail", "failed_detectors"):
            continue
        out.update(flatten_metrics(value, "" if key == mode else key) if isinstance(value, dict)
                   else flatten_metrics({key: value}))
    if "failed_detectors" in scorecard:
        out["failed_detectors.count"] = float(len(scorecard["failed_detectors"] or {}))
    return out


SCORING_STAGES = ("kpis", "detect", "consensus", "score")


def analyse_for_scorecard(data_dir: Path, raw_config: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline's ``analyse`` limited to the stages the scorecard needs: a sweep reads
    nothing of customers, insights or plots. All stages if those names ever change."""
    from evaluation.pipeline import STAGES, analyse

    stages = [s for s in STAGES if s[0] in SCORING_STAGES]
    return analyse(data_dir, raw_config, stages=stages if len(stages) == len(SCORING_STAGES) else None)


def _default_backend() -> tuple[GenerateFn, AnalyseFn, KeyFn]:
    from simulation.api import generate, scenario_hash

    return generate, analyse_for_scorecard, scenario_hash


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_cell(task: CellTask, *, generate: GenerateFn | None = None, analyse: AnalyseFn | None = None,
             scenario_hash: KeyFn | None = None) -> dict[str, Any]:
    """Run one cell; return its record (``metrics`` flattened, ``timings`` in seconds).

    ``generate``/``analyse``/``scenario_hash`` default to the simulator and the pipeline; tests
    pass cheap module-level fakes (via ``functools.partial``, which pickles to worker processes).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {
        "cell_id": task.cell_id, "setting_id": task.setting_id, "seed": task.seed,
        "config_hash": task.config_hash, "status": "ok", "error": None, "traceback": None,
        "cache_hit": None, "metrics": {}, "worker": _worker_name(),
        "timings": {"generate_s": math.nan, "analyse_s": math.nan, "total_s": math.nan, "cpu_s": math.nan},
    }
    try:
        if generate is None or analyse is None or scenario_hash is None:
            d_gen, d_ana, d_key = _default_backend()
            generate, analyse, scenario_hash = generate or d_gen, analyse or d_ana, scenario_hash or d_key
        cache = WorldCache(task.cache_dir, generate, scenario_hash, fmt=task.data_format)
        t = time.perf_counter()
        data_dir, hit = cache.get(task.scenario, source=f"experiment:{task.cell_id}")
        record["cache_hit"] = hit
        record["timings"]["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        scorecard = analyse(Path(data_dir), task.analysis)
        record["timings"]["analyse_s"] = time.perf_counter() - t
        record["metrics"] = scorecard_metrics(scorecard)
    except Exception as exc:  # recorded, not raised: one bad cell must not stop a sweep
        record["status"] = "error"
        record["error"] = _one_line(exc)
        record["traceback"] = "".join(traceback.format_exception(exc)[-6:])
    record["timings"]["total_s"] = time.perf_counter() - t0
    record["timings"]["cpu_s"] = time.process_time() - c0  # this process's CPU: load-independent
    return record


def _worker_name() -> str:
    """host:pid of the process that ran the cell (diagnostics only, not part of the result)."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def error_record(task: CellTask, exc: BaseException) -> dict[str, Any]:
    """The record of a cell whose worker failed outside ``run_cell`` (died, unpicklable …)."""
    return {
        "cell_id": task.cell_id, "setting_id": task.setting_id, "seed": task.seed,
        "config_hash": task.config_hash, "status": "error", "error": _one_line(exc),
        "traceback": None, "cache_hit": None, "metrics": {}, "worker": None,
        "timings": {"generate_s": math.nan, "analyse_s": math.nan, "total_s": math.nan, "cpu_s": math.nan},
    }
