#!/usr/bin/env python3
"""Analyse a data directory: KPIs, detectors, consensus, customers, insights, plots and — when
truth/ exists — scoring against the injected events.

    python run_analysis.py [--data DIR | --transactions FILE | --kpis FILE.csv [--events FILE.json]]
                           [--config PATH] [--out DIR] [--min-recall X] [--min-precision Y]
                           [--detectors a,b] [--as-of DATE] [--set dotted.key=value ...] [--debug] [--quiet]

Output: a run directory (default ``reports/<run-id>/``, written atomically). The run id is
deterministic: ``<scenario>-<12 hex of sha256(data manifest hash, effective config)>``, so the
same inputs land in the same directory (rerunning replaces it). Exit codes: 0 ok, 1 a quality gate
failed (which figure missed which bar), 2 bad input (one line, nothing written).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from shocklab.cli import ArgumentParser, add_common_flags, run_cli, setup_logging  # noqa: E402


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="run_analysis.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python run_analysis.py --data data/ --min-recall 0.9\n"
               "  python run_analysis.py --data data/ --detectors rolling_zscore,prophet_residual "
               "--set consensus.min_votes=1\n"
               "  python run_analysis.py --kpis metrics.csv --events incidents.json\n"
               "exit codes: 0 ok · 1 a quality gate failed · 2 bad input (nothing written)\n"
               "run id: <scenario>-<12 hex of sha256(data manifest hash, effective config)>")
    p.add_argument("--data", default="data", help="data directory from generate_data.py (default: data/)")
    p.add_argument("--config", default=None, help="analysis config (default: config/analysis.yaml)")
    p.add_argument("--out", default=None, help="run directory (default: reports/<run-id>/)")
    p.add_argument("--min-recall", type=float, default=None, metavar="X",
                   help="exit 1 when the consensus recall (headline scoring mode) is below X")
    p.add_argument("--min-precision", type=float, default=None, metavar="Y",
                   help="exit 1 when the consensus precision is below Y")
    p.add_argument("--detectors", default=None, metavar="a,b", help="run only these configured detectors")
    p.add_argument("--kpis", default=None, metavar="FILE.csv",
                   help="analyse an external KPI table (timestamp + one column per KPI) instead of --data")
    p.add_argument("--events", default=None, metavar="FILE.json", help="labelled windows to score --kpis against")
    p.add_argument("--transactions", default=None, metavar="FILE",
                   help="analyse a transaction file (Online Retail layouts, .csv or .xlsx) instead of --data")
    p.add_argument("--as-of", dest="as_of", default=None, metavar="DATE",
                   help="customer models see the data up to DATE (YYYY-MM-DD); the At-Risk monitor judges "
                        "that day only, with its state in state/customers.sqlite (cooldowns persist)")
    add_common_flags(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log = setup_logging("analysis", debug=args.debug, quiet=args.quiet)

    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.pipeline import data_hash, run_id, select_detectors, write_outputs
    from evaluation.pipeline import format_table, run  # analysis stages + scoring against truth
    from shocklab.atomic import atomic_dir, check_writable_parent
    from shocklab.errors import GateFailure, InputError

    for flag, val in (("--min-recall", args.min_recall), ("--min-precision", args.min_precision)):
        if val is not None and not 0 <= val <= 1:
            raise InputError(f"{flag}: must be between 0 and 1, got {val}")
    if args.events and not args.kpis:
        raise InputError("--events needs --kpis (a data directory carries its truth in truth/)")
    if args.kpis and args.transactions:
        raise InputError("--kpis and --transactions are two different inputs: give one")
    if args.as_of is not None:
        import datetime as dt
        try:
            dt.date.fromisoformat(args.as_of)
        except ValueError:
            raise InputError(f"--as-of: expected a date YYYY-MM-DD, got {args.as_of!r}") from None
    cfg = load_analysis_config(args.config, args.overrides)
    extra_files: list[Path] = []
    t_load = time.perf_counter()
    if args.kpis:
        from analytics.external import load_kpis_file
        ds = load_kpis_file(args.kpis, args.events)
        extra_files = [Path(args.kpis)] + ([Path(args.events)] if args.events else [])
    elif args.transactions:
        from analytics.transactions import load_transactions
        ds = load_transactions(args.transactions)
        extra_files = [Path(args.transactions)]
    else:
        from analytics.loading import load_data_dir
        ds = load_data_dir(args.data)
    t_load = round(time.perf_counter() - t_load, 3)
    names = [n.strip() for n in args.detectors.split(",") if n.strip()] if args.detectors else None
    if args.detectors is not None and not names:
        raise InputError("--detectors: give at least one name")
    cfg = select_detectors(cfg, names, ds.has_truth)
    if (args.min_recall is not None or args.min_precision is not None) and not ds.has_truth:
        raise InputError("--min-recall/--min-precision need truth (truth/events.json, or --events with --kpis)")

    dhash = data_hash(ds, extra_files)
    rid = run_id(ds, cfg, dhash) + (f"-as-of-{args.as_of}" if args.as_of else "")
    out = Path(args.out) if args.out else Path("reports") / rid
    check_writable_parent(out)
    log.info("analysing %s -> %s", args.kpis or args.transactions or args.data, out)
    with atomic_dir(out) as tmp:
        ctx = RunContext(config=cfg, data=ds, out_dir=tmp, as_of=args.as_of)
        ctx.timings["load"] = t_load
        run(ctx)
        write_outputs(ctx, {"run_id": rid, "data_hash": dhash, "argv": list(argv or [])})

    for name, st in sorted(ctx.detector_status.items()):
        if not st.get("ok") and not st.get("skipped"):
            log.warning("detector %s failed: %s (the others voted)", name, st["error"])
    log.info("%d consensus incident(s); run directory: %s", len(ctx.incidents), out)
    if ctx.scorecard is None:
        log.info("no truth: scoring skipped")
        return 0
    log.info(format_table(ctx.scorecard))
    ins = ctx.scorecard.get("insights")
    if ins and ins.get("events"):
        fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
        log.info("insights on %d matched events: root cause %s · KPI attribution %s · signature %s · "
                 "median magnitude error %s", ins["events"], fmt(ins.get("root_cause_accuracy")),
                 fmt(ins.get("kpi_attribution")), fmt(ins.get("signature_accuracy")),
                 fmt(ins.get("magnitude_error_median")))
    head = ctx.scorecard["headline"]
    failures = []
    if args.min_recall is not None and (head["recall"] or 0.0) < args.min_recall:
        failures.append(f"consensus recall {head['recall']:.3f} < --min-recall {args.min_recall}")
    if args.min_precision is not None and (head["precision"] or 0.0) < args.min_precision:
        failures.append(f"consensus precision {head['precision']:.3f} < --min-precision {args.min_precision}")
    if failures:
        raise GateFailure(f"{'; '.join(failures)} ({head['mode']} scoring; see {out / 'scorecard.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
