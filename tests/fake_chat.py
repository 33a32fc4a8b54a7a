"""A local OpenAI-compatible chat endpoint whose replies a test scripts: ``answer(body) -> str``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        reply = {
            "choices": [{"message": {"role": "assistant", "content": self.server.answer(body)}}]
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextmanager
def fake_chat_server(answer: Callable[[dict], str]) -> Iterator[ThreadingHTTPServer]:
    """Serve on a free loopback port; ``server.requests`` lists (path, JSON body) received and
    ``server.url`` is the base URL to pass as ``--llm-url``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests, server.answer = [], answer
    server.url = f"http://127.0.0.1:{server.server_port}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def user_text(body: dict) -> str:
    """The last user message of a chat request."""
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def system_text(body: dict) -> str:
    """The system message of a chat request ("" when there is none)."""
    return next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
