"""Churn: label = no order in the ``horizon_days`` from a cutoff; features strictly before it.

Temporal design (``end`` = data end date, N = horizon):

* evaluation cutoff ``c_eval = end + 1 - N``: label window ``[c_eval, end]`` (N days);
* training cutoff ``c_train = c_eval - N``: label window ``[c_train, c_eval)``;
* models trained at ``c_train`` are scored out of time at ``c_eval`` (the reported metrics);
* the best of them is calibrated out of time (Platt scaling on the logit, fitted on half of the
  ``c_eval`` customers, its reliability curve and Brier score reported on the other half) and
  scores every customer on all data (the per-customer ``churn_risk``: a calibrated probability of
  no order in the next N days).

Label for the model ("churned" = no order in the next N days) is not the simulator's truth
("churned" = the latent dropout date has passed: the customer will never order again): a slow
buyer who is alive often has no order in 60 days. Scores against the truth are computed apart, by
the evaluation stage (``evaluation.customer_scores``), from the out-of-time predictions.

Features (all from orders strictly before the cutoff, so nothing from a label window can leak):
recency_days, frequency (orders), monetary (net revenue), aov, tenure_days (since first order),
orders_30d, orders_90d, revenue_90d, mean_gap_days (span / (orders - 1); tenure for one order),
recency_gap_ratio (recency / mean gap: how overdue).

Cost is bounded: the models train on at most ``train_rows`` customers (every k-th in id order)
and the forest has ``rf_trees`` trees; every customer is still scored.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    auc,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from shocklab.seeding import derive_int_seed

from ..schedule import spare_core
from . import rfm
from .config import ChurnConfig

FEATURES = ("recency_days", "frequency", "monetary", "aov", "tenure_days", "orders_30d",
            "orders_90d", "revenue_90d", "mean_gap_days", "recency_gap_ratio")
MODELS = ("logistic_regression", "random_forest")
PLATT_C = 1e6  # the calibration's inverse penalty (as good as none)


def features_at(orders: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Features per customer from valid orders dated strictly before ``cutoff``.

    ``orders`` as returned by ``rfm.valid_orders``. Index: customer_id (sorted); columns FEATURES.
    """
    v = rfm.valid_orders(orders)
    cut = rfm.as_day(cutoff)
    past = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), cut, side="left"))]
    pc = rfm.per_customer(past)
    c, d = past["cust"].to_numpy(), past["day"].to_numpy()
    rev = past["net_revenue"].to_numpy()
    n = int(c.max()) + 1 if len(c) else 0
    codes = rfm.customer_ids(past)[0]
    before = cut - d
    in30 = np.bincount(c, weights=(before <= 30).astype(float), minlength=n)[codes]
    in90 = before <= 90
    f = pd.DataFrame({
        "recency_days": (cut - pc["last_day"]).astype(float),
        "frequency": pc["orders"].astype(float),
        "monetary": pc["revenue"],
        "tenure_days": (cut - pc["first_day"]).astype(float),
        "orders_30d": in30,
        "orders_90d": np.bincount(c, weights=in90.astype(float), minlength=n)[codes],
        "revenue_90d": np.bincount(c, weights=np.where(in90, rev, 0.0), minlength=n)[codes],
    }, index=pc.index)
    f["aov"] = f["monetary"] / f["frequency"]
    # numpy arrays below: numpy probing a Series for __array_interface__ looks the name up in
    # its customer_id index, which builds a hash table of every id each time
    freq = f["frequency"].to_numpy()
    span = (pc["last_day"].to_numpy() - pc["first_day"].to_numpy()).astype(float)
    # mean days between orders; a one-order customer's gap is unknown -> use their tenure
    gap = np.where(freq > 1, span / np.maximum(freq - 1, 1), f["tenure_days"].to_numpy())
    f["mean_gap_days"] = np.maximum(gap, 1.0)
    f["recency_gap_ratio"] = f["recency_days"].to_numpy() / f["mean_gap_days"].to_numpy()
    return f[list(FEATURES)]


