"""Episodes: the insight cards (window, magnitude, drivers, signature, narrative, recommended
action, matched event) with filters by severity, KPI and slice."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from ..charts import drivers_figure
from ..widgets import fmt, metric_row, missing_notice

SEVERITIES = ["critical", "high", "medium", "low"]
PER_PAGE = 10
# a severity chip's width in Chromium with Streamlit's font (text, padding, remove button): all
# four in one box took 347 px, three (no "low") 290 px
CHIP_PX = {"critical": 71, "high": 57, "medium": 80, "low": 52}


def render(ctx) -> None:
    run = ctx.run
    st.title("Episodes")
    missing_notice(run, ("insights.json",))
    ins = run.insights()
    if ins is None:
        return
    eps = ins.get("episodes") or []
    st.caption(ins.get("summary", {}).get("headline", ""))
    if not eps:
        st.info(f"No episodes: {ins.get('incidents_total', 0)} consensus incident(s) in this run.")
        return
    sevs = [s for s in SEVERITIES if any(e.get("severity") == s for e in eps)]
    kpis = sorted({k for e in eps for k in _kpis(e)})
    # one wrapping row (as widgets.metric_row): in st.columns([2, 2, 2, 1]) a 960 px window gave
    # each box 131 px, the Severity box showed one of its chips cut to "c…" and the checkbox
    # "Un…"; the Severity box is as wide as its chips, the other two boxes share the rest and
    # move onto another row when that would leave them under Streamlit's 8rem each
    with st.container(horizontal=True, vertical_alignment="bottom"):
        f_sev = st.multiselect("Severity", sevs, default=sevs, key="ep_sev",
                               width=_chips_px(sevs))
        f_kpi = st.multiselect("KPI", kpis, default=[], key="ep_kpi", placeholder="any KPI")
        f_slice = st.text_input("Slice contains", "", key="ep_slice",
                                placeholder="e.g. channel email")
        f_unplanned = st.checkbox("Unplanned only", False, key="ep_unplanned", width="content")
    sel = [e for e in eps if e.get("severity") in f_sev
           and (not f_kpi or set(f_kpi) & set(_kpis(e)))
           and (not f_slice or any(f_slice.lower() in s.lower() for s in _slices(e)))
           and (not f_unplanned or not e.get("planned"))]
    st.markdown(f"**{len(sel)}** of {len(eps)} episodes")
    pages = max(1, math.ceil(len(sel) / PER_PAGE))
    page = (
        int(st.number_input(f"page (of {pages})", 1, pages, 1, key=f"ep_page_{pages}"))
        if pages > 1
        else 1
    )
    for i, e in enumerate(sel[(page - 1) * PER_PAGE: page * PER_PAGE]):
        _card(e, expanded=i == 0, key=f"drv_{(page - 1) * PER_PAGE + i}")


def _chips_px(labels: list[str]) -> int:
    """Width of a multiselect box showing the severities ``labels`` as chips without scrolling
    them (the box scrolls its chips sideways, and cut each to "c…" in a narrow column)."""
    return 80 + sum(CHIP_PX[s] + 4 for s in labels)  # 4 px apart; padding and buttons ~75 px


def _kpis(e: dict) -> list[str]:
    """The incidents' KPIs and the primary KPI the card is titled by (a flash sale's orders, its
    incident on sessions), for the KPI filter."""
    pk = e.get("primary_kpi")
    return [str(k) for k in e.get("kpis") or []] + ([str(pk)] if pk else [])


def _slices(e: dict) -> list[str]:
    """The incidents' slices and the one the episode is measured on (its title's: "channel x
    country direct / US" for incidents on channel direct), for the slice filter."""
    sig = (e.get("signature") or {}).get("slice")
    return [str(s) for s in e.get("slices") or []] + ([str(sig)] if sig else [])


def _pct(v) -> str:
    """A change in percent as the insights write it (+12.3%), or n/a."""
    return "n/a" if v is None or v != v else f"{v:+.1f}%"


def _card(e: dict, expanded: bool = False, key: str = "drv") -> None:
    """One episode's card; ``key`` is its chart's (by position: two episodes of one id, an
    edited file, were a duplicate-key error)."""
    sig = e.get("signature") or {}
    pk = e.get("primary_kpi")
    change = (e.get("kpi_changes") or {}).get(pk)
    # the episode's own headline (insights.json "title"): the change it quotes is the one the
    # episode is about (the slice's, a product's price, a sub-daily incident's hours), where
    # kpi_changes holds the overall whole-day change — -1.1% for a flash sale of +62% in one
    # channel and country, n/a on a --kpis series too short for a baseline
    head = e.get("title") or (f"{e.get('start')} … {e.get('end')} · {pk} {_pct(change)} · "
                              f"{sig.get('label', '?')}")
    title = f"{head} · {e.get('severity')}" + (" · planned" if e.get("planned") else "")
    with st.expander(title, expanded=expanded):
        # a metric shows one line and cuts the rest ("W02, W0…"): several events are counted
        # here and listed in the caption below
        matched = e.get("matched_event_ids") or []
        metric_row([
            ("Window (days)", e.get("days"), None),
            (f"{pk} change, overall", _pct(change),
             f"Overall {pk} (all slices, whole days) over the window; the title quotes the "
             "episode's own slice."),
            ("Confidence", fmt(e.get("confidence"), 2), None),
            ("Matched event" if len(matched) < 2 else "Matched events",
             matched[0] if len(matched) == 1 else f"{len(matched)}" if matched else "none",
             "Events of the run's truth this episode matched (several: listed below)."),
        ])
        st.markdown(e.get("narrative", ""))
        st.info(f"Recommended action: {e.get('recommended_action', '')}")
        st.caption(
            f"KPIs: {', '.join(e.get('kpis') or [])} · slices: {', '.join(e.get('slices') or [])} "
            "· "
            f"incidents: {len(e.get('incident_ids') or [])}"
            + (f" · matched events: {', '.join(matched)}" if len(matched) > 1 else "")
        )
        drv = e.get("drivers") or {}
        fig = drivers_figure(drv.get("drivers") or [], f"drivers of {pk} ({drv.get('scope', '?')})")
        if fig is not None:
            st.plotly_chart(fig, width="stretch", key=key)
        else:
            st.caption(f"No concentrated driver (scope: {drv.get('scope', 'unknown')}).")
        parts = {
            k: sig.get(k) for k in ("traffic_pct", "conversion_pct", "basket_pct", "revenue_pct")
        }
        st.dataframe(
            pd.DataFrame(
                [{"signature": sig.get("label"), "measured on": sig.get("slice"), **parts}]
            ),
            hide_index=True,
            width="stretch",
        )
        changes = e.get("kpi_changes") or {}
        if changes:
            st.dataframe(
                pd.DataFrame([{"kpi": k, "change %": v} for k, v in changes.items()]),
                hide_index=True,
            )
