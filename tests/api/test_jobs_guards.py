"""POST /runs' job plumbing in-process (api.jobs): which paths a request may name, and one
analysis per data directory. Each test failed against a hand-made mutant that
tests/api/test_api.py let pass (audit-mutcli)."""

from __future__ import annotations

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
