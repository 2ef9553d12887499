"""Action engine: (segment, churn risk, value, recency) -> action with a reason, by rules from
config.

The first rule that matches wins; a customer no rule matches gets the default action. Churn risk
is also read relative to the store's base rate (``min_churn_lift``: the mean churn risk of the
scored customers), overdue-ness against the customer's own purchase gap, recency as the R score
and the CLV model's P(alive) (``ActionRule``). Vectorized: one mask per rule, resolved by
``np.select``; reasons are built column-wise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import ActionRule, ActionsConfig


def _mask(rule: ActionRule, seg_code: np.ndarray, seg_names: pd.Index, risk: np.ndarray,
          value: np.ndarray, base: float, overdue: np.ndarray, r: np.ndarray,
          p_alive: np.ndarray) -> np.ndarray:
    m = (risk >= rule.min_churn_risk) & (risk <= rule.max_churn_risk)
    if rule.min_churn_lift > 0 or rule.max_churn_lift < 1e9:
        lift = risk / base if base > 0 else np.zeros_like(risk)
        m &= (lift >= rule.min_churn_lift) & (lift <= rule.max_churn_lift)
    m &= (value >= rule.min_value_pct) & (value <= rule.max_value_pct)
    if rule.overdue is not None:  # NaN (one order, no cadence) compares False
        m &= (overdue >= rule.overdue.min) & (overdue <= rule.overdue.max)
    if rule.r.min > 1 or rule.r.max < 5:
        m &= (r >= rule.r.min) & (r <= rule.r.max)
    if rule.max_p_alive < 1:  # NaN (no CLV model) compares False
        m &= p_alive <= rule.max_p_alive
    if rule.segments:
        m &= np.isin(seg_code, np.flatnonzero(seg_names.isin(rule.segments)))
    return m


def _conditions(rule: ActionRule, base: float | None = None) -> str:
    """The rule's conditions in words (``base``: the store's base churn rate, named with a lift)."""
    parts = []
    if rule.segments:
        parts.append("segment in " + "/".join(rule.segments))
    if rule.min_churn_risk > 0:
        parts.append(f"churn risk >= {rule.min_churn_risk:g}")
    if rule.max_churn_risk < 1:
        parts.append(f"churn risk <= {rule.max_churn_risk:g}")
    at = " (unknown)" if base is None else f" {base:.2f}"
    if rule.min_churn_lift > 0:
        parts.append(f"churn risk >= {rule.min_churn_lift:g}x the store's base rate{at}")
    if rule.max_churn_lift < 1e9:
        parts.append(f"churn risk <= {rule.max_churn_lift:g}x the store's base rate{at}")
    if rule.overdue is not None:
        if rule.overdue.min > 0:
            parts.append(f"overdue >= {rule.overdue.min:g}x own gap")
        if rule.overdue.max < 1e9:
            parts.append(f"overdue <= {rule.overdue.max:g}x own gap")
    if rule.r.min > 1 or rule.r.max < 5:
        parts.append(f"R score {rule.r.min}-{rule.r.max}")
    if rule.max_p_alive < 1:
        parts.append(f"P(alive) <= {rule.max_p_alive:g}")
    if rule.min_value_pct > 0:
        parts.append(f"value in top {1 - rule.min_value_pct:.0%}")
    if rule.max_value_pct < 1:
        parts.append(f"value below top {1 - rule.max_value_pct:.0%}")
    return ", ".join(parts) or "always"


def _column(customers: pd.DataFrame, name: str) -> np.ndarray:
    """A float column, all NaN when absent (a rule on it then matches nobody)."""
    if name not in customers:
        return np.full(len(customers), np.nan)
    return customers[name].astype(float).to_numpy()


def assign_actions(customers: pd.DataFrame, cfg: ActionsConfig) -> pd.DataFrame:
    """``customers`` needs customer_id, segment, churn_risk (0..1; NaN = unknown, treated as 0
    by the rules and written "churn risk unknown" in the reason) and value_pct (0..1 CLV
    percentile); rules on overdue, R or P(alive) read ``overdue``, ``r_score`` and ``p_alive``
    (absent: no match).
    The base churn rate is the mean of the known churn risks. Returns customer_id, action,
    rule, reason."""
    # segments as codes of their distinct names (NaN is a name of its own: "nan", as str() says)
    seg_code, seg_names = pd.factorize(customers["segment"], use_na_sentinel=False)
    seg_names = pd.Index(seg_names)
    risk = customers["churn_risk"].astype(float)
    unknown = risk.isna().to_numpy()  # no churn model (too little history, one class): said so
    base = float(risk.mean()) if (~unknown).any() else 0.0  # the store's base churn rate
    risk = risk.fillna(0.0)
    value = customers["value_pct"].astype(float).fillna(0.0)
    overdue, r_score = _column(customers, "overdue"), _column(customers, "r_score")
    p_alive = _column(customers, "p_alive")
    masks = [_mask(r, seg_code, seg_names, risk.to_numpy(), value.to_numpy(), base, overdue,
                   r_score, p_alive) for r in cfg.rules]
    idx = (
        np.select(masks, np.arange(len(cfg.rules)), default=-1)
        if masks else np.full(len(seg_code), -1)
    )
    actions = np.array([r.action for r in cfg.rules] + [cfg.default_action], dtype=object)
    # no churn model at all: the base rate is unknown too (0 only for the rules), not "0.00"
    known = base if (~unknown).any() else None
    conds = np.array([_conditions(r, known) for r in cfg.rules] + ["no rule matched"],
                     dtype=object)
    # the reason depends on (rule, segment, risk to 2 decimals, value percentile) only: one
    # f-string per distinct combination (a few thousand), mapped back to the customers
    names = np.array([str(x) for x in seg_names], dtype=object)  # a dozen names
    k_risk = np.rint(risk.to_numpy() * 100).astype(np.int64)     # risk.round(2) = k / 100
    k_risk[unknown] = 101
    v_pct = (value * 100).round(0).astype(int).to_numpy().astype(np.int64)
    key = ((idx.astype(np.int64) + 1) * max(len(seg_names), 1) + seg_code) * 102 + k_risk
    key = key * (int(v_pct.max(initial=0)) + 1) + v_pct
    _, first, inv = np.unique(key, return_index=True, return_inverse=True)
    reasons = np.array([
        f"{c} (segment {s}, churn risk {r}, value percentile {v})" for c, s, r, v in zip(
            conds[idx[first]].tolist(), names[seg_code[first]],
            [k / 100 if k <= 100 else "unknown" for k in k_risk[first].tolist()],
            v_pct[first].tolist(), strict=True)
    ], dtype=object)
    # string columns: the few distinct strings are converted once and taken per customer (the
    # same str columns as converting one Python object per customer)
    ids = customers["customer_id"]
    return pd.DataFrame({
        "customer_id": ids.array if isinstance(ids.dtype, pd.StringDtype) else ids.to_numpy(),
        "action": _strings(actions).take(np.where(idx >= 0, idx, len(actions) - 1)),
        "rule": np.where(idx >= 0, idx, -1),
        "reason": _strings(reasons).take(inv.ravel()),
    })


def _strings(a: np.ndarray):
    """The column a DataFrame makes of object array ``a`` (str dtype), as an array to take from."""
    return pd.Series(a).array
