"""Overview: the scorecard (per detector, consensus level, event type; the oracle line), the
run's config, data hash and files."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from runstore import RUN_FILES

from ..widgets import fmt, metric_row, missing_notice


def render(ctx) -> None:
    run = ctx.run
    info = run.info()
    s = run.summary()
    st.title(f"Overview · {run.id}")
    st.caption(
        f"source **{s['source']}** · scenario {s['scenario'] or '-'} · {s['period_start'] or '?'} "
        "… "
        f"{s['period_end'] or '?'} · data hash `{(s['data_hash'] or 'n/a')[:16]}`"
    )
    sc = run.scorecard()
    # data without truth (real transactions or series, generated data without truth/) has no
    # scorecard by design: one note saying so, not also a warning listing scorecard.json as missing
    no_truth = (info.get("data") or {}).get("has_truth") is False and not run.has("scorecard.json")
    missing_notice(run, ("run.json",) if no_truth else ("run.json", "scorecard.json"))
    incidents = f"{s['incidents'] if s['incidents'] is not None else 'n/a'} consensus incident(s)"
    if no_truth:
        st.info(f"No scorecard: this run ({s['source']}) has no truth to score against. "
                f"{incidents}.")
    elif sc is None:  # the warning above names scorecard.json (missing or unreadable)
        st.caption(f"{incidents}; no scores without a readable `scorecard.json`.")
    else:
        head = sc.get("headline") or {}
        mode = st.radio("Scoring mode", ["strict", "lenient"], horizontal=True, key="ov_mode",
                        index=0 if head.get("mode", "strict") == "strict" else 1)
        cons = (sc.get(mode) or {}).get("consensus") or {}
        ev = sc.get("events") or {}
        metric_row([
            ("Consensus recall", fmt(cons.get("recall")),
             "Unexpected events matched by a consensus incident / unexpected events."),
            ("Precision", fmt(cons.get("precision")),
             "Consensus incidents matching an unexpected event / all consensus incidents."),
            ("F1", fmt(cons.get("f1")), "Harmonic mean of recall and precision."),
            ("Median delay (days)", fmt(cons.get("median_delay_days"), 1),
             "First matching incident's start − the event's start, median over found events."),
            ("Unexpected events", ev.get("unexpected", "?"),
             "Injected shocks the detectors should find (the recall's denominator)."),
            ("Expected events", ev.get("expected", "?"),
             "Planned days (holidays, campaigns): an incident on one is a false alarm."),
        ])
        oe = (sc.get(mode) or {}).get("oracle_equal_fp") or {}
        if oe.get("oracle_recall") is not None:
            st.markdown(
                f"**Oracle line:** oracle recall at {oe.get('fp_budget')} FP: "
                f"**{fmt(oe.get('oracle_recall'))}** "
                f"(consensus / oracle = {fmt(oe.get('ratio'))}"
                + (f"; at 0 FP {fmt(oe['oracle_recall_at_zero_fp'])}"   # absent in older runs
                   if oe.get("oracle_recall_at_zero_fp") is not None else "") + ")"
            )
            # why the consensus found an event the bound did not (evaluation/bound_check.py)
            detail = oe.get("consensus_only_detail")
            for d in detail if isinstance(detail, list) else []:
                if not isinstance(d, dict):
                    continue
                why = ("at or above the bound's cut: the bound lost it, trace it"
                       if d.get("seen_at_cut") is True
                       else "below the bound's cut: luck a bound in expectation allows")
                fam = d.get("family")
                cut = (f"its cut {fmt(d.get('cut'), 2)} on {fam}" if d.get("cut") is not None
                       else f"nothing taken on {fam}" if fam else "no point starting a stretch")
                st.caption(f"Found by the consensus alone: {d.get('event_id')} — the oracle's "
                           f"best {fmt(d.get('oracle_score'), 2)}, {cut}; {why}.")
        elif ev.get("unexpected") == 0:  # a world without shocks: no recall to compare
            st.caption("No oracle line (no unexpected event to find: every incident is a false "
                       "alarm).")
        else:
            st.caption("No oracle line (the oracle needs simulated truth).")
        st.subheader("Per detector and consensus level")
        board = run.scoreboard(mode)
        st.dataframe(board, width="stretch", hide_index=True)
        st.subheader("Recall per event type")
        bt = run.by_type(mode)
        if bt is not None and not bt.empty:
            st.dataframe(bt, width="stretch", hide_index=True)
        else:  # an empty table under the heading said nothing
            st.caption("No unexpected event in this run's truth: no recall per type.")
        events = run.events()
        if events is not None:
            st.subheader("Events and who found them (delay in days)")
            st.dataframe(events, width="stretch", hide_index=True)
        ins = sc.get("insights") or {}
        if ins.get("events"):
            st.caption(
                f"insights on {ins['events']} matched events: root cause "
                f"{fmt(ins.get('root_cause_accuracy'), 2)} · "
                f"KPI attribution {fmt(ins.get('kpi_attribution'), 2)} · signature "
                f"{fmt(ins.get('signature_accuracy'), 2)} · median magnitude error "
                f"{fmt(ins.get('magnitude_error_median'), 2)}"
            )
    st.subheader("Run")
    c1, c2 = st.columns(2)
    with c1:
        status = info.get("detector_status") or {}
        if status:
            st.markdown("**Detectors**")
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "detector": k,
                            "ok": v.get("ok"),
                            "votes": v.get("votes"),
                            "mode": v.get("mode"),
                            "seconds": v.get("seconds"),
                            "error": v.get("error"),
                        }
                        for k, v in sorted(status.items())
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
        st.markdown("**Files**")
        st.dataframe(
            pd.DataFrame(
                [{"file": f, "present": run.has(f), "holds": d} for f, d in RUN_FILES.items()]
            ),
            hide_index=True,
            width="stretch",
        )
    with c2:
        st.markdown(f"data hash `{info.get('data_hash', 'n/a')}`")
        if info.get("versions"):
            st.markdown(
                "versions: " + " · ".join(f"{k} {v}" for k, v in sorted(info["versions"].items()))
            )
        if info.get("timings_seconds"):
            st.markdown(
                "timings (s): "
                + " · ".join(f"{k} {v}" for k, v in info["timings_seconds"].items() if "." not in k)
            )
        with st.expander("Analysis config used (run.json)"):
            st.json(info.get("config") or {}, expanded=False)
