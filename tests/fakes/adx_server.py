"""A local Azure Data Explorer endpoint over a demo workspace: duckdb-kql's own Kusto REST server
(`duckdb_kql.server`, the v1/v2 query endpoints with the v2 frame protocol), with the workspace file
attached read-only under a database name, so the real `azure-kusto-data` KustoClient can query it.

What this adds to duckdb-kql's server, for tests: every query request is recorded (database, query,
whether a bearer token came with it), a request without `Authorization: Bearer` is refused with 401 as a
cluster would, and canned replies can be queued (`enqueue`) to play throttling or a partial answer.
It binds 127.0.0.1 on a free port only.
"""

from __future__ import annotations

import io
import json
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb_kql
from duckdb_kql.server import KustoRestServer, _Handler, error_response

from ._server import Reply


@dataclass(frozen=True)
class AdxRequest:
    path: str
    database: str | None
    csl: str
    authorized: bool
    properties: Any


class _RecordingHandler(_Handler):
    server: AdxServer._Server  # type: ignore[assignment]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        auth = self.headers.get("Authorization", "")
        owner = self.server.owner
        if isinstance(body, dict) and "csl" in body:
            owner.requests.append(
                AdxRequest(
                    self.path.split("?", 1)[0],
                    body.get("db"),
                    str(body.get("csl")),
                    auth.startswith("Bearer ") and len(auth) > 7,
                    body.get("properties"),
                )
            )
        if not auth.startswith("Bearer "):
            self._send(401, error_response("no bearer token", code="Unauthorized"))
            return
        reply = owner.next_reply()
        if reply is not None:
            payload = reply.body(self.path) if callable(reply.body) else reply.body
            self._send(reply.status, payload)
            return
        self.rfile = io.BytesIO(raw)
        self.headers.replace_header("Content-Length", str(len(raw))) if "Content-Length" in self.headers else None
        super().do_POST()


class AdxServer:
    """The demo workspace at `workspace` served as Kusto database `database` on http://127.0.0.1:PORT."""

    class _Server(KustoRestServer):
        owner: AdxServer

    def __init__(self, workspace: Path, *, database: str = "AOAILogs") -> None:
        self.database = database
        con = duckdb_kql.connect(":memory:")
        con.execute(f"ATTACH '{str(workspace).replace(chr(39), chr(39) * 2)}' AS \"{database}\" (READ_ONLY)")
        con.execute(f'USE "{database}"')
        self._server = AdxServer._Server(con, port=0, quiet=True, source=str(workspace))
        self._server.RequestHandlerClass = _RecordingHandler
        self._server.owner = self
        self.requests: list[AdxRequest] = []
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._server.url

    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def next_reply(self) -> Reply | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    @property
    def pending(self) -> int:
        return len(self._queue)

    def queries(self) -> list[AdxRequest]:
        """The query requests (not the client's cloud-metadata probe)."""
        return [r for r in self.requests if r.path.endswith("/rest/query")]

    def __enter__(self) -> AdxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()


def partial_v2(columns: list[tuple[str, str]], rows: list[list[Any]], error: str) -> list[dict[str, Any]]:
    """A v2 answer whose query completed with an error reported in QueryCompletionInformation (as Kusto
    does for a truncated result): the rows so far, and a Level 2 (error) row."""
    return [
        {"FrameType": "DataSetHeader", "IsProgressive": False, "Version": "v2.0"},
        {
            "FrameType": "DataTable",
            "TableId": 1,
            "TableKind": "PrimaryResult",
            "TableName": "PrimaryResult",
            "Columns": [{"ColumnName": n, "ColumnType": t} for n, t in columns],
            "Rows": rows,
        },
        {
            "FrameType": "DataTable",
            "TableId": 2,
            "TableKind": "QueryCompletionInformation",
            "TableName": "QueryCompletionInformation",
            "Columns": [
                {"ColumnName": "Timestamp", "ColumnType": "datetime"},
                {"ColumnName": "ClientRequestId", "ColumnType": "string"},
                {"ColumnName": "Level", "ColumnType": "int"},
                {"ColumnName": "LevelName", "ColumnType": "string"},
                {"ColumnName": "StatusCode", "ColumnType": "int"},
                {"ColumnName": "Payload", "ColumnType": "string"},
            ],
            "Rows": [
                [
                    "2026-01-01T00:00:00Z",
                    "KPC.execute;x",
                    2,
                    "Error",
                    -2133196797,
                    json.dumps({"error": {"code": "LimitsExceeded", "message": error, "@message": error}}),
                ]
            ],
        },
        {"FrameType": "DataSetCompletion", "HasErrors": True, "Cancelled": False},
    ]
