"""The customers stage of an analysis run: ``run(ctx)``.

Reads ``ctx.data`` (simulated or transactions); leaves the per-customer and aggregate tables on
``ctx.customer_tables`` and the plots on ``ctx.figures`` (``analytics.outputs`` writes them into
``customers/`` and ``plots/``), and sets ``ctx.customers`` (a JSON-ready summary for insights.json).
The monitor's live state (``customers/monitor.sqlite``, ``alerts.jsonl``) is opened in place.
No truth is read here: the fitted models' predictions stay on ``ctx.customer_models`` for the
evaluation stage ``customer_scoring`` (churn and CLV truth scores, churn-wave alert delays); the
monitor plot shades the churn waves of ``ctx.event_windows``.

Opt-in (``SHOCKLAB_CUSTOMERS_BESIDE=1``), with a spare core (``schedule.spare_core``: two usable
cores, outside the forked worker, where the detection chain has the other core; so in order,
``SHOCKLAB_PARALLEL=0``): CLV and then the monitor (replay or ``--as-of`` day) run on one thread
beside the other models from the moment the orders are prepared (``_Beside``). They read only the
valid orders (the monitor writes only its own state), and their results enter the summary and the
tables where they always did, so every output is the same either way. Off by default: it costs
60-110 MB of peak memory (two models' temporaries at once; the in-order run then peaks at ~1.0 GB)
and CPU (GIL hand-offs, +0.1-0.2 s); on a quiet machine it takes the in-order stage 3.29 -> 2.81 s
(``bench/bench_profile.py --sequential`` runs both). run.json:
``customers.clv`` / ``customers.monitor`` are their own durations (overlapping the rest when on
the thread), ``customers.clv_wait`` / ``customers.monitor_wait`` how long the stage waited for
them (in order: the same).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from shocklab.hashing import json_ready
from shocklab.seeding import derive_int_seed

from ..alerts import (
    ConsoleSink,
    Dispatcher,
    JsonlSink,
    LinkedOutbox,
    SlackSink,
    default_state_dir,
)
from ..context import DataSet, RunContext
from ..outputs import customer_files
from ..schedule import release_memory, spare_core
from . import actions, churn, clusters, clv, cohorts, monitor, plots, rfm, segments
from .config import CustomersConfig
from .store import DeliveryStore, MonitorStore

if TYPE_CHECKING:
    from ..config import AnalysisConfig

log = logging.getLogger("shocklab.customers")

# daily monitoring must remember cooldowns between runs (a replay is self-contained): its state
# sits with the alert outbox, in ``default_state_dir()`` (``state/`` or ``SHOCKLAB_STATE_DIR``)
DAILY_STATE = "customers.sqlite"


def namespace_of(ctx: RunContext) -> str:
    """Which data set the monitor state belongs to (one SQLite file can serve several):
    ``customers.monitor.namespace`` when set, else derived from the data."""
    return _namespace(ctx.config.customers, ctx.data)


def _namespace(cfg: CustomersConfig, data: DataSet) -> str:
    named = cfg.monitor.namespace
    if named:
        return named
    m = data.manifest or {}
    if data.source == "transactions":
        return f"transactions:{Path(str(data.path)).name}"
    if m.get("scenario") is not None:  # the config hash keeps edited scenarios apart
        return f"{m.get('scenario')}:{m.get('seed')}:{str(m.get('config_sha256', ''))[:12]}"
    return f"{data.source}:{Path(str(data.path)).name if data.path else 'data'}"


def _state_file(cfg: CustomersConfig, daily: bool, out: Path) -> Path:
    """The monitor's SQLite file: ``monitor.state_path`` when set; a daily (``--as-of``) run's
    beside the alert outbox, which outlives the run; a replay's in the run directory."""
    if cfg.monitor.state_path:
        return Path(cfg.monitor.state_path)
    return default_state_dir() / DAILY_STATE if daily else out / "monitor.sqlite"


