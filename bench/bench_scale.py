#!/usr/bin/env python3
"""Scale benchmark: KPIs of a 10 M order-line Parquet store, and an Online Retail II-size file.

    python bench/bench_scale.py [--lines 10000000] [--work /tmp/shocklab-scale] [--pandas]
                                [--transactions-lines 1070000] [--day-first] [--load-only]
                                [--skip-store] [--skip-transactions]

1. Store: generates config/scenarios/bench_1m.yaml as Parquet once (cached in --work), then tiles
   it to --lines order lines (copy k gets order and customer ids shifted by k·10¹⁴, so every copy
   is a distinct set of orders and customers on the same days; traffic is summed over the copies).
   Then, in a fresh interpreter, ``analytics.kpis_columnar.kpis_daily_from_files`` (DuckDB over the
   files) → wall time and peak RSS. ``--pandas`` also times the pandas path (load_data_dir +
   compute_kpis_daily) on the same store, for comparison — it needs far more memory.
2. Transactions: writes a synthetic Online Retail II CSV (documented layout, ~1.07 M lines, ~5.9 k
   customers, 2 years, a few % cancellations and missing customer ids; ISO dates, or with
   ``--day-first`` day-first text to the minute, ``01/12/2009 07:45``) and runs
   ``run_analysis.py --transactions`` on it in a fresh interpreter → wall time, peak RSS, and the
   stage timings from run.json (``--load-only``: ``transactions.load_transactions`` alone, the
   file read, parsed and cleaned into the tables).
Figures vary with machine load; quote them with the command that produced them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import (  # bench/ is on sys.path
    child_refused,
    fail,
    only_with,
    parser,
    path_arg,
    positive_int,
    run,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHIFT = 10**14
from bench_profile import PROBE  # noqa: E402  (the child that reports its peak RSS)

CPU = {"s": 0.0}   # CPU seconds (user + system, all threads) of the last fresh() child


def fresh(script: str, *args: str) -> tuple[float, float, str]:
    """Run a Python script in a fresh interpreter: (wall s, peak RSS MB, stdout); its CPU seconds
    go to ``CPU["s"]`` (load-independent, unlike the wall time on a shared machine)."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, script, *args], cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["s"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    child_refused(proc.returncode, proc.stderr, Path(script).name)   # a file too small
    if proc.returncode:   # was exit 1, a failed gate's code: now 3 (_common.run)
        sys.exit(f"{script} failed:\n{proc.stderr[-3000:]}")
    peak = [ln for ln in proc.stderr.splitlines() if ln.startswith("PEAK_KB")][-1].split()[1]
    return wall, int(peak) / 1024, proc.stdout


