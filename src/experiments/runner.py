"""Run cells on an executor, persist each record as it finishes, resume from what is on disk.

Executors — ``serial`` (in this process), ``local`` (a process pool) and ``dask``
(``dask.distributed``: a LocalCluster on 127.0.0.1, or an existing scheduler) — differ only in
where cells run. A cell's result depends on its task alone (no shared state; worlds and seeds are
derived from the task), and records are sorted by cell before anything is aggregated, so every
executor and worker count gives the same results. Records are written by this process only, one
JSON file per cell (``<out>/cells/<cell_id>.json``), atomically; a rerun skips cells whose record
says ``ok`` for the same config hash (the scenario, the analysis and the source of the code
that computes them: ``CODE_PACKAGES``), and retries failed ones.

On a remote Dask cluster (``--scheduler tcp://host:8786``) the workers need this repository's
``src`` importable (``pip install -e .`` or ``PYTHONPATH=src``) and, to share generated worlds,
a ``--cache-dir`` on a filesystem they all see; results do not depend on either.

A local pool whose worker dies (SIGKILL: the out-of-memory killer) fails only the cell that
worker was running; a new pool runs the cells not finished (bounded: ``MAX_POOL_BREAKS``).

Size (~580 lines, one module on purpose): the three executors share one submission and record
loop (resume, progress, stop on a signal, the pool's restart), which a split would pass around
as state.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shocklab.atomic import atomic_write_text, claim_dir
from shocklab.children import die_with_parent, usable_cores
from shocklab.errors import InputError
from shocklab.hashing import canonical_json, code_fingerprint, json_ready, sha256_json
from shocklab.signals import Terminated, deferred, signal_handler

from .cell import CellTask, error_record, run_cell
from .grid import Cell, resolve_cell

# the packages whose code a cell's result depends on (its record is keyed by their source)
CODE_PACKAGES = ("simulation", "analytics", "evaluation", "experiments", "shocklab")

log = logging.getLogger("shocklab.experiments")

EXECUTORS = ("serial", "local", "dask")
CellFn = Callable[[CellTask], dict[str, Any]]


def build_tasks(
    cells: list[Cell],
    scenario: dict[str, Any],
    analysis: dict[str, Any] | None,
    cache_dir: str | Path,
    data_format: str = "parquet",
    check_scenario: Callable[[dict[str, Any]], Any] | None = None,
    check_analysis: Callable[[dict[str, Any] | None], Any] | None = None,
    source: str = "experiment",
) -> list[CellTask]:
    """Resolve every cell's configs. ``check_scenario`` / ``check_analysis`` (the simulator's and
    the pipeline's validators) run once per distinct mapping, so a bad override fails here —
    exit 2 before any work or output — rather than in every cell."""
    tasks = []
    checked: set[str] = set()
    for cell in cells:
        scen, ana = resolve_cell(cell, scenario, analysis, source)
        for check, mapping, kind in (
            (check_scenario, scen, "scenario"),
            (check_analysis, ana, "analysis"),
        ):
            key = kind + sha256_json(mapping)
            if check is not None and key not in checked:
                checked.add(key)
                check(mapping)
        tasks.append(
            CellTask(
                cell_id=cell.cell_id,
                setting_id=cell.setting.setting_id,
                seed=cell.seed,
                scenario=scen,
                analysis=ana,
                # the code too: a rerun after a change of code does not resume on the earlier
                # code's records (CI on a kept workspace judged the earlier commit's cells)
                config_hash=sha256_json({"scenario": scen, "analysis": ana,
                                         "code": code_fingerprint(*CODE_PACKAGES)}),
                cache_dir=str(cache_dir),
                data_format=data_format,
            )
        )
    return tasks


# --- persistence ---------------------------------------------------------------------------

def _from_json(record: dict[str, Any]) -> dict[str, Any]:
    record["metrics"] = {
        k: math.nan if v is None else float(v) for k, v in record.get("metrics", {}).items()
    }
    record["timings"] = {
        k: math.nan if v is None else float(v) for k, v in record.get("timings", {}).items()
    }
    return record


def save_record(cells_dir: Path, record: dict[str, Any], owner: dict | None = None) -> None:
    # atomic_write_text creates cells/ on the first record: a sweep that cannot start (e.g. an
    # unreachable scheduler) leaves no output directory behind; the first record also marks the
    # directory as an experiment's, and ``owner`` as which one's (run_experiment.py resumes only
    # those, even before experiment.json is written)
    claim_dir(cells_dir.parent, "experiment", owner)
    atomic_write_text(cells_dir / f"{record['cell_id']}.json", canonical_json(json_ready(record)))


def _numbers(values: Any) -> bool:
    return isinstance(values, dict) and all(
        v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
        for v in values.values())


def _well_formed(rec: Any, stem: str) -> bool:
    """A record as ``save_record`` writes it, stored under its own cell's name. A JSON list,
    a string or metrics that are not numbers (an edited or foreign file) was exit 3."""
    return (isinstance(rec, dict) and rec.get("cell_id") == stem
            and isinstance(rec.get("setting_id"), str) and type(rec.get("seed")) is int
            # its setting and seed are its name's (grid.cells): an edited seed reran silently
            and stem == f"{rec['setting_id']}-seed{rec['seed']}"
            and rec.get("status") in ("ok", "error") and isinstance(rec.get("config_hash"), str)
            and _numbers(rec.get("metrics", {})) and _numbers(rec.get("timings", {})))


def load_records(cells_dir: Path) -> dict[str, dict[str, Any]]:
    """The stored records by cell id; one that cannot be read or is not a record (cut short,
    edited, another file) is left out, so its cell runs again (one warning line)."""
    out = {}
    bad = []
    if cells_dir.is_dir():
        for p in sorted(cells_dir.glob("*.json")):
            try:
                rec = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                rec = None
            if not _well_formed(rec, p.stem):
                bad.append(p.name)
                continue
            out[rec["cell_id"]] = _from_json(rec)
    if bad:
        log.warning("%s: %d cell record(s) unreadable or not a cell record (%s%s); those cells "
                    "run again", cells_dir, len(bad), ", ".join(bad[:3]),
                    " …" if len(bad) > 3 else "")
    return out


# --- executors -----------------------------------------------------------------------------

def _serial(tasks: list[CellTask], cell_fn: CellFn, workers: int, scheduler: str | None
            ) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield cell_fn(task)


# What Dask's nanny sets in its worker processes (distributed.nanny.pre-spawn-environ): one
# BLAS/OpenMP thread per worker, so N workers use N cores instead of fighting over them.
WORKER_ENVIRON = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Set variables that are not set already (a user's own choice wins), restore after."""
    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_IN_CELL = False   # a pool worker is running a cell (``_cell``)
