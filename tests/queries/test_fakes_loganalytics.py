"""The real LogsQueryClient (azure-monitor-query 2.0.0) against the local Log Analytics server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.monitor.query import (
    LogsBatchQuery,
    LogsQueryClient,
    LogsQueryError,
    LogsQueryPartialResult,
    LogsQueryResult,
    LogsQueryStatus,
)
from fakes import TYPES_EXPECTED, FakeCredential, LogAnalyticsServer
from fakes.loganalytics_server import kusto_datetime, kusto_timespan, kusto_type, kusto_value

WS = "7f3c2a10-5b8e-4d2f-9a61-0c4e8b7d1a23"
HTTP = {"enforce_https": False}  # azure-core refuses a bearer token over plain http otherwise
NO_RETRY = {"enforce_https": False, "retry_total": 0}


@pytest.fixture
def server(demo_workspace: Path, demo_end: datetime) -> Iterator[LogAnalyticsServer]:
    with LogAnalyticsServer(demo_workspace, workspace_id=WS, now=demo_end) as s:
        yield s


@pytest.fixture
def client(server: LogAnalyticsServer) -> LogsQueryClient:
    return LogsQueryClient(FakeCredential(), endpoint=server.url)


def sql_scalar(path: Path, sql: str, params: list[Any] | None = None) -> Any:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


# ---- success --------------------------------------------------------------------------------------------
def test_query_workspace_answers_typed_rows_from_the_workspace(
    client: LogsQueryClient, server: LogAnalyticsServer, demo_workspace: Path, demo_end: datetime
) -> None:
    start, end = demo_end - timedelta(days=2), demo_end - timedelta(days=1)
    query = (
        'AzureDiagnostics | where Category == "RequestResponse" '
        "| summarize requests = count(), throttled = countif(ResultSignature == '429'), "
        "latest = max(TimeGenerated) by Resource | order by Resource asc"
    )
    result = client.query_workspace(WS, query, timespan=(start, end), server_timeout=30, **HTTP)

    assert isinstance(result, LogsQueryResult) and result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert table.name == "PrimaryResult"
    assert table.columns == ["Resource", "requests", "throttled", "latest"]
    assert table.columns_types == ["string", "long", "long", "datetime"]
    expected = sql_scalar(
        demo_workspace,
        "SELECT count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse' AND TimeGenerated >= ? AND TimeGenerated < ?",
        [naive(start), naive(end)],
    )
    assert sum(row["requests"] for row in table.rows) == expected > 0
    assert [row["Resource"] for row in table.rows] == sorted(row["Resource"] for row in table.rows)
    for row in table.rows:
        assert start <= row["latest"] < end and row["latest"].tzinfo is not None

    sent = server.last_request
    assert sent.path == f"/v1/workspaces/{WS}/query"
    assert sent.body["query"] == query
    assert sent.body["timespan"].startswith(start.strftime("%Y-%m-%dT%H:%M:%S"))
    assert "wait=30" in sent.headers["prefer"]
    assert sent.authorized and "authorization" not in sent.headers


def test_timespan_filters_every_timegenerated_table_like_log_analytics(
    client: LogsQueryClient, demo_workspace: Path, demo_end: datetime
) -> None:
    def count(timespan: Any) -> int:
        result = client.query_workspace(WS, "AzureDiagnostics | count", timespan=timespan, **HTTP)
        return int(result.tables[0].rows[0][0])

    total = sql_scalar(demo_workspace, "SELECT count(*) FROM AzureDiagnostics")
    last_hour = sql_scalar(
        demo_workspace,
        "SELECT count(*) FROM AzureDiagnostics WHERE TimeGenerated >= ?",
        [naive(demo_end - timedelta(hours=1))],
    )
    assert count(None) == total
    assert count(timedelta(hours=1)) == last_hour  # a duration ends at the (pinned) request time
    assert 0 < last_hour < total
    assert count((demo_end - timedelta(hours=1), timedelta(hours=1))) == last_hour


def test_ago_is_pinned_to_the_server_now(client: LogsQueryClient, demo_workspace: Path, demo_end: datetime) -> None:
    result = client.query_workspace(
        WS, "AzureDiagnostics | where TimeGenerated > ago(2h) | count", timespan=None, **HTTP
    )
    expected = sql_scalar(
        demo_workspace,
        "SELECT count(*) FROM AzureDiagnostics WHERE TimeGenerated > ?",
        [naive(demo_end - timedelta(hours=2))],
    )
    assert result.tables[0].rows[0][0] == expected


def test_query_resource_sees_only_that_resources_rows(
    client: LogsQueryClient, server: LogAnalyticsServer, demo_workspace: Path
) -> None:
    rid = sql_scalar(demo_workspace, "SELECT min(_ResourceId) FROM AzureDiagnostics")
    result = client.query_resource(
        rid, "AzureDiagnostics | summarize n = count(), r = dcount(_ResourceId)", timespan=None, **HTTP
    )
    row = result.tables[0].rows[0]
    assert row["r"] == 1
    assert row["n"] == sql_scalar(demo_workspace, "SELECT count(*) FROM AzureDiagnostics WHERE _ResourceId = ?", [rid])
    assert server.last_request.path == f"/v1{rid}/query"


def test_every_column_type_is_converted_by_the_sdk(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.types()
    result = client.query_workspace(WS, "AzureDiagnostics | take 1", timespan=None, **HTTP)
    table = result.tables[0]
    assert dict(zip(table.columns, table.columns_types, strict=True)) == {c: t for c, (t, _) in TYPES_EXPECTED.items()}
    row = table.rows[0]
    for column, (_, value) in TYPES_EXPECTED.items():
        assert row[column] == value, column
    assert row["d"].utcoffset() == timedelta(0)
    assert json.loads(row["dy"]) == {"k": [1, "two"]}  # dynamic arrives as JSON text: the caller parses it


# ---- faults -------------------------------------------------------------------------------------------
def test_partial_error_keeps_its_rows(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.partial_error("Query result set has exceeded the internal record count limit.")
    result = client.query_workspace(WS, "AzureDiagnostics | summarize n = count() by Category", timespan=None, **HTTP)
    assert isinstance(result, LogsQueryPartialResult)
    assert result.status == LogsQueryStatus.PARTIAL
    assert result.partial_error.code == "PartialError"
    # the SDK reports the envelope's message; the engine's own message is in the details
    assert result.partial_error.message == "There were some errors when processing your query."
    details = result.partial_error.details
    assert details[0]["innererror"]["message"] == "Query result set has exceeded the internal record count limit."
    assert {row["Category"] for row in result.partial_data[0].rows} == {"RequestResponse", "AzureOpenAIRequestUsage"}
    # consumed: the next query is answered normally
    assert isinstance(client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP), LogsQueryResult)


def test_scripted_400_carries_the_servers_message(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.bad_request("Query could not be parsed at 'summarize' on line [1,20]")
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "AzureDiagnostics | summarize", timespan=None, **HTTP)
    assert info.value.status_code == 400
    assert isinstance(info.value.model, LogsQueryError)
    assert info.value.model.code == "BadArgumentError"
    assert "Query could not be parsed at 'summarize'" in info.value.message


def test_engine_error_is_a_400_with_the_engines_message(client: LogsQueryClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "AzureDiagnostics | where NoSuchColumn == 1", timespan=None, **HTTP)
    assert info.value.status_code == 400
    assert "NoSuchColumn" in info.value.message


def test_429_then_success_is_retried_by_azure_core(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.throttle(retry_after=0)
    result = client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP)
    assert isinstance(result, LogsQueryResult)
    assert len(server.requests) == 2 and server.pending == 0


class SleepRecordingTransport(RequestsTransport):
    """A transport whose sleeps are recorded instead of slept: a fake clock for azure-core's RetryPolicy."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)