def labels_at(orders: pd.DataFrame, customers: pd.Index, cutoff: pd.Timestamp,
              horizon_days: int, codes: np.ndarray | None = None) -> pd.Series:
    """1 = churned: no valid order in ``[cutoff, cutoff + horizon_days)``; indexed like
    ``customers``. ``codes``: the customers' ``cust`` codes when known (``features_at``'s
    customers are ``_codes_before(orders, cutoff)``), saving a string lookup of every id."""
    v = rfm.valid_orders(orders)
    d = v["day"].to_numpy()
    cut = rfm.as_day(cutoff)
    lo, hi = np.searchsorted(d, [cut, cut + horizon_days], side="left")
    cats = v["customer_id"].cat.categories
    active = np.zeros(len(cats) + 1, dtype=bool)       # last slot: customers not in the data
    active[v["cust"].to_numpy()[lo:hi]] = True
    pos = cats.get_indexer(customers) if codes is None else codes
    return pd.Series((~active[pos]).astype(np.int8), index=customers, name="churned")


def _codes_before(orders: pd.DataFrame, cutoff: pd.Timestamp) -> np.ndarray:
    """``cust`` codes of the customers ``features_at(orders, cutoff)`` describes, in its order."""
    v = rfm.valid_orders(orders)
    past = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), rfm.as_day(cutoff), side="left"))]
    return rfm.customer_ids(past)[0]


def _one_class(y: np.ndarray) -> bool:
    return len(y) == 0 or bool(y.min() == y.max())


def _models(cfg: ChurnConfig, seed: int) -> dict[str, Any]:
    return {
        "logistic_regression": make_pipeline(
            StandardScaler(),
            LogisticRegression(C=cfg.lr_c, max_iter=2000,
                               random_state=derive_int_seed(seed, "customers.churn.lr"))),
        "random_forest": RandomForestClassifier(
            n_estimators=cfg.rf_trees, max_depth=cfg.rf_max_depth, min_samples_leaf=5, n_jobs=-1,
            max_samples=cfg.rf_max_samples if cfg.rf_max_samples < 1 else None,
            random_state=derive_int_seed(seed, "customers.churn.rf")),
    }