_STOP = False      # ... and was told to stop (``_on_worker_sigterm``)
_STARTED: Any = None   # a pool worker's view of its pool's ``started`` array (``_start_worker``)


@signal_handler
def _on_worker_sigterm(signum: int, frame: object) -> None:
    """SIGTERM in a pool worker (``_stop_workers``): a running cell unwinds (its temporary
    directories and atomic outputs are removed on the way; ``_cell`` then ends the process),
    or, already unwinding (Ctrl-C reached the worker too), goes on doing so undisturbed; an idle
    worker ends at once."""
    global _STOP
    if not _IN_CELL:
        os._exit(143)
    if deferred(signum, frame):   # inside the import system or logging (``shocklab.signals``)
        return
    _STOP = True
    if sys.exc_info()[1] is None:
        raise Terminated()


def _cell(cell_fn: CellFn, task: CellTask, slot: int | None = None) -> dict[str, Any]:
    """``cell_fn(task)`` in a pool worker; a worker told to stop ends once the cell has cleaned
    up (the pool would otherwise hand it the next queued cell). ``slot``: the task's place in
    the pool's ``started`` array, where this worker's pid says the cell started here (if the
    worker dies, ``_local`` knows which cell it was running)."""
    global _IN_CELL
    if slot is not None and _STARTED is not None:
        _STARTED[slot] = os.getpid()
    _IN_CELL = True
    try:
        return cell_fn(task)
    finally:
        _IN_CELL = False
        # told to stop: end once the cell has cleaned up, whether it raised or returned (a
        # SIGTERM landing in an except block only sets _STOP; the cell then returns normally)
        if _STOP:
            os._exit(143)


def _start_worker(parent_pid: int, started: Any = None) -> None:
    """Every pool worker's start: killed with its parent (``die_with_parent``), stopped cleanly
    by SIGTERM (``_on_worker_sigterm``); ``started``: the pool's shared array of the pids that
    started each cell (``_cell``)."""
    global _STARTED
    _STARTED = started
    die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, _on_worker_sigterm)


def _warm_worker(parent_pid: int, started: Any = None) -> None:
    """A forked worker's start (``_start_worker``), and one BLAS/OpenMP thread (WORKER_ENVIRON's
    effect, which a fork's already-loaded libraries no longer read from the environment)."""
    _start_worker(parent_pid, started)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=1)


