"""The analysis run as a list of stages over one ``RunContext``.

``STAGES`` lists the analysis stages, in order: kpis → detect → consensus → customers → insights →
report. Each stage is ``fn(ctx) -> None``, reads what earlier stages put on the context and adds
its own part; ``run`` times them into ``ctx.timings``. The later stages import their modules on
first use, so a sweep that runs only the detection stages stays light.

Scoring against the truth is not here: ``evaluation.pipeline`` inserts its stages (score,
insight_scoring) into this list. Analytics never imports ``evaluation`` (tests/test_truth_wall.py).

Stages write nothing: they fill the context, and ``analytics.outputs.write_outputs`` writes the run
directory at the end. ``analyse`` is the one-call entry: load, run, optionally write, return the
scorecard dict ({} when nothing scored; ``evaluation.pipeline.analyse`` scores).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shocklab.atomic import atomic_dir
from shocklab.catalogue import (
    PAIR_DIMENSION,
    PRICE_KPI,
    PRODUCT_DIMENSION,
    PRODUCT_KPIS,
    product_watched,
)
from shocklab.errors import InputError
from shocklab.filenames import safe_name
from shocklab.hashing import json_ready, sha256_file, sha256_json

from . import consensus as cons
from . import detect_ahead
from .config import AnalysisConfig, config_from_raw, load_analysis_config
from .context import DataSet, DetectorStatus, RunContext
from .detectors import REGISTRY, Detector, DetectorInput
from .detectors.base import OUTPUT_COLUMNS, sees_products
from .detectors.calibrate import periods_per_day
from .kpis import compute_kpis_daily, summary_tables, to_long
from .outputs import incidents_json, write_outputs  # the one writer of the run directory
from .watch import pair_kpis, price_index, product_grid, watched_products

log = logging.getLogger("shocklab.analysis")

Stage = Callable[[RunContext], None]


# ---------------------------------------------------------------- stages
def stage_kpis(ctx: RunContext) -> None:
    if ctx.data.source == "kpis":  # external series arrive as a ready kpis_daily table
        ctx.kpis_daily = ctx.data.tables["kpis_daily"]
        return
    ctx.kpis_daily = compute_kpis_daily(ctx.data)
    ctx.kpi_tables = summary_tables(ctx.data, ctx.kpis_daily)


def analysed_kpis(ctx: RunContext) -> tuple[list[str], list[str]]:
    """(KPIs, dimensions) the detectors run on."""
    cfg: AnalysisConfig = ctx.config
    # an external file: every KPI column and every slice the file carries (overall first)
    if ctx.data.source == "kpis":
        return ([c for c in ctx.kpis_daily.columns if c not in ("date", "dimension", "segment")],
                list(dict.fromkeys(ctx.kpis_daily["dimension"].astype(str))))
    dims = [d for d in cfg.dimensions if (ctx.kpis_daily["dimension"] == d).any()]
    return list(cfg.kpis), dims


def _product_prices(ctx: RunContext) -> bool:
    """Whether each product's own price is watched (config ``product_prices``; auto: not on a
    --transactions file, whose prices are the ones paid, discounts and tiers included)."""
    mode = ctx.config.product_prices
    if mode == "auto" and ctx.data.source == "transactions":
        log.info("products: their own prices are not watched on a --transactions file (paid "
                 "prices move with every discount; product_prices: on watches them); the "
                 "categories' and the store's list-price indexes are")
    return mode == "on" or (mode == "auto" and ctx.data.source != "transactions")


def detector_input(ctx: RunContext) -> DetectorInput:
    """What the detectors look at: the watched series (KPIs x slices), calendar and counts. The
    evaluation's oracle stage scores the same series (it adds the truth baseline itself)."""
    cfg: AnalysisConfig = ctx.config
    kpis, dims = analysed_kpis(ctx)
    kd = ctx.kpis_daily
    if PAIR_DIMENSION in cfg.dimensions and ctx.data.source != "kpis":  # channel x country cells
        pairs = pair_kpis(ctx.data.tables, pd.DatetimeIndex(kd["date"].unique()),
                          cfg.pair_min_share)
        if pairs is not None:
            kd, dims = pd.concat([kd, pairs], ignore_index=True), [*dims, PAIR_DIMENSION]
    series = to_long(kd, kpis, dims)
    for dim, ks in (cfg.slice_kpis.items() if ctx.data.source != "kpis" else ()):  # fewer on slices
        series = series[(series["dimension"] != dim) | series["kpi"].isin(ks)]
    exposure, indexes = None, False
    if PRODUCT_DIMENSION in cfg.dimensions and ctx.data.source != "kpis":  # single products
        days = pd.DatetimeIndex(kd["date"].unique())
        every = product_grid(ctx.data.tables, days)   # once: the watched ones and the index
        watched = watched_products(every, cfg.product_min_orders, len(days))
        if watched is not None:   # rows only for the watched products
            wide, exposure = watched.frames()
            prices = _product_prices(ctx)
            own = [k for k in PRODUCT_KPIS if k != PRICE_KPI or prices]
            series = pd.concat([series, to_long(wide, own, [PRODUCT_DIMENSION])],
                               ignore_index=True)
            del wide
        idx = price_index(ctx.data.tables["products"], every) if every is not None else None
        del every, watched
        if idx is not None:  # the list-price index of each category and of the store
            series = pd.concat([series, to_long(idx, [PRICE_KPI], ["category", "overall"])],
                               ignore_index=True)
            indexes = True
    series = series.reset_index(drop=True)
    counts = [c for c in ("orders", "sessions") if c in ctx.kpis_daily.columns]
    inp = DetectorInput(
        series=series,
        seed=cfg.seed,
        periods_per_day=periods_per_day(series["date"]),
        slice_threshold_add=cfg.slice_threshold_add,
        sensitivity=cfg.sensitivity,
        counts=kd[["date", "dimension", "segment", *counts]] if counts else None,
        exposure=exposure,
        price_indexes=indexes,
    )
    if ctx.data.tables.get("marketing_calendar") is not None:
        inp.calendar = ctx.data.tables["marketing_calendar"]
    return inp


