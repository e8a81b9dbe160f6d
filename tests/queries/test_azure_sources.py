"""The Azure path end to end: the real LogsQueryClient and MetricsClient, and azure-core's pipeline for
ARM, behind aoai-lens's Azure sources and the Lens, against local servers speaking Azure's REST shapes
(tests/fakes). The same questions asked of the embedded workspace give the same answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import (
    TYPES_EXPECTED,
    FakeCredential,
    LogAnalyticsServer,
    ManagementServer,
    MetricsServer,
    Reply,
)
from fakes.azure_env import ArmServer, azure_settings

from queries import catalogue
from queries.config import Settings
from queries.demo import world
from queries.lens import Lens
from queries.render import RenderError
from queries.sources import azure as azure_module
from queries.sources import loganalytics
from queries.sources.azure import azure_sources
from queries.sources.azure_http import https_options
from queries.sources.base import LogsRequest
from queries.sources.loganalytics import LogAnalyticsLogs


class Env:
    def __init__(self, la: LogAnalyticsServer, ms: MetricsServer, arm: ManagementServer, settings: Settings) -> None:
        self.la, self.ms, self.arm, self.settings = la, ms, arm, settings
        self.waits: list[float] = []
        self.credential = FakeCredential()
        logs, metrics, mgmt = azure_sources(settings, credential=self.credential, sleep=self.waits.append)
        self.logs: LogAnalyticsLogs = logs
        self.lens = Lens(settings, logs, metrics, mgmt, scope_resource_id=settings.source.resource_ids[0])


@pytest.fixture(scope="module")
def servers(demo_workspace: Path) -> Iterator[tuple[LogAnalyticsServer, MetricsServer, ArmServer]]:
    with (
        LogAnalyticsServer(demo_workspace, workspace_id=world.TENANT_ID) as la,
        MetricsServer(demo_workspace) as ms,
        ArmServer(demo_workspace) as arm,
    ):
        yield la, ms, arm


@pytest.fixture
def env(servers: tuple, tmp_path: Path) -> Iterator[Env]:
    la, ms, arm = servers
    for s in servers:
        assert s.pending == 0
        s.clear_requests()
    yield Env(la, ms, arm, azure_settings(tmp_path, la.url, ms.url, arm.url))
    loganalytics.SLOTS.resize(5)
    for s in servers:
        while s.pending:  # a test that failed half-way leaves no scripted reply for the next
            s._next_queued()


@pytest.fixture(scope="module")
def embedded(demo_settings: Settings) -> Lens:
    return Lens.from_settings(demo_settings)


@pytest.fixture(scope="module")
def week(demo_end: datetime) -> dict[str, datetime]:
    return {"start": demo_end - timedelta(days=7), "end": demo_end + timedelta(minutes=1)}


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = list(a.columns)
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True), check_exact=False
    )


# ---- Log Analytics -------------------------------------------------------------------------------------


def test_a_query_answers_as_the_embedded_workspace_does(env: Env, embedded: Lens, week: dict) -> None:
    r = env.lens.run("summary_by_deployment", **week)
    assert r.status == "ok" and r.notice is None and r.source == "log-analytics" and len(r.frame) > 0
    same(r.frame, embedded.run("summary_by_deployment", **week).frame)
    sent = env.la.last_request
    assert sent.path == f"/v1/workspaces/{world.TENANT_ID}/query" and sent.authorized
    assert sent.body["query"] == r.kql
    assert sent.headers.get("prefer") == "wait=180"
    assert sent.body["timespan"].endswith(week["end"].strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    assert ("https://api.loganalytics.io/.default",) in env.credential.scopes


def test_a_page_of_queries_goes_as_batches_and_matches_the_embedded_answers(
    env: Env, embedded: Lens, week: dict
) -> None:
    names = sorted(catalogue.load_catalogue())
    results = env.lens.run_many([(n, week) for n in names])
    batches = [r for r in env.la.requests if r.path == "/v1/$batch"]
    singles = [r for r in env.la.requests if r.path.endswith("/query")]
    # groups of at most 5 (the concurrency limit); a group of one goes as a plain query
    assert len(batches) + len(singles) == -(-len(names) // 5)
    assert all(len(b.body["requests"]) <= 5 for b in batches)
    assert sum(len(b.body["requests"]) for b in batches) + len(singles) == len(names)
    expected = embedded.run_many([(n, week) for n in names])
    for name, got, want in zip(names, results, expected, strict=True):
        assert got.status == "ok", (name, got.notice)
        same(got.frame, want.frame)


def test_partial_error_keeps_rows_with_a_notice(env: Env, week: dict) -> None:
    env.la.partial_error("Query exceeded the memory limit of this engine.")
    r = env.lens.run("throttling_by_deployment", **week)
    assert r.status == "partial" and len(r.frame) > 0
    assert "Query exceeded the memory limit" in (r.notice or "")
    again = env.lens.run("throttling_by_deployment", **week)
    assert not again.cached and again.status == "ok"  # a partial answer is not cached


def test_bad_request_carries_the_server_message_and_the_query(env: Env, week: dict) -> None:
    env.la.bad_request("'summarize' operator: Failed to resolve scalar expression named 'Deploymnt'")
    r = env.lens.run("latency_by_stream_type", **week)
    assert (
        r.status == "failed"
        and r.frame.empty
        and list(r.frame.columns) == catalogue.get("latency_by_stream_type").columns
    )
    assert "HTTP 400" in r.notice and "Failed to resolve scalar expression named 'Deploymnt'" in r.notice
    assert r.kql == env.la.last_request.body["query"] and r.portal_url


def test_an_engine_error_comes_back_as_its_message(env: Env, week: dict) -> None:
    a = env.logs.run(LogsRequest("AzureDiagnostics | where NoSuchColumn == 1", week["start"], week["end"]))
    assert a.status == "failed" and "HTTP 400" in (a.notice or "") and "NoSuchColumn" in (a.notice or "")


def test_throttled_then_answered_honours_retry_after(env: Env, week: dict) -> None:
    env.la.throttle(retry_after=7)
    r = env.lens.run("volume_by_api_version", **week)
    assert r.status == "ok" and len(r.frame) > 0
    assert env.waits == [7.0] and len(env.la.requests) == 2


def test_still_throttled_after_the_retries_is_reported(env: Env, week: dict) -> None:
    env.la.throttle(retry_after=2, times=4)
    r = env.lens.run("volume_by_api_version", **week)
    assert r.status == "failed" and "HTTP 429" in r.notice and "3 retries" in r.notice
    assert env.waits == [2.0, 2.0, 2.0] and len(env.la.requests) == 4


def test_a_long_retry_after_is_not_waited_for(env: Env, week: dict) -> None:
    env.la.throttle(retry_after=600)
    r = env.lens.run("volume_by_api_version", **week)
    assert r.status == "failed" and "asked to wait 600 s" in r.notice
    assert env.waits == [] and len(env.la.requests) == 1


def test_service_unavailable_is_retried(env: Env, week: dict) -> None:
    env.la.server_error(503)  # no Retry-After: the first retry goes at once
    assert env.lens.run("volume_by_api_version", **week).status == "ok"
    assert len(env.la.requests) == 2


def test_no_content_is_an_empty_workspace(env: Env, week: dict) -> None:
    env.la.no_content()
    r = env.lens.run("activity_by_resource", **week)
    assert r.status == "ok" and r.notice == "the workspace has no data" and r.frame.empty
    assert list(r.frame.columns) == ["TimeGenerated", "Resource", "Requests"]


def test_every_column_type(env: Env, week: dict) -> None:
    env.la.types()
    a = env.logs.run(LogsRequest("print 1", week["start"], week["end"]))
    assert a.status == "ok" and len(a.frame) == 1
    row = a.frame.iloc[0]
    dtypes = {"datetime": "datetime64[us, UTC]", "int": "Int64", "long": "Int64", "real": "float64", "bool": "boolean"}
    for col, (kusto, value) in TYPES_EXPECTED.items():
        if kusto in dtypes:
            assert str(a.frame[col].dtype) == dtypes[kusto], col
        if kusto == "dynamic":
            assert row[col] == {"k": [1, "two"]}  # JSON-decoded
        elif kusto == "datetime":
            assert row[col] == pd.Timestamp(value) and row[col].tzinfo is not None
        else:
            assert row[col] == value, col


def test_batch_items_fail_and_succeed_on_their_own(env: Env, week: dict) -> None:
    env.la.partial_error("ran out of memory on one shard")
    env.la.bad_request("Syntax error near 'foo'")
    results = env.lens.run_many(
        [
            ("throttling_by_deployment", week),
            ("volume_by_api_version", week),
            ("latency_by_stream_type", week),
        ]
    )
    assert [r.status for r in results] == ["partial", "failed", "ok"]
    assert "ran out of memory" in results[0].notice and len(results[0].frame) > 0
    assert "Syntax error near 'foo'" in results[1].notice and results[1].kql
    assert len([r for r in env.la.requests if r.path == "/v1/$batch"]) == 1


def test_a_query_throttled_inside_a_batch_is_asked_again(env: Env, week: dict) -> None:
    env.la.throttle(retry_after=0)  # consumed by the first sub-request of the batch
    results = env.lens.run_many([("throttling_by_deployment", week), ("volume_by_api_version", week)])
    assert [r.status for r in results] == ["ok", "ok"]
    assert [r.path.rsplit("/", 1)[-1] for r in env.la.requests] == ["$batch", "query"]


def test_a_query_still_throttled_when_asked_again_is_reported(env: Env, week: dict) -> None:
    env.la.throttle(retry_after=0, times=2)  # both batch items
    env.la.throttle(retry_after=900)  # the first asked again on its own: longer than the policy waits
    results = env.lens.run_many([("throttling_by_deployment", week), ("volume_by_api_version", week)])
    assert [r.status for r in results] == ["failed", "ok"]
    assert "HTTP 429" in results[0].notice and "asked to wait 900 s" in results[0].notice


def test_at_most_the_configured_queries_are_in_flight(servers: tuple, tmp_path: Path, week: dict) -> None:
    la, ms, arm = servers
    settings = azure_settings(tmp_path, la.url, ms.url, arm.url, AOAI_LENS_SOURCE__MAX_CONCURRENT_QUERIES="2")
    logs, _m, _a = azure_sources(settings, credential=FakeCredential())
    requests = [LogsRequest(f"print n = {i}", week["start"], week["end"]) for i in range(6)]
    answers: list[Any] = []
    try:
        with la.paused():
            threads = [threading.Thread(target=lambda r=r: answers.append(logs.run(r))) for r in requests]
            for t in threads:
                t.start()
            assert la.wait_in_flight(2)
        for t in threads:
            t.join()
        assert len(answers) == 6 and all(a.status == "ok" for a in answers)
        assert la.max_in_flight == 2 and loganalytics.SLOTS.peak <= 5
    finally:
        loganalytics.SLOTS.resize(5)


def test_lens_from_settings_picks_the_azure_sources(
    servers: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    la, ms, arm = servers
    monkeypatch.setattr(azure_module, "default_credential", FakeCredential)
    lens = Lens.from_settings(azure_settings(tmp_path, la.url, ms.url, arm.url))
    assert (lens.logs.name, lens.metrics_source.name, lens.management.name) == ("log-analytics", "azure-metrics", "arm")
    assert lens.scope_resource_id == world.RESOURCES[0].arm_id


def test_tokens_go_over_http_only_to_loopback() -> None:
    assert https_options("http://127.0.0.1:8080") == {"enforce_https": False}
    assert https_options("http://logs.example.com") == {}
    assert https_options("https://api.loganalytics.io") == {}


# ---- metrics ---------------------------------------------------------------------------------------------


def test_metrics_split_by_deployment(env: Env, embedded: Lens, week: dict) -> None:
    kwargs = {**week, "interval": timedelta(hours=1), "split_by": ["ModelDeploymentName"], "aggregation": "Total"}
    r = env.lens.metrics(["TokenTransaction"], **kwargs)
    assert r.status == "ok", r.notice
    assert list(r.frame.columns) == ["TimeStamp", "ResourceId", "MetricName", "ModelDeploymentName", "Value"]
    assert set(r.frame.ResourceId) <= {res.arm_id for res in world.RESOURCES}
    sent = env.ms.last_request
    assert sent.path == f"/subscriptions/{world.SUBSCRIPTION_ID}/metrics:getBatch"
    assert sent.query["filter"] == "ModelDeploymentName eq '*'" and int(sent.query["top"]) >= 100
    assert sent.query["interval"] == "PT1H" and sent.query["aggregation"] == "Total"
    mine = r.frame.groupby("ModelDeploymentName").Value.sum()
    theirs = embedded.metrics(["TokenTransaction"], **kwargs).frame.groupby("ModelDeploymentName").Value.sum()
    pd.testing.assert_series_equal(mine[mine > 0].sort_index(), theirs.sort_index(), check_names=False)


def test_metric_dimensions_come_back_under_the_asked_names(env: Env, week: dict) -> None:
    r = env.lens.metrics(
        ["AzureOpenAIRequests"],
        **week,
        interval=timedelta(days=1),
        split_by=["modelDeploymentName", "StatusCode"],
        filters={"StatusCode": ["429"]},
    )
    assert r.status == "ok" and len(r.frame) > 0
    assert list(r.frame.columns)[3:5] == ["modelDeploymentName", "StatusCode"]
    assert set(r.frame.StatusCode) == {"429"}
    throttled = {"chat-gpt4o", "embed-large", "chat-gpt4o-mini", "support-gpt4o-ptu"}  # with the planted bursts
    assert set(r.frame[r.frame.Value > 0].modelDeploymentName) == throttled
    assert env.ms.last_request.query["filter"] == "StatusCode eq '429' and modelDeploymentName eq '*'"


def test_metric_filters_refuse_hostile_values(env: Env, week: dict) -> None:
    r = env.lens.metrics(["AzureOpenAIRequests"], **week, filters={"StatusCode": ["429' or StatusCode eq '*"]})
    assert r.status == "failed" and "RenderError" in r.notice
    assert env.ms.requests == []
    with pytest.raises(RenderError):
        env.lens.metrics_source.query(
            ["AzureOpenAIRequests"], **week, interval=timedelta(hours=1), split_by=["Model Deployment"]
        )


def test_metrics_throttled_then_answered(env: Env, week: dict) -> None:
    env.ms.throttle(retry_after=3)
    r = env.lens.metrics(["GeneratedTokens"], **week, interval=timedelta(days=1))
    assert r.status == "ok" and env.waits == [3.0]


# ---- management plane ------------------------------------------------------------------------------------


def test_deployments_and_usages_match_the_embedded_ones(env: Env, embedded: Lens) -> None:
    deps = env.lens.deployments()
    assert deps.status == "ok", deps.notice
    same(deps.frame, embedded.deployments().frame)
    usages = env.lens.usages()
    assert usages.status == "ok", usages.notice
    same(usages.frame, embedded.usages().frame)
    paths = [r.path for r in env.arm.requests]
    assert f"{world.RESOURCES[0].arm_id}/deployments" in paths
    assert (
        f"/subscriptions/{world.SUBSCRIPTION_ID}/providers/Microsoft.CognitiveServices/locations/swedencentral/usages"
        in paths
    )
    assert all(r.query.get("api-version") == "2024-10-01" and r.authorized for r in env.arm.requests)
    assert ("https://management.azure.com/.default",) in env.credential.scopes


def test_the_allow_list_comes_from_the_management_plane(env: Env, week: dict) -> None:
    assert "chat-gpt4o" in env.lens.allowed()["deployment"]
    r = env.lens.run("summary_by_deployment", **week, params={"deployments": ["chat-gpt4o"]})
    assert list(r.frame.Deployment) == ["chat-gpt4o"]
    with pytest.raises(RenderError):
        env.lens.run("summary_by_deployment", **week, params={"deployments": ["not-deployed"]})


def test_management_errors_and_throttling(env: Env) -> None:
    env.arm.throttle(retry_after=1)
    assert env.lens.deployments().status == "ok" and env.waits == [1.0]
    env.arm.enqueue(Reply(403, {"error": {"code": "AuthorizationFailed", "message": "no read on the account"}}))
    r = env.lens.usages()
    assert r.status == "failed" and "HTTP 403" in r.notice and "AuthorizationFailed" in r.notice


def test_weekly_range_is_sent_as_absolute_times(env: Env) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    r = env.lens.run("requests_by_status", start=start, end=start + timedelta(days=1))
    assert r.status == "ok" and r.frame.empty  # nothing then; the KQL bounds come from the let prefix
    assert "let _start = datetime(2030-01-01T00:00:00.000000Z);" in env.la.last_request.body["query"]


def test_a_new_deployment_is_known_once_the_deployment_list_refreshes(env: Env, week: dict) -> None:
    with pytest.raises(RenderError, match="not one of the known values"):
        env.lens.run("summary_by_deployment", **week, params={"deployments": ["chat-gpt5"]})
    account = world.RESOURCES[0].arm_id
    new = {
        "id": f"{account}/deployments/chat-gpt5",
        "name": "chat-gpt5",
        "sku": {"name": "GlobalStandard", "capacity": 10},
    }
    env.arm.deployments[account.lower()].append({**new, "properties": {"model": {"name": "gpt-5", "version": "1"}}})
    try:
        env.lens.cache.clear()  # stands for the deployment list's lifetime passing
        r = env.lens.run("summary_by_deployment", **week, params={"deployments": ["chat-gpt5"]})
        assert r.status == "ok" and r.frame.empty  # known now, and no traffic yet
    finally:
        env.arm.deployments[account.lower()].pop()


def test_names_are_refused_when_the_deployments_cannot_be_read(env: Env, week: dict) -> None:
    env.arm.enqueue(Reply(500, {"error": {"code": "InternalServerError", "message": "try later"}}))
    with pytest.raises(RenderError, match="cannot check names against the deployments"):
        env.lens.run("summary_by_deployment", **week, params={"deployments": ["chat-gpt4o"]})
    assert env.lens.run("summary_by_deployment", **week).status == "ok"  # no names: nothing to check


def test_column_conversion_edge_cases() -> None:
    from queries.sources.loganalytics import column

    assert column([638515262815394150, None], "long").tolist() == [638515262815394150, pd.NA]  # no float rounding
    assert str(column([1.5, "NaN", None], "real").dtype) == "float64"
    assert column([True, None, "false"], "bool").tolist() == [True, pd.NA, False]
    assert column(['{"a": 1}', "not json", None], "dynamic").tolist() == [{"a": 1}, "not json", None]
    dt = column([datetime(2025, 1, 1, tzinfo=UTC), None], "datetime")
    assert str(dt.dtype) == "datetime64[us, UTC]" and pd.isna(dt.iloc[1])


def test_spillover_through_the_metrics_api_matches_the_embedded_store(env: Env, embedded: Lens, week: dict) -> None:
    from queries import provisioned

    ptu = provisioned.provisioned(env.lens.deployments().frame)
    assert ptu["Spillover"].tolist() == ["chat-gpt4o"]  # ARM's spilloverDeploymentName, through the ARM server
    names = ["chat-gpt4o", "support-gpt4o-ptu"]
    r = provisioned.spill_metrics(env.lens, names, week["start"], week["end"])
    assert r.status == "ok", r.notice
    assert "IsSpillover eq '*'" in env.ms.last_request.query["filter"]
    mine = provisioned.spill_frame(r.frame, ptu)
    theirs = provisioned.spill_frame(provisioned.spill_metrics(embedded, names, week["start"], week["end"]).frame, ptu)
    assert mine["Spilled"].sum() == theirs["Spilled"].sum() > 0
    assert mine["PtuTurnedAway"].sum() == theirs["PtuTurnedAway"].sum()
