"""insights.md: a compact, prompt-ready brief rendered from the insights.json document."""

from __future__ import annotations

import json
import re
from typing import Any

from shocklab.catalogue import RATIO_KPIS
from shocklab.textfile import CONTROL

from .common import SEVERITY_RANK, _slice_label, noise_text, one_decimal
from .models import PlannedDay
from .planned import describe


def _one_line(text: Any) -> str:
    """A name as one line of Markdown, its control characters shown escaped: a --kpis file's
    stem names the data, and a file named 'k\n# x.csv' wrote a heading of its own into the
    brief (file names are legitimate input, so the name is escaped here, not refused)."""
    return re.sub(CONTROL, lambda m: ascii(m.group())[1:-1], str(text))


def _status(d: dict, failed: list[str]) -> str:
    """' (FAILED)' for a detector that failed (those not run are on a line of their own)."""
    return " (FAILED)" if not d["ok"] and d["name"] in failed else ""


def _n(v: Any, nd: int = 1, suffix: str = "") -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}{suffix}"


def _chg(v: Any) -> str:
    """A change in percent with its sign (``+4.6%``, ``-11.5%``)."""
    return "n/a" if v is None else f"{one_decimal(v):+,.1f}%"


def _noise(v: Any) -> str:
    """A channel's count noise after its change (`` (±15%)``); nothing without one."""
    return "" if v is None else f" (±{noise_text(v)}%)"


def _ratio_digits(v: Any) -> int:
    """Decimals of a ratio KPI's value: 4 for a rate (0.0312), 2 for an amount (AOV 121.82; its
    stored 6 significant digits hold no 4th decimal)."""
    return 4 if v is None or abs(v) < 1 else 2


MD_BUDGET = (
    24_000  # characters (~6,000 tokens): episodes and incidents fill what the fixed sections leave
)


