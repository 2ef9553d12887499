#!/usr/bin/env python3
"""Benchmark of the detection pipeline on the default two-year scenario (prints, never asserts).

    python bench/bench_analysis.py [--data DIR] [--config PATH] [--set k=v ...]

Without --data it generates the default scenario into a temporary directory first (not timed).
Prints wall time per stage and per detector, the total, peak memory (this process and the Prophet
worker processes, from getrusage) and the scorecard table (quality next to the oracle's).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import _common  # noqa: E402  (this script's folder is on sys.path)


def main() -> int:
    ap = _common.parser(__doc__)
    ap.add_argument(
        "--data", type=_common.path_arg, default=None,
        help="data directory (default: generate the default scenario)"
    )
    ap.add_argument(
        "--config", type=_common.path_arg, default=None,
        help="analysis config (default: config/analysis.yaml)"
    )
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    # one line and exit 2 before anything runs (a missing --data was load_data_dir's traceback,
    # exit 1; a missing --config came after the default scenario was generated)
    if args.data is not None and not Path(args.data).is_dir():
        _common.fail(f"--data {args.data}", "no such data directory")
    if args.config is not None and not Path(args.config).is_file():
        _common.fail(f"--config {args.config}", "no such file")

    tmp = None
    data = args.data
    if data is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-analysis-")
        data = str(Path(tmp.name) / "data")
        print(f"generating the default scenario into {data} …", flush=True)
        subprocess.run(
            [sys.executable, str(ROOT / "generate_data.py"), "--out", data, "--quiet"], check=True
        )

    ru0, ru0_kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu0, cpu0_kids = ru0.ru_utime + ru0.ru_stime, ru0_kids.ru_utime + ru0_kids.ru_stime
    t_start = time.perf_counter()
    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.loading import load_data_dir
    from analytics.outputs import write_outputs
    from evaluation.pipeline import format_table, run
    t_import = time.perf_counter() - t_start

    cfg = load_analysis_config(args.config, args.overrides)
    t0 = time.perf_counter()
    ds = load_data_dir(data)
    t_load = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="bench-run-") as out:
        ctx = RunContext(config=cfg, data=ds, out_dir=Path(out))
        run(ctx)
        t0 = time.perf_counter()
        write_outputs(ctx)
        t_write = time.perf_counter() - t0
    total = time.perf_counter() - t_start

    n_orders = len(ds.tables["orders"])
    n_series = (
        ctx.detections.groupby(["kpi", "dimension", "segment"]).ngroups
        if len(ctx.detections)
        else 0
    )
    print(f"\nanalysis of {data}: {n_orders:,} orders, {ctx.kpis_daily['date'].nunique()} days, "
          f"{n_series} series per detector")
    rows = [("imports", t_import), ("load + validate", t_load)]
    rows += [(f"stage {k}", v) for k, v in ctx.timings.items()]
    rows += [(f"  detector {k}", st.get("seconds", 0.0)) for k, st in ctx.detector_status.items()]
    rows += [("write outputs", t_write), ("TOTAL (wall)", total)]
    for name, sec in rows:
        print(f"  {name:<34}{sec:>8.2f} s")
    ru_me, ru_kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    cpu_me = ru_me.ru_utime + ru_me.ru_stime - cpu0
    cpu_kids = ru_kids.ru_utime + ru_kids.ru_stime - cpu0_kids
    print(f"  CPU time: {cpu_me:.2f} s in this process + {cpu_kids:.2f} s in Prophet workers "
          f"(wall time on a busy machine exceeds the CPU time divided by the cores)")
    me = ru_me.ru_maxrss / 1024
    kids = ru_kids.ru_maxrss / 1024
    print(f"  peak memory: {me:,.0f} MB (this process), {kids:,.0f} MB (largest worker process)")
    if ctx.scorecard is not None:
        print()
        print(format_table(ctx.scorecard))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
