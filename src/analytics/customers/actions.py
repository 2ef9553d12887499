"""Action engine: (segment, churn risk, value) -> action with a reason, by rules from config.

The first rule that matches wins; a customer no rule matches gets the default action. Vectorized:
one mask per rule, resolved by ``np.select``; reasons are built column-wise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import ActionRule, ActionsConfig


def _mask(rule: ActionRule, seg_code: np.ndarray, seg_names: pd.Index, risk: np.ndarray,
          value: np.ndarray) -> np.ndarray:
    m = (risk >= rule.min_churn_risk) & (risk <= rule.max_churn_risk)
    m &= (value >= rule.min_value_pct) & (value <= rule.max_value_pct)
    if rule.segments:
        m &= np.isin(seg_code, np.flatnonzero(seg_names.isin(rule.segments)))
    return m


def _conditions(rule: ActionRule) -> str:
    parts = []
    if rule.segments:
        parts.append("segment in " + "/".join(rule.segments))
    if rule.min_churn_risk > 0:
        parts.append(f"churn risk >= {rule.min_churn_risk:g}")
    if rule.max_churn_risk < 1:
        parts.append(f"churn risk <= {rule.max_churn_risk:g}")
    if rule.min_value_pct > 0:
        parts.append(f"value in top {1 - rule.min_value_pct:.0%}")
    if rule.max_value_pct < 1:
        parts.append(f"value below top {1 - rule.max_value_pct:.0%}")
    return ", ".join(parts) or "always"


def assign_actions(customers: pd.DataFrame, cfg: ActionsConfig) -> pd.DataFrame:
    """``customers`` needs customer_id, segment, churn_risk (0..1; NaN = unknown, treated as 0
    by the rules and written "churn risk unknown" in the reason) and value_pct (0..1 CLV
    percentile). Returns customer_id, action, rule, reason."""
    # segments as codes of their distinct names (NaN is a name of its own: "nan", as str() says)
    seg_code, seg_names = pd.factorize(customers["segment"], use_na_sentinel=False)
    seg_names = pd.Index(seg_names)
    risk = customers["churn_risk"].astype(float)
    unknown = risk.isna().to_numpy()  # no churn model (too little history, one class): said so
    risk = risk.fillna(0.0)
    value = customers["value_pct"].astype(float).fillna(0.0)
    masks = [_mask(r, seg_code, seg_names, risk.to_numpy(), value.to_numpy()) for r in cfg.rules]
    idx = (
        np.select(masks, np.arange(len(cfg.rules)), default=-1)
        if masks else np.full(len(seg_code), -1)
    )
    actions = np.array([r.action for r in cfg.rules] + [cfg.default_action], dtype=object)
    conds = np.array([_conditions(r) for r in cfg.rules] + ["no rule matched"], dtype=object)
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
