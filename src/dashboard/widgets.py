"""Small Streamlit helpers shared by the pages."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from runstore import RUN_FILES, Run

PAGE_SIZE = 25


def fmt(v, digits: int = 3) -> str:
    """A scorecard number as every page prints it (the browser test looks for this text)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def metric_row(items: list[tuple[str, object, str | None]]) -> None:
    """Metrics (label, value, help text) side by side, each as wide as its label and value, wrapping
    onto another row when the page is too narrow for them all: five in ``st.columns(5)`` cut
    "Consensus recall" to "Consensus r…" at a 960 px window and "1.000" to "1.…" in Compare's half
    page (the browser test checks no metric label or value is cut at 960 px)."""
    with st.container(horizontal=True, gap="medium"):
        for label, value, help_ in items:
            st.metric(label, value, help=help_)


def files_notice(what: str, absent: list[str], unreadable: dict[str, str],
                 holds: dict[str, str], rerun: str) -> list[str]:
    """One warning naming the files ``what`` lacks (and what they would hold) and those it cannot
    read (with the reason); return their names."""
    named = [*absent, *unreadable]
    if named:
        lines = "\n".join(
            f"- `{m}` — cannot be read ({unreadable[m]}); {rerun}" if m in unreadable
            else f"- `{m}` — {holds.get(m, '')}" for m in named)
        st.warning(f"{what} is missing {len(named)} file(s) or cannot read them; the parts that "
                   f"need them are not shown:\n{lines}")
    return named


def missing_notice(run: Run, rels: tuple[str, ...] | list[str],
                   if_unreadable: tuple[str, ...] = ()) -> list[str]:
    """Say which of ``rels`` the run lacks or cannot read, and which of ``if_unreadable`` (files
    a page also uses, absent by design in some runs: a scorecard without truth) it cannot read;
    return them."""
    return files_notice(f"Run `{run.id}` (source: {run.source})", run.missing(list(rels)),
                        run.unreadable([*rels, *if_unreadable]), RUN_FILES, "rerun the analysis")


def paginate(df: pd.DataFrame, key: str, page_size: int = PAGE_SIZE, **kwargs) -> pd.DataFrame:
    """Show one page of ``df`` with a page picker; return the shown rows."""
    n = len(df)
    pages = max(1, math.ceil(n / page_size))
    page = 1
    if pages > 1:
        page = int(
            st.number_input(
                f"page (of {pages})",
                min_value=1,
                max_value=pages,
                value=1,
                step=1,
                key=f"{key}_page_{pages}",
            )
        )  # a new widget when the page count changes
    lo, hi = (page - 1) * page_size, min(n, page * page_size)
    shown = df.iloc[lo:hi]
    st.dataframe(shown, width="stretch", hide_index=True, **kwargs)
    st.caption(f"rows {lo + 1 if n else 0}–{hi} of {n:,}")
    return shown


def echo(value: object, limit: int = 80) -> str:
    """A value from a link or a file, as a page quotes it inside backticks: cut at ``limit``
    characters, without backticks or line breaks (a 5,000-character ``?run=`` was echoed whole,
    and a backtick in it ended the code span)."""
    text = " ".join(str(value).replace("`", "'").split())
    return text if len(text) <= limit else text[:limit] + "…"


def root_problem(root, variable: str) -> str | None:
    """Why ``root`` holds nothing to list when it is not a directory (missing, or a file), naming
    the variable that set it; None for a directory."""
    if root.is_dir():
        return None
    what = "run" if variable.endswith("REPORTS") else "experiment"
    if root.exists():
        return (f"No {what} directories: `{root}` ({variable} or "
                f"--{variable.split('_')[-1].lower()}) is not a directory.")
    return f"No {what} directories: `{root}` does not exist (yet)."