def run_detector(ctx: RunContext, det: Detector, inp: DetectorInput) -> pd.DataFrame | None:
    """``det.detect(inp)``, its status into ``ctx.detector_status``; None when it failed (a
    detector failing at run time must not sink the run; bad input still raises)."""
    t0 = time.perf_counter()
    try:
        out = det.detect(inp)
    except InputError:
        raise
    except Exception as exc:
        msg = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        log.warning("detector %s failed: %s", det.name, msg)
        ctx.detector_status[det.name] = {"ok": False, "error": msg,
                                         "seconds": round(time.perf_counter() - t0, 3)}
        return None
    ctx.detector_status[det.name] = {
        "ok": True,
        "error": None,
        "mode": det.mode,
        "votes": type(det).votes,
        "warnings": list(getattr(det, "warnings_", [])),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return out


def skipped_status(reason: str) -> DetectorStatus:
    """The status of a detector that did not run (``reason`` goes to run.json)."""
    return {"ok": False, "skipped": True, "error": reason, "seconds": 0.0}


def stage_detect(ctx: RunContext) -> None:
    cfg: AnalysisConfig = ctx.config
    inp = ctx.watched = ctx.watched if ctx.watched is not None else detector_input(ctx)
    elsewhere = ctx.ahead.get(detect_ahead.DEFERRED, ())  # run beside the chain
    frames: list[pd.DataFrame | str] = []
    for name, dcfg in cfg.detectors.items():
        if not dcfg.enabled:
            continue
        if REGISTRY[dcfg.type].needs_truth:  # the oracle reads truth: evaluation's stage runs it
            ctx.detector_status[name] = skipped_status("needs truth: run by the evaluation stage")
            continue
        if name in elsewhere:  # its place in the status and the detections, filled when merged
            ctx.detector_status[name] = skipped_status("runs beside the detection chain")
            frames.append(name)
            continue
        out = detect_one(ctx, name, inp)
        if out is not None:
            frames.append(out)
    if any(isinstance(f, str) for f in frames):  # detect_ahead.settle assembles them later
        ctx.ahead[detect_ahead.PIECES], ctx.detections = frames, None
    else:
        assemble_detections(ctx, frames)  # type: ignore[arg-type]


def detect_one(ctx: RunContext, name: str, inp: DetectorInput) -> pd.DataFrame | None:
    """``run_detector`` of detector ``name`` (None: failed, or made for product series and none
    is watched: not run), a setting of it that matches no watched series noted in its status."""
    dcfg = ctx.config.detectors[name]
    if _product_only(ctx.config, name) and not product_watched(
            inp.series["dimension"], inp.series["kpi"], inp.price_indexes).any():
        return None
    out = run_detector(ctx, REGISTRY[dcfg.type](dcfg, name=name), inp)
    unmatched = _unmatched(name, dcfg, inp.series)
    if unmatched:
        log.warning("%s", unmatched)
        ctx.detector_status[name].setdefault("warnings", []).append(unmatched)
    return out


def assemble_detections(ctx: RunContext, frames: list[pd.DataFrame]) -> None:
    """``ctx.detections``: the detectors' frames (in the config's order)."""
    ctx.detections = (pd.concat(frames, ignore_index=True) if frames
                      else pd.DataFrame(columns=OUTPUT_COLUMNS))
    if frames and ctx.data.source == "kpis":  # an external file's missing period: a gap, no alarm
        ctx.detections.loc[ctx.detections["actual"].isna(), "flag"] = False


def _unmatched(name: str, dcfg: Any, series: pd.DataFrame) -> str | None:
    """A detector's ``kpis`` / ``dimensions`` that name nothing the run watches (a typo,
    ``dimensions: [overal]``: the detector scored no series, said nothing and left the vote):
    one line naming the setting and what is watched; None when every name matches."""
    for setting, column in (("dimensions", "dimension"), ("kpis", "kpi")):
        named = getattr(dcfg, setting, None) or []
        if not named:   # the usual case: every series; nothing to look up
            continue
        watched = [str(v) for v in pd.unique(series[column])]   # a few names, not 10^5 rows
        missing = [v for v in named if v not in watched]
        if missing:
            return (f"detectors.{name}.{setting}: {', '.join(map(repr, missing))} "
                    f"{'matches' if len(missing) == 1 else 'match'} no watched series "
                    f"(watched {setting}: {', '.join(watched)})")
    return None


def voters(ctx: RunContext) -> list[str]:
    cfg: AnalysisConfig = ctx.config
    return [n for n in cfg.voting_detectors() if ctx.detector_status.get(n, {}).get("ok")]


def _calendar(ctx: RunContext) -> pd.DataFrame:
    """The planned days the consensus mutes, with their scopes: a day mutes only the series its
    scope concerns (``detectors.calendar.mute_grid``, the detectors' own rule)."""
    cal = ctx.data.tables.get("marketing_calendar")
    if cal is None or cal.empty:
        return pd.DataFrame({"date": pd.DatetimeIndex([])})
    return cal


def stage_consensus(ctx: RunContext) -> None:
    """Consensus incidents. Product series (dimension ``product``) and the list-price indexes
    (KPI ``price``; ``shocklab.catalogue.product_watched``) are watched by detectors made for them
    alone (``Detector.watches_products``): there, any such voter's flag is an incident;
    on every other series the configured rule runs over the other voters, as if the product
    detectors did not exist (docs/ARCHITECTURE.md "Detection contract", "Consensus on product
    series")."""
    cfg: AnalysisConfig = ctx.config
    det = ctx.detections
    on_product = (np.asarray(product_watched(det["dimension"], det["kpi"], ctx.price_indexes()),
                             bool) if len(det)
                  else np.zeros(0, bool))
    # dense views, shared by every rule below: the product-watched series apart when there are any
    votes = cons.Votes(det, ~on_product if on_product.any() else None)
    prod_votes = cons.Votes(det, on_product) if on_product.any() else None
    parts = [votes] if prod_votes is None else [votes, prod_votes]
    gap = cfg.consensus.merge_gap_days
    ctx.detector_incidents = {  # per series, so the parts' lists only need merging
        name: cons.ordered([i for v in parts for i in cons.detector_incidents(v, name, gap)])
        for name, st in sorted(ctx.detector_status.items())
        if st.get("ok")
    }
    if ctx.has_truth:   # the bound's onsets at each cut (evaluation.scoring._cut_rows)
        ctx.oracle_onsets = {
            k: v for name, d in sorted(cfg.detectors.items())
            if d.type == "oracle" and name in ctx.detector_incidents
            for part in parts
            for k, v in part.onset_records(ctx.detector_incidents[name], name).items()
        }
    vs = ctx.voters = voters(ctx)
    main_vs = level_voters(cfg, vs)
    prod_vs = [v for v in vs if _watches_products(cfg, v)]
    if len(main_vs) < cfg.consensus.min_votes:
        log.warning("only %d voting detector(s) ran (%s); consensus needs min_votes=%d — using %d",
                    len(main_vs), ", ".join(main_vs) or "none", cfg.consensus.min_votes,
                    len(main_vs))
    absent = [r for r in cfg.consensus.required if r not in main_vs]
    if absent and cfg.consensus.combine == "vote":   # stouffer never reads required
        # consensus_incidents drops them: 'required: [prophet_residual]' with Prophet off (the
        # shipped comment's example) required nothing, without a word
        log.warning("consensus.required: %s did not vote in this run (off, failed or not a "
                    "voter; voters: %s): not required", ", ".join(absent),
                    ", ".join(main_vs) or "none")
    mute = _calendar(ctx)
    fams = {n: cfg.detectors[n].type for n in main_vs}
    want = cfg.consensus.anchors
    if want and cfg.consensus.combine == "stouffer" and main_vs and not cons.named_anchors(
            want, main_vs, fams):
        log.warning("consensus.anchors: none of %s voted in this run (voters: %s): every voter "
                    "anchors", ", ".join(want), ", ".join(main_vs))
    ctx.suppressed_incidents = []
    ctx.incidents = cons.consensus_incidents(votes, main_vs, cfg.consensus, mute, families=fams,
                                             suppressed=ctx.suppressed_incidents) if main_vs else []
    product_incs: list = []
    if prod_votes is not None and prod_vs:
        product_incs = cons.build_incidents(
            prod_votes, prod_vs, min_votes=1, merge_gap=cfg.consensus.merge_gap_days,
            mute_dates=mute if cfg.consensus.mute_calendar else (),
        )
        product_incs, dropped = cons.suppress_incidents(product_incs, cfg.consensus.suppress)
        ctx.suppressed_incidents.extend(dropped)
        ctx.incidents = cons.ordered([*ctx.incidents, *product_incs])
    if ctx.suppressed_incidents:
        log.info(
            "alarm suppression (consensus.suppress=%s): %d consensus incident(s) dropped, %d kept",
            cfg.consensus.suppress,
            len(ctx.suppressed_incidents),
            len(ctx.incidents),
        )
    if ctx.has_truth:  # every k-of-n level, for scoring (product incidents in each: one voter)
        n = len(set(fams.values())) if cfg.consensus.count_by == "type" else len(main_vs)
        ctx.consensus_levels = {
            f"k{k}": cons.ordered([*cons.consensus_incidents(
                votes, main_vs, cfg.consensus, mute, min_votes=k, families=fams
            ), *product_incs])
            for k in range(1, n + 1)
        }


def _watches_products(cfg: AnalysisConfig, name: str) -> bool:
    """Does detector ``name`` score product series (``detectors.base.sees_products``)?"""
    d = cfg.detectors[name]
    return sees_products(REGISTRY[d.type], d)


def level_voters(cfg: AnalysisConfig, names: list[str]) -> list[str]:
    """The voters the configured rule (and the k-of-n levels, k1 … kn) counts: all but those
    that watch product series only (their flags are the consensus there on their own)."""
    return [v for v in names if not _product_only(cfg, v)]


def _product_only(cfg: AnalysisConfig, name: str) -> bool:
    """Does detector ``name`` watch product series and nothing else?"""
    d = cfg.detectors[name]
    dims = d.dimensions
    return REGISTRY[d.type].only_products if dims is None else set(dims) <= {PRODUCT_DIMENSION}


def stage_customers(ctx: RunContext) -> None:
    from .customers.pipeline import run as run_customers  # imported on use: sweeps never need it

    run_customers(ctx)


def stage_insights(ctx: RunContext) -> None:
    from .insights import run as run_insights

    run_insights(ctx)


def _prepare_insights(ctx: RunContext) -> None:
    """Build the slice panel the insights and insight scoring's event windows share
    (``insights.build_panel``): called by the stage scheduler before it forks the process that
    runs the event windows beside the insights, so both read one copy."""
    if ctx.kpis_daily is None:
        return
    from .insights import build_panel, config_of

    t0 = time.perf_counter()
    build_panel(ctx, config_of(ctx))
    ctx.timings["insights.panel"] = round(time.perf_counter() - t0, 3)


def _release_insights(ctx: RunContext) -> None:
    """Drop the shared slice panel (the stage scheduler, once both users are done)."""
    ctx.panel = None


def _forecast_ahead(ctx: RunContext) -> None:
    """The insights' revenue forecast, ahead of the stage (``insights.forecast_ahead``: it reads
    only ``kpis_daily``, the calendar and the seed): the stage scheduler's customers worker runs
    it after its branch while the detection chain still runs."""
    from .insights import forecast_ahead

    forecast_ahead(ctx)


# the customer tables go back to the parent once the customers stage is done (customer scoring
# never reads them): the worker does not hold them beside the parent's oracle
stage_customers.hands_back = ("customer_tables",)  # type: ignore[attr-defined]
stage_insights.prepare = _prepare_insights  # type: ignore[attr-defined]
stage_insights.release = _release_insights  # type: ignore[attr-defined]
stage_insights.ahead = _forecast_ahead  # type: ignore[attr-defined]
# what the worker's ahead work reads (kpis_daily, watched) is handed over once computed
stage_kpis.hands_over = True  # type: ignore[attr-defined]
stage_detect.hands_over = ("watched",)  # type: ignore[attr-defined]
stage_detect.defer = detect_ahead.defer  # type: ignore[attr-defined]  # the isolation forest
stage_detect.settle = detect_ahead.settle  # type: ignore[attr-defined]
stage_consensus.needs_deferred = True  # type: ignore[attr-defined]


def stage_report(ctx: RunContext) -> None:
    from .report import run as run_report

    run_report(ctx)


STAGES: list[tuple[str, Stage]] = [
    ("kpis", stage_kpis),
    ("detect", stage_detect),
    ("consensus", stage_consensus),
    ("customers", stage_customers),  # RFM, churn, CLV, monitor → ctx.customers, customers/
    ("insights", stage_insights),  # insights.json + insights.md (includes ctx.customers)
    ("report", stage_report),  # plots/*.png
]


def _run_one(ctx: RunContext, name: str, fn: Stage) -> None:
    t0 = time.perf_counter()
    fn(ctx)
    ctx.timings[name] = round(time.perf_counter() - t0, 3)
    log.debug("stage %s: %.2fs", name, ctx.timings[name])


def run(ctx: RunContext, stages: Sequence[tuple[str, Stage]] | None = None) -> RunContext:
    """Run the stages, timing each into ``ctx.timings``: in order, except that the customers
    branch runs in a second process beside the detection chain when two cores are free (same
    result; ``analytics.schedule``, ``SHOCKLAB_PARALLEL=0`` turns it off)."""
    from .schedule import run_stages

    return run_stages(ctx, STAGES if stages is None else stages, _run_one)


# ---------------------------------------------------------------- selection, ids, outputs
def select_detectors(
    cfg: AnalysisConfig, names: Sequence[str] | None, has_truth: bool = True,
    where: str = "--detectors",
) -> AnalysisConfig:
    """A copy of ``cfg`` with only ``names`` enabled (None = as configured); errors name
    ``where`` (the CLI's flag, or the API request's field)."""
    if not names:
        return cfg
    unknown = [n for n in names if n not in cfg.detectors]
    if unknown:
        raise InputError(
            f"{where}: unknown detector {unknown[0]!r} (known: {', '.join(cfg.detectors)})"
        )
    for n in names:
        if REGISTRY[cfg.detectors[n].type].needs_truth and not has_truth:
            raise InputError(
                f"{where}: {n!r} needs truth/ (simulated data) and this data has none"
            )
    dets = {n: d.model_copy(update={"enabled": n in names}) for n, d in cfg.detectors.items()}
    return cfg.model_copy(update={"detectors": dets})


def data_hash(ds: DataSet, extra_files: Sequence[Path] = ()) -> str:
    """Identity of the input: the manifest (which lists every file's sha256) or the files
    themselves."""
    if ds.path is not None and (Path(ds.path) / "manifest.json").is_file():
        return sha256_file(Path(ds.path) / "manifest.json")
    files = (sorted(p for p in Path(ds.path).rglob("*") if p.is_file())
             if ds.path and Path(ds.path).is_dir() else [])
    files += [Path(p) for p in extra_files]
    return sha256_json([[p.name, sha256_file(p)] for p in files])


def run_id(ds: DataSet, cfg: AnalysisConfig, dhash: str) -> str:
    """Deterministic: ``<scenario or data dir name>-<12 hex of sha256(data hash, config)>``."""
    label = str(ds.manifest.get("scenario") or (Path(ds.path).name if ds.path else "kpis"))
    label = safe_name(label, 40) or "run"
    return f"{label}-{sha256_json({'data': dhash, 'config': cfg.model_dump(mode='json')})[:12]}"


# ---------------------------------------------------------------- one-call entry
def analyse(
    data_dir: str | Path,
    raw_config: dict[str, Any] | None = None,
    out_dir: str | Path | None = None,
    detectors: Sequence[str] | None = None,
    config_path: str | Path | None = None,
    stages: Sequence[tuple[str, Stage]] | None = None,
    *,
    attach: Callable[[RunContext], Any] | None = None,
    has_truth: bool = False,
) -> dict[str, Any]:
    """Analyse one data directory; return the scorecard dict ({} when nothing scored).

    raw_config : the analysis YAML mapping after overrides (None: ``config_path``, or the shipped
        config/analysis.yaml). out_dir : write a run directory there (atomically); None writes
        nothing. detectors : names to enable (None = as configured). attach, has_truth : how
        ``evaluation.pipeline.analyse`` hands the truth to its stages (analytics passes none).
    """
    from .loading import load_data_dir

    if raw_config is not None:
        cfg = config_from_raw(raw_config, str(config_path or "analysis config"))
    else:
        cfg = load_analysis_config(config_path)
    ds = load_data_dir(data_dir)
    cfg = select_detectors(cfg, detectors, has_truth)

    def context(tmp: Path) -> RunContext:
        ctx = RunContext(config=cfg, data=ds, out_dir=tmp)
        if attach is not None:
            attach(ctx)
        return ctx

    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="shocklab-analyse-") as tmp:
            ctx = run(context(Path(tmp)), stages)
    else:
        dhash = data_hash(ds)
        with atomic_dir(out_dir, kind="run") as tmp:
            ctx = run(context(tmp), stages)
            write_outputs(ctx, {"run_id": run_id(ds, cfg, dhash), "data_hash": dhash})
    return json_ready(ctx.scorecard) if ctx.scorecard is not None else {}


__all__ = ["STAGES", "analyse", "incidents_json", "level_voters", "run", "run_id",
           "select_detectors", "write_outputs"]