def _fit(model: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Fit (forest trees in parallel: each tree's seed is drawn up front, so the forest does not
    depend on n_jobs), then predict single-threaded: parallel predict_proba sums the trees in
    completion order, which can change the last bits of a probability between runs.

    A fractional ``max_samples`` is passed as the count sklearn would draw from it
    (``max(int(fraction * rows), 1)``): the same forest, without sklearn's 'UserWarning: Using
    the fractional value max_samples=0.25 when the number of samples is 23 …', which a small
    store's run printed on a --quiet run's stderr."""
    share = model.get_params().get("max_samples") if isinstance(
        model, RandomForestClassifier) else None
    if isinstance(share, float):
        model.set_params(max_samples=max(int(share * len(x)), 1))
    model.fit(x, y)
    if isinstance(model, RandomForestClassifier):
        model.set_params(n_jobs=1)


def _positive_proba(model: Any, x: np.ndarray) -> np.ndarray:
    """``model.predict_proba(x)[:, 1]``. For the forest with a spare core
    (``schedule.spare_core``: in order, two usable cores) the trees' leaves are found on two
    threads (sklearn's ``apply`` runs without the GIL) and their class-1 fractions summed here in
    tree order, then divided by the number of trees: the same additions in the same order as
    ``predict_proba`` with one job, so the same floats (half the wall time of its ~0.25 s)."""
    if not (isinstance(model, RandomForestClassifier) and list(model.classes_) == [0, 1]
            and model.n_outputs_ == 1 and spare_core()):
        return model.predict_proba(x)[:, 1]
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    trees = model.estimators_
    out = np.zeros(len(x32))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="churn-forest") as pool:
        for start in range(0, len(trees), 4):  # a few trees' leaves in memory at a time
            batch = trees[start:start + 4]
            leaves = list(pool.map(lambda t: t.tree_.apply(x32), batch))
            for tree, leaf in zip(batch, leaves, strict=True):
                out += tree.tree_.value[:, 0, 1].take(leaf)
    out /= len(trees)
    return out


def _x(f: pd.DataFrame) -> np.ndarray:
    # log1p tames heavy tails (monetary, gaps) for the linear model; trees do not care
    return np.log1p(f.to_numpy(dtype=float).clip(min=0))


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float,
             roc: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Binary metrics of 0/1 labels ``y``: the confusion counts by one ``bincount`` and the
    ratios from them (the same floats as sklearn's accuracy/precision/recall/f1 with
    zero_division=0, without their per-call label validation over all rows). ``roc``: the
    (fpr, tpr) of ``roc_curve(y, p)`` when already computed — ROC-AUC is then ``auc(fpr, tpr)``,
    which is what ``roc_auc_score`` computes for 0/1 labels (same float)."""
    pred = (p >= threshold).astype(int)
    y = np.asarray(y).astype(int)
    both = bool(y.min() == 0 and y.max() == 1) if len(y) else False
    tn, fp, fn, tp = (int(k) for k in np.bincount(2 * y + pred, minlength=4)[:4])

    def ratio(a: int, b: int) -> float:
        return float(a / b) if b else 0.0

    return {
        "accuracy": ratio(tp + tn, len(y)),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "roc_auc": (float(auc(*roc) if roc is not None else roc_auc_score(y, p))
                    if both else None),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


@dataclass
class ChurnResult:
    status: str                                   # "ok" | "skipped: <why>"
    summary: dict[str, Any] = field(default_factory=dict)
    risk: pd.Series | None = None  # churn probability per customer_id (all data)
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )  # model -> (fpr, tpr)
    reliability: list[dict[str, Any]] = field(default_factory=list)  # calibrated, out of time
    # the out-of-time predictions (customers scored at the eval cutoff, model -> probabilities):
    # the evaluation stage scores them against the truth (evaluation.customer_scores)
    eval_customers: pd.Index | None = None
    eval_p: dict[str, np.ndarray] = field(default_factory=dict)


def run_churn(orders: pd.DataFrame, end: pd.Timestamp, cfg: ChurnConfig, seed: int
              ) -> ChurnResult:
    """Fit, evaluate out of time, calibrate, and score every customer."""
    if len(orders) == 0:
        return ChurnResult(status="skipped: no orders")
    orders = rfm.valid_orders(orders)
    span = (pd.Timestamp(end) - orders["order_date"].iloc[0]).days + 1
    # a short data set gets a shorter horizon (down to 14 days) rather than no churn model
    n = min(cfg.horizon_days, (span - cfg.min_history_days) // 2)
    if n < 14:
        return ChurnResult(
            status=f"skipped: needs {28 + cfg.min_history_days} days of orders, has {span}"
        )
    c_eval = pd.Timestamp(end) + pd.Timedelta(days=1 - n)
    c_train = c_eval - pd.Timedelta(days=n)
    f_train = features_at(orders, c_train)
    y_train = labels_at(orders, f_train.index, c_train, n,
                        codes=_codes_before(orders, c_train)).to_numpy()
    f_eval = features_at(orders, c_eval)
    y_eval = labels_at(orders, f_eval.index, c_eval, n,
                       codes=_codes_before(orders, c_eval)).to_numpy()
    if _one_class(y_train) or _one_class(y_eval):
        return ChurnResult(status="skipped: the churn label has a single class")
    sub = np.arange(0, len(y_train), max(1, -(-len(y_train) // cfg.train_rows)))
    if _one_class(y_train[sub]):
        sub = np.arange(len(y_train))

    summary: dict[str, Any] = {
        "horizon_days": n,
        "horizon_days_configured": cfg.horizon_days,
        "train_cutoff": c_train.date().isoformat(),
        "eval_cutoff": c_eval.date().isoformat(),
        "end_date": pd.Timestamp(end).date().isoformat(),
        "train_customers": int(len(y_train)),
        "train_rows_used": int(len(sub)),
        "eval_customers": int(len(y_eval)),
        "train_churn_rate": float(y_train.mean()),
        "eval_churn_rate": float(y_eval.mean()),
        "label": f"no valid order in the {n} days from the cutoff",
        "features": list(FEATURES),
        "models": {},
    }
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    eval_p: dict[str, np.ndarray] = {}
    fitted: dict[str, Any] = {}
    x_train, x_eval = _x(f_train), _x(f_eval)
    for name, model in _models(cfg, seed).items():
        _fit(model, x_train[sub], y_train[sub])
        fitted[name] = model
        p = _positive_proba(model, x_eval)
        eval_p[name] = p
        fpr, tpr, _ = roc_curve(y_eval, p)
        m = _metrics(y_eval, p, cfg.threshold, roc=(fpr, tpr))
        if name == "logistic_regression":
            coef = model[-1].coef_[0]
            m["coefficients"] = {k: float(v) for k, v in zip(FEATURES, coef, strict=True)}
        else:
            m["importances"] = {
                k: float(v) for k, v in zip(FEATURES, model.feature_importances_, strict=True)
            }
        summary["models"][name] = m
        roc[name] = (fpr, tpr)
    best = max(MODELS, key=lambda k: (summary["models"][k]["roc_auc"] or 0.0, k == "random_forest"))
    summary["best_model"] = best

    # out-of-time calibration of the best model: fit on even positions, judge on odd ones
    fit_half, test_half = np.arange(0, len(y_eval), 2), np.arange(1, len(y_eval), 2)
    cal = _platt(eval_p[best][fit_half], y_eval[fit_half])
    p_cal = cal(eval_p[best][test_half])
    y_test = y_eval[test_half]
    summary["calibration"] = {
        "method": "platt (logistic on the logit), fitted out of time on half of the eval customers",
        "customers": int(len(test_half)),
        "brier_raw": float(np.mean((eval_p[best][test_half] - y_test) ** 2)),
        "brier_calibrated": float(np.mean((p_cal - y_test) ** 2)),
        "reliability": reliability(p_cal, y_test),
    }

    f_now = features_at(orders, pd.Timestamp(end) + pd.Timedelta(days=1))
    risk = pd.Series(
        cal(_positive_proba(fitted[best], _x(f_now))), index=f_now.index, name="churn_risk"
    )
    summary["mean_risk"] = float(risk.mean())
    return ChurnResult(status="ok", summary=summary, risk=risk, roc=roc,
                       reliability=summary["calibration"]["reliability"],
                       eval_customers=f_eval.index, eval_p=eval_p)


def _platt(p: np.ndarray, y: np.ndarray):
    """Monotone map p -> calibrated p: logistic regression on logit(p) (two parameters).

    Newton's method on the same objective as ``LogisticRegression(C=1e6)`` (log loss plus
    w^2 / (2 C)), solved to convergence: sklearn's lbfgs stopped ~1e-4 short of this optimum
    and cost ~0.15 s of set-up on 95 k rows; this takes a few milliseconds."""
    def logit(q: np.ndarray) -> np.ndarray:
        q = np.clip(q, 1e-6, 1 - 1e-6)
        return np.log(q / (1 - q))

    z, t = logit(p), np.asarray(y, dtype=float)
    X = np.column_stack([z, np.ones(len(z))])
    ridge = np.array([1.0 / PLATT_C, 0.0])          # the penalty is on the slope only
    w = np.zeros(2)
    for _ in range(100):
        mu = special.expit(X @ w)
        grad = X.T @ (mu - t) + ridge * w
        hess = (X * (mu * (1 - mu))[:, None]).T @ X + np.diag(ridge) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.max(np.abs(step)) < 1e-12:
            break
    return lambda q: special.expit(logit(q) * w[0] + w[1])


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability curve: per equal-width probability bin, mean predicted, observed rate, count."""
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    cnt = np.bincount(idx, minlength=bins)
    mp = np.bincount(idx, weights=p, minlength=bins)
    obs = np.bincount(idx, weights=y.astype(float), minlength=bins)
    return [{"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "customers": int(cnt[b]),
             "mean_predicted": float(mp[b] / cnt[b]), "observed_rate": float(obs[b] / cnt[b])}
            for b in range(bins) if cnt[b] > 0]
