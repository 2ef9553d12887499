"""Customer lifetime value: historical, and predictive with BG/NBD + Gamma-Gamma (``lifetimes``).

``lifetimes`` 0.11.3 was chosen because it is the reference implementation of both models
(Fader, Hardie & Lee), is pure Python (no compiler, installs cleanly here) and fits and predicts
correctly under numpy 2 / pandas 3 (checked on its CDNow sample data). Its only noise is one
pandas deprecation warning at import, silenced below.

Time unit is the day. Following the models' convention, a customer's "frequency" is the number
of *repeat* purchase days, recency the days from first to last purchase, T the days from first
purchase to the data end, and monetary value the mean revenue of the repeat purchase days.

Scoring against the simulator: its ``purchase_rate`` is a customer's rate *while alive*, so the
model quantity to rank against it is BG/NBD's posterior mean rate (``expected_rate_per_year``);
predicted purchases over the horizon also fold in the chance of having left.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .config import ClvConfig

log = logging.getLogger("shocklab.customers.clv")


def _lifetimes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecation of an option lifetimes sets at import
        from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
        from lifetimes.utils import _customer_lifetime_value
    return {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter}, GammaGammaFitter, _customer_lifetime_value


def summary_data(orders: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Per customer: frequency, recency, T (days), monetary_value; orders from ``valid_orders``."""
    daily = orders.groupby(["customer_id", "order_date"], sort=True)["net_revenue"].sum().reset_index()
    g = daily.groupby("customer_id", sort=True)
    first = g["order_date"].min()
    last = g["order_date"].max()
    n_days = g.size()
    first_rev = g["net_revenue"].first()  # sorted by date within customer -> first purchase day
    total = g["net_revenue"].sum()
    freq = (n_days - 1).astype(float)
    monetary = np.where(freq > 0, (total - first_rev) / freq.clip(lower=1), 0.0)
    return pd.DataFrame({
        "frequency": freq,
        "recency": (last - first).dt.days.astype(float),
        "T": (pd.Timestamp(end) - first).dt.days.astype(float),
        "monetary_value": monetary,
    })


def spearman(a: pd.Series, b: pd.Series) -> float | None:
    """Rank correlation on the common index (None if fewer than 3 points or a constant side)."""
    a, b = a.align(b, join="inner")
    ok = a.notna() & b.notna()
    if ok.sum() < 3:
        return None
    ra, rb = a[ok].rank(), b[ok].rank()
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass
class ClvResult:
    table: pd.DataFrame                         # per customer_id
    summary: dict[str, Any] = field(default_factory=dict)


def run_clv(orders: pd.DataFrame, end: pd.Timestamp, cfg: ClvConfig,
            truth_customers: pd.DataFrame | None = None) -> ClvResult:
    """Historical value for everyone; predictive CLV when the models fit (never raises on a
    failed fit: the summary says why and the table keeps the historical columns)."""
    s = summary_data(orders, end)
    g = orders.groupby("customer_id", sort=True)
    table = pd.DataFrame({
        "historical_value": g["net_revenue"].sum(),
        "orders": g["order_id"].nunique(),
    })
    table["avg_order_value"] = table["historical_value"] / table["orders"]
    table = table.join(s)
    summary: dict[str, Any] = {"horizon_days": cfg.horizon_days, "customers": int(len(table)),
                               "historical_value_total": float(table["historical_value"].sum())}
    # lifetimes' own advice on a failed fit is a larger penalizer: try two more, then give up
    errors = []
    for penalizer in (cfg.penalizer, max(cfg.penalizer * 10, 0.01), max(cfg.penalizer * 100, 0.1)):
        try:
            table, fitted = _predictive(table, cfg, penalizer)
        except Exception as exc:  # a degenerate data set must not stop the run
            errors.append(f"penalizer {penalizer:g}: {type(exc).__name__}: {_first_line(exc)}")
            continue
        summary.update(fitted, penalizer=penalizer, status="ok")
        break
    else:
        log.warning("CLV: predictive model failed (%s); historical value only", errors[-1])
        summary["status"] = "failed: " + "; ".join(errors)
    value = table["clv"] if "clv" in table else table["historical_value"]
    table["value_pct"] = value.rank(pct=True, method="average")
    summary["predicted_value_total"] = float(table["clv"].sum()) if "clv" in table else None

    if truth_customers is not None and "purchase_rate" in truth_customers.columns:
        rate = truth_customers.drop_duplicates("customer_id").set_index("customer_id")["purchase_rate"]
        rate = pd.to_numeric(rate, errors="coerce")
        hist_rate = table["orders"] / (table["T"] + 1)
        summary["truth"] = {
            "spearman_expected_rate_vs_true_rate":
                spearman(table["expected_rate_per_year"], rate) if "expected_rate_per_year" in table else None,
            "spearman_predicted_purchases_vs_true_rate":
                spearman(table["predicted_purchases"], rate) if "predicted_purchases" in table else None,
            "spearman_clv_vs_true_rate": spearman(table["clv"], rate) if "clv" in table else None,
            "spearman_historical_rate_vs_true_rate": spearman(hist_rate, rate),
        }
    if truth_customers is not None and "churn_date" in truth_customers.columns and "p_alive" in table:
        churn_date = pd.to_datetime(truth_customers.drop_duplicates("customer_id")
                                    .set_index("customer_id")["churn_date"], errors="coerce")
        alive = (churn_date.isna() | (churn_date > pd.Timestamp(end))).reindex(table.index)
        known = alive.notna().to_numpy()
        y = alive[known].astype(int).to_numpy()
        summary.setdefault("truth", {})["p_alive_roc_auc_vs_true_alive"] = (
            float(roc_auc_score(y, table["p_alive"].to_numpy()[known])) if len(np.unique(y)) == 2 else None)
    return ClvResult(table=table, summary=summary)


