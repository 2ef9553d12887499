"""SlackSink: a timeout while waiting for the answer is not retried in the same run (the POST went
out; a retry could post the alert twice). Only the watchdog's cut was tested; a socket timeout
raised by the read itself was retried by a mutant that dropped the TimeoutError branch
(audit-mutcli)."""

from __future__ import annotations

import pytest

from analytics import alerts


def test_a_read_timeout_is_one_attempt_kept_pending(monkeypatch):
    class Opener:
        def open(self, req, timeout):
            raise TimeoutError("timed out")

    monkeypatch.setattr(alerts, "_opener", lambda cutter: Opener())
    monkeypatch.setenv("SLACK_TEST_URL", "https://hooks.example.invalid/T/B/x")
    sink = alerts.SlackSink(url_env="SLACK_TEST_URL", retries=3, sleep=lambda s: None)
    with pytest.raises(alerts.SendError, match="after 1 attempt.*timeout"):
        sink.send({"alert_id": "a", "title": "t", "severity": "high", "text": "x", "fields": {}})
    assert sink.attempts == 1


def test_a_jsonl_line_that_is_no_object_does_not_stop_the_sink(tmp_path):
    """An alerts file with a stray line (a list, a number: edited, or another program's) is read
    past when looking for keys already written; the sink still appends, once."""
    import json

    path = tmp_path / "alerts.jsonl"
    key = alerts.idempotency_key("old")
    path.write_text("[1, 2]\n7\n" + json.dumps({"idempotency_key": key}) + "\n")
    sink = alerts.JsonlSink(path)
    sink.send({"alert_id": "old"})          # already there: not appended again
    sink.send({"alert_id": "new"})
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["alert_id"] == "new"