def check_daily_state(config: AnalysisConfig, data: DataSet, as_of: str) -> None:
    """Before the analysis of an ``--as-of`` run (``run_analysis.py``, with the other --as-of
    checks): the monitor state it will judge the day in holds no damaged value and has not judged
    a later day for this data set (``monitor.check_order``). Both were found only after the
    customer models were fitted (their warnings printed before the error); the monitor checks
    them again where it reads the state. A state not created yet has nothing to check: it is
    not created here."""
    cfg = config.customers
    if not (cfg.enabled and cfg.monitor.enabled and "orders" in data.tables):
        return
    state = _state_file(cfg, True, Path("."))
    if not state.is_file():
        return
    ns = _namespace(cfg, data)
    with MonitorStore(state) as store:
        store.verify(ns)
        monitor.check_order(store, ns, as_of)


def _named_by_file(ctx: RunContext) -> bool:
    """Whether ``namespace_of`` took the namespace from the data's file or directory name
    (which another store's export may share), not from a name or a simulated world."""
    if ctx.config.customers.monitor.namespace or not ctx.data.path:
        return False
    return ctx.data.source == "transactions" or (ctx.data.manifest or {}).get("scenario") is None


def _dispatcher(
    cfg: CustomersConfig, out: Path, store: MonitorStore, persistent: bool
) -> Dispatcher:
    """Sinks plus the outbox of the durable ones (Slack, a ``jsonl_path`` outside the run dir).
    The outbox must outlive the run directory: the monitor's own file when it is persistent
    (``--as-of`` or ``monitor.state_path``), otherwise ``state/alerts.sqlite``."""
    a = cfg.alerts
    sinks: list[Any] = []
    if a.jsonl:  # inside the run directory it is this run's record, not a delivery
        sinks.append(JsonlSink(a.jsonl_path or out / "alerts.jsonl", durable=bool(a.jsonl_path)))
    if a.console:
        sinks.append(ConsoleSink(log))
    if a.slack.enabled and not os.environ.get(a.slack.url_env):
        # no webhook to send to: skip the sink (nothing queued for it), say so once, run on
        log.warning("Slack alerts skipped: customers.alerts.slack.enabled is true but the "
                    "environment variable %s is not set", a.slack.url_env)
    elif a.slack.enabled:
        sinks.append(
            SlackSink(a.slack.url_env, a.slack.timeout_s, a.slack.retries, a.slack.backoff_s)
        )
    if not any(getattr(s, "durable", True) for s in sinks):
        return Dispatcher(sinks)
    # a replay's outbox and the daily monitor's are two files: each also counts what the other
    # delivered (a replay after daily runs re-sent every alert they had delivered)
    replay_box, daily_box = default_state_dir() / "alerts.sqlite", default_state_dir() / DAILY_STATE
    main = store if persistent else DeliveryStore(replay_box)
    return Dispatcher(sinks, outbox=LinkedOutbox(main, replay_box if persistent else daily_box))


def run(ctx: RunContext) -> None:
    """Run every customer model on ``ctx.data`` and record files and the summary."""
    # the models are small; OpenMP/BLAS threads on shared cores cost more than they give
    with threadpool_limits(limits=1):
        _run(ctx)


