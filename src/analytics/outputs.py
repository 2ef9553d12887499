"""The one writer of the run directory (docs/ARCHITECTURE.md "Run directory").

Stages only fill the ``RunContext`` with their artefacts — frames, JSON-ready documents, rendered
figures; ``write_outputs`` turns them into files at the end, inside the temporary directory that
``shocklab.atomic.atomic_dir`` swaps in. How each file is formatted (float digits, rounding, date
format, index) is decided here, once:

- ``kpis_daily.csv``, ``detections.csv``, ``tables/*.csv``  (``output.float_digits`` digits; the
  tables at least ``TABLE_DIGITS``, the other two at least their largest value's integer digits)
- ``incidents.json``, ``scorecard.json``, ``run.json``
- ``insights.json``, ``insights_details.json``, ``insights.md``
- ``customers/``: ``segments.csv``, ``actions.csv``, ``clv.csv`` (the three per-customer tables,
  through ``shocklab.fastcsv``: pandas' bytes, several times faster), ``clusters.csv``,
  ``cohort_retention.csv``, ``monitor_series.csv``, ``churn_metrics.json``, ``truth_scores.json``
- ``plots/*.png`` (rendered by the stages, PNG bytes on ``ctx.figures``)

Not written here: the customer monitor's state (``customers/monitor.sqlite``) and the
``alerts.jsonl`` sink are live stores the monitor updates while it decides (cooldowns, the outbox);
the stage opens them inside the run directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shocklab.fastcsv import write_csv
from shocklab.hashing import canonical_json, json_ready
from shocklab.versions import versions

from .context import Incident, RunContext

log = logging.getLogger("shocklab.analysis")

# customers/<name>.csv as the customers stage leaves them on ctx.customer_tables
CUSTOMER_TABLES = ("clusters", "cohort_retention", "clv", "actions", "segments", "monitor_series")
CUSTOMER_DATE_FORMAT = "%Y-%m-%d"  # customer dates are whole days


# ---------------------------------------------------------------- documents
def incident_record(i: Incident) -> dict[str, Any]:
    """One incident as incidents.json holds it: days, or timestamps when any of its times
    (start, end, confirmed) falls inside a day (sub-daily input)."""
    d = i.to_dict()
    if any(t != t.normalize() for t in (i.start, i.end, i.alarm)):
        d["start"], d["end"] = i.start.isoformat(), i.end.isoformat()
        d["confirmed"] = i.alarm.isoformat()
    return d


def incidents_json(ctx: RunContext) -> dict[str, Any]:
    def dump(incs: list[Incident]) -> list[dict[str, Any]]:
        return [incident_record(i) for i in incs]

    cfg = ctx.config
    return json_ready(
        {
            "schema": "shocklab.incidents/1",
            "rule": cfg.consensus.model_dump(mode="json") | {"voters": list(ctx.voters)},
            "incidents": dump(ctx.incidents),
            "suppressed": {
                "count": len(ctx.suppressed_incidents),
                "incident_ids": sorted(i.incident_id for i in ctx.suppressed_incidents),
            },
            "by_detector": {n: dump(v) for n, v in sorted(ctx.detector_incidents.items())},
            "detector_status": {
                n: {k: v for k, v in st.items() if k != "seconds"}
                for n, st in sorted(ctx.detector_status.items())
            },
        }
    )


def customer_files(tables: dict[str, pd.DataFrame], churn: bool, live: Path | None) -> list[str]:
    """The names of the csv/json/jsonl files ``customers/`` will hold once written: the tables
    and churn metrics of this run, plus what the monitor's live sinks put there (``live``)."""
    names = {f"{n}.csv" for n in tables}
    if churn:
        names.add("churn_metrics.json")
    if live is not None and live.is_dir():
        names |= {p.name for p in live.iterdir() if p.suffix in (".csv", ".json", ".jsonl")}
    return sorted(names)


# ---------------------------------------------------------------- writers
def _csv_fast(df: pd.DataFrame, path: Path, date_format: str | None = None) -> None:
    """``df.to_csv(path, index=False, date_format=...)`` bytes, through pyarrow when they are sure
    to be the same (date-only datetimes, string or numeric cells)."""
    fast = True
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            if date_format is not None and (
                date_format != CUSTOMER_DATE_FORMAT
                or getattr(s.dt, "tz", None) is not None
                or not (s.dropna() == s.dropna().dt.normalize()).all()
            ):
                fast = False
        elif s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in (
            "string",
            "empty",
        ):
            fast = False  # dates or mixed objects: pandas' own rendering
    if fast:
        write_csv(df, path)
    else:
        df.to_csv(path, index=False, lineterminator="\n", date_format=date_format)


