#!/usr/bin/env python3
"""Where the time goes, side by side with another checkout (e.g. HEAD): CLI start-up, imports,
generation end to end, and an analysis's per-stage timings from run.json. Prints; asserts nothing.

    python bench/bench_profile.py --other /path/to/other/checkout [--repeat 5]
                                  [--scenario config/scenarios/one_year_4ch.yaml]
                                  [--analysis [--data DIR]] [--skip-generate]

Every figure is measured in fresh interpreters, this tree and --other alternately (paired runs),
reported as the median of --repeat with the ratio other / this; peak RSS is the child's VmHWM.
On a shared machine compare the ratios, not the seconds.
- ``--help`` of generate_data.py, run_analysis.py and run_experiment.py;
- the ten slowest imports on generate_data.py's path (``python -X importtime``, this tree);
- generate_data.py end to end on --scenario, CSV and Parquet, plus the simulate / write split the
  CLI logs;
- with --analysis: run_analysis.py on one data directory (--data, or --scenario generated once),
  each tree's run.json stage timings side by side (one paired run: analyses are long).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import re, runpy, sys; sys.argv = sys.argv[1:]\n"
    "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n"
    "    assert not e.code, e.code\n"
    "print('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), "
    "file=sys.stderr)"
)


def timed(tree: Path, script: str, *args: str) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of ``python script args`` run from ``tree``."""
    env = {**os.environ, "SHOCKLAB_LOG_DIR": ""}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PROBE, str(tree / script), *args], cwd=tree, env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode:
        sys.exit(f"{tree / script} {' '.join(args)} failed:\n{p.stderr[-2000:]}")
    peak = [ln for ln in p.stderr.splitlines() if ln.startswith("PEAK_KB")][-1].split()[1]
    return wall, int(peak) / 1024, p.stdout


def paired(trees: list[Path], repeat: int, script: str, *args: str, out_arg: bool = False
           ) -> dict[Path, tuple[float, float, str]]:
    walls: dict[Path, list[float]] = {t: [] for t in trees}
    peaks: dict[Path, list[float]] = {t: [] for t in trees}
    last: dict[Path, str] = {}
    for i in range(repeat):
        for tree in (trees if i % 2 == 0 else trees[::-1]):   # alternate who goes first
            extra = ["--out", tempfile.mkdtemp(prefix="bench-profile-") + "/d"] if out_arg else []
            w, pk, out = timed(tree, script, *args, *extra)
            walls[tree].append(w)
            peaks[tree].append(pk)
            last[tree] = out
    return {t: (statistics.median(walls[t]), max(peaks[t]), last[t]) for t in trees}


def line(
    label: str, res: dict[Path, tuple[float, float, str]], this: Path, other: Path | None
) -> None:
    w, pk, _ = res[this]
    msg = f"  {label:<40} this {w:6.2f} s ({pk:,.0f} MB)"
    if other is not None:
        wo, pko, _ = res[other]
        msg += f" | other {wo:6.2f} s ({pko:,.0f} MB) | other/this {wo / w:4.1f}x"
    print(msg, flush=True)


def import_profile(top: int = 10) -> None:
    p = subprocess.run([sys.executable, "-X", "importtime", "-c",
                        "import sys; sys.path.insert(0, 'src'); import simulation.api"],
                       cwd=ROOT, capture_output=True, text=True)
    rows = []
    for ln in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", ln)
        if m and len(m.group(3)) <= 3:   # top-level and first-level imports only
            rows.append((int(m.group(2)) / 1e6, m.group(4)))
    print("  slowest imports on generate_data.py's path (cumulative, -X importtime, this tree):")
    for sec, mod in sorted(rows, reverse=True)[:top]:
        print(f"    {mod:<40}{sec:6.2f} s")


def stage_table(runs: dict[Path, Path], this: Path, other: Path | None) -> None:
    timings = {
        t: json.loads((d / "run.json").read_text())["timings_seconds"] for t, d in runs.items()
    }
    keys = list(dict.fromkeys([*timings[this], *(timings[other] if other else [])]))
    for k in keys:
        a = timings[this].get(k)
        b = timings[other].get(k) if other else None
        if isinstance(a, dict) or isinstance(b, dict):
            continue
        msg = f"    stage {k:<20} this {a if a is not None else float('nan'):7.2f} s"
        if other is not None:
            msg += f" | other {b if b is not None else float('nan'):7.2f} s"
        print(msg)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--other", type=Path, default=None, help="another checkout to compare with (e.g. HEAD's)"
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--scenario", default="config/scenarios/one_year_4ch.yaml")
    ap.add_argument("--analysis", action="store_true", help="also time run_analysis.py (long)")
    ap.add_argument(
        "--data",
        default=None,
        help="data directory for --analysis (default: --scenario, generated)",
    )
    ap.add_argument("--skip-generate", action="store_true")
    args = ap.parse_args()
    this = ROOT
    other = args.other.resolve() if args.other else None
    trees = [this] + ([other] if other else [])
    print(f"this: {this}" + (f"  other: {other}" if other else ""))
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of "
        f"{args.repeat} paired runs"
    )

    print("CLI start-up (--help):")
    for script in ("generate_data.py", "run_analysis.py", "run_experiment.py"):
        line(f"{script} --help", paired(trees, args.repeat, script, "--help"), this, other)
    import_profile()

    if not args.skip_generate:
        scen = str(ROOT / args.scenario)
        print(f"generation end to end ({args.scenario}):")
        for fmt in ("csv", "parquet"):
            res = paired(
                trees,
                args.repeat,
                "generate_data.py",
                "--config",
                scen,
                "--format",
                fmt,
                out_arg=True,
            )
            line(f"generate_data.py --format {fmt}", res, this, other)
            for t in trees:
                m = re.search(r"\(simulate ([\d.]+) s .*write ([\d.]+) s\)", res[t][2])
                if m:
                    print(
                        f"    {'this' if t == this else 'other'}: simulate {m.group(1)} s, write "
                        f"{m.group(2)} s "
                        "(last run, in-process)"
                    )

    if args.analysis:
        data = args.data
        if data is None:
            data = tempfile.mkdtemp(prefix="bench-profile-data-") + "/d"
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "generate_data.py"),
                    "--config",
                    str(ROOT / args.scenario),
                    "--out",
                    data,
                    "--quiet",
                ],
                check=True,
                env={**os.environ, "SHOCKLAB_LOG_DIR": ""},
            )
        data = str(Path(data).resolve())
        print(f"analysis of {data} (run_analysis.py, fresh interpreter, one paired run):")
        runs: dict[Path, Path] = {}
        res = {}
        for tree in trees:
            out = Path(tempfile.mkdtemp(prefix="bench-profile-run-")) / "r"
            res[tree] = timed(tree, "run_analysis.py", "--data", data, "--out", str(out), "--quiet")
            runs[tree] = out
        line("run_analysis.py (all stages)", res, this, other)
        stage_table(runs, this, other)
    return 0


if __name__ == "__main__":
    sys.exit(main())
