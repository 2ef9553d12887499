#!/usr/bin/env python
"""Sweep throughput (runs/minute) with 1 and 2 workers, on a local process pool and on a Dask
LocalCluster, and the 2-worker speed-up. Prints figures; asserts nothing.

    python bench/bench_sweep.py        # 24 real cells (small scenario, prophet off) per run
    python bench/bench_sweep.py --cells 12 --repeat 1 --executors local
    python bench/bench_sweep.py --executors local --workers 2 --repeat 1 \
        --other /path/to/505f3a1 --rounds 3        # side by side: runs/min of both, the ratio
    python bench/bench_sweep.py --breakdown --executors       # where a cell's time goes

Every run analyses the same cells against the same pre-generated worlds (generation is done once
up front, so the figure is the sweep machinery plus analysis), in a fresh output directory,
``--repeat`` times (the best counts). The wall time includes starting the pool or cluster and each
worker's imports, as a real sweep pays them. On a shared machine the figures move with the other
load (the per-cell CPU seconds do not: when wall per cell grows with workers while CPU per cell
stays, the cores were busy with other work); run it when the machine is quiet.

``--other DIR`` runs this same command (local executor) in this tree and in the checkout DIR
alternately, ``--rounds`` times (each tree with its own ``src`` first on PYTHONPATH), and prints
both throughputs and their ratio per round and the median ratio: the figure for "sweeps N×
faster" (under load, only paired ratios mean anything).

``--breakdown`` prints where a cell's time goes: a spawned worker's start-up (a fresh
interpreter importing the cell's backend; the local pool forks workers with it preloaded), then
every cell run serially in this process with the pipeline's stage timings summed (the first cell
of each world loads it and computes its KPIs; the others reuse them), and each record's write.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import _common  # noqa: E402  (this script's folder is on sys.path)
import yaml  # noqa: E402
from _common import checkout, only_with, parser, positive_int  # noqa: E402

from experiments.cache import WorldCache  # noqa: E402
from experiments.config import load_experiment  # noqa: E402
from experiments.experiment import plan, run  # noqa: E402

THRESHOLDS = [2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]


def experiment_file(tmp: Path, cells: int) -> Path:
    seeds = 2 if cells >= 2 else 1
    n_thr = max(1, (cells + seeds - 1) // seeds)
    thresholds = (THRESHOLDS * (n_thr // len(THRESHOLDS) + 1))[:n_thr]
    thresholds = [t + 0.01 * i for i, t in enumerate(thresholds)]  # distinct settings
    doc = {"name": "bench_sweep", "scenario": str(ROOT / "config/scenarios/small.yaml"),
           "analysis": str(ROOT / "config/analysis.yaml"),
           "analysis_overrides": {"detectors.prophet_residual.enabled": False},
           "grid": {"analysis.detectors.rolling_zscore.threshold": thresholds},
           "seeds": {"count": seeds, "start": 1}}
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def worker_startup() -> float:
    """Seconds for a fresh interpreter to import what a worker imports before its first cell."""
    code = ("import time; t = time.perf_counter(); from experiments import cell; "
            "cell._default_backend(); import evaluation.pipeline, analytics.loading; "
            "print(time.perf_counter() - t)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(ROOT), check=True,
                         capture_output=True, text=True).stdout
    total = time.perf_counter() - t0
    print(f"a spawned worker's start-up: {total:.2f}s (of which imports "
          f"{float(out.split()[-1]):.2f}s); the local pool forks warm workers instead "
          "(SHOCKLAB_POOL_START=spawn for fresh ones)")
    return total


def breakdown(exp, tasks, cache: Path, out: Path) -> None:  # noqa: ANN001
    """Cells serially in this process: stage timings summed, the first cell of a world apart."""
    from collections import defaultdict

    import analytics.pipeline as ap
    from experiments import cell
    from experiments.runner import save_record
    from simulation.api import scenario_hash

    worker_startup()
    stages: dict[str, float] = defaultdict(float)
    first: dict[str, float] = defaultdict(float)
    seen: set[str] = set()
    run_one = ap._run_one

    def timed(ctx, name, fn):  # noqa: ANN001, ANN202
        t = time.perf_counter()
        run_one(ctx, name, fn)
        (first if new_world else stages)[name] += time.perf_counter() - t

    ap._run_one = timed
    n_rest, rest, writes, cpu = 0, 0.0, 0.0, 0.0
    try:
        for task in tasks:
            world = scenario_hash(task.scenario)
            new_world = world not in seen
            seen.add(world)
            c0, t0 = time.process_time(), time.perf_counter()
            record = cell.run_cell(task)
            t1 = time.perf_counter()
            save_record(out / "cells", record)
            writes += time.perf_counter() - t1
            cpu += time.process_time() - c0
            if not new_world:
                n_rest += 1
                rest += t1 - t0
    finally:
        ap._run_one = run_one
    print(f"{len(tasks)} cells serially: {cpu:.2f}s CPU; {len(seen)} first cells of a world "
          f"(load + KPIs + every detector): " + ", ".join(
              f"{k} {v:.2f}s" for k, v in sorted(first.items(), key=lambda kv: -kv[1])))
    if n_rest:
        print(f"the other {n_rest} cells: {rest / n_rest:.3f}s wall each; per cell: " + ", ".join(
            f"{k} {v / n_rest:.3f}s" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])))
    print(f"record writes: {writes / len(tasks) * 1000:.1f} ms per cell")


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{tree / 'src'}:{tree}"}


RATE = re.compile(r"->\s*([\d.]+) runs/min")


def side_by_side(other: Path, args: argparse.Namespace) -> None:
    """This command (local executor) in this tree and in ``other``, alternately."""
    ratios = []
    for i in range(args.rounds):
        rates = {}
        for tree in ((ROOT, other) if i % 2 == 0 else (other, ROOT)):
            cmd = [sys.executable, str(tree / "bench/bench_sweep.py"), "--cells", str(args.cells),
                   "--executors", "local", "--workers", str(max(args.workers)), "--repeat", "1"]
            p = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True)
            m = RATE.search(p.stdout)
            if p.returncode or not m:
                sys.exit(f"{tree}: bench_sweep failed ({p.returncode}):\n{p.stderr[-2000:]}")
            rates[tree] = float(m.group(1))
        load = os.getloadavg()[0]
        ratios.append(rates[ROOT] / rates[other])
        print(f"round {i + 1}: this {rates[ROOT]:6.1f} runs/min | other {rates[other]:6.1f} "
              f"runs/min | this/other {ratios[-1]:.2f}x (load {load:.1f})", flush=True)
    print(f"sweep throughput this/other: median {statistics.median(ratios):.2f}x over "
          f"{len(ratios)} round(s) (local, {max(args.workers)} workers, {args.cells} cells)")


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument(
        "--cells",
        type=positive_int,
        default=24,
        help="cells per run (default 24: enough to amortise worker start-up)",
    )
    ap.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2],
                    help="pool sizes to time (default 1 2)")
    ap.add_argument(
        "--repeat", type=positive_int, default=2,
        help="runs per configuration; the best counts (default 2)",
    )
    ap.add_argument(
        "--executors", nargs="*", default=["local", "dask"], choices=["local", "dask", "serial"]
    )
    ap.add_argument("--other", type=_common.path_arg, default=None,
                    help="another checkout: run side by side (local executor), print the ratio")
    ap.add_argument("--rounds", type=positive_int, default=3,
                    help="side-by-side rounds (default 3)")
    ap.add_argument("--breakdown", action="store_true",
                    help="where a cell's time goes (worker start-up, stages, record writes)")
    args = ap.parse_args()
    if args.other is None:
        only_with("--other", {"--rounds": args.rounds != 3})
    if args.other is not None:
        side_by_side(checkout(args.other, "--other", ("bench/bench_sweep.py",)), args)
        return 0

    from simulation.api import generate, scenario_hash

    with _common.scratch("bench-sweep-") as tmp:
        exp = load_experiment(experiment_file(tmp, args.cells))
        cache = tmp / "worlds"
        _, tasks = plan(exp, cache, validate=True)
        t = time.perf_counter()
        worlds = WorldCache(cache, generate, scenario_hash)
        for task in tasks:
            worlds.get(task.scenario)
        print(
            f"{len(tasks)} cells per run; {len({scenario_hash(t.scenario) for t in tasks})} worlds "
            f"generated up front in {time.perf_counter() - t:.1f}s"
        )
        if args.breakdown:
            breakdown(exp, tasks, cache, tmp / "breakdown")
        rates: dict[tuple[str, int], float] = {}
        for executor in args.executors:
            for workers in args.workers:
                walls = []
                for i in range(args.repeat):
                    out = tmp / f"out-{executor}-{workers}-{i}"
                    t = time.perf_counter()
                    outcome = run(exp, out, executor=executor, workers=workers, cache_dir=cache,
                                  progress=False, plots=False)
                    walls.append(time.perf_counter() - t)
                    shutil.rmtree(out, ignore_errors=True)
                wall = min(walls)  # the least disturbed run: other load only ever slows it down
                ok = int((outcome.results["status"] == "ok").sum())
                rates[(executor, workers)] = ok / wall * 60
                analyse = outcome.results["time_analyse_s"].mean()
                cpu = outcome.results["time_cpu_s"].mean()
                spread = outcome.results["worker"].value_counts().tolist()
                load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
                print(
                    f"{executor:6s} {workers} worker{'s' if workers > 1 else ' '}: "
                    f"{ok}/{len(tasks)} ok in "
                    f"{wall:6.1f}s (best of {args.repeat}) -> {rates[(executor, workers)]:5.1f} "
                    "runs/min "
                    f"(per cell: analyse {analyse:.1f}s wall, {cpu:.1f}s CPU; cells per worker "
                    f"{spread}; "
                    f"load average {load:.1f} on {os.cpu_count()} cores)",
                    flush=True,
                )
        lo, hi = min(args.workers), max(args.workers)
        for executor in args.executors:
            if (executor, lo) in rates and (executor, hi) in rates and hi != lo:
                print(
                    f"{executor}: speed-up {hi} vs {lo} worker(s) = "
                    f"{rates[(executor, hi)] / rates[(executor, lo)]:.2f}x"
                )
    return 0


if __name__ == "__main__":
    sys.exit(_common.run(main))
