#!/usr/bin/env python
"""Cost of the random-world benchmark: wall time for N seeds on a local process pool and on a
Dask LocalCluster (2 workers each by default), generation included. Prints figures; asserts
nothing.

    PYTHONPATH=$PWD/src:$PWD python bench/bench_benchmark.py --seeds 4
    PYTHONPATH=$PWD/src:$PWD python bench/bench_benchmark.py --seeds 10 --executors local

Each run is ``run_experiment.py --config config/experiments/random_world.yaml --set split.run=train
--set split.train.count=N`` (train seeds 1..N: timing needs no held-out seed) in a fresh output
directory with a fresh world cache, so every seed is generated and analysed as a first benchmark
run pays it (a rerun with the same --out resumes and costs nothing). The wall time includes
starting the pool or cluster and the workers' imports. On a shared machine the figures move with
the other load: compare the executors side by side, and read the per-seed figure as an upper
bound.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import child_refused, fail, parser, positive_int, run, scratch  # bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
EXECUTORS = ("local", "dask", "serial")


def one(executor: str, workers: int, seeds: int, tmp: Path, extra: list[str]) -> float:
    out = tmp / f"{executor}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, str(ROOT / "run_experiment.py"), "--config",
           str(ROOT / "config/experiments/random_world.yaml"), "--executor", executor,
           "--workers", str(workers), "--out", str(out), "--no-plots", "--no-progress", "--quiet",
           "--set", "split.run=train", "--set", f"split.train.count={seeds}"]
    for s in extra:
        cmd += ["--set", s]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    t0 = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    child_refused(res.returncode, res.stderr, f"run_experiment.py ({executor})")   # a --set
    if res.returncode not in (0, 1):   # was exit 1, a failed gate's code
        sys.stderr.write(res.stderr[-2000:])
        raise SystemExit(f"{executor}: run_experiment exited {res.returncode}")
    return wall


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--seeds", type=positive_int, default=4, help="train seeds 1..N (default 4)")
    ap.add_argument("--workers", type=positive_int, default=2,
                    help="workers of local and dask (default 2; serial runs one)")
    ap.add_argument("--executors", default="local,dask",
                    help="comma list of local, dask, serial (default local,dask)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="experiment override passed on (e.g. analysis_overrides...)")
    a = ap.parse_args()
    unknown = [e for e in a.executors.split(",") if e not in EXECUTORS]
    if unknown:   # was run_experiment's argparse error, then exit 1, per executor
        fail(f"--executors {a.executors}", f"{', '.join(map(repr, unknown))} is not one of "
             f"{', '.join(EXECUTORS)}")
    with scratch("shocklab-bench-benchmark-") as tmp:
        print(f"random-world benchmark, {a.seeds} seeds (generate + analyse + score), "
              f"{os.cpu_count()} CPUs")
        for ex in a.executors.split(","):
            w = 1 if ex == "serial" else a.workers
            load0 = os.getloadavg()[0]
            wall = one(ex, w, a.seeds, tmp, a.set)
            print(f"  {ex:>6} x{w}: {wall:7.1f} s wall, {wall / a.seeds:6.1f} s per seed "
                  f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