def _run(ctx: RunContext) -> None:
    t0 = time.perf_counter()
    cfg = ctx.config.customers
    if not cfg.enabled:
        ctx.customers = {"enabled": False}
        return
    if "orders" not in ctx.data.tables:  # e.g. --kpis input: there are no customers to model
        ctx.customers = {"enabled": True, "status": "skipped: the input has no orders table"}
        return
    seed = cfg.seed or ctx.config.seed   # customers.seed when set (0 = the top-level seed)
    out = Path(ctx.out_dir) / "customers"
    orders = ctx.data.tables["orders"]
    as_of = ctx.as_of
    if as_of is not None:  # daily mode: every model sees the data as it was that morning
        as_of = pd.Timestamp(as_of).normalize()
        orders = orders[pd.to_datetime(orders["order_date"]) <= as_of]
    valid = rfm.valid_orders(orders)
    if len(valid) == 0:
        # every order cancelled (a store with basket.cancel_rate 1, a file of cancellations):
        # no customer to model. It was exit 2 at the end of the whole analysis ('orders: no
        # completed orders … to compute RFM on'), naming no setting; the store's KPIs, the
        # detection and the scoring stand without the customer models.
        why = "no completed order" + ("" if as_of is None else f" on or before {as_of.date()}")
        log.warning("customers: %s (every order is cancelled): customer models skipped", why)
        ctx.customers = {"enabled": True, "status": f"skipped: {why}"}
        return
    out.mkdir(parents=True, exist_ok=True)
    end = (rfm.data_end_date(orders, ctx.data.tables.get("website_traffic")) if as_of is None
           else as_of)
    summary: dict[str, Any] = {
        "enabled": True,
        "source": ctx.data.source,
        "end_date": end.date().isoformat(),
        "as_of": None if as_of is None else as_of.date().isoformat(),
    }
    if (ctx.data.manifest or {}).get("cleaning") is not None:  # transactions: what cleaning removed
        summary["cleaning"] = ctx.data.manifest["cleaning"]
    timings: dict[str, float] = {}
    # CLV and the monitor read only the valid orders: from here they run beside the other models
    # (one thread, CLV first: it is needed first), their results taken where they always were
    beside = _Beside()
    try:
        clv_job = beside.submit(_timed, clv.run_clv, valid, end, cfg.clv) if cfg.clv.enabled \
            else None
        mon_job = beside.submit(_monitor, ctx, orders, valid, end, as_of, out) \
            if cfg.monitor.enabled else None
        _models(ctx, cfg, seed, valid, end, out, summary, timings, clv_job, mon_job)
    finally:
        beside.close()
    # timings go to run.json only: insights.json must be byte-identical across identical runs
    ctx.timings.update({f"customers.{k}": v for k, v in timings.items()})
    ctx.customers = json_ready(summary)
    ctx.timings["customers"] = round(time.perf_counter() - t0, 3)


