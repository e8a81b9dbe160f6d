"""Test doubles shared across layers: a fake clock, a webhook receiver, an empty workspace, an in-memory transport."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb

from queries import schemas


class FakeClock:
    """Epoch seconds that move only when told to (or when the simulator 'sleeps')."""

    def __init__(self, start: float | None = None) -> None:
        self.t = start if start is not None else float(int(datetime.now(UTC).timestamp()))
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds


class Receiver:
    """A local webhook endpoint recording every JSON body posted to it."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"


def empty_workspace(path: Path) -> Path:
    """An AzureDiagnostics table with no rows, so the simulator's records are all there is."""
    con = duckdb.connect(str(path))
    try:
        con.execute(schemas.create_table_sql("AzureDiagnostics"))
    finally:
        con.close()
    return path


def in_memory_transport(simulator: Any) -> Any:
    """An httpx2 transport answering from the simulator's core, without sockets: a streamed body is
    produced only as the client reads it, so simulated latency lands between the chunks on a fake clock."""
    import httpx2

    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        path = request.url.raw_path.decode()
        status, out_headers, body = simulator.handle("POST", path, headers, request.read(), "10.99.0.7")
        return httpx2.Response(status, headers=out_headers, content=body)

    return httpx2.MockTransport(handler)
