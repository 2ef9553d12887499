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
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shocklab.catalogue import product_watched
from shocklab.errors import InputError

from .cache import CheckFn, GenerateFn, KeyFn, WorldCache, manifest_names_it, simulator_stamp

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
    mode = (scorecard.get("headline") or {}).get("mode") or (scorecard.get("settings") or {}).get(
        "mode"
    )
    out: dict[str, float] = {}
    for key, value in scorecard.items():
        if key in ("schema", "settings", "event_detail", "failed_detectors"):
            continue
        out.update(flatten_metrics(value, "" if key == mode else key) if isinstance(value, dict)
                   else flatten_metrics({key: value}))
    if "failed_detectors" in scorecard:
        out["failed_detectors.count"] = float(len(scorecard["failed_detectors"] or {}))
    return out


SCORING_STAGES = ("kpis", "detect", "oracle", "consensus", "score")

# Per-process memos. A worker runs many cells, and the cells of one world (same scenario and seed,
# other analysis settings) share its tables and KPIs, and every detector whose config the sweep does
# not vary gives the same output again. Both memos are keyed by content (the data manifest's hash;
# the detector's class, name, config and a hash of its whole input), so a hit can only return what
# the computation would: results do not depend on which worker ran which cell.
_WORLDS: OrderedDict[str, tuple[Any, Any, Any, Any]] = (
    OrderedDict()
)  # key -> (DataSet, Truth, kpis_daily, tables)
_DETECTIONS: OrderedDict[str, tuple[Any, list[str]]] = (
    OrderedDict()
)  # key -> (detections, warnings_)
_CORES: OrderedDict[str, tuple[Any, dict[str, Any]]] = (
    OrderedDict()
)  # key -> (raw-score frame, instance attributes the core set)
_CALIBRATED: OrderedDict[str, Any] = OrderedDict()  # core key | column | ppd -> calibrated scores
# world key | the settings detector_input reads -> the DetectorInput (the watched series): built
# once per world and settings instead of once per cell, and its hash (``_input_digest``, kept on
# it) with it
_INPUTS: OrderedDict[str, Any] = OrderedDict()
MAX_WORLDS = 4
MAX_INPUTS = 4
# sections of the analysis config that analytics.pipeline.detector_input never reads: everything
# else (kpis, dimensions, slice settings, product settings, seed, sensitivity …) keys _INPUTS
NOT_INPUT = frozenset({"detectors", "consensus", "scoring", "output", "customers", "insights"})
MAX_DETECTIONS = 64
MAX_CORES = 32
MAX_CALIBRATED = 64
# Settings only ``Detector._finish`` reads (the cut on the calibrated scale): a cell that changes
# only these reuses the detector's raw scores (``_detect_core``) and re-runs calibration and the
# threshold. A detector whose core reads them says so with ``core_reads_threshold`` (a class
# attribute, or a property of its config: prophet_residual's ``mask_flagged``).
FINISH_ONLY = frozenset({"threshold", "sensitivity"})


def _remember(memo: OrderedDict, key: str, value: Any, limit: int) -> None:
    memo[key] = value
    memo.move_to_end(key)
    while len(memo) > limit:
        memo.popitem(last=False)


def _world_key(data_dir: Path) -> str | None:
    """Identity of a generated world: its path and manifest (which lists every file's sha256)."""
    import hashlib

    manifest = Path(data_dir) / "manifest.json"
    if not manifest.is_file():
        return None
    return f"{Path(data_dir).resolve()}:{hashlib.sha256(manifest.read_bytes()).hexdigest()}"


