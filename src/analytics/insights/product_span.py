"""The days a product's orders incident really departed from the watcher's expectation.

The product watcher (``detectors.product_watch``) tests each product's orders over 1 day and over
its multi-day ``windows``: a short stockout keeps the 3- and 7-day sums low for days after the
product is back, so its incident runs on (a stockout that sold nothing 05-20..05-22 was flagged
05-20..05-26 and quoted at -37.4 %, insights audit, session 43), and a small product's stockout is
flagged late, once a 3- or 7-day sum is short. The store's slices are measured with
``drivers.peak_span`` on the panel, which has no product series; a product's orders are small
counts, where a day's robust deviation says little, so its days are found by a **scan statistic**
instead: the contiguous run of days, from up to ``drivers.LATE_FLAG_DAYS`` (7) before the
incident to its end, whose Poisson likelihood ratio of a changed rate, ``A ln(A/E) - (A - E)``
(A, E: the run's actual and expected orders), is the largest among the runs moving in the
incident's direction (ties: the longer, then the earlier). Its change is ``A / E - 1`` against the
watcher's own expected orders (the incident's ``magnitude_pct`` is the same ratio over all its
days). TRAIN worlds s1-s20 / p1-p20: the product stockouts matched by a product incident (13 / 15,
truth -100 %) were quoted at a median error of 0.53 / 0.55 over days overlapping the event's by a
mean Jaccard of 0.50 / 0.46; measured so, 0.00 and 1.00 / 0.98 (inside the incident only: 0.89 /
0.83; docs/history/insights.md, session 44).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.context import Incident
from analytics.drivers import LATE_FLAG_DAYS
from shocklab.catalogue import PRODUCT_DIMENSION

KPI = "orders"


def scan(actual: np.ndarray, expected: np.ndarray, sign: int) -> tuple[int, int, float] | None:
    """(first, last, change) of the run of days with the largest Poisson likelihood ratio of a
    change in direction ``sign`` (+1 / -1); None when no run moves that way."""
    ca, ce = np.r_[0.0, np.cumsum(actual)], np.r_[0.0, np.cumsum(expected)]
    i, j = np.triu_indices(len(actual))
    a, e = ca[j + 1] - ca[i], ce[j + 1] - ce[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        llr = np.where(a > 0, a * np.log(a / e), 0.0) - (a - e)
    ok = (e > 0) & (np.sign(a - e) == sign) & np.isfinite(llr)
    if not ok.any():
        return None
    k = np.flatnonzero(ok)
    best = k[np.lexsort((i[k], -(j[k] - i[k]), -np.round(llr[k], 9)))[0]]
    return int(i[best]), int(j[best]), float(a[best] / e[best] - 1.0)


def measured_days(detections: pd.DataFrame | None, incidents: list[Incident],
                  back: int = LATE_FLAG_DAYS
                  ) -> dict[str, tuple[pd.Timestamp, pd.Timestamp, float]]:
    """Per product orders incident of daily data (by id): its measured first and last day and
    its change in percent there (``scan`` over its days and up to ``back`` days before them: the
    watcher flags a small product's stockout late, once its 3- or 7-day sum is short; the
    watcher's actual and expected orders, expected averaged over the incident's detectors as the
    consensus does)."""
    mine = [i for i in incidents if i.dimension == PRODUCT_DIMENSION and i.kpi == KPI
            and i.start == pd.Timestamp(i.start).normalize()
            and i.end == pd.Timestamp(i.end).normalize()]
    if detections is None or not len(detections) or not mine:
        return {}
    det = detections
    rows = det[(det["dimension"] == PRODUCT_DIMENSION) & (det["kpi"] == KPI)]
    rows = rows.assign(date=pd.to_datetime(rows["date"]), segment=rows["segment"].astype(str))
    rows = rows[rows["segment"].isin({str(i.segment) for i in mine})]
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp, float]] = {}
    for inc in mine:
        d = rows[(rows["segment"] == str(inc.segment)) & rows["detector"].isin(inc.detectors)
                 & (rows["date"] >= inc.start - pd.Timedelta(days=back))
                 & (rows["date"] <= inc.end)]
        d = d.groupby("date")[["actual", "expected"]].mean().dropna()
        if len(d) < 2:
            continue
        got = scan(d["actual"].to_numpy(float), d["expected"].to_numpy(float),
                   1 if inc.direction == "up" else -1)
        if got is not None:
            out[inc.incident_id] = (d.index[got[0]], d.index[got[1]], 100.0 * got[2])
    return out
