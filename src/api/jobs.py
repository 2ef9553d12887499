"""Background analyses for ``POST /runs``: one ``run_analysis.py`` subprocess per request, at most
one at a time per data directory.

The run id is computed up front with the same functions the CLI uses (data manifest hash and the
effective config), so the client gets it immediately; the subprocess writes ``<reports>/<run id>``
atomically, exactly as the CLI does. A subprocess keeps a crash of the analysis away from the
server and lets the OS reclaim its memory.

Stopping the server stops its analyses (``JobManager.stop``, from the app's lifespan shutdown and
from ``shocklab serve`` on its way out): each runs in a session of its own, so its forked worker
is in its process group; the group gets SIGTERM (the analysis removes its temporary directory, as
the command line's does), then SIGKILL if it is still there after ``STOP_GRACE`` seconds. Such a
job's run is not written. Before, SIGTERM to the server left the analysis running as an orphan: it
wrote the run later, while a restarted server knew nothing of it and accepted the same request
again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import reduce
from pathlib import Path

from runstore import shown
from shocklab.children import STOP_WITH_SERVER
from shocklab.configio import override_at
from shocklab.errors import ConfigError, InputError, IntegrityError

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("shocklab.api")
# config keys naming a file the analysis writes, or an environment variable holding a URL it posts
# to: a request may not point them anywhere on the server (the operator's config decides them)
SERVER_KEYS = ("customers.alerts.jsonl_path", "customers.monitor.state_path",
               "customers.alerts.slack.url_env")
STOP_GRACE = 10.0   # seconds a stopped analysis has to end after SIGTERM, before SIGKILL
STOPPED = "the analysis was stopped with the server; its run was not written"
# what an API user can do with a data set that no longer matches its manifest (a request has no
# --no-verify): said by the 422 of POST /runs and by a job that found it edited after the 202
API_REMEDY = ("regenerate the data set (generate_data.py), or analyse it as it is from the "
              "command line (run_analysis.py --data DIR --no-verify): POST /runs always verifies")


def cut_echoes(text: str, sent: list[str], limit: int = 80) -> str:
    """``text`` with every value of a request (``sent``: a data path, detector names, overrides
    and the keys and values inside them) longer than ``limit`` characters cut there, as the GET
    filters' :func:`runstore.shown` cuts what it echoes: a 3,000-character override came back
    twice in a 6 kB message."""
    pieces = set()
    for v in sent:
        key, _, value = v.partition("=")
        pieces.update((v, key, value, *key.split(".")))
    for p in sorted((p for p in pieces if len(p) > limit), key=len, reverse=True):
        text = text.replace(p, p[:limit] + "…")
    return text


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def confine(path_text: str, roots: list[Path]) -> Path:
    """Resolve ``path_text`` (absolute, or relative to a root) to a directory inside one of
    ``roots``.
    Raises PermissionError when it escapes every root (``..``, symlinks), FileNotFoundError when
    it does not exist, NotADirectoryError for a file or a path no file system accepts."""
    if "\x00" in path_text:  # os.path.realpath raises ValueError on it
        raise NotADirectoryError(f"data path {shown(path_text)} contains a NUL byte")
    candidates = (
        [Path(path_text)] if Path(path_text).is_absolute() else [r / path_text for r in roots]
    )
    real_roots = [r.resolve() for r in roots]
    inside = []
    for c in candidates:
        try:
            real = c.resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise NotADirectoryError(f"data path {shown(path_text)} cannot be resolved") from None
        if any(real == r or r in real.parents for r in real_roots):
            inside.append(real)
    if not inside:
        raise PermissionError(f"data path {shown(path_text)} is outside the configured data roots")

    def kind(real: Path) -> str | None:
        try:
            return "dir" if real.is_dir() else "file" if real.exists() else None
        except OSError as exc:  # a name too long for the file system (was a 500)
            raise NotADirectoryError(
                f"data path {shown(path_text)} is not usable here "
                f"({os.strerror(exc.errno) if exc.errno else type(exc).__name__})"
            ) from None

    kinds = [kind(real) for real in inside]
    for real, k in zip(inside, kinds, strict=True):
        if k == "dir":
            return real
    if "file" in kinds:
        raise NotADirectoryError(
            f"data path {shown(path_text)} is a file, not a data directory (generate_data.py's "
            "output)"
        )
    raise FileNotFoundError(
        f"data directory {shown(path_text)} not found under the configured data roots"
    )


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name + (" (out of memory, or stopped by hand)"
                                              if number == signal.SIGKILL else "")
    except ValueError:
        return f"signal {number}"


@dataclass
class Job:
    run_id: str
    data: Path
    argv: list[str]
    sent: str = ""  # the data path as the request named it: what the job's answers echo
    started: str = field(default_factory=_now)
    state: str = "running"
    finished: str | None = None
    exit_code: int | None = None
    error: str | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)  # while it runs
    stopped: bool = False   # ended by JobManager.stop


class JobManager:
    """Runs analyses in background threads; refuses a second one on the same data directory, or
    for the same run id (a copy of the data)."""

    def __init__(
        self, reports: Path, python: str = sys.executable, script: Path = ROOT / "run_analysis.py"
    ):
        # absolute: the analysis runs in the checkout (cwd=ROOT), and a relative --reports (the
        # default "reports", from another directory) had it write the run there, not where the
        # server reads runs (its run_url was a 404)
        self.reports = Path(os.path.abspath(reports))
        self.python = python
        self.script = script
        self._jobs: dict[str, Job] = {}
        self._busy: dict[Path, str] = {}  # data dir -> run id of the analysis running on it
        self._lock = threading.Lock()
        self._closed = False  # stopped: a job not started yet never starts

    def plan(self, data: Path, detectors: list[str] | None, overrides: list[str]) -> str:
        """The run id the CLI will use for these inputs; InputError on bad data or config."""
        from analytics.config import load_analysis_config
        from analytics.config_checks import require_voters
        from analytics.loading import load_data_dir
        from analytics.pipeline import data_hash, run_id, select_detectors
        from evaluation.truth import has_truth

        for o in overrides:
            if "=" not in o:
                raise InputError(f"overrides: expected KEY=VALUE, got {shown(o)}")
        try:   # an override's own form ('a..b') is named as sent: "overrides: 'a..b': …"
            cfg = load_analysis_config(None, overrides,
                                       label=lambda item: f"overrides: {shown(item)}")
        except ConfigError as exc:   # it named the server's config file: name what was sent
            item = override_at(exc.loc, overrides)
            raise InputError(f"overrides: {shown(item)}: {exc.detail}" if item is not None
                             else f"overrides: {exc.detail}") from None
        default = load_analysis_config(None, [])
        for key in SERVER_KEYS:
            if reduce(getattr, key.split("."), cfg) != reduce(getattr, key.split("."), default):
                item = override_at(tuple(key.split(".")), overrides)
                raise InputError(
                    f"overrides: {shown(item)}: {key} cannot be set by a request (it names a file "
                    "or an environment variable on the server); set it in the server's config, "
                    "or run run_analysis.py from the command line")
        try:
            ds = load_data_dir(data)
        except IntegrityError as exc:  # its remedy, --no-verify, is a flag a request cannot send
            raise InputError(f"{exc.detail}; {API_REMEDY}") from None
        cfg = select_detectors(cfg, detectors, has_truth(data), where="detectors")
        if not detectors:   # every voter disabled by overrides: "nothing happened", exit 0
            require_voters(cfg, where="detectors")
        return run_id(ds, cfg, data_hash(ds))

    def start(self, data: Path, run_id: str, detectors: list[str] | None, overrides: list[str],
              sent: str | None = None) -> Job:
        argv = [
            self.python,
            str(self.script),
            "--data",
            str(data),
            "--out",
            str(self.reports / run_id),
            "--quiet",
        ]
        if detectors:
            argv += ["--detectors", ",".join(detectors)]
        for o in overrides:
            argv += ["--set", o]
        with self._lock:
            if data in self._busy:
                raise RuntimeError(self._busy[data])
            if run_id in self._busy.values():  # a copy of a data set being analysed: same run
                raise RuntimeError(run_id)        # (its job's status was lost; both wrote it)
            job = Job(run_id=run_id, data=data, argv=argv, sent=str(data) if sent is None
                      else sent)
            self._jobs[run_id] = job
            self._busy[data] = run_id
        threading.Thread(
            target=self._run, args=(job,), name=f"analysis-{run_id}", daemon=True
        ).start()
        return job

    def get(self, run_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def _run(self, job: Job) -> None:
        try:
            self.reports.mkdir(parents=True, exist_ok=True)
            with self._lock:   # stop() sees every process started, or this one never starts
                job.stopped = self._closed
                if not job.stopped:   # a session of its own: stop() ends its worker with it
                    job.proc = subprocess.Popen(   # ends with the server however it ends
                        job.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True, start_new_session=True,
                        env={**os.environ, STOP_WITH_SERVER: str(os.getpid())})
            if job.proc is None:
                job.state, job.error = "failed", STOPPED
                return
            proc = job.proc
            _, stderr = proc.communicate()
            job.exit_code = proc.returncode
            job.state = "succeeded" if proc.returncode == 0 else "failed"
            if job.stopped and proc.returncode != 0:   # (0: it had written its run by then)
                job.error = STOPPED
            elif proc.returncode < 0:  # "exit code -9" said nothing: killed (out of memory?)
                job.error = f"the analysis was killed by {_signal_name(-proc.returncode)}"
            elif proc.returncode != 0:
                lines = [ln for ln in stderr.splitlines() if ln.strip()]
                from analytics.loading import VERIFY_REMEDY
                job.error = (lines[-1][:500] if lines else f"exit code {proc.returncode}"
                             ).replace(str(job.data), job.sent).replace(VERIFY_REMEDY, API_REMEDY)
            if job.error == STOPPED:   # not a failure of the analysis: no stderr to show
                log.warning("analysis %s stopped with the server (exit %s); its run was not "
                            "written", job.run_id, proc.returncode)
            elif proc.returncode != 0:   # a killed job is in the server's log too
                log.warning("analysis %s failed (exit %s): %s", job.run_id, proc.returncode,
                            stderr[-2000:] or job.error)
        except Exception as exc:  # noqa: BLE001 - the job must end in a state, whatever happened
            job.state, job.error = "failed", f"could not run the analysis: {type(exc).__name__}"
            log.exception("analysis %s could not run", job.run_id)
        finally:
            job.finished = _now()
            with self._lock:
                self._busy.pop(job.data, None)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """End every running analysis and its workers (the server is stopping): SIGTERM to each
        job's process group, SIGKILL to those still there after ``grace`` seconds. Idempotent;
        no job starts after it."""
        with self._lock:
            self._closed = True
            running = [j for j in self._jobs.values() if j.proc is not None
                       and j.state == "running"]
            for j in running:
                j.stopped = True
            groups = [j.proc.pid for j in running]
        if not groups:
            return
        log.warning("stopping %d running analysis job(s) with the server", len(groups))
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
            groups = [g for g in groups if _signal_group(g, sig)]
            deadline = time.monotonic() + wait
            while groups and time.monotonic() < deadline:
                time.sleep(0.05)
                groups = [g for g in groups if _signal_group(g, 0)]
            if not groups:
                return
        log.error("analysis process groups %s still there after SIGKILL", groups)

    @asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        """The FastAPI app's lifespan: a normal shutdown stops the running analyses."""
        try:
            yield
        finally:
            await asyncio.to_thread(self.stop)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group ``pgid`` (0: only look); False once no process of it is
    left running (a zombie nobody reaps yet is not; a group's id is not reused while one of its
    processes is alive)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):   # gone, or no longer ours (setuid): leave it
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    for d in proc.iterdir():
        try:
            state, _, pgrp = (d / "stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError, ValueError):   # not a process, or ended meanwhile
            continue
        if pgrp == str(pgid) and state not in ("Z", "X"):
            return True
    return False
