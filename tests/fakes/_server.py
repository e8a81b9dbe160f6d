"""The HTTP plumbing the fake Azure services share: a threaded local server, request recording, canned replies."""

from __future__ import annotations

import abc
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import isodate


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it. `headers` never holds Authorization; `authorized` says it was sent."""

    method: str
    path: str  # percent-decoded path, without the query string
    query: dict[str, str]  # query-string parameters (last value wins)
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or the raw text when it was not JSON, or None
    authorized: bool  # an `Authorization: Bearer ...` header was present


@dataclass(frozen=True)
class Reply:
    """A response: `body` is JSON-encoded unless it is bytes; None means no body at all."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def error_body(code: str, message: str, *, inner_code: str | None = None, inner_message: str | None = None) -> dict:
    """Azure's error envelope: {"error": {"code", "message", "innererror": {"code", "message"}}}."""
    err: dict[str, Any] = {"code": code, "message": message}
    if inner_code is not None or inner_message is not None:
        err["innererror"] = {"code": inner_code or code, "message": inner_message or message}
    return {"error": err}


def parse_instant(text: str) -> datetime:
    value = isodate.parse_datetime(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_duration(text: str, *, anchor: datetime) -> timedelta:
    value = isodate.parse_duration(text)
    if isinstance(value, timedelta):
        return value
    return value.totimedelta(end=anchor)  # years / months


def parse_timespan(text: str | None, *, now: datetime) -> tuple[datetime, datetime] | None:
    """ISO-8601 interval (`start/end`, `start/duration`, `duration/end`) or a duration ending now."""
    if not text:
        return None
    if "/" not in text:
        return now - parse_duration(text, anchor=now), now
    a, b = text.split("/", 1)
    if a.startswith("P"):
        end = parse_instant(b)
        return end - parse_duration(a, anchor=end), end
    start = parse_instant(a)
    if b.startswith("P"):
        return start, start + parse_duration(b, anchor=start)
    return start, parse_instant(b)


def iso_z(value: datetime) -> str:
    """2024-10-14T12:09:00Z (UTC, whole seconds unless there is a fraction)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    text = value.isoformat()
    return text + "Z"


Route = Callable[[RecordedRequest], Reply]


class FakeAzureServer(abc.ABC):
    """A threaded HTTP server on 127.0.0.1 (port chosen by the OS), recording every request.

    Use as a context manager (`with Fake(...) as fake: fake.url`), or `start()` / `stop()`.
    Subclasses implement `handle(request) -> Reply`. Replies queued with `enqueue()` are consumed first,
    one per request, in order. Requests without a bearer token get 401, as Azure answers, unless
    `require_auth=False`.
    """

    def __init__(self, *, require_auth: bool = True, now: datetime | None = None) -> None:
        self.require_auth = require_auth
        self.now_fixed = now
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Reply | Route] = deque()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving; returns the base URL, e.g. http://127.0.0.1:53211."""
        if self._httpd is not None:
            return self.url
        self.open()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        host, port = httpd.server_address[:2]
        self.url = f"http://{host!s}:{port}"
        return self.url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.close()

    def __enter__(self) -> FakeAzureServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def open(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Acquire resources before serving (subclasses)."""

    def close(self) -> None:  # noqa: B027 (an optional hook, empty by default)
        """Release resources after serving (subclasses)."""

    # ---- recording and scripting -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            return self._requests[-1]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def enqueue(self, *replies: Reply | Route, times: int = 1) -> None:
        """Answer the next requests with these (in order, each `times` times) before the normal handling."""
        with self._lock:
            for _ in range(times):
                self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies are still to be consumed."""
        with self._lock:
            return len(self._queue)

    def _next_queued(self) -> Reply | Route | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def now(self) -> datetime:
        return self.now_fixed if self.now_fixed is not None else datetime.now(UTC)

    @abc.abstractmethod
    def handle(self, request: RecordedRequest) -> Reply:
        """Answer one request that no queued reply answered (each service's fake says how)."""

    def _dispatch(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
        if self.require_auth and not request.authorized:
            return Reply(
                401, error_body("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            )
        return self.handle(request)


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeAzureServer
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections give up

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except json.JSONDecodeError:
                body = text
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        auth = self.headers.get("Authorization", "")
        request = RecordedRequest(
            method=self.command,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=headers,
            body=body,
            authorized=auth.startswith("Bearer ") and len(auth) > len("Bearer "),
        )
        try:
            reply = self.server_fake._dispatch(request)
        except Exception as exc:  # a bug in the fake: say so rather than hang the client
            reply = Reply(500, error_body("FakeServerError", f"{type(exc).__name__}: {exc}"))
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            payload = b""
        elif isinstance(reply.body, bytes):
            payload = reply.body
        else:
            payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if payload and "content-type" not in headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.status != 204:
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and reply.status != 204:
            self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve
    do_PATCH = _serve
