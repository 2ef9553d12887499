"""KPI explorer: any KPI × dimension × segment with the detectors' expected range, flags
(hover: scores), consensus incidents, true events and the planned calendar."""

from __future__ import annotations

import streamlit as st

from ..charts import kpi_figure, slice_incidents
from ..widgets import echo, missing_notice, paginate

LOADING = "Loading run `{run}`'s KPI series and detections (kpis_daily.csv, detections.csv)…"
# why a whole KPI can be empty, by the run's source
NONE_WHY = {"transactions": " (a --transactions file has no visits: no sessions, no conversion)"}


def render(ctx) -> None:
    run = ctx.run
    st.title("KPI explorer")
    # the first view of a run reads and joins its KPI table and detections (detections.csv is
    # 66 MB on the default run: over a second with no sign of life); later views come from
    # runstore's cache and end before the spinner shows (it waits half a second)
    with st.spinner(LOADING.format(run=run.id)):
        files = ("kpis_daily.csv", "detections.csv", "incidents.json")
        run.unreadable(files)  # parses them, as the notice below would
        names, slices = run.kpi_names(), run.slices()
    # the chart also draws the true events (scorecard.json) and reads run.json: a run without
    # truth lacks a scorecard by design, so those two are named only when they cannot be read
    missing_notice(run, files, if_unreadable=("run.json", "scorecard.json"))
    if not names:
        st.info("No KPI table in this run.")
        return
    c1, c2, c3 = st.columns(3)
    default_kpi = "revenue" if "revenue" in names else names[0]
    kpi = c1.selectbox("KPI", names, index=names.index(default_kpi), key="kpi_kpi")
    dims = list(slices)
    dim = c2.selectbox("Dimension", dims, key="kpi_dim")
    seg = c3.selectbox("Segment", slices[dim], key="kpi_seg")
    dets = run.detector_names()
    chosen = st.multiselect("Detectors", dets, default=dets, key="kpi_dets") if dets else None
    planned, why = run.planned_days(ctx.data_roots)
    fig = kpi_figure(run, kpi, dim, seg, chosen, planned=planned)
    if run.kpi_series(kpi, dim, seg)["value"].notna().sum() == 0:
        # not every KPI is measured on every dimension (no sessions per category, only orders
        # and prices per product): say so rather than draw an empty chart
        have = run.kpi_dimensions(kpi)
        st.info(f"No `{kpi}` values on {dim} {seg}: " + (
            f"`{kpi}` is measured on {', '.join(have)}." if have else
            f"this run has none on any slice{NONE_WHY.get(run.source, '')}."))
    st.plotly_chart(fig, width="stretch", key="kpi_chart")
    st.caption(
        "Blue band: the range of the detectors' expected values. Markers: each detector's flags "
        "(hover for the score on the common z-like scale). Shaded: consensus incidents (red down, "
        "green up); dashed orange: true events; grey: planned calendar days."
        + (f" Planned days: from the scorecard's expected events — {why}" if why else "")
        + (" (`shocklab dashboard --data-root DIR` or SHOCKLAB_DATA sets the data roots)."
           if why and "data roots" in why else
           "." if why else "")
    )
    det = run.detections_for(kpi, dim, seg)
    if det is not None:
        flagged = det[det["flag"].astype(str).str.lower() == "true"]
        if chosen is not None:
            flagged = flagged[flagged["detector"].isin(chosen)]
        # one row per detector and flagged point: count both (on a sub-daily series a point is
        # a period, not a day)
        points = flagged["date"].nunique()
        unit = "days" if det["date"].astype(str).str.len().max() <= 10 else "periods"
        st.subheader(f"Flags ({len(flagged)} on {points} {unit})")
        paginate(flagged.drop(columns=["kpi", "dimension", "segment"]), key="kpi_flags")
    incs, bad = slice_incidents(run, kpi, dim, seg)
    st.subheader(f"Consensus incidents on this slice ({len(incs) + len(bad)})")
    if bad:
        ids = ", ".join(f"`{echo(i.get('incident_id'), 60)}`" for i in bad[:5])
        st.warning(f"{len(bad)} incident(s) of `incidents.json` not drawn nor listed: a start or "
                   f"end that is no date, detectors that are no list or a magnitude that is no "
                   f"number (an edited file; rerun the analysis): {ids}"
                   + (" …" if len(bad) > 5 else ""))
    if incs:
        import pandas as pd

        cols = [
            "incident_id",
            "start",
            "end",
            "confirmed",
            "direction",
            "magnitude_pct",
            "severity",
            "level",
            "detectors",
            "matched_event_id",
        ]
        df = pd.DataFrame(incs)
        df["detectors"] = df["detectors"].map(lambda d: ", ".join(d or []))
        paginate(df[[c for c in cols if c in df.columns]], key="kpi_incs")