def _preload() -> bool:
    """Import the cell's backend (simulator, loaders, pipeline, scoring) here, before the pool
    forks: every worker then starts with it loaded instead of importing it afresh (~1 s of
    start-up per worker). False where it cannot (a fake backend's import errors, no fork) or
    should not (``SHOCKLAB_POOL_START=spawn``)."""
    if ("fork" not in multiprocessing.get_all_start_methods()
            or os.environ.get("SHOCKLAB_POOL_START", "fork") != "fork"):
        return False
    try:
        import analytics.loading  # noqa: F401
        import evaluation.pipeline  # noqa: F401
        import evaluation.truth  # noqa: F401
        import simulation.api  # noqa: F401
    except ImportError:
        return False
    return True


# Pools that break in a row (a worker dies) with no cell finished in between: then the cells left
# are failed instead of started once more (every cell running out of memory, a worker that dies
# as it starts), so a run ends instead of restarting pools for good.
MAX_POOL_BREAKS = 3


def _new_pool(workers: int, started: Any, fork: bool) -> ProcessPoolExecutor:
    # fork, with the backend preloaded: warm workers (results do not depend on the start
    # method: a cell reads its task only). Without fork: spawn, a fresh interpreter that sees
    # WORKER_ENVIRON (workers start during submit()); this process keeps its own environment.
    # Either way a worker is killed with this process (a kill -9 of the run left its workers
    # blocked for good, holding the --out's write lock: shocklab.children)
    if fork:
        return ProcessPoolExecutor(max_workers=workers, initializer=_warm_worker,
                                   initargs=(os.getpid(), started),
                                   mp_context=multiprocessing.get_context("fork"))
    return ProcessPoolExecutor(max_workers=workers, initializer=_start_worker,
                               initargs=(os.getpid(), started),
                               mp_context=multiprocessing.get_context("spawn"))


def _death(exitcode: int | None) -> str | None:
    """How a pool worker ended, if it died on its own (a signal, an exit in a cell); None when it
    did not end or was stopped by SIGTERM (the pool stops its other workers once one died)."""
    if exitcode is None or exitcode in (143, -signal.SIGTERM):
        return None
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _died_error(how: str, pid: int) -> BaseException:
    """The error of a cell whose worker process died under it. SIGKILL is what the kernel's
    out-of-memory killer sends: a MemoryError, the environment's (every cell failing so is
    exit 2, as a MemoryError in this process is)."""
    text = f"the worker process running this cell (pid {pid}) died: {how}"
    if how == "killed by SIGKILL":
        return MemoryError(f"{text}, most likely by the out-of-memory killer")
    return BrokenProcessPool(text)


def _local(tasks: list[CellTask], cell_fn: CellFn, workers: int, scheduler: str | None
           ) -> Iterator[dict[str, Any]]:
    """Cells on a process pool. A worker that dies (the out-of-memory killer's SIGKILL, a crash)
    breaks the pool, and every cell not finished in it got BrokenProcessPool, those never started
    too: now only the cell that worker was running fails (``_died_error``), and the others run
    again in a new pool, MAX_POOL_BREAKS breaks in a row at most (then they fail with the last
    one's error; a rerun retries them). SIGTERM, Ctrl-C or an error recording a result stops the
    workers and restarts nothing."""
    fork = _preload()
    pending = list(tasks)
    breaks = 0   # pools broken in a row without a cell finished
    while pending:
        ctx = multiprocessing.get_context("fork" if fork else "spawn")
        started = ctx.RawArray("q", len(pending))   # per cell: the pid of the worker running it
        pool = _new_pool(workers, started, fork)
        futures: dict[Future, tuple[int, CellTask]] = {}
        rerun: list[tuple[int, CellTask]] = []
        broken: BaseException | None = None
        try:
            with _environ(WORKER_ENVIRON):
                for slot, t in enumerate(pending):
                    try:
                        futures[pool.submit(_cell, cell_fn, t, slot)] = (slot, t)
                    except BrokenProcessPool as exc:   # broke while the cells were submitted
                        broken = exc
                        rerun.extend((i, task) for i, task in enumerate(pending) if i >= slot)
                        break
            # the pool's workers (all started by now), their exit codes read once it has ended
            procs = dict(getattr(pool, "_processes", None) or {})
            for fut in as_completed(futures):
                try:
                    record = fut.result()
                except BrokenProcessPool as exc:   # a worker died: this cell's or another's
                    broken = exc
                    rerun.append(futures[fut])
                    continue
                except Exception as exc:  # the task or its result did not pickle
                    record = error_record(futures[fut][1], exc)
                breaks = 0
                yield record
        except BaseException:
            # SIGTERM, Ctrl-C, or an error recording a result: the running cells are not waited
            # for (SIGTERM waited for all of them, minutes on a large world, then dropped their
            # results), and no pool is started again
            _stop_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if broken is None:
            return
        breaks += 1
        # the cells the dead workers were running fail; the others (queued, not started, or
        # stopped by the pool when it broke) run again
        dead = {pid: how for pid, p in procs.items() if (how := _death(p.exitcode))}
        pending, failed, last, what = [], [], None, []
        for slot, t in sorted(rerun, key=lambda st: st[0]):
            pid = started[slot]
            if pid in dead:
                last = _died_error(dead[pid], pid)
                failed.append(error_record(t, last))
                what.append(f"running cell {t.cell_id} ({dead[pid]})")
            else:
                pending.append(t)
        died = ("a worker process died " + ", ".join(what) if what else
                "a worker process died (" + (", ".join(sorted(set(dead.values())))
                                             or "how is not known") + ")")
        if pending and breaks >= MAX_POOL_BREAKS:
            log.warning("%s; pools broke %d times in a row with no cell finished: the %d cells "
                        "left are not run", died, breaks, len(pending))
            reason = (f"not run: worker processes died {breaks} times in a row with no cell "
                      f"finished (the last time: {last or broken}); a rerun retries it")
            failed += [error_record(t, type(last or broken)(reason)) for t in pending]
            pending = []
        elif pending:
            log.warning("%s; a new pool runs the %d cells not finished", died, len(pending))
        yield from failed


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM to each worker of ``pool`` (``_on_worker_sigterm``: a running cell cleans up, and
    the worker ends)."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except (OSError, ValueError):  # gone already
            pass