def render_markdown(doc: dict[str, Any], budget: int = MD_BUDGET) -> str:
    """A compact, prompt-ready brief of insights.json: the brief first, then the summary, channels,
    episodes (most severe first) and incidents until ``budget`` characters, forecast,
    seasonality."""
    r, s = doc["run"], doc["summary"]
    seed = (
        f" · seed {r.get('seed')}"
        if r.get("source") == "simulated" and r.get("seed") is not None
        else ""
    )
    head = [
        "# ShockLab insights brief",
        "",
        f"Data: {_one_line(r.get('scenario') or r['source'])} · {r.get('period_start')} to "
        f"{r.get('period_end')} "
        f"({r['days']} days){seed} · schema {doc['schema_version']}",
        "Detectors: "
        + (", ".join(d["name"] + _status(d, r.get("detectors_failed", [])) for d in r["detectors"])
           or "none"),
    ]
    if r.get("detectors_not_run"):  # the oracle without truth: by design, not a failure
        head.append("Not run: " + ", ".join(f"{d['name']} ({d.get('error') or 'skipped'})"
                                           for d in r["detectors_not_run"]))
    b = doc.get("brief") or {}
    head += ["", f"## Brief (as of {b.get('as_of')})", b.get("headline", "")]
    if b.get("last_28_days"):
        head.append(f"- Episodes in the last 28 days: {', '.join(b['last_28_days'])}")
    if not doc["episodes"] and not doc.get("incidents_total"):
        # the brief said nothing (or pointed at episodes there were none of)
        head.append("- No episode: no incident was flagged on any series.")
    for i, e in enumerate(b.get("top_episodes") or [], 1):
        head.append(
            f"{i}. **{e['title']}** ({e['severity']}; {e['episode_id']}) — "
            f"{e['recommended_action']}"
        )
    head += ["", "## Summary"]
    if s["totals"]:
        head += ["| KPI | total | last 7d | WoW | last 28d | MoM |", "|---|---|---|---|---|---|"]
    else:  # --kpis input with its own KPI names: nothing to total (an empty table said nothing)
        head.append("No store KPI (revenue, orders, sessions, …) in this input, so no totals or "
                    "week- and month-over-month figures; the episodes below (if any) cover "
                    "every series.")
    wow = {c["kpi"]: c for c in s["week_over_week"]}
    mom = {c["kpi"]: c for c in s["month_over_month"]}
    for t in s["totals"]:
        k = t["kpi"]
        w, m = wow.get(k, {}), mom.get(k, {})
        nd = _ratio_digits(t["total"]) if k in RATIO_KPIS else 0
        head.append(
            f"| {k} | {_n(t['total'], nd)} | {_n(w.get('current'), nd)} | "
            f"{_chg(w.get('change_pct'))} "
            f"| {_n(m.get('current'), nd)} | {_chg(m.get('change_pct'))} |"
        )
    for label, ch in (("WoW", wow.get("revenue")), ("MoM", mom.get("revenue"))):
        if ch and ch.get("drivers"):
            head.append(
                f"- Revenue {label} drivers ({ch['drivers']['scope']}): "
                + _drivers_md(ch["drivers"])
            )
        if ch and (ch.get("planned_current") or ch.get("planned_previous")):
            head.append(f"- {label} planned days: this period {_planned_md(ch['planned_current'])}"
                        f"; the previous one {_planned_md(ch['planned_previous'])}")
    ch = doc.get("channels")
    if ch:
        head += [
            "",
            f"## Channels ({ch['window_start']} to {ch['window_end']}; baseline: {ch['baseline']})",
            "| channel | revenue | share | conversion | AOV | vs baseline (± count noise) | flag |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in ch["channels"]:
            conv = _n(
                c["conversion_rate"] * 100 if c["conversion_rate"] is not None else None, 2, "%"
            )
            head.append(
                f"| {c['channel']} | {_n(c['revenue'], 0)} | "
                f"{_n(c['revenue_share'] * 100, 1, '%')} | {conv} "
                f"| {_n(c['aov'], 2)} | {_chg(c['revenue_vs_baseline_pct'])}"
                f"{_noise(c.get('revenue_noise_pct'))} "
                f"| {'; '.join(c['reasons']) if c['underperforming'] else 'ok'} |"
            )
        if ch.get("note"):
            head.append(f"- {ch['note']}")
    tail = _tail(doc)
    room = budget - len("\n".join(head + tail)) - 400
    eps = sorted(doc["episodes"], key=_episode_rank)
    body, shown = [], 0
    for ep in eps:
        matched = (
            f" · matched {', '.join(ep['matched_event_ids'])}" if ep["matched_event_ids"] else ""
        )
        block = [
            f"### {ep['title']}",
            f"{ep['episode_id']} · {ep['severity']} · {ep['signature']['label']}{matched}",
            ep["narrative"],
            f"- Drivers of {ep['primary_kpi']} ({ep['drivers']['scope']}): "
            f"{_drivers_md(ep['drivers'])}",
            f"- Action: {ep['recommended_action']}",
        ]
        size = len("\n".join(block)) + 1
        if size > room:
            break
        body += block
        room -= size
        shown += 1
    more = f"; {len(eps) - shown} more in insights.json" if shown < len(eps) else ""
    body = ["", f"## Episodes ({shown} most severe of {len(eps)}{more})", *body]
    incs = sorted(
        doc["incidents"], key=lambda i: (-SEVERITY_RANK.get(i["severity"], 0), i["incident_id"])
    )
    inc_lines = []
    for it in incs:
        matched = f" · matched {it['matched_event_id']}" if it.get("matched_event_id") else ""
        # its severity: the list is ordered by it, which the lines did not show
        line = f"- {it['incident_id']} ({it['severity']}): {it['narrative']}{matched}"
        if len(line) + 1 > room:
            break
        inc_lines.append(line)
        room -= len(line) + 1
    body += [
        "",
        f"## Incidents ({len(inc_lines)} most severe shown of {doc['incidents_total']}; all in "
        "insights.json)",
        *inc_lines,
    ]
    return "\n".join(head + body + tail) + "\n"


def _episode_rank(ep: dict[str, Any]) -> tuple:
    v = (ep.get("kpi_changes") or {}).get(ep["primary_kpi"])
    return (-SEVERITY_RANK.get(ep["severity"], 0), -abs(v or 0.0), ep["episode_id"])


def _tail(doc: dict[str, Any]) -> list[str]:
    f = doc["forecast"]
    lines = ["", "## Forecast"]
    if f["status"] == "ok":
        lines.append(
            f"{f['kpi']}, next {f['horizon_days']} days, {f['interval'] * 100:.0f}% interval "
            f"({f['method']})."
        )
        lines += [f"- {m['month']}{' (partial)' if m['partial'] else ''}: {_n(m['yhat'], 0)} "
                  f"[{_n(m['lower'], 0)}, {_n(m['upper'], 0)}]" for m in f["monthly"]]
        rec = f.get("recent")
        if rec:
            lines.append(
                f"- Last {len(rec['weeks'])} weeks vs forecast made {rec['forecast_made']}: "
                f"{_chg(rec['deviation_pct'])} ("
                + ", ".join(
                    f"{w['start']}: "
                    f"{_chg(w['deviation_pct'])}{' OUTSIDE' if w['outside_interval'] else ''}"
                    for w in rec["weeks"]
                )
                + ")"
            )
    else:
        lines.append(f"{f['status']}: {f.get('reason')}")
    se = doc["seasonality"]
    lines += ["", "## Seasonality (revenue)"]
    for key in ("weekday", "monthly"):
        p = se.get(key)
        if p:
            lines.append(
                f"- {key}: peak {p['peak']}, trough {p['trough']}, amplitude "
                f"{p['amplitude_pct']:.1f}% · "
                + " ".join(f"{x['label']} {x['index']:.2f}" for x in p["points"])
            )
    if not (se.get("weekday") or se.get("monthly")):  # the heading was left empty
        lines.append("- no profile: no revenue series, or fewer than 14 days of it")
    elif not se.get("monthly"):
        lines.append("- monthly: no profile (less than a year of revenue: the months' means "
                     "would be its trend and shocks, not a season)")
    if doc.get("customers") is not None:
        text, left = _customers_json(doc["customers"])
        lines += [
            "",
            "## Customers (JSON"
            + (f"; left out here, in insights.json: {', '.join(left)})" if left else ")"),
            "```json",
            text,
            "```",
        ]
    return lines


CUSTOMERS_BUDGET = 3000  # characters of the customers section's JSON
# what a reader acts on first: the monitor's alerts, the segments and the actions they call for
_CUSTOMERS_FIRST = ("monitor", "segments", "actions", "customers", "as_of", "end_date",
                    "recency_note", "warnings", "cleaning")


def _customers_json(customers: dict[str, Any]) -> tuple[str, list[str]]:
    """The customers section as whole JSON within ``CUSTOMERS_BUDGET``: its keys the reader acts
    on first, then the others in name order, each kept whole or left out (named in the heading).
    Cutting the sorted text at 3,000 characters ended mid-value and dropped the monitor's alerts
    and the segments, which sort after the churn model's calibration bins."""
    order = [k for k in _CUSTOMERS_FIRST if k in customers] + sorted(
        k for k in customers if k not in _CUSTOMERS_FIRST)
    kept: dict[str, Any] = {}
    left: list[str] = []
    for k in order:
        trial = {**kept, k: customers[k]}
        if len(json.dumps(trial, separators=(",", ":"))) <= CUSTOMERS_BUDGET:
            kept = trial
        else:
            left.append(k)
    return json.dumps(kept, separators=(",", ":")), left


def _drivers_md(ds: dict[str, Any]) -> str:
    items = ds.get("drivers") or ([ds["top"]] if ds.get("top") else [])
    if not items:
        return "no breakdown available" if ds.get("scope") == "unknown" else \
            "no slice stands out (none carries half of the change while moving much more " \
            "than the rest of its dimension)"
    # each slice's own change, against what its change is measured from (an episode's narrative
    # quotes the slice's in-scope change against the same weekdays around it: another basis)
    basis = {"shift": " vs the previous period", "none": ""}.get(
        ds.get("expected_source", "none"), " vs expected")
    return "; ".join(
        f"{_slice_label(d['dimension'], d['value'])} {d['share_of_change'] * 100:.0f}% of change"
        # a negative share: the slice moved one way while its dimension's total moved the other
        # (a slice episode's country up on a day the store fell); "-27% of change" alone read
        # as a share of a fall
        + (", against the total's direction" if d["share_of_change"] < -0.005 else "")
        + (
            f" ({one_decimal(d['relative_change_pct']):+.1f}%{basis})"
            if d.get("relative_change_pct") is not None
            else ""
        )
        for d in items
    )


def _planned_md(days: list[dict[str, Any]]) -> str:
    """Planned calendar days as the headline names them (``none`` without any)."""
    return describe([PlannedDay(date=d["date"], name=d["name"]) for d in days]) if days else "none"
