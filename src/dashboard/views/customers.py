"""Customers: segment sizes and movement, RFM scatter, churn risk table with filters, CLV, cohort
heatmap, the At-Risk monitor with its alerts, and the action list with a CSV download."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from runstore.store import VALUE_TIERS
from shocklab.spreadsheet import neutralize_formulas

from ..widgets import PAGE_SIZE, fmt, missing_notice, paginate

SCATTER_MAX = 4000


def render(ctx) -> None:
    run = ctx.run
    st.title("Customers")
    ins = run.insights() or {}
    cust = ins.get("customers") or {}
    table = run.customer_table()
    if table is None:
        why = ("switched off: customers.enabled is false in the run's config"
               if cust.get("enabled") is False else cust.get("status") or run.source)
        # models switched off or skipped (a --kpis run has no orders): their files are absent by
        # design, one note says so; otherwise the warning names the files the run lost
        if (cust.get("enabled") is False or str(cust.get("status") or "").startswith("skipped")
                or not missing_notice(run, ("customers/segments.csv", "customers/actions.csv"))):
            st.info(f"No customer models in this run ({why}).")
        return
    files = ("customers/segments.csv", "customers/actions.csv", "customers/clv.csv",
             "customers/cohort_retention.csv", "customers/monitor_series.csv")
    # insights.json holds the CLV totals and the monitor's note: named when it cannot be read
    missing_notice(run, files, if_unreadable=("insights.json",))
    st.caption(
        f"{len(table):,} customers · as of {cust.get('end_date') or cust.get('as_of') or '?'}"
    )

    st.subheader("Segments")
    sizes = table["segment"].value_counts().rename_axis("segment").reset_index(name="customers")
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(
        px.bar(sizes, x="segment", y="customers", title="segment sizes"),
        width="stretch",
        key="cu_sizes",
    )
    series = run.csv("customers/monitor_series.csv")
    with c2:
        st.markdown("**Movement of the watched segments (At-Risk monitor, 28-day growth)**")
        if series is not None and not series.empty:
            last = series.sort_values("date").groupby("segment").tail(1)
            st.dataframe(_in_pct(last[["segment", "date", "customers", "share", "growth",
                                       "normal_growth", "severity"]]),
                         hide_index=True, width="stretch")
        else:
            st.caption("no monitor series")

    st.subheader("RFM")
    step = max(1, len(table) // SCATTER_MAX)  # every k-th customer: deterministic, no sampling RNG
    sample = table.iloc[::step]
    fig = px.scatter(
        sample,
        x="recency_days",
        y="frequency",
        color="segment",
        size="monetary",
        size_max=18,
        hover_data=["customer_id", "monetary", "churn_risk"],
        log_y=True,
        opacity=0.6,
        title=f"recency × frequency (size: monetary; {len(sample):,} of {len(table):,} customers)",
    )
    # Plotly labels a log axis's in-between ticks with one digit ("2 3 4" above 10 for 20, 30,
    # 40 orders): name every tick in full
    top = pd.to_numeric(sample["frequency"], errors="coerce").max()
    ticks = [m * 10 ** e for e in range(7) for m in (1, 2, 3, 5) if m * 10 ** e <= max(top, 1)]
    fig.update_yaxes(tickvals=ticks, ticktext=[f"{t:,}" for t in ticks])
    st.plotly_chart(fig, width="stretch", key="cu_rfm")

    st.subheader("Churn risk")
    f1, f2, f3 = st.columns(3)
    segs = sorted(table["segment"].dropna().unique().tolist())
    f_seg = f1.multiselect("Segment", segs, default=[], key="cu_seg", placeholder="all segments")
    f_risk = f2.slider("Churn risk", 0.0, 1.0, (0.0, 1.0), 0.05, key="cu_risk")
    tiers = [t for t in VALUE_TIERS if t in set(table["value_tier"])]
    f_tier = f3.multiselect(
        "Value tier (CLV percentile)", tiers, default=[], key="cu_tier", placeholder="all tiers"
    )
    # a customer without a churn risk (too little history for the churn model) is kept while the
    # slider spans every risk; a narrowed range asks for risks, so it leaves them out
    m = (
        table["churn_risk"].between(f_risk[0], f_risk[1])
        | (table["churn_risk"].isna() & (tuple(f_risk) == (0.0, 1.0)))
        if "churn_risk" in table
        else pd.Series(True, index=table.index)
    )
    if f_seg:
        m &= table["segment"].isin(f_seg)
    if f_tier:
        m &= table["value_tier"].isin(f_tier)
    filtered = (
        table[m].sort_values("churn_risk", ascending=False) if "churn_risk" in table else table[m]
    )
    cols = [
        c
        for c in (
            "customer_id",
            "segment",
            "churn_risk",
            "value_tier",
            "clv",
            "p_alive",
            "recency_days",
            "frequency",
            "monetary",
            "cluster",
            "action",
        )
        if c in filtered.columns
    ]
    paginate(filtered[cols], key="cu_churn", page_size=PAGE_SIZE)

    st.subheader("Customer lifetime value")
    clv = cust.get("clv") or {}
    c = st.columns(3)
    c[0].metric("Historical value", _money(clv.get("historical_value_total")))
    c[1].metric(
        f"Predicted value ({clv.get('horizon_days', '?')} d)",
        _money(clv.get("predicted_value_total")),
    )
    # not a metric: its one line cut the model's name ("pareto_nbd+gamm…")
    c[2].markdown(f"**Model**  \n`{clv.get('model') or 'n/a'}`")
    if clv.get("note"):   # a horizon longer than the order history
        st.caption(f"Note: {clv['note']}")
    status = clv.get("status")
    if isinstance(status, str) and status != "ok":  # the model was not fitted: say what was used
        st.warning(f"CLV model not used: {status}.")
    if "clv" in table:
        # binned here: the browser gets 60 bars, not one value per customer
        vals = pd.to_numeric(table["clv"], errors="coerce").dropna().to_numpy()
        if len(vals):
            counts, edges = np.histogram(vals, bins=60)
            fig = go.Figure(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges),
                                   hovertemplate="CLV %{x:,.0f}: %{y:,} customers<extra></extra>"))
            fig.update_layout(title="CLV distribution", yaxis_type="log", xaxis_title="clv",
                              yaxis_title="customers", height=340, margin={"t": 30})
            st.plotly_chart(fig, width="stretch", key="cu_clv")

    st.subheader("Cohort retention")
    coh = run.csv("customers/cohort_retention.csv")
    if coh is not None and not coh.empty:
        mat = coh.set_index("cohort").drop(columns=["cohort_customers"], errors="ignore")
        heat = px.imshow(
            mat.to_numpy(dtype=float),
            x=[str(c) for c in mat.columns],
            y=mat.index.astype(str).tolist(),
            color_continuous_scale="Blues",
            zmin=0,
            zmax=1,
            text_auto=".2f",
            aspect="auto",
            labels={"x": "months since first order", "y": "cohort", "color": "retention"},
        )
        st.plotly_chart(heat, width="stretch", key="cu_cohort")

    st.subheader("At-Risk monitor")
    if series is not None and not series.empty:
        fig = go.Figure()
        for seg, g in series.groupby("segment", sort=True):
            fig.add_trace(go.Scatter(x=g["date"], y=g["share"], mode="lines", name=seg))
            hit = g[g["severity"].notna() & (g["severity"].astype(str) != "")]
            if not hit.empty:
                fig.add_trace(
                    go.Scatter(
                        x=hit["date"],
                        y=hit["share"],
                        mode="markers",
                        name=f"{seg} flagged",
                        marker={"color": "#d62728", "size": 8},
                        customdata=hit[["severity", "z"]].to_numpy(),
                        hovertemplate="%{x}: %{customdata[0]} (z "
                                      "%{customdata[1]:.1f})<extra></extra>",
                    )
                )
        fig.update_layout(height=360, yaxis_title="share of watched customers", margin={"t": 30})
        st.plotly_chart(fig, width="stretch", key="cu_monitor")
    alerts = run.alerts()
    if alerts:
        keys = ("date", "segment", "severity", "growth", "customers", "reason", "alert_id")
        rows = pd.DataFrame([{k: a.get(k) for k in keys} for a in alerts])
        # a Slack send that failed: the alert is issued (cooldown) and waits in the outbox; the
        # table of this run's alerts read as delivered (insights.json names the sinks it waits for)
        waiting = [", ".join(a.get("undelivered_to") or []) for a in alerts]
        if any(waiting):
            rows.insert(len(rows.columns) - 1, "not delivered to", waiting)
            n = sum(map(bool, waiting))
            st.warning(f"{n} alert(s) not delivered yet (a sink failed): the next run retries them "
                       "(`customers.monitor.undelivered` in insights.json)")
        st.dataframe(_in_pct(rows), hide_index=True, width="stretch")
    else:
        mon = ((run.insights() or {}).get("customers") or {}).get("monitor") or {}
        earlier = [a for a in (mon.get("alerts") or []) if isinstance(a, dict)] \
            if isinstance(mon, dict) else []
        if earlier:
            # a re-run of a day already judged (or one whose first run was killed before its
            # directory was written) sends nothing and has no alerts.jsonl, but the day's alerts
            # stand: "No alerts sent" read as a quiet day
            st.caption(f"No alerts sent by this run; {len(earlier)} alert(s) of the judged days "
                       "were issued by an earlier run:")
            keys = ("date", "segment", "severity", "growth", "alert_id")
            st.dataframe(_in_pct(pd.DataFrame([{k: a.get(k) for k in keys} for a in earlier])),
                         hide_index=True, width="stretch")
        else:
            # a monitor that judged no day (a few weeks of data: all warm-up) says so: its
            # silence is not "no churn"
            note = mon.get("note") if isinstance(mon, dict) else None
            st.caption("No alerts sent" + (f" — {note}." if isinstance(note, str) else "."))

    st.subheader("Action list")
    if "action" not in table:  # actions.csv is absent or unreadable: the warning above names it
        st.caption("No action list (`customers/actions.csv`, see the warning at the top).")
        return
    counts = table["action"].value_counts().rename_axis("action").reset_index(name="customers")
    st.dataframe(counts, hide_index=True)
    acts = counts["action"].tolist()
    f_act = st.multiselect(
        "Action", acts, default=[a for a in acts if a != "no action"], key="cu_act"
    )
    al = filtered[filtered["action"].isin(f_act)]
    acols = [
        c
        for c in ("customer_id", "action", "reason", "segment", "churn_risk", "value_tier", "clv")
        if c in al
    ]
    export = al[acols]
    # a callable: the CSV is written when the button is clicked, not on every rerun; made for a
    # spreadsheet, so an id like '=HYPERLINK(…)' is written as text there (shocklab.spreadsheet)
    st.download_button(
        f"Download {len(al):,} actions (CSV)",
        lambda: neutralize_formulas(export).to_csv(index=False).encode(),
        file_name=f"{run.id}-actions.csv",
        mime="text/csv",
        key="cu_download",
    )
    st.caption(
        "The list follows the churn-risk filters above (segment, risk, value tier) and the action "
        "filter."
    )
    paginate(al[acols], key="cu_actions")


def _money(v) -> str:
    """A total in the store's currency, grouped like the page's counts (59,312,108)."""
    return fmt(v, 0) if not isinstance(v, (int, float)) or v != v else f"{v:,.0f}"


PCT_COLUMNS = {"share": "share %", "growth": "28-day growth %", "normal_growth": "normal growth %"}


def _in_pct(df: pd.DataFrame) -> pd.DataFrame:
    """The monitor's fractions in percent, named so (its alerts say "+3.6%"; the tables showed
    0.0361 under "growth")."""
    out = df.copy()
    for col in PCT_COLUMNS:
        if col in out:
            out[col] = (pd.to_numeric(out[col], errors="coerce") * 100).round(1)
    return out.rename(columns=PCT_COLUMNS)
