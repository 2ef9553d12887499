"""Text rendered from an incident's or an episode's own fields: narratives, headline, actions."""

from __future__ import annotations

from shocklab.catalogue import (
    MAIN_KPIS,
    PAIR_DIMENSION,
    PRODUCT_DIMENSION,
    is_generic,
)

from .common import _sig, _slice_label, one_decimal
from .models import (
    CalendarOverlap,
    Driver,
    DriverSet,
    Episode,
    IncidentChange,
    IncidentInsight,
    KpiChange,
)
from .planned import describe
from .reasons import _product_only, _products, _reason  # noqa: F401 (re-exported)

_PLURAL = {"channel": "channels", "country": "countries", "category": "categories"}


def _across(ds: DriverSet) -> str:
    """What a broad change is broad across: the dimensions the drivers compared — those with at
    least two segments (a transactions file's one channel and one category are not among them;
    the channel x country cells are the channels and countries again)."""
    dims = sorted((d for d in ds.breakdown if d != PAIR_DIMENSION),
                  key=lambda d: (list(_PLURAL).index(d) if d in _PLURAL else len(_PLURAL), d))
    words = [_PLURAL.get(d, f"{d} segments") for d in dims]
    if not words:
        return "its slices"
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _narrative(it: IncidentInsight) -> str:
    """``<kpi>[ in <slice>] <up|down> <±x.x>% vs expected <span>`` — every number, date and
    direction word a field of ``it`` (the direction word follows the sign of the change)."""
    mag = it.magnitude_pct if it.magnitude_pct is not None else it.baseline_magnitude_pct
    where = "" if it.dimension == "overall" else f" in {_slice_label(it.dimension, it.segment)}"
    span = f"on {it.start}" if it.days == 1 else f"from {it.start} to {it.end} ({it.days} days)"
    if it.start_time and it.end_time:  # sub-daily: the hours (a 3-hour outage was "on <day>")
        hours = f"at {it.start_time[11:]}" if it.start_time == it.end_time else \
            f"{it.start_time[11:]} to {it.end_time[11:]}"
        span = f"on {it.start}, {hours}" if it.days == 1 else \
            f"from {it.start_time.replace('T', ' ')} to {it.end_time.replace('T', ' ')}"
    move = f"{_updown(mag)} {_signed(mag)} vs expected" if mag is not None else "moved"
    text = f"{it.kpi}{where} {move} {span}"  # detectors, level and severity are fields beside it
    if it.measured_start and it.measured_end and it.measured_change_pct is not None:
        m = it.measured_change_pct
        days = (f"on {it.measured_start}, which" if it.measured_start == it.measured_end
                else f"in {it.measured_start} to {it.measured_end}, which")
        # a product's orders are measured against the watcher's expectation (product_span)
        against = ("expected" if it.dimension == PRODUCT_DIMENSION and it.kpi == "orders"
                   else "the same weekdays around them")
        text += f"; the change is {days} deviated {_updown(m)} {_signed(m)} vs {against}"
    return text + "."


def _product_action(kpi: str, direction: str, segment: str) -> str:
    """The next step for an incident on one product (product_watch: judged against its
    category, so the product departed from its siblings)."""
    where = _slice_label(PRODUCT_DIMENSION, segment)
    if kpi == "price":
        return (f"Check the list price of {where}: it moved {direction} against its own recent "
                "price while its category's did not (a pricing error or an unannounced "
                "repricing); fix the listing and review the orders taken.")
    if direction == "down":
        return (f"Check stock and the listing of {where}: its orders fell against its category's "
                "(a stockout, a delisting or a broken product page).")
    return f"Find why {where} gained against its category (a promotion, a sibling out of stock)."


def _next_step(inc, direction: str, sig: str, top: Driver | None,
               calendar: list[CalendarOverlap]) -> str:
    """The next step for one incident: a product's own (it is judged against its category, so a
    campaign or the store's drivers do not explain it), else from the funnel (``_action``)."""
    if inc.dimension == PRODUCT_DIMENSION:
        return _product_action(inc.kpi, direction, str(inc.segment))
    return _action(direction, sig, top, calendar)


