"""Customer truth scores and monitor alerts on several seeds of a scenario (not a timed test).

    python bench/bench_customer_truth.py --out /tmp/seeds 101 102 103 104 105
    python bench/bench_customer_truth.py --config config/scenarios/small.yaml --out /tmp/small 1 2

Generates each seed (Parquet, cached in --out/s<seed>), fits CLV / P(alive), scores them against
truth/customers.csv and replays the At-Risk monitor. One JSON line per seed: P(alive) ROC-AUC,
purchase-rate Spearman (and the oracle's, a bound: see ``oracle_rate_spearman``), CLV interval
coverage and total bias (overall and per value tier),
churn waves (start, scope, realized effect on overall orders, alert delay) and the alerts outside
churn waves (not within 120 days after a wave's start). Report held-out seeds only (tune on others):
    python bench/bench_customer_truth.py --config config/scenarios/random_world.yaml \
        --out /tmp/rw 101 102 103 104 105
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analytics.customers import clv, monitor, rfm  # noqa: E402
from analytics.customers.config import CustomersConfig  # noqa: E402
from analytics.customers.store import MonitorStore  # noqa: E402
from analytics.loading import load_data_dir  # noqa: E402
from evaluation import customer_scores as truth_scores  # noqa: E402
from evaluation.truth import find_truth  # noqa: E402


def oracle_rate_spearman(v: pd.DataFrame, end: pd.Timestamp, truth: pd.DataFrame,
                         data: Path) -> float:
    """What no estimator from orders can beat (in expectation): the purchase-rate Spearman of
    the Bayes posterior mean rate of an oracle that knows the simulator's Gamma prior (shape
    ``customers.rate_shape``, the true mean rate) and each customer's TRUE alive time after the
    first order (from truth/customers.csv's churn_date), given the observed repeat purchase
    days x: (shape + x) / (shape / mean_rate + alive_days). Real estimators must also guess
    the alive time from the orders, so they score lower."""
    shape = json.loads((data / "truth" / "config.json").read_text())["customers"]["rate_shape"] \
        if (data / "truth" / "config.json").exists() else 1.2
    sd = clv.summary_data(v, end)
    t = truth.drop_duplicates("customer_id").set_index("customer_id").reindex(sd.index)
    rate = t["purchase_rate"].to_numpy(float)
    first = pd.Timestamp(end) - pd.to_timedelta(sd["T"], unit="D")
    stop = pd.to_datetime(t["churn_date"], errors="coerce").fillna(end + pd.Timedelta(days=1))
    alive = (stop.clip(upper=end + pd.Timedelta(days=1)) - first).dt.days.clip(lower=0)
    ok = np.isfinite(rate)
    mean_rate = float(np.mean(rate[ok])) / 365.25
    post = (shape + sd["frequency"].to_numpy()) / (shape / mean_rate + alive.to_numpy(float))
    return round(float(truth_scores._spearman(post[ok], rate[ok])), 3)


ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("seeds", nargs="+")
ap.add_argument("--out", required=True, help="directory for the generated worlds")
ap.add_argument("--config", default=None, help="scenario YAML (default: config/simulation.yaml)")
args = ap.parse_args()
cfg = CustomersConfig()
for seed in args.seeds:
    out = Path(args.out) / f"s{seed}"
    if not (out / "manifest.json").exists():
        cmd = [
            sys.executable,
            "generate_data.py",
            "--seed",
            seed,
            "--out",
            str(out),
            "--format",
            "parquet",
        ]
        subprocess.run(cmd + (["--config", args.config] if args.config else []), check=True,
                       capture_output=True, cwd=ROOT)
    ds, truth = load_data_dir(out), find_truth(out)
    o = ds.tables["orders"]
    v = rfm.valid_orders(o)
    end = rfm.data_end_date(o)
    t = time.perf_counter()
    res = clv.run_clv(v, end, cfg.clv)
    ts = truth_scores.score_customers(
        res.table,
        truth.customers,
        end,
        horizon_days=cfg.clv.horizon_days,
        discount_rate_monthly=cfg.clv.discount_rate_monthly,
        lifetime_days=truth_scores.mean_lifetime_days(out),
    )
    ov = ts["overall"]
    row = {
        "seed": seed,
        "customers": ts["customers"],
        "clv_s": round(time.perf_counter() - t, 1),
        "unscored": res.summary["unscored_customers"],
        "p_alive_auc": round(ov["p_alive_roc_auc"], 3),
        "rate_spearman": round(ov["rate_spearman"], 3),
        "rate_spearman_repeat": round(ov["rate_spearman_repeat_buyers"], 3),
        "coverage": round(ov["clv_interval_coverage"], 3),
        "clv_total_bias": round(ov["clv_total_bias"], 3),
        "coverage_by_tier": {
            k: round(b["clv_interval_coverage"], 3)
            for k, b in ts["by_value_tier"].items()
            if b.get("clv_interval_coverage") is not None
        },
        "auc_by_tier": {
            k: round(b["p_alive_roc_auc"], 3)
            for k, b in ts["by_value_tier"].items()
            if b.get("p_alive_roc_auc") is not None
        },
    }
    row["rate_spearman_oracle"] = oracle_rate_spearman(v, end, truth.customers, out)
    with MonitorStore(":memory:") as s:
        mon = monitor.replay(
            v,
            cfg.monitor,
            cfg.rfm,
            s,
            None,
            "x",
            start=pd.Timestamp(o["order_date"].min()),
            end=end,
        )
    waves = truth_scores.churn_wave_delays(mon.alerts, truth.events)
    cw = {e["start"]: e for e in truth.events or [] if e["type"] == "churn_wave"}
    # (start, scope, realized effect on overall orders, delay of the first alert or None)
    row["waves"] = [(w["start"], cw[w["start"]]["scope"].get("country", "all"),
                     round(cw[w["start"]]["effects"].get("orders", 0.0), 3), w["delay_days"])
                    for w in waves]
    starts = [pd.Timestamp(s) for s in cw]
    # alerts not within 120 days after a wave's start (churn_wave_delays' matching window)
    row["other_alerts"] = [(a["date"], a["segment"][:3], a["severity"]) for a in mon.alerts
                           if not any(0 <= (pd.Timestamp(a["date"]) - s).days <= 120
                                      for s in starts)]
    row["alerts"] = len(mon.alerts)
    print(json.dumps(row), flush=True)
