"""Alert sinks: Slack incoming webhook (Block Kit), a JSONL file, and the console.

An alert is a JSON-ready dict with at least ``alert_id``, ``title``, ``severity``, ``text`` and
``fields`` (a mapping shown as label/value pairs). The Slack URL comes from an environment variable
and is never logged or put in an error message.

Delivery is at-least-once with de-duplication:

* every alert carries an ``idempotency_key`` derived from its ``alert_id`` (the same on every
  retry); it is in the JSONL line, in the Slack payload (context line and ``metadata``) and in an
  ``Idempotency-Key`` header, so a receiver can drop a repeat;
* for each durable sink the outbox row is written as ``pending`` *before* the send and set to
  ``sent`` after it: a crash mid-send leaves it pending, and ``Dispatcher.retry_pending`` sends it
  again on the next run; what is ``sent`` is never sent again, even by a replay of the same data;
* a Slack POST that times out after the request went out is not retried in the same run (the
  server may have it): it stays pending, for one more attempt per later run, with the same key;
  ``timeout_s`` bounds a whole attempt (a server that answers a byte at a time is cut off), and a
  redirect is a failure, not followed (urllib re-sent a redirected POST as a GET without its body
  and took the GET's 200 for a delivery);
* once a sink fails in a run, that run's later alerts for it are queued (pending), not tried: a
  webhook that is down costs one set of attempts and one warning line per run, not one per alert;
* ``Dispatcher.send`` never raises.

The outbox lives outside the run directory (``default_state_dir()``: ``state/``, or
``SHOCKLAB_STATE_DIR``), because the run directory is replaced by every run.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("shocklab.alerts")


def idempotency_key(alert_id: str) -> str:
    """Stable key of an alert: every send and retry of it carries the same one."""
    return "shocklab-" + hashlib.sha256(str(alert_id).encode("utf-8")).hexdigest()[:32]


def default_state_dir() -> Path:
    """Where delivery state lives unless configured: ``state/`` (git-ignored) or
    ``SHOCKLAB_STATE_DIR``."""
    return Path(os.environ.get("SHOCKLAB_STATE_DIR") or "state")


def with_key(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert with its ``idempotency_key`` (derived from ``alert_id``) set."""
    if alert.get("idempotency_key"):
        return alert
    return {**alert, "idempotency_key": idempotency_key(alert.get("alert_id", ""))}

SEVERITY_EMOJI = {"warning": ":warning:", "high": ":rotating_light:", "critical": ":fire:"}


class SendError(Exception):
    """A sink could not deliver; the message never contains the webhook URL."""


class Sink(Protocol):
    name: str

    def send(self, alert: dict[str, Any]) -> None: ...


class Outbox(Protocol):
    def begin(self, sink: str, alert: dict[str, Any]) -> str: ...
    def record_failure(self, sink: str, alert: dict[str, Any], error: str) -> None: ...
    def record_sent(self, sink: str, alert_id: str) -> None: ...
    def pending(self, sink: str | None = None) -> list[tuple[str, dict[str, Any], int, str]]: ...


def block_kit(alert: dict[str, Any]) -> dict[str, Any]:
    """The Slack message: header, summary text, a grid of fields, and the alert id as context."""
    sev = str(alert.get("severity", ""))
    key = alert.get("idempotency_key") or idempotency_key(alert.get("alert_id", ""))
    fields = [
        {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in alert.get("fields", {}).items()
    ][:10]
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": f"{sev.upper()}: {alert.get('title', 'ShockLab alert')}"[:150],
            },
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{SEVERITY_EMOJI.get(sev, '')} {alert.get('text', '')}"[:3000],
            },
        },
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"ShockLab · {alert.get('alert_id', '')} · key {key}"}]})
    return {
        "text": f"{sev.upper()}: {alert.get('title', '')}",
        "blocks": blocks,
        "metadata": {
            "event_type": "shocklab_alert",
            "event_payload": {"alert_id": str(alert.get("alert_id", "")), "idempotency_key": key},
        },
    }