def _action(direction: str, sig: str, top: Driver | None, calendar: list[CalendarOverlap]) -> str:
    """A recommended next step from direction, signature, top driver and planned-event overlap."""
    where = f" for {_slice_label(top.dimension, top.value)}" if top is not None else ""
    if calendar:
        names = ", ".join(sorted({c.name for c in calendar}))
        if direction == "up":
            return (f"Planned ({names}): compare the uplift with the campaign target; "
                    "no incident response needed.")
        return (f"Drop during planned {names}: check the campaign setup "
                "(offer, landing pages, tracking).")
    if direction == "down":
        return {
            "traffic-driven": f"Check acquisition{where}: campaign status and budget, tracking "
                              "tags, referral "
            "links and site availability.",
            "conversion-driven": f"Check the checkout and payment funnel{where}: payment-provider "
                                 "errors, site "
            "errors, stock-outs, shipping options.",
            "basket-driven": f"Check prices, discounts and product availability{where}: basket "
                             "value fell.",
        }.get(
            sig,
            f"Investigate the whole funnel{where}: traffic, conversion and basket value all moved."
            if sig == "mix"
            else f"Find what pulled the KPI down{where}: releases, tracking, outages, data feeds.",
        )
    return {
        "traffic-driven": f"Verify the traffic spike{where} is real (bots, duplicated tracking) "
                          "and that stock "
        "and site capacity hold.",
        "conversion-driven": f"Check for a pricing error or an unannounced promotion{where}; keep "
                             "what worked.",
        "basket-driven": f"Check for pricing errors or unusually large orders{where}.",
    }.get(
        sig,
        f"Confirm the rise{where} is genuine and find what caused it (campaign, press, pricing).",
    )


def _signed(v: float) -> str:
    """A change as the checker parses it back: sign, one decimal, percent."""
    return f"{one_decimal(_sig(v)):+.1f}%"


def _updown(v: float | None) -> str:
    """The direction word of a change, as printed beside it (``_signed``): -0.04 % is "flat
    +0.0%" (it was "down +0.0%")."""
    if v is None:
        return "n/a"
    p = one_decimal(_sig(v))
    return "up" if p > 0 else "down" if p < 0 else "flat"


def _scope_label(ep: Episode) -> str | None:
    """The slice an episode's incidents name (``named_by`` = "incidents"), where its in-scope
    change (``scope_changes``) is measured; None otherwise."""
    t = ep.drivers.top
    if ep.drivers.named_by != "incidents" or t is None:
        return None
    return _slice_label(t.dimension, t.value)


def _title_change(ep: Episode) -> tuple[float | None, str]:
    """The change a title quotes from the episode's own figures and its label: the primary KPI's
    in the slice the incidents name (``scope_changes``), else overall."""
    v, kpi = ep.kpi_changes.get(ep.primary_kpi), ep.primary_kpi
    where = _scope_label(ep)
    if where is not None and (ep.scope_changes or {}).get(ep.primary_kpi) is not None:
        v, kpi = ep.scope_changes[ep.primary_kpi], f"{ep.primary_kpi} in {where}"
    return v, kpi


def _hours(ic: IncidentChange) -> str:
    """An incident's periods as its narrative names them: ``2025-04-29, 21:00 to 23:00``,
    ``2025-04-29, at 21:00``, ``2025-04-29 21:00 to 2025-04-30 02:00``; its days without times
    (both ends on midnight)."""
    if not (ic.start_time and ic.end_time):
        return _span(ic.start, ic.end)
    if ic.start != ic.end:
        return f"{ic.start_time.replace('T', ' ')} to {ic.end_time.replace('T', ' ')}"
    hours = f"at {ic.start_time[11:]}" if ic.start_time == ic.end_time else \
        f"{ic.start_time[11:]} to {ic.end_time[11:]}"
    return f"{ic.start}, {hours}"


