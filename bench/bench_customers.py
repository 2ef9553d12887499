"""Benchmark the customers stage on a data directory and print its figures (not a timed test).

    python bench/bench_customers.py /tmp/cust/default          # a generated data dir
    python bench/bench_customers.py --transactions FILE.xlsx   # an Online Retail file
    python bench/bench_customers.py --cpu /tmp/cust/default    # CPU seconds (shared machine)
    python bench/bench_customers.py --cpu --repeat 3 DATA      # the minimum of three runs
    python bench/bench_customers.py --beside on --repeat 3 DATA    # CLV and monitor on a thread

Per-model figures are the minimum over the runs (warm: the heap, caches and lazily built parsers
of the earlier runs); ``first_run`` is the first run alone (cold, as in an analysis, where the
stage runs once), with its process CPU seconds. ``--beside`` off (default: everything in order,
as in an analysis) or on (when two cores are usable: CLV and the monitor on a thread beside the
other models, the opt-in ``SHOCKLAB_CUSTOMERS_BESIDE=1`` of an in-order analysis).

Prints per-model seconds and, when truth exists, the scores against it: churn ROC-AUC and
calibration, the customer truth scores (rate Spearman, P(alive) ROC-AUC, CLV error and interval
coverage, overall and per value tier) and the churn_wave alert delay.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "src"),
                str(Path(__file__).resolve().parents[1])]

from _common import fail, parser, path_arg, positive_int, run  # noqa: E402

from analytics.config import AnalysisConfig  # noqa: E402
from analytics.context import RunContext  # noqa: E402
from analytics.customers import pipeline  # noqa: E402
from evaluation import customer_scores  # noqa: E402
from evaluation.truth import attach, find_truth  # noqa: E402


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", type=path_arg, help="data directory")
    ap.add_argument("--transactions", type=path_arg,
                    help="Online Retail CSV/XLSX instead of a data directory")
    ap.add_argument("--repeat", type=positive_int, default=1,
                    help="run the stage N times; per-model figures are the minimum (a shared "
                         "machine's interference only adds time)")
    ap.add_argument("--cpu", action="store_true",
                    help="time in CPU seconds of this process instead of wall seconds (steadier "
                         "on a shared machine: compare trees side by side)")
    ap.add_argument("--beside", choices=("on", "off"), default="off",
                    help="CLV and the monitor on the stage's spare-core thread (on, when two cores "
                         "are usable) or in order (off)")
    args = ap.parse_args()
    # one of the two inputs (none was a TypeError traceback; a missing directory load_data_dir's
    # InputError as a traceback, exit 1; both: the data directory was ignored without a word)
    if args.data is None and args.transactions is None:
        fail("data", "give a data directory, or --transactions FILE")
    if args.data is not None and args.transactions is not None:
        fail(f"{args.data} and --transactions {args.transactions}", "give one of them, not both")
    if args.data is not None and not Path(args.data).is_dir():
        fail(args.data, "no such data directory")
    if args.transactions is not None and not Path(args.transactions).is_file():
        fail(f"--transactions {args.transactions}", "no such file")
    if args.beside == "on":
        os.environ["SHOCKLAB_CUSTOMERS_BESIDE"] = "1"
    if args.cpu:  # the stage's ticks read time.perf_counter: make them CPU time
        time.perf_counter = time.process_time
    t0 = time.perf_counter()
    if args.transactions:
        from analytics.transactions import load_transactions
        ds = load_transactions(args.transactions)
    else:
        from analytics.loading import load_data_dir
        ds = load_data_dir(args.data)
    load_s = time.perf_counter() - t0
    best: dict[str, float] = {}
    first: dict[str, float] = {}
    for i in range(args.repeat - 1):  # extra runs: only their timings are kept
        with tempfile.TemporaryDirectory() as tmp:
            ctx = RunContext(config=AnalysisConfig(), data=ds, out_dir=Path(tmp))
            c0 = time.process_time()
            pipeline.run(ctx)
            if i == 0:
                first = {**ctx.timings, "cpu": time.process_time() - c0}
            for k, v in ctx.timings.items():
                best[k] = min(best.get(k, v), v)
    with tempfile.TemporaryDirectory() as tmp:
        truth = None if args.transactions else find_truth(args.data)
        ctx = attach(RunContext(config=AnalysisConfig(), data=ds, out_dir=Path(tmp)), truth)
        c0 = time.process_time()
        pipeline.run(ctx)
        if not first:
            first = {**ctx.timings, "cpu": time.process_time() - c0}
        for k, v in ctx.timings.items():
            ctx.timings[k] = min(best.get(k, v), v)
        t_score = time.perf_counter()
        customer_scores.stage(ctx)  # the evaluation stage customer_scoring (timed apart)
        score_s = time.perf_counter() - t_score
        truth_scores = ctx.customer_scores  # set by the evaluation stage customer_scoring
        if truth_scores is not None:
            truth_scores.pop("p_alive_reliability", None)
    s = ctx.customers
    churn = s.get("churn", {})
    fig = {
        "orders": int(len(ds.tables["orders"])),
        "customers": s["customers"],
        "load_s": round(load_s, 2),
        "customers_stage_s": ctx.timings["customers"],
        "beside_thread": args.beside == "on" and pipeline.spare_core(),  # with 2 cores
        "first_run": {"stage_s": first["customers"], "stage_cpu_s": round(first["cpu"], 2),
                      **{k.split(".", 1)[1]: v for k, v in first.items()
                         if k.startswith("customers.")}},
        "customer_scoring_s": round(score_s, 2),
        "per_model_s": {
            k.split(".", 1)[1]: v for k, v in ctx.timings.items() if k.startswith("customers.")
        },
        "churn_eval_roc_auc": {k: v.get("roc_auc") for k, v in churn.get("models", {}).items()},
        "churn_truth": churn.get("truth"),
        "churn_calibration": {
            k: v for k, v in churn.get("calibration", {}).items() if k != "reliability"
        },
        "customer_truth_scores": truth_scores,
        "clv_status": s.get("clv", {}).get("status"),
        "clv_unscored": s.get("clv", {}).get("unscored_customers"),
        "churn_waves": s.get("monitor", {}).get("churn_waves"),
        "alerts": [(a["date"], a["severity"]) for a in s.get("monitor", {}).get("alerts", [])],
    }
    print(json.dumps(fig, indent=1))


if __name__ == "__main__":
    sys.exit(run(main))