def _models(ctx: RunContext, cfg: CustomersConfig, seed: int, valid: pd.DataFrame,
            end: pd.Timestamp, out: Path, summary: dict[str, Any], timings: dict[str, float],
            clv_job: _Job | None, mon_job: _Job | None) -> None:
    """The models, the results of CLV and the monitor (``clv_job``, ``mon_job``, computed
    beside) and the plots, in the summary's order."""

    def tick(name: str, t: float) -> float:
        release_memory()  # each model's freed temporaries handed back before the next one's
        now = time.perf_counter()
        timings[name] = round(now - t, 3)
        return now

    t = time.perf_counter()
    scores = rfm.compute_rfm(valid, as_of=end, cfg=cfg.rfm)
    table = segments.segment_table(scores, cfg.rfm)
    counts = segments.segment_counts(table["segment"], cfg.rfm)
    summary["customers"] = int(len(table))
    summary["segments"] = counts
    if not rfm.recency_informative(scores["recency_days"].to_numpy(), cfg.rfm):
        rec = scores["recency_days"]
        summary["recency_note"] = (
            f"recency not scored: last orders span {int(rec.max() - rec.min())} day(s), fewer "
            f"than customers.rfm.recency_min_span_days ({cfg.rfm.recency_min_span_days}); every "
            f"customer has R = {rfm.NEUTRAL_R}")
        log.warning("customers: %s", summary["recency_note"])
    t = tick("rfm", t)

    if cfg.clusters.enabled and len(table) >= 3:
        cl = clusters.fit_clusters(
            table, cfg.clusters, random_state=derive_int_seed(seed, "customers.kmeans")
        )
        table = _attach(table, cl.labels.to_frame())
        ctx.customer_tables["clusters"] = cl.centroids
        summary["clusters"] = {
            "k": cl.k,
            "silhouette": {str(k): v for k, v in cl.silhouette.items()},
            "sizes": dict(zip(cl.centroids["cluster"], cl.centroids["customers"], strict=True)),
        }
        t = tick("clusters", t)
    if "cluster" not in table:  # too few customers, or off: the column stays
        table["cluster"] = np.nan

    ch = None
    if cfg.churn.enabled:
        ch = churn.run_churn(valid, end, cfg.churn, seed)
        summary["churn"] = {"status": ch.status, **ch.summary}
        if ch.risk is not None:
            table = _attach(table, ch.risk.to_frame())
        t = tick("churn", t)
        if ch.eval_customers is not None:  # scored against truth by customer_scoring
            ctx.customer_models["churn"] = {"customers": ch.eval_customers, "eval_p": ch.eval_p,
                                            "end": end}
    if "churn_risk" not in table:
        table["churn_risk"] = np.nan

    if cfg.cohorts.enabled:
        matrix, sizes = cohorts.retention_matrix(valid, cfg.cohorts.max_months, end)
        matrix.insert(0, "cohort_customers", sizes)
        ctx.customer_tables["cohort_retention"] = matrix
        summary["cohorts"] = {"cohorts": int(len(matrix)),
                              "mean_retention_month_1": _mean(matrix.get(1)),
                              "mean_retention_month_3": _mean(matrix.get(3)),
                              "mean_retention_month_6": _mean(matrix.get(6))}
        t = tick("cohorts", t)

    if clv_job is not None:
        res, timings["clv"] = clv_job.result()
        timings["clv_wait"] = round(time.perf_counter() - t, 3)
        ctx.customer_tables["clv"] = res.table
        summary["clv"] = res.summary
        cols = ["value_pct"] + [c for c in ("clv", "p_alive", "clv_source") if c in res.table]
        table = _attach(table, res.table[cols])
        t = time.perf_counter()
        # scored against truth by the evaluation stage customer_scoring
        # (src/evaluation/customer_scores.py)
        ctx.customer_models["clv"] = {"table": res.table, "end": end, "config": cfg.clv}
    if "value_pct" not in table:
        table["value_pct"] = table["monetary"].rank(pct=True)
    for c in ("clv", "p_alive", "clv_source"):  # CLV off: the documented columns, empty
        if c not in table:
            table[c] = np.nan

    acts = actions.assign_actions(table, cfg.actions)
    ctx.customer_tables["actions"] = acts
    summary["actions"] = {a: int(n) for a, n in acts["action"].value_counts().sort_index().items()}
    t = tick("actions", t)

    ctx.customer_tables["segments"] = table

    mon: monitor.MonitorResult | None = None
    if mon_job is not None:  # the monitor ran beside the models since the start: its results here
        t_wait = time.perf_counter()
        (mon, mon_summary), timings["monitor"] = mon_job.result()
        if mon is not None:
            ctx.customer_tables["monitor_series"] = mon.series
            summary["monitor"] = mon_summary
        timings["monitor_wait"] = round(time.perf_counter() - t_wait, 3)
        t = time.perf_counter()

    if cfg.plots:
        try:
            waves = [{"start": w.start, "end": w.end}
                     for w in ctx.event_windows if w.type == "churn_wave"]
            ctx.figures.update(_plots(table, counts, ctx.customer_tables.get("cohort_retention"),
                                      ch, mon, waves))
        except Exception as exc:  # plots are a convenience: never fail the run for one
            log.warning("customer plots failed: %s: %s", type(exc).__name__, exc)
        t = tick("plots", t)

    # what customers/ will hold once analytics.outputs has written it (alerts.jsonl is live)
    summary["files"] = customer_files(ctx.customer_tables, "churn" in summary, out)


