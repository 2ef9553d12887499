"""Text rendered from an incident's or an episode's own fields: narratives, headline, actions."""

from __future__ import annotations

from .common import _slice_label
from .models import CalendarOverlap, Driver, Episode, IncidentInsight, KpiChange

_KPI_LABEL = {"revenue": "Revenue", "orders": "Orders", "sessions": "Sessions", "aov": "Average order value",
              "conversion_rate": "Conversion rate", "units": "Units", "new_customers": "New customers",
              "returning_customers": "Returning customers", "cancellation_rate": "Cancellation rate"}


def _fmt(v: float | None, kpi: str) -> str:
    if v is None:
        return "n/a"
    if kpi in ("conversion_rate", "cancellation_rate"):
        return f"{v * 100:.2f}%"
    return f"{v:,.2f}" if kpi == "aov" else f"{v:,.0f}"


def _narrative(it: IncidentInsight) -> str:
    name = _KPI_LABEL.get(it.kpi, it.kpi)
    mag = it.magnitude_pct if it.magnitude_pct is not None else it.baseline_magnitude_pct
    where = "" if it.dimension == "overall" else f" in {_slice_label(it.dimension, it.segment)}"
    span = f"on {it.start}" if it.days == 1 else f"from {it.start} to {it.end} ({it.days} days)"
    size = f" {abs(mag):.1f}%" if mag is not None else ""
    text = (f"{name}{where} was{size} {'above' if it.direction == 'up' else 'below'} expected "
            f"({_fmt(it.actual, it.kpi)} vs {_fmt(it.expected, it.kpi)}) {span}. "
            f"{it.n_detectors} detector{'s' if it.n_detectors != 1 else ''} agree ({', '.join(it.detectors)}; "
            f"{it.level}, confidence {it.confidence:.2f}, severity {it.severity}).")
    s = it.signature
    if s.traffic_pct is not None:
        text += (f" {s.label.capitalize()} ({s.slice}): sessions {s.traffic_pct:+.1f}%, conversion "
                 f"{s.conversion_pct:+.1f}%, AOV {s.basket_pct:+.1f}%.")
    t = it.drivers.top
    if t is not None:
        rel = f", {t.relative_change_pct:+.1f}% vs its own expected" if t.relative_change_pct is not None else ""
        text += f" Concentrated in {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change{rel})."
    elif it.drivers.scope == "broad":
        text += " Broad-based: no single channel, country or category stands out."
    else:
        text += " No channel, country or category breakdown is available."
    if it.planned:
        names = sorted({c.name for c in it.calendar})
        text += f" Overlaps planned: {', '.join(names)}."
    return text


def _action(direction: str, sig: str, top: Driver | None, calendar: list[CalendarOverlap]) -> str:
    """A recommended next step from direction, signature, top driver and planned-event overlap."""
    where = f" for {_slice_label(top.dimension, top.value)}" if top is not None else ""
    if calendar:
        names = ", ".join(sorted({c.name for c in calendar}))
        if direction == "up":
            return f"Planned ({names}): compare the uplift with the campaign target; no incident response needed."
        return f"Drop during planned {names}: check the campaign setup (offer, landing pages, tracking)."
    if direction == "down":
        return {
            "traffic-driven": f"Check acquisition{where}: campaign status and budget, tracking tags, referral "
                              "links and site availability.",
            "conversion-driven": f"Check the checkout and payment funnel{where}: payment-provider errors, site "
                                 "errors, stock-outs, shipping options.",
            "basket-driven": f"Check prices, discounts and product availability{where}: basket value fell.",
        }.get(sig, f"Investigate the whole funnel{where}: traffic, conversion and basket value all moved."
               if sig == "mix" else f"Find what pulled the KPI down{where}: releases, tracking, outages, data feeds.")
    return {
        "traffic-driven": f"Verify the traffic spike{where} is real (bots, duplicated tracking) and that stock "
                          "and site capacity hold.",
        "conversion-driven": f"Check for a pricing error or an unannounced promotion{where}; keep what worked.",
        "basket-driven": f"Check for pricing errors or unusually large orders{where}.",
    }.get(sig, f"Confirm the rise{where} is genuine and find what caused it (campaign, press, pricing).")


def _episode_narrative(ep: Episode) -> str:
    span = f"On {ep.start}" if ep.days == 1 else f"From {ep.start} to {ep.end} ({ep.days} days)"
    moves = ", ".join(f"{k} {v:+.1f}%" for k, v in ep.kpi_changes.items() if v is not None)
    where = "" if (ep.measured_start, ep.measured_end) == (ep.start, ep.end) else (
        f" on {ep.measured_start}" if ep.measured_start == ep.measured_end
        else f" over {ep.measured_start} to {ep.measured_end}")
    text = (f"{span}, {len(ep.incident_ids)} incident{'s' if len(ep.incident_ids) != 1 else ''} on "
            f"{', '.join(ep.kpis)} ({ep.severity}). Overall vs baseline{where}: {moves}. "
            f"Primary KPI: {ep.primary_kpi}; {ep.signature.label}.")
    t = ep.drivers.top
    if t is not None:
        text += f" Concentrated in {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change)."
    elif ep.drivers.scope == "broad":
        text += " Broad-based across channels, countries and categories."
    else:
        text += " No channel, country or category breakdown is available."
    if ep.planned:
        text += f" Overlaps planned: {', '.join(sorted({c.name for c in ep.calendar}))}."
    return text


def _headline(wow: list[KpiChange]) -> str:
    rev = next((c for c in wow if c.kpi == "revenue"), None)
    if rev is None or rev.change_pct is None:
        return "Not enough history for a week-over-week comparison."
    text = (f"Revenue {'rose' if rev.change_pct >= 0 else 'fell'} {abs(rev.change_pct):.1f}% week over week "
            f"({rev.current:,.0f} vs {rev.previous:,.0f}, {rev.current_start} to {rev.current_end}).")
    if rev.drivers and rev.drivers.top:
        t = rev.drivers.top
        text += f" Mostly {_slice_label(t.dimension, t.value)} ({t.share_of_change * 100:.0f}% of the change)."
    elif rev.drivers and rev.drivers.scope == "broad":
        text += " The change is broad-based across channels, countries and categories."
    return text
