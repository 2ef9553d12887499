"""Plotly figures of the dashboard: pure functions of a Run (no Streamlit), so tests can check
what a chart holds without a browser."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from runstore import Run

SYMBOLS = ("circle", "diamond", "square", "triangle-up", "x", "star", "cross", "pentagon")
RATES = ("recall", "precision", "f1")  # metrics between 0 and 1, drawn on a 0–1 axis
DIRECTION_COLOR = {"down": "rgba(214,39,40,0.16)", "up": "rgba(44,160,44,0.16)"}


def kpi_figure(run: Run, kpi: str, dimension: str = "overall", segment: str = "all",
               detectors: list[str] | None = None, show_events: bool = True,
               planned: pd.DataFrame | None = None) -> go.Figure:
    """The KPI series of one slice, the detectors' expected range, each detector's flags (hover:
    score, expected), consensus incidents, true events and planned calendar days (``planned``,
    else ``run.calendar()``: none read from a data directory)."""
    series = run.kpi_series(kpi, dimension, segment)
    fig = go.Figure()
    det = run.detections_for(kpi, dimension, segment)
    if det is not None and detectors is not None:
        det = det[det["detector"].isin(detectors)]
    hover = None
    if det is not None and not det.empty:
        # one hover line per day with every detector's score on the common z-like scale
        scores = det.pivot_table(index="date", columns="detector", values="score", aggfunc="first")
        txt = pd.Series("", index=scores.index)
        for name in scores.columns:
            col = scores[name]
            txt = txt + col.map(lambda v, n=name: f"<br>{n}: {v:.2f}" if pd.notna(v) else "")
        hover = series["date"].map(txt).fillna("")
        exp = det.dropna(subset=["expected"]).pivot_table(
            index="date", columns="detector", values="expected", aggfunc="first"
        )
        if not exp.empty:
            lo, hi = exp.min(axis=1), exp.max(axis=1)
            fig.add_trace(go.Scatter(x=hi.index, y=hi.values, mode="lines", line={"width": 0},
                                     hoverinfo="skip", showlegend=False, name="expected max"))
            fig.add_trace(
                go.Scatter(
                    x=lo.index,
                    y=lo.values,
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor="rgba(31,119,180,0.15)",
                    name="expected (detectors' range)",
                    hoverinfo="skip",
                )
            )
            for name in exp.columns:
                fig.add_trace(
                    go.Scatter(
                        x=exp.index,
                        y=exp[name].values,
                        mode="lines",
                        line={"dash": "dot", "width": 1},
                        name=f"expected · {name}",
                        visible="legendonly",
                    )
                )
    fig.add_trace(
        go.Scatter(
            x=series["date"],
            y=series["value"],
            mode="lines",
            name=kpi,
            line={"color": "#1f77b4", "width": 1.6},
            customdata=hover,
            hovertemplate="%{x}<br>"
            + kpi
            + ": %{y:,.4g}"
            + ("%{customdata}" if hover is not None else "")
            + "<extra></extra>",
        )
    )
    if det is not None and not det.empty:
        flagged = det[det["flag"].astype(str).str.lower() == "true"]
        for i, (name, g) in enumerate(flagged.groupby("detector", sort=True)):
            fig.add_trace(
                go.Scatter(
                    x=g["date"],
                    y=g["actual"],
                    mode="markers",
                    name=f"flag · {name}",
                    marker={"symbol": SYMBOLS[i % len(SYMBOLS)], "size": 9, "line": {"width": 1}},
                    customdata=g[["score", "expected"]].to_numpy(),
                    hovertemplate="%{x}<br>"
                    + name
                    + " score %{customdata[0]:.2f}<br>expected %{customdata[1]:,.4g}"
                    "<extra></extra>",
                )
            )
    # shapes are collected and set once: fig.add_vrect re-validates the whole layout on each call
    shapes: list[dict] = []
    notes: list[dict] = []
    incs = slice_incidents(run, kpi, dimension, segment)[0]
    step = _step(series["date"])
    for inc in incs:
        shapes.append(
            _span(
                inc["start"],
                inc["end"],
                step=step,
                fillcolor=DIRECTION_COLOR.get(inc.get("direction"), "rgba(128,128,128,0.15)"),
            )
        )
    if incs:
        top = series["value"].max() if len(series) else 0
        fig.add_trace(
            go.Scatter(
                x=[i["start"] for i in incs],
                y=[top] * len(incs),
                mode="markers",
                name="consensus incident",
                marker={"symbol": "triangle-down", "size": 11, "color": "#d62728"},
                customdata=[
                    [
                        i["incident_id"],
                        i.get("severity"),
                        i.get("magnitude_pct"),
                        ", ".join(i.get("detectors") or []),
                    ]
                    for i in incs
                ],
                hovertemplate="%{customdata[0]}<br>severity %{customdata[1]} · "
                              "%{customdata[2]:.1f}%<br>"
                "%{customdata[3]}<extra></extra>",
            )
        )
    if show_events:
        ev = run.events()
        if ev is not None:
            for r in ev[~ev["expected"]].itertuples():
                shapes.append(_span(r.start, r.end, fillcolor="rgba(0,0,0,0)", layer="above",
                                    line={"color": "#ff7f0e", "dash": "dash", "width": 1},
                                    step=step))
                notes.append(
                    {
                        "x": r.start,
                        "y": 1,
                        "xref": "x",
                        "yref": "paper",
                        "text": f"{r.event_id} {r.type}",
                        "showarrow": False,
                        "xanchor": "left",
                        "yanchor": "bottom",
                        "font": {"size": 9},
                    }
                )
        for d in sorted(set((run.calendar() if planned is None else planned)["date"])):
            shapes.append(_span(d, d, fillcolor="rgba(127,127,127,0.18)"))
    fig.update_layout(shapes=shapes, annotations=notes)
    fig.update_layout(
        height=460,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        hovermode="closest",
        legend={"orientation": "h", "y": -0.15},
        title=f"{kpi} · {dimension} {segment}",
    )
    return fig


def _span(start: str, end: str, layer: str = "below", line: dict | None = None,
          step: pd.Timedelta | None = None, **kw) -> dict:
    """A full-height band over start..end (inclusive): to the next day when ``end`` is a day, one
    period of the series (``step``) past it when it is a time (sub-daily input: a 20-minute
    incident was shaded to midnight)."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": start,
        "x1": _next_day(end) if len(str(end)) <= 10 else (
            pd.Timestamp(end) + (step or pd.Timedelta(0))).strftime("%Y-%m-%d %H:%M:%S"),
        "y0": 0,
        "y1": 1,
        "layer": layer,
        "line": line or {"width": 0},
        **kw,
    }


