"""Run the analysis stages as a small graph on two processes (the stage scheduler).

Size (~850 lines): one scheduler — the fork, the two job lists, the merge and the worker — whose
parts share the context's snapshot and claims; split, each half would be read only with the other.

The customers branch (``customers``, ``customer_scoring``) reads only ``ctx.data``, the config,
``ctx.as_of`` and the run directory, never what the detection chain computes; the detection chain
(``kpis → detect → consensus → score``) reads nothing of the branch. The first stage after the
branch in the list (``insights``: ``ctx.customers`` goes into insights.json) needs both. So, with
two usable cores, ``run_stages`` forks a worker for the branch before the first stage, runs the
chain in this process, draws the plots that need only the chain's results one at a time while the
worker still runs (``report.early``), then waits for the worker and merges what the branch put on
the context. After the join a second forked process (the side worker) runs beside the first
remaining stage (insights) a shared list of jobs: each early plot not drawn yet and
``outputs.table_jobs`` (the run directory's tables, final by then, one job per big file). This
process builds what insights shares (``prepare``: the slice panel) after that fork, runs
insights, the plots that need only the insights (``report.mid_jobs``) and the ``beside`` stages
(insight scoring's event windows, which read the panel), then takes the jobs still left; each job
runs once, in the process that claims it first (``_Claims``), so the two finish together. No
later stage reads the side worker's plots or tables: the rest runs in order without waiting for
it, and its context changes are merged at the end. (A first stage without ``prepare`` leaves the
``beside`` stages to the shared list too, and the later stages wait for the merge.)

Same bytes as the sequential order: the branch leaves its tables and plots on the context (only
the monitor's live state, ``customers/monitor.sqlite`` and ``alerts.jsonl``, is written by the
worker itself, into the same run directory; ``analytics.outputs`` writes the rest), and the merge
is by field, independent of timing: fields the branch replaced (``ctx.customers``) are copied; of
the dict fields, the entries it added or replaced (``customer_models``, ``customer_tables``,
``figures``, its ``timings``, ``scorecard["customers"]``) are merged into this process's dicts.
(tests/analytics/test_schedule.py compares every output file of a parallel and a sequential run.)

Memory: the worker is a ``fork`` of this process, so the loaded tables are shared copy-on-write
(``gc.freeze`` before the fork, and until the worker has ended, keeps the collector from
touching, and so copying, their pages); a tree's memory is the sum of the processes' PSS, not of
their RSS (``bench/bench_profile.py``).

Ahead of the join: the worker needs no KPIs or watched series, so it ends its branch before this
process ends the chain; it then takes jobs from a second shared list: first the chain's deferred
work (a ``before`` stage's ``defer(ctx)``, asked before the fork: ``stage_detect`` leaves the
isolation forest to it, ``analytics.detect_ahead``), then the ``ahead`` work of a stage after the
join (``_ahead_jobs``; ``stage_insights.ahead``: the revenue forecast, into ``ctx.ahead``). What
they read and this process computes after the fork (the stage marked ``hands_over``: kpis) is
handed over to the worker (``_Handoff``, a few MB). When this process reaches the join point it
takes the jobs the worker has not started and runs them at once (``_take_back``). With deferred
work, before the first chain stage that reads it (marked ``needs_deferred``: consensus; the
oracle before it reads nothing of it), this process takes the worker's records as it writes them
(one per ahead job; a byte on a pipe says one is there: ``_Worker.take``) until the deferred
jobs' are in, the deferring stage's ``settle`` puts them in place (the detections and statuses as
in order), and the chain goes on while the worker still does its later ahead work (the
forecast); the branch's part of the scorecard waits until score has run (``_merge``'s
``held``). The join then comes after the chain, as described above.

``SHOCKLAB_PARALLEL=0`` runs every stage in order in this process; so does a platform without
``fork``, a single usable core, or a stage list without the branch (sweeps). ``=1`` forks even on
one core; ``SHOCKLAB_PARALLEL_SIDE=0`` keeps the side worker's work in this process, in order.
Timings: every job is timed under its own name (``outputs.<file>``, ``report.beside.<plot>``,
``report.mid``), whichever process ran it.
``ctx.timings["parallel.wait"]`` / ``["parallel.wait_deferred"]`` / ``["parallel.wait_side"]``
are how long this process waited.
Both processes hand their freed heap back after each stage (``malloc_trim``): the run's peak is
the sum of the two processes' memory. The two stages whose peaks meet (this process's oracle, the
worker's customer scoring) run with glibc mapping each block of 1 MB or more on its own
(``mallopt``): their freed arrays leave the RSS at once instead of staying in the heap until the
stage's trim (``_trimmed``).
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import io
import logging
import os
import pickle
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from shocklab.children import die_with_parent, usable_cores

from .context import RunContext

log = logging.getLogger("shocklab.analysis")

Stage = Callable[[RunContext], None]
RunOne = Callable[[RunContext, str, Stage], None]

# stages that read only ctx.data, config, as_of, out_dir and write only their own files and fields
BRANCH = ("customers", "customer_scoring")


_IN_WORKER = False  # set in a forked worker (``_Worker._child``)


def spare_core() -> bool:
    """May a stage run a thread of its own beside its main work? Only with two usable cores and
    outside a forked worker (there the parent's stages use the other core): in order
    (``SHOCKLAB_PARALLEL=0``), or in the parent."""
    return not _IN_WORKER and usable_cores() >= 2


def parallel_enabled() -> bool:
    """SHOCKLAB_PARALLEL: 0/off → never; 1/on → always (where fork exists); unset/auto → with at
    least two usable cores."""
    v = os.environ.get("SHOCKLAB_PARALLEL", "auto").strip().lower()
    if v in ("0", "false", "no", "off") or not hasattr(os, "fork"):
        return False
    if v in ("1", "true", "yes", "on"):
        return True
    return usable_cores() >= 2


def run_stages(ctx: RunContext, stages: Sequence[tuple[str, Stage]], run_one: RunOne) -> RunContext:
    """Run ``stages`` (``run_one(ctx, name, fn)`` each), the customers branch in a forked worker
    when ``parallel_enabled()``; the result on ``ctx`` is the same as running them in order."""
    stages = list(stages)
    names = [n for n, _ in stages]
    first = next((i for i, n in enumerate(names) if n in BRANCH), None)
    if first is None or not parallel_enabled():
        for name, fn in stages:
            _in_order(ctx, name, fn, run_one)
        return ctx
    branch = [s for s in stages if s[0] in BRANCH]
    last = max(i for i, n in enumerate(names) if n in BRANCH)
    before = [s for s in stages[:first] if s[0] not in BRANCH]  # run while the worker runs
    # stages listed between the branch's stages, and after it, come after the join
    after = [s for s in stages[first:] if s[0] not in BRANCH]
    _preload(names)
    lean = _trimmed(run_one)  # two processes at once: the peak of their sum is the run's peak
    # the chain's deferred work (stage_detect's isolation forest): asked for before the fork;
    # the join comes before the first stage that reads it (``needs_deferred``: consensus)
    deferred = [job for _, fn in before for job in getattr(fn, "defer", lambda c: [])(ctx)]
    cut = next((i for i, (_, fn) in enumerate(before) if getattr(fn, "needs_deferred", False)),
               len(before)) if deferred else len(before)
    ahead = [*deferred, *_ahead_jobs(after)]
    claims = _Claims(len(ahead)) if ahead else None
    handoff = _Handoff() if ahead else None
    try:
        worker = _Worker(ctx, branch, _trimmed(run_one, LEAN_STAGES),
                         scoring="score" in names[:last],
                         ahead=(ahead, claims, handoff) if ahead else None)
        try:
            last = max((i for i, (_, fn) in enumerate(before[:cut])
                        if getattr(fn, "hands_over", False)), default=-1)
            chain = _trimmed(run_one, ORACLE)
            for i, (name, fn) in enumerate(before[:cut]):
                fields = getattr(fn, "hands_over", False) if handoff is not None else False
                if fields:  # what it computes goes to the worker's ahead work
                    snap = _snapshot(ctx)
                    chain(ctx, name, fn)
                    handoff.send(_delta(ctx, snap, None if fields is True else fields))
                    release_memory()  # the pickling's buffers, before the next stage's peak
                    if i == last:
                        handoff.close_send()
                else:
                    chain(ctx, name, fn)
            ran: set[int] = set()
            if claims is not None and handoff is not None:  # the ahead jobs not taken yet:
                handoff.close_send()                        # here, now
                ran = _take_back(ctx, ahead, claims, lean) or set()
            held: dict[str, Any] = {}
            if deferred:  # the rest of the chain reads the deferred work: its records first
                t0 = time.perf_counter()
                worker.take(ctx, set(range(len(deferred))) - ran, held)
                ctx.timings["parallel.wait_deferred"] = round(time.perf_counter() - t0, 3)
                for _, fn in before:
                    if getattr(fn, "settle", None) is not None:
                        fn.settle(ctx)  # type: ignore[attr-defined]
                for name, fn in before[cut:]:
                    lean(ctx, name, fn)
                _merge(ctx, {"set": {}, "update": held})  # the branch's part of the scorecard
            after = _early_report(ctx, after, worker)
            t0 = time.perf_counter()
            worker.join(ctx)
            ctx.timings["parallel.wait"] = round(time.perf_counter() - t0, 3)
        finally:
            worker.kill()
    finally:
        if claims is not None and handoff is not None:
            claims.close()
            handoff.close()
    _run_after(ctx, after, run_one)
    return ctx


def _take_back(ctx: RunContext, jobs: list[tuple[str, Stage]], claims: _Claims, run_one: RunOne
               ) -> set[int]:
    """The chain at the join point, the ahead jobs the worker has not started run here, at
    once (the deferred ones are needed now, the others would otherwise run after the join);
    returns their numbers."""
    ran = set()
    while (i := claims.next()) is not None:
        run_one(ctx, *jobs[i])
        ran.add(i)
    return ran


def _ahead_jobs(after: list[tuple[str, Stage]]) -> list[tuple[str, Stage]]:
    """What the customers worker does once its branch is done, while this process still runs
    the detection chain (the worker is the shorter path: it needs no watched series): the
    ``ahead`` work of the stages after the join (insights: the revenue forecast). Claimed one at
    a time; when the chain is done this process takes the ones left and runs them at once,
    before the join. The branch's tables are not written here: the worker's memory while this
    process runs the oracle took the tree's PSS over 1 GB."""
    return [(f"{name}.ahead", fn.ahead) for name, fn in after  # type: ignore[attr-defined]
            if getattr(fn, "ahead", None) is not None]


def _in_order(ctx: RunContext, name: str, fn: Stage, run_one: RunOne) -> None:
    """``run_one`` of a stage run in order, then its ``release`` (what it built to share with
    the stages beside it, e.g. insights' panel: nothing later needs it)."""
    run_one(ctx, name, fn)
    release = getattr(fn, "release", None)
    if release is not None:
        release(ctx)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only
    except OSError:
        return None


def _release_arrow() -> None:
    """Hand Arrow's cached free memory back to the OS (its allocator, mimalloc or jemalloc, keeps
    freed pages for reuse: pandas' text columns and the CSV writer's rendered cells live there;
    ~50 MB after the run directory's big tables). Only when pyarrow is already imported."""
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        try:
            pa.default_memory_pool().release_unused()
        except Exception:  # noqa: BLE001 — best effort (an older pyarrow, a custom pool)
            pass


def release_memory() -> None:
    """Hand this process's freed heap back to the OS now: glibc's (``malloc_trim``) and Arrow's
    (``_release_arrow``). For long stages between their steps (the customer models)."""
    _release_arrow()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    try:
        import ctypes

        return getattr(ctypes.CDLL(None), "mallopt", None)  # glibc only
    except OSError:
        return None


# the two stages whose peaks meet, one in each process (this process's oracle, the worker's
# customer scoring): in them each block of at least LEAN_MMAP bytes gets pages of its own,
# handed back when it is freed, instead of a place in the heap that stays in the RSS until the
# stage's trim (the whole chain so: ~1 s slower; the oracle alone fits in its slack)
ORACLE, LEAN_STAGES = ("oracle",), ("customer_scoring",)
LEAN_MMAP, HEAP_MMAP = 1 << 20, 32 << 20  # after: glibc's largest dynamic threshold (64-bit)
M_MMAP_THRESHOLD = -3  # mallopt's parameter number


def _trimmed(run_one: RunOne, lean_stages: Sequence[str] = ()) -> RunOne:
    """``run_one``, then the C heap's free pages handed back to the OS (glibc ``malloc_trim``, and
    Arrow's pool: ``_release_arrow``; a stage's freed temporaries otherwise stay in this
    process's RSS: 30-120 MB per stage of the default run, ~10-30 ms per call). During the
    ``lean_stages`` glibc maps every block of ``LEAN_MMAP`` bytes or more on its own
    (``mallopt``), so their freed arrays leave the RSS at once (~30-50 MB less at the oracle's
    and customer scoring's peaks in the default run; a page fault per page: slower)."""
    trim, opt = _malloc_trim(), _mallopt()

    def run(ctx: RunContext, name: str, fn: Stage) -> None:
        lean = opt is not None and name in lean_stages
        if lean:
            opt(M_MMAP_THRESHOLD, LEAN_MMAP)
        try:
            run_one(ctx, name, fn)
        finally:
            if lean:
                opt(M_MMAP_THRESHOLD, HEAP_MMAP)
        _release_arrow()
        if trim is not None:
            trim(0)

    return run


def beside(fn: Stage) -> Stage:
    """Mark ``fn`` as a stage that reads nothing the stages after the join compute and writes
    only its own context fields: in the parallel path it runs in a second process beside the
    first stage after the join (insights); in order otherwise."""
    fn.beside = True  # type: ignore[attr-defined]
    return fn


def _run_after(ctx: RunContext, after: list[tuple[str, Stage]], run_one: RunOne) -> None:
    """The stages after the join. While this process runs the first of them (insights), a
    second process takes jobs from a shared list: the ``beside`` stages and the run
    directory's tables (``outputs.table_jobs``: the KPIs, detections and customer tables are
    final once the branch is merged). When insights is done this process draws the plots that
    need the insights but not their scores (``report.mid_jobs``), then takes the jobs still left
    (each job runs once, in whichever process claims it first: ``_Claims``); the second
    process's context changes are merged before the next stage.
    When the first stage has a ``prepare`` (what it shares: insights' slice panel), this process
    builds it after the fork, so the second process starts on its jobs at once; the ``beside``
    stages (which may read what ``prepare`` built) then run here after the first stage, the
    second process takes only jobs no later stage reads (the plots drawn beside: ``_leaf``, and
    the tables), and the later stages run without waiting for it.
    ``SHOCKLAB_PARALLEL_SIDE=0``: everything in order in this process."""
    from . import outputs

    side = [s for s in after if getattr(s[1], "beside", False)]
    rest = [s for s in after if not getattr(s[1], "beside", False)]
    if not rest or os.environ.get("SHOCKLAB_PARALLEL_SIDE", "1") == "0":
        for name, fn in after:
            _in_order(ctx, name, fn, run_one)
        return
    tables = outputs.table_jobs(ctx)
    prepare = getattr(rest[0][1], "prepare", None)
    release = getattr(rest[0][1], "release", None)
    here = [s for s in side if not getattr(s[1], "leaf", False)] if prepare is not None else []
    jobs = [*(s for s in side if s not in here), *tables]
    job = _trimmed(run_one)  # the two processes' peaks add up: each job's freed memory handed back
    claims = _Claims(len(jobs))
    try:
        worker = _Worker(ctx, [("side", functools.partial(_drain, jobs=jobs, claims=claims,
                                                           run_one=job))],
                         lambda c, _, fn: fn(c), scoring=False, role="side")
        try:
            if prepare is not None:
                prepare(ctx)
            run_one(ctx, *rest[0])
            mid = getattr(rest[0][1], "then", None)  # work that needs only this stage's result
            if mid is not None:
                mid(ctx)
            for name, fn in here:
                job(ctx, name, fn)
            _drain(ctx, jobs, claims, job)
            if prepare is not None:  # the second process's jobs are read by no later stage
                if release is not None:
                    release(ctx)
                    release = None
                for name, fn in rest[1:]:
                    run_one(ctx, name, fn)
                rest = rest[:1]
            t0 = time.perf_counter()
            worker.join(ctx)
            ctx.timings["parallel.wait_side"] = round(time.perf_counter() - t0, 3)
        finally:
            worker.kill()
    finally:
        claims.close()
    if release is not None:
        release(ctx)
    if tables:
        outputs.mark_written(ctx)
    for name, fn in rest[1:]:
        run_one(ctx, name, fn)


def _leaf(fn: Stage) -> Stage:
    """Mark a ``beside`` job whose result no later stage reads (a plot into ``ctx.figures``)."""
    fn.leaf = True  # type: ignore[attr-defined]
    return fn


class _Handoff:
    """What this process computes after the fork that the worker's ahead work reads (what the
    stages marked ``hands_over`` computed: kpis, and the watched series ``stage_detect`` built),
    pickled into a file without a name, record after record, one byte on a pipe per record; this
    process closes the pipe after the last such stage. The worker waits for that before its
    ahead work; if this process closes the pipe without sending (its chain at the join point
    first, or no such stage), the worker leaves the ahead jobs to it."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="shocklab-handoff-")
        self.r: int | None
        self.w: int | None
        self.r, self.w = os.pipe()

    def send(self, delta: dict[str, Any]) -> None:
        if self.w is None:  # closed
            return
        with os.fdopen(os.dup(self.file.fileno()), "ab") as fh:
            pickle.dump(delta, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.write(self.w, b"1")

    def close_send(self) -> None:
        if self.w is not None:
            os.close(self.w)
            self.w = None

    def receive(self) -> list[dict[str, Any]] | None:
        """In the worker: wait until this process has sent everything; the records in order,
        None when it closed without one."""
        if self.r is None:
            return None
        n = 0
        while chunk := os.read(self.r, 64):
            n += len(chunk)
        if not n:
            return None
        with os.fdopen(os.dup(self.file.fileno()), "rb") as fh:
            fh.seek(0)
            return [pickle.load(fh) for _ in range(n)]

    def close(self) -> None:
        self.close_send()
        if self.r is not None:
            os.close(self.r)
            self.r = None
        self.file.close()


class _Claims:
    """Job numbers in a pipe, in order: each 4-byte read takes the next (atomic on a pipe of
    whole records), so each job runs in one process. Unlike claim files, it leaves nothing
    behind a ``kill -9``."""

    def __init__(self, n: int) -> None:
        if n * 4 > select.PIPE_BUF:  # one write, atomic and within the pipe's buffer
            raise ValueError(f"{n} jobs: more than a pipe's {select.PIPE_BUF // 4} claims")
        self.fd, w = os.pipe()
        os.write(w, b"".join(i.to_bytes(4, "little") for i in range(n)))
        os.close(w)  # read after the last record: end of file

    def next(self) -> int | None:
        record = os.read(self.fd, 4)
        return int.from_bytes(record, "little") if record else None

    def close(self) -> None:
        os.close(self.fd)


def _drain(ctx: RunContext, jobs: list[tuple[str, Stage]], claims: _Claims, run_one: RunOne
           ) -> None:
    """Run, in order, each job of ``jobs`` no other process has taken yet."""
    while (i := claims.next()) is not None:
        run_one(ctx, *jobs[i])


def preload(stages: Sequence[tuple[str, Stage]]) -> None:
    """What ``run_stages`` imports before its fork (``_preload``: matplotlib), imported now: a
    caller that waits for something else (``run_analysis.py`` reading the data directory on a
    thread) overlaps the imports with that wait. In order (``SHOCKLAB_PARALLEL=0``) the customer
    models too: the stages then find them imported, so their timings hold no import (the
    imports overlap the read; run.json's ``load`` is the read's own time on its thread)."""
    names = [n for n, _ in stages]
    if any(n in BRANCH for n in names):
        _preload(names, models=not parallel_enabled())


def _preload(names: list[str], models: bool = False) -> None:
    """Import, before the fork, the modules both processes would otherwise import each for itself
    (matplotlib for the plots): once, in pages the worker shares; and let matplotlib build what it
    builds on a first figure (fonts, the mathtext parser: ``customers.plots.warm_up``, ~0.2 s
    once), which both processes would otherwise pay. The customer models (``models``: in order
    only) are the worker's alone: it imports them after the fork, while this process runs the
    chain (tests/analytics/test_schedule.py audits what is imported before the fork)."""
    import importlib

    wanted = {"customers": "analytics.customers.pipeline"} if models else {}
    wanted["report"] = "analytics.report"
    for name, module in wanted.items():
        if name in names:
            try:
                importlib.import_module(module)
            except ImportError:  # the stage itself will report it
                pass
    if "customers" in names or "report" in names:  # matplotlib's first-figure set-up, too
        try:
            from .customers.plots import warm_up
        except ImportError:
            return
        warm_up()


def _early_report(
    ctx: RunContext, after: list[tuple[str, Stage]], worker: _Worker
) -> list[tuple[str, Stage]]:
    """Draw the report plots that need only the detection chain now, one at a time while the
    worker still runs (this process would otherwise wait for it); each of those left when it
    finishes becomes a ``beside`` job after the join. The plots that need the insights but not
    their scores are drawn right after the insights stage (``report.mid``), the report stage
    draws the rest. Only for the pipeline's own report stage."""
    from . import pipeline

    if not any(fn is pipeline.stage_report for _, fn in after):
        return after
    from . import report

    t0 = time.perf_counter()
    jobs = report.early_jobs(ctx)
    done = frozenset(name for name, _, _ in jobs)
    while jobs and not worker.finished():
        report.draw(ctx, [jobs.pop(0)])
    ctx.timings["report.early"] = round(time.perf_counter() - t0, 3)
    mid_done: set[str] = set()

    def stage_report_rest(c: RunContext) -> None:
        report.draw(c, report.jobs_left(c, done | mid_done))

    def mid(c: RunContext) -> None:
        t = time.perf_counter()
        left = report.mid_jobs(c, done)
        report.draw(c, left)
        mid_done.update(name for name, _, _ in left)
        c.timings["report.mid"] = round(time.perf_counter() - t, 3)

    out = [(n, stage_report_rest if fn is pipeline.stage_report else fn) for n, fn in after]
    first = next((i for i, (_, fn) in enumerate(out) if not getattr(fn, "beside", False)), None)
    if first is not None and out[first][1] is pipeline.stage_insights:
        stage_insights = functools.wraps(pipeline.stage_insights)(
            lambda c: pipeline.stage_insights(c))
        stage_insights.then = mid  # type: ignore[attr-defined]
        out[first] = (out[first][0], stage_insights)
    for name, fn, args in reversed(jobs):
        out.insert(0, (f"report.beside.{name.removesuffix('.png')}",
                       _leaf(beside(functools.partial(_draw_one, job=(name, fn, args))))))
    return out


def _draw_one(ctx: RunContext, job: tuple[str, Callable[..., Any], tuple[Any, ...]]) -> None:
    from . import report

    report.draw(ctx, [job])


# ---------------------------------------------------------------- the worker
def _snapshot(ctx: RunContext) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for f in dataclasses.fields(ctx):
        v = getattr(ctx, f.name)
        snap[f.name] = (id(v), {k: id(x) for k, x in v.items()} if isinstance(v, dict) else None)
    return snap


def _delta(ctx: RunContext, snap: dict[str, Any], fields: Sequence[str] | None = None
           ) -> dict[str, Any]:
    """What the branch changed on ``ctx``: {"set": {field: value}, "update": {field: {k: v}}}
    (of ``fields`` only, when given)."""
    out: dict[str, Any] = {"set": {}, "update": {}}
    for f in dataclasses.fields(ctx):
        if fields is not None and f.name not in fields:
            continue
        v = getattr(ctx, f.name)
        vid, items = snap[f.name]
        if id(v) == vid and items is not None:
            changed = {k: x for k, x in v.items() if items.get(k) != id(x)}
            if changed:
                out["update"][f.name] = changed
        elif id(v) != vid:
            out["set"][f.name] = v
    return out


def _merge(ctx: RunContext, delta: dict[str, Any], held: dict[str, Any] | None = None) -> None:
    """Apply a worker's ``_delta`` to this process's context. The branch's part of the scorecard
    is added to the one score makes here; before score has run (a join ahead of it) it waits in
    ``held`` (a delta's ``update``: merge it once score has run)."""
    for name, value in delta["set"].items():
        if name == "scorecard":  # the branch's part of the scorecard (score runs here)
            _merge(ctx, {"set": {}, "update": {"scorecard": value or {}}}, held)
            continue
        setattr(ctx, name, value)
    for name, items in delta["update"].items():
        target = getattr(ctx, name)
        if isinstance(target, dict):
            target.update(items)
        elif name == "scorecard" and held is not None and items:
            held.setdefault(name, {}).update(items)


def _forget(ctx: RunContext, delta: dict[str, Any]) -> None:
    """Drop what ``delta`` holds from ``ctx`` (a worker whose result is already returned): the
    fields it set, the dict entries it added or replaced."""
    for name in delta["set"]:
        setattr(ctx, name, None)
    for name, items in delta["update"].items():
        target = getattr(ctx, name)
        for key in items:
            target.pop(key, None)


def _flush() -> None:
    """Flush the log handlers and stdio, best effort (a stale handler may hold a closed stream)."""
    streams = [*logging.getLogger().handlers, *logging.getLogger("shocklab").handlers,
               sys.stdout, sys.stderr]
    for s in streams:
        try:
            s.flush()
        except (ValueError, OSError, AttributeError):
            pass


class _Worker:
    """The branch in a forked child; its context changes come back as pickled records in a file,
    merged in order by ``join`` (or, while it still runs, by ``take``: a byte on a pipe per
    record written; this process reads from a position of its own): what a stage hands back
    (``hands_back``) as soon as it is done, the branch's changes, then each ahead job's (the
    worker drops each part once returned, so it holds little beside the parent's oracle). The
    file has no name (unlinked at once, written
    through the descriptor both processes share) and the child is killed with its parent
    (``shocklab.children``): a run killed with SIGKILL left the worker running to its end and
    its result (~100 MB) in the temporary directory for good."""

    def __init__(self, ctx: RunContext, branch: list[tuple[str, Stage]], run_one: RunOne,
                 scoring: bool, role: str = "customers",
                 ahead: tuple[list[tuple[str, Stage]], _Claims, _Handoff] | None = None,
                 ) -> None:
        self.role, self.ahead = role, ahead
        self.file, parent = tempfile.TemporaryFile(prefix="shocklab-branch-"), os.getpid()
        self.pos = 0  # how far this process has read (and merged) the result file
        self.complete = False  # its last record merged
        self.ready_r, self.ready_w = os.pipe()  # one byte per record the worker has written
        _flush()  # buffered output would be written twice, once by each process
        gc.freeze()  # the collector must not touch (and so copy) the shared objects' pages
        trim = _malloc_trim()
        if trim is not None:  # free heap pages at the fork would be copied once per process
            trim(0)           # as soon as either reuses them: hand them back first
        try:
            self.pid = os.fork()
        except OSError:
            gc.unfreeze()
            self.file.close()
            os.close(self.ready_r)
            os.close(self.ready_w)
            raise
        if self.pid == 0:  # the child: never return into the caller's stack
            code = 3
            try:
                os.close(self.ready_r)
                die_with_parent(parent)
                code = self._child(ctx, branch, run_one, scoring)
            finally:
                os._exit(code)
        os.close(self.ready_w)  # the worker's end: its exit reads as the end of the pipe here
        # the shared objects stay frozen here until the worker has ended: a collection in this
        # process would otherwise write to (and so copy) every page holding them
        self.done = False
        self.status: int | None = None

    def finished(self) -> bool:
        """Has the worker exited? (non-blocking; ``join`` then collects its result)"""
        if self.done:
            return True
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
        return self.status is not None

    def _child(self, ctx: RunContext, branch: list[tuple[str, Stage]], run_one: RunOne,
               scoring: bool) -> int:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us if needed
        if self.ahead is not None:  # the parent's end of the handoff pipe is not ours: without
            self.ahead[2].close_send()  # this copy, its close reads as the end of the pipe
        global _IN_WORKER
        _IN_WORKER = True  # the other core runs the parent's stages: no spare core here
        result: dict[str, Any]
        try:
            from threadpoolctl import threadpool_limits

            # the other core runs the detection chain; a fork must not reuse OpenMP's pool
            with threadpool_limits(limits=1):
                if scoring and ctx.has_truth and ctx.scorecard is None:
                    ctx.scorecard = {}  # score runs in the parent: collect our part of it
                snap = _snapshot(ctx)
                for name, fn in branch:
                    run_one(ctx, name, fn)
                    self._hand_back(ctx, snap, getattr(fn, "hands_back", ()))
                result = {"ok": _delta(ctx, snap)}
                if self.ahead is not None and self._return(result, more=True):
                    # the branch's result is in the file: freed here before the ahead work,
                    # which reads only what was there at the fork and what the parent hands
                    # over (this process's memory adds to the parent's peak, the oracle's)
                    _forget(ctx, result["ok"])
                    del result
                    gc.collect()  # the branch's cycles (figures, models): not frozen, freed now
                    release_memory()
                    result = {"ok": {"set": {}, "update": {}}}
                    handed = self.ahead[2].receive()
                    if handed is not None:
                        for delta in handed:
                            _merge(ctx, delta)
                        del handed
                        self._run_ahead(ctx, run_one)
        except BaseException as exc:  # noqa: BLE001 — every error goes back to the parent
            result = {"error": exc, "traceback": traceback.format_exc()}
        self._return(result, more=False)
        _flush()
        return 0

    def _hand_back(self, ctx: RunContext, snap: dict[str, Any], fields: Sequence[str]) -> None:
        """Return the entries a branch stage added to the dict ``fields`` of ``ctx`` now, and drop
        them here (a stage's ``hands_back``: what the later branch stages never read, e.g. the
        customer tables, ~100 MB, while customer scoring and the ahead work run beside the
        parent's oracle, whose memory they add to)."""
        delta = _delta(ctx, snap)
        part = {f: delta["update"][f] for f in fields if f in delta["update"]}
        if part and self._return({"ok": {"set": {}, "update": part}}, more=True):
            _forget(ctx, {"set": {}, "update": part})
            del delta, part
            release_memory()

    def _return(self, result: dict[str, Any], more: bool) -> bool:
        """Append ``result`` to the result file (``more``: another record follows), pickled
        straight into it: no second in-memory copy of the result (the customer tables: ~100 MB),
        in this process or in the parent (``join`` loads from the file). A result that cannot
        be pickled becomes the file's one record, an error; False then."""
        try:
            with os.fdopen(os.dup(self.file.fileno()), "ab") as fh:
                pickle.dump({**result, "more": more}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.write(self.ready_w, b"1")
            return True
        except Exception as exc:  # an unpicklable value or exception: the file is rewritten
            with self._rewrite() as fh:
                pickle.dump({"error": RuntimeError(
                    f"{self.role} worker: cannot return its result ({type(exc).__name__}: "
                    f"{exc})"), "traceback": result.get("traceback", ""), "more": False}, fh)
            os.write(self.ready_w, b"0")  # rewritten: read from the start
            return False

    def _run_ahead(self, ctx: RunContext, run_one: RunOne) -> None:
        """The ahead jobs the parent has not taken back yet, each one's result returned as a
        record of its own as soon as it is done (``"job"``: its number; the parent may be
        waiting for it: ``take``)."""
        if self.ahead is None:
            return
        jobs, claims, _ = self.ahead
        while (i := claims.next()) is not None:
            snap = _snapshot(ctx)
            run_one(ctx, *jobs[i])
            delta = _delta(ctx, snap)
            if not self._return({"ok": delta, "job": i}, more=True):
                return
            _forget(ctx, delta)

    def _rewrite(self):  # noqa: ANN202 — a binary file object over the shared, emptied file
        os.ftruncate(self.file.fileno(), 0)
        os.lseek(self.file.fileno(), 0, os.SEEK_SET)
        return os.fdopen(os.dup(self.file.fileno()), "wb")

    def _records(self, ctx: RunContext, held: dict[str, Any] | None, status: Any = None):
        """Merge the next record of the result file (from ``pos``: the worker appends to the
        same open file, so its offset is not this process's) and yield it; raises the worker's
        error, or when the file ends before its last record (the worker was killed)."""
        while True:
            reader = _Reader(self.file.fileno(), self.pos)
            fh = io.BufferedReader(reader)
            try:
                result = pickle.load(fh)
            except (EOFError, pickle.UnpicklingError):  # cut short: the worker was killed
                raise RuntimeError(
                    f"{self.role} worker (pid {self.pid}) died without a result (wait status "
                    f"{status})") from None
            self.pos = fh.tell()
            self.complete = not result.get("more", False)
            if "error" in result:
                exc = result["error"]
                if isinstance(exc, BaseException):
                    note = f"in the {self.role} worker process:\n{result.get('traceback', '')}"
                    if hasattr(exc, "add_note"):   # Python 3.11+; on 3.10 the note was an
                        exc.add_note(note)         # AttributeError that hid the error (exit 3)
                    raise exc
                raise RuntimeError(f"{self.role} worker failed: {exc!r}")
            _merge(ctx, result["ok"], held)
            yield result

    def take(self, ctx: RunContext, jobs: set[int], held: dict[str, Any]) -> None:
        """Merge the worker's records as it writes them until those of ``jobs`` (ahead jobs it
        runs) are in; the rest comes with ``join``. The worker ending first: ``join``."""
        records = self._records(ctx, held)
        while jobs:
            signal_ = os.read(self.ready_r, 1)
            if not signal_:   # the worker has ended
                self.join(ctx, held)
                return
            if signal_ == b"0":
                self.pos = 0
            result = next(records)
            jobs.discard(result.get("job"))
            if self.complete:
                self.join(ctx, held)
                return

    def join(self, ctx: RunContext, held: dict[str, Any] | None = None) -> None:
        if self.done:
            return
        status = self.status if self.status is not None else os.waitpid(self.pid, 0)[1]
        self.done = True
        gc.unfreeze()
        try:
            if os.fstat(self.file.fileno()).st_size < self.pos:  # rewritten: one error record
                self.pos = 0
            if not self.complete:  # the records in order: the branch's, then the ahead jobs'
                for _ in self._records(ctx, held, status):
                    if self.complete:
                        break
        finally:
            self.file.close()
            os.close(self.ready_r)

    def kill(self) -> None:
        """Stop and reap the worker if it still runs (this process failed first)."""
        if self.done:
            return
        self.done = True
        gc.unfreeze()
        try:
            if self.status is None:  # not reaped yet
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        self.file.close()
        os.close(self.ready_r)


class _Reader(io.RawIOBase):
    """A file descriptor read from a position of its own (``os.pread``)."""

    def __init__(self, fd: int, pos: int) -> None:
        self.fd, self.pos = fd, pos

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.pos = offset if whence == os.SEEK_SET else self.pos + offset
        return self.pos

    def readinto(self, b: Any) -> int:
        data = os.pread(self.fd, len(b), self.pos)
        b[:len(data)] = data
        self.pos += len(data)
        return len(data)


__all__ = ["BRANCH", "beside", "parallel_enabled", "preload", "release_memory", "run_stages",
           "spare_core"]