SCHEDULER_TIMEOUT_S = 10.0


def probe_scheduler(address: str) -> None:
    """Connect to ``address`` and complete Dask's handshake within SCHEDULER_TIMEOUT_S, or raise
    InputError. distributed waits for the handshake's answer without a timeout: a port that
    accepts and never answers (a web server, the dashboard's 8787) hung the run for good, and one
    that answers something else was read as a frame of exabytes ("out of memory", exit 2)."""
    import asyncio
    import socket

    from distributed.comm import connect
    from distributed.comm.addressing import parse_address, parse_host_port

    async def probe() -> None:
        scheme, loc = parse_address(address)
        if scheme in ("tcp", "tls"):   # a plain TCP connect first: refused and unknown hosts
            host, port = parse_host_port(loc)   # are said at once (distributed retried them
            if not host:                        # for the whole timeout, then "timed out")
                raise ValueError("no host in the address")
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
        comm = await connect(address, timeout=SCHEDULER_TIMEOUT_S)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(probe(), SCHEDULER_TIMEOUT_S))
    except ConnectionRefusedError:
        raise InputError(f"--scheduler {address}: nothing listens there (connection refused); "
                         "is the scheduler running, and is that its port?") from None
    except socket.gaierror as exc:
        raise InputError(f"--scheduler {address}: cannot resolve its host "
                         f"({exc.strerror})") from None
    except OverflowError:
        raise InputError(f"--scheduler {address}: the port must be 0-65535") from None
    except asyncio.TimeoutError:
        raise InputError(f"--scheduler {address}: no Dask scheduler answered within "
                         f"{SCHEDULER_TIMEOUT_S:g} s (the scheduler's port, e.g. 8786, not the "
                         "dashboard's 8787?)") from None
    except (Exception, MemoryError) as exc:  # noqa: BLE001 — anything the address answered
        detail = ("it answered something that is not Dask's protocol"
                  if isinstance(exc, MemoryError)   # a length read from someone else's bytes
                  else " ".join(str(exc).split())[:200] or type(exc).__name__)
        raise InputError(f"--scheduler {address}: cannot connect to a Dask scheduler "
                         f"({detail})") from None


def _dask(tasks: list[CellTask], cell_fn: CellFn, workers: int, scheduler: str | None,
          processes: bool = True) -> Iterator[dict[str, Any]]:
    import uuid

    from distributed import Client, LocalCluster
    from distributed import as_completed as dask_as_completed

    cluster = None
    try:
        if scheduler:
            probe_scheduler(scheduler)
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S:g}s")
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                   host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"--scheduler {scheduler}: cannot connect ({exc})" if scheduler
                         else f"cannot start a Dask LocalCluster ({exc})") from None
    run = uuid.uuid4().hex[:8]  # keys unique per run so a shared scheduler never reuses a result
    futures: dict[Any, CellTask] = {}
    try:
        futures = {
            client.submit(cell_fn, t, key=f"cell-{t.cell_id}-{run}", pure=False): t for t in tasks
        }
        for fut in dask_as_completed(list(futures)):
            try:
                yield fut.result()
            except Exception as exc:
                yield error_record(futures[fut], exc)
            fut.release()
    finally:
        for fut in futures:
            fut.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


