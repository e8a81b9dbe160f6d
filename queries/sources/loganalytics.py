"""Log Analytics through `azure-monitor-query`'s `LogsQueryClient`.

What the service does and how it becomes a `LogsAnswer`:
- a table → a frame typed from the Kusto column types (datetime tz-aware UTC, long/int Int64, real
  float64, bool boolean, dynamic JSON-decoded, guid/timespan/string str);
- `PartialError` → status partial, the rows kept, the service's message as the notice;
- HTTP 204 (a workspace with no data; the SDK raises `JSONDecodeError` on the empty body) → an empty
  frame, status ok, notice "the workspace has no data";
- 400 → failed with the innermost message the service gave (the Lens keeps the KQL);
- 429/503 → retried honouring Retry-After (`BoundedRetryPolicy`), then failed with a notice saying so.

At most `max_concurrent` queries are in flight in the whole process (Log Analytics runs 5 per user and
queues the rest, answering 429 once a query has queued for 3 minutes). A batch of n queries holds n slots.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pandas as pd
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.monitor.query import (
    LogsBatchQuery,
    LogsQueryClient,
    LogsQueryError,
    LogsQueryPartialResult,
    LogsQueryResult,
    LogsTable,
)

from queries.sources.azure_http import BoundedRetryPolicy, https_options, is_loopback
from queries.sources.base import LogsAnswer, LogsRequest

log = logging.getLogger(__name__)

NO_DATA = "the workspace has no data"
BATCH_LIMIT = 10  # queries per $batch request the service accepts
# The KQL filters on _start/_end itself; the timespan sent alongside bounds the scan, with a margin for
# queries that look a little before _start (top_callers_before_429's lookback).
TIMESPAN_MARGIN = timedelta(days=1)


class QuerySlots:
    """A counting semaphore that takes k slots at once (so two batches never deadlock holding halves)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.peak = 0
        self._cond = threading.Condition()

    def resize(self, limit: int) -> None:
        with self._cond:
            self.limit = limit
            self._cond.notify_all()

    @contextmanager
    def hold(self, k: int = 1) -> Iterator[None]:
        k = max(1, min(k, self.limit))
        with self._cond:
            self._cond.wait_for(lambda: self.in_flight + k <= self.limit)
            self.in_flight += k
            self.peak = max(self.peak, self.in_flight)
        try:
            yield
        finally:
            with self._cond:
                self.in_flight -= k
                self._cond.notify_all()


# One per process: every LogAnalyticsLogs shares it, whatever workspace it queries.
SLOTS = QuerySlots(5)


def table_frame(table: LogsTable) -> pd.DataFrame:
    """A LogsTable as a frame with pandas types that match its Kusto column types."""
    data: dict[str, pd.Series] = {}
    for i, (name, kusto) in enumerate(zip(table.columns, table.columns_types, strict=True)):
        values = [row[i] for row in table.rows]
        data[name] = column(values, kusto)
    return pd.DataFrame(data, columns=list(table.columns))


def column(values: list[Any], kusto: str) -> pd.Series:
    kusto = (kusto or "string").lower()
    if kusto == "datetime":
        return pd.Series(pd.to_datetime(values, utc=True, errors="coerce"), dtype="datetime64[us, UTC]")
    if kusto in ("long", "int"):
        return pd.Series(pd.array([_long(v) for v in values], dtype="Int64"))
    if kusto in ("real", "decimal"):
        return pd.Series(pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce"), dtype="float64")
    if kusto == "bool":
        return pd.Series([None if v is None else _truthy(v) for v in values], dtype="boolean")
    if kusto == "dynamic":
        return pd.Series([_json(v) for v in values], dtype="object")
    return pd.Series([None if v is None else str(v) for v in values], dtype="object")


def _long(v: Any) -> int | None:
    """An exact integer (no trip through float: .NET tick counts need all 64 bits), or None."""
    if v is None or isinstance(v, bool):
        return None if v is None else int(v)
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError, OverflowError):
            return None


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1")
    return bool(v)


