"""Shared fixtures of the robustness suite: the CLIs in-process, a tiny generated world, a
local webhook that hangs, fails and recovers. Everything stays under tmp_path."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from tests.simulation.simtools import tiny_config


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test runs in its own directory with its own alert delivery state."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHOCKLAB_STATE_DIR", str(tmp_path / "state"))
    yield
    root = logging.getLogger("shocklab")  # in-process CLI runs leave handlers on captured streams
    for h in root.handlers:
        h.close()
    root.handlers.clear()


@pytest.fixture
def cli(capsys):
    """``cli("generate", *args)`` / ``cli("analysis", *args)``: run_cli in-process →
    CompletedProcess."""
    import generate_data
    import run_analysis

    from shocklab.cli import run_cli

    mains = {"generate": generate_data.main, "analysis": run_analysis.main}

    def _run(which: str, *args: str) -> subprocess.CompletedProcess:
        code = run_cli(mains[which], [str(a) for a in args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return _run


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A generated 90-day world (read-only: copy it with ``fresh_world`` before changing it)."""
    from simulation.api import generate

    out = tmp_path_factory.mktemp("world") / "data"
    generate(tiny_config(), out)
    return out


@pytest.fixture
def fresh_world(tiny_world, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(tiny_world, dst)
    return dst


class Hook:
    """A fake Slack webhook on 127.0.0.1: ``mode`` is "hang" (answer after ``hang_s``), "fail" (500)
    or "ok" (200). Records every POST with its Idempotency-Key header."""

    def __init__(self):
        self.mode = "ok"
        self.hang_s = 1.0
        self.posts: list[tuple[str | None, dict]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append((self.headers.get("Idempotency-Key"), body))
                if hook.mode == "hang":
                    time.sleep(hook.hang_s)
                status = 500 if hook.mode == "fail" else 200
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"error")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/SECRET"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook(monkeypatch):
    h = Hook()
    monkeypatch.setenv("SLACK_WEBHOOK_URL", h.url)
    yield h
    h.close()
