"""The Azure Data Explorer / Fabric Eventhouse source end to end: the real azure-kusto-data KustoClient,
behind `AdxLogs` and the Lens, against a local Kusto REST endpoint (duckdb-kql's, serving the demo
workspace; tests/fakes/adx_server.py). The catalogue itself runs over it in test_catalogue.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fakes import Reply
from fakes.adx_server import AdxServer, partial_v2
from fakes.azure_env import adx_settings
from fakes.credential import FakeCredential

from queries import catalogue
from queries.config import load_settings
from queries.demo import world
from queries.errors import ConfigError
from queries.lens import Lens
from queries.sources.adx import AdxConfigError, AdxLogs, check_cluster_url
from queries.sources.azure import azure_sources
from queries.sources.base import LogsRequest
from queries.sources.embedded import EmbeddedManagement, EmbeddedMetrics, EmbeddedWorkspace


@pytest.fixture(scope="module")
def server(demo_workspace: Path) -> Iterator[AdxServer]:
    with AdxServer(demo_workspace) as s:
        yield s


@pytest.fixture
def adx(server: AdxServer) -> Iterator[AdxServer]:
    server.requests.clear()
    yield server
    while server.pending:
        server.next_reply()


@pytest.fixture(scope="module")
def week(demo_end: datetime) -> dict[str, datetime]:
    return {"start": demo_end - timedelta(days=7), "end": demo_end + timedelta(minutes=1)}


def lens_over(server: AdxServer, workspace: Path, tmp_path: Path, **kwargs: object) -> tuple[Lens, AdxLogs]:
    settings = adx_settings(tmp_path, server.url)
    logs = AdxLogs(
        cluster_url=server.url, database="AOAILogs", credential=kwargs.pop("credential", FakeCredential()), **kwargs
    )  # type: ignore[arg-type]
    ws = EmbeddedWorkspace(workspace)
    return Lens(
        settings, logs, EmbeddedMetrics(ws), EmbeddedManagement(ws), scope_resource_id=world.RESOURCES[0].arm_id
    ), logs


def test_a_query_answers_as_the_embedded_workspace_does(
    adx: AdxServer, demo_workspace: Path, demo_settings, tmp_path: Path, week: dict
) -> None:
    credential = FakeCredential()
    lens, _ = lens_over(adx, demo_workspace, tmp_path, credential=credential)
    r = lens.run("summary_by_deployment", **week)
    want = Lens.from_settings(demo_settings).run("summary_by_deployment", **week)
    assert r.status == "ok" and r.source == "adx" and r.notice is None
    assert (
        r.frame.sort_values("Deployment")
        .reset_index(drop=True)
        .equals(want.frame.sort_values("Deployment").reset_index(drop=True))
    )
    sent = adx.queries()[-1]
    assert sent.path == "/v2/rest/query" and sent.database == "AOAILogs" and sent.csl == r.kql
    assert sent.authorized  # a bearer token from the credential, for Kusto's audience
    assert ("https://kusto.kusto.windows.net/.default",) in credential.scopes
    assert '"servertimeout": "0:03:00"' in str(sent.properties)


def test_a_page_of_queries_goes_side_by_side(adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict) -> None:
    lens, _ = lens_over(adx, demo_workspace, tmp_path)
    names = ["summary_by_deployment", "requests_by_status", "tokens_by_deployment", "latency_by_deployment"]
    results = lens.run_many([(n, week) for n in names])
    assert [r.status for r in results] == ["ok"] * 4
    assert sorted(q.csl for q in adx.queries()) == sorted(r.kql for r in results)


def test_a_partial_answer_keeps_its_rows_with_the_services_message(
    adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict
) -> None:
    _, logs = lens_over(adx, demo_workspace, tmp_path)
    adx.enqueue(
        Reply(
            200,
            partial_v2(
                [("Deployment", "string"), ("Requests", "long")],
                [["chat-gpt4o", 12]],
                "Query result set has exceeded the internal record count limit",
            ),
        )
    )
    answer = logs.run(
        LogsRequest(
            "AzureDiagnostics | summarize Requests = count() by Deployment = Resource", week["start"], week["end"]
        )
    )
    assert answer.status == "partial" and answer.rows == 1
    assert "exceeded the internal record count limit" in (answer.notice or "")
    assert answer.frame.Requests.tolist() == [12] and str(answer.frame.Requests.dtype) == "Int64"


def test_a_bad_query_fails_with_the_services_message(
    adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict
) -> None:
    _, logs = lens_over(adx, demo_workspace, tmp_path)
    answer = logs.run(LogsRequest("AzureDiagnostics | where NoSuchColumn == 1 | count", week["start"], week["end"]))
    assert answer.status == "failed" and "HTTP 400" in (answer.notice or "")
    assert "NoSuchColumn" in (answer.notice or "")


def test_throttling_is_retried_then_answered(adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict) -> None:
    waits: list[float] = []
    _, logs = lens_over(adx, demo_workspace, tmp_path, sleep=waits.append)
    adx.enqueue(Reply(429, {"error": {"code": "TooManyRequests", "message": "throttled"}}))
    answer = logs.run(LogsRequest("AzureDiagnostics | count", week["start"], week["end"]))
    assert answer.status == "ok" and len(answer.frame) == 1 and waits == [1.0]


def test_still_throttled_after_the_retries_is_reported(
    adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict
) -> None:
    waits: list[float] = []
    _, logs = lens_over(adx, demo_workspace, tmp_path, sleep=waits.append, retries=2)
    adx.enqueue(*[Reply(429, {"error": {"code": "TooManyRequests", "message": "throttled"}})] * 3)
    answer = logs.run(LogsRequest("AzureDiagnostics | count", week["start"], week["end"]))
    assert answer.status == "failed" and "HTTP 429" in (answer.notice or "") and "2 retries" in (answer.notice or "")
    assert waits == [1.0, 2.0]


@pytest.mark.parametrize("status", [401, 403])
def test_access_refused_names_the_role(
    status: int, adx: AdxServer, demo_workspace: Path, tmp_path: Path, week: dict
) -> None:
    _, logs = lens_over(adx, demo_workspace, tmp_path)
    adx.enqueue(Reply(status, {"error": {"code": "Forbidden", "message": "principal has no access"}}))
    answer = logs.run(LogsRequest("AzureDiagnostics | count", week["start"], week["end"]))
    assert answer.status == "failed" and f"HTTP {status}" in (answer.notice or "")
    assert "Database Viewer" in (answer.notice or "")


def test_an_unknown_database_is_named(adx: AdxServer, tmp_path: Path, week: dict) -> None:
    logs = AdxLogs(cluster_url=adx.url, database="NoSuchDb", credential=FakeCredential())
    answer = logs.run(LogsRequest("AzureDiagnostics | count", week["start"], week["end"]))
    assert answer.status == "failed" and "'NoSuchDb' was not found" in (answer.notice or "")


def test_settings_of_kind_adx_build_the_adx_source(adx: AdxServer, tmp_path: Path, week: dict) -> None:
    settings = adx_settings(tmp_path, adx.url + "/")
    assert settings.source.adx_cluster_url == adx.url and not settings.is_demo
    logs, _metrics, _mgmt = azure_sources(settings, credential=FakeCredential())
    assert isinstance(logs, AdxLogs) and logs.database == "AOAILogs"
    spec = catalogue.get("requests_per_hour")
    lens = Lens(settings, logs, _metrics, _mgmt, scope_resource_id=settings.source.resource_ids[0])
    kql = lens.render(spec.name, **week)[2]
    assert logs.run(LogsRequest(kql, week["start"], week["end"])).status == "ok"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({}, "needs adx_cluster_url, adx_database"),
        ({"AOAI_LENS_SOURCE__ADX_CLUSTER_URL": "http://mycluster.kusto.windows.net"}, "reached over https"),
        ({"AOAI_LENS_SOURCE__ADX_CLUSTER_URL": "https://c.kusto.windows.net/db"}, "without a path"),
        ({"AOAI_LENS_SOURCE__ADX_CLUSTER_URL": "mycluster"}, "is not a cluster URL"),
        (
            {
                "AOAI_LENS_SOURCE__ADX_CLUSTER_URL": "https://c.kusto.windows.net",
                "AOAI_LENS_SOURCE__ADX_DATABASE": "a;b",
            },
            "is not a database name",
        ),
    ],
)
def test_bad_adx_settings_say_what_is_wrong(extra: dict, problem: str, tmp_path: Path) -> None:
    ids = ",".join(f'"{r.arm_id}"' for r in world.RESOURCES)
    env = {
        "AOAI_LENS_DATA_DIR": str(tmp_path),
        "AOAI_LENS_SOURCE__KIND": "adx",
        "AOAI_LENS_SOURCE__SUBSCRIPTION_ID": world.SUBSCRIPTION_ID,
        "AOAI_LENS_SOURCE__METRICS_REGION": "eastus",
        "AOAI_LENS_SOURCE__RESOURCE_IDS": f"[{ids}]",
        **extra,
    }
    with pytest.raises(ConfigError, match=problem):
        load_settings(environ=env)


def test_tokens_go_over_http_only_to_loopback() -> None:
    assert check_cluster_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert check_cluster_url("https://help.kusto.windows.net") == "https://help.kusto.windows.net"
    with pytest.raises(AdxConfigError, match="https"):
        AdxLogs(cluster_url="http://help.kusto.windows.net", database="Samples", credential=FakeCredential())


def test_an_unreachable_cluster_is_tried_again_then_named(week: dict) -> None:
    """A refused connection is retried (1 s, 2 s, 4 s, not really slept here) before the panel says the
    cluster cannot be reached."""
    import socket

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    slept: list[float] = []
    logs = AdxLogs(
        cluster_url=f"http://127.0.0.1:{port}", database="AOAILogs", credential=FakeCredential(), sleep=slept.append
    )
    answer = logs.run(LogsRequest("AzureDiagnostics | count", week["start"], week["end"]))
    assert answer.status == "failed" and "cannot be reached" in (answer.notice or "")
    assert slept == [1.0, 2.0, 4.0]
