"""Compare: two runs side by side — scorecards, and the events one found and the other missed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from runstore.store import compare_events

from ..widgets import echo, fmt, metric_row

PANEL_MIN_PX = 450


def render(ctx) -> None:
    store = ctx.store
    st.title("Compare runs")
    ids = [r.id for r in store.listed()]
    a_id = ctx.run.id if ctx.run else ids[0]
    others = [i for i in ids if i != a_id]
    if not others:
        st.info("Only one run directory: nothing to compare with.")
        return
    want = st.query_params.get("other")
    scored = [i for i in others if store.run(i).has("scorecard.json")]
    default = others.index(want) if want in others else others.index(scored[0]) if scored else 0
    b_id = st.selectbox("Compare with (run B)", others, index=default,
                        key="cmp_b")
    if want and want not in others:  # a link to a run that is gone, or run A itself
        st.warning(f"No run `{echo(want)}` under `{store.reports}` to compare with "
                   + ("(it is run A); " if want == a_id else
                      "(removed, mistyped, or still being written); ") + f"showing `{b_id}`.")
    st.query_params["other"] = b_id
    a, b = store.run(a_id), store.run(b_id)
    # the two runs side by side while each half is wide enough for its three metrics in one row
    # (3 x Streamlit's 8rem + 2 x metric_row's 2rem = 448 px), one above the other below that: in
    # st.columns(2) at a 960 px window each half was 242 px and the metrics wrapped 2 + 1
    panels = st.grid(2, min_column_width=PANEL_MIN_PX)
    boards = {}
    for label, run in (("A", a), ("B", b)):
        with panels.cell():
            s = run.summary()
            st.subheader(f"{label}: {run.id}")
            st.caption(
                f"source {s['source']} · {s['period_start'] or '?'} … {s['period_end'] or '?'}"
            )
            if not s["has_scorecard"]:
                if why := s["unreadable"].get("scorecard.json"):  # not "no truth": say why
                    st.warning(f"`scorecard.json` cannot be read ({why}); rerun the analysis.")
                else:
                    st.info("No scorecard (no truth).")
                continue
            metric_row([("Recall", fmt(s["recall"]), "Consensus recall (headline mode)"),
                        ("Precision", fmt(s["precision"]), "Consensus precision (headline mode)"),
                        ("F1", fmt(s["f1"]), "Consensus F1 (headline mode)")])
            board = run.scoreboard()
            boards[label] = board
            st.dataframe(
                board[
                    ["entity", "recall", "precision", "f1", "median_delay_days", "incidents", "fp"]
                ],
                hide_index=True,
                width="stretch",
            )
    if len(boards) == 2:
        m = boards["A"].merge(boards["B"], on="entity", suffixes=(" A", " B"))
        if not m.empty:
            st.subheader("Differences (B − A)")
            diff = pd.DataFrame({"entity": m["entity"]})
            for k in ("recall", "precision", "f1"):
                diff[f"{k} A"], diff[f"{k} B"] = m[f"{k} A"], m[f"{k} B"]
                diff[f"Δ {k}"] = (m[f"{k} B"] - m[f"{k} A"]).round(4)
            st.dataframe(diff, hide_index=True, width="stretch")
    ev = compare_events(a, b)
    st.subheader("Events found by one and missed by the other")
    if ev is None:
        st.info("Needs a scorecard in both runs.")
        return
    shared = ev[ev["in_a"] & ev["in_b"]]
    apart = len(ev) - len(shared)
    note = (f" {apart} event(s) are in only one run's truth (the runs analysed different data): "
            "not compared." if apart else "")
    if shared.empty:
        st.info("The runs share no events." + note)
        return
    diff = shared[shared["verdict"].isin(["only A", "only B"])]
    st.markdown(
        f"A found **{int(shared['detected_a'].sum())}**, B found "
        f"**{int(shared['detected_b'].sum())}** of the {len(shared)} unexpected events both runs "
        f"hold; **{len(diff)}** found by only one.{note}"
    )
    cols = ["event_id", "type", "start", "end", "verdict", "detected_a", "detected_b",
            "consensus_delay_a", "consensus_delay_b"]
    st.dataframe((diff if not diff.empty else shared)[cols], hide_index=True, width="stretch")
    if diff.empty:
        st.caption("Both runs found (or missed) the same events; the table shows all of them.")
