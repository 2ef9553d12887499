"""SQLite state of the customer monitor: daily segment snapshots, flagged days, issued alerts and
the outbox of sends that failed (retried on the next run).

Created on first use. Migrations are numbered and recorded in ``PRAGMA user_version``; each is
idempotent (``IF NOT EXISTS``), so running them again — or from two processes — is safe.
Everything is keyed by a ``namespace`` (the data set), so one file can serve several stores.
Cooldown and de-duplication are answered from the ``alerts`` rows with dates up to the day being
judged, which makes a restart (a new process on the same file) and a re-run of a replay behave
as if the process had never stopped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from shocklab.errors import InputError

MIGRATIONS: list[str] = [
    # 1: snapshots and alert state
    """
    CREATE TABLE IF NOT EXISTS snapshots (
        namespace TEXT NOT NULL, date TEXT NOT NULL, segment TEXT NOT NULL,
        customers INTEGER NOT NULL, total INTEGER NOT NULL,
        base_customers REAL, base_total REAL,
        PRIMARY KEY (namespace, date, segment));
    CREATE TABLE IF NOT EXISTS flags (
        namespace TEXT NOT NULL, date TEXT NOT NULL, segment TEXT NOT NULL,
        severity TEXT NOT NULL, growth REAL NOT NULL, z REAL NOT NULL, incident_id TEXT NOT NULL,
        PRIMARY KEY (namespace, date, segment));
    CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY, namespace TEXT NOT NULL, date TEXT NOT NULL,
        segment TEXT NOT NULL, severity TEXT NOT NULL, incident_id TEXT NOT NULL,
        escalated INTEGER NOT NULL DEFAULT 0, payload TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS alerts_by_segment ON alerts (namespace, segment, severity, date);
    CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts (namespace, incident_id);
    """,
    # 2: outbox of failed sends, retried later
    """
    CREATE TABLE IF NOT EXISTS outbox (
        alert_id TEXT NOT NULL, sink TEXT NOT NULL, payload TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, status TEXT NOT NULL DEFAULT 'pending',
        PRIMARY KEY (alert_id, sink));
    """,
]


class MonitorStore:
    """A connection to the monitor's SQLite file (``":memory:"`` works for tests)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot create the monitor state directory ({exc.strerror})") from None
        try:
            self.conn = sqlite3.connect(self.path, timeout=30)
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path}: not a usable SQLite monitor state file ({exc})") from None

    def migrate(self) -> int:
        """Apply the migrations not yet recorded; returns the schema version."""
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        for i, sql in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.conn:
                self.conn.executescript(sql)
                self.conn.execute(f"PRAGMA user_version = {i}")
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> MonitorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- snapshots ---------------------------------------------------------------------------
    def put_snapshots(self, namespace: str, snaps: pd.DataFrame) -> None:
        """Upsert rows of (date, segment, customers, total, base_customers, base_total)."""
        cols = ["date", "segment", "customers", "total", "base_customers", "base_total"]
        rows = [(namespace, pd.Timestamp(d).date().isoformat(), str(s), int(c), int(t),
                 None if pd.isna(bc) else float(bc), None if pd.isna(bt) else float(bt))
                for d, s, c, t, bc, bt in snaps[cols].itertuples(index=False)]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def snapshots(self, namespace: str, segment: str | None = None) -> pd.DataFrame:
        q = ("SELECT date, segment, customers, total, base_customers, base_total FROM snapshots "
             "WHERE namespace = ?")
        args: list[Any] = [namespace]
        if segment is not None:
            q += " AND segment = ?"
            args.append(segment)
        df = pd.read_sql_query(q + " ORDER BY date, segment", self.conn, params=args)
        df["date"] = pd.to_datetime(df["date"])
        return df

    # -- flags and alerts --------------------------------------------------------------------
    def last_flag_before(self, namespace: str, segment: str, date: str) -> tuple[str, str] | None:
        """(date, incident_id) of the latest flagged day strictly before ``date``."""
        return self.conn.execute(
            "SELECT date, incident_id FROM flags WHERE namespace=? AND segment=? AND date<? "
            "ORDER BY date DESC LIMIT 1", (namespace, segment, date)).fetchone()

    def put_flag(self, namespace: str, date: str, segment: str, severity: str, growth: float,
                 z: float, incident_id: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO flags VALUES (?, ?, ?, ?, ?, ?, ?)",
                              (namespace, date, segment, severity, growth, z, incident_id))

    def has_alert(self, alert_id: str) -> bool:
        return self.conn.execute("SELECT 1 FROM alerts WHERE alert_id=?", (alert_id,)).fetchone() is not None

    def incident_alerts(self, namespace: str, incident_id: str, before: str) -> list[tuple[str, int]]:
        """(severity, escalated) of the alerts issued for an incident before ``before``."""
        return self.conn.execute(
            "SELECT severity, escalated FROM alerts WHERE namespace=? AND incident_id=? AND date<?",
            (namespace, incident_id, before)).fetchall()

    def last_alert_date(self, namespace: str, segment: str, severity: str, before: str) -> str | None:
        row = self.conn.execute(
            "SELECT MAX(date) FROM alerts WHERE namespace=? AND segment=? AND severity=? AND date<?",
            (namespace, segment, severity, before)).fetchone()
        return row[0] if row else None

    def put_alert(self, alert: dict[str, Any]) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (alert["alert_id"], alert["namespace"], alert["date"], alert["segment"],
                 alert["severity"], alert["incident_id"], int(alert.get("escalated", False)),
                 json.dumps(alert)))

    def alerts(self, namespace: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT payload FROM alerts WHERE namespace=? ORDER BY date, alert_id",
                                 (namespace,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- outbox (the alerts.Outbox protocol) ---------------------------------------------------
    def record_failure(self, sink: str, alert: dict[str, Any], error: str) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO outbox (alert_id, sink, payload, attempts, last_error, status) "
                "VALUES (?, ?, ?, 1, ?, 'pending') ON CONFLICT(alert_id, sink) DO UPDATE SET "
                "attempts = attempts + 1, last_error = excluded.last_error, status = 'pending'",
                (alert["alert_id"], sink, json.dumps(alert), error))

    def record_sent(self, sink: str, alert_id: str) -> None:
        with self.conn:
            self.conn.execute("UPDATE outbox SET status='sent' WHERE alert_id=? AND sink=?", (alert_id, sink))

    def pending(self, sink: str | None = None) -> list[tuple[str, dict[str, Any], int, str]]:
        """(sink, alert, attempts, last_error) of the sends still to do."""
        q = "SELECT sink, payload, attempts, last_error FROM outbox WHERE status='pending'"
        args: Iterable[Any] = ()
        if sink is not None:
            q += " AND sink=?"
            args = (sink,)
        return [(s, json.loads(p), a, e) for s, p, a, e in self.conn.execute(q + " ORDER BY alert_id", tuple(args))]