def _step(dates: pd.Series) -> pd.Timedelta | None:
    """The series' usual spacing (its median gap), None with fewer than two points."""
    t = pd.to_datetime(pd.Series(dates, dtype=object).astype(str), errors="coerce").dropna()
    gaps = t.sort_values().diff().dropna()
    return gaps.median() if len(gaps) else None


def _next_day(d: str) -> str:
    return (pd.Timestamp(d) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")


def slice_incidents(run: Run, kpi: str, dimension: str,
                    segment: str) -> tuple[list[dict], list[dict]]:
    """The consensus incidents of one slice: those the chart can draw, and those it cannot (an
    edited incidents.json: a start or end that is no date, detectors that are no list, a
    magnitude that is no number) — the KPI explorer names them rather than fail on them."""
    on = [i for i in (run.incidents() or []) if i.get("kpi") == kpi
          and i.get("dimension") == dimension and str(i.get("segment")) == str(segment)]
    good: list[dict] = []
    bad: list[dict] = []
    for i in on:
        (good if _drawable(i) else bad).append(i)
    return good, bad


def _drawable(inc: dict) -> bool:
    def day(v) -> bool:
        try:
            return isinstance(v, str) and bool(datetime.fromisoformat(v[:10]))
        except ValueError:
            return False
    mag = inc.get("magnitude_pct")
    return (day(inc.get("start")) and day(inc.get("end"))
            and isinstance(inc.get("detectors") or [], list)
            and (mag is None or isinstance(mag, (int, float)) and not isinstance(mag, bool)))


def drivers_figure(drivers: list[dict], title: str = "drivers") -> go.Figure | None:
    """Horizontal bars: each driver's contribution to the change, in KPI units."""
    if not drivers:
        return None
    # an edited driver without a field draws a gap, not a KeyError
    df = pd.DataFrame(drivers).reindex(
        columns=["dimension", "value", "change", "actual", "expected", "share_of_change"])
    df["label"] = df["dimension"].astype(str) + " = " + df["value"].astype(str)
    df = df.iloc[::-1]
    colors = ["#d62728" if c < 0 else "#2ca02c" for c in df["change"]]
    fig = go.Figure(
        go.Bar(
            x=df["change"],
            y=df["label"],
            orientation="h",
            marker_color=colors,
            customdata=df[["actual", "expected", "share_of_change"]].to_numpy(),
            hovertemplate="%{y}<br>change %{x:,.4g}<br>actual %{customdata[0]:,.4g} vs expected "
            "%{customdata[1]:,.4g}<br>share of change %{customdata[2]:.0%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=60 + 28 * len(df), margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=title
    )
    return fig


def leaderboard_figure(lb: pd.DataFrame, metric: str, label_cols: list[str]) -> go.Figure | None:
    """Mean of ``metric`` per setting with its bootstrap interval."""
    mean, lo, hi = f"{metric}.mean", f"{metric}.ci_low", f"{metric}.ci_high"
    if mean not in lb.columns:
        return None
    if label_cols:
        labels = [", ".join("-" if pd.isna(v) else str(v) for v in row)
                  for row in lb[label_cols].itertuples(index=False)]
    else:
        labels = lb["setting_id"].astype(str).tolist()
    fig = go.Figure(
        go.Scatter(
            x=labels,
            y=lb[mean],
            mode="markers",
            marker={"size": 10},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (lb[hi] - lb[mean]) if hi in lb else None,
                "arrayminus": (lb[mean] - lb[lo]) if lo in lb else None,
            },
        )
    )
    fig.update_layout(
        height=380,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title=f"{metric} (mean, interval)",
        yaxis_title=metric,
        xaxis_type="category",
    )
    if metric.rsplit(".", 1)[-1] in RATES:  # Plotly's autorange drew a recall of 1 on a 0–2 axis
        fig.update_yaxes(range=[-0.05, 1.05])
    return fig


def detectability_figure(curve: pd.DataFrame) -> go.Figure:
    """Recall vs shock magnitude per entity (detector, consensus, oracle), one line per duration."""
    fig = go.Figure()
    dur = (curve["duration_days"].astype("string").fillna("-") if "duration_days" in curve
           else pd.Series("-", index=curve.index))  # a file without it: one line per entity
    for (etype, d, entity), g in curve.assign(_d=dur).groupby(
        ["event_type", "_d", "entity"], sort=True
    ):
        g = g.sort_values("magnitude")
        name = f"{etype} · {entity}" + ("" if d == "-" else f" · {d} d")
        err = {}
        if {"recall_ci_low", "recall_ci_high"} <= set(g.columns):
            err = {
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": g["recall_ci_high"] - g["recall"],
                    "arrayminus": g["recall"] - g["recall_ci_low"],
                }
            }
        fig.add_trace(
            go.Scatter(x=g["magnitude"], y=g["recall"], mode="lines+markers", name=name, **err)
        )
    fig.update_layout(
        height=420,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        xaxis_title="magnitude",
        yaxis_title="recall",
        yaxis_range=[-0.05, 1.05],
        title="detectability",
    )
    return fig