def _episode_title(ep: Episode) -> str:
    """``<primary KPI>[ in <slice>] <up|down> <change>: <diagnosis> (<start> to <end>)`` — all
    from the episode; ``(<measured span>; flagged <start> to <end>)`` where the change is measured
    over part of the flagged span (or from an onset before it). An episode its incidents name
    by a slice (no overall incident) quotes its in-scope change (``scope_changes``, the slice
    named): the overall change may move the other way (fraud orders that lift one country's
    revenue while the store's fell)."""
    named = f" of {_products(ep)}" if _product_only(ep) else ""
    if (ic := ep.incident_change) is not None:
        # sub-daily: the incident's own change over its hours (the days' figures dilute it);
        # a product's price move (its category's AOV barely moves); an incident the episode's
        # figure moved against
        kpi = ic.kpi if ic.slice == "overall" else f"{ic.kpi} in {ic.slice}"
        named = "" if _products(ep) == ic.slice else named  # named once
        span = _hours(ic)
        if (ic.start, ic.end) != (ep.start, ep.end):
            span += f"; flagged {_span(ep.start, ep.end)}"
        return (f"{kpi} {_updown(ic.change_pct)} {_signed(ic.change_pct)} vs expected: "
                f"{ep.diagnosis.label}{named} ({span})")
    v, kpi = _title_change(ep)
    move = f"{kpi} {_updown(v)} {_signed(v)}" if v is not None else f"{ep.primary_kpi} moved"
    span = _span(ep.start, ep.end)
    if (ep.measured_start, ep.measured_end) != (ep.start, ep.end):
        # the change is measured over these days, not the flagged span: "revenue down -77.9%
        # (2025-05-13 to 2025-05-21)" read as nine days at -77.9% where three were (-26 % over
        # the nine)
        span = f"{_span(ep.measured_start, ep.measured_end)}; flagged {span}"
    return f"{move}: {ep.diagnosis.label}{named} ({span})"


def _span(start, end) -> str:
    return f"{start}" if start == end else f"{start} to {end}"


_BASELINE_TEXT = {"centered": "baseline", "trailing": "the weeks before"}
TREND_NOTE_PCT = 2.0  # a lasting episode names the trend its trailing baseline keeps from this size


def _episode_narrative(ep: Episode) -> str:
    """Every number, date and direction word below is a field of ``ep`` (see ``grounding``)."""
    span = f"On {ep.start}" if ep.days == 1 else f"From {ep.start} to {ep.end} ({ep.days} days)"
    # the funnel KPIs (returning / new customers stay in kpi_changes and the diagnosis evidence),
    # after a generic primary series' own change
    first = [ep.primary_kpi] if is_generic(ep.primary_kpi) else []
    moves = ", ".join(
        f"{k} {_signed(v)}" for k in (*first, *(k for k in ep.kpi_changes if k in MAIN_KPIS))
        if (v := ep.kpi_changes.get(k)) is not None
    )
    where = "" if (ep.measured_start, ep.measured_end) == (ep.start, ep.end) else (
        f" on {ep.measured_start}" if ep.measured_start == ep.measured_end
        else f" over {ep.measured_start} to {ep.measured_end}")
    n = len(ep.incident_ids)
    d = ep.diagnosis
    text = (f"{span}, {n} incident{'s' if n != 1 else ''} on {', '.join(ep.kpis)} ({ep.severity}). "
            f"Overall vs {_BASELINE_TEXT[ep.baseline]}{where}"
            f"{' (whole days)' if _sub_daily(ep) else ''}: "
            f"{moves or 'no funnel KPI'}. "
            f"Primary KPI: {ep.primary_kpi}. Likely {d.label} (confidence {d.confidence:.2f}): "
            f"{_reason(ep)}.")
    if ep.trailing_trend_pct is not None and abs(ep.trailing_trend_pct) >= TREND_NOTE_PCT:
        way = "falling" if ep.trailing_trend_pct < 0 else "rising"
        # a trend against the change makes it read smaller, not larger
        change = ep.kpi_changes.get(ep.primary_kpi)
        against = change is not None and change * ep.trailing_trend_pct < 0
        text += (f" {ep.primary_kpi} was already {way} before it (trend "
                 f"{_signed(ep.trailing_trend_pct)} over the four weeks before), which the "
                 "weeks before do not remove: " + ("the change may be larger than it reads."
                                                   if against else
                                                   "part of the change may be that trend."))
    t = ep.drivers.top
    if t is not None:
        rel = f"; {_slice_label(t.dimension, t.value)} {_signed(t.relative_change_pct)}" \
            if t.relative_change_pct is not None else ""
        if ep.drivers.named_by == "incidents":  # the slice its incidents are on
            # its in-scope change, as the title quotes it (the driver record's own change is
            # against the detectors' expectation and may even move the other way)
            where = _slice_label(t.dimension, t.value)
            store = ep.kpi_changes.get(ep.primary_kpi)
            if (v := (ep.scope_changes or {}).get(ep.primary_kpi)) is not None:
                rel = f"; {ep.primary_kpi} in {where} {_signed(v)}"
            if v is not None and store is not None and v * store > 0 and abs(store) >= abs(v):
                # the store moved the same way at least as much: not "confined" (random world
                # 3: "Confined to country SE" beside the store's revenue +23.3 %, SE's +9.2 %)
                text += (f" Flagged only in {where} (no overall incident{rel}), though the "
                         f"store's {ep.primary_kpi} moved as much or more the same way.")
            else:
                text += f" Confined to {where} (no overall incident{rel})."
        else:
            text += (f" Concentrated in {_slice_label(t.dimension, t.value)} "
                     f"({_sig(t.share_of_change) * 100:.0f}% of the change{rel}).")
    elif ep.drivers.scope == "broad":
        text += f" Broad-based across {_across(ep.drivers)}."
    else:
        text += " No channel, country or category breakdown is available."
    if (products := _products(ep)) and not _product_only(ep):
        text += f" The product watcher flagged {products} on these days."
    if ep.planned:
        text += f" Overlaps planned: {', '.join(sorted({c.name for c in ep.calendar}))}."
    return text


