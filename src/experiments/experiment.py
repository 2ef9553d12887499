"""An experiment end to end: plan settings × seeds, run the cells, write the tables and plots,
apply the gate. ``run_experiment.py`` is a thin CLI over ``run``."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from shocklab.atomic import (
    KIND_NAMES,
    MARKER,
    atomic_dir,
    atomic_write_text,
    check_writable_parent,
    exclusive_output,
    output_kind,
    read_marker,
    set_aside,
)
from shocklab.errors import InputError, json_kind
from shocklab.hashing import canonical_json

from . import gate as gating
from .cache import check_cache_writable, clear_worlds
from .cell import CellTask, run_cell
from .config import Experiment, parse_check
from .detectability import curves, detectability_settings, minimum_detectable_effect
from .drops import max_drop_problem
from .grid import Setting, cells, grid_settings, short_names
from .metric_names import check_metric_names
from .results import leaderboard, results_frame, summary_table
from .runner import CellFn, build_tasks, run_tasks, worker_count

log = logging.getLogger("shocklab.experiments")


@dataclass
class Outcome:
    out_dir: Path
    results: pd.DataFrame
    leaderboard: pd.DataFrame
    labels: dict[str, str] = field(default_factory=dict)   # setting_id -> "threshold=3.0, …"
    # the cells the leaderboard is over: a split's test seeds (None: every cell of ``results``)
    reported: pd.DataFrame | None = None
    gate: list[gating.GateResult] = field(default_factory=list)
    detectability: pd.DataFrame | None = None
    mde: pd.DataFrame | None = None


def settings_of(exp: Experiment) -> list[Setting]:
    if exp.config.kind == "detectability":
        assert exp.config.detectability is not None
        return detectability_settings(exp.config.detectability, exp.scenario)
    return grid_settings(exp.config)


def plan(
    exp: Experiment, cache_dir: str | Path, validate: bool = False
) -> tuple[list[Setting], list[CellTask]]:
    """Settings and cell tasks; with ``validate`` every distinct scenario and analysis mapping is
    checked by the simulator's and the pipeline's own config models first."""
    settings = settings_of(exp)
    checks = backend_validators(exp) if validate else (None, None)
    tasks = build_tasks(cells(settings, exp.config.seed_list), exp.scenario, exp.analysis,
                        cache_dir, check_scenario=checks[0], check_analysis=checks[1],
                        source=str(exp.path))
    return settings, tasks


def backend_validators(exp: Experiment) -> tuple[Any, Any]:
    """(scenario validator, analysis validator); InputError naming what is missing."""
    try:
        from simulation.api import scenario_hash
    except ImportError as exc:
        raise InputError(f"the simulator is not available (simulation.api: {exc})") from None
    try:
        from analytics.config import config_from_raw
    except ImportError as exc:
        raise InputError(
            f"the analysis pipeline is not available (analytics.config: {exc})"
        ) from None

    def check_scenario(raw: dict[str, Any]) -> None:
        try:
            scenario_hash(raw)
        except InputError as exc:  # name the file the cell's scenario came from
            raise InputError(
                str(exc).replace(
                    "<scenario>", f"{exp.scenario_path} (with {exp.path.name} overrides)"
                )
            ) from None

    def check_analysis(raw: dict[str, Any] | None) -> None:
        from analytics.config_checks import check_store_names

        where = f"{exp.analysis_path or 'analysis config'} (with {exp.path.name} overrides)"
        cfg = config_from_raw(raw, where)
        try:   # cells analyse generated stores: store data's names (as run_analysis.py checks)
            check_store_names(cfg)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None

    return check_scenario, check_analysis


def identity(exp: Experiment) -> dict[str, str]:
    """What makes an experiment directory this experiment's: its name and kind. A rerun of the
    same experiment — edited settings, seeds, gate or split included — resumes there (cells by
    config hash) and replaces its own outputs; another experiment is refused by
    run_experiment.py (``--force`` moves it aside)."""
    return {"name": exp.config.name, "kind": exp.config.kind}


def other_experiment(exp: Experiment) -> Callable[[Path], str | None]:
    """For ``shocklab.atomic.check_resumable``: describe the experiment in an existing directory
    when it is not ``exp`` (read from its experiment.json, else from the marker an interrupted
    first run left); None when it is ``exp``, or when nothing says which experiment it is."""
    want = identity(exp)

    def other(out_dir: Path) -> str | None:
        path = out_dir / "experiment.json"
        if path.is_file():
            try:
                have = json.loads(path.read_text(encoding="utf-8"))
            # RecursionError: arrays nested thousands deep (as the cell records' reader): exit 3
            except (OSError, ValueError, RecursionError) as exc:
                return (f"an experiment whose experiment.json cannot be read "
                        f"({type(exc).__name__})")
            where = "an experiment.json that"
        else:
            have = read_marker(out_dir).get("owner")
            if have is None:
                return None
            where = f"a marker ({MARKER}) whose owner"
        if not (isinstance(have, dict) and all(isinstance(have.get(k), str) for k in want)):
            # null, [] or {}: was "the experiment None (kind None)"
            missing = " without a name and kind" if isinstance(have, dict) else ""
            return f"{where} is not an experiment record ({json_kind(have)}{missing})"
        if {k: have.get(k) for k in want} == want:
            return None
        return (f"the experiment {have.get('name')!r} (kind {have.get('kind')}), not "
                f"{want['name']!r} (kind {want['kind']})")

    return other


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run(exp: Experiment, out_dir: str | Path, *, executor: str = "local", workers: int = 1,
        scheduler: str | None = None, cache_dir: str | Path | None = None,
        cell_fn: CellFn | None = None, checks: list[tuple[str, str, float]] | None = None,
        baseline: pd.DataFrame | None = None, progress: bool | None = None,
        plots: bool = True, fresh: bool = False, replace_other: bool = False) -> Outcome:
    """Run (or resume) the experiment into ``out_dir`` and write its outputs.

    Parameters
    ----------
    exp : the loaded experiment (``config.load_experiment``).
    out_dir : ``cells/`` (one record per finished cell, for resuming), ``results.parquet``,
        ``leaderboard.csv``, ``experiment.json``, ``plots/``, and for detectability
        ``detectability.csv`` and ``mde.csv``; ``gate.json`` when there are gate checks.
    executor, workers, scheduler : where cells run (``runner.execute``).
    cache_dir : generated worlds (default ``<out>/worlds``).
    cell_fn : default: the real generate → analyse cell; then every distinct scenario and
        analysis mapping is validated by the simulator's and pipeline's models before anything
        runs or is written (InputError, exit 2).
    checks : parsed ``--gate`` checks (default: the file's ``gate.checks``).
    baseline : an earlier results table to compare against.
    fresh : rerun every cell and regenerate the default world cache.
    replace_other : ``out_dir`` holds something else (another experiment: run_experiment.py
        ``--force``): it is moved aside to ``<out>.kept-N`` once the experiment is validated,
        before anything is written.

    Returns
    -------
    Outcome : the tables, labels and gate results. Gate misses are returned, not raised
        (``gate.enforce`` raises), so the outputs exist either way.
    """
    cfg = exp.config
    out_dir = Path(out_dir)
    own_cache = cache_dir is None
    cache_dir = Path(cache_dir) if cache_dir is not None else out_dir / "worlds"
    settings, tasks = plan(exp, cache_dir, validate=cell_fn is None)
    from_file = checks is None
    checks = checks if checks is not None else [parse_check(c) for c in cfg.gate.checks]
    source = f"{exp.path.name} gate.checks" if from_file else "--gate"
    if cfg.split is not None and cfg.split.run == "train" and (checks or baseline is not None):
        # the gate judges the test seeds, and none ran: no check was made, exit 0
        raise InputError(f"{exp.path.name}: split.run: train runs no test seed, and "
                         f"{source if checks else '--baseline'} judges the test seeds only; "
                         "use run: both (or test) for a gate")
    if baseline is not None:   # --gate's metrics are compared too (the file's are checked)
        problem = max_drop_problem(cfg.gate.max_drop, [m for m, _, _ in checks], keys=False)
        if problem:
            raise InputError(f"{exp.path.name}: {problem}")
        # the baseline's settings named as this experiment's (3 and 3.0 alike), its test seeds
        # when split; what it cannot compare is bad input before any cell runs
        baseline = gating.align_baseline(baseline, {st.setting_id: st.overrides for st in settings})
        if cfg.split is not None and "seed" in baseline.columns:
            baseline = baseline[baseline["seed"].isin(cfg.split.test_seeds)]
        alone = gating.precheck_baseline(baseline, [st.setting_id for st in settings],
                                         gating.baseline_metrics(checks, cfg.metrics))
        labels = setting_labels(settings)
        for sid in alone:
            log.warning("--baseline has no run of %s (%s): its figures are not compared",
                        labels.get(sid) or "the setting", sid)
    if cell_fn is None:  # the real cell: its metric names are known before any cell runs
        wanted = [(m, f"{source} '{m}{op}{bar:g}'") for m, op, bar in checks]
        if baseline is not None:  # the comparison reads the file's metrics (and the gated ones)
            wanted += [(m, f"--baseline (metrics: in {exp.path.name})") for m in cfg.metrics]
        # and the leaderboard's columns and ranking, the curves drawn: a typo ran every cell and
        # ranked by an empty column (exit 0, one warning)
        shown = [(m, f"{exp.path.name} metrics") for m in cfg.metrics]
        if cfg.detectability is not None and cfg.detectability.recall_metrics is not None:
            shown += [(m, f"{exp.path.name} detectability.recall_metrics")
                      for m in cfg.detectability.recall_metrics]
        check_metric_names(wanted, [t.analysis for t in tasks], shown)
        # a read-only cache lacking a world: every cell failed on its lock (audit 51b F8)
        check_cache_writable(cache_dir, [t.scenario for t in tasks],
                             flag="" if own_cache else "--cache-dir")
    # validated: one run at a time writes the directory (two experiments started together into
    # one --out both passed the CLI's check and mixed their cells, marker and results, exit 0)
    with exclusive_output(out_dir):
        if not replace_other and out_dir.is_dir():   # written since the CLI looked at it
            have = output_kind(out_dir)   # a data set or a report: its files were mixed with ours
            held = (f"a ShockLab {KIND_NAMES[have]}" if have in ("data", "run")
                    else other_experiment(exp)(out_dir))
            if held is not None:
                raise InputError(f"--out {out_dir}: holds {held}, written while this run was "
                                 "starting; choose another output path")
        if not replace_other:   # set aside otherwise: nothing of it is written
            check_run_dir(out_dir, [t.cell_id for t in tasks], cache_dir if own_cache else None,
                          plots=plots)
        return _run_locked(exp, out_dir, settings, tasks, checks, cache_dir, own_cache,
                           executor=executor, workers=workers, scheduler=scheduler,
                           cell_fn=cell_fn, baseline=baseline, progress=progress, plots=plots,
                           fresh=fresh, replace_other=replace_other)


def _run_locked(exp: Experiment, out_dir: Path, settings: list[Setting], tasks: list[CellTask],
                checks: list[tuple[str, str, float]], cache_dir: Path, own_cache: bool, *,
                executor: str, workers: int, scheduler: str | None, cell_fn: CellFn | None,
                baseline: pd.DataFrame | None, progress: bool | None, plots: bool, fresh: bool,
                replace_other: bool) -> Outcome:
    """``run`` once everything is validated, holding the directory's lock."""
    cfg = exp.config
    if replace_other and out_dir.exists():  # validated: nothing can stop the run before its cells
        set_aside(out_dir)
    _remove_temporary_files(out_dir)
    if fresh and own_cache and cache_dir.is_dir():  # a shared --cache-dir is never cleared here
        if cache_dir.is_symlink():  # <out>/worlds linked to a shared cache: that one is shared too
            log.warning("--fresh: %s is a link to %s, a shared cache: not cleared (its worlds "
                        "are reused; cells are rerun)", cache_dir, os.readlink(cache_dir))
        else:
            clear_worlds(cache_dir)
    by_id = {s.setting_id: s for s in settings}
    # no more workers than cells nor than the CPUs can run (runner.worker_count)
    used = worker_count(executor, workers, len(tasks), scheduler)
    log.info("%s: %d settings × %d seeds = %d cells (%s, %d worker%s)", cfg.name, len(settings),
             len(cfg.seed_list), len(tasks), executor, used, "" if used == 1 else "s")

    records = run_tasks(
        tasks, out_dir, executor, workers, scheduler, cell_fn or run_cell, progress, fresh,
        owner=identity(exp),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "experiment.json", canonical_json({
        "name": cfg.name, "kind": cfg.kind, "experiment_file": str(exp.path),
        "scenario_file": str(exp.scenario_path),
        "analysis_file": None if exp.analysis_path is None else str(exp.analysis_path),
        "config": cfg.model_dump(mode="json"), "seeds": cfg.seed_list,
        "settings": [{"setting_id": s.setting_id, "params": s.params, "overrides": s.overrides}
                     for s in settings]}))

    results = results_frame(records, by_id)
    if (results["status"] == "ok").any():
        for m in cfg.metrics:
            if m not in results.columns:
                close = [c for c in results.columns if c.endswith("." + m.rsplit(".", 1)[-1])][:4]
                log.warning(
                    "metric %r is not in the scorecard; its leaderboard columns are empty%s",
                    m,
                    f" (did you mean {', '.join(close)}?)" if close else "",
                )
    reported = results
    train = results.iloc[:0]
    if cfg.split is not None:   # tune on train seeds, report test seeds only
        reported = results[results["seed"].isin(cfg.split.test_seeds)]
        train = results[results["seed"].isin(cfg.split.train_seeds)]
    written = {  # which of OPTIONAL_OUTPUTS this run writes
        name for name, wrote in (("leaderboard_train.csv", len(train) > 0),
                                 ("summary.csv", cfg.split is not None and len(reported) > 0),
                                 ("detectability.csv", cfg.kind == "detectability"),
                                 ("mde.csv", cfg.kind == "detectability"),
                                 ("gate.json", bool(checks) or baseline is not None)) if wrote}
    board = leaderboard(reported, cfg.metrics, cfg.rank_metric, cfg.bootstrap)
    # an earlier run's tables and verdict go before this run's results: killed between the two,
    # the directory held new results beside the old leaderboard or verdict, which the dashboard
    # and API read as this run's (a table missing is reported as missing)
    (out_dir / "leaderboard.csv").unlink(missing_ok=True)
    _drop_stale(out_dir, written)
    _write_parquet(results, out_dir / "results.parquet")
    if "leaderboard_train.csv" in written:
        atomic_write_text(
            out_dir / "leaderboard_train.csv",
            leaderboard(train, cfg.metrics, cfg.rank_metric, cfg.bootstrap).to_csv(index=False),
        )
    if "summary.csv" in written:
        atomic_write_text(
            out_dir / "summary.csv", summary_table(reported, cfg.bootstrap).to_csv(index=False)
        )
    atomic_write_text(out_dir / "leaderboard.csv", board.to_csv(index=False))
    outcome = Outcome(
        out_dir, results, board, labels=setting_labels(settings), reported=reported
    )

    if cfg.kind == "detectability":
        assert cfg.detectability is not None
        outcome.detectability = curves(results, cfg.detectability, cfg.bootstrap)
        outcome.mde = minimum_detectable_effect(outcome.detectability, cfg.detectability.min_recall)
        atomic_write_text(out_dir / "detectability.csv", outcome.detectability.to_csv(index=False))
        atomic_write_text(out_dir / "mde.csv", outcome.mde.to_csv(index=False))

    if plots:
        from . import plots as plotting

        with atomic_dir(out_dir / "plots", force=True, marker=False) as tmp:
            if cfg.kind == "detectability":
                plotting.detectability_plots(outcome.detectability, outcome.mde,
                                             cfg.detectability.min_recall, tmp)
            else:
                params = [p for s in settings for p in s.params]
                plotting.sweep_plots(board, list(dict.fromkeys(params)), cfg.rank_metric, tmp)
    elif (out_dir / "plots").is_dir():  # an earlier run's plots would pass for this run's
        shutil.rmtree(out_dir / "plots")
        log.info("removed plots/ of an earlier run (this run writes none: --no-plots)")

    # the gate judges what the leaderboard reports: the test seeds of a split, not the train seeds
    if checks:
        outcome.gate += gating.check_absolute(reported, checks, cfg.bootstrap)
    if baseline is not None:   # aligned and cut to the test seeds by ``run``
        outcome.gate += gating.check_baseline(
            reported,
            baseline,
            gating.baseline_metrics(checks, cfg.metrics),
            cfg.bootstrap,
            cfg.gate.max_drop,
        )
    outcome.gate = [replace(r, label=outcome.labels.get(r.setting_id, "")) for r in outcome.gate]
    if outcome.gate:
        atomic_write_text(
            out_dir / "gate.json",
            canonical_json(
                {
                    "passed": all(r.passed for r in outcome.gate),
                    "checks": [r.to_dict() for r in outcome.gate],
                }
            ),
        )
    return outcome


# Files only some experiments write. A resumed directory keeps its earlier run's copies unless
# they are removed: a gate.json that failed stayed beside a rerun without a gate (exit 0), and
# the dashboard and API read it as this experiment's verdict.
OPTIONAL_OUTPUTS = ("gate.json", "leaderboard_train.csv", "summary.csv", "detectability.csv",
                    "mde.csv")


# What a run writes in its directory, by type: a directory standing where one of RUN_FILES is
# written (or a file where a directory is) was exit 3 from the rename that writes it, after the
# cells ran and an earlier leaderboard.csv was deleted (``check_run_dir``).
RUN_FILES = ("experiment.json", "results.parquet", "leaderboard.csv", *OPTIONAL_OUTPUTS)


def check_run_dir(out_dir: Path, cell_ids: list[str], own_cache: Path | None = None,
                  plots: bool = True) -> None:
    """Refuse a damaged run directory before anything in it is deleted or written and before any
    cell runs: one of RUN_FILES, or the record of a cell of this run (``cells/<id>.json``), that
    is a directory; ``cells/`` (and ``plots/``, when written) that is a file or a dangling link;
    and the run's own world cache (``<out>/worlds``, ``own_cache``) that is not a usable
    directory, as ``--cache-dir`` is refused (every cell failed on it: exit 3, and the results
    replaced by error rows). InputError, one line naming the entry; nothing is changed."""
    if not out_dir.is_dir():
        return
    cells_dir = out_dir / "cells"
    for name in ("cells", "plots") if plots else ("cells",):
        entry = out_dir / name
        if os.path.lexists(entry) and not entry.is_dir():
            what = (f"a symbolic link to a missing {os.readlink(entry)}"
                    if entry.is_symlink() and not entry.exists() else "a file, not a directory")
            raise InputError(f"--out {out_dir}: {entry} is {what} (the run writes its {name} "
                             "there); move it away, or give another --out")
    files = [out_dir / n for n in RUN_FILES]
    if cells_dir.is_dir():
        files += [cells_dir / f"{cid}.json" for cid in cell_ids]
    for entry in files:
        if entry.is_dir() and not entry.is_symlink():
            raise InputError(f"--out {out_dir}: {entry} is a directory, not a file (the run "
                             "replaces it with its own); move it away, or give another --out")
    if own_cache is not None:
        try:   # --cache-dir's check of what stands there (run_experiment.py check_cache_dir)
            check_writable_parent(own_cache, renamed=False)
        except InputError as exc:
            raise InputError(f"--out {out_dir}: its world cache {exc}") from None


def _remove_temporary_files(out_dir: Path) -> None:
    """The hidden temporary files of a run killed while it wrote a file of the directory
    (``.results.parquet.tmp-PID``, ``.leaderboard.csv.XXXXXXXX``, ``cells/.ID.json.XXXXXXXX``):
    readers skip them, but they stayed for good. Called under the directory's lock."""
    names = ("results.parquet", "leaderboard.csv", "experiment.json", *OPTIONAL_OUTPUTS)
    stale = [p for n in names for p in out_dir.glob(f".{n}.*")]
    stale += list((out_dir / "cells").glob(".*.json.*"))
    for p in sorted(stale):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
    if stale:
        log.info("removed %d temporary file(s) of a killed run of %s", len(stale), out_dir)


def _drop_stale(out_dir: Path, written: set[str]) -> None:
    """Remove the optional outputs an earlier run of this directory wrote, before this run's
    results; say so for those this run does not write again (``written``)."""
    for name in OPTIONAL_OUTPUTS:
        if (out_dir / name).is_file():
            (out_dir / name).unlink()
            if name not in written:
                log.info("removed %s of an earlier run (this run does not write it)", name)


def setting_label(setting: Setting, max_len: int = 40, names: dict[str, str] | None = None
                  ) -> str:
    """``threshold=3.0, drop_pct=0.2``: the key's last segment (``names``: its name among the
    other settings' keys, ``short_names``) = value (long values shortened); ``base config`` for
    the setting without overrides."""
    names = names or short_names(setting.params)
    parts = []
    for key, value in setting.params.items():
        text = str(value)
        parts.append(
            f"{names.get(key, key)}={text if len(text) <= max_len else text[: max_len - 1] + '…'}"
        )
    return ", ".join(parts) or "base config"


def setting_labels(settings: list[Setting]) -> dict[str, str]:
    """setting_id -> ``setting_label``, keys named apart across all the settings."""
    names = short_names(k for s in settings for k in s.params)
    return {s.setting_id: setting_label(s, names=names) for s in settings}


def _valued(results: pd.DataFrame, sid: str, metric: str) -> int:
    """How many of the setting's ok cells have a value of ``metric``."""
    if metric not in results.columns:
        return 0
    rows = results[(results["setting_id"] == sid) & (results["status"] == "ok")]
    return int(pd.to_numeric(rows[metric], errors="coerce").notna().sum())


def summary_lines(outcome: Outcome, rank_metric: str, top: int = 5) -> list[str]:
    """A few lines for the console: cells ok/failed and the top of the leaderboard."""
    res, board = outcome.results, outcome.leaderboard
    n_bad = int((res["status"] != "ok").sum())
    lines = [f"{len(res)} cells, {len(res) - n_bad} ok, {n_bad} failed -> {outcome.out_dir}"]
    mean, lo, hi = f"{rank_metric}.mean", f"{rank_metric}.ci_low", f"{rank_metric}.ci_high"
    if not board.empty and mean in board.columns:
        for _, row in board.head(top).iterrows():
            desc = outcome.labels.get(row["setting_id"], row["setting_id"])
            # the seeds with a value (a seed without events has no recall): not the cells run,
            # and of a split the test seeds only, which the leaderboard's n_seeds counts (the
            # train seeds' cells made "over 3 of 2 seeds")
            n = _valued(res if outcome.reported is None else outcome.reported,
                        row["setting_id"], rank_metric)
            over = (f"{n} seeds" if n == row["n_seeds"]
                    else f"{n} of {row['n_seeds']} seeds (the others have no value)")
            lines.append(f"  #{row['rank']} {desc}: {rank_metric} {row[mean]:.3f} "
                         f"[{row[lo]:.3f}, {row[hi]:.3f}] over {over}")
    if outcome.mde is not None and not outcome.mde.empty:
        lines.append("minimum detectable effect (recall ≥ bar from there on):")
        for _, row in outcome.mde.iterrows():
            dur = "" if pd.isna(row["duration_days"]) else f" {int(row['duration_days'])}d"
            mde = "not reached" if pd.isna(row["mde"]) else f"{row['mde']:g}"
            lines.append(f"  {row['event_type']}{dur} {row['entity']}: {mde}")
    for r in outcome.gate:
        lines.append(r.line())
    return lines