class _Cutter:
    """The connections of one attempt, and a watchdog that shuts their sockets at the deadline:
    the socket timeout bounds each read, not the answer (a server sending a byte per second
    would hold the run for hours)."""

    def __init__(self) -> None:
        self.conns: list[http.client.HTTPConnection] = []
        self.fired = False

    def cut(self) -> None:
        self.fired = True
        for conn in self.conns:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def factory(self, cls: type[http.client.HTTPConnection]) -> Any:
        def make(*args: Any, **kwargs: Any) -> http.client.HTTPConnection:
            conn = cls(*args, **kwargs)
            self.conns.append(conn)
            return conn
        return make


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx code


def _opener(cutter: _Cutter) -> urllib.request.OpenerDirector:
    class Http(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(cutter.factory(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(cutter.factory(http.client.HTTPSConnection), req,
                                context=self._context)

    return urllib.request.build_opener(_NoRedirect, Http, Https)  # proxies from the environment


class SlackSink:
    """POST Block Kit JSON to an incoming webhook; retries 5xx, 429 and connection errors
    (``retries`` times, exponential backoff). A timeout while waiting for the answer is not
    retried: the request went out, so a retry could post the alert twice. ``timeout_s`` bounds
    each attempt as a whole; a redirect (3xx) is a failure, never followed."""

    name = "slack"
    durable = True

    def __init__(self, url_env: str = "SLACK_WEBHOOK_URL", timeout_s: float = 5.0, retries: int = 3,
                 backoff_s: float = 1.0, sleep: Callable[[float], None] = time.sleep):
        self.url_env = url_env
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        self.attempts = 0  # HTTP attempts made, for tests and the run summary

    @property
    def configured(self) -> bool:
        return bool(os.environ.get(self.url_env))

    def send(self, alert: dict[str, Any]) -> None:
        url = os.environ.get(self.url_env)
        if not url:
            raise SendError(f"environment variable {self.url_env} is not set")
        try:  # the URL is a secret: say what is wrong with it, never what it is
            parts = urllib.parse.urlsplit(url.strip())
            _ = parts.port  # ValueError when not a number in 0-65535
            # a space, a control or a non-ASCII character: http.client refuses the URL (it was
            # retried with backoff as a "network error", or ended as a bare UnicodeEncodeError)
            ok = (parts.scheme in ("http", "https") and bool(parts.hostname)
                  and url.strip().isascii() and not re.search(r"[\x00-\x20\x7f]", url.strip()))
        except ValueError:
            ok = False
        if not ok:
            raise SendError(f"environment variable {self.url_env} does not hold an http(s) URL")
        body = json.dumps(block_kit(alert)).encode("utf-8")
        key = alert.get("idempotency_key") or idempotency_key(alert.get("alert_id", ""))
        last = "unknown error"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.attempts += 1
            req = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            )
            cutter = _Cutter()
            watchdog = threading.Timer(self.timeout_s, cutter.cut)
            watchdog.daemon = True
            watchdog.start()
            try:
                # the status is the answer: the body is not read (it could trickle forever)
                with _opener(cutter).open(req, timeout=self.timeout_s):
                    pass
                if not cutter.fired:
                    return
                raise TimeoutError  # the answer came as the watchdog cut the connection
            except urllib.error.HTTPError as exc:
                exc.close()
                last = f"HTTP {exc.code}"
                if 300 <= exc.code < 400:
                    last += (" (a redirect, not followed: the webhook URL must take the POST "
                             f"itself; check {self.url_env})")
                if exc.code != 429 and exc.code < 500:
                    break  # a client error will not get better by retrying
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                if cutter.fired or isinstance(exc, TimeoutError):
                    # sent, no (whole) answer in time: the server may have it; no retry now
                    last = (f"network error (timeout: no answer within {self.timeout_s:g} s; kept "
                            "pending, not retried in this run)")
                    break
                last = f"network error ({type(reason).__name__})"
            finally:
                watchdog.cancel()
            log.debug("slack: attempt %d failed: %s", attempt + 1, last)
        raise SendError(f"slack webhook failed after {attempt + 1} attempt(s): {last}")


class JsonlSink:
    """Append one JSON line per alert, with its ``idempotency_key``; a key already in the file is
    not appended again (so a retry after a crash between the write and the outbox update does not
    duplicate the line).

    durable : False for a file inside the run directory (a report of this run, rewritten by every
        run: not tracked in the outbox); True for a file that outlives runs (``jsonl_path``).
    """

    name = "jsonl"

    def __init__(self, path: str | Path, durable: bool = True):
        self.path = Path(path)
        self.durable = durable
        self._keys: set[str] | None = None

    def _written(self) -> set[str]:
        if self._keys is None:
            self._keys = set()
            if self.path.is_file():
                with self.path.open(encoding="utf-8") as f:
                    for line in f:
                        try:
                            self._keys.add(str(json.loads(line).get("idempotency_key")))
                        except (ValueError, AttributeError):
                            continue  # a line cut by a crash: the alert is re-appended whole
        return self._keys

    def send(self, alert: dict[str, Any]) -> None:
        alert = with_key(alert)
        try:
            if alert["idempotency_key"] in self._written():
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(alert, sort_keys=True) + "\n")
        except OSError as exc:
            raise SendError(f"{self.path}: cannot append alert ({exc.strerror})") from None
        self._written().add(alert["idempotency_key"])


class ConsoleSink:
    name = "console"
    durable = False  # a log line, not a delivery: printed every run, never in the outbox

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, alert: dict[str, Any]) -> None:
        self.logger.warning(
            "ALERT [%s] %s — %s", alert.get("severity"), alert.get("title"), alert.get("text")
        )


