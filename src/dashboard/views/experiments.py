"""Experiments: leaderboard with intervals, detectability curves and the minimum detectable
effect, the gate verdict, failed cells."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from runstore import EXPERIMENT_FILES

from ..charts import detectability_figure, leaderboard_figure
from ..widgets import echo, files_notice, fmt, paginate, root_problem


def render(ctx) -> None:
    store = ctx.store
    st.title("Experiments")
    ids = store.experiment_ids()
    if not ids:
        why = root_problem(store.runs, "SHOCKLAB_RUNS")
        st.info((why + " " if why else f"No experiment directories under `{store.runs}`. ")
                + "Run one with `python run_experiment.py --config "
                "config/experiments/ci_gate.yaml`.")
        return
    want = st.query_params.get("exp")
    exp_id = st.sidebar.selectbox(
        "Experiment (runs/)", ids, index=ids.index(want) if want in ids else 0, key="exp"
    )
    if want and want not in ids:  # a link to an experiment that is gone or still running
        st.warning(f"No experiment `{echo(want)}` under `{store.runs}` (removed, mistyped, or "
                   f"not written yet); showing `{exp_id}`.")
    st.query_params["exp"] = exp_id
    exp = store.experiment(exp_id)
    s = exp.summary()
    st.subheader(f"{s['name'] or exp_id} · {s['kind']}")
    st.caption(
        f"{s['cells'] if s['cells'] is not None else '?'} cells, "
        f"{s['failed'] if s['failed'] is not None else '?'} failed"
        f" · seeds {_seeds(exp.seeds())}"
    )
    files_notice(f"Experiment `{exp_id}`", s["missing"], s["unreadable"], EXPERIMENT_FILES,
                 "rerun run_experiment.py to rewrite it")

    gate = exp.gate()
    if gate is not None:
        (st.success if gate.get("passed") else st.error)(
            f"Gate {'PASSED' if gate.get('passed') else 'FAILED'}"
        )
        st.dataframe(pd.DataFrame(gate.get("checks") or []), hide_index=True, width="stretch")
    elif "gate.json" in s["unreadable"]:  # a verdict exists but cannot be read: never "no gate"
        st.error("Gate verdict unknown: `gate.json` cannot be read "
                 f"({s['unreadable']['gate.json']})")
    else:
        st.caption("No gate checks in this experiment.")

    lb = exp.leaderboard()
    if lb is not None and not lb.empty:
        st.subheader("Leaderboard")
        metrics = [m for m in exp.metrics() if f"{m}.mean" in lb.columns] or \
            sorted({c.rsplit(".", 1)[0] for c in lb.columns if c.endswith(".mean")})
        params = [c for c in lb.columns if c not in ("rank", "setting_id", "n_seeds", "n_failed")
                  and c.rsplit(".", 1)[-1] not in ("mean", "std", "ci_low", "ci_high")]
        view = lb[["rank", "setting_id", *params, "n_seeds", "n_failed"]].copy()
        for m in metrics:
            view[m] = [f"{fmt(a)} [{fmt(lo)}, {fmt(hi)}]" for a, lo, hi in
                       zip(lb[f"{m}.mean"], lb.get(f"{m}.ci_low", lb[f"{m}.mean"]),
                           lb.get(f"{m}.ci_high", lb[f"{m}.mean"]), strict=True)]
        best = lb.iloc[0]
        label = ", ".join(
            f"{c.rsplit('.', 1)[-1]}={'-' if best[c] != best[c] else best[c]}" for c in params
        )
        st.markdown(
            f"**Best setting** ({label or best['setting_id']}): "
            + " · ".join(
                f"{m} **{fmt(best[f'{m}.mean'])}** [{fmt(best.get(f'{m}.ci_low'))}, "
                f"{fmt(best.get(f'{m}.ci_high'))}]"
                for m in metrics
            )
        )
        paginate(view, key="exp_lb")
        if metrics:
            metric = st.selectbox("Metric", metrics, key="exp_metric")
            fig = leaderboard_figure(lb, metric, params)
            if fig is not None:
                st.plotly_chart(fig, width="stretch", key="exp_lb_chart")

    curve = exp.detectability()
    if curve is not None and not curve.empty:
        st.subheader("Detectability")
        st.plotly_chart(detectability_figure(curve), width="stretch", key="exp_det")
        mde = exp.mde()
        if mde is not None:
            st.markdown(
                "**Minimum detectable effect** (recall stays at or above the bar from there on)"
            )
            st.dataframe(mde, hide_index=True, width="stretch")
    elif s["kind"] == "detectability":
        st.warning("Missing `detectability.csv`: no curves to show.")

    cells = exp.cells()
    if cells is not None:
        failed = cells[cells["status"] != "ok"]
        if not failed.empty:
            st.subheader(f"Failed cells ({len(failed)})")
            paginate(failed, key="exp_failed")


def _seeds(seeds: list | None) -> str:
    """1, 2, 5 — or 1–20 for a run of consecutive integers; '?' when unknown."""
    if not seeds:
        return "?"
    if len(seeds) > 2 and all(isinstance(x, int) for x in seeds) and \
            seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))
