"""A real HTTP server on 127.0.0.1 that speaks enough of Slack: ``POST /api/chat.postMessage`` (token
in the ``Authorization`` header, form or JSON body) and incoming webhooks ``POST /services/...``, and a generic JSON webhook ``POST /hook...``.

It records every request (``requests``) and every message it accepted (``messages``), and can be told
how to answer the next requests: ``server.plan("429:2", "500", "slow:3", "drop", "ok")`` answers the
next five requests with a 429 (Retry-After 2), a 500, a 200 after 3 s, a closed connection, and a 200.
Requests beyond the plan are answered ``ok``. Usable as a context manager, or run standalone::

    python -m tests.support.fake_slack --port 0 --record /tmp/slack.jsonl
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

TOKEN = "xoxb-fake-test-token-0123456789"
WEBHOOK_PATH = "/services/T0FAKE/B0FAKE/fakeWebhookSecret0123"


class FakeSlack:
    def __init__(self, token: str = TOKEN, record_path: str | None = None, port: int = 0):
        self.token = token
        self.record_path = record_path
        self.requests: list[dict] = []
        self.messages: list[dict] = []
        self._plan: deque[str] = deque()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server API
                fake._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def plan(self, *answers: str) -> None:
        with self._lock:
            self._plan.extend(answers)

    def _next(self) -> str:
        with self._lock:
            return self._plan.popleft() if self._plan else "ok"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        """Wait until at least ``count`` messages arrived; returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.1)
        with self._lock:
            return list(self.messages)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode("utf-8", "replace")
        if "json" in (handler.headers.get("Content-Type") or ""):
            body = json.loads(raw or "{}")
        else:
            body = {k: v[0] for k, v in parse_qs(raw).items()}
            if isinstance(body.get("blocks"), str):
                body["blocks"] = json.loads(body["blocks"])
        answer = self._next()
        record = {"path": handler.path, "body": body, "answer": answer, "at": time.time(),
                  "authorization": handler.headers.get("Authorization")}
        with self._lock:
            self.requests.append(record)
        if answer == "drop":
            handler.close_connection = True
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if answer.startswith("429"):
            retry_after = answer.split(":", 1)[1] if ":" in answer else "1"
            return self._reply(handler, 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry_after})
        if answer == "500":
            return self._reply(handler, 500, {"ok": False, "error": "internal_error"})
        if answer.startswith("slow:"):
            time.sleep(float(answer.split(":", 1)[1]))
        if handler.path.startswith("/api/"):
            if handler.headers.get("Authorization") != f"Bearer {self.token}":
                return self._reply(handler, 200, {"ok": False, "error": "invalid_auth"})
            if not body.get("channel"):
                return self._reply(handler, 200, {"ok": False, "error": "channel_not_found"})
            self._accept(record, "api")
            return self._reply(handler, 200, {"ok": True, "channel": body["channel"], "ts": f"{time.time():.6f}"})
        if handler.path == WEBHOOK_PATH:
            self._accept(record, "webhook")
            return self._reply(handler, 200, "ok")
        if handler.path.startswith("/hook"):  # a generic JSON webhook
            self._accept(record, "http")
            return self._reply(handler, 200, {"ok": True})
        return self._reply(handler, 404, "no_service")

    def _accept(self, record: dict, kind: str) -> None:
        message = {"kind": kind, "channel": record["body"].get("channel"), "text": record["body"].get("text"),
                   "blocks": record["body"].get("blocks"), "body": record["body"], "at": record["at"]}
        with self._lock:
            self.messages.append(message)
        if self.record_path:
            with open(self.record_path, "a", encoding="utf-8") as out:
                out.write(json.dumps(message) + "\n")

    @staticmethod
    def _reply(handler, status: int, payload, headers: dict | None = None) -> None:
        data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:  # the client gave up (timeout): nothing to answer
            pass


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record")
    args = parser.parse_args()
    with FakeSlack(record_path=args.record, port=args.port) as server:
        print(server.api_url, flush=True)
        threading.Event().wait()