class LinkedOutbox:
    """An outbox that also counts the deliveries another outbox file recorded: a replay's
    (``state/alerts.sqlite``) and the daily monitor's (``state/customers.sqlite``) are two files,
    and a replay after daily ``--as-of`` runs re-sent every alert they had delivered (the same
    ids; Slack ignores the idempotency key). The other file is read only, never written."""

    def __init__(self, main: Any, other: Path | None):
        self.main = main
        self.other = other

    def __getattr__(self, name: str) -> Any:
        return getattr(self.main, name)

    def sent_elsewhere(self, sink: str, alert_id: str) -> bool:
        if self.other is None or not self.other.is_file():
            return False
        import sqlite3

        try:
            con = sqlite3.connect(f"file:{self.other}?mode=ro", uri=True, timeout=5)
            try:
                row = con.execute("SELECT status FROM outbox WHERE alert_id=? AND sink=?",
                                  (alert_id, sink)).fetchone()
            finally:
                con.close()
        except sqlite3.Error:   # no outbox table yet, a locked or foreign file: not known there
            return False
        return row is not None and row[0] == "sent"

    def begin(self, sink: str, alert: dict[str, Any]) -> str:
        status = self.main.begin(sink, alert)
        if status != "sent" and self.sent_elsewhere(sink, alert["alert_id"]):
            self.main.record_sent(sink, alert["alert_id"])
            return "sent"
        return status

    def pending(self, sink: str | None = None) -> list[tuple[str, dict[str, Any], int, str]]:
        out = []
        for row in self.main.pending(sink):
            if self.sent_elsewhere(row[0], row[1].get("alert_id", "")):
                self.main.record_sent(row[0], row[1]["alert_id"])
            else:
                out.append(row)
        return out


