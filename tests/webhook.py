"""A fake Slack incoming webhook on 127.0.0.1 (a real HTTP server in a thread), shared by the alert
tests: it answers with the queued ``statuses`` (then ``default``) after ``delay`` seconds and
records every POST's JSON body (``posts``) and ``Idempotency-Key`` header (``keys``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeWebhook:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.default = 200
        self.delay = 0.0
        self.posts: list[dict] = []
        self.keys: list[str | None] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.posts.append(body)
                hook.keys.append(self.headers.get("Idempotency-Key"))
                time.sleep(hook.delay)
                status = hook.statuses.pop(0) if hook.statuses else hook.default
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"error")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/SECRET-TOKEN"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
