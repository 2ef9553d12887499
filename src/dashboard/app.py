"""The dashboard script (``streamlit run app.py`` runs :func:`main` on every interaction).

Pages come from a registry (name -> render function); the page and the run are also read from and
written to the URL (``?page=kpis&run=<id>``), so a view can be linked to. Roots:
``SHOCKLAB_REPORTS`` (default ``reports``) and ``SHOCKLAB_RUNS`` (default ``runs``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import streamlit as st

from runstore import Run, RunStore, StoreError

from .widgets import fmt


@dataclass
class Context:
    store: RunStore
    run: Run | None


def _pages():
    from .views import compare, customers, episodes, experiments, kpis, overview
    return {
        "overview": ("Overview", overview.render),
        "kpis": ("KPI explorer", kpis.render),
        "episodes": ("Episodes", episodes.render),
        "customers": ("Customers", customers.render),
        "experiments": ("Experiments", experiments.render),
        "compare": ("Compare", compare.render),
    }


def store_from_env() -> RunStore:
    """The run store of SHOCKLAB_REPORTS and SHOCKLAB_RUNS; set empty, a variable is unset (it
    was the current directory)."""
    return RunStore(
        os.environ.get("SHOCKLAB_REPORTS") or "reports", os.environ.get("SHOCKLAB_RUNS") or "runs"
    )


def _run_card(run: Run) -> None:
    s = run.summary()
    st.sidebar.caption(
        f"source **{s['source']}** · {s['period_start'] or '?'} … {s['period_end'] or '?'}"
    )
    sc = run.scorecard()
    if sc is not None:
        cons = (sc.get((sc.get("headline") or {}).get("mode", "strict")) or {}).get(
            "consensus"
        ) or {}
        st.sidebar.markdown(
            f"consensus recall **{fmt(s['recall'])}** · precision **{fmt(s['precision'])}** · "
            f"F1 **{fmt(s['f1'])}** · {cons.get('incidents', '?')} incidents, "
            f"{cons.get('fp', '?')} false alarms"
        )
    elif (run.info().get("data") or {}).get("has_truth") is False:
        st.sidebar.caption("no scorecard (no truth)")
    else:  # data with truth (or unknown): the page's warning names the file
        st.sidebar.caption("no scorecard (`scorecard.json` missing or unreadable)")


def main() -> None:
    st.set_page_config(page_title="ShockLab", layout="wide")
    store = store_from_env()
    pages = _pages()
    keys = list(pages)
    qp = st.query_params
    want = qp.get("page", "overview")
    page = st.sidebar.radio("Page", keys, index=keys.index(want) if want in keys else 0,
                            format_func=lambda k: pages[k][0], key="page")
    run_ids = store.run_ids()
    run = None
    if run_ids and page != "experiments":
        want_run = qp.get("run")
        idx = run_ids.index(want_run) if want_run in run_ids else 0
        rid = st.sidebar.selectbox("Run (reports/)", run_ids, index=idx, key="run")
        try:
            run = store.run(rid)
        except StoreError as exc:
            st.error(exc.message)
            return
        _run_card(run)
        if want_run and want_run not in run_ids:
            # a link to a run that is gone, mistyped or still being written (run_analysis.py
            # writes a hidden directory and renames it when done): say so, not show another
            # run's numbers under the link as if they were that run's
            st.warning(f"No run `{want_run}` under `{store.reports}` (removed, mistyped, or "
                       f"still being written); showing `{rid}`.")
        qp["run"] = rid
    qp["page"] = page
    st.sidebar.caption(f"reports: `{store.reports}` · runs: `{store.runs}`")
    if not run_ids and page != "experiments":
        st.title(pages[page][0])
        st.info(f"No run directories under `{store.reports}`. Create one with "
                "`python generate_data.py && python run_analysis.py`.")
        return
    pages[page][1](Context(store=store, run=run))
