"""The real azure-mgmt-cognitiveservices client against the local ARM server (plain http works with enforce_https=False)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from fakes import FakeCredential, ManagementServer

HTTP = {"enforce_https": False}


@pytest.fixture
def server(demo_workspace: Path) -> Iterator[ManagementServer]:
    with ManagementServer(demo_workspace) as s:
        yield s


@pytest.fixture(scope="module")
def stored(demo_workspace: Path) -> dict[str, list[dict]]:
    """Deployment bodies by ARM account id, straight from the workspace."""
    con = duckdb.connect(str(demo_workspace), read_only=True)
    try:
        out: dict[str, list[dict]] = {}
        for rid, body in con.execute("SELECT ResourceId, Body FROM MgmtDeployments").fetchall():
            out.setdefault(rid, []).append(json.loads(body))
        return out
    finally:
        con.close()


def parts(account_id: str) -> tuple[str, str, str]:
    segs = account_id.strip("/").split("/")
    return segs[1], segs[3], segs[-1]  # subscription, resource group, account


def test_deployments_list_through_the_sdk(server: ManagementServer, stored: dict[str, list[dict]]) -> None:
    credential = FakeCredential()
    for account_id, bodies in stored.items():
        sub, rg, account = parts(account_id)
        client = CognitiveServicesManagementClient(credential, sub, base_url=server.url)
        deployments = list(client.deployments.list(rg, account, **HTTP))
        assert [d.name for d in deployments] == [b["name"] for b in bodies]
        for d, b in zip(deployments, bodies, strict=True):
            assert d.sku.name == b["sku"]["name"] and d.sku.capacity == b["sku"]["capacity"]
            assert d.properties.model.name == b["properties"]["model"]["name"]
            assert {r.key: r.count for r in d.properties.rate_limits} == {
                r["key"]: r["count"] for r in b["properties"]["rateLimits"]
            }
    assert credential.scopes[0] == ("https://management.azure.com/.default",)
    first = server.requests[0]
    assert first.method == "GET" and first.path.endswith("/deployments") and "api-version" in first.query


def test_one_deployment_and_an_unknown_account(server: ManagementServer, stored: dict[str, list[dict]]) -> None:
    account_id, bodies = next(iter(stored.items()))
    sub, rg, account = parts(account_id)
    client = CognitiveServicesManagementClient(FakeCredential(), sub, base_url=server.url)
    one = client.deployments.get(rg, account, bodies[-1]["name"], **HTTP)
    assert one.id == bodies[-1]["id"]
    with pytest.raises(ResourceNotFoundError) as info:
        list(client.deployments.list(rg, "no-such-account", **HTTP))
    assert info.value.status_code == 404 and "no-such-account" in str(info.value)


def test_regional_usages_through_the_sdk(server: ManagementServer, demo_workspace: Path) -> None:
    con = duckdb.connect(str(demo_workspace), read_only=True)
    try:
        rows = con.execute("SELECT Location, Body FROM MgmtUsages").fetchall()
    finally:
        con.close()
    sub = parts(next(iter(server.deployments)))[0]
    client = CognitiveServicesManagementClient(FakeCredential(), sub, base_url=server.url)
    for location, body in rows:
        usages = list(client.usages.list(location, **HTTP))
        expected = json.loads(body)["value"]
        assert [(u.name.value, u.current_value, u.limit) for u in usages] == [
            (e["name"]["value"], e["currentValue"], e["limit"]) for e in expected
        ]
    assert list(client.usages.list("antarctica", **HTTP)) == []


def test_arm_refuses_requests_without_api_version_or_token(server: ManagementServer) -> None:
    account_id = next(iter(server.deployments))
    no_token = requests.get(f"{server.url}{account_id}/deployments?api-version=2024-10-01", timeout=10)
    assert no_token.status_code == 401
    headers = {"Authorization": "Bearer x"}
    no_version = requests.get(f"{server.url}{account_id}/deployments", headers=headers, timeout=10)
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    ok = requests.get(
        f"{server.url}{account_id.upper()}/deployments?api-version=2024-10-01", headers=headers, timeout=10
    )
    assert ok.status_code == 200 and ok.json()["value"]  # ARM paths are case-insensitive
