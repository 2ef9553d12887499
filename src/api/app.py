"""FastAPI service over run directories (``reports/``) and experiments (``runs/``).

    shocklab serve --reports reports/ [--runs runs/] [--port 8000]
                   [--allow-analysis --data-root data/]

Read-only by default; ``POST /runs`` (a background analysis of a data directory) runs only with
``allow_analysis`` (without it: 405 saying how to turn it on). Errors are JSON
``{"error": {"status", "message"}}``: 404 for a missing run or file, 422 for a bad id or parameter,
409 for an analysis already running on that data directory (or a copy of it) or a run folder the
server did not write where the run goes, 500 naming a file that cannot be read, or without any
stack trace (the trace goes to the server log). Size (~530 lines): every route is a closure over
one app's settings, store and jobs in ``create_app``; the models, guards and jobs live apart.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pandas as pd
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from runstore import RUN_FILES, RunStore, shown, valid_id
from runstore.store import VALUE_TIERS, value_tier
from shocklab.errors import InputError
from shocklab.spreadsheet import neutralize_formulas

from . import models as M
from .docs import offline_app
from .guards import ApiError, conform, install, stamped
from .guards import error as _error
from .jobs import JobManager, confine, cut_echoes

log = logging.getLogger("shocklab.api")
VERSION = "0.1.0"
MAX_LIMIT = 1000


@dataclass
class Settings:
    reports: Path = Path("reports")
    runs: Path = Path("runs")
    allow_analysis: bool = False
    data_roots: list[Path] = field(default_factory=lambda: [Path("data")])


ERRORS = {404: {"model": M.ErrorResponse, "description": "run, experiment or file not found"},
          422: {"model": M.ErrorResponse, "description": "invalid id or parameter"},
          500: {"model": M.ErrorResponse, "description": "a file it needs cannot be read (named)"}}


SEVERITIES = ("low", "medium", "high", "critical")


def _known(name: str, value: str | None, valid: list, scope: str = "") -> None:
    """422 naming the valid values (in first-seen order) when ``value`` is not one of them."""
    if value is None:
        return
    known = list(dict.fromkeys(str(v) for v in valid if v is not None and v == v))
    if value not in known:
        raise ApiError(422, f"{name}: unknown {shown(value)}{scope} (known: {', '.join(known)})")


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or Settings()
    store = RunStore(s.reports, s.runs)
    jobs = JobManager(s.reports)
    app = offline_app(  # FastAPI whose /docs loads no CDN (api/docs.py)
        title="ShockLab API",
        version=VERSION,
        description="Runs (scorecards, incidents, insights, KPIs, forecast, customers) and "
        "experiments written by run_analysis.py and run_experiment.py.",
        lifespan=jobs.lifespan,  # its shutdown stops the running analyses (api/jobs.py)
    )
    app.state.settings, app.state.store, app.state.jobs = s, store, jobs

    install(app)  # errors as JSON, never a stack trace; HEAD, Allow, redirects (api/guards.py)

    def run_or_404(run_id: str):
        return store.run(run_id)

    def readable(run_id: str, what: str) -> None:
        """500 naming the file ``what`` and the reason when a read of it failed."""
        bad = store.run(run_id).problem(what, load=False) if what in RUN_FILES else None
        if bad:  # present but truncated or edited: the server's data, not a missing file
            raise ApiError(500, f"run {run_id!r}: {what} cannot be read ({bad}); rerun the "
                                "analysis to rewrite it")

    def need(value, what: str, run_id: str, absent: str = ""):
        """``value``; else 500 when the file ``what`` cannot be parsed, 404 (``absent``: why)."""
        if value is None:
            readable(run_id, what)
            raise ApiError(404, f"run {run_id!r} has no {what}{absent}")
        return value

    def json_file(run, rel: str, absent: str = "") -> Response:
        """A JSON file's own bytes (validated when written), parsed first (once per version): a
        truncated or edited file is a 500 naming it, never a 200 whose body is not JSON."""
        need(run.json(rel), rel, run.id, absent)
        return Response(need(run.raw(rel), rel, run.id, absent), media_type="application/json")

    # --- routes -----------------------------------------------------------------------------------
    @app.get("/health", response_model=M.Health, tags=["service"])
    def health():
        return M.Health(
            version=VERSION,
            runs=len(store.run_ids()),
            experiments=len(store.experiment_ids()),
            analysis_enabled=s.allow_analysis,
        )

    def page_of(items: list, limit: int | None, offset: int, response: Response) -> list:
        """``items[offset:offset + limit]`` (all from ``offset`` without a limit); the whole count
        in ``X-Total-Count``, so a client pages without a second request."""
        response.headers["X-Total-Count"] = str(len(items))
        return items[offset:] if limit is None else items[offset:offset + limit]

    @app.get(
        "/runs",
        response_model=list[M.RunSummary],
        responses=ERRORS,
        tags=["runs"],
        summary="Run directories, newest first (?limit=&offset= for a page; X-Total-Count)",
    )
    def list_runs(
        response: Response,
        limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ):
        # only the page's runs are summarised (each summary reads run.json, insights.json and
        # scorecard.json): a store of thousands of runs answers a page without parsing them all
        return [r.summary() for r in page_of(store.listed(), limit, offset, response)]

    @app.get("/runs/{run_id}", response_model=M.RunDetail, responses=ERRORS, tags=["runs"])
    def get_run(run_id: str):
        run = run_or_404(run_id)
        info = run.info()
        base = f"/runs/{run_id}"
        return {
            **run.summary(),
            "files": {f: run.has(f) for f in RUN_FILES},
            "config": info.get("config"),
            "versions": info.get("versions"),
            "timings_seconds": info.get("timings_seconds"),
            "detector_status": info.get("detector_status"),
            "links": {
                k: f"{base}/{k}"
                for k in (
                    "scorecard",
                    "insights",
                    "incidents",
                    "kpis",
                    "forecast",
                    "customers/segments",
                    "customers/actions",
                )
            },
        }

    @app.get(
        "/runs/{run_id}/scorecard",
        response_model=M.Scorecard,
        responses=ERRORS,
        tags=["runs"],
        summary="Scores against the injected truth (404 for runs without truth)",
    )
    def get_scorecard(run_id: str):
        return json_file(run_or_404(run_id), "scorecard.json", " (no truth to score against)")

    @app.get("/runs/{run_id}/insights", response_model=M.Insights, responses=ERRORS, tags=["runs"],
             summary="insights.json as written (schemas/insights.schema.json)")
    def get_insights(run_id: str):
        return json_file(run_or_404(run_id), "insights.json")

    @app.get(
        "/runs/{run_id}/incidents", response_model=M.IncidentPage, responses=ERRORS, tags=["runs"]
    )
    def get_incidents(
        run_id: str,
        kpi: str | None = None,
        detector: Annotated[
            str | None, Query(description="incidents this detector voted in")
        ] = None,
        level: Annotated[str | None, Query(description="single | pairwise | triple | …")] = None,
        start: Annotated[
            M.Day | None, Query(description="incidents ending on or after this day")
        ] = None,
        end: Annotated[
            M.Day | None, Query(description="incidents starting on or before this day")
        ] = None,
        dimension: str | None = None,
        segment: str | None = None,
        severity: str | None = None,
        source: Annotated[
            str, Query(description="'consensus' or a detector name (its own incidents)")
        ] = "consensus",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ):
        run = run_or_404(run_id)
        need(run.incidents_doc(), "incidents.json", run_id)  # its detectors name the valid sources
        if source != "consensus" and source not in run.detector_names():
            raise ApiError(422, f"source: unknown {shown(source)} "
                                f"(consensus, {', '.join(run.detector_names())})")
        _known("detector", detector, run.detector_names())
        if start and end and start > end:
            raise ApiError(422, f"start {start} is after end {end}")
        _known("severity", severity, list(SEVERITIES))
        items = need(run.incidents(source), "incidents.json", run_id)
        names = run.kpi_names()  # kpis_daily.csv alone when detections.csv cannot be read
        if names:
            _known("kpi", kpi, names + [i.get("kpi") for i in items])
        # a typo is a 422 naming the valid values, never an empty page
        _known("level", level, run.levels() + [i.get("level") for i in items])
        slices = run.slices()
        if slices:
            _known("dimension", dimension, list(slices) + [i.get("dimension") for i in items])
            segs = slices.get(dimension, []) if dimension is not None else [
                s for v in slices.values() for s in v]
            _known("segment", segment,
                   segs + [str(i.get("segment")) for i in items
                           if dimension is None or i.get("dimension") == dimension],
                   f" of {dimension}" if dimension is not None else "")
        s_, e_ = (start.isoformat() if start else None), (end.isoformat() if end else None)
        out = [
            i
            for i in items
            if (kpi is None or i.get("kpi") == kpi)
            and (detector is None or detector in (i.get("detectors") or []))
            and (level is None or i.get("level") == level)
            and (dimension is None or i.get("dimension") == dimension)
            and (segment is None or str(i.get("segment")) == segment)
            and (severity is None or i.get("severity") == severity)
            and (s_ is None or str(i.get("end")) >= s_)
            # a day as end keeps incidents starting later that day (sub-daily timestamps)
            and (e_ is None or str(i.get("start"))[:10] <= e_)
        ]
        return {"total": len(out), "offset": offset, "limit": limit, "source": source,
                "items": [conform(M.Incident, i, run_id, f"incidents.json, incident "
                                  f"{i.get('incident_id')!r}", stamped)
                          for i in out[offset:offset + limit]]}

    @app.get("/runs/{run_id}/kpis", response_model=M.KpiSeries, responses=ERRORS, tags=["runs"])
    def get_kpis(run_id: str, kpi: Annotated[str | None, Query(
                     description="required (without it the 422 names the run's KPIs)")] = None,
                 dimension: str = "overall", segment: str = "all",
                 start: M.Day | None = None, end: M.Day | None = None):
        run = run_or_404(run_id)
        if start and end and start > end:
            raise ApiError(422, f"start {start} is after end {end}")
        names = run.kpi_names()
        need(run.kpis(), "kpis_daily.csv", run_id)
        slices = run.slices()
        if kpi not in names or segment not in slices.get(dimension, ()):
            # product series and price indexes come from detections.csv: when it cannot be read
            # they are not unknown, they are unreadable (a 422 "unknown kpi" was a lie)
            readable(run_id, "detections.csv")
        if kpi is None:
            raise ApiError(422, f"query.kpi: Field required (known: {', '.join(names)})")
        if kpi not in names:
            raise ApiError(422, f"kpi: unknown {shown(kpi)} (known: {', '.join(names)})")
        _known("dimension", dimension, list(slices))
        if (have := run.kpi_dimensions(kpi)) and dimension not in have:  # before the segment:
            raise ApiError(422, f"dimension: {kpi} is not measured per {dimension} (measured on: "
                                f"{', '.join(have)})")   # sessions per category said "segment"
        if segment not in slices[dimension]:
            raise ApiError(422, f"segment: {shown(segment)} is not a segment of {dimension} "
                                f"(known: {', '.join(slices[dimension])})")
        df = run.kpi_series(kpi, dimension, segment, start.isoformat() if start else None,
                            end.isoformat() if end else None)
        vals = df["value"].astype(float)
        # daily runs give days; a sub-daily --kpis run gives timestamps (every point the same type)
        stamps = pd.to_datetime(df["date"].astype(str))
        every = pd.to_datetime(run.kpi_series(kpi, dimension, segment)["date"].astype(str))
        sub_daily = bool((every != every.dt.normalize()).any())   # the run's, not the page's:
        # a 12-hourly run's midnight point came back as a day when the window held no other
        when = [t.to_pydatetime() for t in stamps] if sub_daily else list(stamps.dt.date)
        points = [
            {"date": d, "value": None if v != v else v}
            for d, v in zip(when, vals, strict=True)
        ]
        return {"kpi": kpi, "dimension": dimension, "segment": segment, "points": points}

    @app.get(
        "/runs/{run_id}/forecast",
        response_model=M.Forecast,
        responses=ERRORS,
        tags=["runs"],
        summary="Revenue forecast with its interval (status 'skipped' when the run has no revenue)",
    )
    def get_forecast(run_id: str):
        run = run_or_404(run_id)
        ins = need(run.insights(), "insights.json", run_id)
        return conform(M.Forecast, need(ins.get("forecast"), "forecast", run_id), run_id,
                       "insights.json, forecast")

    def customers_or_404(run, run_id: str) -> dict:
        ins = run.insights() or {}
        cust = ins.get("customers") or {}
        if not cust.get("segments") and not run.has("customers/segments.csv"):
            raise ApiError(404, f"run {run_id!r} has no customer models "
                                f"({cust.get('status') or 'customers/segments.csv missing'})")
        return cust

    @app.get(
        "/runs/{run_id}/customers/segments",
        response_model=M.CustomerSegments,
        responses=ERRORS,
        tags=["customers"],
    )
    def get_segments(run_id: str):
        run = run_or_404(run_id)
        cust = customers_or_404(run, run_id)
        # its clusters, actions and counts: never a 200 with them empty because it was cut short
        readable(run_id, "insights.json")
        counts = cust.get("segments")
        if not counts:
            seg = need(run.csv("customers/segments.csv"), "customers/segments.csv", run_id)
            counts = seg["segment"].value_counts().to_dict()
        alerts = run.alerts()
        readable(run_id, "customers/alerts.jsonl")  # absent: none sent; cut short: named
        total = int(sum(counts.values())) or 1
        segs = [{"segment": k, "customers": int(v), "share": round(int(v) / total, 6)}
                for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        return {"customers": int(cust.get("customers") or sum(counts.values())), "segments": segs,
                "clusters": (cust.get("clusters") or {}).get("sizes") or {},
                "actions": cust.get("actions") or {}, "monitor_alerts": alerts or []}

    @app.get(
        "/runs/{run_id}/customers/actions",
        response_model=M.ActionPage,   # and text/csv with ?format=csv (declared, for clients)
        responses={**ERRORS, 200: {"content": {"text/csv": {}}}},
        tags=["customers"],
        summary="The action list (JSON page, or the whole filtered list as CSV)",
    )
    def get_actions(
        run_id: str,
        action: str | None = None,
        segment: str | None = None,
        value_tier_: Annotated[str | None, Query(alias="value_tier")] = None,
        min_risk: Annotated[float | None, Query(
            ge=0, le=1, allow_inf_nan=False, description="churn risk at least this; customers "
            "whose risk is unknown (no churn model) are left out")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
        format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",  # noqa: A002
    ):
        run = run_or_404(run_id)
        customers_or_404(run, run_id)
        df = need(run.customer_table(), "customers/segments.csv", run_id)
        readable(run_id, "customers/actions.csv")  # never a page of actions all null
        names = run.customer_names()
        _known("action", action, names["actions"] + df.get("action", pd.Series()).tolist())
        _known("segment", segment, names["segments"] + df["segment"].tolist())
        _known("value_tier", value_tier_, list(VALUE_TIERS) + df["value_tier"].tolist())
        m = df["customer_id"].notna()
        if action is not None:
            m &= df.get("action") == action
        if segment is not None:
            m &= df["segment"] == segment
        if value_tier_ is not None:
            m &= (
                df["value_tier"] if "value_tier" in df else value_tier(df["value_pct"])
            ) == value_tier_
        if min_risk is not None and "churn_risk" in df:
            m &= df["churn_risk"] >= min_risk
        cols = [
            c
            for c in (
                "customer_id",
                "action",
                "reason",
                "segment",
                "churn_risk",
                "clv",
                "value_pct",
                "value_tier",
                "recency_days",
                "frequency",
                "monetary",
            )
            if c in df.columns
        ]
        sel = df.loc[m, cols]
        if format == "csv":   # a download for a spreadsheet: no id runs as a formula there
            buf = io.StringIO()
            neutralize_formulas(sel).to_csv(buf, index=False)
            return Response(
                buf.getvalue(),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{run_id}-actions.csv"'},
            )
        page = sel.iloc[offset:offset + limit].astype(object)
        page = page.where(page.notna(), None)
        items = page.to_dict(orient="records")
        for it in items:
            it["customer_id"] = str(it["customer_id"])
        return {"total": int(m.sum()), "offset": offset, "limit": limit, "items": items}

    @app.get("/experiments", response_model=list[M.ExperimentSummary], tags=["experiments"],
             responses=ERRORS,   # its 422 was declared as FastAPI's {"detail": …}, not ours
             summary="Experiment directories, newest first (?limit=&offset=; X-Total-Count)")
    def list_experiments(
        response: Response,
        limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
    ):
        return [e.summary() for e in page_of(store.listed(experiments=True), limit, offset,
                                             response)]

    @app.get(
        "/experiments/{exp_id}",
        response_model=M.ExperimentSummary,
        responses=ERRORS,
        tags=["experiments"],
    )
    def get_experiment(exp_id: str):
        return store.experiment(exp_id).summary()

    # --- background analysis (off unless enabled) -------------------------------------------------
    def status_of(job) -> dict:
        return {
            "run_id": job.run_id,
            "state": job.state,
            "data": job.sent,  # as the request named it, as its 409 and 422 echo it
            "status_url": f"/runs/{job.run_id}/status",
            "run_url": f"/runs/{job.run_id}",
            "started": job.started,
            "finished": job.finished,
            "exit_code": job.exit_code,
            "error": job.error,
        }

    @app.get(
        "/runs/{run_id}/status",
        response_model=M.JobStatus,
        responses=ERRORS,
        tags=["analysis"],
        summary="State of an analysis started with POST /runs",
    )
    def get_status(run_id: str):
        if not valid_id(run_id):
            raise ApiError(422, f"invalid run id {shown(run_id)}")
        job = jobs.get(run_id)
        if job is None:  # jobs live in memory: a restarted server knows none it did not start
            store.run(run_id)   # 404 when there is no such run either
            raise ApiError(404, f"no analysis started for run {run_id!r} by this server since "
                                f"it started; the run itself is at /runs/{run_id}")
        return status_of(job)

    if s.allow_analysis:
        @app.post(
            "/runs",
            status_code=202,
            response_model=M.JobStatus,
            tags=["analysis"],
            responses={
                **ERRORS,
                403: {"model": M.ErrorResponse, "description": "path outside the data roots"},
                409: {
                    "model": M.ErrorResponse,
                    "description": "an analysis of this data is running, or the run's "
                                   "folder holds something no analysis wrote",
                },
                415: {"model": M.ErrorResponse, "description": "a body not sent as JSON"},
            },
            summary="Analyse a data directory in the background",
        )
        def post_run(req: M.AnalysisRequest):
            try:
                data = confine(req.data, s.data_roots)
            except PermissionError as exc:
                raise ApiError(403, str(exc)) from None
            except NotADirectoryError as exc:
                raise ApiError(422, str(exc)) from None
            except FileNotFoundError as exc:
                raise ApiError(404, str(exc)) from None
            try:  # validated first: a bad request is 422 whether or not the data is busy
                rid = jobs.plan(data, req.detectors, req.overrides)
            except InputError as exc:   # a value it echoes is cut, as the GET filters cut theirs
                raise ApiError(422, cut_echoes(str(exc).replace(str(data), req.data), [
                    req.data, *(req.detectors or []), *req.overrides])) from None
            if not _replaceable(s.reports / rid):   # else refused after the 202, with CLI remedies
                raise ApiError(409, f"run {rid}: the server's reports directory holds something "
                                    "of that name that no analysis wrote; it is left as it is "
                                    "(the server's administrator can move it)")
            try:
                job = jobs.start(data, rid, req.detectors, req.overrides, sent=req.data)
            except RuntimeError as exc:
                raise ApiError(
                    409, f"an analysis of {shown(req.data)} is already running: /runs/{exc}/status"
                ) from None
            return JSONResponse(status_of(job), status_code=202)
    else:
        @app.post("/runs", include_in_schema=False)  # not a bare 405: why, and how to turn it on
        def post_run_off():
            r = _error(405, "POST /runs is off: this server is read-only (started without "
                            "--allow-analysis); start it with `shocklab serve --allow-analysis "
                            "--data-root DIR` to analyse the data directories under DIR")
            r.headers["Allow"] = "GET"
            return r

    return app


def _replaceable(target: Path) -> bool:
    """May a run be written at ``target``: not a file or a link, and what the command line may
    replace unforced (``atomic.check_may_replace``)?"""
    from shocklab.atomic import check_may_replace
    try:
        return not (target.is_symlink() or target.exists() and not target.is_dir()) and (
            check_may_replace(target, "run", force=False) is None)
    except InputError:
        return False


def app_from_env() -> FastAPI:
    """``uvicorn --factory api.app:app_from_env``: SHOCKLAB_REPORTS, SHOCKLAB_RUNS (empty: the
    default, not the current directory), SHOCKLAB_ALLOW_ANALYSIS=1, SHOCKLAB_DATA_ROOTS=a:b."""
    import os
    roots = [Path(p) for p in os.environ.get("SHOCKLAB_DATA_ROOTS", "data").split(os.pathsep) if p]
    return create_app(Settings(reports=Path(os.environ.get("SHOCKLAB_REPORTS") or "reports"),
                               runs=Path(os.environ.get("SHOCKLAB_RUNS") or "runs"),
                               allow_analysis=os.environ.get("SHOCKLAB_ALLOW_ANALYSIS") == "1",
                               data_roots=roots))
