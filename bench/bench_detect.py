#!/usr/bin/env python3
"""Benchmark of the detection stage: per-detector wall time, rows/s and peak memory (prints, never
asserts).

    python bench/bench_detect.py --data data/                 # detection stage on a data directory
    python bench/bench_detect.py --rows 100000 --rows 1000000 # long single-KPI series (5-min steps)
    python bench/bench_detect.py --data data/ --set detectors.prophet_residual.enabled=false

Each case runs in a fresh child process so its peak RSS (VmHWM, children included for Prophet's
worker processes) is its own. Long series are synthetic: one KPI with a daily and weekly cycle
and Poisson noise, ``--freq`` apart (default 5 minutes), analysed with the shipped detector
settings (detect stage only, no KPI aggregation).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import (  # bench/ is on sys.path
    child_refused,
    fail,
    parser,
    path_arg,
    positive_int,
    run,
)

ROOT = Path(__file__).resolve().parents[1]


def _child_data(data: str, overrides: list[str]) -> dict:
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    from analytics import pipeline as pl
    from analytics.config import load_analysis_config
    from analytics.context import RunContext
    from analytics.loading import load_data_dir

    cfg = load_analysis_config(
        None, ["customers.enabled=false", "insights.enabled=false", *overrides]
    )
    ctx = RunContext(config=cfg, data=load_data_dir(data), out_dir=Path("."))
    pl.run(ctx, [s for s in pl.STAGES if s[0] == "kpis"])
    t0 = time.perf_counter()
    pl.stage_detect(ctx)
    total = time.perf_counter() - t0
    rows = {n: int((ctx.detections["detector"] == n).sum()) for n in ctx.detector_status}
    return {"total": total, "rows": rows, "status": ctx.detector_status}


def _child_rows(n: int, freq: str, overrides: list[str]) -> dict:
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    import numpy as np
    import pandas as pd

    from analytics.config import load_analysis_config
    from analytics.detectors import REGISTRY, DetectorInput
    from analytics.detectors.calibrate import periods_per_day

    rng = np.random.default_rng(0)
    dates = pd.date_range("2020-01-01", periods=n, freq=freq)
    hour = dates.hour.to_numpy() + dates.minute.to_numpy() / 60
    lam = (
        200
        * (1 + 0.6 * np.sin(2 * np.pi * (hour - 6) / 24))
        * np.where(dates.day_of_week >= 5, 0.7, 1.0)
    )
    series = pd.DataFrame(
        {
            "date": dates,
            "kpi": "metric",
            "dimension": "overall",
            "segment": "all",
            "value": rng.poisson(lam).astype(float),
        }
    )
    cfg = load_analysis_config(None, overrides)
    inp = DetectorInput(
        series=series, periods_per_day=periods_per_day(series["date"]), sensitivity=cfg.sensitivity
    )
    status, total = {}, 0.0
    for name, dcfg in cfg.detectors.items():
        cls = REGISTRY[dcfg.type]
        if not dcfg.enabled or cls.needs_truth:
            continue
        t0 = time.perf_counter()
        out = cls(dcfg, name=name).detect(inp)
        dt = time.perf_counter() - t0
        total += dt
        status[name] = {"seconds": round(dt, 3), "flags": int(out["flag"].sum())}
    return {"total": total, "rows": {k: n for k in status}, "status": status}


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def _run_case(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(args)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    child_refused(out.returncode, out.stderr, f"{args[0]} {args[1]}")   # a --set it refuses
    said = out.stderr.strip().splitlines()
    if out.returncode:   # was a CalledProcessError traceback, exit 1: now exit 3 (a bug)
        sys.exit(f"bench_detect.py child {args[:2]} exited {out.returncode}:\n"
                 + "\n".join(said[-20:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def _print(label: str, res: dict) -> None:
    print(f"{label}: detection {res['total']:.2f} s, peak RSS {res['peak_mb']:,.0f} MB")
    for name, st in res["status"].items():
        if st.get("skipped"):
            continue
        sec = st.get("seconds") or 0.0
        rows = res["rows"].get(name, 0)
        rate = f"{rows / sec:,.0f} rows/s" if sec > 0 else "-"
        extra = f", {st['flags']} flags" if "flags" in st else ""
        print(f"  {name:22s} {sec:7.2f} s  {rows:>10,} rows  {rate:>16s}{extra}")


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--data", type=path_arg, action="append", default=[],
                    help="data directory (repeatable)")
    ap.add_argument(
        "--rows", action="append", type=positive_int, default=[],
        help="synthetic series length (repeatable)"
    )
    ap.add_argument("--freq", default="5min", help="step of the synthetic series (default 5min)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, *rest = json.loads(args.child)
        res = (
            _child_data(rest[0], rest[1])
            if kind == "data"
            else _child_rows(int(rest[0]), rest[1], rest[2])
        )
        res["peak_mb"] = _peak_mb()
        print(json.dumps(res, default=str))
        return 0
    if args.rows:   # was the child's traceback (a CalledProcessError here), exit 1
        import pandas as pd

        try:
            pd.tseries.frequencies.to_offset(args.freq)
        except ValueError:
            fail(f"--freq {args.freq}", "not a pandas frequency (e.g. 5min, 1h, 1D)")
    if not args.data and not args.rows:
        args.data = [str(ROOT / "data")]
    for d in args.data:  # one line, not the child's traceback (default: the checkout's data/)
        if not Path(d).is_dir():
            print(f"--data {d}: no such directory (python generate_data.py --out {d})",
                  file=sys.stderr)
            return 2
    for d in args.data:
        _print(f"{d}", _run_case(["data", str(d), args.overrides]))
    for n in args.rows:
        _print(
            f"{n:,} rows x 1 KPI ({args.freq})", _run_case(["rows", n, args.freq, args.overrides])
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main))
