#!/usr/bin/env python
"""Sweep throughput (runs/minute) with 1 and 2 workers, on a local process pool and on a Dask
LocalCluster, and the 2-worker speed-up. Prints figures; asserts nothing.

    python bench/bench_sweep.py        # 24 real cells (small scenario, prophet off) per run
    python bench/bench_sweep.py --cells 12 --repeat 1 --executors local

Every run analyses the same cells against the same pre-generated worlds (generation is done once
up front, so the figure is the sweep machinery plus analysis), in a fresh output directory,
``--repeat`` times (the best counts). The wall time includes starting the pool or cluster and each
worker's imports, as a real sweep pays them. On a shared machine the figures move with the other
load (the per-cell CPU seconds do not: when wall per cell grows with workers while CPU per cell
stays, the cores were busy with other work); run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--cells",
        type=int,
        default=24,
        help="cells per run (default 24: enough to amortise worker start-up)",
    )
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument(
        "--repeat", type=int, default=2, help="runs per configuration; the best counts (default 2)"
    )
    ap.add_argument(
        "--executors", nargs="+", default=["local", "dask"], choices=["local", "dask", "serial"]
    )
    args = ap.parse_args()

    from simulation.api import generate, scenario_hash

    tmp = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    try:
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
