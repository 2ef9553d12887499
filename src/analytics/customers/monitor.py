"""At-Risk monitoring: daily segment snapshots, abnormal-growth alerts with severity tiers,
cooldown per (segment, severity), de-duplication of an ongoing incident, optional escalation.

Two modes over the same logic:

* ``replay(orders, …)`` — every day of the data's period, as if the monitor had run each morning;
* ``daily(orders, as_of, …)`` — one day (``run_analysis.py --as-of DATE``).

The watched quantity is the segment's *share* of a configured population (``population``: by
default repeat buyers not yet gone for good, a denominator that does not drift with acquisition;
every customer seen so far with ``min_orders: 1``). Its relative growth over ``window_days`` is
judged against the share's day-to-day log changes over the trailing ``baseline_days`` (current day
excluded: causal): their median is the normal drift, their MAD scaled by sqrt(window) the normal
spread, a robust z. A day is flagged when the growth beyond the normal drift reaches a tier's
``min_growth`` *and* z >= ``min_z``; severity is the highest tier reached. Flagged days
with gaps of at most ``incident_gap_days`` form one incident, which alerts once, again only if
its severity rises (or, with ``escalate_after_days``, once more one tier up if it lasts); a
(segment, severity) alerted within ``cooldown_days`` is not alerted again. All state lives in
SQLite (``store``), so a restart or a re-run of a replay does not resend.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..alerts import Dispatcher
from .config import MonitorConfig, PopulationConfig, RfmConfig
from .rfm import (
    activity_clock,
    as_day,
    int_reference,
    int_scores_against,
    overdue_ratio,
    scores_against,
    valid_orders,
)
from .segments import SegmentLookup
from .store import MonitorStore

MIN_SCALE = (
    0.005  # floor of the growth spread (0.5 % relative growth): a flat history cannot give z = inf
)

SUGGESTION = {
    "At Risk": "launch the win-back offer for this segment and review recent experience issues",
    "Lapsing": "repeat buyers are missing their usual reorder: check recent experience issues "
    "(delivery, prices, stock) and send a reminder before they reach At Risk",
}


def daily_segment_counts(
    orders: pd.DataFrame,
    dates: pd.DatetimeIndex,
    rfm_cfg: RfmConfig,
    window_days: int = 14,
    population: PopulationConfig | None = None,
) -> pd.DataFrame:
    """Customers per segment on each of ``dates`` (consecutive days), from RFM as of that day.

    Each day is scored like ``compute_rfm`` on that day (quintiles of that day's population), so
    a snapshot equals the segments table the analysis would have produced that morning. For the
    growth, the same day's breakpoints also score the customers as they were ``window_days``
    earlier (``base_customers`` / ``base_total``): comparing two days each ranked among itself
    would let whole tie groups (all 3-order customers, say) jump between F scores and would hide
    real movement behind the fixed 40 % that low R scores always hold.

    Incremental over the days (one pass over the orders), vectorized over customers within a
    day. Returns long rows (date, segment, customers, total, base_customers, base_total).
    """
    v = valid_orders(orders)
    dates = pd.DatetimeIndex(dates).normalize().sort_values()
    names = rfm_cfg.names
    cols = ["date", "segment", "customers", "total", "base_customers", "base_total"]
    if len(dates) == 0 or len(v) == 0:
        return pd.DataFrame(columns=cols)
    d0 = as_day(dates[0])
    v = v.iloc[: int(np.searchsorted(v["day"].to_numpy(), as_day(dates[-1]), side="right"))]
    codes = v["cust"].to_numpy()
    # renumber customers in order of first appearance: the customers seen by any day are then a
    # prefix of every per-customer array (slices, not gathers); counts do not depend on the order
    if len(codes):
        first_row = np.full(int(codes.max()) + 1, len(codes), dtype=np.int64)
        first_row[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
        present = np.flatnonzero(first_row < len(codes))
        rank = np.empty(len(first_row), dtype=np.int64)
        rank[present[np.argsort(first_row[present], kind="stable")]] = np.arange(len(present))
        codes = rank[codes]
    day = v["day"].to_numpy() - d0        # negative: history before the range
    rev = v["net_revenue"].to_numpy()
    n_cust = int(codes.max()) + 1 if len(codes) else 0
    first = np.full(n_cust, np.iinfo(np.int32).max, dtype=np.int64)
    last = np.full(n_cust, np.iinfo(np.int32).min, dtype=np.int64)
    freq = np.zeros(n_cust, dtype=np.int64)
    money = np.zeros(n_cust, dtype=float)
    use_m = rfm_cfg.uses_monetary
    # history keeps every repeat buyer: the store's pooled gap (overdue_ratio) is taken over them
    min_orders = min(population.min_orders, 2) if population is not None else 1
    oc = rfm_cfg.overdue
    k_prior = oc.gap_prior_strength
    clock, off = None, 0
    if oc.clock == "activity":
        c_min, clock = activity_clock(v, as_day(dates[-1]))
        off = d0 - c_min   # day t (relative to dates[0]) -> clock[t + off]
    lookup = SegmentLookup(rfm_cfg)
    targets = (dates - dates[0]).days.to_numpy()
    bounds = np.searchsorted(day, targets, side="right")     # orders up to and including each day
    history: deque[tuple[np.ndarray, ...]] = deque(maxlen=window_days + 1)
    k = len(names)
    now_rows, base_rows = [], []
    lo = n_seen = 0
    for t, hi in zip(targets, bounds, strict=True):
        c, dd = codes[lo:hi], day[lo:hi]
        if len(c):
            new = first[c] == np.iinfo(np.int32).max
            first[c[new][::-1]] = dd[new][
                ::-1
            ]  # rows are sorted by day: the first row is the earliest
            last[c] = dd                          # ... and the last row the latest
            np.add.at(freq, c, 1)
            if use_m:
                np.add.at(money, c, rev[lo:hi])
            n_seen = max(n_seen, int(c.max()) + 1)
        lo = hi
        seen = slice(0, n_seen)
        # the day's population with its recency, frequency, money and overdue ratio: what the
        # day's count needs and, window_days later, the base count too (only the breakpoints
        # differ), so it is computed once and kept
        cand = np.flatnonzero(freq[seen] >= min_orders)
        last_, first_, f_ = last[cand], first[cand], freq[cand]
        rec_ = t - last_
        if clock is None:
            overdue = overdue_ratio(rec_.astype(float), (last_ - first_).astype(float), f_, k_prior)
        else:  # days relative to dates[0] -> clock index
            c_t, c_last = clock[t + off], clock[last_ + off]
            overdue = overdue_ratio(c_t - c_last, c_last - clock[first_ + off], f_, k_prior)
        m_ = money[cand] if use_m else None
        if population is not None:  # segment only the population (counts are of it alone)
            keep = population.mask(f_, rec_, overdue)
            rec_, f_, overdue = rec_[keep], f_[keep], overdue[keep]
            m_ = m_[keep] if use_m else None
        history.append((rec_, f_, m_, overdue))
        if n_seen == 0:
            now_rows.append(np.zeros(k))
            base_rows.append(np.full(k, np.nan))
            continue
        # the day's score breakpoints come from every customer seen so far
        ref_r, ref_f = int_reference(t - last[seen]), int_reference(freq[seen])
        ref_m = np.sort(money[seen].round(2)) if use_m else None

        def count(rec_: np.ndarray, f_: np.ndarray, m_: np.ndarray | None, overdue: np.ndarray,
                  ref_r=ref_r, ref_f=ref_f, ref_m=ref_m) -> np.ndarray:
            r_s = int_scores_against(rec_, ref_r, False)
            f_s = int_scores_against(f_, ref_f, True)
            m_s = scores_against(m_.round(2), ref_m, True) if ref_m is not None else f_s
            return lookup.counts(r_s, f_s, m_s, overdue).astype(float)

        now_rows.append(count(*history[-1]))
        if len(history) == window_days + 1:
            base_rows.append(count(*history[0]))
        else:
            base_rows.append(np.full(k, np.nan))
    now, base = np.vstack(now_rows), np.vstack(base_rows)
    out = pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), k),
        "segment": np.tile(np.array(names, dtype=object), len(dates)),
        "customers": now.ravel().astype(np.int64),
        "total": np.repeat(now.sum(axis=1), k).astype(np.int64),
        "base_customers": base.ravel(),
        "base_total": np.repeat(base.sum(axis=1), k),
    })
    return out


def growth_series(snaps: pd.DataFrame, segment: str, cfg: MonitorConfig) -> pd.DataFrame:
    """Per day: customers, total, share, growth over the window, robust z and severity (or None)."""
    s = snaps[snaps["segment"] == segment].set_index("date").sort_index()
    full = pd.date_range(s.index.min(), s.index.max(), freq="D") if len(s) else pd.DatetimeIndex([])
    s = s.reindex(full)
    share = s["customers"] / s["total"].where(s["total"] > 0)
    past = s["base_customers"] / s["base_total"].where(s["base_total"] > 0)
    growth = share / past.where(past > 0) - 1
    # the normal movement of the share comes from its day-to-day log changes over the baseline
    # (current day excluded: causal): median = drift, MAD = noise, scaled to the window as a random
    # walk (sqrt of the days). Robust to the few days a sale or an outage moves the share at once,
    # which would otherwise sit in the baseline of every window that spans them.
    log_share = np.log(share.where(share > 0))
    step = (log_share - log_share.shift(1)).shift(1)
    hist = step.rolling(cfg.baseline_days, min_periods=max(7, cfg.baseline_days // 2))
    drift = hist.median()
    mad = (
        (step - drift)
        .abs()
        .rolling(cfg.baseline_days, min_periods=max(7, cfg.baseline_days // 2))
        .median()
    )
    w = cfg.window_days
    spread = (1.4826 * mad * np.sqrt(w)).clip(lower=MIN_SCALE)
    log_excess = np.log1p(growth.where(growth > -1)) - drift * w
    med = np.expm1(drift * w)
    excess = np.expm1(log_excess)
    z = log_excess / spread
    sev = pd.Series(None, index=full, dtype=object)
    ok = (z >= cfg.min_z) & (s["customers"] >= cfg.min_customers)
    for tier in cfg.tiers:  # sorted by min_growth: the highest tier reached wins
        sev[ok & (excess >= tier.min_growth)] = tier.severity
    return pd.DataFrame(
        {
            "date": full,
            "segment": segment,
            "customers": s["customers"].to_numpy(),
            "total": s["total"].to_numpy(),
            "share": share.to_numpy(),
            "growth": growth.to_numpy(),
            "normal_growth": med.to_numpy(),
            "excess_growth": excess.to_numpy(),
            "z": z.to_numpy(),
            "severity": sev.to_numpy(),
        }
    )


@dataclass
class MonitorResult:
    series: pd.DataFrame                                        # growth_series rows, all segments
    decisions: list[dict[str, Any]] = field(default_factory=list)  # one per flagged day
    alerts: list[dict[str, Any]] = field(
        default_factory=list
    )  # alerts issued (new or already sent)


class Monitor:
    """Judges flagged days against the state in ``store`` and sends alerts through
    ``dispatcher``."""

    def __init__(self, cfg: MonitorConfig, store: MonitorStore, dispatcher: Dispatcher | None,
                 namespace: str):
        self.cfg = cfg
        self.store = store
        self.dispatcher = dispatcher
        self.namespace = namespace
        self.rank = {t.severity: i for i, t in enumerate(cfg.tiers)}
        self.by_rank = [t.severity for t in cfg.tiers]

    def judge(self, row: dict[str, Any]) -> dict[str, Any]:
        """Decide what a flagged day does: "sent", "already_sent", "cooldown" or "ongoing"."""
        ns, seg, sev = self.namespace, row["segment"], row["severity"]
        d = pd.Timestamp(row["date"]).date()
        day = d.isoformat()
        prev = self.store.last_flag_before(ns, seg, day)
        gap_ok = (
            prev is not None
            and (d - pd.Timestamp(prev[0]).date()).days <= self.cfg.incident_gap_days + 1
        )
        incident_id = prev[1] if gap_ok else f"{seg}:{day}"
        self.store.put_flag(ns, day, seg, sev, float(row["growth"]), float(row["z"]), incident_id)
        incident_start = pd.Timestamp(incident_id.rsplit(":", 1)[1]).date()
        sent = self.store.incident_alerts(ns, incident_id, day)
        sent_rank = max((self.rank.get(s, -1) for s, _ in sent), default=-1)
        escalated_before = any(e for _, e in sent)
        target, escalated, why = None, False, ""
        if self.rank[sev] > sent_rank:
            target, why = sev, ("new incident" if sent_rank < 0 else "severity rose")
        elif (self.cfg.escalate_after_days is not None and not escalated_before
              and (d - incident_start).days >= self.cfg.escalate_after_days
              and sent_rank < len(self.by_rank) - 1):
            target, escalated = self.by_rank[sent_rank + 1], True
            why = f"escalated: incident ongoing {(d - incident_start).days} days"
        decision = {"date": day, "segment": seg, "severity": sev, "incident_id": incident_id,
                    "growth": round(float(row["growth"]), 4), "z": round(float(row["z"]), 2)}
        if target is None:
            return decision | {"decision": "ongoing"}
        alert_id = f"{ns}:{seg}:{target}:{day}"
        if self.store.has_alert(alert_id):
            return decision | {"decision": "already_sent", "alert_id": alert_id}
        last = self.store.last_alert_date(ns, seg, target, day)
        if last is not None and (d - pd.Timestamp(last).date()).days < self.cfg.cooldown_days:
            return decision | {"decision": "cooldown", "alert_id": alert_id, "last_sent": last}
        alert = self._alert(
            alert_id, row, target, incident_id, incident_start.isoformat(), escalated, why
        )
        if (
            self.dispatcher is not None
        ):  # outbox rows first: a crash after this point re-sends, never loses
            self.dispatcher.enqueue(alert)
        self.store.put_alert(alert)
        if self.dispatcher is not None:
            alert_sinks = self.dispatcher.send(alert)
            decision["delivered"] = alert_sinks
        return decision | {"decision": "sent", "alert_id": alert_id}

    def _alert(self, alert_id: str, row: dict[str, Any], severity: str, incident_id: str,
               since: str, escalated: bool, why: str) -> dict[str, Any]:
        seg, w = row["segment"], self.cfg.window_days
        share, growth = float(row["share"]), float(row["growth"])
        return {
            "alert_id": alert_id,
            "namespace": self.namespace,
            "date": pd.Timestamp(row["date"]).date().isoformat(),
            "segment": seg,
            "severity": severity,
            "incident_id": incident_id,
            "escalated": escalated,
            "title": f"'{seg}' segment grew {growth:+.0%} in {w} days",
            "text": (
                f"'{seg}' now holds {share:.1%} of the watched customers ({int(row['customers'])} "
                "of "
                f"{int(row['total'])}: {self.cfg.population.describe()}), {growth:+.1%} over {w} "
                "days where "
                f"{float(row['normal_growth']):+.1%} is normal (z = {float(row['z']):.1f}); {why}."
            ),
            "fields": {
                "Segment": seg,
                "Customers": int(row["customers"]),
                "Share": f"{share:.1%}",
                f"Growth ({w} d)": f"{growth:+.1%}",
                "Normal growth": f"{float(row['normal_growth']):+.1%}",
                "z": f"{float(row['z']):.1f}",
                "Incident since": since,
                "Suggested action": SUGGESTION.get(seg, "review the segment's customers"),
            },
            "growth": round(growth, 4),
            "share": round(share, 4),
            "z": round(float(row["z"]), 2),
            "customers": int(row["customers"]),
            "total": int(row["total"]),
            "reason": why,
        }

    def judge_series(
        self, series: pd.DataFrame, days: pd.DatetimeIndex | None = None
    ) -> MonitorResult:
        """Judge every flagged day (of ``days``, if given) in date order."""
        flagged = series[series["severity"].notna()]
        if days is not None:
            flagged = flagged[flagged["date"].isin(days)]
        res = MonitorResult(series=series)
        for row in flagged.sort_values(["date", "segment"]).to_dict("records"):
            d = self.judge(row)
            res.decisions.append(d)
        ids = {d["alert_id"] for d in res.decisions if d["decision"] in ("sent", "already_sent")}
        res.alerts = [a for a in self.store.alerts(self.namespace) if a["alert_id"] in ids]
        return res


def _series(store: MonitorStore, namespace: str, cfg: MonitorConfig) -> pd.DataFrame:
    snaps = store.snapshots(namespace)
    return pd.concat([growth_series(snaps, s, cfg) for s in cfg.segments], ignore_index=True)


def replay(orders: pd.DataFrame, cfg: MonitorConfig, rfm_cfg: RfmConfig, store: MonitorStore,
           dispatcher: Dispatcher | None, namespace: str,
           start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> MonitorResult:
    """Run the monitor on every day from ``start`` (default: first order day) to ``end`` (default:
    last order day), storing the snapshots and alert state in ``store``."""
    dates = pd.to_datetime(orders["order_date"])
    start = pd.Timestamp(start or dates.min()).normalize()
    end = pd.Timestamp(end or dates.max()).normalize()
    days = pd.date_range(start, end, freq="D")
    store.put_snapshots(
        namespace, daily_segment_counts(orders, days, rfm_cfg, cfg.window_days, cfg.population)
    )
    if dispatcher is not None:
        dispatcher.retry_pending()
    return Monitor(cfg, store, dispatcher, namespace).judge_series(
        _series(store, namespace, cfg), days
    )


def daily(orders: pd.DataFrame, as_of: pd.Timestamp | str, cfg: MonitorConfig, rfm_cfg: RfmConfig,
          store: MonitorStore, dispatcher: Dispatcher | None, namespace: str) -> MonitorResult:
    """Run the monitor for one day: refresh the snapshots it needs (the window and baseline before
    ``as_of``, from orders up to each day), then judge ``as_of`` only."""
    as_of = pd.Timestamp(as_of).normalize()
    # growth needs the window; z the baseline's steps and, for their MAD, the drift of each of
    # those steps (itself a baseline-long median): replay and daily mode then agree exactly
    need = 2 * cfg.baseline_days + cfg.window_days + 2
    days = pd.date_range(as_of - pd.Timedelta(days=need), as_of, freq="D")
    store.put_snapshots(
        namespace, daily_segment_counts(orders, days, rfm_cfg, cfg.window_days, cfg.population)
    )
    if dispatcher is not None:
        dispatcher.retry_pending()
    return Monitor(cfg, store, dispatcher, namespace).judge_series(
        _series(store, namespace, cfg), pd.DatetimeIndex([as_of]))
