#!/usr/bin/env python3
"""Where the time goes, side by side with another checkout (e.g. HEAD): CLI start-up, imports,
generation end to end, and an analysis's per-stage timings from run.json. Prints; asserts nothing.

    python bench/bench_profile.py --other /path/to/other/checkout [--repeat 5]
                                  [--scenario config/scenarios/one_year_4ch.yaml]
                                  [--analysis [--data DIR] [--reference DIR ...]
                                   [--analysis-repeat N] [--sequential]]
                                  [--skip-generate] [--skip-startup]

Every figure is measured in fresh interpreters, this tree and --other alternately (paired runs),
reported as the median of --repeat with the ratio other / this; peak RSS is the child's VmHWM.
On a shared machine compare the ratios, not the seconds.
- ``--help`` of generate_data.py, run_analysis.py and run_experiment.py;
- the ten slowest imports on generate_data.py's path (``python -X importtime``, this tree);
- generate_data.py end to end on --scenario, CSV and Parquet, plus the simulate / write split the
  CLI logs;
- with --analysis: run_analysis.py on one data directory (--data, or --scenario generated once),
  this tree, --other and every --reference back to back (--analysis-repeat rounds; --sequential
  adds this tree with SHOCKLAB_PARALLEL=0, without and with the customers stage's opt-in
  spare-core thread, SHOCKLAB_CUSTOMERS_BESIDE=1): wall, CPU, the main process's peak RSS and the
  peak of the process tree's summed RSS and PSS (the stage scheduler forks a worker: PSS counts
  the pages they share once), then run.json's stage timings side by side.
Everything written (generated data, run directories) goes under one temporary directory that is
removed when the script ends, also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (  # bench/ is on sys.path
    checkout,
    child_refused,
    fail,
    only_with,
    parser,
    path_arg,
    positive_int,
    run,
)

ROOT = Path(__file__).resolve().parents[1]
# every directory this script writes (generated data, run directories) lives under one scratch
# directory, removed when the script ends however it ends (error, Ctrl-C, SIGTERM): a run
# directory of the default analysis is ~190 MB
SCRATCH: Path | None = None


def scratch(prefix: str) -> Path:
    """A new directory under the script's scratch directory (``main`` creates and removes it)."""
    assert SCRATCH is not None, "scratch() outside main()"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=SCRATCH))
# The child reports its own peak RSS (VmHWM) from an atexit handler: the CLIs end with
# shocklab.cli.exit_process, which runs the atexit handlers and then skips the teardown.
PROBE = (
    "import atexit, re, runpy, sys; sys.argv = sys.argv[1:]\n"
    "atexit.register(lambda: print('PEAK_KB', re.search(r'VmHWM:\\s+(\\d+)', "
    "open('/proc/self/status').read()).group(1), file=sys.stderr, flush=True))\n"
    "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n"
    "    assert not e.code, e.code\n"
)


def _env(tree: Path) -> dict[str, str]:
    """The tree's own code first (the shared venv's editable install points elsewhere)."""
    return {**os.environ, "SHOCKLAB_LOG_DIR": "", "PYTHONPATH": f"{tree / 'src'}:{tree}"}