def _sub_daily(ep: Episode) -> bool:
    """The title quotes an incident because the episode's figures are whole days."""
    return ep.incident_change is not None and ep.incident_change.why == "sub_daily"


def _action_change(ep: Episode) -> float | None:
    """The change an action's direction words follow: the primary KPI's, or the incident's on
    it the title quotes (the episode's figure may differ: whole days, or against it)."""
    if ep.incident_change is not None and ep.incident_change.kpi == ep.primary_kpi:
        return ep.incident_change.change_pct
    return ep.kpi_changes.get(ep.primary_kpi)


def _episode_action(ep: Episode) -> str:
    """The next step for the diagnosed shock (direction words only from the primary KPI's sign)."""
    d, t = ep.diagnosis, ep.drivers.top
    where = f" for {_slice_label(t.dimension, t.value)}" if t is not None else ""
    products = _products(ep)
    if products and _product_only(ep):  # the product watcher's finding names the products
        where = f" for {products}" + (f" ({_slice_label(t.dimension, t.value)})"
                                      if t is not None else "")
    elif products:  # a store episode the product incidents were folded into
        where += f" (the product watcher flagged {products})"
    if d.type == "planned_event":
        names = ", ".join(sorted({c.name for c in ep.calendar}))
        if (_action_change(ep) or 0) >= 0:
            return (f"Planned ({names}): compare the uplift with the campaign target; "
                    "no incident response needed.")
        return (f"Planned ({names}) but {ep.primary_kpi} fell: check the campaign setup "
                "(offer, landing pages, tracking).")
    return {
        "site_outage": f"Check site availability{where} over the measured days (hosting, CDN, "
                       "deploys) and add "
        "uptime alerting.",
        "channel_outage": f"Check the acquisition channel{where}: ad account status, campaign "
                          "budget, email sends, "
        "referral links.",
        "level_shift": f"Find what changed for good from {ep.measured_start}{where} (competitor, "
                       "site redesign, "
        "search ranking) and re-baseline targets.",
        "bot_traffic": f"Filter invalid traffic{where} (bot rules, referrer spam) and exclude it "
                       "from conversion "
        "reporting.",
        "tracking_fault": f"Check tracking{where}: analytics tags, consent banner, data feeds; "
                          "orders were not hit.",
        "payment_failure": f"Check the checkout and payment provider{where}: error rates, card "
                           "declines, card authentication.",
        "churn_wave": f"Reach returning customers{where}: check recent delivery and service "
                      "experience and "
        "competitor offers; start win-back.",
        "stockout": f"Restock{where}: check inventory and product feeds of the affected items.",
        "pricing_error": f"Check prices and discounts{where}: fix the listing and review the "
                         "orders taken.",
        "flash_sale": f"Confirm who launched the promotion{where}, check its margin, and add it to "
                      "the "
        "marketing calendar.",
        "fraud_orders": f"Review the orders{where} for fraud (new accounts, large baskets, card "
                        "declines) and hold "
        "shipments.",
    }.get(d.type, _generic_action(ep, where) if is_generic(ep.primary_kpi) else
          f"Investigate the whole funnel{where}: traffic, conversion and basket value.")