def test_azure_core_waits_the_retry_after_the_server_asks(server: LogAnalyticsServer) -> None:
    transport = SleepRecordingTransport()
    client = LogsQueryClient(FakeCredential(), endpoint=server.url, transport=transport)
    server.throttle(retry_after=7, times=2)
    result = client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP)
    assert isinstance(result, LogsQueryResult)
    assert transport.sleeps == [7.0, 7.0]
    assert len(server.requests) == 3


def test_429_without_retries_raises(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.throttle(retry_after=1)
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **NO_RETRY)
    assert info.value.status_code == 429
    assert info.value.response.headers["Retry-After"] == "1"


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors(client: LogsQueryClient, server: LogAnalyticsServer, status: int) -> None:
    server.server_error(status, retry_after=0)
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **NO_RETRY)
    assert info.value.status_code == status
    server.server_error(status, retry_after=0)
    assert isinstance(client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP), LogsQueryResult)


def test_204_no_content_makes_the_sdk_raise_json_decode_error(
    client: LogsQueryClient, server: LogAnalyticsServer
) -> None:
    server.no_content()
    with pytest.raises(json.JSONDecodeError):
        client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP)


def test_unknown_workspace_is_404(client: LogsQueryClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace("not-this-one", "AzureDiagnostics | count", timespan=None, **HTTP)
    assert info.value.status_code == 404


def test_requests_without_a_token_are_refused(server: LogAnalyticsServer) -> None:
    answer = requests.post(
        f"{server.url}/v1/workspaces/{WS}/query", json={"query": "AzureDiagnostics | count"}, timeout=10
    )
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "AuthenticationFailed"
    assert server.last_request.authorized is False


# ---- batch --------------------------------------------------------------------------------------------
def test_query_batch_answers_each_query_in_order(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    texts = [
        "AzureDiagnostics | summarize n = count() by Category",
        "AzureMetrics | summarize m = dcount(MetricName)",
        "AzureDiagnostics | project NoSuchColumn",
    ]
    queries = [
        LogsBatchQuery(WS, texts[0], timespan=timedelta(days=1)),
        LogsBatchQuery(WS, texts[1], timespan=None),
        LogsBatchQuery(WS, texts[2], timespan=None),
    ]
    results = client.query_batch(queries, **HTTP)

    assert [type(r) for r in results] == [LogsQueryResult, LogsQueryResult, LogsQueryError]
    single = client.query_workspace(WS, texts[0], timespan=timedelta(days=1), **HTTP)
    assert sorted(map(list, results[0].tables[0].rows)) == sorted(map(list, single.tables[0].rows))
    assert results[1].tables[0].rows[0]["m"] == 5
    assert results[2].code == "BadArgumentError" and "NoSuchColumn" in results[2].message

    batch = server.requests[0]
    assert batch.path == "/v1/$batch"
    assert [r["workspace"] for r in batch.body["requests"]] == [WS, WS, WS]
    assert [r["body"]["query"] for r in batch.body["requests"]] == texts


def test_batch_items_consume_scripted_faults_in_order(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    server.types()
    server.partial_error("half")
    server.throttle(retry_after=3)
    results = client.query_batch(
        [LogsBatchQuery(WS, "AzureDiagnostics | count", timespan=None) for _ in range(4)], **HTTP
    )
    assert isinstance(results[0], LogsQueryResult) and results[0].tables[0].columns == list(TYPES_EXPECTED)
    assert isinstance(results[1], LogsQueryPartialResult)
    assert results[1].partial_error.details[0]["innererror"]["message"] == "half"
    assert isinstance(results[2], LogsQueryError) and results[2].code == "ThrottledError"
    assert isinstance(results[3], LogsQueryResult)
    assert len(server.requests) == 1  # one HTTP request: item failures are not retried by azure-core


# ---- concurrency observation ----------------------------------------------------------------------------
def test_in_flight_queries_can_be_held_and_counted(client: LogsQueryClient, server: LogAnalyticsServer) -> None:
    results: list[Any] = []

    def ask() -> None:
        results.append(client.query_workspace(WS, "AzureDiagnostics | count", timespan=None, **HTTP))

    with server.paused():
        threads = [threading.Thread(target=ask) for _ in range(3)]
        for t in threads:
            t.start()
        assert server.wait_in_flight(3)
        assert server.in_flight == 3 and results == []
    for t in threads:
        t.join()
    assert len(results) == 3 and server.in_flight == 0 and server.max_in_flight == 3


# ---- conversion ---------------------------------------------------------------------------------------------
def test_kusto_literals() -> None:
    assert kusto_datetime(datetime(2024, 5, 6, 7, 8, 9)) == "2024-05-06T07:08:09Z"
    assert kusto_datetime(datetime(2024, 5, 6, 7, 8, 9, 1, tzinfo=UTC)) == "2024-05-06T07:08:09.0000010Z"
    assert kusto_timespan(timedelta(minutes=90)) == "01:30:00"
    assert kusto_timespan(timedelta(days=2, seconds=1, microseconds=250000)) == "2.00:00:01.2500000"
    assert kusto_timespan(-timedelta(seconds=5)) == "-00:00:05"
    assert kusto_value(None, "string") == "" and kusto_value(None, "long") is None
    assert kusto_value(float("nan"), "real") == "NaN"
    assert kusto_value([1, {"a": None}], "dynamic") == '[1,{"a":null}]'
    assert [
        kusto_type(t) for t in ("HUGEINT", "DECIMAL(18,3)", "VARCHAR[]", "TIMESTAMP WITH TIME ZONE", "SMALLINT")
    ] == [
        "long",
        "real",
        "dynamic",
        "datetime",
        "int",
    ]
