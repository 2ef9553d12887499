"""The daily monitor's state file (``state/customers.sqlite``, ``SHOCKLAB_STATE_DIR``) is the
program's own file, but the user can damage it (an edit, a tool that writes its own rows). A
damaged value was an internal error (exit 3: ``JSONDecodeError``, ``DateParseError``, a
``ValueError`` traceback through ``monitor.daily``) naming no file; it is now exit 2, one line
naming the file, the table and the column, with the advice of a file that is not SQLite at all
("move it aside"), the file left as it was and no run directory. And an ``--as-of`` day before the
one the state already judged was refused only after the customer models were fitted (their two
warnings printed before the error): it is now refused before any analysis stage. A real process,
as a user (or cron) runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JUDGED = "2025-06-29"   # the day the shared state was judged up to


def _env(cwd: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
                SHOCKLAB_LOG_DIR="", SHOCKLAB_STATE_DIR=str(cwd / "state"))


def _analyse(world: Path, as_of: str, out: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_analysis.py"), "--data", str(world), "--as-of", as_of,
         "--out", str(out), "--quiet", "--set", "customers.alerts.console=false"],
        cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def judged_state(tmp_path_factory) -> tuple[Path, bytes]:
    """(a small world, the bytes of a valid monitor state that judged it up to ``JUDGED``)."""
    base = tmp_path_factory.mktemp("monitor_state")
    world = base / "world"
    g = subprocess.run(
        [sys.executable, str(ROOT / "generate_data.py"), "--config",
         str(ROOT / "config" / "scenarios" / "small.yaml"), "--set", "traffic.base_sessions=2000",
         "--set", "customers.initial=500", "--out", str(world), "--quiet"],
        cwd=base, env=_env(base), capture_output=True, text=True, timeout=600)
    assert g.returncode == 0, g.stderr
    r = _analyse(world, JUDGED, base / "first", base)
    assert r.returncode == 0, r.stderr
    state = base / "state" / "customers.sqlite"
    with sqlite3.connect(state) as con:   # the cases below damage rows of every kind
        assert con.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] >= 1
        assert con.execute("SELECT COUNT(*) FROM flags").fetchone()[0] >= 1
    good = state.read_bytes()
    # the checks refuse damage only: the judged day runs again on the state as the program
    # wrote it (its alerts, flags, snapshots and judged day all read), exit 0
    again = base / "again"
    _state_in(again, good)
    r = _analyse(world, JUDGED, again / "run", again)
    assert r.returncode == 0, r.stderr
    return world, good


def _state_in(cwd: Path, data: bytes, damage: str | None = None) -> Path:
    state = cwd / "state" / "customers.sqlite"
    state.parent.mkdir(parents=True)
    state.write_bytes(data)
    if damage is not None:
        con = sqlite3.connect(state)
        con.execute(damage)
        con.commit()
        con.close()
    return state


def _refused(r: subprocess.CompletedProcess, state: Path, before: bytes, out: Path) -> str:
    """The checks every case shares; returns the error line."""
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and str(state) in lines[0], lines[0]
    assert state.read_bytes() == before, "the state file was changed"
    assert not out.exists()
    assert [p.name for p in state.parent.iterdir()] == [state.name]   # no journal left either
    return lines[0]


ONE_SNAPSHOT = "WHERE rowid = (SELECT MIN(rowid) FROM snapshots)"


@pytest.mark.parametrize("damage, where, shown", [
    ("UPDATE alerts SET payload = '{not json'", "alerts.payload", "'{not json'"),
    # valid JSON, not an alert: a TypeError / KeyError where the run lists its alerts
    ("UPDATE alerts SET payload = '[1, 2]'", "alerts.payload", "'[1, 2]'"),
    ("UPDATE alerts SET escalated = 'yes'", "alerts.escalated", "'yes'"),
    ("UPDATE judged SET date = '2025-6-29x'", "judged.date", "'2025-6-29x'"),
    (f"UPDATE snapshots SET date = 'garbage' {ONE_SNAPSHOT}", "snapshots.date", "'garbage'"),
    (f"UPDATE snapshots SET customers = 'many' {ONE_SNAPSHOT}", "snapshots.customers", "'many'"),
    ("UPDATE flags SET incident_id = 'no date'", "flags.incident_id", "'no date'"),
    # a pending delivery (a failed Slack send) whose payload is not JSON: the outbox's retry
    # logged an error and the run went on, exit 0, the alert never delivered
    ("INSERT INTO outbox (alert_id, sink, payload, status) VALUES ('a', 'slack', '{oops', "
     "'pending')", "outbox.payload", "'{oops'"),
])
def test_a_damaged_value_in_the_monitor_state_is_exit_2_naming_the_file(
        judged_state, tmp_path, damage, where, shown):
    world, good = judged_state
    state = _state_in(tmp_path, good, damage)
    before = state.read_bytes()
    out = tmp_path / "run"
    r = _analyse(world, JUDGED, out, tmp_path)
    line = _refused(r, state, before, out)
    assert "not a usable SQLite monitor state file" in line and "move it aside" in line, line
    assert where in line and shown in line, line


@pytest.mark.parametrize("damage, where", [
    ("UPDATE alerts SET payload = '{\"alert_id\": \"a\"}'", "alerts.payload"),
    ("UPDATE alerts SET date = '2025-13-01'", "alerts.date"),
    ("UPDATE alerts SET severity = x'01'", "alerts.severity"),  # a BLOB, not text
    (f"UPDATE snapshots SET base_total = 'x' {ONE_SNAPSHOT}", "snapshots.base_total"),
    (f"UPDATE snapshots SET total = -1 {ONE_SNAPSHOT}", "snapshots.total"),
    (f"UPDATE snapshots SET base_customers = 1e999 {ONE_SNAPSHOT}", "snapshots.base_customers"),
    ("UPDATE flags SET date = '29/06/2025'", "flags.date"),
    ("UPDATE judged SET date = '2025-02-30'", "judged.date"),
])
def test_the_store_checks_each_value_it_reads(judged_state, tmp_path, damage, where):
    """The same checks in process, for the other columns the monitor reads (one place:
    ``MonitorStore._rows``): ``verify`` refuses the value and leaves the file as it was."""
    from analytics.customers.store import MonitorStore
    from shocklab.errors import InputError

    _, good = judged_state
    state = _state_in(tmp_path, good, damage)
    before = state.read_bytes()
    with sqlite3.connect(state) as con:
        ns = con.execute("SELECT namespace FROM judged").fetchone()[0]
    with MonitorStore(state) as store, pytest.raises(InputError) as err:
        store.verify(ns)
    msg = str(err.value)
    assert msg.startswith(f"{state}: not a usable SQLite monitor state file ({where} holds ")
    assert msg.endswith("move it aside to start afresh") and "\n" not in msg
    assert state.read_bytes() == before


def test_a_day_before_the_judged_one_is_refused_before_the_models_run(judged_state, tmp_path):
    """It printed the customer models' warnings ('customers: recency not scored …', 'CLV: model
    fit failed …') and then the error: three lines, the models fitted for nothing."""
    world, good = judged_state
    state = _state_in(tmp_path, good)
    out = tmp_path / "run"
    r = _analyse(world, "2025-01-01", out, tmp_path)
    line = _refused(r, state, good, out)
    assert line.startswith("error: --as-of 2025-01-01: the monitor state ") and \
        "already judged" in line and f"up to {JUDGED}" in line, line
