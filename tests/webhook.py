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

        self.server, self.url = serve(Handler)

    def close(self) -> None:
        stop(self.server)


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """``handler`` on 127.0.0.1 (a free port) in a daemon thread, and a Slack-like webhook URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/services/T000/B000/SECRET-TOKEN"


def stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()
