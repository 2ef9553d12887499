"""The dashboard script (``streamlit run app.py`` runs :func:`main` on every interaction).

Pages come from a registry (name -> render function); the page and the run are also read from and
written to the URL (``?page=kpis&run=<id>``), so a view can be linked to. Roots:
``SHOCKLAB_REPORTS`` (default ``reports``) and ``SHOCKLAB_RUNS`` (default ``runs``); a run's
planned calendar is read from its data directory only inside ``SHOCKLAB_DATA`` (default ``data``;
several joined by ``os.pathsep``), as the API's ``--data-root``.

Whatever a run's files hold, a page shows a message, never a Streamlit traceback: the run store
names a file it cannot read, and :func:`_drawn` catches what slips past it (one error naming the
page and run; the traceback goes to the server log), leaving the sidebar to pick another run.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from runstore import Run, RunStore, StoreError
from runstore.store import RUN_MARKERS, safe_child
from shocklab.errors import first_line

from .widgets import echo, fmt, root_problem

log = logging.getLogger("shocklab.dashboard")


@dataclass
class Context:
    store: RunStore
    run: Run | None
    data_roots: list[Path] = field(default_factory=list)


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


def data_roots_from_env() -> list[Path]:
    """SHOCKLAB_DATA's directories (``os.pathsep`` between them), default ``data``."""
    return [Path(p) for p in (os.environ.get("SHOCKLAB_DATA") or "data").split(os.pathsep) if p]


def _drawn(where: str, fn, *args) -> None:
    """``fn(*args)``; an exception it raises (a bug, or a run file holding something the store
    does not check) becomes one error naming ``where`` — not a traceback in place of the page."""
    try:
        fn(*args)
    except Exception as exc:  # the last line of defence: every exception, logged in full
        log.exception("dashboard: %s failed", where)
        st.error(f"{where} cannot be drawn ({type(exc).__name__}: {echo(first_line(exc), 160)})."
                 " The other runs and pages are not affected; the server log has the details.")


def _unlisted(root: Path) -> list[str]:
    """Directories under ``root`` that look like runs but are not listed: a name that is not a
    plain id (letters, digits, '.', '_', '-'; e.g. spaces or accents) or a link out of the root."""
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []
    out = []
    for p in children:
        if safe_child(root, p.name) is None and (p.is_symlink() or any(
                (p / m).is_file() for m in RUN_MARKERS)):
            out.append(p.name)
    return out


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
    _drawn("The dashboard", _main)


def _main() -> None:
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
        _drawn(f"The summary of run `{rid}`", _run_card, run)
        if want_run and want_run not in run_ids:
            # a link to a run that is gone, mistyped or still being written (run_analysis.py
            # writes a hidden directory and renames it when done): say so, not show another
            # run's numbers under the link as if they were that run's
            st.warning(f"No run `{echo(want_run)}` under `{store.reports}` (removed, mistyped, "
                       f"or still being written); showing `{rid}`.")
        qp["run"] = rid
    qp["page"] = page
    st.sidebar.caption(f"reports: `{store.reports}` · runs: `{store.runs}`")
    if odd := _unlisted(store.reports):
        st.sidebar.caption(
            f"Not listed ({len(odd)}): " + ", ".join(f"`{echo(n, 40)}`" for n in odd[:5])
            + (" …" if len(odd) > 5 else "") + " — a run id is a plain name (letters, digits, "
            "'.', '_', '-') inside the reports root: rename the directory to list it.")
    if not run_ids and page != "experiments":
        st.title(pages[page][0])
        why = root_problem(store.reports, "SHOCKLAB_REPORTS")
        st.info((why + " " if why else f"No run directories under `{store.reports}`. ")
                + "Create one with `python generate_data.py && python run_analysis.py`.")
        return
    where = f"Page {pages[page][0]}" + (f" for run `{run.id}`" if run is not None else "")
    _drawn(where, pages[page][1], Context(store=store, run=run, data_roots=data_roots_from_env()))
