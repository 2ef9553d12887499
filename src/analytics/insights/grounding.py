"""Grounding check: every number, date and direction word in the text of insights.json (episode
titles, narratives and actions, incident narratives and actions, the summary headline, the brief)
must be a field of the same object.

The checker parses text, it does not re-render it: it finds each date, each signed percentage
with its label (``sessions -47.9%``, ``channel email +61.0%``), each direction word after a KPI
(``revenue up``), each "NN% of the change", confidence, day and incident count, and looks the
value up in the object's fields. A number it cannot explain is a mismatch too, so new text that
prints a number from elsewhere fails the check.

    python -m analytics.insights --check RUN_DIR     # exit 1 and one line per mismatch
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .common import one_decimal

_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_AFTER_LABEL = r" (?:(?P<word>up|down|flat) )?(?P<num>[+-]\d+\.\d)%"
_SIGNED = re.compile(r"(?P<label>[A-Za-z_][\w|/ .&'-]*?)" + _AFTER_LABEL)
_LABEL = re.compile(r"[A-Za-z_][\w|/ .&'-]*", re.ASCII)  # what _SIGNED reads as a label
_SHARE = re.compile(r"\((?P<num>\d+)% of the change")
_CONF = re.compile(r"confidence (?P<num>\d\.\d\d)")
_DAYS = re.compile(r"\((?P<num>\d+) days\)")
_COUNT = re.compile(r"(?P<num>\d+) (?P<what>incident|detector)s?\b")
_KPI_WORD = re.compile(
    r"\b(?P<kpi>revenue|orders|sessions|conversion_rate|aov|units|returning_customers|"
    r"new_customers|cancellation_rate)\b (?P<word>up|down|flat|rose|fell)\b"
)
_TREND_WORD = re.compile(r"\balready (?P<word>falling|rising) before it\b")
_UPWORDS = {"up", "rose"}
_DOWNWORDS = {"down", "fell"}


def _r1(v: float | None) -> str | None:
    return None if v is None else f"{one_decimal(v):+.1f}"  # as the texts print it: no -0.0


def _dates(obj: Any) -> set[str]:
    """Every ISO date among an object's values (recursively)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for v in obj.values():
            out |= _dates(v)
    elif isinstance(obj, list):
        for v in obj:
            out |= _dates(v)
    elif isinstance(obj, str) and _DATE.fullmatch(obj):
        out.add(obj)
    return out


def _check_direction(word: str | None, value: float | None) -> bool:
    if word is None or value is None:
        return True
    if word in _UPWORDS:
        return value > 0
    if word in _DOWNWORDS:
        return value < 0
    return round(value, 1) == 0  # "flat"


def check_text(
    text: str,
    *,
    where: str,
    dates: set[str],
    signed: dict[str, float | None],
    shares: Iterable[float] = (),
    confidence: float | None = None,
    days: Iterable[int] = (),
    counts: dict[str, int] | None = None,
    up_ok: bool | None = None,
    literals: Iterable[str] = (),
) -> list[str]:
    """Mismatches of one text against the facts it may cite.

    signed: label -> value (a percentage) for ``<label> [up|down] ±x.x%``; the label is the text
    right before the number (a KPI name, a slice such as 'channel email', 'evidence …').
    up_ok: for actions, whether the rise words ('uplift', 'rise') are allowed (None: not checked).
    literals: names that may hold digits (calendar entries, slices, detectors): not numbers.
    """
    bad: list[str] = []
    rest = text

    def signed_ok(key: str, word: str | None, num: str) -> None:
        if _r1(signed[key]) != num:
            bad.append(f"{where}: {key} {num}% but the field says {_r1(signed[key])}%")
        if not _check_direction(word, signed[key]):
            bad.append(f"{where}: '{key} {word}' but the field is {_r1(signed[key])}%")

    # the labels the object names, found as written first: a --kpis series may be called
    # 'p99_latency_ms' or 'Révenue €', which the generic label pattern below cannot read
    # (or, holding digits, would be blanked as a literal below)
    for key in sorted((k for k in signed if not _LABEL.fullmatch(k) or any(map(str.isdigit, k))),
                      key=len, reverse=True):
        named = re.compile(re.escape(key) + _AFTER_LABEL)
        for m in named.finditer(rest):
            signed_ok(key, m.group("word"), m.group("num"))
        rest = named.sub(" ", rest)
    for lit in sorted(
        {x for x in literals if x and any(ch.isdigit() for ch in x)}, key=len, reverse=True
    ):
        rest = rest.replace(lit, " ")
    text = rest
    for d in _DATE.findall(text):
        if d not in dates:
            bad.append(f"{where}: date {d} is not a field")
    rest = _DATE.sub(" ", rest)
    for m in _SIGNED.finditer(rest):
        label = m.group("label").strip()
        # the longest known label the text ends with (labels may follow a comma or 'in')
        key = next((k for k in sorted(signed, key=len, reverse=True) if label.endswith(k)), None)
        if key is None:
            bad.append(f"{where}: '{label} {m.group('num')}%' has no field")
            continue
        signed_ok(key, m.group("word"), m.group("num"))
    rest = _SIGNED.sub(" ", rest)
    for m in _KPI_WORD.finditer(rest):
        k = m.group("kpi")
        if k in signed and not _check_direction(m.group("word"), signed[k]):
            bad.append(f"{where}: '{k} {m.group('word')}' but the field is {_r1(signed[k])}%")
    share_txt = {f"{s * 100:.0f}" for s in shares}
    for m in _SHARE.finditer(rest):
        if m.group("num") not in share_txt:
            bad.append(f"{where}: {m.group('num')}% of the change is not a driver's share")
    rest = _SHARE.sub(" ", rest)
    for m in _CONF.finditer(rest):
        if confidence is None or f"{confidence:.2f}" != m.group("num"):
            bad.append(f"{where}: confidence {m.group('num')} is not the field ({confidence})")
    rest = _CONF.sub(" ", rest)
    for m in _DAYS.finditer(rest):
        if int(m.group("num")) not in set(days):
            bad.append(f"{where}: {m.group('num')} days is not a field")
    rest = _DAYS.sub(" ", rest)
    for m in _COUNT.finditer(rest):
        want = (counts or {}).get(m.group("what"))
        if want is None or want != int(m.group("num")):
            bad.append(f"{where}: {m.group('num')} {m.group('what')}(s) but the field says {want}")
    rest = _COUNT.sub(" ", rest)
    if up_ok is not None:
        low = rest.lower()
        if not up_ok and ("uplift" in low or " rise" in low):
            bad.append(f"{where}: speaks of a rise but the change is down")
        if up_ok and (" fell" in low or "drop during" in low):
            bad.append(f"{where}: speaks of a fall but the change is up")
    left = re.findall(r"\d[\d,.]*", rest)
    if left:
        bad.append(f"{where}: number(s) {', '.join(left[:3])} not explained by a field")
    return bad