def _input_digest(inp: Any) -> str:
    """sha256 of everything a detector may look at: every field of ``DetectorInput`` (frames by
    content, the rest by repr), so a field added later can never be left out of the key."""
    import dataclasses
    import hashlib

    import numpy as np
    import pandas as pd

    h = hashlib.sha256()
    for f in dataclasses.fields(inp):
        value = getattr(inp, f.name)
        h.update(f.name.encode())
        if isinstance(value, pd.DataFrame):
            h.update(repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
            h.update(pd.util.hash_pandas_object(value, index=True).to_numpy().tobytes())
        elif isinstance(value, np.ndarray):   # repr would shorten a long array with "..."
            h.update(repr((value.dtype.str, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif isinstance(value, dict):   # e.g. counts: name -> frame or array
            for k in sorted(value, key=str):
                v = value[k]
                h.update(str(k).encode())
                if isinstance(v, (pd.DataFrame, pd.Series)):
                    h.update(pd.util.hash_pandas_object(v, index=True).to_numpy().tobytes())
                elif isinstance(v, np.ndarray):
                    h.update(np.ascontiguousarray(v).tobytes())
                else:
                    h.update(repr(v).encode())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def _without_products(inp: Any) -> Any:
    """``inp`` as a detector that leaves product series out sees it (the same object when it has
    none): what it would have been without ``product`` in ``dimensions``."""
    import dataclasses

    series = getattr(inp, "series", None)
    if series is None:
        return inp
    theirs = product_watched(series["dimension"], series["kpi"],
                             getattr(inp, "price_indexes", False))
    if (getattr(inp, "exposure", None) is None and not theirs.any()
            and not getattr(inp, "price_indexes", False)):
        return inp
    # price_indexes only says what the (removed) price series are: left True it kept the key of
    # a cell with products apart from the same cell without them
    return dataclasses.replace(inp, series=series[~theirs], exposure=None, price_indexes=False)


def _memoized(cls: type) -> type:
    """``cls`` whose ``detect`` answers from ``_DETECTIONS`` when class, name, config and input
    match."""

    class Memoized(cls):  # type: ignore[misc, valid-type]
        def _memo_key(self, settings: str, inp: Any) -> str:
            from analytics.detectors.base import sees_products

            sees = sees_products(cls, self.config)
            attr = "_shocklab_digest" if sees else "_shocklab_digest_main"
            digest = getattr(inp, attr, None)
            if digest is None:   # one hash per input, shared by the detectors of a cell
                # a detector that never sees product series is keyed on the input without them,
                # so a cell that only adds products reuses the others' detections
                digest = _input_digest(inp if sees else _without_products(inp))
                try:
                    setattr(inp, attr, digest)
                except AttributeError:
                    pass
            return "|".join((cls.__module__, cls.__qualname__, str(self.name), settings, digest))

        def detect(self, inp):  # noqa: ANN001, ANN202
            key = self._memo_key(self.config.model_dump_json(), inp)
            hit = _DETECTIONS.get(key)
            if hit is not None:
                _DETECTIONS.move_to_end(key)
                self.warnings_ = list(hit[1])
                return hit[0].copy()
            out = super().detect(inp)
            _remember(
                _DETECTIONS, key, (out.copy(), list(getattr(self, "warnings_", []))), MAX_DETECTIONS
            )
            return out

        def _detect_core(self, series, inp):  # noqa: ANN001, ANN202
            self._shocklab_core = None   # set once this core's output is known (calibrate)
            if getattr(self, "core_reads_threshold", False):   # per instance: a setting may say
                return super()._detect_core(series, inp)
            key = self._memo_key(self.config.model_dump_json(exclude=set(FINISH_ONLY)), inp)
            hit = _CORES.get(key)
            if hit is not None:
                _CORES.move_to_end(key)
                self.__dict__.update(hit[1])   # e.g. warnings_, what _finish reads of the core
                out = hit[0].copy()
            else:
                before = dict(vars(self))
                out = super()._detect_core(series, inp)
                state = {k: v for k, v in vars(self).items()
                         if k not in before or before[k] is not v}
                _remember(_CORES, key, (out.copy(), state), MAX_CORES)
            self._shocklab_core = key
            return out

        def calibrate(self, series, raw, ppd=1, column="score"):  # noqa: ANN001, ANN202
            # _finish calibrates the core's own columns: the same core key, column and periods
            # per day give the same raw scores under the same calibration settings (in the key)
            core = getattr(self, "_shocklab_core", None)
            if core is None:
                return super().calibrate(series, raw, ppd, column)
            key = f"{core}|{column}|{ppd}"
            hit = _CALIBRATED.get(key)
            if hit is not None:
                _CALIBRATED.move_to_end(key)
                return hit.copy()
            out = super().calibrate(series, raw, ppd, column)
            _remember(_CALIBRATED, key, out.copy(), MAX_CALIBRATED)
            return out

    Memoized.__name__ = Memoized.__qualname__ = cls.__name__
    return Memoized


@contextmanager
def _memoized_detectors() -> Iterator[None]:
    """Swap the detector registry and the oracle's implementations for memoized subclasses while
    one cell runs (then restore)."""
    from analytics.detectors import REGISTRY
    from evaluation.oracle import IMPLEMENTATIONS  # the oracle: same world, same output

    saved = [(reg, dict(reg)) for reg in (REGISTRY, IMPLEMENTATIONS)]
    for reg, classes in saved:
        reg.update({t: _memoized(c) for t, c in classes.items()})
    try:
        yield
    finally:
        for reg, classes in saved:
            reg.clear()
            reg.update(classes)


def analyse_for_scorecard(data_dir: Path, raw_config: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline's ``analyse`` limited to the stages the scorecard needs (a sweep reads nothing
    of customers, insights or plots), with the world's tables and KPIs and unchanged detectors'
    outputs reused across the cells a process runs. All stages, no reuse, if the stage names
    ever change."""
    import tempfile

    from analytics.config import config_from_raw, load_analysis_config
    from analytics.context import RunContext
    from analytics.loading import load_data_dir
    from evaluation.pipeline import STAGES, analyse, run  # analysis stages + scoring against truth
    from evaluation.truth import attach, find_truth
    from shocklab.hashing import json_ready

    names = [s[0] for s in STAGES if s[0] in SCORING_STAGES]
    if len(names) != len(SCORING_STAGES) or names[0] != "kpis":
        return analyse(data_dir, raw_config)
    cfg = (
        config_from_raw(raw_config, "analysis config")
        if raw_config is not None
        else load_analysis_config(None)
    )
    key = _world_key(data_dir)
    world = _WORLDS.get(key) if key else None
    with tempfile.TemporaryDirectory(prefix="shocklab-analyse-") as tmp:
        if world is None:
            ds, truth = load_data_dir(data_dir), find_truth(data_dir)
            ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
            run(ctx, [s for s in STAGES if s[0] == "kpis"])
            if key:
                _remember(
                    _WORLDS, key, (ds, truth, ctx.kpis_daily.copy(), ctx.kpi_tables), MAX_WORLDS
                )
        else:
            _WORLDS.move_to_end(key)
            ds, truth, kpis_daily, tables = world
            ctx = attach(RunContext(config=cfg, data=ds, out_dir=Path(tmp)), truth)
            ctx.kpis_daily, ctx.kpi_tables = kpis_daily.copy(), tables
        if key:
            from analytics.pipeline import detector_input

            ikey = f"{key}|{cfg.model_dump_json(exclude=set(NOT_INPUT))}"
            inp = _INPUTS.get(ikey)
            if inp is None:
                inp = detector_input(ctx)
            _remember(_INPUTS, ikey, inp, MAX_INPUTS)
            ctx.watched = inp   # stage_detect takes it as it is
        with _memoized_detectors():
            run(ctx, [s for s in STAGES if s[0] in SCORING_STAGES and s[0] != "kpis"])
    return json_ready(ctx.scorecard) if ctx.scorecard is not None else {}


def _default_backend() -> tuple[GenerateFn, AnalyseFn, KeyFn]:
    from simulation.api import generate, scenario_hash

    return generate, analyse_for_scorecard, scenario_hash


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_cell(
    task: CellTask,
    *,
    generate: GenerateFn | None = None,
    analyse: AnalyseFn | None = None,
    scenario_hash: KeyFn | None = None,
    check_world: CheckFn | None = None,
) -> dict[str, Any]:
    """Run one cell; return its record (``metrics`` flattened, ``timings`` in seconds).

    ``generate``/``analyse``/``scenario_hash`` default to the simulator and the pipeline; tests
    pass cheap module-level fakes (via ``functools.partial``, which pickles to worker processes).
    ``check_world``: whether a cached world may be reused (default with the simulator's
    ``generate``: its manifest names the hash it is stored under, ``cache.manifest_names_it``).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {
        "cell_id": task.cell_id,
        "setting_id": task.setting_id,
        "seed": task.seed,
        "config_hash": task.config_hash,
        "status": "ok",
        "error": None,
        "traceback": None,
        "cache_hit": None,
        "metrics": {},
        "worker": _worker_name(),
        "timings": {
            "generate_s": math.nan,
            "analyse_s": math.nan,
            "total_s": math.nan,
            "cpu_s": math.nan,
        },
    }
    try:
        if generate is None or analyse is None or scenario_hash is None:
            d_gen, d_ana, d_key = _default_backend()
            if generate is None and check_world is None:
                check_world = manifest_names_it
            generate, analyse, scenario_hash = (
                generate or d_gen,
                analyse or d_ana,
                scenario_hash or d_key,
            )
        cache = WorldCache(task.cache_dir, generate, scenario_hash, fmt=task.data_format,
                           check=check_world,
                           stamp=simulator_stamp() if check_world is manifest_names_it else None)
        t = time.perf_counter()
        data_dir, hit = cache.get(task.scenario, source=f"experiment:{task.cell_id}")
        record["cache_hit"] = hit
        record["timings"]["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            scorecard = analyse(Path(data_dir), task.analysis)
        except InputError:
            if not hit:
                raise
            # a cached world that no longer reads (edited, cut short): generated once more
            t = time.perf_counter()
            data_dir = cache.regenerate(task.scenario, source=f"experiment:{task.cell_id}")
            record["cache_hit"] = False
            record["timings"]["generate_s"] += time.perf_counter() - t
            t = time.perf_counter()
            scorecard = analyse(Path(data_dir), task.analysis)
        record["timings"]["analyse_s"] = time.perf_counter() - t
        record["metrics"] = scorecard_metrics(scorecard)
    # recorded, not raised: one bad cell must not stop a sweep. SystemExit too (a library's
    # exit() in a cell): it ended the whole run with its code, 0 included, nothing written
    except (Exception, SystemExit) as exc:
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
        "cell_id": task.cell_id,
        "setting_id": task.setting_id,
        "seed": task.seed,
        "config_hash": task.config_hash,
        "status": "error",
        "error": _one_line(exc),
        "traceback": None,
        "cache_hit": None,
        "metrics": {},
        "worker": None,
        "timings": {
            "generate_s": math.nan,
            "analyse_s": math.nan,
            "total_s": math.nan,
            "cpu_s": math.nan,
        },
    }