def _monitor(ctx: RunContext, orders: pd.DataFrame, valid: pd.DataFrame, end: pd.Timestamp,
             as_of: pd.Timestamp | None, out: Path
             ) -> tuple[tuple[monitor.MonitorResult | None, dict[str, Any] | None], float]:
    """The monitor (replay, or one day with ``--as-of``): ((its result, its summary for
    insights.json), its seconds). Reads only the valid orders and the config; writes only its
    own state (``customers/monitor.sqlite``, ``alerts.jsonl``, the outbox), so it runs beside the
    models (``_Beside``); its SQLite connections are opened and closed in the thread that uses
    them."""
    t0 = time.perf_counter()
    cfg = ctx.config.customers
    mon: monitor.MonitorResult | None = None
    mon_summary: dict[str, Any] | None = None
    state = _state_file(cfg, as_of is not None, out)
    persistent = bool(cfg.monitor.state_path) or as_of is not None
    # a run directory's own monitor file is this run's record: no fsync per transaction
    with MonitorStore(state, durable=persistent) as store:
        ns = namespace_of(ctx)
        if persistent:  # a damaged value is refused before anything is written: file unchanged
            store.verify(ns)
        disp = _dispatcher(cfg, out, store, persistent=persistent)
        if persistent and _named_by_file(ctx):  # two shops' exports of one name: one state
            source = str(Path(str(ctx.data.path)).resolve())
            before = store.claim_source(ns, source)
            if before is not None:
                log.warning(
                    "%s: monitor namespace %r was last used for %s and now for %s: if they are "
                    "two stores, they share incidents, cooldowns and alerts (one's alert is taken "
                    "for the other's ongoing incident and not sent); name each one with --set "
                    "customers.monitor.namespace=NAME (a file that moved: ignore this, said once)",
                    state, ns, before, source)
        if as_of is not None:
            mon = monitor.daily(valid, as_of, cfg.monitor, cfg.rfm, store, disp, ns)
            mode = "daily"
        elif cfg.monitor.replay:
            mon = monitor.replay(
                valid,
                cfg.monitor,
                cfg.rfm,
                store,
                disp,
                ns,
                start=pd.Timestamp(pd.to_datetime(orders["order_date"]).min()),
                end=end,
            )
            mode = "replay"
        if mon is not None:
            pending = disp.pending(ns)   # this store's only
            # per alert, the sinks it still waits for (a failed Slack send: issued, pending)
            waiting: dict[str, list[str]] = {}
            for sink_name, alert, _n, _err in pending:
                waiting.setdefault(alert.get("alert_id", ""), []).append(sink_name)
            mon_summary = {
                "mode": mode,
                "namespace": ns,
                "state": _shown(state, Path(ctx.out_dir)),
                "segments": list(cfg.monitor.segments),
                "flagged_days": len(mon.decisions),
                # the days it could alert on: a silent monitor on a few weeks of data (all
                # warm-up) is not a store without churn
                "judged_days": len(mon.judged),
                "judged_from": mon.judged[0].date().isoformat() if len(mon.judged) else None,
                "alerts": [
                    {
                        k: a[k]
                        for k in (
                            "alert_id",
                            "date",
                            "segment",
                            "severity",
                            "incident_id",
                            "growth",
                            "escalated",
                            "sent_this_run",  # False: sent by an earlier run (already_sent)
                        )
                    }
                    | {"undelivered_to": sorted(waiting.get(a["alert_id"], []))}
                    for a in mon.alerts
                ],
                "decisions": {
                    d: sum(1 for x in mon.decisions if x["decision"] == d)
                    for d in ("sent", "already_sent", "cooldown", "ongoing")
                },
                "undelivered": len(pending),
                # earlier runs' undelivered alerts this run's retry delivered (a run that
                # delivered one said nothing of it; the alert's own run said "undelivered")
                "delivered_late": mon.delivered_late,
            }
            if not len(mon.judged):
                sc = cfg.monitor.shortfall
                mon_summary["note"] = (
                    "no day judged: the monitor alerts once a baseline of its segments' shares "
                    f"exists, from about day {sc.window_days + sc.baseline_days} of the data "
                    "(window + baseline of the repeat-order shortfall); "
                    + ("the --as-of day is earlier" if as_of is not None
                       else "the data is shorter") + ", so a churn wave here is not alerted")
            if disp.skipped:  # logged, not in the outputs: they stay byte-identical across reruns
                log.info("%d alert send(s) skipped: delivered by an earlier run", disp.skipped)
        if disp.outbox is not None and disp.outbox is not store:
            disp.outbox.close()
    return (mon, mon_summary), round(time.perf_counter() - t0, 3)


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(``fn(*args)``, its seconds)."""
    t0 = time.perf_counter()
    return fn(*args), round(time.perf_counter() - t0, 3)


class _Job:
    """One function given to ``_Beside``: ``result()`` returns its value or raises its
    exception (run here and now when there is no thread)."""

    def __init__(self, future: Future[Any] | None, fn: Callable[..., Any], args: tuple) -> None:
        self._future, self._fn, self._args = future, fn, args

    def result(self) -> Any:
        return self._fn(*self._args) if self._future is None else self._future.result()


class _Beside:
    """One thread for the models that read only the valid orders (CLV, the monitor), when it is
    asked for (``SHOCKLAB_CUSTOMERS_BESIDE=1``) and a core is spare (``schedule.spare_core``);
    jobs run in submission order. Their work is numpy (and scipy's optimizer over numpy) on
    arrays of their own, which releases the GIL, so it can overlap the other models. Otherwise
    (the default) each job runs where its result is asked for, as in order. ``close`` waits for
    the thread: a failing stage must not leave the monitor writing into the run directory."""

    def __init__(self) -> None:
        on = (os.environ.get("SHOCKLAB_CUSTOMERS_BESIDE", "0").strip().lower()
              in ("1", "true", "yes", "on")) and spare_core()   # as SHOCKLAB_PARALLEL reads
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="customers-beside") \
            if on else None

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Job:
        return _Job(None if self._pool is None else self._pool.submit(fn, *args), fn, args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _attach(table: pd.DataFrame, per_customer: pd.DataFrame) -> pd.DataFrame:
    """``table.merge(per_customer.rename_axis("customer_id").reset_index(), on="customer_id",
    how="left")``: the per-customer frames of the models list the same customers in the same
    (sorted id) order as the table, so their columns are set side by side without a hash join
    on the string ids; any other frame is merged."""
    if pd.Index(table["customer_id"]).equals(per_customer.index):
        table = table.copy(deep=False)
        for c in per_customer.columns:
            table[c] = per_customer[c].array
        return table
    return table.merge(
        per_customer.rename_axis("customer_id").reset_index(), on="customer_id", how="left"
    )


def _shown(path: Path, run_dir: Path) -> str:
    """A path for the summary: relative to the run directory when inside it (runs compare equal)."""
    try:
        return str(path.relative_to(run_dir))
    except ValueError:
        return str(path)


def _mean(col: pd.Series | None) -> float | None:
    if col is None or col.notna().sum() == 0:
        return None
    return float(col.mean())


def _plots(table: pd.DataFrame, counts: dict[str, int], cohorts: pd.DataFrame | None,
           ch: churn.ChurnResult | None, mon: monitor.MonitorResult | None,
           waves: list[dict[str, Any]]) -> dict[str, bytes]:
    """The customer plots as ``{"plots/<name>.png": PNG bytes}``."""
    figs = {
        "customers_segments.png": plots.segment_sizes(counts),
        "customers_rfm_scatter.png": plots.rfm_scatter(table),
    }
    if cohorts is not None:  # as written: rounded to 4 digits
        figs["customers_cohorts.png"] = plots.cohort_heatmap(
            cohorts.round(4).drop(columns="cohort_customers")
        )
    if ch is not None and ch.roc:
        aucs = {k: v["roc_auc"] for k, v in ch.summary["models"].items()}
        figs["customers_churn_roc.png"] = plots.churn_roc(ch.roc, aucs)
    if ch is not None and ch.reliability:
        figs["customers_churn_reliability.png"] = plots.reliability_curve(
            {f"churn risk ({ch.summary['horizon_days']}-day label)": ch.reliability},  # was
            # always "60-day", also where a short file shortens the horizon
            "Churn risk calibration (out of time, held-out half)",
        )
    if mon is not None and len(mon.series):
        figs["customers_monitor.png"] = plots.monitor_trend(mon.series, mon.alerts, waves)
    return {f"plots/{k}": v for k, v in figs.items()}