class Dispatcher:
    """Send to every sink through the outbox (pending before the send, sent after); retry what is
    pending later. Never raises. Within one run an alert is attempted at most once per sink, and
    a sink that failed is not tried again in the run (its later alerts stay pending, one warning
    line in all)."""

    def __init__(self, sinks: list[Any], outbox: Outbox | None = None):
        self.sinks = list(sinks)
        self.outbox = outbox
        self.failures = 0
        self.skipped = 0  # sends not made because an earlier run delivered them
        self._tried: set[tuple[str, str]] = set()
        self._down: dict[str, str] = {}  # sink name -> its first failure in this run

    def _outbox_call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 — a broken outbox must not stop the run
            log.error("alert outbox: %s failed (%s: %s)", what, type(exc).__name__, exc)
            return None

    def _deliver(self, sink: Any, alert: dict[str, Any], retry: bool = False) -> bool:
        durable = self.outbox is not None and getattr(sink, "durable", True)
        tried = (sink.name, alert["alert_id"])
        if durable:
            if tried in self._tried:
                return False  # attempted in this run already: once per run, the rest is retries'
            if (
                not retry
                and self._outbox_call("begin", self.outbox.begin, sink.name, alert) == "sent"
            ):
                self.skipped += 1
                return True
            self._tried.add(tried)
        down = self._down.get(sink.name)
        try:
            if down is not None:  # failed earlier in this run: queue, do not try (nor log) again
                raise SendError(f"not tried: {sink.name} failed earlier in this run ({down})")
            sink.send(alert)
        except Exception as exc:  # a sink must never stop the run
            msg = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}"
            if down is None:
                self._down[sink.name] = msg
                log.warning(
                    "alert %s not delivered to %s: %s (kept for retry%s)",
                    alert.get("alert_id"),
                    sink.name,
                    msg,
                    "; this run's later alerts for it are queued, not tried" if durable else "",
                )
            self.failures += 1
            if durable:
                self._outbox_call(
                    "record_failure", self.outbox.record_failure, sink.name, alert, msg
                )
            return False
        if durable:
            self._outbox_call("record_sent", self.outbox.record_sent, sink.name, alert["alert_id"])
        return True

    def enqueue(self, alert: dict[str, Any]) -> None:
        """Write the alert's outbox rows (``pending``) without sending: call it before recording the
        alert as issued, so that no crash can leave an issued alert with no pending delivery."""
        if self.outbox is None:
            return
        alert = with_key(alert)
        for sink in self.sinks:
            if getattr(sink, "durable", True):
                self._outbox_call("begin", self.outbox.begin, sink.name, alert)

    def send(self, alert: dict[str, Any]) -> dict[str, bool]:
        """Deliver one alert; returns sink name -> delivered (now or by an earlier run)."""
        alert = with_key(alert)
        return {sink.name: self._deliver(sink, alert) for sink in self.sinks}

    def pending(self, namespace: str | None = None) -> list[tuple[str, dict[str, Any], int, str]]:
        """The outbox's undelivered (sink, alert, attempts, last error), of ``namespace``'s
        store only when given (an alert without one is anyone's, as written before)."""
        rows = (self._outbox_call("pending", self.outbox.pending) or []
                ) if self.outbox is not None else []
        return [r for r in rows
                if namespace is None or r[1].get("namespace", namespace) == namespace]

    def retry_pending(self, namespace: str | None = None) -> dict[str, int]:
        """Re-send what earlier runs did not deliver (failed, or cut off by a crash mid-send);
        returns counts of sent and still pending. With ``namespace``, only that store's alerts:
        one state file may serve several stores, and another store's alert went to this run's
        webhook (and was marked sent, so its own store never got it)."""
        out = {"sent": 0, "pending": 0}
        if self.outbox is None:
            return out
        by_name = {s.name: s for s in self.sinks}
        for sink_name, alert, _attempts, _err in self.pending(namespace):
            sink = by_name.get(sink_name)
            if sink is None or (sink_name, alert.get("alert_id")) in self._tried:
                out["pending"] += 1
                continue
            if self._deliver(sink, with_key(alert), retry=True):
                out["sent"] += 1
            else:
                out["pending"] += 1
        return out
