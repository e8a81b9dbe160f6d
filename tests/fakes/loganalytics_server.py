"""A local Log Analytics query API that runs the request's KQL with duckdb-kql over a demo workspace file.

It answers what the real `azure.monitor.query.LogsQueryClient` sends:

- `POST /v1/workspaces/{workspace}/query` with `{"query", "timespan", "workspaces"}`;
- `POST /v1/{resourceId}/query` (resource-context: only rows whose `_ResourceId` is that resource);
- `POST /v1/$batch` with `{"requests": [{"id", "body", "headers", "workspace", "path", "method"}]}`,
  answered `{"responses": [{"id", "status", "body"}]}`.

The timespan is applied the way Log Analytics applies it: every table with a `TimeGenerated` column is
seen through a filter `start <= TimeGenerated < end` (temporary views that shadow the tables), and
`now()` / `ago()` are pinned to the request time (or to `now=` given at construction).

Answers are typed like Log Analytics': string, bool, datetime (ISO, `Z`), int, long, real, dynamic (a
JSON-encoded string), guid, timespan (`[d.]hh:mm:ss[.fffffff]`); strings are never null (Kusto has no
null string), other types may be.

Faults are scripted per query (a batch consumes one per sub-request, in order): `partial_error()`,
`bad_request()`, `throttle()`, `no_content()`, `server_error()`, `types()`, or any `Reply` with
`enqueue()`. A KQL error from the engine is a 400 BadArgumentError whose innermost message is the
engine's message.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body, parse_timespan

# One row with every column type the Log Analytics API returns, produced by running this query through
# the same engine and converter as every other answer (so the conversion is exercised too).
TYPES_QUERY = (
    'print s = "hello", b = true, d = datetime(2000-01-02T03:04:05.1234567Z), i = toint(100), '
    'l = tolong(101), r = 102.5, dy = dynamic({"k": [1, "two"]}), '
    'g = toguid("74be27de-1e4e-49d9-b579-fe0b331d3642"), t = time(1.02:03:04.5)'
)
# What the SDK should hand back for TYPES_QUERY: column -> (Kusto type, Python value after LogsQueryClient).
TYPES_EXPECTED: dict[str, tuple[str, Any]] = {
    "s": ("string", "hello"),
    "b": ("bool", True),
    "d": ("datetime", datetime(2000, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    "i": ("int", 100),
    "l": ("long", 101),
    "r": ("real", 102.5),
    "dy": ("dynamic", '{"k":[1,"two"]}'),
    "g": ("guid", "74be27de-1e4e-49d9-b579-fe0b331d3642"),
    "t": ("timespan", "1.02:03:04.5000000"),
}

_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"}
_LONG_TYPES = {"BIGINT", "HUGEINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_REAL_TYPES = {"DOUBLE", "FLOAT", "REAL"}


def kusto_type(duckdb_type: str) -> str:
    """The Kusto column type Log Analytics would report for a DuckDB result column type."""
    t = duckdb_type.upper()
    if t == "VARCHAR":
        return "string"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return "datetime"
    if t in _INT_TYPES:
        return "int"
    if t in _LONG_TYPES:
        return "long"
    if t in _REAL_TYPES or t.startswith("DECIMAL"):
        return "real"
    if t == "UUID":
        return "guid"
    if t == "INTERVAL":
        return "timespan"
    if t == "JSON" or t.endswith("]") or t.startswith(("STRUCT", "MAP", "UNION")):
        return "dynamic"
    return "string"


def kusto_datetime(value: datetime | date) -> str:
    """2000-01-02T03:04:05.1234560Z: UTC, seven fractional digits when there is a fraction."""
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}0"
    return text + "Z"


def kusto_timespan(value: timedelta) -> str:
    """[-][d.]hh:mm:ss[.fffffff], as Kusto writes a timespan."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds, micros = value.days, value.seconds, value.microseconds
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if days:
        text = f"{days}.{text}"
    if micros:
        text += f".{micros:06d}0"
    return sign + text


