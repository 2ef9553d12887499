#!/usr/bin/env python3
"""Generation benchmark: core throughput, end-to-end wall time and peak memory.

    python bench/bench_generate.py [--repeat 3]

Prints, for config/scenarios/bench_1m.yaml (~1 M orders) and one_year_4ch.yaml (~146 k orders):
- core: one world simulated in-process (traffic, orders, baskets, customers; no file writing,
  no interpreter start), best of --repeat → orders/s;
- simulate: the full simulation incl. counterfactual twins and truth;
- end to end: ``generate_data.py --format parquet`` in a fresh interpreter (wall time and peak RSS).
Figures vary with machine load; quote them with the command that produced them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from simulation import engine  # noqa: E402
from simulation.config import load_simulation_config  # noqa: E402

SCENARIOS = ["config/scenarios/bench_1m.yaml", "config/scenarios/one_year_4ch.yaml"]


def bench(path: str, repeat: int) -> None:
    cfg, _ = load_simulation_config(ROOT / path)
    setup = engine.build_setup(cfg)
    levers = engine.levers_for(setup, engine.resolve_events(cfg))
    best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = engine.simulate_run(setup, levers, with_customers=True)
        best = min(best, time.perf_counter() - t0)
        n = run.o_day.size
    t0 = time.perf_counter()
    world = engine.simulate(cfg)
    sim = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        # The child reports its own peak RSS: VmHWM is per address space (ru_maxrss would include
        # this parent's peak, inherited across fork + exec on Linux).
        # the child reports its own peak RSS (VmHWM is per address space; ru_maxrss would
        # include this parent's peak), from an atexit handler (exit_process skips the teardown)
        from bench_profile import PROBE as probe
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                probe,
                str(ROOT / "generate_data.py"),
                "--config",
                str(ROOT / path),
                "--out",
                str(Path(tmp) / "d"),
                "--format",
                "parquet",
                "--quiet",
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        e2e = time.perf_counter() - t0
    peak_mb = int([ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KB")][-1]
                  .split()[1]) / 1024
    print(
        f"{cfg.scenario:>14}: {n:>9,} orders | core {best:6.3f} s = {n / best / 1e6:5.2f} M "
        "orders/s | "
        f"simulate incl. {world.runs - 1} twin(s) {sim:6.2f} s | end to end (parquet, fresh "
        "interpreter) "
        f"{e2e:6.2f} s, peak RSS {peak_mb:,.0f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for path in SCENARIOS:
        bench(path, args.repeat)


if __name__ == "__main__":
    main()