def _json(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    return v


def _first_table(tables: list[LogsTable] | None) -> pd.DataFrame:
    return table_frame(tables[0]) if tables else pd.DataFrame()


def server_message(error: HttpResponseError) -> str:
    """The most specific message the service gave: the innermost `innererror.message`."""
    model = getattr(error, "model", None)
    if isinstance(model, LogsQueryError) and model.message:
        return f"{model.code}: {model.message}" if model.code else str(model.message)
    try:
        response: Any = error.response
        body = response.json() if response is not None else None
    except Exception:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"]
        code = inner.get("code", "")
        while isinstance(inner.get("innererror"), dict):
            inner = inner["innererror"]
        message = inner.get("message") or body["error"].get("message") or ""
        return f"{code}: {message}" if code else str(message)
    return (error.message or str(error)).splitlines()[0]


def partial_message(error: Any) -> str:
    """What a PartialError says: its message, plus the innermost message of each detail (the useful part)."""
    top = (getattr(error, "message", None) or "").strip()
    inner = []
    for detail in getattr(error, "details", None) or []:
        # details are dicts or the SDK's ErrorDetail models (mappings, not dicts)
        while isinstance(detail, Mapping) and isinstance(detail.get("innererror"), Mapping):
            detail = detail["innererror"]
        if isinstance(detail, Mapping) and detail.get("message"):
            inner.append(str(detail["message"]).strip())
    return " ".join(x for x in [top, *inner] if x) or "some of the data could not be read"


def _retry_after(error: HttpResponseError) -> str:
    response: Any = error.response
    headers = response.headers if response is not None else {}
    value = headers.get("Retry-After")
    return f", asked to wait {value} s" if value else ""


class LogAnalyticsLogs:
    """Logs source for one Log Analytics workspace, or several queried together.

    Several workspaces go as one cross-workspace query (`additional_workspaces`: the service runs the
    KQL over the union of their tables, so aggregates such as percentiles and distinct counts stay
    exact across workspaces and the answer has the same columns as for one). The service accepts up to
    100 workspaces in one query; the settings refuse more.
    """

    name = "log-analytics"

    def __init__(
        self,
        *,
        workspace_id: str,
        credential: Any,
        additional_workspaces: list[str] | None = None,
        endpoint: str = "https://api.loganalytics.io",
        server_timeout_s: int = 180,
        max_concurrent: int = 5,
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
        retries: int = 3,
        slots: QuerySlots | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        self.additional_workspaces = [w for w in additional_workspaces or [] if w.lower() != workspace_id.lower()]
        self.endpoint = endpoint
        self.server_timeout_s = server_timeout_s
        self.retry_policy = BoundedRetryPolicy(retries=retries, sleep=sleep)
        # the token audience is the endpoint, except for a local test server, which stands in for Azure's
        audience = "https://api.loganalytics.io" if is_loopback(endpoint) else endpoint
        kwargs: dict[str, Any] = {"endpoint": endpoint, "audience": audience, "retry_policy": self.retry_policy}
        if transport is not None:
            kwargs["transport"] = transport
        self.client = LogsQueryClient(credential, **kwargs)
        self.slots = slots or SLOTS
        self.slots.resize(min(max(1, max_concurrent), 5))
        self._call_options = https_options(endpoint)

    def _timespan(self, request: LogsRequest) -> tuple[Any, Any]:
        return (request.start - TIMESPAN_MARGIN, request.end)

    # ---- one query -----------------------------------------------------------------------------
    def run(self, request: LogsRequest) -> LogsAnswer:
        try:
            with self.slots.hold(1):
                self.retry_policy.start_call()
                result = self.client.query_workspace(
                    self.workspace_id,
                    request.kql,
                    timespan=self._timespan(request),
                    server_timeout=self.server_timeout_s,
                    additional_workspaces=self.additional_workspaces or None,
                    **self._call_options,
                )
        except json.JSONDecodeError:
            return LogsAnswer(pd.DataFrame(), "ok", NO_DATA, 0)
        except ClientAuthenticationError as e:
            return LogsAnswer(pd.DataFrame(), "failed", f"authentication failed: {str(e).splitlines()[0][:300]}")
        except HttpResponseError as e:
            return LogsAnswer(pd.DataFrame(), "failed", self._http_notice(e))
        return self._answer(result)

    def _http_notice(self, e: HttpResponseError) -> str:
        status = e.status_code
        if status in (429, 503):
            tries = self.retry_policy.retries_this_call
            return (
                f"Log Analytics is throttling queries (HTTP {status}{_retry_after(e)}) and still refused "
                f"after {tries} retr{'y' if tries == 1 else 'ies'}; try again in a minute. {server_message(e)}"
            )
        if status == 504:
            return f"the query ran longer than the server timeout ({self.server_timeout_s} s): {server_message(e)}"
        return f"Log Analytics refused the query (HTTP {status}): {server_message(e)}"

    @staticmethod
    def _answer(result: Any) -> LogsAnswer:
        if isinstance(result, LogsQueryPartialResult):
            frame = _first_table(result.partial_data)
            message = partial_message(result.partial_error)
            return LogsAnswer(frame, "partial", f"partial result, some rows may be missing: {message}", len(frame))
        if isinstance(result, LogsQueryError):
            return LogsAnswer(
                pd.DataFrame(), "failed", f"Log Analytics refused the query: {result.code}: {result.message}"
            )
        if isinstance(result, LogsQueryResult):
            frame = _first_table(result.tables)
            return LogsAnswer(frame, "ok", None, len(frame))
        return LogsAnswer(pd.DataFrame(), "failed", f"unexpected answer {type(result).__name__}")

    # ---- several queries ------------------------------------------------------------------------
    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        """One `$batch` call per group of at most `limit` queries (so a batch never exceeds the slots)."""
        size = max(1, min(BATCH_LIMIT, self.slots.limit))
        out: list[LogsAnswer] = []
        for i in range(0, len(requests), size):
            out.extend(self._batch(requests[i : i + size]))
        return out

    def _batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        if len(requests) == 1:
            return [self.run(requests[0])]
        queries = [
            LogsBatchQuery(
                self.workspace_id,
                r.kql,
                timespan=self._timespan(r),
                server_timeout=self.server_timeout_s,
                additional_workspaces=self.additional_workspaces or None,
            )
            for r in requests
        ]
        try:
            with self.slots.hold(len(queries)):
                self.retry_policy.start_call()
                results = self.client.query_batch(queries, **self._call_options)
        except ClientAuthenticationError as e:
            notice = f"authentication failed: {str(e).splitlines()[0][:300]}"
            return [LogsAnswer(pd.DataFrame(), "failed", notice) for _ in requests]
        except HttpResponseError as e:
            notice = self._http_notice(e)
            return [LogsAnswer(pd.DataFrame(), "failed", notice) for _ in requests]
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            # An answer the SDK cannot read (an item with no body, as for a workspace with no data):
            # ask again one query at a time, where each such case has its own handling.
            log.info("batch answer unreadable (%s); running %d queries one by one", e, len(requests))
            return [self.run(r) for r in requests]
        if len(results) != len(requests):
            return [self.run(r) for r in requests]
        # A query the service throttled inside a batch is asked again on its own, with the retry policy.
        return [
            self.run(req) if isinstance(res, LogsQueryError) and res.code == "ThrottledError" else self._answer(res)
            for req, res in zip(requests, results, strict=True)
        ]
