"""Shared fixtures of the robustness suite: the CLIs in-process, a tiny generated world, a
local webhook that hangs, fails and recovers. Everything stays under tmp_path."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from tests.simulation.simtools import tiny_config
from tests.webhook import FakeWebhook


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
        if code == 3:   # the traceback into the test's report (CI shows nothing else of it)
            _print_logged_traceback(out.err)
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return _run


def _print_logged_traceback(err: str) -> None:
    """The last traceback an internal error (exit 3) wrote to the log file its line names."""
    import re
    import sys

    m = re.search(r"traceback in (.+?)\)$", err.strip())
    log = Path(m.group(1)) if m else None
    if log is not None and log.is_file():
        text = log.read_text(encoding="utf-8", errors="replace")
        print(text[text.rfind("internal error"):][-6000:], file=sys.stderr)


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


@pytest.fixture
def hook(monkeypatch):
    h = FakeWebhook()
    monkeypatch.setenv("SLACK_WEBHOOK_URL", h.url)
    yield h
    h.close()