def _slice(dimension: str, value: str) -> str:
    from .common import _slice_label

    return _slice_label(dimension, value)


def check_episode(ep: dict[str, Any]) -> list[str]:
    signed: dict[str, float | None] = dict(ep.get("kpi_changes") or {})
    t = (ep.get("drivers") or {}).get("top")
    shares = []
    if t:
        signed[_slice(t["dimension"], t["value"])] = t.get("relative_change_pct")
        shares.append(t["share_of_change"])
        if (ep.get("drivers") or {}).get("named_by") == "incidents":  # in-scope changes
            where = _slice(t["dimension"], t["value"])
            signed.update({f"{k} in {where}": v
                           for k, v in (ep.get("scope_changes") or {}).items()})
    if ep.get("trailing_trend_pct") is not None:
        signed["trend"] = ep["trailing_trend_pct"]
    d = ep.get("diagnosis") or {}
    dates = {ep["start"], ep["end"], ep["measured_start"], ep["measured_end"]} | _dates(
        ep.get("calendar")
    )
    lits = (
        [c["name"] for c in ep.get("calendar") or []] + list(ep.get("slices") or []) + list(signed)
        + list(ep.get("kpis") or [])
    )
    common = dict(dates=dates, signed=signed, shares=shares, confidence=d.get("confidence"),
                  days=[ep["days"]], counts={"incident": len(ep["incident_ids"])}, literals=lits)
    eid = ep["episode_id"]
    primary = (ep.get("kpi_changes") or {}).get(ep["primary_kpi"])
    ic = ep.get("incident_change")
    if ic and ic["kpi"] == ep["primary_kpi"]:  # sub-daily: the action follows the title's change
        primary = ic["change_pct"]
    out = check_text(ep["title"], where=f"{eid}.title", **_title_facts(ep, common))
    scoped = f"(?: in {re.escape(_slice(t['dimension'], t['value']))})?" if t else ""
    start = re.escape(ep["primary_kpi"]) + scoped
    if ic:  # or the incident it quotes (a product's price)
        start = f"(?:{start}|{re.escape(ic['kpi'])}(?: in {re.escape(ic['slice'])})?)"
    if not re.match(start + r" (up|down|flat|moved)\b", ep["title"]):
        out.append(f"{eid}.title: does not start with the primary KPI {ep['primary_kpi']}")
    out += check_text(ep["narrative"], where=f"{eid}.narrative", **common)
    for m in _TREND_WORD.finditer(ep["narrative"]):  # "already falling" names the trend's sign
        if not _check_direction({"falling": "down", "rising": "up"}[m.group("word")],
                                ep.get("trailing_trend_pct")):
            out.append(f"{eid}.narrative: 'already {m.group('word')}' but the trend is "
                       f"{_r1(ep.get('trailing_trend_pct'))}%")
    out += check_text(ep["recommended_action"], where=f"{eid}.recommended_action", **common,
                      up_ok=None if primary is None else primary >= 0)
    for i, e in enumerate(d.get("evidence") or []):
        if e["direction"] != ("up" if e["change_pct"] > 0 else "down"):
            out.append(
                f"{eid}.diagnosis.evidence[{i}]: direction {e['direction']} vs {e['change_pct']}"
            )
        if (
            e["slice"] == "overall"
            and e["kpi"] in signed
            and _r1(signed[e["kpi"]]) != _r1(e["change_pct"])
        ):
            out.append(
                f"{eid}.diagnosis.evidence[{i}]: {e['kpi']} {e['change_pct']} vs kpi_changes "
                f"{signed[e['kpi']]}"
            )
    return out


