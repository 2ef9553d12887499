"""Diagnosis: the likely kind of shock behind an episode, from funnel arithmetic and slice patterns.

revenue = sessions x conversion x AOV. Which factor moved, which way, in which slice (the top
driver's dimension), for how long, and whether the move outlasts the episode (a level that
stays) name the shock:

==================  ==================================================================
type                pattern
==================  ==================================================================
site_outage         sessions fall store-wide, conversion holds, the level comes back
channel_outage      sessions fall, confined to one channel (or channel x country)
level_shift         sessions (or conversion) move and stay moved after the episode
bot_traffic         sessions rise, conversion falls, orders flat
tracking_fault      sessions fall but orders do not (a tag or feed lost visits)
payment_failure     conversion falls with sessions and basket flat, short
churn_wave          orders fall through returning customers (new ones unaffected)
stockout            orders fall more than the basket, or conversion in a category
pricing_error       basket value falls more than the orders
flash_sale          sessions and conversion rise, orders jump, basket value falls
fraud_orders        basket value (and revenue) jump, sessions flat
planned_event       the episode overlaps a planned marketing-calendar day
==================  ==================================================================

The simulator's event types use the same names, so the scorecard compares them directly
(``planned_event`` and ``tracking_fault`` are never injected as unexpected events).
Pure: reads the slice panel (observable KPIs), never ``truth/``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import drivers as dr
from .common import _f, _pct, _slice_label, _slice_sums
from .models import Diagnosis, DriverSet, Evidence

SHOCK_LABELS = {
    "site_outage": "site outage",
    "channel_outage": "channel outage",
    "level_shift": "level shift",
    "bot_traffic": "bot or invalid traffic",
    "tracking_fault": "data or tracking fault",
    "payment_failure": "payment or checkout failure",
    "churn_wave": "customer churn",
    "stockout": "stockout",
    "pricing_error": "pricing error",
    "flash_sale": "flash sale or promotion",
    "fraud_orders": "fraud orders",
    "planned_event": "planned event",
    "undetermined": "undetermined",
}
EPS = 3.0            # a KPI moved when its change exceeds this many %
PERSIST = 0.5        # "stays moved": the 4 weeks after the episode keep this share of its change
PERSIST_Z = 3.0      # … and that step is this unusual for the series
POST_GAP_DAYS = 7    # days skipped after the episode before judging persistence (ramps settle)
POST_DAYS = 28
TREND_WEEKS = 4    # the span of a lasting episode's reported pre-onset trend ("four weeks")
CHURN_SHARE = 0.5  # a channel's conversion drop the store shares this much of is store-wide
WHOLE_STORE = 0.99  # a top slice holding this share of the expected is the store, not a slice


@dataclass
class Features:
    """Overall changes (%) over the measured span and slice / time patterns of one episode."""

    s: float            # sessions
    c: float            # conversion rate
    b: float            # AOV
    o: float            # orders
    r: float            # revenue
    ret: float | None   # returning customers
    new: float | None   # new customers
    dim: str | None     # the top driver's dimension when the change is concentrated
    value: str | None
    days: int           # measured days
    persist: float | None  # share of the change still there after the episode (None: unknown)
    persist_z: float | None  # that step in robust sigmas of the series' own 4-week steps
    persist_kpi: str | None = None  # the KPI whose step that is
    c_all: float | None = None  # the store's conversion change (``c`` may be a slice's)


def _z(v: float | None) -> float:
    return 0.0 if v is None else float(v)


def persistence(panel: dr.SlicePanel, kpi: str, ts: pd.Timestamp, te: pd.Timestamp,
                change_pct: float | None, where: tuple[str, str] = ("overall", "all")
                ) -> tuple[float | None, float | None]:
    """How much of the episode's change of ``kpi`` (overall, or in the slice ``where``) stayed:
    (share, z).

    share: the change from the 4 weeks before ``ts`` to the 4 weeks starting a week after ``te``
    (whole weeks, so weekdays cancel), as a share of the episode's change. z: that step against
    the steps between any two 4-week windows as far apart in this series (robust sigma), so
    trend and seasonality of the store set the bar. (None, None) when not measurable; share
    None when the episode's own change is too small to divide by (a centered baseline hides a
    change that stayed) while z is still given."""
    if not len(panel.dates):
        return None, None
    comps = dr.components(kpi)
    cols = [panel.column(c, *where) if c in panel.values else None for c in comps]
    if any(c is None for c in cols):
        return None, None
    n = len(panel.dates)
    roll = []
    for c, col in zip(comps, cols, strict=True):
        x = np.nan_to_num(panel._arr[c][:, col], nan=0.0)
        cs = np.concatenate([[0.0], np.cumsum(x)])
        roll.append(cs[POST_DAYS:] - cs[:-POST_DAYS])  # roll[t] = sum of days t .. t+27
        if panel.gaps:  # a --kpis file's missing days are gaps: the observed days' mean
            seen = np.concatenate([[0], np.cumsum(~np.isnan(panel._arr[c][:, col]))])
            with np.errstate(all="ignore"):
                roll[-1] = roll[-1] / (seen[POST_DAYS:] - seen[:-POST_DAYS])
    with np.errstate(all="ignore"):
        r = roll[0] / roll[1] if len(roll) == 2 else roll[0]
        pre = int((ts - panel.dates[0]).days) - POST_DAYS
        gap = int((te - ts).days) + 1 + POST_DAYS + POST_GAP_DAYS  # pre start -> post start
        if pre < 0 or pre + gap >= len(r) or n < 2 * POST_DAYS + gap:
            return None, None
        steps = np.log(r[gap:] / r[:-gap])
        steps = steps[np.isfinite(steps)]
        step = float(np.log(r[pre + gap] / r[pre]))
    if not math.isfinite(step) or len(steps) < 10:
        return None, None
    sigma = 1.4826 * float(np.median(np.abs(steps - np.median(steps)))) or 1e-9
    small = change_pct is None or abs(change_pct) < EPS
    return (None if small else _f(math.expm1(step) * 100.0 / change_pct)), _f(step / sigma)


def trailing_trend(panel: dr.SlicePanel, kpi: str, ts: pd.Timestamp, weeks: int) -> float | None:
    """How much ``kpi`` (overall) moved on its own before ``ts``, % over four weeks: the week
    starting at ``ts`` by its same-weekday median over the ``weeks`` weeks before it, against the
    same four weeks earlier. A trailing baseline carries this trend into a lasting change's size
    (a season falling 8 % a month reads as a larger drop); the episode reports it beside the
    change instead of extrapolating it (an extrapolated trend, damped or not, was measured and
    not better: docs/history/insights.md, 2026-12-03). None when the history is too short."""
    comps = dr.components(kpi)
    if not all(c in panel.values for c in comps):
        return None
    week, back = pd.Timedelta(days=6), pd.Timedelta(days=7 * TREND_WEEKS)
    now, before = (dr.kpi_value(kpi, _slice_sums(panel, comps, "overall", "all", t, t + week,
                                                 "trailing", weeks))
                   for t in (ts, ts - back))
    return _pct(_f(now), _f(before))


def lasting(persist: tuple[float | None, float | None], days: int | None = None) -> bool:
    """The change stayed: the step from before to after the episode is unusual for the series,
    and the episode's change did not mostly come back (share below ``PERSIST`` but of the same
    sign). A step against the measured change means the centered baseline already holds the
    new level, so that counts as staying too — for a measured span of 3 days or more (``days``;
    None: any): a one- or two-day spike on a store that was moving anyway is no level that stayed
    (TRAIN s1-s20: 6 of 8 such episodes were mistyped; docs/history/insights.md, 2026-12-03)."""
    share, z = persist
    return (
        z is not None and abs(z) >= PERSIST_Z
        and (share is None or share >= PERSIST or (share < 0 and (days is None or days >= 3)))
    )


def features(changes: dict[str, float | None], drivers: DriverSet, days: int,
             persist: float | None, persist_z: float | None) -> Features:
    top = drivers.top
    return Features(
        s=_z(changes.get("sessions")),
        c=_z(changes.get("conversion_rate")),
        b=_z(changes.get("aov")),
        o=_z(changes.get("orders")),
        r=_z(changes.get("revenue")),
        ret=changes.get("returning_customers"),
        new=changes.get("new_customers"),
        dim=top.dimension if top is not None else None,
        value=top.value if top is not None else None,
        days=days,
        persist=persist,
        persist_z=persist_z,
    )


def classify(f: Features, planned: bool) -> tuple[str, float]:
    """(shock type, confidence 0..1) from the features; rules in order of specificity."""
    if planned:
        return "planned_event", 0.8
    s, c, b, o = f.s, f.c, f.b, f.o
    # it stayed: most of the change is still there after the episode, and visibly so (noise in
    # the weeks after makes the share of a small change meaningless)
    stayed = lasting((f.persist, f.persist_z), f.days)
    channel = f.dim in ("channel", dr.PAIR_DIMENSION)
    category = f.dim == "category"
    # returning customers hit harder than new ones; unless the drop stayed, at least twice as
    # hard (a checkout failure turns away both alike, a churn wave only those who came back)
    churny = f.ret is not None and f.new is not None and f.ret < -EPS and f.ret - f.new <= -EPS \
        and (stayed or f.ret <= 2 * min(f.new, 0.0))
    big = max(abs(s), abs(c), abs(b))
    if big < EPS and abs(o) < EPS and abs(f.r) < EPS:
        return "undetermined", 0.2
    # traffic up, orders flat: visits that never buy (in log terms, so a doubling of visits
    # with orders level, conversion -50 %, reads as the whole rise not buying)
    if _bot(s, c, o) and not category and abs(b) < abs(s):  # bots add visits, not baskets
        return "bot_traffic", 0.85
    # traffic down, orders not: visits lost by a tag or feed, not by the shop
    if s <= -3 * EPS and abs(o) <= EPS / 2 and c >= 0.8 * abs(s):
        return "tracking_fault", 0.6
    # cheaper baskets confined to a category (only prices and stock act on categories): a price
    # acts on the basket, availability on the orders — wrong prices when the basket fell more
    # than the orders, a stockout when the orders fell more
    if category and b <= -2 * EPS:
        return ("pricing_error", 0.75) if o >= b else ("stockout", 0.7)
    # bigger baskets, visits level: bulk buying with stolen cards
    # (fraud adds orders: a basket jump with orders falling is a slice's noise, not fraud; and
    # it adds revenue: dearer baskets on a day that lost revenue are the few orders left)
    fraud_ok = f.r > -EPS
    if b >= 2 * EPS and b >= abs(s) and b >= abs(c) and o >= -EPS and fraud_ok:
        return "fraud_orders", 0.8 if o >= 0 else 0.6
    # more visitors and more of them buying, cheaper baskets: a promotion — one that ends (a rise
    # that stayed is a new level even with cheaper baskets: TRAIN s16 E01, s20 E04)
    if s >= EPS and c >= EPS / 2 and o >= EPS and not stayed:
        return "flash_sale", 0.8 if b < 0 else 0.65
    if abs(s) >= max(EPS, 0.6 * big):  # traffic-led
        # an outage comes back; a traffic level that stays is a shift
        if stayed and f.persist_kpi in (None, "sessions", "orders"):
            return "level_shift", 0.7
        if s < 0 and channel:
            return "channel_outage", 0.8
        if s < 0 and f.persist_z is None and f.days >= 5:
            return "level_shift", 0.45  # too near the data's end to see it stay; outages are short
        if s < 0:
            return "site_outage", 0.75 if f.days <= 3 else 0.55
        # more visits: a promotion when they bought as before or better, else visits that do
        # not buy (more orders than bots explain can be a slice's noise; fewer buyers cannot)
        return ("bot_traffic", 0.5) if c <= -EPS else ("flash_sale", 0.5)
    # basket-led; a basket rise on falling revenue is read by the conversion and orders below
    # (TRAIN s1-s20 and s740-s779: 5 of 5 such matched episodes were stockouts, churn or a
    # checkout failure, titled "revenue down -55.7%: fraud orders")
    if abs(b) >= abs(c) and abs(b) >= EPS and (b < 0 or fraud_ok):
        if b > 0:
            return "fraud_orders", 0.8 if o >= 0 else 0.6
        # as for a category: the basket fell more than the orders -> prices, else stock
        if o < b:
            return "stockout", 0.75 if category else 0.55
        return "pricing_error", 0.8 if category else 0.6
    if c <= -EPS:  # conversion-led, down
        if category:
            return "stockout", 0.7
        # customers churn store-wide or by country; a channel named by a drop the whole store
        # shares (its conversion fell >= CHURN_SHARE as much) is not a one-channel change
        shared = f.c_all is not None and f.c_all <= CHURN_SHARE * c
        if churny and (not channel or shared):
            return "churn_wave", 0.7 if stayed else 0.55
        # a conversion drop that stayed, new customers not hit harder than returning ones: more
        # often lost customers than a new conversion level (not in one channel: churn is not)
        newer = f.new is not None and f.ret is not None and f.new <= -EPS and f.new <= f.ret
        if stayed and not channel and not newer:
            return "churn_wave", 0.5
        if stayed:  # a conversion level that stayed, new and returning customers alike
            return "level_shift", 0.55
        return "payment_failure", 0.75 if f.days <= 4 else 0.55
    if c >= EPS:  # conversion-led, up
        if stayed:
            return "level_shift", 0.55
        return "flash_sale", 0.6
    if o <= -EPS:
        return ("churn_wave", 0.55) if churny and not channel else ("payment_failure", 0.4)
    return "undetermined", 0.3


def _bot(s: float, c: float, o: float) -> bool:
    """Visits rose, at least half of the rise did not buy (on log changes), orders about level.
    Logs because conversion falls as 1 / (1 + s) when orders stay level: in percent, "conversion
    fell at least half the sessions rise" asks -100 % for a doubling of visits, which no surge
    of bots (or anything) reaches."""
    if s < EPS:
        return False
    ls, lc = math.log1p(s / 100), math.log1p(max(c, -99.0) / 100)
    return lc <= -0.5 * ls and abs(o) <= max(EPS, 0.4 * s)


def _dir(v: float) -> str:
    return "up" if v > 0 else "down"


def read_features(changes: dict[str, float | None], drivers: DriverSet, days: int,
                  persist: tuple[float | None, float | None],
                  inside: dict[str, float | None] | None = None) -> Features:
    """The features ``classify`` reads: the store's changes, with the funnel inside the top
    driver's slice (``inside``: its sessions, conversion, AOV, orders, revenue) in their place
    where measured there. The episode's narrative reads the same ones to say why the diagnosis
    fits (``narrative._reason``), so it states only what these show."""
    if drivers.top is not None and drivers.top.share_of_expected >= WHOLE_STORE:
        # a slice that holds the whole store (a transactions file's one category or channel)
        # does not stand out against others: no evidence of concentration, read it overall
        drivers, inside = drivers.model_copy(update={"top": None}), None
    f = features(changes, drivers, days, *persist)
    if changes.get("conversion_rate") is None and changes.get("orders") is not None:
        # no visits measured (a transactions file): its orders against visits taken as level, as
        # for a slice without sessions below (an unknown conversion read as 0 % let any basket
        # move lead a fall in orders: a churn wave was a stockout)
        f.c = f.o
    f.c_all = f.c
    if inside:
        for attr, k in (
            ("s", "sessions"),
            ("c", "conversion_rate"),
            ("b", "aov"),
            ("o", "orders"),
            ("r", "revenue"),
        ):
            if inside.get(k) is not None:
                setattr(f, attr, float(inside[k]))
        if inside.get("sessions") is None and inside.get("orders") is not None:
            # a slice without sessions (a category): its orders against the store's visits
            f.c = ((1 + f.o / 100) / (1 + _z(changes.get("sessions")) / 100) - 1) * 100
    return f


def diagnose(changes: dict[str, float | None], drivers: DriverSet, days: int, planned: bool,
             persist: tuple[float | None, float | None], persist_kpi: str | None, drivers_kpi: str,
             inside: dict[str, float | None] | None = None) -> Diagnosis:
    """The episode's diagnosis: type, confidence and the evidence (each KPI move, its slice).

    ``inside``: the funnel inside the top driver's slice; when given, its sessions, conversion,
    AOV and orders replace the overall ones (those the slice lacks, e.g. sessions of a category,
    stay overall)."""
    top = drivers.top
    if top is not None and top.share_of_expected >= WHOLE_STORE:
        inside = None  # read_features reads such a slice overall
    f = read_features(changes, drivers, days, persist, inside)
    f.persist_kpi = persist_kpi
    where = _slice_label(top.dimension, top.value) if top is not None else "overall"
    kind, conf = classify(f, planned)
    # the funnel (and, for churn, who stopped ordering); the rest is in kpi_changes
    kpis = ("sessions", "conversion_rate", "aov", "orders") + (
        ("returning_customers", "new_customers") if kind == "churn_wave" else ())
    ev = [Evidence(kpi=k, slice="overall", change_pct=v, direction=_dir(v))
          for k in kpis if (v := changes.get(k)) is not None and abs(v) >= EPS]
    if inside:
        ev += [Evidence(kpi=k, slice=where, change_pct=v, direction=_dir(v))
               for k in ("sessions", "conversion_rate", "aov", "orders")
               if (v := inside.get(k)) is not None and abs(v) >= EPS]
    elif top is not None and top.relative_change_pct is not None:
        ev.append(
            Evidence(
                kpi=drivers_kpi,
                slice=where,
                change_pct=top.relative_change_pct,
                direction=_dir(top.relative_change_pct),
            )
        )
    return Diagnosis(type=kind, label=SHOCK_LABELS[kind], confidence=round(conf, 2), evidence=ev,
                     scope=drivers.scope, persistence=f.persist, persistence_z=f.persist_z,
                     persistence_kpi=persist_kpi if f.persist_z is not None else None)


# the KPI each diagnosed shock acts on first (an episode is measured there)
_TYPE_PRIMARY = {
    "site_outage": "sessions",
    "channel_outage": "sessions",
    "bot_traffic": "sessions",
    "tracking_fault": "sessions",
    "payment_failure": "conversion_rate",
    "churn_wave": "orders",
    "stockout": "revenue",
    "pricing_error": "aov",
    "flash_sale": "orders",
    "fraud_orders": "revenue",
}


def primary_for(kind: str, changes: dict[str, float | None], fallback: str) -> str:
    """Where a diagnosed shock starts (the KPI it acts on); the measured guess otherwise."""
    k = _TYPE_PRIMARY.get(kind)
    if kind == "level_shift":
        s, c = abs(changes.get("sessions") or 0), abs(changes.get("conversion_rate") or 0)
        k = "sessions" if s >= c else "conversion_rate"
    return k if k is not None and changes.get(k) is not None else fallback
