"""POST /runs' job plumbing in-process (api.jobs): which paths a request may name, and one
analysis per data directory. Each test failed against a hand-made mutant that
tests/api/test_api.py let pass (audit-mutcli)."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

from api.jobs import JobManager, confine


def test_a_data_root_that_is_itself_a_data_directory_may_be_named(tmp_path):
    """``--data-root data/small``: the request "." (or the root's absolute path) is that
    directory, inside the roots, not a 403."""
    root = tmp_path / "small"
    root.mkdir()
    assert confine(".", [root]) == root.resolve()
    assert confine(str(root), [root]) == root.resolve()
    with pytest.raises(PermissionError):
        confine("..", [root])


def test_a_second_analysis_of_a_busy_data_directory_is_refused_whatever_its_overrides(tmp_path):
    """At most one analysis per data directory (two writers of one state/outbox): a request with
    other overrides has another run id, and was started beside the running one."""
    flag = tmp_path / "go"
    script = tmp_path / "fake_analysis.py"
    script.write_text(textwrap.dedent(f"""
        import pathlib, time
        while not pathlib.Path({str(flag)!r}).exists():
            time.sleep(0.05)
    """))
    jobs = JobManager(tmp_path / "reports", python=sys.executable, script=script)
    data = tmp_path / "data"
    data.mkdir()
    first = jobs.start(data, "run-a", None, [])
    try:
        with pytest.raises(RuntimeError, match="run-a"):
            jobs.start(data, "run-b", None, ["seed=2"])
        other = tmp_path / "other"
        other.mkdir()
        with pytest.raises(RuntimeError, match="run-a"):   # a copy of it: the same run id
            jobs.start(other, "run-a", None, [])
    finally:
        flag.write_text("")
    import threading

    for t in threading.enumerate():
        if t.name == "analysis-run-a":
            t.join(60)
    assert first.state == "succeeded" and first.exit_code == 0
    assert jobs.start(data, "run-b", None, []).run_id == "run-b"    # free again
    for t in threading.enumerate():
        if t.name == "analysis-run-b":
            t.join(60)


def _finished(tmp_path, body: str, run_id: str = "r"):
    import threading

    script = tmp_path / f"{run_id}.py"
    script.write_text(textwrap.dedent(body))
    jobs = JobManager(tmp_path / "reports", python=sys.executable, script=script)
    data = tmp_path / f"data-{run_id}"
    data.mkdir()
    job = jobs.start(data, run_id, None, [])
    for t in threading.enumerate():
        if t.name == f"analysis-{run_id}":
            t.join(60)
    return job


@pytest.mark.parametrize("code", [1, 2, 3])
def test_a_job_that_exits_non_zero_failed_with_its_last_stderr_line(tmp_path, code):
    """Exit 1 is a failed gate, not a success; the error is the CLI's last line on stderr
    (its one-line "error: …"), not the first of its warnings."""
    job = _finished(tmp_path, f"""
        import sys
        print("a warning first", file=sys.stderr)
        print("error: what went wrong", file=sys.stderr)
        sys.exit({code})
    """, run_id=f"r{code}")
    assert job.state == "failed" and job.exit_code == code
    assert job.error == "error: what went wrong"


def test_the_analysis_gets_the_requests_detectors_and_overrides(tmp_path):
    """plan() computed the run id with the request's detectors and overrides: the command line
    must carry them (and --quiet: its stdout is nobody's)."""
    import json
    import threading

    seen = tmp_path / "argv.json"
    script = tmp_path / "fake.py"
    script.write_text(f"import json, sys\njson.dump(sys.argv[1:], open({str(seen)!r}, 'w'))\n")
    jobs = JobManager(tmp_path / "reports", python=sys.executable, script=script)
    data = tmp_path / "data"
    data.mkdir()
    jobs.start(data, "rid", ["rolling_zscore", "oracle"], ["seed=3", "consensus.min_votes=1"])
    for t in threading.enumerate():
        if t.name == "analysis-rid":
            t.join(60)
    argv = json.loads(seen.read_text())
    assert argv[argv.index("--data") + 1] == str(data)
    assert argv[argv.index("--out") + 1] == str((tmp_path / "reports" / "rid").absolute())
    assert argv[argv.index("--detectors") + 1] == "rolling_zscore,oracle"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--set"] == [
        "seed=3", "consensus.min_votes=1"]
    assert "--quiet" in argv


FORKS = """
    import os, pathlib, signal, sys, time
    pids = pathlib.Path({pids!r})
    if os.fork() == 0:   # a worker that ignores SIGTERM: only the SIGKILL after the grace ends it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    (pids / str(os.getpid())).write_text("")
    while True:
        time.sleep(0.05)
"""


def _two_pids(pids, job) -> list[int]:
    import time

    from tests.procs import alive

    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline and job.state == "running":
        time.sleep(0.05)
    found = [int(p.name) for p in pids.iterdir()]
    assert len(found) == 2 and all(alive(p) for p in found), (found, job)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")
def test_stop_ends_each_running_analysis_with_its_workers_and_starts_none(tmp_path):
    """Stopping the server left its analysis (and the analysis' forked worker) running as an
    orphan that wrote its run later. stop(): SIGTERM to the job's process group, SIGKILL to what
    is left after the grace; a job whose thread had not started its process yet never starts."""
    import signal
    import threading

    from tests.procs import alive, all_ended

    from api.jobs import STOPPED

    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "forks.py"
    script.write_text(textwrap.dedent(FORKS.format(pids=str(pids))))
    jobs = JobManager(tmp_path / "reports", python=sys.executable, script=script)
    data = tmp_path / "data"
    data.mkdir()
    job = jobs.start(data, "run-a", None, [])
    found = _two_pids(pids, job)
    try:
        jobs.stop(grace=1.0)
        assert all_ended(found), [p for p in found if alive(p)]
        for t in threading.enumerate():
            if t.name == "analysis-run-a":
                t.join(60)
        assert (job.state, job.error) == ("failed", STOPPED)
        late = jobs.start(tmp_path, "run-b", None, [])   # after the stop: never started
        for t in threading.enumerate():
            if t.name == "analysis-run-b":
                t.join(60)
        assert (late.state, late.error, late.proc) == ("failed", STOPPED, None)
        assert len(list(pids.iterdir())) == 2
    finally:
        for p in found:
            if alive(p):
                os.kill(p, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux /proc")
def test_the_apps_shutdown_stops_its_running_analyses(tmp_path):
    """A normal shutdown of the app (its lifespan's end: uvicorn's, a TestClient's) stops the
    analyses it started, as ``JobManager.stop`` does."""
    import signal

    from fastapi.testclient import TestClient
    from tests.procs import alive, all_ended

    from api.app import Settings, create_app

    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "forks.py"
    script.write_text(textwrap.dedent(FORKS.format(pids=str(pids))))
    app = create_app(Settings(reports=tmp_path / "reports", runs=tmp_path / "runs",
                              allow_analysis=True, data_roots=[tmp_path]))
    jobs = app.state.jobs
    jobs.python, jobs.script = sys.executable, script
    found: list[int] = []
    try:
        with TestClient(app):
            found = _two_pids(pids, jobs.start(tmp_path, "run-a", None, []))
        assert all_ended(found), [p for p in found if alive(p)]
    finally:
        for p in found:
            if alive(p):
                os.kill(p, signal.SIGKILL)
