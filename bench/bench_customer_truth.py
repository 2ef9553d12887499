"""Customer truth scores and monitor alerts on several seeds of a scenario (not a timed test).

    python bench/bench_customer_truth.py --out /tmp/seeds 101 102 103 104 105
    python bench/bench_customer_truth.py --config config/scenarios/small.yaml --out /tmp/small 1 2

Generates each seed (Parquet, cached in --out/s<seed>), fits CLV / P(alive), scores them against
truth/customers.csv and replays the At-Risk monitor. One JSON line per seed: P(alive) ROC-AUC,
purchase-rate Spearman (and the oracles', a bound: see ``oracle_rate_spearman``), CLV interval
coverage and total bias (overall and per value tier; the true value extrapolates the last 90
days' intensity, ``*_period_rate`` the period average: see ``evaluation.customer_scores``), the
true intensity per quarter (``_intensity``),
churn waves (start, scope, realized effect on overall orders, alert delay) and the alerts outside
churn waves (not within 120 days after a wave's start). Report held-out seeds only (tune on others):
    python bench/bench_customer_truth.py --config config/scenarios/random_world.yaml \
        --out /tmp/rw 101 102 103 104 105
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import child_refused, fail, need_files, non_negative_int, parser, path_arg, run  # noqa: E402
from scipy import special  # noqa: E402

from analytics.customers import clv, monitor, rfm  # noqa: E402
from analytics.customers.config import CustomersConfig  # noqa: E402
from analytics.customers.store import MonitorStore  # noqa: E402
from analytics.loading import load_data_dir  # noqa: E402
from evaluation import customer_scores as truth_scores  # noqa: E402
from evaluation.truth import find_truth  # noqa: E402


def _intensity(data: Path, v: pd.DataFrame, end: pd.Timestamp) -> dict[str, Any]:
    """The simulator's per-customer purchase intensity over time, from the truth.

    A returning order of country k on day t goes to an alive customer with probability
    proportional to their weight, so customer i buys at rate rho_i * h_k(t) per day, where
    rho_i = purchase_rate_i / 365.25 (truth/customers.csv: the weight times the country's
    period-average intensity) and h_k(t) = returning orders of k on day t / sum of rho over k's
    alive customers (period average 1). h falls as the base grows (default world: 1.9 in the
    first quarter, 0.6 in the last) and collapses after lasting churn / traffic events.
    Returns per data customer (clv.summary_data order): the true rate, first order day, country
    code, the cumulative h per country (H[k, t] = sum of h[k, :t]), signup and churn days."""
    start = pd.Timestamp(v["order_date"].iloc[0]).normalize()
    n_days = (pd.Timestamp(end) - start).days + 1
    cust = pd.read_parquet(data / "customers.parquet") if (data / "customers.parquet").exists() \
        else pd.read_csv(data / "customers.csv", dtype={"customer_id": str})
    cust["customer_id"] = cust["customer_id"].astype(str)
    t = pd.read_csv(data / "truth" / "customers.csv", dtype={"customer_id": str})
    c = cust.merge(t, on="customer_id").set_index("customer_id")
    k, _ = pd.factorize(c["country"])
    n_k = int(k.max()) + 1
    signup = (pd.to_datetime(c["signup_date"]) - start).dt.days.to_numpy()
    churn = pd.to_datetime(c["churn_date"])
    stop = np.where(churn.isna(), n_days,
                    np.minimum((churn - start).dt.days.fillna(0), n_days)).astype(np.int64)
    rho = c["purchase_rate"].to_numpy(float) / 365.25
    a0, a1 = np.clip(signup + 1, 0, n_days), np.clip(stop, 0, n_days)
    ok = a1 > a0
    mass = np.zeros((n_k, n_days + 1))
    np.add.at(mass, (k[ok], a0[ok]), rho[ok])
    np.add.at(mass, (k[ok], a1[ok]), -rho[ok])
    mass = np.cumsum(mass, axis=1)[:, :n_days]
    # returning orders: every valid order except an in-period customer's first (signup) order
    pos = c.index.get_indexer(v["customer_id"].astype(str))
    day = v["day"].to_numpy() - rfm.as_day(start)
    first = pd.Series(day).groupby(pos).transform("min").to_numpy()
    ret = ~((signup[pos] >= 0) & (day == first))
    orders = np.zeros((n_k, n_days))
    np.add.at(orders, (k[pos][ret], day[ret]), 1.0)
    h = np.divide(orders, mass, out=np.zeros_like(orders), where=mass > 0)
    sd = clv.summary_data(v, end)
    idx = c.index.get_indexer(sd.index.astype(str))
    return {"sd": sd, "idx": idx, "k": k, "rho": rho, "signup": signup, "stop": stop,
            "H": np.concatenate([np.zeros((n_k, 1)), np.cumsum(h, axis=1)], axis=1),
            "orders": orders, "mass": mass, "n_days": n_days}


def _oracle_rows(w: dict[str, Any], shape: float) -> tuple[np.ndarray, ...]:
    """The oracles' per-customer terms (data customers found in the truth): repeat days x, first
    order day, truth row, country, true rate, stop day, cumulative intensity H, the prior's rate
    (shape / the country's mean rate) and the exposure after the first order (sum of h)."""
    sd, idx, k = w["sd"], w["idx"], w["k"]
    ok = idx >= 0
    x = sd["frequency"].to_numpy()[ok]
    first = (w["n_days"] - 1 - sd["T"].to_numpy()[ok]).astype(np.int64)
    i = idx[ok]
    kk, rho, stop, H = k[i], w["rho"][i], w["stop"][i], w["H"]
    m_k = np.bincount(kk, weights=rho, minlength=H.shape[0]) / np.maximum(
        np.bincount(kk, minlength=H.shape[0]), 1)
    prior = shape / m_k[kk]
    expo = np.clip(H[kk, stop] - H[kk, np.clip(first + 1, 0, w["n_days"])], 0, None)
    return x, first, i, kk, rho, stop, H, prior, expo


def oracle_rate_spearman(w: dict[str, Any], shape: float) -> dict[str, float]:
    """The purchase-rate Spearman no estimator from orders can beat (in expectation), and two
    weaker oracles: the Bayes posterior mean rate of an oracle that knows the simulator's Gamma
    prior (shape ``customers.rate_shape``, each country's mean true rate) and each customer's
    TRUE alive window after the first order (truth churn_date), given the repeat purchase days x:
    (shape + x) / (shape / mean_rate + exposure).

    * ``calendar``: exposure = alive days (last session's bound);
    * ``activity``: exposure = the true intensity summed over the alive days (sum of h_k(t),
      see ``_intensity``): x ~ Poisson(rho * exposure) exactly, so this is the exact posterior;
    * ``activity_pre``: also uses, for the initial base (signed up before the period), the time
      from the period start to their first order and that order (n = x + 1 events).
    ``*_repeat``: the same over repeat buyers (x > 0) only. Real estimators must also infer the
    alive window from the orders, so they score lower."""
    x, first, i, kk, rho, stop, H, prior, expo = _oracle_rows(w, shape)
    alive_days = np.clip(stop - (first + 1), 0, None)
    pre = w["signup"][i] < 0
    expo0 = np.clip(H[kk, stop] - H[kk, np.clip(w["signup"][i] + 1, 0, w["n_days"])], 0, None)
    est = {
        "calendar": (shape + x) / (prior + alive_days),
        "activity": (shape + x) / (prior + expo),
        "activity_pre": np.where(pre, (shape + x + 1) / (prior + expo0),
                                 (shape + x) / (prior + expo)),
    }
    rep = x > 0
    out = {}
    for name, e in est.items():
        out[name] = round(float(truth_scores._spearman(e, rho)), 3)
        out[name + "_repeat"] = round(float(truth_scores._spearman(e[rep], rho[rep])), 3)
    return out


def oracle_rate_interval(w: dict[str, Any], shape: float, tier: np.ndarray,
                         level: float = 0.9) -> dict[str, dict[str, float]]:
    """Per value tier: how often the exact-posterior oracle's central ``level`` interval for the
    rate (Gamma(shape + x, shape / mean + exposure), ``activity`` in ``oracle_rate_spearman``)
    covers the true rate, and its posterior-mean total over the true total. Calibrated overall
    (coverage = level in expectation), it under-covers and under-states the ``high`` tier: the
    tier is chosen by the TRUE rate, so its members' data regress to the mean — a bound for any
    estimator's per-tier coverage and bias, not a model defect. ``tier`` is per data customer
    (``w["sd"]`` order)."""
    x, _, _, _, rho, _, _, prior, expo = _oracle_rows(w, shape)
    ok = w["idx"] >= 0
    b = prior + expo
    a = shape + x
    lo = special.gammaincinv(a, (1 - level) / 2) / b
    hi = special.gammaincinv(a, (1 + level) / 2) / b
    t = tier[ok]
    out = {}
    for name in ("all", "low", "medium", "high"):
        m = (t != "none") if name == "all" else t == name
        if m.any() and rho[m].sum() > 0:
            cover = (lo[m] <= rho[m]) & (rho[m] <= hi[m])
            out[name] = {"coverage": round(float(np.mean(cover)), 3),
                         "mean_over_true": round(float((a / b)[m].sum() / rho[m].sum()), 3)}
    return out


def realized_lifetime_days(w: dict[str, Any]) -> float | None:
    """The period's realized mean lifetime: alive days / churns of the customers with a rate
    (truth churn dates, churn waves included), against the truth's 1 / hazard (``L``, no waves).
    The true expected value assumes no churn wave in the horizon; a model fitted on a history
    with waves extrapolates their hazard — the CLV bias under this lifetime isolates that part."""
    a0 = np.clip(w["signup"] + 1, 0, w["n_days"])
    stop = w["stop"]
    live = w["rho"] > 0
    expo = np.clip(stop - a0, 0, None)[live].sum()
    churns = ((stop < w["n_days"]) & (stop > a0))[live].sum()
    return float(expo / churns) if churns else None


def decomposition(res: Any, truth_c: pd.DataFrame, rate_factor: pd.Series | None,
                  lifetime: float, end: pd.Timestamp, cfg: Any) -> dict[str, Any]:
    """Per value tier, the CLV total split into its parts (model / truth): ``purchases`` (the
    frequency part: discounted expected purchases), ``spend`` (model spend over the truth's
    store-wide repeat-day mean, purchase-weighted: the monetary part) and, over the truly alive,
    the mean expected alive days within the horizon of the model (``life_days``) and of the
    truth (``life_days_true`` = L (1 - e^(-H/L)))."""
    tab = res.table
    t = truth_c.drop_duplicates("customer_id").set_index("customer_id")
    t.index = t.index.astype(str)
    t = t.reindex(tab.index.astype(str))
    f = (np.ones(len(t)) if rate_factor is None
         else rate_factor.reindex(t.index).fillna(1.0).to_numpy(float))
    rate = t["purchase_rate"].to_numpy(float)
    churn = pd.to_datetime(t["churn_date"], errors="coerce")
    alive = (churn.isna() | (churn > end)).to_numpy()
    tier = t["value_tier"].astype(str).to_numpy()
    H, months = float(cfg.horizon_days), max(1, round(cfg.horizon_days / 30.0))
    edges = np.arange(months + 1) * (H / months)
    disc = (1.0 + cfg.discount_rate_monthly) ** -np.arange(1, months + 1)
    cum = np.column_stack([truth_scores.true_expected_purchases(rate * f, alive, e, lifetime)
                           for e in edges])
    true_p = np.diff(cum, axis=1) @ disc
    rep = tab["frequency"].to_numpy()
    spend_true = float(np.sum(tab["monetary_value"].to_numpy() * rep) / max(rep.sum(), 1.0))
    c, spend = tab["clv"].to_numpy(float), tab["expected_order_value"].to_numpy(float)
    model_p = c / np.where(spend > 0, spend, np.nan)
    pn = res.summary["purchase_model_params"]
    s_, b_, T = pn["s"], pn["beta"], tab["T"].to_numpy(float)
    ratio = np.log((b_ + T) / (b_ + T + H))
    life = (b_ + T) * (-np.expm1((s_ - 1) * ratio) / (s_ - 1) if abs(s_ - 1) > 1e-9 else -ratio)
    out: dict[str, Any] = {"life_days_true": round(lifetime * -np.expm1(-H / lifetime), 1)}
    for name in ("all", "low", "medium", "high"):
        m = np.isfinite(model_p) & ((tier != "none") if name == "all" else tier == name)
        if not m.any() or true_p[m].sum() <= 0:
            continue
        out[name] = {"purchases": round(float(model_p[m].sum() / true_p[m].sum()), 3),
                     "spend": round(float(c[m].sum() / (spend_true * model_p[m].sum())), 3),
                     "life_days": round(float(life[m & alive].mean()), 1) if (m & alive).any()
                     else None}
    return out


def main() -> int:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("seeds", nargs="+", type=non_negative_int)
    ap.add_argument("--out", type=path_arg, required=True,
                    help="directory for the generated worlds")
    ap.add_argument("--config", type=path_arg, default=None,
                    help="scenario YAML (default: config/simulation.yaml)")
    ap.add_argument("--no-monitor", action="store_true", help="skip the At-Risk monitor replay")
    args = ap.parse_args()
    # generate_data.py runs from the checkout: a relative --config is the caller's (it was read
    # there); a missing one is one line and exit 2 (it was the child's CalledProcessError)
    if args.config is not None:
        need_files([args.config], "--config")
        args.config = str(Path(args.config).resolve())
    if Path(args.out).exists() and not Path(args.out).is_dir():
        fail(f"--out {args.out}", "is not a directory")
    cfg = CustomersConfig()
    for seed in args.seeds:
        out = Path(args.out).resolve() / f"s{seed}"  # generate_data.py runs from the checkout
        if not (out / "manifest.json").exists():
            cmd = [
                sys.executable,
                "generate_data.py",
                "--seed",
                str(seed),
                "--out",
                str(out),
                "--format",
                "parquet",
            ]
            p = subprocess.run(cmd + (["--config", args.config] if args.config else []),
                               capture_output=True, text=True, cwd=ROOT)
            child_refused(p.returncode, p.stderr, f"generate_data.py --seed {seed}")
            said = p.stderr.strip().splitlines()
            if p.returncode:   # was a CalledProcessError traceback, exit 1: now exit 3
                sys.exit(f"generate_data.py --seed {seed} exited {p.returncode}:\n"
                         + "\n".join(said[-20:]))
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
            rate_factor=(factor := truth_scores.end_intensity_factor(
                truth.customers, ds.tables.get("customers"), o, end)),
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
            "coverage_period_rate": round(ov["clv_interval_coverage_period_rate"], 3),
            "clv_total_bias_period_rate": round(ov["clv_total_bias_period_rate"], 3),
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
        w = _intensity(out, v, end)
        cfg_json = out / "truth" / "config.json"
        shape = json.loads(cfg_json.read_text())["customers"]["rate_shape"] if cfg_json.exists() \
            else 1.2
        row["rate_spearman_oracle"] = oracle_rate_spearman(w, shape)
        lifetime = truth_scores.mean_lifetime_days(out)
        tiers = truth.customers.drop_duplicates("customer_id").set_index("customer_id")[
            "value_tier"]
        tiers.index = tiers.index.astype(str)
        row["oracle_rate_interval"] = oracle_rate_interval(
            w, shape, tiers.reindex(w["sd"].index.astype(str)).astype(str).to_numpy())
        row["bias_by_tier"] = {k: round(b["clv_total_bias"], 3)
                               for k, b in ts["by_value_tier"].items()
                               if b.get("clv_total_bias") is not None}
        row["decomposition"] = decomposition(res, truth.customers, factor, lifetime, end, cfg.clv)
        l_real = realized_lifetime_days(w)
        if l_real is not None:  # the CLV bias if the horizon had the period's churn (waves too)
            tr = truth_scores.score_customers(
                res.table, truth.customers, end, horizon_days=cfg.clv.horizon_days,
                discount_rate_monthly=cfg.clv.discount_rate_monthly, lifetime_days=l_real,
                rate_factor=factor)
            row["realized_lifetime_days"] = round(l_real, 1)
            row["lifetime_days"] = lifetime
            row["clv_total_bias_realized_lifetime"] = round(tr["overall"]["clv_total_bias"], 3)
        row["churn_waves"] = [(e["start"], e["scope"].get("country", "all"),
                               e.get("params", {}).get("churn_pct"))
                              for e in truth.events or [] if e["type"] == "churn_wave"]
        q = w["n_days"] // 4  # the true intensity per unit of rate by quarter (period mean 1)
        row["intensity_by_quarter"] = [
            round(float(w["orders"][:, j * q:(j + 1) * q].sum()
                        / w["mass"][:, j * q:(j + 1) * q].sum()), 2) for j in range(4)]
        if args.no_monitor:
            print(json.dumps(row), flush=True)
            continue
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
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
