"""Stopping a real ``shocklab serve --allow-analysis`` process stops the analysis it started
(api/jobs.py ``JobManager.stop``). SIGTERM to the server's pid alone (docker stop, systemd) left
its ``run_analysis.py`` and that process's forked worker running as orphans: the run was written
later, a restarted server's ``/runs/<id>/status`` was a 404 and the same request was accepted
again and analysed twice. A server killed outright (SIGKILL) runs no shutdown: the analysis
gets SIGTERM from the kernel when its server ends (``children.stop_with_server``).

The analysis is the real one on tests/servefix.py's data; its customers worker (forced with
``SHOCKLAB_PARALLEL=1``) is held at its start by a ``sitecustomize`` of this test's, until the
test says go, so the server is stopped mid-run whatever the machine's speed."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import urllib.request
from pathlib import Path

import pytest
from tests import localserver
from tests.procs import alive, all_ended

HOLD = textwrap.dedent('''
    """Test hook (tests/api/test_api_stop.py): in run_analysis.py, the forked worker writes
    its pid (content: its parent's) into $SHOCKLAB_TEST_HOLD and waits there for a file "go"."""
    import os
    import sys

    HOLD = os.environ.get("SHOCKLAB_TEST_HOLD")
    if HOLD and sys.argv and sys.argv[0].endswith("run_analysis.py"):
        import importlib.abc
        import importlib.util
        import time

        def _held(child):
            def held(self, *args, **kwargs):
                with open(os.path.join(HOLD, str(os.getpid())), "w") as f:
                    f.write(str(os.getppid()))
                while not os.path.exists(os.path.join(HOLD, "go")):
                    time.sleep(0.05)
                return child(self, *args, **kwargs)
            return held

        class _Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name != "analytics.schedule":
                    return None
                sys.meta_path.remove(self)
                spec = importlib.util.find_spec(name)
                run = spec.loader.exec_module

                def exec_module(module):
                    run(module)
                    module._Worker._child = _held(module._Worker._child)
                spec.loader.exec_module = exec_module
                return spec

        sys.meta_path.insert(0, _Finder())
''')


def _held_pids(hold: Path, server, timeout: float = 180) -> tuple[int, int]:
    """(the analysis' pid, its worker's) once the worker is held; fails if it never is."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        held = [p for p in hold.iterdir() if p.name.isdigit() and p.read_text()]
        if held:
            return int(held[0].read_text()), int(held[0].name)
        time.sleep(0.1)
    pytest.fail(f"the analysis' worker was never held (server exit {server.poll()})")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["sigterm", "sigint", "sigkill"])
def test_stopping_the_server_stops_its_analysis_and_no_run_is_written_later(
        roots, tmp_path, sig):
    hold, reports, site = tmp_path / "hold", tmp_path / "reports", tmp_path / "site"
    for d in (hold, reports, site):
        d.mkdir()
    (site / "sitecustomize.py").write_text(HOLD)
    env = {"PYTHONPATH": str(site), "SHOCKLAB_TEST_HOLD": str(hold), "SHOCKLAB_PARALLEL": "1"}
    pids: list[int] = []
    try:
        with localserver.shocklab_server(
                reports, roots.runs, tmp_path, env=env,
                args=("--allow-analysis", "--data-root", str(roots.data))) as (server, url):
            body = json.dumps({"data": "small", "detectors": ["rolling_zscore", "oracle"]})
            req = urllib.request.Request(url + "/runs", data=body.encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310 - loopback only
                assert r.status == 202
                rid = json.loads(r.read())["run_id"]
            pids = list(_held_pids(hold, server))
            assert all(alive(p) for p in pids), pids   # mid-run: the analysis and its worker
            server.send_signal(sig)                    # to the server's pid only
            server.wait(timeout=120)
            assert all_ended(pids, timeout=120), f"the analysis outlived the server: {pids}"
        (hold / "go").write_text("")   # a worker still held would now go on and write the run
        assert all_ended(pids, timeout=60)
        assert not (reports / rid).exists()
        assert [p.name for p in reports.iterdir() if not p.name.startswith(".")] == []
    finally:
        (hold / "go").write_text("")
        for p in pids:
            if alive(p):
                os.kill(p, signal.SIGKILL)