def kusto_value(value: Any, ktype: str) -> Any:
    if value is None:
        return "" if ktype == "string" else None
    if ktype == "datetime":
        return kusto_datetime(value)
    if ktype == "timespan":
        return kusto_timespan(value)
    if ktype == "guid":
        return str(value)
    if ktype == "dynamic":
        if isinstance(value, str):  # DuckDB JSON arrives as its text
            return value
        return json.dumps(value, default=str, separators=(",", ":"))
    if ktype == "real":
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return f
    if ktype in ("int", "long"):
        return int(value)
    if ktype == "bool":
        return bool(value)
    if isinstance(value, (datetime, date, Decimal, uuid.UUID)):
        return str(value)
    return value if isinstance(value, str) else str(value)


class LogAnalyticsServer(FakeAzureServer):
    """The Log Analytics query API over a DuckDB workspace file (opened read-only).

    `workspace`: path of the DuckDB file (for instance the `demo_workspace` session fixture).
    `workspace_id`: when given, other workspace ids get 404 PathNotFoundError; otherwise any id is accepted.
    `workspaces`: more workspaces this server holds, id -> DuckDB file. A query naming several (the path's
    workspace plus the body's `workspaces`, as `additional_workspaces` sends them) runs over the union of
    their tables, as a cross-workspace query does in Log Analytics; an unknown id is a 404.
    `now`: pins `now()`/`ago()` and duration timespans (default: the wall clock at each request).
    `require_auth`: answer 401 to requests without a bearer token (default True).
    """

    def __init__(
        self,
        workspace: Path | str,
        *,
        workspace_id: str | None = None,
        now: datetime | None = None,
        require_auth: bool = True,
        workspaces: dict[str, Path | str] | None = None,
    ) -> None:
        super().__init__(require_auth=require_auth, now=now)
        self.workspace = Path(workspace)
        self.workspace_id = workspace_id
        self.extra_workspaces = {k.lower(): Path(v) for k, v in (workspaces or {}).items()}
        if self.extra_workspaces and workspace_id is None:
            raise ValueError("several workspaces need the first one's workspace_id")
        self._catalogs: dict[str, str] = {}  # workspace id (lower case) -> attached catalog
        self._tables: dict[str, list[str]] = {}  # catalog -> its tables
        self._con: duckdb.DuckDBPyConnection | None = None
        self._catalog = ""
        self._timed_tables: list[str] = []
        self._resource_tables: list[str] = []
        self._flight = threading.Condition()
        self._in_flight = 0
        self._max_in_flight = 0
        self._paused = False
        self.queries: list[str] = []  # the KQL text of every query run (batch sub-queries included)

    # ---- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> None:
        con = duckdb_kql.connect(str(self.workspace), read_only=True)
        self._catalog = con.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        cols = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", [self._catalog]
        ).fetchall()
        self._timed_tables = sorted({t for t, c in cols if c == "TimeGenerated"})
        self._resource_tables = sorted({t for t, c in cols if c == "_ResourceId"})
        if self.workspace_id is not None:
            self._catalogs[self.workspace_id.lower()] = self._catalog
        for i, (ws, path) in enumerate(sorted(self.extra_workspaces.items())):
            name = f"ws{i}"
            con.execute(f"ATTACH {_sql_literal(str(path))} AS {name} (READ_ONLY)")
            self._catalogs[ws] = name
            more = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = ?", [name]
            ).fetchall()
            self._timed_tables = sorted(set(self._timed_tables) | {t for t, c in more if c == "TimeGenerated"})
            self._resource_tables = sorted(set(self._resource_tables) | {t for t, c in more if c == "_ResourceId"})
        for catalog in {self._catalog, *self._catalogs.values()}:
            self._tables[catalog] = [
                r[0]
                for r in con.execute(
                    "SELECT DISTINCT table_name FROM information_schema.tables WHERE table_catalog = ?", [catalog]
                ).fetchall()
            ]
        self._con = con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # ---- fault scripting (each consumed by one query, in order) ------------------------------------------
    def partial_error(
        self, message: str = "Query exceeded the memory limit of this engine.", *, times: int = 1
    ) -> None:
        """Run the query, then answer 200 with its tables and a PartialError (as Log Analytics does)."""

        def reply(request: RecordedRequest, body: dict[str, Any]) -> Reply:
            answer = self._run(body, request)
            if answer.status != 200:
                return answer
            return Reply(200, {**answer.body, **_partial_error(message)})

        self.enqueue(_QueryRoute(reply), times=times)

    def bad_request(
        self,
        message: str = "Syntax Error",
        *,
        code: str = "BadArgumentError",
        inner_code: str = "SyntaxError",
        times: int = 1,
    ) -> None:
        """400 {"error": {"code": BadArgumentError, "innererror": {"code": SyntaxError, "message": message}}}."""
        body = error_body(code, "The request had some invalid properties", inner_code=inner_code, inner_message=message)
        self.enqueue(Reply(400, body), times=times)

    def throttle(self, retry_after: float | None = 0, *, times: int = 1) -> None:
        """429 ThrottledError, with `Retry-After: <seconds>` unless retry_after is None."""
        headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
        body = error_body("ThrottledError", "Your request was throttled: too many requests, retry later.")
        self.enqueue(Reply(429, body, headers), times=times)

    def no_content(self, *, times: int = 1) -> None:
        """204 No Content, what Log Analytics answers for a workspace that holds no data."""
        self.enqueue(Reply(204), times=times)

    def server_error(self, status: int = 500, *, retry_after: float | None = None, times: int = 1) -> None:
        """500 / 503 (ServiceUnavailable) with an optional Retry-After."""
        headers = {} if retry_after is None else {"Retry-After": _seconds(retry_after)}
        code = "ServiceUnavailableError" if status == 503 else "InternalServerError"
        self.enqueue(Reply(status, error_body(code, f"The service answered {status}."), headers), times=times)

    def types(self, *, times: int = 1) -> None:
        """Answer the next query with one row holding every column type (TYPES_QUERY; see TYPES_EXPECTED)."""

        def reply(request: RecordedRequest, body: dict[str, Any]) -> Reply:
            return self._run({**body, "query": TYPES_QUERY, "timespan": None}, request)

        self.enqueue(_QueryRoute(reply), times=times)

    # ---- concurrency observation ---------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """HTTP query requests (single or batch) being answered right now."""
        with self._flight:
            return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """The most HTTP query requests ever answered at the same time."""
        with self._flight:
            return self._max_in_flight

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold every query request until the block ends (to observe how many a client sends at once)."""
        with self._flight:
            self._paused = True
        try:
            yield
        finally:
            with self._flight:
                self._paused = False
                self._flight.notify_all()

    def wait_in_flight(self, n: int, timeout: float = 10.0) -> bool:
        """Wait until at least `n` requests are in flight (True) or the timeout passes (False)."""
        with self._flight:
            return self._flight.wait_for(lambda: self._in_flight >= n, timeout)

    @contextmanager
    def _flying(self) -> Iterator[None]:
        with self._flight:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._flight.notify_all()
            self._flight.wait_for(lambda: not self._paused, 30.0)
        try:
            yield
        finally:
            with self._flight:
                self._in_flight -= 1
                self._flight.notify_all()

    # ---- HTTP -------------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Reply:
        path = request.path.rstrip("/")
        if request.method != "POST":
            return Reply(405, error_body("MethodNotAllowed", f"{request.method} is not supported here."))
        if path == "/v1/$batch":
            with self._flying():
                return self._batch(request)
        if path.startswith("/v1/") and path.endswith("/query"):
            scope = path[len("/v1") : -len("/query")]
            body = request.body if isinstance(request.body, dict) else {}
            with self._flying():
                return self._query(request, scope, body)
        return Reply(404, error_body("PathNotFoundError", f"The requested path does not exist: {request.path}"))

    def _batch(self, request: RecordedRequest) -> Reply:
        items = request.body.get("requests") if isinstance(request.body, dict) else None
        if not isinstance(items, list):
            return Reply(400, error_body("BadArgumentError", "The batch body needs a 'requests' list."))
        responses = []
        for item in items:
            scope = "/workspaces/" + str(item.get("workspace", ""))
            reply = self._query(request, scope, {**(item.get("body") or {}), "_headers": item.get("headers") or {}})
            entry: dict[str, Any] = {"id": item.get("id"), "status": reply.status}
            if reply.body is not None:
                entry["body"] = reply.body
            if reply.headers:
                entry["headers"] = dict(reply.headers)
            responses.append(entry)
        return Reply(200, {"responses": responses})

    def _query(self, request: RecordedRequest, scope: str, body: dict[str, Any]) -> Reply:
        queued = self._next_queued()
        if isinstance(queued, Reply):
            return queued
        if isinstance(queued, _QueryRoute):
            return queued.reply(request, {**body, "_scope": scope})
        return self._run({**body, "_scope": scope}, request)

    def _run(self, body: dict[str, Any], request: RecordedRequest) -> Reply:
        scope = str(body.get("_scope", ""))
        resource_id: str | None = None
        catalogs = [self._catalog]
        if scope.startswith("/workspaces/"):
            ws = scope[len("/workspaces/") :]
            asked = [ws, *[str(w) for w in body.get("workspaces") or []]]
            if self.extra_workspaces:
                unknown = [w for w in asked if w.lower() not in self._catalogs]
                if unknown:
                    return Reply(404, error_body("PathNotFoundError", f"Workspace {unknown[0]} was not found."))
                catalogs = list(dict.fromkeys(self._catalogs[w.lower()] for w in asked))
            elif self.workspace_id is not None and any(w != self.workspace_id for w in asked):
                wrong = next(w for w in asked if w != self.workspace_id)
                return Reply(404, error_body("PathNotFoundError", f"Workspace {wrong} was not found."))
        elif scope.startswith("/subscriptions/"):
            resource_id = scope
        else:
            return Reply(404, error_body("PathNotFoundError", f"The requested path does not exist: {scope}"))
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            return Reply(
                400,
                error_body(
                    "BadArgumentError",
                    "The request had some invalid properties",
                    inner_code="QueryMissing",
                    inner_message="The query is missing.",
                ),
            )
        now = self.now()
        try:
            window = parse_timespan(body.get("timespan"), now=now)
        except (ValueError, TypeError) as exc:
            return Reply(
                400,
                error_body(
                    "BadArgumentError",
                    "The request had some invalid properties",
                    inner_code="InvalidTimespan",
                    inner_message=str(exc),
                ),
            )
        with self._lock:
            self.queries.append(text)
        assert self._con is not None, "the server is not started"
        started = time.perf_counter()
        cur = self._con.cursor()
        try:
            self._scope_views(cur, window, resource_id, catalogs)
            result = duckdb_kql.execute(cur, text, query_now=now)
            description = result.description or []
            rows = result.fetchall()
        except duckdb_kql.KqlUnsupportedError as exc:
            return _engine_error("SemanticError", f"Not supported by the local engine (duckdb-kql): {exc}")
        except duckdb_kql.KqlSyntaxError as exc:
            return _engine_error("SyntaxError", str(exc))
        except (duckdb_kql.KqlError, duckdb.Error) as exc:
            return _engine_error("SemanticError", str(exc))
        finally:
            cur.close()
        types = [kusto_type(str(d[1])) for d in description]
        table = {
            "name": "PrimaryResult",
            "columns": [{"name": d[0], "type": t} for d, t in zip(description, types, strict=True)],
            "rows": [[kusto_value(v, t) for v, t in zip(row, types, strict=True)] for row in rows],
        }
        answer: dict[str, Any] = {"tables": [table]}
        prefer = _prefer(request, body)
        if "include-statistics=true" in prefer:
            answer["statistics"] = {"query": {"executionTime": time.perf_counter() - started}}
        if "include-render=true" in prefer:
            answer["render"] = {}
        return Reply(200, answer)

    def _scope_views(
        self,
        cur: duckdb.DuckDBPyConnection,
        window: tuple[datetime, datetime] | None,
        resource_id: str | None,
        catalogs: list[str] | None = None,
    ) -> None:
        """Shadow the tables with temporary views holding only the rows the request may see (over every
        workspace the request names)."""
        catalogs = catalogs or [self._catalog]
        tables = set(self._timed_tables if window else []) | set(self._resource_tables if resource_id else [])
        if catalogs != [self._catalog]:
            tables |= {t for c in catalogs for t in self._tables.get(c, [])}
        for table in sorted(tables):
            if catalogs != [self._catalog]:
                self._union_view(cur, table, window, resource_id, catalogs)
                continue
            # a view cannot take parameters: the values are written as typed, quoted SQL literals
            conds = []
            if window and table in self._timed_tables:
                lo, hi = (_sql_literal(_naive(t)) for t in window)
                conds.append(f'"TimeGenerated" >= {lo} AND "TimeGenerated" < {hi}')
            if resource_id and table in self._resource_tables:
                conds.append(f'lower("_ResourceId") = {_sql_literal(resource_id.lower())}')
            source = f'"{self._catalog}".main."{table}"'
            cur.execute(f'CREATE OR REPLACE TEMP VIEW "{table}" AS SELECT * FROM {source} WHERE {" AND ".join(conds)}')

    def _union_view(
        self,
        cur: duckdb.DuckDBPyConnection,
        table: str,
        window: tuple[datetime, datetime] | None,
        resource_id: str | None,
        catalogs: list[str],
    ) -> None:
        selects = []
        for catalog in catalogs:
            if table not in self._tables.get(catalog, []):
                continue
            conds = ["TRUE"]
            if window and table in self._timed_tables:
                lo, hi = (_sql_literal(_naive(t)) for t in window)
                conds.append(f'"TimeGenerated" >= {lo} AND "TimeGenerated" < {hi}')
            if resource_id and table in self._resource_tables:
                conds.append(f'lower("_ResourceId") = {_sql_literal(resource_id.lower())}')
            selects.append(f'SELECT * FROM "{catalog}".main."{table}" WHERE {" AND ".join(conds)}')
        cur.execute(f'CREATE OR REPLACE TEMP VIEW "{table}" AS {" UNION ALL BY NAME ".join(selects)}')


class _QueryRoute:
    """A queued answer computed from the query's body (partial errors, the types row)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def __call__(self, request: RecordedRequest) -> Reply:  # pragma: no cover - not used as a plain route
        return self.reply(request, request.body or {})


def _partial_error(message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "details": [
                {
                    "code": "EngineError",
                    "message": "Something went wrong processing your query on the server.",
                    "innererror": {"code": "-2133196788", "message": message, "severity": 2, "severityName": "Error"},
                }
            ],
        }
    }


def _engine_error(inner_code: str, message: str) -> Reply:
    body = error_body(
        "BadArgumentError", "The request had some invalid properties", inner_code=inner_code, inner_message=message
    )
    return Reply(400, body)


def _prefer(request: RecordedRequest, body: dict[str, Any]) -> str:
    """The Prefer header of a single query, or of a batch item's own headers."""
    item_headers = body.get("_headers")
    value = (item_headers.get("Prefer") if isinstance(item_headers, dict) else None) or request.headers.get(
        "prefer", ""
    )
    return str(value).replace(" ", "").lower()


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _sql_literal(value: Any) -> str:
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    return "'" + str(value).replace("'", "''") + "'"
