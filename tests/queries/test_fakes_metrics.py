"""The real MetricsClient (azure-monitor-querymetrics 1.0.0) against the local metrics batch server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from azure.core.exceptions import HttpResponseError
from azure.monitor.querymetrics import MetricAggregationType, MetricsClient
from fakes import FakeCredential, MetricsServer
from fakes.metrics_server import _parse_filter

NS = "Microsoft.CognitiveServices/accounts"
HTTP = {"enforce_https": False}


@pytest.fixture
def server(demo_workspace: Path, demo_end: datetime) -> Iterator[MetricsServer]:
    with MetricsServer(demo_workspace, now=demo_end) as s:
        yield s


@pytest.fixture
def client(server: MetricsServer) -> MetricsClient:
    return MetricsClient(server.url, FakeCredential())


@pytest.fixture(scope="module")
def resources(demo_workspace: Path) -> list[str]:
    """The resources of the metrics store, the one with the most deployments first."""
    con = duckdb.connect(str(demo_workspace), read_only=True)
    try:
        sql = "SELECT ResourceId FROM MetricsApi GROUP BY 1 ORDER BY count(DISTINCT ModelDeploymentName) DESC, 1"
        return [r for (r,) in con.execute(sql).fetchall()]
    finally:
        con.close()


def store(path: Path, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def test_split_by_deployment_returns_lower_cased_dimensions_and_store_totals(
    client: MetricsClient, server: MetricsServer, resources: list[str], demo_workspace: Path, demo_end: datetime
) -> None:
    rid = resources[0]
    start, end = demo_end - timedelta(hours=6), demo_end
    [result] = client.query_resources(
        resource_ids=[rid],
        metric_namespace=NS,
        metric_names=["TokenTransaction"],
        timespan=(start, end),
        granularity=timedelta(hours=1),
        aggregations=[MetricAggregationType.TOTAL],
        filter="ModelDeploymentName eq '*'",
        **HTTP,
    )
    assert result.granularity == timedelta(hours=1)
    assert result.namespace == NS
    metric = result.metrics[0]
    assert metric.name == "TokenTransaction" and metric.unit == "Count"
    assert metric.id.lower().startswith(rid.lower())  # the only way back to the resource: no resource_id field
    got = {}
    for ts in metric.timeseries:
        assert list(ts.metadata_values) == ["modeldeploymentname"]  # lower-cased, as Azure answers
        assert [p.timestamp for p in ts.data] == [start + timedelta(hours=h) for h in range(6)]  # aligned to start
        got[ts.metadata_values["modeldeploymentname"]] = sum(p.total for p in ts.data)
    expected = dict(
        store(
            demo_workspace,
            "SELECT ModelDeploymentName, sum(Total) FROM MetricsApi WHERE ResourceId = ? AND MetricName = 'TokenTransaction'"
            " AND TimeStamp >= ? AND TimeStamp < ? GROUP BY 1",
            [rid, naive(start), naive(end)],
        )
    )
    assert got == pytest.approx(expected) and len(got) > 1

    sent = server.last_request
    assert sent.path.endswith("/metrics:getBatch") and sent.path.startswith("/subscriptions/")
    assert sent.query["metricnames"] == "TokenTransaction" and sent.query["interval"] == "PT1H"
    assert sent.body == {"resourceids": [rid]}


def test_a_value_filter_returns_that_series_only(
    client: MetricsClient, resources: list[str], demo_workspace: Path, demo_end: datetime
) -> None:
    rid = resources[0]
    dep = store(demo_workspace, "SELECT min(ModelDeploymentName) FROM MetricsApi WHERE ResourceId = ?", [rid])[0][0]
    start = demo_end - timedelta(days=1)
    [result] = client.query_resources(
        resource_ids=[rid],
        metric_namespace=NS,
        metric_names=["AzureOpenAIRequests"],
        timespan=(start, demo_end),
        granularity=timedelta(days=1),
        aggregations=["Total"],
        filter=f"ModelDeploymentName eq '{dep.upper()}' and StatusCode eq '*'",  # values match case-insensitively
        **HTTP,
    )
    series = result.metrics[0].timeseries
    assert {ts.metadata_values["modeldeploymentname"] for ts in series} == {dep}
    by_status = {ts.metadata_values["statuscode"]: ts.data[0].total for ts in series}
    expected = dict(
        store(
            demo_workspace,
            "SELECT StatusCode, sum(Total) FROM MetricsApi WHERE ResourceId = ? AND MetricName = 'AzureOpenAIRequests'"
            " AND ModelDeploymentName = ? AND TimeStamp >= ? AND TimeStamp < ? GROUP BY 1",
            [rid, dep, naive(start), naive(demo_end)],
        )
    )
    assert by_status == pytest.approx(expected) and "200" in by_status


def test_average_is_weighted_by_count(
    client: MetricsClient, resources: list[str], demo_workspace: Path, demo_end: datetime
) -> None:
    rid = resources[0]
    start = demo_end - timedelta(days=1)
    [result] = client.query_resources(
        resource_ids=[rid],
        metric_namespace=NS,
        metric_names=["AzureOpenAITimeToResponse"],
        timespan=(start, demo_end),
        granularity=timedelta(days=1),
        aggregations=["Average", "Maximum", "Count"],
        **HTTP,
    )
    [ts] = result.metrics[0].timeseries
    assert ts.metadata_values == {}
    [point] = ts.data
    total, count, maximum = store(
        demo_workspace,
        "SELECT sum(Total), sum(Count), max(Maximum) FROM MetricsApi WHERE ResourceId = ? AND MetricName = "
        "'AzureOpenAITimeToResponse' AND TimeStamp >= ? AND TimeStamp < ?",
        [rid, naive(start), naive(demo_end)],
    )[0]
    assert point.average == pytest.approx(total / count)
    assert point.maximum == maximum and point.count == count and point.total is None


def test_empty_buckets_have_total_zero(client: MetricsClient, resources: list[str], demo_end: datetime) -> None:
    long_ago = demo_end - timedelta(days=400)
    [result] = client.query_resources(
        resource_ids=[resources[0]],
        metric_namespace=NS,
        metric_names=["ProcessedPromptTokens", "AzureOpenAITimeToResponse"],
        timespan=(long_ago, timedelta(hours=3)),
        granularity=timedelta(hours=1),
        aggregations=["Total", "Average"],
        **HTTP,
    )
    tokens, latency = result.metrics
    assert [p.total for p in tokens.timeseries[0].data] == [0, 0, 0]
    assert [p.average for p in latency.timeseries[0].data] == [None, None, None]
    # split with no data: no series at all
    [split] = client.query_resources(
        resource_ids=[resources[0]],
        metric_namespace=NS,
        metric_names=["ProcessedPromptTokens"],
        timespan=(long_ago, timedelta(hours=3)),
        granularity=timedelta(hours=1),
        aggregations=["Total"],
        filter="ModelDeploymentName eq '*'",
        **HTTP,
    )
    assert split.metrics[0].timeseries == []


def test_several_resources_come_back_in_one_call(client: MetricsClient, resources: list[str]) -> None:
    results = client.query_resources(
        resource_ids=resources,
        metric_namespace=NS,
        metric_names=["GeneratedTokens"],
        timespan=timedelta(hours=2),
        granularity=timedelta(minutes=30),
        aggregations=["Total"],
        **HTTP,
    )
    assert len(results) == len(resources) > 1
    assert [r.metrics[0].id.split("/providers/Microsoft.Insights")[0] for r in results] == resources
    assert all(r.resource_region for r in results)


def test_top_limits_split_series_to_the_largest(client: MetricsClient, resources: list[str]) -> None:
    def query(**kw: Any) -> list[Any]:
        [r] = client.query_resources(
            resource_ids=[resources[0]],
            metric_namespace=NS,
            metric_names=["TokenTransaction"],
            timespan=timedelta(days=2),
            granularity=timedelta(days=1),
            aggregations=["Total"],
            filter="ModelDeploymentName eq '*'",
            **kw,
            **HTTP,
        )
        return list(r.metrics[0].timeseries)

    everything = query()
    top2 = query(max_results=2)
    size = {ts.metadata_values["modeldeploymentname"]: sum(p.total for p in ts.data) for ts in everything}
    assert len(everything) > 2
    assert [ts.metadata_values["modeldeploymentname"] for ts in top2] == sorted(
        size, key=size.__getitem__, reverse=True
    )[:2]


def test_unknown_metric_is_a_400(client: MetricsClient, resources: list[str]) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.query_resources(
            resource_ids=[resources[0]], metric_namespace=NS, metric_names=["ProcessedInferenceTokens"], **HTTP
        )
    assert info.value.status_code == 400
    assert "ProcessedInferenceTokens" in str(info.value)


def test_throttle_then_success(client: MetricsClient, server: MetricsServer, resources: list[str]) -> None:
    server.throttle(retry_after=0)
    results = client.query_resources(
        resource_ids=[resources[0]], metric_namespace=NS, metric_names=["TokenTransaction"], **HTTP
    )
    assert len(results) == 1 and len(server.requests) == 2


def test_filter_grammar() -> None:
    assert _parse_filter("A eq 'a1' and B eq 'b1' or B eq 'b2' and C eq '*'") == [
        ("A", "eq", ["a1"]),
        ("B", "eq", ["b1", "b2"]),
        ("C", "eq", ["*"]),
    ]
    assert _parse_filter("Name eq 'rock and roll' and X ne 'o''brien'") == [
        ("Name", "eq", ["rock and roll"]),
        ("X", "ne", ["o'brien"]),
    ]
    with pytest.raises(Exception, match="same dimension"):
        _parse_filter("A eq 'a' or B eq 'b'")