def _customer_parts(ctx: RunContext, root: Path) -> list[tuple[str, Any]]:
    """``customers/`` as (name, write) parts, the three big per-customer tables apart (writing
    them in any order, or in two processes, gives the same files)."""
    out = root / "customers"
    t = ctx.customer_tables

    def rest() -> None:
        if t or ctx.customers and ctx.customers.get("churn") is not None:
            out.mkdir(parents=True, exist_ok=True)
        if "clusters" in t:
            t["clusters"].to_csv(out / "clusters.csv", index=False)
        if (ctx.customers or {}).get("churn") is not None:
            (out / "churn_metrics.json").write_text(
                canonical_json(json_ready(ctx.customers["churn"])), encoding="utf-8"
            )
        if "cohort_retention" in t:
            t["cohort_retention"].round(4).to_csv(out / "cohort_retention.csv")
        if "monitor_series" in t:
            t["monitor_series"].to_csv(
                out / "monitor_series.csv", index=False, date_format=CUSTOMER_DATE_FORMAT
            )
        if ctx.customer_scores is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "truth_scores.json").write_text(
                canonical_json(ctx.customer_scores), encoding="utf-8"
            )

    def clv() -> None:
        out.mkdir(parents=True, exist_ok=True)
        _csv_fast(t["clv"].round(4).rename_axis("customer_id").reset_index(), out / "clv.csv")

    def actions() -> None:
        out.mkdir(parents=True, exist_ok=True)
        _csv_fast(t["actions"], out / "actions.csv")

    def segments() -> None:
        out.mkdir(parents=True, exist_ok=True)
        seg = t["segments"]
        num = seg.select_dtypes("number").columns
        _csv_fast(
            seg.assign(**{c: seg[c].round(4) for c in num}),
            out / "segments.csv",
            date_format=CUSTOMER_DATE_FORMAT,
        )

    big = [(n, fn) for n, fn in (("segments", segments), ("actions", actions), ("clv", clv))
           if n in t]
    return [*big, ("rest", rest)]


def _write_customers(ctx: RunContext, root: Path) -> None:
    for _, write in _customer_parts(ctx, root):
        write()


def _write_insights(ctx: RunContext, root: Path) -> None:
    if ctx.insights is None:
        return
    (root / "insights.json").write_text(
        canonical_json(ctx.insights, indent=None), encoding="utf-8"
    )
    if ctx.insights_details is not None:  # the document names its details file
        (root / ctx.insights["details_file"]).write_text(
            canonical_json(ctx.insights_details, indent=None), encoding="utf-8"
        )
    if ctx.insights_markdown is not None:
        (root / "insights.md").write_text(ctx.insights_markdown, encoding="utf-8")


def _write_calendar(ctx: RunContext, root: Path) -> None:
    """A ``--kpis --calendar`` run's planned days (one row per day, the data directory's layout):
    the dashboard and the API read them like a store run's data directory calendar. Store runs
    keep theirs in the data directory."""
    cal = ctx.data.tables.get("marketing_calendar") if ctx.data.source == "kpis" else None
    if cal is not None:
        cal.assign(date=cal["date"].dt.strftime("%Y-%m-%d")).to_csv(
            root / "marketing_calendar.csv", index=False)


def _write_figures(ctx: RunContext, root: Path) -> None:
    for rel, png in sorted(ctx.figures.items()):
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        except OSError as exc:  # plots are a convenience: one that cannot be written is logged
            log.warning("plot %s not written: %s", rel, exc)


def write_artefacts(ctx: RunContext) -> None:
    """The files of the later stages (insights, customers, plots) into ``ctx.out_dir``: part of
    ``write_outputs``; tests of one stage call it alone."""
    out = Path(ctx.out_dir)
    _write_insights(ctx, out)
    _write_customers(ctx, out)
    _write_figures(ctx, out)


def _write_chain_tables(ctx: RunContext, out: Path) -> None:
    """kpis_daily.csv, detections.csv, tables/*.csv."""
    _write_kpi_tables(ctx, out)
    _write_detections(ctx, out)


TABLE_DIGITS = 10   # significant digits at least in tables/*.csv


def _float_format(ctx: RunContext, df: pd.DataFrame | None = None) -> str:
    """``output.float_digits`` significant digits — or, where a value of ``df`` has more integer
    digits than that, as many as it has: at 6 digits a big store's 1,234,567 sessions a day were
    written 1.23457e+06 (read back 1,234,570, not a count of the store)."""
    digits = ctx.config.output.float_digits
    if df is not None and len(df):
        top = 0.0
        for col in df.columns[[pd.api.types.is_float_dtype(t) for t in df.dtypes]]:
            v = np.abs(df[col].to_numpy(dtype=float, na_value=np.nan))
            v = v[np.isfinite(v)]
            top = max(top, float(v.max())) if v.size else top
        if top >= 1:
            digits = max(digits, min(17, int(np.floor(np.log10(top))) + 1))
    return f"%.{digits}g"


