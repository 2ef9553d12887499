"""Customer models scored against the simulator's truth (``truth/customers.csv``, the churn
waves of ``truth/events.json``).

Evaluation code (behind the truth wall, docs/ARCHITECTURE.md): ``stage`` runs after the customers
stage, scores the fitted CLV / P(alive) model it left on the context, leaves the scores on
``ctx.customer_scores`` (``analytics.outputs`` writes customers/truth_scores.json) and in
``scorecard["customers"]``, and draws the P(alive) reliability plot. No customer model ever sees
these numbers.

Per customer the truth has ``purchase_rate`` (returning orders per year while alive),
``churn_date`` (the latent dropout day, empty if none within the period) and ``value_tier``
(``low`` / ``medium`` / ``high`` by rate percentile, ``none`` for zero-rate accounts). From them:

* **alive at the data end** = no churn date, or one after the end;
* **true expected purchases over the horizon H** = alive x rate/365.25 x f x L (1 - e^(-H/L))
  with L = the simulator's mean lifetime (``truth/config.json``; exponential, so memoryless) and
  f = the customer's country's purchase intensity over the last 90 days relative to the period
  average (``end_intensity_factor``: ``purchase_rate`` is a period average, while the per-customer
  intensity falls as a growing base shares the traffic-driven repeat volume — extrapolating the
  average overstated the future 1.5x on the default world and up to 25x on random worlds; the
  ``*_period_rate`` scores keep f = 1);
* **true expected value** = those purchases, month by month with the CLV's monthly discount, x the
  store's mean repeat-order value (the simulator draws baskets independently of the customer, so
  the mean repeat-order value is every customer's expected spend).

Scores, overall and per value tier: rate Spearman (model's posterior rate vs true rate), P(alive)
ROC-AUC, Brier score, reliability curve and its calibration error (overall), CLV error against
the true expected value (MAE, median absolute error, total bias, Spearman) and the coverage of the
CLV interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from analytics.context import RunContext

# the one reliability curve, shared with the churn model's calibration
from analytics.customers.churn import reliability
from analytics.customers.plots import reliability_curve
from analytics.customers.rfm import valid_mask
from analytics.kpis import positions
from shocklab.hashing import canonical_json, json_ready

DAYS_PER_MONTH = 30.0


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return None
    ra, rb = pd.Series(a[ok]).rank().to_numpy(), pd.Series(b[ok]).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    ok = np.isfinite(p)
    return float(roc_auc_score(y[ok], p[ok])) if len(np.unique(y[ok])) == 2 else None


def mean_lifetime_days(data_path: str | Path | None) -> float | None:
    """The simulator's mean customer lifetime from ``truth/config.json`` (None if absent)."""
    if data_path is None:
        return None
    p = Path(data_path) / "truth" / "config.json"
    try:
        return float(json.loads(p.read_text(encoding="utf-8"))["customers"]["mean_lifetime_days"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def true_expected_purchases(rate_per_year: np.ndarray, alive: np.ndarray, t_days: float,
                            lifetime_days: float) -> np.ndarray:
    """E[purchases in the next t days] for a customer of known rate and alive status."""
    return alive * rate_per_year / 365.25 * lifetime_days * -np.expm1(-t_days / lifetime_days)


END_DAYS = 90  # the window of the intensity the true expected value extrapolates


def end_intensity_factor(truth: pd.DataFrame, customers: pd.DataFrame | None,
                         orders: pd.DataFrame, end: pd.Timestamp,
                         days: int = END_DAYS) -> pd.Series | None:
    """Per customer_id: the purchase intensity of the customer's country over the last ``days``
    days of data relative to its period average (None without signup dates and countries).

    In the simulator a returning order of country k goes to one of k's alive customers with
    probability proportional to their weight, so customer i buys at rate_i x h_k(t) while alive;
    truth ``purchase_rate`` is the weight times k's *period-average* intensity (h averaged = 1).
    Returning-order volume follows traffic while the base grows, so h falls over the period
    (default world: 1.9 in the first quarter, 0.6 in the last; down to 0.05 on random worlds
    after lasting events). Intensity = returning orders / sum over alive customers of rate x
    alive days, from ``customers`` (signup_date, country), the truth (rate, churn_date) and the
    valid orders (a customer who signed up in the period places their first order that day:
    not a returning one)."""
    if customers is None or not {"customer_id", "signup_date", "country"} <= set(customers):
        return None
    # the valid orders as (customer, day) codes, without building the sorted frame
    keep = valid_mask(orders)
    if not keep.any():
        return None
    o = orders.loc[keep, ["customer_id", "order_date"]]
    o_day = pd.to_datetime(o["order_date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    start_day = int(o_day.min())
    start = pd.Timestamp(np.datetime64(start_day, "D"))
    n = (pd.Timestamp(end).normalize() - start).days + 1
    ids = pd.Index(customers["customer_id"].astype(str))
    t = truth.drop_duplicates("customer_id")
    at = pd.Index(t["customer_id"].astype(str)).get_indexer(ids)   # truth row of each customer
    first_seen = ~ids.duplicated()
    sel = (at >= 0) & first_seen
    ids, at = ids[sel], at[sel]
    k, _ = pd.factorize(customers["country"].astype(str).to_numpy()[sel])
    n_k = int(k.max()) + 1 if len(k) else 0
    if n_k == 0:
        return None
    signup = (pd.to_datetime(customers["signup_date"].to_numpy()[sel]) - start).days.to_numpy()
    churn = pd.to_datetime(t["churn_date"].to_numpy()[at], errors="coerce")
    stop = np.where(churn.isna(), n, np.minimum((churn - start).days.fillna(0).to_numpy(), n))
    rate = pd.to_numeric(pd.Series(t["purchase_rate"].to_numpy()[at]), errors="coerce") \
        .fillna(0.0).to_numpy(float)
    lo = n - days

    def exposure(a: int) -> np.ndarray:  # sum of rate x alive days within [a, n)
        alive = np.clip(stop, a, n) - np.clip(signup + 1, a, n)
        return np.bincount(k, weights=rate * np.clip(alive, 0, None), minlength=n_k)

    codes, uniq = pd.factorize(o["customer_id"])     # one lookup per distinct customer
    pos = ids.get_indexer(pd.Index(uniq).astype(str))[codes]
    day = o_day - start_day
    known = (pos >= 0) & (day < n)                   # orders up to ``end`` only
    day, pos = day[known], pos[known]
    first = np.full(len(ids), n, dtype=np.int64)
    np.minimum.at(first, pos, day)
    returning = ~((signup[pos] >= 0) & (day == first[pos]))
    kk = k[pos][returning]
    win = day[returning] >= lo
    r_all = np.bincount(kk, minlength=n_k).astype(float)
    r_win = np.bincount(kk[win], minlength=n_k).astype(float)
    e_all, e_win = exposure(0), exposure(lo)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (r_win / e_win) / (r_all / e_all)
    f = np.where(np.isfinite(f), f, 1.0)
    return pd.Series(f[k], index=ids, name="end_intensity_factor")


def score_customers(clv_table: pd.DataFrame, truth: pd.DataFrame, end: pd.Timestamp, *,
                    horizon_days: int, discount_rate_monthly: float,
                    lifetime_days: float | None,
                    rate_factor: pd.Series | None = None) -> dict[str, Any]:
    """Scores of the CLV / P(alive) table (``clv.run_clv(...).table``) against the truth.

    ``rate_factor`` (``end_intensity_factor``): the true expected value extrapolates each
    customer's rate at the intensity of the data's last days (the store as it ended) instead of
    the period average; the ``*_period_rate`` scores keep the period-average version."""
    t = truth.drop_duplicates("customer_id").set_index("customer_id")
    t.index = t.index.astype(str)
    tab = clv_table.copy(deep=False)  # (copy-on-write: the caller's table is never changed)
    tab.index = tab.index.astype(str)
    if tab.index.is_unique:  # the customers of both, in the table's order (Arrow-hashed lookup)
        pos = positions(t.index, tab.index)
        known = np.flatnonzero(pos >= 0)
        if len(known) < len(tab):  # (every row known: the table as it is, not a copy of it)
            tab = tab.iloc[known]
        t = t.iloc[pos[known]]
    else:
        common = tab.index.intersection(t.index)
        tab, t = tab.loc[common], t.loc[common]
    rate = pd.to_numeric(t["purchase_rate"], errors="coerce").to_numpy(dtype=float)
    churn = pd.to_datetime(t["churn_date"], errors="coerce")
    alive = (churn.isna() | (churn > pd.Timestamp(end))).to_numpy()
    tier = t["value_tier"].astype(str).to_numpy() if "value_tier" in t else np.full(len(t), "all")
    model = (
        (tab["clv_source"] == "model").to_numpy()
        if "clv_source" in tab
        else np.ones(len(tab), bool)
    )

    factor = (np.ones(len(t)) if rate_factor is None
              else rate_factor.reindex(t.index).fillna(1.0).to_numpy(dtype=float))
    true_value = true_value_period = None
    if lifetime_days is not None and {
        "clv",
        "clv_low",
        "clv_high",
        "monetary_value",
        "frequency",
    } <= set(tab):
        rep = tab["frequency"].to_numpy(dtype=float)
        spend = float(np.sum(tab["monetary_value"].to_numpy() * rep) / max(rep.sum(), 1.0))
        months = max(1, round(horizon_days / DAYS_PER_MONTH))
        edges = np.arange(months + 1) * (horizon_days / months)
        disc = (1.0 + discount_rate_monthly) ** -np.arange(1, months + 1)

        def value(r: np.ndarray) -> np.ndarray:
            # the purchases of each month: np.diff's columns of the cumulative expectation at
            # the month edges, filled one at a time (memory: no list of columns and stacked copy)
            month = np.empty((len(r), months))
            before = true_expected_purchases(r, alive, edges[0], lifetime_days)
            for j in range(months):
                after = true_expected_purchases(r, alive, edges[j + 1], lifetime_days)
                month[:, j] = after - before
                before = after
            return spend * (month @ disc)

        true_value, true_value_period = value(rate * factor), value(rate)

    def block(mask: np.ndarray) -> dict[str, Any]:
        m = mask & model
        out: dict[str, Any] = {
            "customers": int(mask.sum()),
            "scored": int(m.sum()),
            "true_alive_share": float(alive[mask].mean()) if mask.any() else None,
        }
        if "expected_rate_per_year" in tab and m.any():
            er = tab["expected_rate_per_year"].to_numpy(dtype=float)
            out["rate_spearman"] = _spearman(er[m], rate[m])
            rb = m & (tab["frequency"].to_numpy() > 0)
            out["rate_spearman_repeat_buyers"] = _spearman(er[rb], rate[rb])
        if "p_alive" in tab and m.any():
            pa = tab["p_alive"].to_numpy(dtype=float)[m]
            y = alive[m].astype(int)
            out["p_alive_roc_auc"] = _auc(y, pa)
            out["p_alive_brier"] = float(np.mean((pa - y) ** 2))
            out["p_alive_mean"] = float(pa.mean())
        if true_value is not None and m.any():
            c = tab["clv"].to_numpy(dtype=float)[m]
            tv = true_value[m]
            lo, hi = (
                tab["clv_low"].to_numpy(dtype=float)[m],
                tab["clv_high"].to_numpy(dtype=float)[m],
            )
            err = c - tv
            out["clv_mae"] = float(np.mean(np.abs(err)))
            out["clv_median_abs_error"] = float(np.median(np.abs(err)))
            out["clv_total_predicted"] = float(c.sum())
            out["clv_total_true"] = float(tv.sum())
            out["clv_total_bias"] = float(c.sum() / tv.sum() - 1) if tv.sum() > 0 else None
            out["clv_spearman"] = _spearman(c, tv)
            out["clv_interval_coverage"] = float(
                np.mean((lo <= tv * (1 + 1e-9)) & (tv <= hi * (1 + 1e-9)))
            )
            if rate_factor is not None:  # the period-average truth, for comparison
                tp = true_value_period[m]
                out["clv_total_bias_period_rate"] = (
                    float(c.sum() / tp.sum() - 1) if tp.sum() > 0 else None)
                out["clv_interval_coverage_period_rate"] = float(
                    np.mean((lo <= tp * (1 + 1e-9)) & (tp <= hi * (1 + 1e-9))))
        return out

    res: dict[str, Any] = {
        "end_date": pd.Timestamp(end).date().isoformat(),
        "customers": int(len(tab)),
        "horizon_days": horizon_days,
        "lifetime_days": lifetime_days,
        "interval": None,
        "true_rate": ("end_intensity" if rate_factor is not None else "period_average"),
        "end_intensity_days": END_DAYS if rate_factor is not None else None,
        "overall": block(np.ones(len(tab), bool)),
        "by_value_tier": {
            k: block(tier == k) for k in ("low", "medium", "high", "none") if (tier == k).any()
        },
    }
    if "p_alive" in tab and model.any():
        curve = reliability(tab["p_alive"].to_numpy(dtype=float)[model], alive[model])
        res["p_alive_reliability"] = curve
        res["p_alive_calibration_error"] = calibration_error(curve)
    return res


def calibration_error(curve: list[dict[str, Any]]) -> float | None:
    """Expected calibration error of a reliability curve (``churn.reliability``): the
    customer-weighted mean |mean predicted - observed rate| over its bins (0 = calibrated)."""
    n = sum(b["customers"] for b in curve)
    if n == 0:
        return None
    return float(sum(b["customers"] * abs(b["mean_predicted"] - b["observed_rate"])
                     for b in curve) / n)


def churn_truth_scores(truth: pd.DataFrame, customers: pd.Index, eval_p: dict[str, np.ndarray],
                       end: pd.Timestamp) -> dict[str, Any]:
    """Scores against the simulator's truth: churned = true churn_date on or before ``end``
    (the end of the evaluation label window), for the customers scored at ``c_eval``."""
    t = truth.drop_duplicates("customer_id")
    churn_date = pd.DatetimeIndex(pd.to_datetime(t["churn_date"].to_numpy(), errors="coerce"))
    pos = positions(t["customer_id"], customers)  # one lookup of every id
    known = pos >= 0
    cd = churn_date[pos[known]]
    y = (cd.notna() & (cd <= end)).astype(int)
    out: dict[str, Any] = {
        "customers": int(known.sum()),
        "churned_share": float(y.mean()) if len(y) else None,
    }
    for name, p in eval_p.items():
        out[f"{name}_roc_auc"] = (
            float(roc_auc_score(y, p[known])) if len(np.unique(y)) == 2 else None
        )
    return out


def churn_wave_delays(alerts: list[dict[str, Any]], events: list[dict[str, Any]] | None,
                      max_delay_days: int = 120, until: Any = None,
                      since: Any = None) -> list[dict[str, Any]]:
    """First alert on or after each churn_wave's start (within ``max_delay_days``) and its delay.
    A wave starting after ``until`` (the monitor's last judged day: an ``--as-of`` run's day) is
    left out: the monitor could not have seen it, so it is not a miss. So is a wave starting
    before ``since`` (the first day this run judged: an ``--as-of`` run judges its day only, and
    its alerts are that day's): the days its alert was due were not judged here."""
    out = []
    for e in events or []:
        if e.get("type") != "churn_wave":
            continue
        start = pd.Timestamp(e["start"])
        if until is not None and start > pd.Timestamp(until):
            continue
        if since is not None and start < pd.Timestamp(since):
            continue
        hits = sorted(a["date"] for a in alerts
                      if 0 <= (pd.Timestamp(a["date"]) - start).days <= max_delay_days)
        first = hits[0] if hits else None
        out.append({"event_id": e.get("event_id"), "start": start.date().isoformat(),
                    "detected": first is not None, "first_alert_date": first,
                    "delay_days": (pd.Timestamp(first) - start).days if first else None})
    return out



def stage(ctx: RunContext) -> None:
    """Evaluation stage ``customer_scoring`` (after customers): the customer models of this run
    against the truth — the churn models' out-of-time predictions (``customers.churn.truth``), the
    monitor's alerts against the churn waves (``customers.monitor.churn_waves``), both in the
    customers summary as before, and the CLV / P(alive) model (``ctx.customer_scores``, the
    scorecard and the P(alive) reliability plot)."""
    truth = ctx.truth
    if truth is None or ctx.customers is None:
        return
    summary = ctx.customers
    tc = truth.customers
    churn_fit = ctx.customer_models.get("churn")
    if (churn_fit is not None and summary.get("churn") is not None and tc is not None
            and {"customer_id", "churn_date"} <= set(tc.columns)):
        summary["churn"]["truth"] = json_ready(churn_truth_scores(
            tc, churn_fit["customers"], churn_fit["eval_p"], pd.Timestamp(churn_fit["end"])
        ))
    if summary.get("monitor") is not None:
        mon = summary["monitor"]
        # a daily (--as-of) run judges one day: a wave that started before it was not watched
        since = summary.get("as_of") if mon.get("mode") == "daily" else None
        mon["churn_waves"] = json_ready(
            churn_wave_delays(mon["alerts"], truth.events, until=summary.get("end_date"),
                              since=since)
        )
    fitted = ctx.customer_models.get("clv")
    if (
        fitted is None
        or tc is None
        or not {"customer_id", "purchase_rate", "churn_date"} <= set(tc.columns)
    ):
        return
    cfg = fitted["config"]
    factor = None
    if "orders" in ctx.data.tables and ctx.data.source != "transactions":
        factor = end_intensity_factor(tc, ctx.data.tables.get("customers"),
                                      ctx.data.tables["orders"], pd.Timestamp(fitted["end"]))
    ts = score_customers(fitted["table"], tc, fitted["end"], horizon_days=cfg.horizon_days,
                         discount_rate_monthly=cfg.discount_rate_monthly,
                         lifetime_days=mean_lifetime_days(truth.path), rate_factor=factor)
    ts["interval"] = cfg.interval
    ts = json.loads(canonical_json(ts))
    ctx.customer_scores = ts  # customers/truth_scores.json (analytics.outputs writes it)
    if isinstance(summary.get("files"), list):  # the summary lists what customers/ holds
        summary["files"] = sorted({*summary["files"], "truth_scores.json"})
    if ctx.scorecard is not None:  # the scorecard holds everything scored against truth
        ctx.scorecard["customers"] = ts
    curve = ts.get("p_alive_reliability")
    if curve and ctx.config.customers.plots:
        try:
            ctx.figures["plots/customers_p_alive_reliability.png"] = reliability_curve(
                {"P(alive) vs true alive": curve},
                "P(alive) calibration against the simulator's truth",
            )
        except Exception:  # plots are a convenience: never fail the run for one
            pass
