#!/usr/bin/env python3
"""Analyse a data directory: KPIs, detectors, consensus, customers, insights, plots and — when
truth/ exists — scoring against the injected events.

    python run_analysis.py [--data DIR | --transactions FILE | --kpis FILE [--events FILE]
                            [--calendar FILE] [--duplicates mean|sum|first]
                            [--layout auto|wide|long] [--sum-columns a,b]]
                           [--config PATH] [--out DIR] [--min-recall X] [--min-precision Y]
                           [--detectors a,b] [--as-of DATE] [--set dotted.key=value ...] [--debug]
                           [--quiet]

Output: a run directory (default ``reports/<run-id>/``, written atomically). The run id is
deterministic: ``<scenario>-<12 hex of sha256(data manifest hash, effective config)>`` (a
``--kpis`` or ``--transactions`` run: the file's name and its bytes' hash; ``-as-of-<DATE>`` added
with ``--as-of``), so the same inputs land in the same directory (rerunning replaces it). Exit
codes: 0 ok, 1 a quality gate failed (which figure missed which bar), 2 bad input (one line,
nothing written), 3 internal error (the traceback is in the log file).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from shocklab.cli import (  # noqa: E402
    ArgumentParser,
    add_common_flags,
    add_force_flag,
    exit_process,
    nonempty,
    path_arg,
    run_cli,
    setup_logging,
)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="run_analysis.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python run_analysis.py --data data/ --min-recall 0.9\n"
        "  python run_analysis.py --data data/ --detectors rolling_zscore,prophet_residual "
        "--set consensus.combine=vote --set consensus.min_votes=1\n"
        "  python run_analysis.py --kpis metrics.csv --events incidents.json\n"
        "  python run_analysis.py --kpis daily.csv --calendar marketing_calendar.csv\n"
        "exit codes: 0 ok · 1 a quality gate failed · 2 bad input (nothing written) · 3 internal "
        "error\n"
        "run id: <scenario, or the --kpis/--transactions file's name>-<12 hex of sha256(input "
        "hash, effective config)>, plus -as-of-<DATE> with --as-of",
    )
    p.add_argument(
        "--data", type=path_arg, default=None,
        help="data directory from generate_data.py (default: data/)"
    )
    p.add_argument("--config", type=path_arg, default=None,
                   help="analysis config, layered over this checkout's config/analysis.yaml "
                        "(mappings merge, lists and values replace) unless it says base: none "
                        "(default: that file, from any directory)")
    p.add_argument("--out", type=path_arg, default=None,
                   help="run directory (default: reports/<run-id>/)")
    p.add_argument("--min-recall", type=float, default=None, metavar="X",
                   help="exit 1 when the consensus recall (headline scoring mode) is below X")
    p.add_argument("--min-precision", type=float, default=None, metavar="Y",
                   help="exit 1 when the consensus precision is below Y")
    p.add_argument(
        "--detectors", default=None, metavar="a,b",
        help="run only these detectors of the config, by name (one it has enabled: false runs "
             "too, e.g. prophet_residual)"
    )
    p.add_argument(
        "--kpis", type=path_arg,
        default=None,
        metavar="FILE.csv",
        help="analyse an external KPI table instead of --data (CSV/Parquet; any step, gaps kept as "
        "gaps; see --layout)",
    )
    p.add_argument(
        "--events", type=path_arg,
        default=None,
        metavar="FILE",
        help="labelled windows to score --kpis against: ShockLab's JSON list, NAB's "
        "combined_windows.json (the entry for the KPI file's name, or that entry saved alone) or a "
        "CSV with start,end columns (others ignored, with a warning); a file without a window "
        "scores a series with no labelled anomaly",
    )
    p.add_argument(
        "--calendar", type=path_arg,
        default=None,
        metavar="FILE.csv",
        help="--kpis: your planned days (promotions, holidays, campaigns), laid out like a data "
        "directory's marketing_calendar.csv: date (required, YYYY-MM-DD), optional end (a range's "
        "last day), name (default planned), kind (default campaign), scope (default all; "
        "dimension=segment for one slice). Treated as a store run treats its calendar: planned "
        "days are left out of baselines, never flagged, and marked planned in the insights",
    )
    p.add_argument(
        "--duplicates",
        default="mean",
        choices=("mean", "sum", "first"),
        help="--kpis: how rows with the same timestamp (a daylight-saving change) or snapped onto "
        "the same period are combined (default: mean, but counts — orders, sessions, revenue … "
        "and columns named by --sum-columns — are summed; sum and first apply to every column)",
    )
    p.add_argument(
        "--layout",
        default="auto",
        choices=("auto", "wide", "long"),
        help="--kpis: wide (timestamp + one column per KPI) or long (timestamp, kpi, value[, "
        "dimension, segment]); auto picks long when a text 'kpi' column and a 'value' column exist",
    )
    p.add_argument(
        "--step", type=nonempty("auto, modal or a duration such as 10min"),
        default="auto",
        metavar="STEP",
        help="--kpis: grid step: auto (the modal step, or its smallest multiple whose grid is at "
        "least half full when sampling is irregular), modal, or a duration such as 10min",
    )
    p.add_argument(
        "--sum-columns",
        dest="sum_columns",
        default=None,
        metavar="a,b",
        help="--kpis: the file's own columns that are counts (requests, signups): a day is the "
        "sum of its periods. Any other column that is not a store KPI is a gauge (CPU %%, "
        "latency, NAB's value): a day is the mean of its periods. Store KPIs keep their rules "
        "(revenue, orders, sessions … summed; conversion_rate, aov pooled)",
    )
    p.add_argument(
        "--transactions", type=path_arg,
        default=None,
        metavar="FILE",
        help="analyse a transaction file (Online Retail layouts, .csv or .xlsx) instead of --data",
    )
    p.add_argument(
        "--as-of",
        dest="as_of",
        default=None,
        metavar="DATE",
        help="customer models see the data up to DATE (YYYY-MM-DD); the At-Risk monitor judges "
        "that day only, with its state in state/customers.sqlite (cooldowns persist; the "
        "directory is SHOCKLAB_STATE_DIR when set)",
    )
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="analyse --data even where its files no longer match its manifest.json "
                        "(sha256, row counts): the files are still checked, and each mismatch "
                        "is a warning recorded in run.json input_checks instead of exit 2")
    p.add_argument("--date-format", dest="date_format", default=None, metavar="FMT",
                   type=nonempty("a strftime format such as %d/%m/%Y %H:%M"),
                   help="strftime format of --transactions dates, e.g. %%d/%%m/%%Y %%H:%%M "
                        "(default: ISO, or day-/month-first detected from the file)")
    add_force_flag(p)
    add_common_flags(p, alerts=True)
    return p


def _read_ahead(data: str, verify: bool):  # -> Future[(DataSet, Truth | None, seconds)]
    """Load the data directory and its truth on a thread; ``.result()`` returns them (and the
    seconds it took) or raises what loading raised."""
    from concurrent.futures import ThreadPoolExecutor

    # what the thread needs is imported here, first: the two threads then never import the same
    # modules at once (pandas, pyarrow, pydantic are imported once, by this thread)
    from analytics.loading import load_data_dir, read_ahead_imports
    from evaluation.truth import find_truth

    read_ahead_imports(data)

    def load():
        t0 = time.perf_counter()
        ds = load_data_dir(data, verify=verify)
        return ds, find_truth(data), round(time.perf_counter() - t0, 3)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
    try:
        return pool.submit(load)
    finally:
        pool.shutdown(wait=False)


def _warn_ignored(overrides: list[str], cfg, log) -> None:
    """A --set of a consensus knob that the configured rule does not read says so (once)."""
    if getattr(cfg.consensus, "combine", "vote") != "stouffer":
        return
    keys = sorted({o.split("=", 1)[0].strip() for o in overrides}
                  & {"consensus.min_votes", "consensus.required"})
    if keys:
        log.warning(
            "%s: ignored with consensus.combine: stouffer (combined evidence decides); add --set "
            "consensus.combine=vote to count votes", ", ".join(keys))


def _log_sensitivity_rule(rule: dict, overrides: list[str], log) -> None:
    """One line: the sensitivity a --kpis run uses and why (``external.sensitivity`` was chosen on
    NAB's sub-daily files; daily input uses the analysis-wide one). A --set of a knob the rule does
    not read on this file makes it a warning that says so."""
    knobs = ("sensitivity", "external.sensitivity")
    keys = {k.strip() for k, _, v in (o.partition("=") for o in overrides)
            if v.strip().lower() not in ("null", "none", "~")}
    unused = [k for k in knobs if k in keys and k != rule["source"]]
    text = f"--kpis: sensitivity {rule['sensitivity']:g} from {rule['source']} ({rule['why']})"
    if unused:
        log.warning("%s; --set %s ignored on this file", text, ", ".join(unused))
    else:
        log.info("%s", text)


# consensus keys a --kpis run takes from ``external`` (analytics.external.external_profile): the
# external key to set instead, or None where the rule is fixed on --kpis input
_KPIS_CONSENSUS = {"consensus.suppress": "external.suppress",
                   "consensus.merge_gap_days": "external.merge_gap",
                   "consensus.min_votes": "external.min_votes",
                   "consensus.solo_sensitivity": "external.solo",
                   "consensus.combine": None}


def _warn_replaced_on_kpis(overrides: list[str], cfg, profile, log) -> None:
    """A --set of a consensus key that the --kpis profile replaces on this file (``cfg`` before
    it, ``profile`` after) says so once, with the key that does apply; the consensus' own log
    then names the effective value (e.g. "consensus.suppress=6h" from external.suppress)."""
    keys = sorted({o.split("=", 1)[0].strip() for o in overrides} & set(_KPIS_CONSENSUS))
    for key in keys:
        leaf = key.split(".", 1)[1]
        before, after = getattr(cfg.consensus, leaf), getattr(profile.consensus, leaf)
        if before == after:
            continue
        ext = _KPIS_CONSENSUS[key]
        how = f"--set {ext}=… to change it" if ext else "it is fixed for --kpis input"
        log.warning("--kpis: --set %s ignored on this file: %s=%s applies (%s; "
                    "docs/real-series.md)", key, key, after, how)


# settings that choose a store's series: a --kpis file's series are its own columns (and, in the
# long layout, its dimension / segment rows), so these change nothing there
_STORE_SERIES_KEYS = ("kpis", "dimensions", "slice_kpis", "pair_min_share", "product_min_orders",
                      "product_prices")


def _warn_store_only_on_kpis(overrides: list[str], log) -> None:
    """A --set of a setting that picks a store's series, on --kpis input: analysed anyway, every
    series of the file — said once (audit56: `--set kpis=[orders]` changed only the run id)."""
    keys = sorted({o.split("=", 1)[0].strip().split(".", 1)[0] for o in overrides}
                  & set(_STORE_SERIES_KEYS))
    if keys:
        log.warning("--kpis: --set %s ignored on this file: %s a store's series; a --kpis file's "
                    "series are its columns (long layout: its kpi / dimension / segment rows) — "
                    "keep in the file the ones to analyse", ", ".join(keys),
                    "it picks" if len(keys) == 1 else "they pick")


def _check_as_of(as_of: str, ds, cfg) -> None:
    """--as-of after the data's last day (its last order or traffic day) is bad input: the
    customer models would read the days after the data as every customer lapsing (recency, churn
    label, activity clock). So is a day the monitor state refuses (a damaged state file, a later
    day already judged): found here, before any stage runs, not after the customer models."""
    orders = ds.tables.get("orders")
    if orders is None or not len(orders):
        return
    from analytics.customers.rfm import data_end_date
    from shocklab.errors import InputError

    end = data_end_date(orders, ds.tables.get("website_traffic")).date()
    if dt.date.fromisoformat(as_of) > end:
        raise InputError(
            f"--as-of {as_of}: after the data's last day {end}; the customer models would "
            "read the days without data as customers lapsing — give a day on or before it"
        )
    import pandas as pd

    from analytics.customers.rfm import valid_mask

    valid = orders.loc[valid_mask(orders), "order_date"]
    first = pd.Timestamp(pd.to_datetime(valid).min()).date() if len(valid) else None
    if first is not None and dt.date.fromisoformat(as_of) < first:
        raise InputError(
            f"--as-of {as_of}: before the data's first order day {first}; the customer models "
            f"need orders on or before it — give a day from {first} to {end}"
        )
    if first is not None:   # the customer models and the monitor run (orders on or before it)
        from analytics.customers.pipeline import check_daily_state

        check_daily_state(cfg, ds, as_of)


GATE_NEEDS_TRUTH = (
    "--min-recall/--min-precision need truth (truth/events.json, or --events with --kpis)"
)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging("analysis", debug=args.debug, quiet=args.quiet)

    from shocklab.atomic import allow_replace, atomic_dir, validate_out
    from shocklab.errors import GateFailure, InputError

    for flag, val in (("--min-recall", args.min_recall), ("--min-precision", args.min_precision)):
        if val is not None and not 0 <= val <= 1:
            raise InputError(f"{flag}: must be between 0 and 1, got {val}")
    if args.events and not args.kpis:
        raise InputError("--events needs --kpis (a data directory carries its truth in truth/)")
    if args.calendar and not args.kpis:
        raise InputError("--calendar applies to --kpis only (a data directory carries its own "
                         "marketing_calendar.csv; edit that one)")
    if args.kpis and args.transactions:
        raise InputError("--kpis and --transactions are two different inputs: give one")
    if args.data is not None and (args.kpis or args.transactions):
        raise InputError(f"--data and {'--kpis' if args.kpis else '--transactions'} are two "
                         "different inputs: give one")  # --data was ignored without a word
    args.data = "data" if args.data is None else args.data
    for flag, value, default in (("--step", args.step, "auto"), ("--layout", args.layout, "auto"),
                                 ("--duplicates", args.duplicates, "mean")):
        if value != default and not args.kpis:   # --layout/--duplicates were ignored silently
            raise InputError(f"{flag} applies to --kpis only")
    if args.sum_columns is not None and not args.kpis:
        raise InputError("--sum-columns applies to --kpis only")
    sum_columns = [c.strip() for c in (args.sum_columns or "").split(",") if c.strip()]
    if args.sum_columns is not None and not sum_columns:
        raise InputError("--sum-columns: give at least one column name")
    if not args.verify and (args.kpis or args.transactions):   # ignored, as the flags below
        raise InputError("--no-verify applies to --data only (a data directory's manifest)")
    if args.date_format and not args.transactions:
        raise InputError("--date-format applies to --transactions only")
    gate = args.min_recall is not None or args.min_precision is not None
    if gate and (args.transactions or (args.kpis and not args.events)):
        # no truth can come: say so before reading the file (its ingest warnings came first)
        raise InputError(GATE_NEEDS_TRUTH)
    if args.as_of is not None and args.kpis:
        raise InputError("--as-of dates the customer models: it applies to --data and "
                         "--transactions, not --kpis")
    inputs = (
        [args.kpis, args.events, args.calendar, args.transactions]
        if args.kpis or args.transactions
        else [args.data]
    ) + [args.config]   # a --config inside --out was deleted with the earlier run (exit 0)
    if args.out is not None:
        validate_out(args.out, inputs, force=args.force, kind="run")
    if args.as_of is not None:
        try:
            dt.date.fromisoformat(args.as_of)
        except ValueError:
            raise InputError(f"--as-of: expected a date YYYY-MM-DD, got {args.as_of!r}") from None
    from shocklab.cli import held_console

    # every input is checked before a warning reaches the console: a refused input (a config
    # --set, --as-of, --detectors, --out) is its one error line, not the ingest, integrity or
    # --set warnings of what was read before it, followed by it (the log file gets them at once)
    with held_console():
        # a data directory is read on a thread while the analysis modules are imported (the readers
        # run in Arrow's threads, mostly outside the GIL); its errors surface where it is used
        ahead = None if args.kpis or args.transactions else _read_ahead(args.data, args.verify)
        from analytics.config import load_analysis_config
        from analytics.config_checks import alarming_voters, check_store_names, require_voters
        from analytics.context import RunContext
        from analytics.kpis_columnar import check_memory_setting
        from analytics.outputs import write_outputs
        from analytics.pipeline import data_hash, run_id, select_detectors
        from evaluation.pipeline import format_table, run  # analysis stages + scoring against truth
        from evaluation.truth import attach

        check_memory_setting()
        cfg = load_analysis_config(args.config, args.overrides)
        if not args.kpis:
            _warn_ignored(args.overrides or [], cfg, log)
        extra_files: list[Path] = []
        t_load = time.perf_counter()
        # the truth goes to the evaluation stages only (docs/ARCHITECTURE.md import rule 3)
        if args.kpis:
            from analytics.external import external_profile, load_kpis_file, sensitivity_rule
            from evaluation.labels import labels_truth
            ds = load_kpis_file(args.kpis, duplicates=args.duplicates, layout=args.layout,
                                step=args.step, sum_columns=sum_columns)
            # config `external`: settings for real series only; the sensitivity by the
            # file's step
            rule = sensitivity_rule(cfg, ds.ingest.get("step_seconds"))
            _log_sensitivity_rule(rule, args.overrides or [], log)
            profile = external_profile(cfg, ds.ingest.get("step_seconds"))
            _warn_replaced_on_kpis(args.overrides or [], cfg, profile, log)
            _warn_store_only_on_kpis(args.overrides or [], log)
            cfg = profile
            extra_files = [Path(args.kpis)] + ([Path(args.events)] if args.events else [])
            calendar = None
            # the planned days, read as a store run reads its marketing_calendar
            if args.calendar:
                from analytics.external_calendar import load_calendar
                calendar, calendar_info = load_calendar(args.calendar, ds.tables["kpis_daily"])
                ds.tables["marketing_calendar"] = calendar
                extra_files.append(Path(args.calendar))
            truth = labels_truth(args.events, ds) if args.events else None
            t_load = round(time.perf_counter() - t_load, 3)
        elif args.transactions:
            from analytics.transactions import load_transactions
            ds = load_transactions(args.transactions, date_format=args.date_format)
            extra_files = [Path(args.transactions)]
            truth = None  # a real transactions file has no truth
            t_load = round(time.perf_counter() - t_load, 3)
        else:
            from analytics.schedule import preload
            from evaluation.pipeline import STAGES

            preload(STAGES)  # the models and plots the stage scheduler imports before its fork
            ds, truth, t_load = ahead.result()  # read on a thread since the start (_read_ahead)
        if args.as_of is not None:
            if not cfg.customers.enabled:   # it changed the run id and nothing else
                raise InputError(f"--as-of {args.as_of} dates the customer models, and they are "
                                 "off (customers.enabled: false): drop --as-of or turn them on")
            _check_as_of(args.as_of, ds, cfg)
        names = ([n.strip() for n in args.detectors.split(",") if n.strip()] if args.detectors
                 else None)
        if args.detectors is not None and not names:
            raise InputError("--detectors: give at least one name")
        cfg = select_detectors(cfg, names, truth is not None)
        if not args.kpis:   # a --kpis file's series have its own dimension and KPI names
            check_store_names(cfg)
        if not names:   # '--detectors oracle' (named) runs the oracle alone; without gates, exit 0
            require_voters(cfg, products=not args.kpis)
        elif "oracle" not in names and not alarming_voters(cfg, not args.kpis):
            raise InputError(f"--detectors {args.detectors}: none of them can raise an incident on "
                             "this input (product_watch watches product series only, and a --kpis "
                             "file has none); name a voter, or 'oracle' to run the oracle alone")
        if gate and truth is None:
            raise InputError(GATE_NEEDS_TRUTH)
        if gate and not alarming_voters(cfg, not args.kpis):   # an empty consensus "failed", exit 1
            raise InputError(
                "--min-recall/--min-precision judge the consensus, and "
                + (f"--detectors {args.detectors}" if names else "the config")
                + " enables no voting detector (the oracle never votes)")

        dhash = data_hash(ds, extra_files)
        checks = {k: ds.manifest[k] for k in ("integrity", "cleaning") if k in ds.manifest}
        if truth is not None and truth.left_out:   # labelled windows outside the data or in a gap
            checks["labels_left_out"] = truth.left_out
        integrity = checks.get("integrity", {})
        if integrity.get("actual_sha256") or integrity.get("missing"):
            # --no-verify on changed or missing files (truth/ removed): a new run id, never the
            # clean run's directory (ids with changed files only are as before)
            from shocklab.hashing import sha256_json
            dhash = sha256_json([dhash, integrity.get("actual_sha256") or {}]
                                + ([{"missing": integrity["missing"]}] if integrity.get("missing")
                                   else []))
        # how the file was read changes the figures: a reading flag away from its default is
        # part of the run id (two runs of one file with --duplicates mean and sum shared an id,
        # so the second replaced the first's reports/<id> and the API listed one run); defaults
        # add nothing, so the ids of runs without such flags are as before
        reading: dict[str, Any] = {
            flag: value for flag, value, default in (
                ("duplicates", args.duplicates, "mean"), ("layout", args.layout, "auto"),
                ("step", args.step, "auto"), ("date_format", args.date_format, None))
            if value != default}
        if sum_columns:
            reading["sum_columns"] = sorted(set(sum_columns))
        if reading:
            from shocklab.hashing import sha256_json
            dhash = sha256_json([dhash, reading])
        rid = run_id(ds, cfg, dhash) + (f"-as-of-{args.as_of}" if args.as_of else "")
        out = Path(args.out) if args.out else Path("reports") / rid
        validate_out(out, inputs, force=args.force, kind="run",
                     flag="--out" if args.out else "default --out")
    log.info("analysing %s -> %s", args.kpis or args.transactions or args.data, out)
    with allow_replace(args.force), atomic_dir(out, kind="run") as tmp:
        ctx = attach(RunContext(config=cfg, data=ds, out_dir=tmp, as_of=args.as_of), truth)
        ctx.timings["load"] = t_load
        run(ctx)
        if (
            args.kpis and ctx.scorecard is not None
        ):  # NAB score, affiliation F1 … beside event recall
            from evaluation.ts_metrics import add_series_metrics
            add_series_metrics(ctx)
        extra = {
            "run_id": rid,
            "data_hash": dhash,
            "argv": list(argv or []),
            "input_checks": checks,
        }
        if args.kpis:
            from analytics.external import ingest_summary
            extra["ingest"] = ingest_summary(ds)
            extra["external_sensitivity"] = rule
            if calendar is not None:  # outputs writes the days as marketing_calendar.csv
                extra["calendar"] = calendar_info
        write_outputs(ctx, extra)

    for name, st in sorted(ctx.detector_status.items()):
        if not st.get("ok") and not st.get("skipped"):
            log.warning("detector %s failed: %s (the others voted)", name, st["error"])
    log.info("%d consensus incident(s); run directory: %s", len(ctx.incidents), out)
    if ctx.scorecard is None:
        log.info("no truth: scoring skipped")
        return 0
    log.info(format_table(ctx.scorecard))
    if ctx.scorecard.get("series_metrics"):
        from evaluation.ts_metrics import format_series_table
        log.info(format_series_table(ctx.scorecard["series_metrics"]))
    ins = ctx.scorecard.get("insights")
    if ins and ins.get("events"):
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        log.info(
            "insights on %d matched events: root cause %s · KPI attribution %s · signature %s · "
            "median magnitude error %s",
            ins["events"],
            fmt(ins.get("root_cause_accuracy")),
            fmt(ins.get("kpi_attribution")),
            fmt(ins.get("signature_accuracy")),
            fmt(ins.get("magnitude_error_median")),
        )
    head = ctx.scorecard["headline"]
    failures = []
    if args.min_recall is not None and head["recall"] is None:
        # no unexpected event was scored: a recall bar can be neither met nor failed by a figure
        warm = ctx.scorecard.get("warmup") or {}
        why = (f", {len(warm['event_ids'])} inside the warm-up (scoring.warmup_days="
               f"{warm.get('days')})" if warm.get("event_ids") else "")
        failures.append(f"consensus recall has no value: no unexpected event was scored{why}; "
                        f"--min-recall {args.min_recall} cannot pass")
    # the figure as the scorecard holds it (4 decimals), which the bar is held to: "0.667 <
    # --min-recall 0.66675" read as a pass that failed
    elif args.min_recall is not None and head["recall"] < args.min_recall:
        failures.append(f"consensus recall {head['recall']:.4f} < --min-recall {args.min_recall}")
    if args.min_precision is not None and (head["precision"] or 0.0) < args.min_precision:
        failures.append(
            f"consensus precision {head['precision'] or 0.0:.4f} < --min-precision "
            f"{args.min_precision}"
        )
    if failures:
        raise GateFailure(
            f"{'; '.join(failures)} ({head['mode']} scoring; see {out / 'scorecard.json'})"
        )
    return 0


if __name__ == "__main__":
    exit_process(run_cli(main))  # no interpreter teardown: everything is written
