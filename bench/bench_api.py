#!/usr/bin/env python3
"""Benchmark of the HTTP API (prints, never asserts): start-up of ``shocklab serve`` and the
latency of ``GET /runs/{id}/insights`` (first request after start-up, then warm).

    python bench/bench_api.py [--reports reports/] [--run RUN_ID] [--requests 50]

Without --run it uses the newest run directory under --reports. The server is a real uvicorn
process on a free local port; requests go over HTTP from this process.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import fail, parser, path_arg, positive_int, run  # noqa: E402  (this script's folder)


def _get(url: str) -> tuple[float, int]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as r:
        n = len(r.read())
    return time.perf_counter() - t, n


def main() -> int:
    ap = parser(__doc__)
    ap.add_argument("--reports", type=path_arg, default="reports",
                    help="folder of run directories (default reports)")
    ap.add_argument("--run", default=None, help="run id (default: the newest run directory)")
    ap.add_argument("--requests", type=positive_int, default=50,
                    help="warm requests to time (default 50)")
    args = ap.parse_args()

    from runstore import RunStore
    # The server runs from the checkout (cwd=ROOT): a relative --reports is the caller's, so it
    # is resolved here (it used to be read from the checkout and the server exited at start-up).
    reports = str(Path(args.reports).resolve())
    if not Path(reports).is_dir():
        fail(f"--reports {args.reports}", "no such directory")
    ids = RunStore(reports).run_ids()
    if not ids:   # was said on stdout
        fail(f"--reports {args.reports}",
             "no run directories (run generate_data.py and run_analysis.py first)")
    if args.run is not None and args.run not in ids:   # was an HTTPError 404 traceback, exit 1
        fail(f"--run {args.run}", f"no such run under {args.reports} (newest: {ids[0]})")
    run_id = args.run or ids[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()  # the server's stderr: its error line if it cannot start
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shocklab.main",
            "serve",
            "--reports",
            reports,
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        while True:
            try:
                _get(f"{base}/health")
                break
            except OSError:
                if proc.poll() is not None:
                    log.seek(0)
                    said = log.read().decode(errors="replace").strip().splitlines()
                    print("server exited during start-up" + (f": {said[-1]}" if said else ""),
                          file=sys.stderr)
                    return 3
                time.sleep(0.05)
        startup = time.perf_counter() - t0
        first, size = _get(f"{base}/runs/{run_id}/insights")
        warm = sorted(_get(f"{base}/runs/{run_id}/insights")[0] for _ in range(args.requests))
        p95 = warm[min(len(warm) - 1, int(0.95 * len(warm)))]
        inc = sorted(
            _get(f"{base}/runs/{run_id}/incidents?limit=100")[0] for _ in range(args.requests)
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    print(f"run {run_id}: insights.json {size / 1e6:.2f} MB")
    print(
        f"start-up to first /health answer: {startup:.2f} s (interpreter, FastAPI, insights models)"
    )
    print(
        f"GET /runs/{{id}}/insights: first after start-up {first * 1000:.1f} ms · warm median "
        f"{statistics.median(warm) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms over {len(warm)} "
        "requests"
    )
    print(
        f"GET /runs/{{id}}/incidents?limit=100: warm median {statistics.median(inc) * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
