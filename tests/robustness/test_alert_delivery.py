"""Alert delivery against a local webhook that hangs, fails, then recovers: the outbox is written
before the send, a timed-out POST is not multiplied, every attempt carries the same idempotency
key, a crash mid-send is re-sent on restart, and a replay never re-sends what was delivered."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from tests.webhook import serve, stop

from analytics.alerts import Dispatcher, JsonlSink, SlackSink, idempotency_key
from analytics.customers import monitor
from analytics.customers.config import CustomersConfig, MonitorConfig
from analytics.customers.pipeline import _dispatcher
from analytics.customers.store import DeliveryStore, MonitorStore
from shocklab.errors import InputError

ALERT = {"alert_id": "ns:At Risk:high:2025-03-01", "title": "'At Risk' grew", "severity": "high",
         "text": "details", "fields": {"Segment": "At Risk"}}
KEY = idempotency_key(ALERT["alert_id"])


def _slack(**kw) -> SlackSink:
    return SlackSink(
        **{"timeout_s": 0.3, "retries": 2, "backoff_s": 0.0, "sleep": lambda s: None, **kw}
    )


def test_hang_then_fail_then_recover(hook, tmp_path):
    state = tmp_path / "state" / "alerts.sqlite"
    hook.delay = 1.0  # the webhook hangs past the client timeout
    with DeliveryStore(state) as store:  # run 1: the POST goes out, the answer never comes in time
        disp = Dispatcher([_slack()], outbox=store)
        assert disp.send(ALERT) == {"slack": False}
        assert disp.retry_pending() == {"sent": 0, "pending": 1}  # not re-tried within the run
        assert disp.send(ALERT) == {"slack": False}
        (pending,) = store.pending()
    assert (
        len(hook.posts) == 1
    )  # a timeout is not multiplied (it reached the server 7 times before)
    assert pending[2] == 1 and "timeout" in pending[3]

    hook.delay, hook.default = 0.0, 500  # run 2: 500s are retried, bounded
    with DeliveryStore(state) as store:
        assert Dispatcher([_slack()], outbox=store).retry_pending() == {"sent": 0, "pending": 1}
    assert len(hook.posts) == 1 + 3  # 1 try + 2 retries

    hook.default = 200  # run 3: the webhook is back: delivered once, then marked sent
    with DeliveryStore(state) as store:
        assert Dispatcher([_slack()], outbox=store).retry_pending() == {"sent": 1, "pending": 0}
        assert store.status("slack", ALERT["alert_id"]) == "sent"
    assert len(hook.posts) == 5

    with DeliveryStore(state) as store:  # run 4: a replay of the same data sends nothing
        disp = Dispatcher([_slack()], outbox=store)
        assert disp.send(ALERT) == {"slack": True} and disp.skipped == 1
    assert len(hook.posts) == 5
    assert set(hook.keys) == {KEY}  # the same idempotency key on every attempt
    assert {b["metadata"]["event_payload"]["idempotency_key"] for b in hook.posts} == {KEY}


class Crash(BaseException):
    """The process dies (kill -9) after the POST went out, before the outbox says 'sent'."""


class DyingSlack(SlackSink):
    def send(self, alert):
        super().send(alert)
        raise Crash


def _row(day: int = 0) -> dict:
    return {"date": pd.Timestamp("2025-03-01") + pd.Timedelta(days=day), "segment": "At Risk",
            "severity": "high", "customers": 500, "total": 5000, "share": 0.1, "growth": 0.2,
            "normal_growth": 0.01, "z": 6.0}


def test_a_crash_during_the_send_is_resent_after_restart(hook, tmp_path):
    path = (
        tmp_path / "state" / "customers.sqlite"
    )  # daily mode: monitor state and outbox in one file
    cfg = MonitorConfig(cooldown_days=7)
    with MonitorStore(path) as store, pytest.raises(Crash):
        monitor.Monitor(
            cfg, store, Dispatcher([DyingSlack(timeout_s=2)], outbox=store), "ns"
        ).judge(_row())
    assert len(hook.posts) == 1

    with MonitorStore(
        path
    ) as store:  # the restart: the alert is issued, its delivery still pending
        disp = Dispatcher([_slack(timeout_s=2)], outbox=store)
        assert len(store.pending()) == 1
        assert disp.retry_pending() == {"sent": 1, "pending": 0}
        assert monitor.Monitor(cfg, store, disp, "ns").judge(_row())["decision"] == "already_sent"
        assert store.pending() == []
    # at least once, with the same key
    assert len(hook.keys) == 2 and hook.keys[0] == hook.keys[1] is not None


def test_a_replay_in_a_fresh_run_directory_does_not_resend(hook, tmp_path):
    cfg = CustomersConfig(alerts={"console": False, "slack": {"enabled": True, "timeout_s": 2}})
    decisions = []
    for run in ("run1", "run2"):  # each replay starts with an empty run-directory monitor state
        out = tmp_path / run
        out.mkdir()
        with MonitorStore(out / "monitor.sqlite") as store:
            disp = _dispatcher(cfg, out, store, persistent=False)
            # delivery state outside the run dir (linked to the daily monitor's, session 45)
            assert isinstance(disp.outbox.main, DeliveryStore)
            decisions.append(
                monitor.Monitor(cfg.monitor, store, disp, "ns").judge(_row())["decision"]
            )
            disp.outbox.close()
    assert decisions == ["sent", "sent"]  # the same analysis both times ...
    assert len(hook.posts) == 1  # ... but one delivery
    assert (tmp_path / "state" / "alerts.sqlite").is_file()
    assert json.loads((tmp_path / "run2" / "alerts.jsonl").read_text())["idempotency_key"] == KEY


def test_jsonl_lines_carry_the_key_and_are_not_repeated(tmp_path):
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"idempotency_key": "cut-by-a-cra')  # a line cut by a crash
    JsonlSink(path).send(ALERT)
    JsonlSink(path).send(ALERT)  # a retry in a new process
    lines = path.read_text().splitlines()
    assert [json.loads(x)["idempotency_key"] for x in lines[1:]] == [KEY]


def test_corrupt_and_locked_state_files_are_input_errors(tmp_path, monkeypatch):
    import analytics.customers.store as store_mod

    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 200)
    with pytest.raises(
        InputError, match="bad.sqlite: not a usable SQLite alert delivery state file"
    ):
        DeliveryStore(bad)

    path = tmp_path / "busy.sqlite"
    DeliveryStore(path).close()
    monkeypatch.setattr(store_mod, "BUSY_TIMEOUT_S", 0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing
    try:
        with pytest.raises(
            InputError, match="busy.sqlite: alert delivery state file is locked by another"
        ):
            DeliveryStore(path)
        with pytest.raises(InputError, match="monitor state file is locked"):
            MonitorStore(path)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_a_read_only_state_file_is_an_input_error_before_anything_is_sent(
        hook, tmp_path, monkeypatch):
    """A read-only outbox (file mode 0444, a read-only mount) opened and read: every write failed
    later, one error line each, and the delivered alert, whose 'sent' could not be recorded, was
    posted again by every run. It is now refused when opened, saying what is wrong (not "move it
    aside", which would forget the deliveries)."""
    import analytics.customers.store as store_mod

    path = tmp_path / "state" / "alerts.sqlite"
    with DeliveryStore(path) as store:
        Dispatcher([_slack()], outbox=store).send(ALERT)
        assert store.status("slack", ALERT["alert_id"]) == "sent"
    MonitorStore(tmp_path / "state" / "customers.sqlite").close()
    connect = sqlite3.connect  # what the OS does to a file the user may not write (root may)
    monkeypatch.setattr(store_mod.sqlite3, "connect", lambda p, **kw: connect(
        f"file:{p}?mode=ro", uri=True, **kw))
    with pytest.raises(InputError, match=r"alerts.sqlite: alert delivery state file is read-only "
                       r"\(attempt to write a readonly database\); make the file and its dir"):
        DeliveryStore(path)
    with pytest.raises(InputError, match="customers.sqlite: monitor state file is read-only"):
        MonitorStore(tmp_path / "state" / "customers.sqlite")


def test_slack_on_without_its_variable_is_skipped_with_one_line(tmp_path, monkeypatch, caplog):
    """Slack enabled but SLACK_WEBHOOK_URL unset: the Slack step is skipped (nothing sent, nothing
    queued for a later run, no warning per alert), one warning line names the variable, and the
    other sinks still get every alert."""
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    cfg = CustomersConfig(alerts={"console": False, "slack": {"enabled": True}})
    with caplog.at_level("WARNING"), MonitorStore(tmp_path / "monitor.sqlite") as store:
        disp = _dispatcher(cfg, tmp_path, store, persistent=True)
        assert [s.name for s in disp.sinks] == ["jsonl"]
        disp.send(ALERT)
        disp.send({**ALERT, "alert_id": "other"})
        assert store.pending() == []
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and "SLACK_WEBHOOK_URL" in lines[0] and "skipped" in lines[0]
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2


class _Raw:
    """A local HTTP server in a thread whose answer to a POST is written by ``answer(handler)``;
    it records each request line (method and path)."""

    def __init__(self, answer):
        from http.server import BaseHTTPRequestHandler

        self.requests: list[str] = []
        raw = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers["Content-Length"]))
                raw.requests.append(f"POST {self.path}")
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up

            def do_GET(self):  # noqa: N802
                raw.requests.append(f"GET {self.path}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server, self.url = serve(Handler)

    def close(self):
        stop(self.server)

    def deliver_once(self, tmp_path, monkeypatch) -> tuple:
        """One alert to this server as the Slack sink; it must fail: the pending row."""
        monkeypatch.setenv("SLACK_WEBHOOK_URL", self.url)
        try:
            with DeliveryStore(tmp_path / "alerts.sqlite") as store:
                assert Dispatcher([_slack()], outbox=store).send(ALERT) == {"slack": False}
                (pending,) = store.pending()
        finally:
            self.close()
        return pending


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_is_a_failure_not_a_delivery(tmp_path, monkeypatch, status):
    """urllib followed a 301/302/303 as a GET without the message, and the GET's 200 marked the
    alert 'sent': nothing reached Slack and it was never retried. A redirect is now a failure
    (pending, not followed, not retried in the run) that says what to check."""
    def answer(h):
        h.send_response(status)
        h.send_header("Location", "/moved")
        h.end_headers()

    srv = _Raw(answer)
    pending = srv.deliver_once(tmp_path, monkeypatch)
    assert srv.requests == ["POST /services/T000/B000/SECRET-TOKEN"]  # no GET, no retry
    assert f"HTTP {status}" in pending[3] and "redirect" in pending[3]
    assert "SECRET" not in pending[3] and "SLACK_WEBHOOK_URL" in pending[3]


def test_an_answer_that_trickles_in_is_cut_at_the_timeout(tmp_path, monkeypatch):
    """The socket timeout bounded each read, not the answer: a server sending its headers a byte
    at a time held the run until it finished (here ~10 s for a 0.3 s timeout; a real one, for
    ever) and then counted as delivered. The whole attempt is now bounded: pending, not
    retried in the run, and the server sees the client hang up before its answer is complete."""
    import time

    written = []

    def answer(h):
        h.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
        for _ in range(200):
            h.wfile.write(b"a")
            h.wfile.flush()
            written.append(1)
            time.sleep(0.05)
        h.wfile.write(b"\r\nContent-Length: 2\r\n\r\nok")
        written.append("done")

    srv = _Raw(answer)
    pending = srv.deliver_once(tmp_path, monkeypatch)
    assert "timeout" in pending[3] and "not retried in this run" in pending[3]
    assert len(srv.requests) == 1 and "done" not in written


def test_a_webhook_that_is_down_costs_one_line_and_keeps_every_alert_pending(
    hook, tmp_path, caplog
):
    """Every alert of a run used to spend its own retries against a dead webhook and print its
    own warning (a replay issuing dozens of alerts printed dozens of lines and waited retries ×
    backoff for each). After the first failure the run's later alerts are queued without a try:
    one warning line; the monitor still records every alert as issued (cooldown), each one
    pending; the next run delivers them all."""
    hook.default = 500
    cfg = MonitorConfig(cooldown_days=7)
    path = tmp_path / "state" / "customers.sqlite"
    rows = [{**_row(0), "segment": "At Risk"}, {**_row(0), "segment": "Lapsing"},
            {**_row(1), "segment": "At Risk", "severity": "critical"}]
    with caplog.at_level("WARNING", logger="shocklab"), MonitorStore(path) as store:
        mon = monitor.Monitor(cfg, store, Dispatcher([_slack()], outbox=store), "ns")
        decisions = [mon.judge(r) for r in rows]
        issued = [d["alert_id"] for d in decisions if d["decision"] == "sent"]
        assert len(issued) >= 2
        assert all(store.has_alert(a) for a in issued)  # cooldown state: issued, delivered or not
        assert sorted(p[1]["alert_id"] for p in store.pending()) == sorted(issued)
    assert len(hook.posts) == 3  # the first alert's 1 try + 2 retries; the others not tried
    lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(lines) == 1 and "HTTP 500" in lines[0] and "queued" in lines[0]

    hook.default = 200  # the next run: every pending alert goes out once, nothing is re-issued
    with MonitorStore(path) as store:
        disp = Dispatcher([_slack()], outbox=store)
        assert disp.retry_pending() == {"sent": len(issued), "pending": 0}
        again = monitor.Monitor(cfg, store, disp, "ns").judge(rows[0])
        assert again["decision"] == "already_sent"
    assert len(hook.posts) == 3 + len(issued)


def test_insights_name_the_sinks_an_issued_alert_still_waits_for(hook, tmp_path):
    """A daily run whose Slack send failed listed the alert with ``sent_this_run: true`` and
    nothing else per alert (only the run's ``undelivered`` count): a reader took it for sent.
    Each listed alert now carries ``undelivered_to``; the run that delivers it lists it empty."""
    from tests.analytics.customers.customers_synth import synthetic_store
    from tests.configs import make_config

    from analytics.context import DataSet, RunContext
    from analytics.customers import pipeline

    orders, _ = synthetic_store(n_customers=1500, days=420, seed=4, churn_share=0.1,
                                wave=(300, 0.5))
    ds = DataSet(path=tmp_path / "syn", tables={"orders": orders},
                 manifest={"scenario": "syn", "seed": 4})
    customers = {"plots": False, "monitor": {"segments": ["At Risk"],
                                             "state_path": str(tmp_path / "st.sqlite")},
                 "alerts": {"slack": {"enabled": True, "retries": 0, "backoff_s": 0.0,
                                      "timeout_s": 2.0}}}

    def run(day: str, out: str) -> dict:
        ctx = RunContext(config=make_config(seed=3, customers=customers), data=ds,
                         out_dir=tmp_path / out)
        ctx.as_of = day
        pipeline.run(ctx)
        return ctx.customers["monitor"]

    # the first day the monitor alerts (a replay on the same state would alert it too)
    replay = RunContext(config=make_config(seed=3, customers={"plots": False, "monitor": {
        "segments": ["At Risk"]}}), data=ds, out_dir=tmp_path / "replay")
    pipeline.run(replay)
    day = replay.customers["monitor"]["alerts"][0]["date"]

    hook.default = 500
    first = run(day, "r1")
    assert first["alerts"] and all(a["sent_this_run"] for a in first["alerts"])
    assert [a["undelivered_to"] for a in first["alerts"]] == [["slack"]] * len(first["alerts"])
    assert first["undelivered"] == len(first["alerts"])

    hook.default = 200   # the same day again: the retry delivers, nothing waits
    again = run(day, "r2")
    assert again["delivered_late"] == len(first["alerts"]) and again["undelivered"] == 0
    assert [a["undelivered_to"] for a in again["alerts"]] == [[]] * len(again["alerts"])
    assert not any(a["sent_this_run"] for a in again["alerts"])