# pyarrow's writer, the same bytes as to_csv(index=False, float_format=fmt, lineterminator="\n")
def _write_kpi_tables(ctx: RunContext, out: Path) -> None:
    """kpis_daily.csv, tables/*.csv."""
    fmt = _float_format(ctx, ctx.kpis_daily)
    write_csv(ctx.kpis_daily, out / "kpis_daily.csv", float_format=fmt)
    tables = ctx.kpi_tables
    if tables:
        # the analyst's summary tables hold totals in the millions: at 6 significant digits they
        # came out as 1.521e+07 (4 digits shown); at least 10 keeps every total below 1e10 in
        # plain digits (they are a few rows: no cost)
        tfmt = f"%.{max(ctx.config.output.float_digits, TABLE_DIGITS)}g"
        (out / "tables").mkdir(exist_ok=True)
        for name, df in sorted(tables.items()):
            write_csv(df, out / "tables" / f"{name}.csv", float_format=tfmt)


def _write_detections(ctx: RunContext, out: Path) -> None:
    if ctx.config.output.write_detections and ctx.detections is not None:
        write_csv(ctx.detections, out / "detections.csv",
                  float_format=_float_format(ctx, ctx.detections))


def _write_incidents(ctx: RunContext, out: Path) -> None:
    (out / "incidents.json").write_text(canonical_json(incidents_json(ctx)), encoding="utf-8")


# files write_tables may write ahead (their inputs are final once the customers branch is
# merged: no later stage changes the KPIs, detections, incidents or customer tables)
AHEAD = ("tables", "customers", "incidents")


def table_jobs(ctx: RunContext) -> list[tuple[str, Callable[[RunContext], None]]]:
    """``write_tables`` as independent (timing name, ``fn(ctx)``) jobs, the biggest files first:
    the stage scheduler spreads them over two processes (each writes its files into
    ``ctx.out_dir``; together they write what ``write_tables`` writes). Empty when there is
    nothing to write ahead."""
    if ctx.kpis_daily is None:  # nothing to write ahead: write_outputs decides
        return []

    def part(name: str) -> Callable[[RunContext], None]:
        def run(c: RunContext) -> None:
            dict(_customer_parts(c, Path(c.out_dir)))[name]()
        return run

    names = [n for n, _ in _customer_parts(ctx, Path(ctx.out_dir))]
    jobs = [(f"outputs.customers.{n}", part(n)) for n in names if n != "rest"]
    jobs += [("outputs.detections", lambda c: _write_detections(c, Path(c.out_dir))),
             ("outputs.kpis_daily", lambda c: _write_kpi_tables(c, Path(c.out_dir))),
             ("outputs.customers.rest", part("rest")),
             ("outputs.incidents", lambda c: _write_incidents(c, Path(c.out_dir)))]
    return jobs


def write_tables(ctx: RunContext) -> None:
    """The run directory's tables — ``kpis_daily.csv``, ``detections.csv``, ``tables/``,
    ``customers/``, ``incidents.json`` — written ahead of ``write_outputs``, which then skips them
    (``ctx.written``, see ``mark_written``); the bytes are those ``write_outputs`` would write.
    (The stage scheduler runs ``table_jobs`` instead, spread over two processes.)"""
    jobs = table_jobs(ctx)
    for _, fn in jobs:
        fn(ctx)
    if jobs:
        mark_written(ctx)


def mark_written(ctx: RunContext) -> None:
    """Record that every job of ``table_jobs`` has run: ``write_outputs`` skips those files."""
    ctx.written = [*ctx.written, *AHEAD]


def write_outputs(ctx: RunContext, extra: dict[str, Any] | None = None) -> None:
    """Write every output of the run into ``ctx.out_dir`` (bytes depend only on the inputs,
    except run.json's timings; ``timings_seconds.outputs`` is this writer's own time), except
    what ``write_tables`` wrote ahead."""
    t0 = time.perf_counter()
    cfg = ctx.config
    out = Path(ctx.out_dir)
    if "tables" not in ctx.written:
        _write_chain_tables(ctx, out)
    if "incidents" not in ctx.written:
        _write_incidents(ctx, out)
    if ctx.scorecard is not None:
        (out / "scorecard.json").write_text(
            canonical_json(json_ready(ctx.scorecard)), encoding="utf-8"
        )
    _write_insights(ctx, out)
    if "customers" not in ctx.written:
        _write_customers(ctx, out)
    _write_figures(ctx, out)
    _write_calendar(ctx, out)
    ctx.timings["outputs"] = round(time.perf_counter() - t0, 3)
    run_info = {
        "schema": "shocklab.run/1",
        "config": cfg.model_dump(mode="json"),
        "data": {
            "path": str(ctx.data.path) if ctx.data.path else None,
            "source": ctx.data.source,
            "has_truth": ctx.has_truth,
        },
        "versions": versions(),
        "detector_status": ctx.detector_status,
        "timings_seconds": ctx.timings,
        **(extra or {}),
    }
    (out / "run.json").write_text(canonical_json(json_ready(run_info)), encoding="utf-8")


__all__ = [
    "AHEAD", "CUSTOMER_TABLES", "customer_files", "incidents_json", "mark_written",
    "table_jobs", "write_artefacts", "write_outputs", "write_tables",
]