def _first_line(exc: Exception) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")[:200]


def _predictive(table: pd.DataFrame, cfg: ClvConfig, penalizer: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    fitters, GammaGammaFitter, _customer_lifetime_value = _lifetimes()
    f, r, t = table["frequency"], table["recency"], table["T"]
    # lifetimes print()s the optimizer state when a fit fails; the reason goes to the summary
    with np.errstate(all="ignore"), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        bgf = fitters[cfg.model](penalizer_coef=penalizer).fit(f, r, t)
        out = table.copy()
        out["predicted_purchases"] = np.asarray(
            bgf.conditional_expected_number_of_purchases_up_to_time(cfg.horizon_days, f, r, t), dtype=float)
        out["p_alive"] = np.asarray(bgf.conditional_probability_alive(f.to_numpy(), r.to_numpy(), t.to_numpy()),
                                    dtype=float)
        # posterior mean purchase rate while alive: Gamma(r + x, alpha + T) if still alive,
        # Gamma(r + x, alpha + t_x) if the customer dropped out after the last purchase (exact
        # for BG/NBD; for the modified model, which also lets one-time buyers leave, a close one)
        pr = bgf.params_
        out["expected_rate_per_year"] = 365.25 * (pr["r"] + f) * (
            out["p_alive"] / (pr["alpha"] + t) + (1 - out["p_alive"]) / (pr["alpha"] + r))
        rep = out[(out["frequency"] > 0) & (out["monetary_value"] > 0)]
        if len(rep) < 10:
            raise ValueError(f"only {len(rep)} repeat customers with positive value for Gamma-Gamma")
        ggf = GammaGammaFitter(penalizer_coef=penalizer).fit(rep["frequency"], rep["monetary_value"])
        m = out["monetary_value"].where(out["monetary_value"] > 0, 0.0)
        f_gg = out["frequency"].where(out["monetary_value"] > 0, 0.0)
        out["expected_order_value"] = np.asarray(ggf.conditional_expected_average_profit(f_gg, m), dtype=float)
        months = max(1, round(cfg.horizon_days / 30))
        # BG/NBD sees the true repeat frequency; Gamma-Gamma falls back to the population mean
        # (f = 0) for customers without a positive repeat value
        out["clv"] = np.asarray(_customer_lifetime_value(
            bgf, f, r, t, out["expected_order_value"], time=months,
            discount_rate=cfg.discount_rate_monthly, freq="D"), dtype=float)
    bad = ~np.isfinite(out[["predicted_purchases", "p_alive", "expected_rate_per_year", "expected_order_value",
                            "clv"]].to_numpy())
    if bad.any():
        raise ValueError(f"{int(bad.any(axis=1).sum())} customers got non-finite predictions")
    params = {"model": cfg.model, "purchase_model_params": {k: float(v) for k, v in bgf.params_.items()},
              "gamma_gamma_params": {k: float(v) for k, v in ggf.params_.items()},
              "repeat_customers": int(len(rep))}
    return out, params