_EXECUTORS: dict[str, Callable[..., Iterator[dict[str, Any]]]] = {
    "serial": _serial, "local": _local, "dask": _dask}


# Worker processes per usable CPU at most: beyond the CPUs they only wait for one, each holding
# its memory (`--workers 64` on a 2-CPU CI runner forked 64 processes for a 200-cell sweep).
WORKERS_PER_CPU = 4


def worker_count(executor: str, workers: int, cells: int, scheduler: str | None = None) -> int:
    """The processes ``execute`` starts for ``cells`` cells: no more than cells (a worker without a
    cell does nothing, and a forking pool starts them all at once) nor WORKERS_PER_CPU per usable
    CPU (an existing Dask scheduler's workers are not started here); 1 for ``serial``."""
    if executor == "serial":
        return 1
    if executor == "dask" and scheduler:
        return max(1, min(workers, cells))
    return max(1, min(workers, cells, WORKERS_PER_CPU * usable_cores()))


def execute(tasks: list[CellTask], executor: str = "serial", workers: int = 1,
            scheduler: str | None = None, cell_fn: CellFn = run_cell) -> Iterator[dict[str, Any]]:
    """Yield records in completion order (not a stable order: sort before aggregating)."""
    if executor not in _EXECUTORS:
        raise InputError(f"unknown executor {executor!r} (known: {', '.join(EXECUTORS)})")
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if not tasks:
        return iter(())
    used = worker_count(executor, workers, len(tasks), scheduler)
    if executor != "serial" and used < min(workers, len(tasks)):
        log.warning("--workers %d: starting %d worker processes, %d per usable CPU (more only "
                    "wait for a CPU, each holding its memory)", workers, used, WORKERS_PER_CPU)
    return _EXECUTORS[executor](tasks, cell_fn, used, scheduler)


def run_tasks(
    tasks: list[CellTask],
    out_dir: str | Path,
    executor: str = "serial",
    workers: int = 1,
    scheduler: str | None = None,
    cell_fn: CellFn = run_cell,
    progress: bool | None = None,
    fresh: bool = False,
    owner: dict | None = None,
) -> list[dict[str, Any]]:
    """Run what is not done yet, persisting each record as it arrives; return all records of
    ``tasks`` sorted by (setting, seed). ``owner``: the experiment's identity, written into the
    directory's marker with the first record (``experiment.identity``).

    Resume trusts a finished cell of the same configs and the same code (the config hash holds
    the source's fingerprint); ``fresh`` drops every stored cell record.
    """
    from tqdm import tqdm

    cells_dir = Path(out_dir) / "cells"
    if fresh and cells_dir.is_dir():   # the records only: a file it did not write is not its own
        for p in cells_dir.glob("*.json"):
            p.unlink()
    done = load_records(cells_dir)
    todo = [t for t in tasks if not _finished(done.get(t.cell_id), t)]
    if len(todo) < len(tasks):
        log.info("resuming: %d of %d cells already done", len(tasks) - len(todo), len(tasks))
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="cell",
               disable=True if progress is False else None, desc="cells", leave=False)
    failed = 0
    try:
        for record in execute(todo, executor, workers, scheduler, cell_fn):
            save_record(cells_dir, record, owner)
            done[record["cell_id"]] = _from_json(json.loads(canonical_json(json_ready(record))))
            if record["status"] != "ok":
                failed += 1
                log.warning("cell %s failed: %s", record["cell_id"], record["error"])
            bar.update(1)
    finally:
        bar.close()
    if failed:
        log.warning(
            "%d of %d cells failed (recorded in results; a rerun retries them)", failed, len(todo)
        )
    wanted = {t.cell_id for t in tasks}
    return sort_records([r for cid, r in done.items() if cid in wanted])


def _finished(record: dict[str, Any] | None, task: CellTask) -> bool:
    return (
        record is not None
        and record.get("status") == "ok"
        and record.get("config_hash") == task.config_hash
        and record.get("setting_id") == task.setting_id and record.get("seed") == task.seed
    )


def sort_records(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(records, key=lambda r: (r["setting_id"], int(r["seed"])))