def _descendants(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def _tree_memory(pids: list[int]) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) in MB over ``pids`` (smaps_rollup). PSS splits pages shared
    copy-on-write between forked processes, so it is the honest sum."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for ln in fh:
                    if ln.startswith("Rss:"):
                        rss += int(ln.split()[1])
                    elif ln.startswith("Pss:"):
                        pss += int(ln.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def timed_tree(tree: Path, script: str, *args: str, env: dict[str, str] | None = None
               ) -> dict[str, float]:
    """Wall, CPU (user+sys of the process and the children it reaped), the main process's peak
    RSS (VmHWM) and the peak over time of the process tree's summed RSS and PSS (sampled every
    100 ms) of ``python script args`` run from ``tree``."""
    import threading

    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, str(tree / script), *args], cwd=tree,
                         env={**_env(tree), **(env or {})}, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    peak = {"rss": 0.0, "pss": 0.0, "hwm": 0.0, "pss_at": 0.0, "pss_procs": 0}
    phases: dict[tuple[int, ...], float] = {}  # tree PSS peak while each set of children lived
    began: dict[tuple[int, ...], float] = {}  # when each set of children was first seen
    stop = threading.Event()

    def sample() -> None:
        pids, n = [p.pid], 0
        while not stop.is_set():
            if n % 5 == 0:  # the tree every 0.5 s (a /proc scan), its memory every 0.1 s
                pids = _descendants(p.pid)
            n += 1
            rss, pss = _tree_memory(pids)
            phase = tuple(sorted(pids[1:]))  # the child processes alive (fork order = pid order)
            phases[phase] = max(phases.get(phase, 0.0), pss)
            began.setdefault(phase, time.perf_counter() - t0)
            if pss > peak["pss"]:  # when, and over how many processes, the peak was reached
                peak["pss_at"], peak["pss_procs"] = time.perf_counter() - t0, len(pids)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)
            try:
                with open(f"/proc/{p.pid}/status") as fh:
                    m = re.search(r"VmHWM:\s+(\d+)", fh.read())
                if m:
                    peak["hwm"] = max(peak["hwm"], int(m.group(1)) / 1024)
            except OSError:
                pass
            stop.wait(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        err = p.stderr.read() if p.stderr else ""
        _, status, ru = os.wait4(p.pid, 0)
    except BaseException:  # Ctrl-C / SIGTERM: no child left writing into the scratch directory
        stop.set()
        _end_group(p)
        raise
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    child_refused(p.returncode, err, f"{script} ({tree})")   # bad input, e.g. not a world
    if p.returncode not in (0, 1):   # 1: a quality gate, still a complete run
        sys.exit(f"{tree / script} {' '.join(args)} failed ({p.returncode}):\n{err[-2000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "hwm": peak["hwm"],
            "rss": peak["rss"], "pss": peak["pss"], "pss_at": peak["pss_at"],
            "pss_procs": peak["pss_procs"], "pss_phases": [round(v) for v in phases.values()],
            "phase_starts": [round(v, 1) for v in began.values()]}


def _end_group(p: subprocess.Popen[str]) -> None:
    """Stop ``p`` and the processes it forked (its own session: Ctrl-C reaches only this script,
    which ends them here): SIGTERM (the CLIs clean up their staging), SIGKILL after 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def timed(tree: Path, script: str, *args: str) -> tuple[float, float, str]:
    """(wall s, peak RSS MB, stdout) of ``python script args`` run from ``tree``."""
    env = _env(tree)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", PROBE, str(tree / script), *args], cwd=tree, env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    child_refused(p.returncode, p.stderr, f"{script} ({tree})")   # e.g. an invalid --scenario
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
            tmp = scratch("gen-") if out_arg else None
            extra = ["--out", str(tmp / "d")] if tmp is not None else []
            w, pk, out = timed(tree, script, *args, *extra)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
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


def _scenario(path: str) -> Path:
    """--scenario as given from the working directory, else from the repository root (the
    default's form, so it works from any directory), resolved: the children run in the
    checkout (a relative path from elsewhere was not found there). Neither a file: one line,
    exit 2 (it was the generation child's traceback, exit 1, after the start-up runs)."""
    p = Path(path)
    p = p if p.is_file() else ROOT / p
    if not p.is_file():
        fail(f"--scenario {path}", "no such file (read from here, then from the checkout)")
    return p.resolve()


def main() -> int:
    """Parse the flags and run in a scratch directory that is removed at the end (also on an
    error, Ctrl-C or SIGTERM)."""
    global SCRATCH

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)  # SIGTERM unwinds like Ctrl-C: finally runs
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        SCRATCH = Path(tmp)
        try:
            return _main()
        finally:
            SCRATCH = None


def _main() -> int:
    ap = parser(__doc__)
    ap.add_argument(
        "--other", type=Path, default=None, help="another checkout to compare with (e.g. HEAD's)"
    )
    ap.add_argument("--repeat", type=positive_int, default=5, help="paired runs (default 5)")
    ap.add_argument("--scenario", type=path_arg, default="config/scenarios/one_year_4ch.yaml")
    ap.add_argument("--analysis", action="store_true", help="also time run_analysis.py (long)")
    ap.add_argument(
        "--data",
        default=None,
        help="data directory for --analysis (default: --scenario, generated)",
    )
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--skip-startup", action="store_true", help="skip --help and -X importtime")
    ap.add_argument("--reference", type=path_arg, action="append", default=[],
                    help="--analysis: one more checkout to run beside (e.g. current main)")
    ap.add_argument("--analysis-repeat", type=positive_int, default=1,
                    help="--analysis: rounds of back-to-back runs (default 1)")
    ap.add_argument("--sequential", action="store_true",
                    help="--analysis: also this tree with SHOCKLAB_PARALLEL=0")
    args = ap.parse_args()
    this = ROOT
    other = checkout(args.other, "--other", ("run_experiment.py",)) if args.other else None
    args.reference = [checkout(r, "--reference") for r in args.reference]
    if not args.analysis:   # after the checkouts: a bad one is named first
        only_with("--analysis", {"--data": args.data is not None, "--reference": bool(
            args.reference), "--analysis-repeat": args.analysis_repeat != 1,
            "--sequential": args.sequential})
    if not args.skip_generate or (args.analysis and args.data is None):
        _scenario(args.scenario)   # checked before anything runs
    if args.analysis and args.data is not None and not Path(args.data).is_dir():
        fail(f"--data {args.data}", "no such data directory")
    trees = [this] + ([other] if other else [])
    print(f"this: {this}" + (f"  other: {other}" if other else ""))
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of "
        f"{args.repeat} paired runs"
    )

    if not args.skip_startup:
        print("CLI start-up (--help):")
        for script in ("generate_data.py", "run_analysis.py", "run_experiment.py"):
            line(f"{script} --help", paired(trees, args.repeat, script, "--help"), this, other)
        import_profile()

    if not args.skip_generate:
        scen = str(_scenario(args.scenario))
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
            data = str(scratch("data-") / "d")
            subprocess.run(
                [sys.executable, str(ROOT / "generate_data.py"), "--config",
                 str(_scenario(args.scenario)), "--out", data, "--quiet"],
                check=True, env=_env(ROOT),
            )
        analysis(Path(data).resolve(), this, other, args.reference, args.analysis_repeat,
                 args.sequential)
    return 0


def analysis(data: Path, this: Path, other: Path | None, refs: list[Path], repeat: int,
             sequential: bool) -> None:
    """run_analysis.py on one data directory: this tree (and, with --sequential, this tree with
    SHOCKLAB_PARALLEL=0), --other and each --reference, ``repeat`` rounds back to back (the order
    rotates each round); medians of wall and CPU, the largest peaks; then run.json's stage timings
    of each variant's last run."""
    variants: list[tuple[str, Path, dict[str, str]]] = [("this", this, {})]
    if sequential:
        variants.append(("this, sequential", this, {"SHOCKLAB_PARALLEL": "0"}))
        # the customers stage with its opt-in spare-core thread (CLV and the monitor beside)
        variants.append(("this, seq, beside", this,
                         {"SHOCKLAB_PARALLEL": "0", "SHOCKLAB_CUSTOMERS_BESIDE": "1"}))
    if other is not None:
        variants.append(("other", other, {}))
    variants += [(f"ref {r.name}", r.resolve(), {}) for r in refs]
    print(f"analysis of {data} (run_analysis.py, fresh interpreter, {repeat} round(s); load "
          f"average before {os.getloadavg()[0]:.1f}):")
    res: dict[str, list[dict[str, float]]] = {v[0]: [] for v in variants}
    runs: dict[str, Path] = {}
    for i in range(repeat):
        k = i % len(variants)
        for label, tree, env in variants[k:] + variants[:k]:
            out = scratch("run-") / "r"
            r = timed_tree(tree, "run_analysis.py", "--data", str(data), "--out", str(out),
                           "--quiet", env=env)
            r["load"] = os.getloadavg()[0]
            res[label].append(r)
            if label in runs:  # only each variant's last run is read (its run.json), at the end
                shutil.rmtree(runs[label].parent, ignore_errors=True)
            runs[label] = out
            print(f"    round {i + 1} {label:<18} {r['wall']:7.2f} s wall {r['cpu']:7.2f} s CPU "
                  f"(load {r['load']:.1f}); tree PSS peak {r['pss']:,.0f} MB at "
                  f"{r['pss_at']:.1f} s over {r['pss_procs']} process(es); per phase (alone / "
                  f"with each set of children, in order) {r['pss_phases']} MB; phases seen from "
                  f"{r['phase_starts']} s (tree scanned every 0.5 s)", flush=True)
    base = statistics.median(x["wall"] for x in res["this"])
    base_cpu = statistics.median(x["cpu"] for x in res["this"])
    for label, _, _ in variants:
        rs = res[label]
        w = statistics.median(x["wall"] for x in rs)
        c = statistics.median(x["cpu"] for x in rs)
        print(f"  {label:<18} wall {w:7.2f} s ({w / base:4.2f}x this) | CPU {c:7.2f} s "
              f"({c / base_cpu:4.2f}x) | peak: main process {max(x['hwm'] for x in rs):6,.0f} MB,"
              f" tree RSS sum {max(x['rss'] for x in rs):6,.0f} MB, tree PSS sum "
              f"{max(x['pss'] for x in rs):6,.0f} MB")
    timings = {
        label: json.loads((d / "run.json").read_text())["timings_seconds"]
        for label, d in runs.items()
    }
    keys = list(dict.fromkeys(k for t in timings.values() for k in t))
    print("  run.json stage timings (last round), " + " | ".join(v[0] for v in variants))
    for k in keys:
        vals = [timings[v[0]].get(k) for v in variants]
        if any(isinstance(v, dict) for v in vals):
            continue
        print(f"    {k:<22}" + " | ".join(
            f"{v:7.2f}" if v is not None else "      -" for v in vals))


if __name__ == "__main__":
    sys.exit(run(main))