def build_store(work: Path, lines: int) -> Path:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    base = work / "bench_1m"
    if not (base / "manifest.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "generate_data.py"),
                "--config",
                "config/scenarios/bench_1m.yaml",
                "--out",
                str(base),
                "--format",
                "parquet",
                "--quiet",
            ],
            cwd=ROOT,
            check=True,
        )
    per_copy = pq.ParquetFile(base / "order_items.parquet").metadata.num_rows
    copies = -(-lines // per_copy)
    store = work / f"store_{lines}"
    if (store / "done").is_file():
        return store
    store.mkdir(parents=True, exist_ok=True)
    for name, id_cols in (("orders", ("order_id", "customer_id")), ("order_items", ("order_id",)),
                          ("customers", ("customer_id",))):
        src = pq.read_table(base / f"{name}.parquet")
        with pq.ParquetWriter(store / f"{name}.parquet", src.schema, compression="zstd") as w:
            for k in range(copies):
                t = src
                for col in id_cols:
                    i = t.schema.get_field_index(col)
                    t = t.set_column(i, col, pc.add(t[col], pa.scalar(k * SHIFT, pa.int64())))
                if (
                    name == "order_items" and k == copies - 1
                ):  # trim the last copy to exactly --lines
                    t = t.slice(0, lines - per_copy * (copies - 1))
                w.write_table(t)
    for name in ("products", "marketing_calendar"):
        pq.write_table(pq.read_table(base / f"{name}.parquet"), store / f"{name}.parquet")
    tr = pq.read_table(base / "website_traffic.parquet")
    tr = tr.set_column(
        tr.schema.get_field_index("sessions"), "sessions", pc.multiply(tr["sessions"], copies)
    )
    pq.write_table(tr, store / "website_traffic.parquet")
    (store / "done").write_text(str(copies))
    return store


def bench_store(work: Path, lines: int, with_pandas: bool) -> None:
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    store = build_store(work, lines)
    n_lines = pq.ParquetFile(store / "order_items.parquet").metadata.num_rows
    n_orders = pq.ParquetFile(store / "orders.parquet").metadata.num_rows
    size = sum(p.stat().st_size for p in store.glob("*.parquet")) / 1e6
    print(f"store: {n_lines:,} order lines, {n_orders:,} orders, {size:,.0f} MB Parquet ({store}; "
          f"built in {time.perf_counter() - t0:.0f} s)")
    code = (
        "import sys; sys.path.insert(0, 'src'); from analytics.kpis_columnar import "
        "kpis_daily_from_files; "
        f"kd = kpis_daily_from_files({str(store)!r}); "
        "o = kd[kd.dimension == 'overall']; print(len(kd), o.orders.sum(), o.revenue.sum())"
    )
    script = work / "kpis_files.py"
    script.write_text(code)
    wall, peak, out = fresh(str(script))
    rows, orders, revenue = out.split()
    print(
        f"  KPIs with DuckDB over the files: {wall:6.1f} s wall, {CPU['s']:6.1f} s CPU (fresh "
        "interpreter), "
        f"peak RSS {peak:,.0f} MB "
        f"-> {int(rows):,} kpis_daily rows, {float(orders):,.0f} orders, revenue "
        f"{float(revenue):,.0f}"
    )
    if with_pandas:
        code = (
            "import sys; sys.path.insert(0, 'src'); from analytics.loading import load_data_dir; "
            "from analytics.kpis import compute_kpis_daily; "
            f"kd = compute_kpis_daily(load_data_dir({str(store)!r}), engine='pandas'); "
            "o = kd[kd.dimension == 'overall']; print(len(kd), o.orders.sum(), o.revenue.sum())"
        )
        script = work / "kpis_pandas.py"
        script.write_text(code)
        wall, peak, out = fresh(str(script))
        print(
            f"  pandas path (load_data_dir + numpy KPIs): {wall:6.1f} s wall, {CPU['s']:6.1f} s "
            "CPU, "
            f"peak RSS {peak:,.0f} MB -> {out.strip()}"
        )


def build_transactions(path: Path, lines: int, seed: int = 11, day_first: bool = False) -> None:
    """A synthetic file in the Online Retail II layout, sized and shaped like the real one
    (``day_first``: InvoiceDate written ``01/12/2009 07:45``, to the minute, instead of ISO)."""
    import pandas as pd

    if path.is_file():
        return
    g = np.random.default_rng(seed)
    n_inv = lines // 20                       # ~20 lines per invoice, as in Online Retail II
    n_cust, n_stock = 5_900, 4_600
    per_inv = g.poisson(19.0, n_inv) + 1
    per_inv = per_inv[np.cumsum(per_inv) <= lines]
    n_inv = per_inv.size
    start = np.datetime64("2009-12-01T07:00:00")
    days = np.sort(g.integers(0, 739, n_inv))
    ts = (
        start
        + days.astype("timedelta64[D]")
        + g.integers(0, 11 * 3600, n_inv).astype("timedelta64[s]")
    )
    cust = g.zipf(1.3, n_inv) % n_cust + 12346
    cancelled = g.random(n_inv) < 0.02
    inv_no = np.arange(489434, 489434 + n_inv).astype(str)
    inv = np.where(cancelled, np.char.add("C", inv_no), inv_no)
    country = np.array(["United Kingdom", "EIRE", "Germany", "France", "Netherlands", "Spain"])[
        np.minimum(g.geometric(0.6, n_inv) - 1, 5)]
    row_inv = np.repeat(np.arange(n_inv), per_inv)
    n = row_inv.size
    stock = g.zipf(1.2, n) % n_stock
    codes = np.char.add(stock.astype(str), np.where(stock % 7 == 0, "A", ""))
    qty = g.geometric(0.3, n) * np.where(cancelled[row_inv], -1, 1)
    price = np.round(np.exp(g.normal(1.0, 0.9, n)), 2)
    cid = np.where(
        g.random(n) < 0.2, "", (cust[row_inv]).astype(float).astype(str)
    )  # ~20 % no id, as there
    df = pd.DataFrame(
        {
            "Invoice": inv[row_inv],
            "StockCode": codes,
            "Description": np.char.add("ITEM ", codes),
            "Quantity": qty,
            "InvoiceDate": pd.to_datetime(ts[row_inv]).strftime(
                "%d/%m/%Y %H:%M" if day_first else "%Y-%m-%d %H:%M:%S"),
            "Price": price,
            "Customer ID": cid,
            "Country": country[row_inv],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def bench_transactions(work: Path, lines: int, day_first: bool = False,
                       load_only: bool = False) -> None:
    path = work / f"online_retail_ii_{'dmy_' if day_first else ''}{lines}.csv"
    build_transactions(path, lines, day_first=day_first)
    if load_only:
        script = work / "load_transactions.py"
        script.write_text("import sys; sys.path.insert(0, 'src'); from analytics.transactions "
                          f"import load_transactions; load_transactions({str(path)!r})")
        wall, peak, _ = fresh(str(script))
        print(f"transactions: {path.name} ({path.stat().st_size / 1e6:,.0f} MB, {lines:,} lines): "
              f"load_transactions {wall:6.1f} s wall, {CPU['s']:6.1f} s CPU (fresh interpreter, "
              f"imports included), peak RSS {peak:,.0f} MB")
        return
    out = work / "tx_run"
    wall, peak, _ = fresh(
        str(ROOT / "run_analysis.py"), "--transactions", str(path), "--out", str(out), "--quiet"
    )
    timings = json.loads((out / "run.json").read_text())["timings_seconds"]
    top = {k: v for k, v in timings.items() if isinstance(v, (int, float))}
    print(
        f"transactions: {path.name} ({path.stat().st_size / 1e6:,.0f} MB, {lines:,} lines): whole "
        "analysis "
        f"{wall:6.1f} s wall, {CPU['s']:6.1f} s CPU (fresh interpreter), peak RSS {peak:,.0f} MB"
    )
    print("  stages (run.json): " + " · ".join(f"{k} {v:.1f}" for k, v in top.items()))


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--lines", type=positive_int, default=10_000_000,
                    help="order lines of the store (default 10000000)")
    ap.add_argument("--transactions-lines", type=positive_int, default=1_070_000,
                    help="lines of the transactions file (default 1070000)")
    ap.add_argument("--work", type=path_arg, default=Path("/tmp/shocklab-scale"),
                    help="cache of the generated inputs (default /tmp/shocklab-scale)")
    ap.add_argument("--day-first", action="store_true",
                    help="transactions file with day-first dates (01/12/2009 07:45), not ISO")
    ap.add_argument(
        "--pandas", action="store_true", help="also time the pandas KPI path on the store"
    )
    ap.add_argument("--load-only", action="store_true",
                    help="time load_transactions alone, not the whole analysis of the file")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--skip-transactions", action="store_true")
    args = ap.parse_args()
    if args.skip_store:
        only_with("the store (--skip-store given)", {
            "--pandas": args.pandas, "--lines": args.lines != 10_000_000})
    if args.skip_transactions:
        only_with("the transactions file (--skip-transactions given)", {
            "--day-first": args.day_first, "--load-only": args.load_only,
            "--transactions-lines": args.transactions_lines != 1_070_000})
    # the timed children run from the checkout (cwd=ROOT): a relative --work is the caller's
    args.work = args.work.resolve()
    if args.work.exists() and not args.work.is_dir():   # was mkdir's FileExistsError traceback
        fail(f"--work {args.work}", "is not a directory")
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.skip_store:
        bench_store(args.work, args.lines, args.pandas)
    if not args.skip_transactions:
        bench_transactions(args.work, args.transactions_lines, args.day_first, args.load_only)


if __name__ == "__main__":
    sys.exit(run(main))