def _title_facts(ep: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    """What an episode's title may cite: its fields, or on sub-daily input the incident change
    it quotes (``incident_change``: its change under the KPI's label, its days and hours)."""
    ic = ep.get("incident_change")
    if not ic:
        return common
    label = ic["kpi"] if ic["slice"] == "overall" else f"{ic['kpi']} in {ic['slice']}"
    hours = [t[11:] for t in (ic.get("start_time"), ic.get("end_time")) if t]
    return {**common, "signed": {**common["signed"], label: ic["change_pct"]},
            "dates": common["dates"] | {ic["start"], ic["end"]},
            "literals": [*common["literals"], label, *hours]}


def check_incident(it: dict[str, Any]) -> list[str]:
    mag = it.get("magnitude_pct")
    mag = it.get("baseline_magnitude_pct") if mag is None else mag
    where = "" if it["dimension"] == "overall" else f" in {_slice(it['dimension'], it['segment'])}"
    signed = {f"{it['kpi']}{where}": mag}
    measured = [it[k] for k in ("measured_start", "measured_end") if it.get(k)]
    if it.get("measured_change_pct") is not None:
        signed["which deviated"] = it["measured_change_pct"]
    lits = (
        [c["name"] for c in it.get("calendar") or []]
        + list(signed)
        + list(it.get("detectors") or [])
        + [it.get("level") or ""]
        # a sub-daily incident's times, as the narrative prints them
        + [t[11:] for t in (it.get("start_time"), it.get("end_time")) if t]
    )
    top = (it.get("drivers") or {}).get("top")
    if top:
        lits.append(_slice(top["dimension"], top["value"]))
    common = dict(dates={it["start"], it["end"], *measured} | _dates(it.get("calendar")),
                  signed=signed,
                  days=[it["days"]], counts={"detector": len(it.get("detectors") or [])},
                  literals=lits)
    out = check_text(it["narrative"], where=f"{it['incident_id']}.narrative", **common)
    if it.get("recommended_action"):
        out += check_text(
            it["recommended_action"],
            where=f"{it['incident_id']}.recommended_action",
            **common,
            up_ok=None if mag is None else mag >= 0,
        )
    return out


def check_summary(summary: dict[str, Any]) -> list[str]:
    rev = next((c for c in summary.get("week_over_week") or [] if c["kpi"] == "revenue"), None)
    if rev is None:
        return check_text(
            summary.get("headline", ""), where="summary.headline", dates=set(), signed={}
        )
    top = (rev.get("drivers") or {}).get("top")
    planned = [c["name"] for k in ("planned_current", "planned_previous") for c in rev.get(k) or []]
    return check_text(
        summary.get("headline", ""),
        where="summary.headline",
        dates=_dates(rev),
        signed={"revenue": rev.get("change_pct")},
        shares=[top["share_of_change"]] if top else [],
        literals=([_slice(top["dimension"], top["value"])] if top else []) + planned,
    )


def check_brief(doc: dict[str, Any]) -> list[str]:
    """The brief's headline is the summary's; its lines cite episodes by id, each checked
    against its episode."""
    brief = doc.get("brief") or {}
    eps = {e["episode_id"]: e for e in doc.get("episodes", [])}
    out = []
    if brief and brief.get("headline", "") != (doc.get("summary") or {}).get("headline", ""):
        out.append("brief.headline: differs from summary.headline")
    for i, item in enumerate(brief.get("top_episodes") or []):
        ep = eps.get(item.get("episode_id"))
        if ep is None:
            out.append(f"brief.top_episodes[{i}]: unknown episode {item.get('episode_id')}")
            continue
        for key in ("title", "recommended_action"):
            if item.get(key) != ep.get(key):
                out.append(f"brief.top_episodes[{i}].{key}: differs from {ep['episode_id']}")
    return out


def check(doc: dict[str, Any]) -> list[str]:
    """Every mismatch between the text of an insights.json document and its fields."""
    out = check_summary(doc.get("summary") or {})
    for ep in doc.get("episodes", []):
        out += check_episode(ep)
    for it in doc.get("incidents", []):
        if "narrative" in it:
            out += check_incident(it)
    out += check_brief(doc)
    return out
