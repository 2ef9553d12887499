#!/usr/bin/env python3
"""Generation benchmark: core throughput, end-to-end wall time, where it goes, and peak memory.

    python bench/bench_generate.py [--repeat 3] [--other DIR] [--scenario PATH ...]
                                   [--format parquet|csv]

For config/scenarios/bench_1m.yaml (~1 M orders) and one_year_4ch.yaml (~146 k orders; or each
--scenario) prints:
- core: one world simulated in-process (traffic, orders, baskets, customers; no file writing,
  no interpreter start), best of --repeat → orders/s; simulate: the full simulation incl.
  counterfactual twins and truth (in-process, once);
- end to end: ``generate_data.py --format parquet`` in a fresh interpreter, median of --repeat
  (wall time and the child's peak RSS), split into phases from the CLI's debug marks
  (CLOCK_MONOTONIC, the same clock as this process's perf_counter): start-up (interpreter,
  site, the CLI module) → imports (the generation modules) → config (YAML, checks, pydantic
  validation) → simulate (twins included; the observable tables are written meanwhile) → write
  (what is left after the simulation: truth tables, manifest, waiting for the writers) → exit;
  the child's CPU seconds (user + system, all threads; near the wall time on a quiet machine,
  since most of the run holds the GIL), and each file's seconds on its writer thread;
- with --other DIR (another checkout, e.g. main's): the same end-to-end runs there, alternating
  with this tree run by run, and the ratio other / this of the medians.
Figures vary with machine load (this machine is shared): quote them with the command that
produced them and compare ratios measured side by side.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from _common import checkout, child_refused, parser, path_arg, positive_int, run  # noqa: E402
from bench_profile import PROBE, _scenario  # noqa: E402

SCENARIOS = ["config/scenarios/bench_1m.yaml", "config/scenarios/one_year_4ch.yaml"]
PHASES = ("start-up", "imports", "config", "simulate", "write", "exit")
FILES = re.compile(r"file times: (.*)")
MARKS = re.compile(r"phase marks: main ([\d.]+) imported ([\d.]+) generate ([\d.]+) validated "
                   r"([\d.]+) simulated ([\d.]+) written ([\d.]+)")


def core(path: str, repeat: int) -> str:
    from simulation import engine
    from simulation.config import load_simulation_config

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
    return (f"{cfg.scenario}: {n:,} orders | core {best:.3f} s = {n / best / 1e6:.2f} M orders/s"
            f" | simulate incl. {world.runs - 1} twin(s) {sim:.2f} s (in-process)")


def end_to_end(tree: Path, path: str, fmt: str) -> tuple[float, float, dict[str, float]]:
    """(wall s, peak RSS MB, phases s) of one fresh-interpreter generate_data.py run in ``tree``
    (phases are empty when that tree's CLI does not log its marks). The phases also hold
    "cpu" (the child's user + system seconds, all threads) and "file:<name>" (seconds each
    file took on a writer thread, when the CLI logs them)."""
    env = {**os.environ, "SHOCKLAB_LOG_DIR": "", "PYTHONPATH": f"{tree / 'src'}:{tree}"}
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-c", PROBE, str(tree / "generate_data.py"), "--config",
                str(ROOT / path), "--out", str(Path(tmp) / "d"), "--format", fmt, "--debug"]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(args, cwd=tree, capture_output=True, text=True, env=env)
        child_refused(proc.returncode, proc.stderr, f"generate_data.py ({tree})")   # bad YAML
        proc.check_returncode()   # any other failure: a bug, exit 3
        t_end = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KB")][-1].split()[1]
    phases: dict[str, float] = {}
    m = MARKS.search(proc.stdout)
    if m:
        main, imported, _generate, validated, simulated, written = map(float, m.groups())
        bounds = [t0, main, imported, validated, simulated, written, t_end]
        phases = {name: b - a for name, a, b in zip(PHASES, bounds[:-1], bounds[1:], strict=True)}
    phases["cpu"] = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    f = FILES.search(proc.stdout)
    for item in (f.group(1).split() if f else []):
        name, _, sec = item.rpartition("=")
        phases[f"file:{name}"] = float(sec)
    return t_end - t0, int(peak_kb) / 1024, phases


def bench_e2e(path: str, repeat: int, fmt: str, other: Path | None) -> None:
    trees = [ROOT] + ([other] if other else [])
    runs: dict[Path, list[tuple[float, float, dict[str, float]]]] = {t: [] for t in trees}
    for i in range(repeat):
        for tree in (trees if i % 2 == 0 else trees[::-1]):   # alternate who goes first
            runs[tree].append(end_to_end(tree, path, fmt))
    name = Path(path).stem
    wall = {t: statistics.median(r[0] for r in runs[t]) for t in trees}
    peak = {t: max(r[1] for r in runs[t]) for t in trees}
    msg = (f"{name}: end to end ({fmt}, fresh interpreter, median of {repeat}) "
           f"{wall[ROOT]:.2f} s, peak RSS {peak[ROOT]:,.0f} MB")
    if other:
        msg += (f" | other {wall[other]:.2f} s, {peak[other]:,.0f} MB | other/this "
                f"{wall[other] / wall[ROOT]:.2f}x")
    print(msg, flush=True)
    for tree in trees:
        who = "this" if tree == ROOT else "other"
        ph = [r[2] for r in runs[tree]]
        cpu = statistics.median(x["cpu"] for x in ph)
        if all(p in x for x in ph for p in PHASES):
            parts = " + ".join(f"{p} {statistics.median(x[p] for x in ph):.3f}" for p in PHASES)
            print(f"  {who} phases (s, medians): {parts} | CPU {cpu:.3f}", flush=True)
        else:
            print(f"  {who}: CPU {cpu:.3f} s (median)", flush=True)
        files = sorted({k for x in ph for k in x if k.startswith("file:")})
        if files and all(f in x for x in ph for f in files):
            med = {f: statistics.median(x[f] for x in ph) for f in files}
            parts = ", ".join(f"{f[5:]} {med[f]:.3f}"
                              for f in sorted(files, key=lambda k: -med[k]))
            print(f"  {who} files (s on a writer thread, medians, while the simulation runs): "
                  f"{parts}", flush=True)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=positive_int, default=3, help="runs per figure (default 3)")
    ap.add_argument("--other", type=path_arg, default=None,
                    help="another checkout to run side by side (e.g. /work/main)")
    ap.add_argument("--scenario", type=path_arg, action="append", default=None,
                    help=f"scenario YAML (repeatable; default {' and '.join(SCENARIOS)})")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--skip-core", action="store_true", help="only the end-to-end runs")
    args = ap.parse_args()
    other = checkout(args.other, "--other") if args.other else None
    # from here, else from the checkout (it was always the checkout: ROOT / path); a missing
    # file is one line and exit 2 before anything runs, not the first child's traceback
    scenarios = [str(_scenario(p)) for p in args.scenario or SCENARIOS]
    print(f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    for path in scenarios:
        if not args.skip_core:
            print(core(path, args.repeat), flush=True)
        bench_e2e(path, args.repeat, args.format, other)
    print(f"load average {os.getloadavg()[0]:.2f} at end", flush=True)


if __name__ == "__main__":
    sys.exit(run(main))
