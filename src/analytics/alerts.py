"""Alert sinks: Slack incoming webhook (Block Kit), a JSONL file, and the console.

An alert is a JSON-ready dict with at least ``alert_id``, ``title``, ``severity``, ``text`` and
``fields`` (a mapping shown as label/value pairs). ``Dispatcher.send`` never raises: a sink that
fails is recorded in the outbox (``MonitorStore``) and retried by ``Dispatcher.retry_pending`` on
the next run, so no alert is lost. The Slack URL comes from an environment variable and is never
logged or put in an error message.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("shocklab.alerts")

SEVERITY_EMOJI = {"warning": ":warning:", "high": ":rotating_light:", "critical": ":fire:"}


class SendError(Exception):
    """A sink could not deliver; the message never contains the webhook URL."""


class Sink(Protocol):
    name: str

    def send(self, alert: dict[str, Any]) -> None: ...


class Outbox(Protocol):
    def record_failure(self, sink: str, alert: dict[str, Any], error: str) -> None: ...
    def record_sent(self, sink: str, alert_id: str) -> None: ...
    def pending(self, sink: str | None = None) -> list[tuple[str, dict[str, Any], int, str]]: ...


def block_kit(alert: dict[str, Any]) -> dict[str, Any]:
    """The Slack message: header, summary text, a grid of fields, and the alert id as context."""
    sev = str(alert.get("severity", ""))
    fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in alert.get("fields", {}).items()][:10]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text",
                                    "text": f"{sev.upper()}: {alert.get('title', 'ShockLab alert')}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"{SEVERITY_EMOJI.get(sev, '')} {alert.get('text', '')}"[:3000]}},
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"ShockLab · {alert.get('alert_id', '')}"}]})
    return {"text": f"{sev.upper()}: {alert.get('title', '')}", "blocks": blocks}


class SlackSink:
    """POST Block Kit JSON to an incoming webhook; retries 5xx, 429 and network errors."""

    name = "slack"

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
        body = json.dumps(block_kit(alert)).encode("utf-8")
        last = "unknown error"
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff_s * 2 ** (attempt - 1))
            self.attempts += 1
            req = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                    resp.read()
                return
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # a client error will not get better by retrying
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"network error ({type(reason).__name__})"
            log.debug("slack: attempt %d failed: %s", attempt + 1, last)
        raise SendError(f"slack webhook failed after {attempt + 1} attempt(s): {last}")


class JsonlSink:
    """Append one JSON line per alert (the durable local record)."""

    name = "jsonl"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def send(self, alert: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(alert, sort_keys=True) + "\n")
        except OSError as exc:
            raise SendError(f"{self.path}: cannot append alert ({exc.strerror})") from None


class ConsoleSink:
    name = "console"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, alert: dict[str, Any]) -> None:
        self.logger.warning("ALERT [%s] %s — %s", alert.get("severity"), alert.get("title"), alert.get("text"))


class Dispatcher:
    """Send to every sink; record failures in the outbox; retry them later. Never raises."""

    def __init__(self, sinks: list[Any], outbox: Outbox | None = None):
        self.sinks = list(sinks)
        self.outbox = outbox
        self.failures = 0

    def _deliver(self, sink: Any, alert: dict[str, Any]) -> bool:
        try:
            sink.send(alert)
            return True
        except Exception as exc:  # a sink must never stop the run
            msg = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}"
            log.warning("alert %s not delivered to %s: %s (kept for retry)", alert.get("alert_id"), sink.name, msg)
            self.failures += 1
            if self.outbox is not None:
                try:
                    self.outbox.record_failure(sink.name, alert, msg)
                except Exception as exc2:  # noqa: BLE001 — last resort, still do not crash
                    log.error("alert %s: outbox write failed too (%s)", alert.get("alert_id"), type(exc2).__name__)
            return False

    def send(self, alert: dict[str, Any]) -> dict[str, bool]:
        """Deliver one alert; returns sink name -> delivered."""
        return {sink.name: self._deliver(sink, alert) for sink in self.sinks}

    def retry_pending(self) -> dict[str, int]:
        """Re-send what earlier runs failed to deliver; returns counts of sent and still pending."""
        out = {"sent": 0, "pending": 0}
        if self.outbox is None:
            return out
        by_name = {s.name: s for s in self.sinks}
        for sink_name, alert, _attempts, _err in self.outbox.pending():
            sink = by_name.get(sink_name)
            if sink is None:
                out["pending"] += 1
                continue
            try:
                sink.send(alert)
            except Exception as exc:
                msg = str(exc) if isinstance(exc, SendError) else type(exc).__name__
                self.outbox.record_failure(sink_name, alert, msg)
                out["pending"] += 1
                continue
            self.outbox.record_sent(sink_name, alert["alert_id"])
            out["sent"] += 1
        return out
