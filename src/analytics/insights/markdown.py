"""insights.md: a compact, prompt-ready brief rendered from the insights.json document."""

from __future__ import annotations

import json
from typing import Any

from .. import drivers as dr
from .common import _slice_label


def _n(v: Any, nd: int = 1, suffix: str = "") -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}{suffix}"


def render_markdown(doc: dict[str, Any]) -> str:
    """A compact, prompt-ready brief with the same content as insights.json."""
    r, s = doc["run"], doc["summary"]
    lines = ["# ShockLab insights brief", "",
             f"Data: {r.get('scenario') or r['source']} · {r.get('period_start')} to {r.get('period_end')} "
             f"({r['days']} days) · seed {r.get('seed')} · schema {doc['schema_version']}",
             f"Detectors: {', '.join(d['name'] + ('' if d['ok'] else ' (FAILED)') for d in r['detectors']) or 'none'}",
             "", "## Summary", s.get("headline", ""), "",
             "| KPI | total | last 7d | WoW | last 28d | MoM |", "|---|---|---|---|---|---|"]
    wow = {c["kpi"]: c for c in s["week_over_week"]}
    mom = {c["kpi"]: c for c in s["month_over_month"]}
    for t in s["totals"]:
        k = t["kpi"]
        w, m = wow.get(k, {}), mom.get(k, {})
        nd = 4 if k in dr.RATIO_KPIS else 0
        lines.append(f"| {k} | {_n(t['total'], nd)} | {_n(w.get('current'), nd)} | {_n(w.get('change_pct'), 1, '%')} "
                     f"| {_n(m.get('current'), nd)} | {_n(m.get('change_pct'), 1, '%')} |")
    for label, ch in (("WoW", wow.get("revenue")), ("MoM", mom.get("revenue"))):
        if ch and ch.get("drivers"):
            lines.append(f"- Revenue {label} drivers ({ch['drivers']['scope']}): " + _drivers_md(ch["drivers"]))
    ch = doc.get("channels")
    if ch:
        lines += ["", f"## Channels ({ch['window_start']} to {ch['window_end']}; baseline: {ch['baseline']})",
                  "| channel | revenue | share | conversion | AOV | vs baseline | flag |", "|---|---|---|---|---|---|---|"]
        for c in ch["channels"]:
            conv = _n(c["conversion_rate"] * 100 if c["conversion_rate"] is not None else None, 2, "%")
            lines.append(f"| {c['channel']} | {_n(c['revenue'], 0)} | {_n(c['revenue_share'] * 100, 1, '%')} | {conv} "
                         f"| {_n(c['aov'], 2)} | {_n(c['revenue_vs_baseline_pct'], 1, '%')} "
                         f"| {'; '.join(c['reasons']) if c['underperforming'] else 'ok'} |")
    lines += ["", f"## Episodes ({len(doc['episodes'])}: overlapping incidents read together)"]
    for ep in doc["episodes"]:
        matched = f" · matched {', '.join(ep['matched_event_ids'])}" if ep["matched_event_ids"] else ""
        lines += [f"### {ep['episode_id']} — {ep['primary_kpi']} {ep['direction']} ({ep['severity']}, "
                  f"{ep['signature']['label']}){matched}",
                  ep["narrative"], f"- Drivers of {ep['primary_kpi']} ({ep['drivers']['scope']}): "
                  f"{_drivers_md(ep['drivers'])}", f"- Action: {ep['recommended_action']}"]
    lines += ["", f"## Incidents ({len(doc['incidents'])} shown of {doc['incidents_total']})"]
    for it in doc["incidents"]:
        matched = f" · matched {it['matched_event_id']}" if it.get("matched_event_id") else ""
        top = it["drivers"].get("top")
        lines.append(f"- {it['incident_id']}: {it['kpi']} {_slice_label(it['dimension'], it['segment'])} "
                     f"{it['direction']} {it['start']}..{it['end']}, {_n(it['magnitude_pct'], 1, '%')} vs expected, "
                     f"{it['level']} ({', '.join(it['detectors'])}), {it['severity']}, {it['signature']['label']}"
                     + (f", driver {_slice_label(top['dimension'], top['value'])}" if top else "") + matched)
    f = doc["forecast"]
    lines += ["", "## Forecast"]
    if f["status"] == "ok":
        lines.append(f"{f['kpi']}, next {f['horizon_days']} days, {f['interval'] * 100:.0f}% interval ({f['method']}).")
        lines += [f"- {m['month']}{' (partial)' if m['partial'] else ''}: {_n(m['yhat'], 0)} "
                  f"[{_n(m['lower'], 0)}, {_n(m['upper'], 0)}]" for m in f["monthly"]]
        rec = f.get("recent")
        if rec:
            lines.append(f"- Last {len(rec['weeks'])} weeks vs forecast made {rec['forecast_made']}: "
                         f"{_n(rec['deviation_pct'], 1, '%')} (" + ", ".join(
                             f"{w['start']}: {_n(w['deviation_pct'], 1, '%')}{' OUTSIDE' if w['outside_interval'] else ''}"
                             for w in rec["weeks"]) + ")")
    else:
        lines.append(f"{f['status']}: {f.get('reason')}")
    se = doc["seasonality"]
    lines += ["", "## Seasonality (revenue)"]
    for key in ("weekday", "monthly"):
        p = se.get(key)
        if p:
            lines.append(f"- {key}: peak {p['peak']}, trough {p['trough']}, amplitude {p['amplitude_pct']:.1f}% · "
                         + " ".join(f"{x['label']} {x['index']:.2f}" for x in p["points"]))
    if doc.get("customers") is not None:
        lines += ["", "## Customers", "```json", json.dumps(doc["customers"], sort_keys=True, indent=1)[:4000], "```"]
    return "\n".join(lines) + "\n"


def _drivers_md(ds: dict[str, Any]) -> str:
    items = ds.get("drivers") or []
    if not items:
        return "no breakdown available" if ds.get("scope") == "unknown" else \
            "no slice stands out (every slice moved in proportion to its size)"
    return "; ".join(f"{_slice_label(d['dimension'], d['value'])} {d['share_of_change'] * 100:.0f}% of change"
                     + (f" ({d['relative_change_pct']:+.1f}%)" if d.get("relative_change_pct") is not None else "")
                     for d in items)
