"""Several Log Analytics workspaces: `source.workspace_ids`. The real LogsQueryClient sends one
cross-workspace query (`additional_workspaces`) to a local Log Analytics that holds the demo workspace
split in two (by resource, the second with its own workspace id in TenantId); every catalogue query
answers exactly what the unsplit workspace answers, and Data health says which workspace each row came
from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from fakes import FakeCredential, LogAnalyticsServer, MetricsServer
from fakes.azure_env import ArmServer, azure_settings

from queries import catalogue
from queries.config import load_settings
from queries.demo import world
from queries.lens import Lens
from queries.sources.azure import azure_sources

SECOND = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
MOVED = [world.RESOURCES[1].name.upper(), world.RESOURCES[2].name.upper()]  # live in the second workspace


def split(src: Path, first: Path, second: Path) -> None:
    """The demo workspace as two: `first` keeps the eastus account's rows, `second` the others'."""
    shutil.copy(src, first)
    shutil.copy(src, second)
    names = ", ".join(f"'{n}'" for n in MOVED)
    with duckdb.connect(str(first)) as con:
        for table in ("AzureDiagnostics", "AzureMetrics"):
            con.execute(f"DELETE FROM {table} WHERE upper(Resource) IN ({names})")
    with duckdb.connect(str(second)) as con:
        for table in ("AzureDiagnostics", "AzureMetrics"):
            con.execute(f"DELETE FROM {table} WHERE upper(Resource) NOT IN ({names})")
            con.execute(f"UPDATE {table} SET TenantId = '{SECOND}'")


@pytest.fixture(scope="module")
def servers(
    demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LogAnalyticsServer, LogAnalyticsServer, MetricsServer, ArmServer]]:
    d = tmp_path_factory.mktemp("two-workspaces")
    first, second = d / "first.duckdb", d / "second.duckdb"
    split(demo_workspace, first, second)
    with (
        LogAnalyticsServer(first, workspace_id=world.TENANT_ID, workspaces={SECOND: second}) as two,
        LogAnalyticsServer(demo_workspace, workspace_id=world.TENANT_ID) as whole,
        MetricsServer(demo_workspace) as ms,
        ArmServer(demo_workspace) as arm,
    ):
        yield two, whole, ms, arm


def lens_for(la: LogAnalyticsServer, ms: MetricsServer, arm: ArmServer, data_dir: Path, **extra: str) -> Lens:
    settings = azure_settings(data_dir, la.url, ms.url, arm.url, **extra)
    logs, metrics, mgmt = azure_sources(settings, credential=FakeCredential(), sleep=lambda _s: None)
    return Lens(settings, logs, metrics, mgmt, scope_resource_id=settings.source.resource_ids[0])


@pytest.fixture(scope="module")
def week(demo_end: datetime) -> dict[str, datetime]:
    return {"start": demo_end - timedelta(days=7), "end": demo_end + timedelta(minutes=1)}


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    key = list(a.columns)
    pd.testing.assert_frame_equal(
        a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True), check_exact=False
    )


def test_every_query_across_two_workspaces_answers_as_their_union(servers: tuple, tmp_path: Path, week: dict) -> None:
    two, whole, ms, arm = servers
    both = lens_for(two, ms, arm, tmp_path / "a", AOAI_LENS_SOURCE__WORKSPACE_IDS=f'["{SECOND}"]')
    union = lens_for(whole, ms, arm, tmp_path / "b")
    names = sorted(catalogue.load_catalogue())
    two.clear_requests()
    got = both.run_many([(n, week) for n in names])
    want = union.run_many([(n, week) for n in names])
    for name, g, w in zip(names, got, want, strict=True):
        assert g.status == "ok", (name, g.notice)
        assert g.frame.columns.tolist() == w.frame.columns.tolist(), name
        if name == "data_health":  # the one query that says which workspace a row came from
            g_frame, w_frame = g.frame.drop(columns="WorkspaceId"), w.frame.drop(columns="WorkspaceId")
            same(g_frame, w_frame)
            continue
        assert len(g.frame) > 0 or len(w.frame) == 0, name
        same(g.frame, w.frame)
    # every request named the second workspace as an additional one: one cross-workspace query each
    bodies = [item["body"] for r in two.requests if r.path == "/v1/$batch" for item in r.body["requests"]]
    bodies += [r.body for r in two.requests if r.path.endswith("/query")]
    assert len(bodies) == len(names)
    assert all(b.get("workspaces") == [SECOND] for b in bodies)


def test_data_health_is_per_workspace_and_the_union_of_each(servers: tuple, tmp_path: Path, week: dict) -> None:
    two, _whole, ms, arm = servers
    both = lens_for(two, ms, arm, tmp_path / "a", AOAI_LENS_SOURCE__WORKSPACE_IDS=f'["{SECOND}"]')
    first_only = lens_for(two, ms, arm, tmp_path / "b")
    second_only = lens_for(two, ms, arm, tmp_path / "c", AOAI_LENS_SOURCE__WORKSPACE_ID=SECOND)
    health = both.run("data_health", **week).frame
    assert set(health["WorkspaceId"]) == {world.TENANT_ID, SECOND}
    by_ws = health.groupby("WorkspaceId")["Resource"].agg(lambda s: sorted(set(s)))
    assert by_ws[SECOND] == sorted(n.lower() for n in MOVED)
    assert by_ws[world.TENANT_ID] == [world.RESOURCES[0].name.lower()]
    each = pd.concat(
        [first_only.run("data_health", **week).frame, second_only.run("data_health", **week).frame],
        ignore_index=True,
    )
    same(health, each)


def test_an_unknown_workspace_fails_the_query_with_the_service_message(
    servers: tuple, tmp_path: Path, week: dict
) -> None:
    two, _whole, ms, arm = servers
    lens = lens_for(two, ms, arm, tmp_path, AOAI_LENS_SOURCE__WORKSPACE_IDS='["99999999-9999-4999-8999-999999999999"]')
    r = lens.run("summary_by_deployment", **week)
    assert r.status == "failed" and "99999999-9999-4999-8999-999999999999" in (r.notice or "")


def test_workspace_ids_settings() -> None:
    base = {
        "AOAI_LENS_SOURCE__KIND": "azure",
        "AOAI_LENS_SOURCE__SUBSCRIPTION_ID": world.SUBSCRIPTION_ID,
        "AOAI_LENS_SOURCE__METRICS_REGION": "eastus",
        "AOAI_LENS_SOURCE__RESOURCE_IDS": f'["{world.RESOURCES[0].arm_id}"]',
    }
    only_list = load_settings(environ={**base, "AOAI_LENS_SOURCE__WORKSPACE_IDS": f'["{SECOND}", "{SECOND.upper()}"]'})
    assert only_list.source.workspaces == [SECOND]  # the single workspace_id is optional when a list is given
    both = load_settings(
        environ={
            **base,
            "AOAI_LENS_SOURCE__WORKSPACE_ID": world.TENANT_ID,
            "AOAI_LENS_SOURCE__WORKSPACE_IDS": f'["{SECOND}"]',
        }
    )
    assert both.source.workspaces == [world.TENANT_ID, SECOND]
    from queries.errors import ConfigError

    with pytest.raises(ConfigError, match="workspace_id"):
        load_settings(environ=base)
    with pytest.raises(ConfigError, match="GUID"):
        load_settings(environ={**base, "AOAI_LENS_SOURCE__WORKSPACE_IDS": '["nope"]'})