def _generic_action(ep: Episode, where: str) -> str:
    """The next step for a series outside the store's funnel (no traffic, conversion or basket to
    investigate); the direction word follows the sign of its own change (on sub-daily input
    that of the incident the title quotes: the whole days' may differ)."""
    k, v = ep.primary_kpi, _action_change(ep)
    causes = "a release, a configuration or upstream change, an outage, a data feed"
    if v is not None and _sig(v) > 0:
        return (f"Confirm the rise in {k}{where} is real (not a double-counting feed) and find "
                f"its cause: {causes}, an outside event.")
    if v is not None and _sig(v) < 0:
        return f"Find what pulled {k}{where} down: {causes}."
    return f"Find what moved {k}{where}: {causes}."


def _headline(wow: list[KpiChange], has_revenue: bool = True, has_overall: bool = True,
              step_days: int = 1) -> str:
    """Week over week revenue, from ``summary.week_over_week`` (grounded like the narratives).
    ``has_revenue`` False (a --kpis file without revenue): says so, not that history is short;
    ``has_overall`` False (a long --kpis file of slices only: revenue, but no store-wide series to
    total or compare): says that; ``step_days`` a --kpis file's row step that a week is not a
    whole number of (a monthly file, ``--step 30D``): says that, not that history is short."""
    if not has_revenue:
        return "No revenue series: no week-over-week revenue headline."
    if not has_overall:
        return ("No store-wide (overall) revenue series, only slices: no totals or week-over-week "
                "headline; the slices are in kpis_daily.csv and the episodes.")
    if 7 % step_days:
        return ("No week-over-week comparison: a week is not a whole number of the file's rows "
                "(see its step in run.json).")
    rev = next((c for c in wow if c.kpi == "revenue"), None)
    if rev is None or rev.change_pct is None:
        return "Not enough history for a week-over-week comparison."
    text = (
        f"revenue {_updown(rev.change_pct)} {_signed(rev.change_pct)} week over week "
        f"({rev.current_start} to {rev.current_end} vs {rev.previous_start} to {rev.previous_end})."
    )
    text += _planned_sentence(rev)
    if rev.drivers and rev.drivers.top:
        t = rev.drivers.top
        text += (f" Mostly {_slice_label(t.dimension, t.value)} "
                 f"({_sig(t.share_of_change) * 100:.0f}% of the change).")
    elif rev.drivers and rev.drivers.scope == "broad":
        text += f" The change is broad-based across {_across(rev.drivers)}."
    return text


def _planned_sentence(ch: KpiChange) -> str:
    """What planned calendar days the two weeks held (a Black Friday in the previous week makes
    an ordinary week look like a fall); names and dates are the change's own fields."""
    cur, prev = ch.planned_current, ch.planned_previous
    if cur and prev:
        return (f" Both weeks held planned days: this week {describe(cur)}, the previous week "
                f"{describe(prev)}; the comparison is not like for like.")
    if prev:
        return (f" The previous week held planned {describe(prev)}, so the comparison is not like "
                "for like.")
    if cur:
        return f" This week held planned {describe(cur)}, so the comparison is not like for like."
    return ""
