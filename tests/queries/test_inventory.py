"""The estate inventory: flags judged by hand on small bodies, on the demo estate, and through the real
Resource Graph and Azure Monitor clients against the local ARM server."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fakes import FakeCredential, ManagementServer
from hypothesis import given
from hypothesis import strategies as st

from queries import inventory as inv
from queries.config import Settings
from queries.demo import world
from queries.lens import Lens
from queries.sources.estate import AzureEstate

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SUB = "11111111-2222-3333-4444-555555555555"
LAW = f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.OperationalInsights/workspaces/law-a"
OTHER_LAW = f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.OperationalInsights/workspaces/law-b"
STORAGE = f"/subscriptions/{SUB}/resourceGroups/rg-mon/providers/Microsoft.Storage/storageAccounts/stlogs"


def account(name: str, kind: str = "OpenAI", **props: Any) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/{name}",
        "name": name,
        "type": "microsoft.cognitiveservices/accounts",
        "kind": kind,
        "location": "eastus",
        "subscriptionId": SUB,
        "resourceGroup": "rg",
        "sku": {"name": "S0"},
        "properties": {"publicNetworkAccess": "Disabled", "disableLocalAuth": True, **props},
    }


def setting(*logs: tuple[str, bool], workspace: str | None = LAW, storage: str | None = None, hub: bool = False):
    props: dict[str, Any] = {
        "logs": [
            {
                "category": None if c in ("allLogs", "audit") else c,
                "categoryGroup": c if c in ("allLogs", "audit") else None,
                "enabled": on,
            }
            for c, on in logs
        ]
    }
    if workspace:
        props["workspaceId"] = workspace
    if storage:
        props["storageAccountId"] = storage
    if hub:
        props["eventHubAuthorizationRuleId"] = "/subscriptions/x/.../authorizationrules/RootManageSharedAccessKey"
    return {"name": "s", "properties": props}


def deployment(name: str, model: str, version: str, sku: str = "GlobalStandard", **props: Any) -> dict[str, Any]:
    return {
        "name": name,
        "sku": {"name": sku, "capacity": 10},
        "properties": {"model": {"format": "OpenAI", "name": model, "version": version}, **props},
    }


def model_entry(kind: str, name: str, version: str, inference: str | None, sku_dates: dict[str, str] | None = None):
    return {
        "kind": kind,
        "model": {
            "name": name,
            "version": version,
            "deprecation": {"inference": inference},
            "skus": [{"name": s, "deprecationDate": d} for s, d in (sku_dates or {}).items()],
        },
    }


@dataclasses.dataclass
class Bodies:
    """An EstateSource over literal bodies; `broken` names accounts whose diagnostic settings fail."""

    rows: list[dict[str, Any]]
    deps: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    diag: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    model_list: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    broken: tuple[str, ...] = ()
    calls: int = 0
    name: str = "bodies"

    def accounts(self) -> list[dict[str, Any]]:
        self.calls += 1
        return self.rows

    def deployments(self, account_id: str) -> list[dict[str, Any]]:
        return self.deps.get(account_id.rsplit("/", 1)[-1], [])

    def diagnostic_settings(self, account_id: str) -> list[dict[str, Any]]:
        name = account_id.rsplit("/", 1)[-1]
        if name in self.broken:
            raise PermissionError("AuthorizationFailed: the client does not have authorization")
        return self.diag.get(name, [])

    def models(self, subscription: str, location: str) -> list[dict[str, Any]]:
        return self.model_list


def flagged(result: inv.Inventory) -> set[tuple[str, str, str]]:
    return {(r.Account, r.Deployment, r.Flag) for r in result.flags.itertuples()}


# ---- by hand ---------------------------------------------------------------------------------------


def test_a_well_kept_account_has_no_flag() -> None:
    src = Bodies([account("a")], diag={"a": [setting(("allLogs", True))]})
    result = inv.collect(src, now=NOW)
    assert result.status == "ok" and result.flags.empty
    assert result.accounts.loc[0, "KeyAuth"] == False  # noqa: E712 (a numpy bool)


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ([setting(("allLogs", True))], []),
        ([setting(("RequestResponse", True), ("AzureOpenAIRequestUsage", True))], []),
        # the two categories may come from two settings, to a workspace and to storage
        (
            [
                setting(("RequestResponse", True)),
                setting(("AzureOpenAIRequestUsage", True), workspace=None, storage=STORAGE),
            ],
            [],
        ),
        ([setting(("RequestResponse", True), ("AzureOpenAIRequestUsage", False))], ["AzureOpenAIRequestUsage"]),
        ([setting(("audit", True), ("RequestResponse", True))], ["AzureOpenAIRequestUsage"]),
        ([setting(("allLogs", False))], ["RequestResponse", "AzureOpenAIRequestUsage"]),
        # an Event Hub alone is not a destination aoai-lens can read
        ([setting(("allLogs", True), workspace=None, hub=True)], ["RequestResponse", "AzureOpenAIRequestUsage"]),
        ([], ["RequestResponse", "AzureOpenAIRequestUsage"]),
    ],
)
def test_diagnostic_categories_by_hand(settings: list[dict[str, Any]], missing: list[str]) -> None:
    result = inv.collect(Bodies([account("a")], diag={"a": settings}), now=NOW)
    rows = result.flags[result.flags["Flag"] == "diagnostics_incomplete"]
    if not missing:
        assert rows.empty
    else:
        assert len(rows) == 1
        detail = rows.iloc[0]["Detail"]
        assert ("no diagnostic setting" in detail) if not settings else all(m in detail for m in missing)
        assert all(m in rows.iloc[0]["Action"] for m in missing)


def test_only_configured_destinations_count() -> None:
    src = Bodies([account("a")], diag={"a": [setting(("allLogs", True), workspace=OTHER_LAW)]})
    assert flagged(inv.collect(src, now=NOW)) == set()
    limited = inv.collect(src, now=NOW, destinations=[LAW.upper()])  # ARM ids compare case-insensitively
    assert flagged(limited) == {("a", "", "diagnostics_incomplete")}
    assert "a configured destination" in limited.flags.iloc[0]["Detail"]
    assert flagged(inv.collect(src, now=NOW, destinations=[OTHER_LAW])) == set()


def test_network_and_key_auth_flags() -> None:
    rows = [
        account("public", publicNetworkAccess="Enabled"),
        account("selected", publicNetworkAccess="Enabled", networkAcls={"defaultAction": "Deny"}),
        account("default"),  # no publicNetworkAccess nor disableLocalAuth: the service defaults, both on
        account("private", privateEndpointConnections=[{"id": "pe1"}, {"id": "pe2"}]),
    ]
    del rows[2]["properties"]["publicNetworkAccess"], rows[2]["properties"]["disableLocalAuth"]
    diag = {r["name"]: [setting(("allLogs", True))] for r in rows}
    result = inv.collect(Bodies(rows, diag=diag), now=NOW)
    assert flagged(result) == {
        ("public", "", "public_network_access"),
        ("selected", "", "public_network_access"),
        ("default", "", "public_network_access"),
        ("default", "", "key_auth_enabled"),
    }
    details = dict(zip(result.flags["Account"] + result.flags["Flag"], result.flags["Detail"], strict=True))
    assert "from any network" in details["publicpublic_network_access"]
    assert "limited to allowed networks" in details["selectedpublic_network_access"]
    assert result.accounts.set_index("Account").loc["private", "PrivateEndpoints"] == 2


def test_retirement_dates_threshold_and_kinds() -> None:
    day = timedelta(days=1)
    models = [
        model_entry("OpenAI", "gpt-x", "1", (NOW + 90 * day).isoformat()),  # exactly at the threshold: flagged
        model_entry("OpenAI", "gpt-y", "1", (NOW + 91 * day).isoformat()),
        # the deployment type's own date is earlier than the model's
        model_entry("OpenAI", "gpt-z", "1", (NOW + 400 * day).isoformat(), {"Standard": (NOW + 10 * day).isoformat()}),
        model_entry("OpenAI", "gpt-old", "1", (NOW - 3 * day).isoformat()),
        # the account's kind is preferred when the regions list both
        model_entry("AIServices", "gpt-k", "1", (NOW + 500 * day).isoformat()),
        model_entry("OpenAI", "gpt-k", "1", (NOW + 5 * day).isoformat()),
    ]
    deps = {
        "a": [
            deployment("x", "gpt-x", "1"),
            deployment("y", "gpt-y", "1"),
            deployment("z-std", "gpt-z", "1", sku="Standard"),
            deployment("z-glob", "gpt-z", "1"),
            deployment("old", "gpt-old", "1"),
            deployment("unknown", "gpt-nowhere", "1"),
            deployment("ptu", "gpt-y", "1", sku="GlobalProvisionedManaged", spilloverDeploymentName="y"),
        ],
        "f": [deployment("k", "gpt-k", "1")],
    }
    rows = [account("a"), account("f", kind="AIServices")]
    diag = {r["name"]: [setting(("allLogs", True))] for r in rows}
    result = inv.collect(Bodies(rows, deps=deps, diag=diag, model_list=models), now=NOW)
    days = result.deployments.set_index("Deployment")["DaysToRetirement"]
    assert days["x"] == 90 and days["y"] == 91 and days["z-std"] == 10 and days["z-glob"] == 400
    assert days["k"] == 500 and days["old"] == -3 and pd.isna(days["unknown"])
    assert result.deployments.set_index("Deployment").loc["ptu", "Spillover"] == "y"
    assert flagged(result) == {("a", d, "model_retiring") for d in ("x", "z-std", "old")}
    details = result.flags.set_index("Deployment")["Detail"]
    assert details["old"].endswith(f"retired on {(NOW - 3 * day):%Y-%m-%d}")
    assert details["z-std"] == f"gpt-z 1 retires on {(NOW + 10 * day):%Y-%m-%d} (in 10 days)"
    wider = inv.collect(Bodies(rows, deps=deps, diag=diag, model_list=models), now=NOW, retirement_days=91)
    assert ("a", "y", "model_retiring") in flagged(wider) and ("a", "ptu", "model_retiring") in flagged(wider)


def test_an_unreadable_part_is_named_and_the_rest_judged() -> None:
    rows = [account("a", publicNetworkAccess="Enabled"), account("b")]
    src = Bodies(rows, diag={"a": [setting(("allLogs", True))]}, broken=("b",))
    result = inv.collect(src, now=NOW)
    assert result.status == "partial" and len(result.problems) == 1
    assert "b diagnostic settings: PermissionError: AuthorizationFailed" in result.problems[0]
    assert flagged(result) == {("a", "", "public_network_access")}  # b is not judged on what was not read


def test_no_account_list_is_a_failure_that_says_why() -> None:
    class Refusing(Bodies):
        def accounts(self) -> list[dict[str, Any]]:
            raise PermissionError("AuthorizationFailed on Microsoft.ResourceGraph/resources")

    result = inv.collect(Refusing([]), now=NOW)
    assert result.status == "failed" and "AuthorizationFailed" in (result.notice or "")
    assert list(result.flags.columns) == inv.FLAG_COLUMNS and result.flags.empty


def test_other_kinds_are_not_listed() -> None:
    rows = [account("a"), account("speech", kind="SpeechServices", publicNetworkAccess="Enabled")]
    result = inv.collect(Bodies(rows, diag={"a": [setting(("allLogs", True))]}), now=NOW)
    assert list(result.accounts["Account"]) == ["a"] and result.flags.empty


LOG = st.tuples(
    st.sampled_from(["allLogs", "audit", "Audit", "RequestResponse", "AzureOpenAIRequestUsage", "Trace"]), st.booleans()
)
SETTING = st.tuples(st.lists(LOG, max_size=4), st.sampled_from([LAW, OTHER_LAW, None]), st.booleans())


@given(st.lists(SETTING, max_size=4))
def test_exported_categories_property(specs: list[tuple[list[tuple[str, bool]], str | None, bool]]) -> None:
    """Against an independent reading: a needed category reaches LAW when some enabled entry names it, or
    the allLogs group, in a setting whose workspace is LAW."""
    settings = [setting(*logs, workspace=ws, hub=hub) for logs, ws, hub in specs]
    expected = set()
    for logs, ws, _hub in specs:
        if ws != LAW:
            continue
        for c, on in logs:
            if on and c == "allLogs":
                expected |= set(inv.NEEDED_CATEGORIES)
            elif on and c in inv.NEEDED_CATEGORIES:
                expected.add(c)
    assert inv.exported_categories(settings, [LAW]) == expected


# ---- the demo ----------------------------------------------------------------------------------------


@pytest.fixture
def demo_lens(demo_settings: Settings, demo_end: datetime) -> Lens:
    lens = Lens.from_settings(demo_settings)
    lens.now = lambda: demo_end
    return lens


def test_inventory_flags_on_the_demo(demo_lens: Lens) -> None:
    result = demo_lens.inventory()
    assert result.status == "ok", result.notice
    accounts = result.accounts.set_index("Account")
    assert set(accounts.index) == {a.name for a in world.ACCOUNTS}
    assert accounts.loc["contoso-ai-foundry", "Kind"] == "AIServices"
    assert (accounts.drop(index="contoso-ai-foundry")["Kind"] == "OpenAI").all()
    assert flagged(result) == {
        ("contoso-oai-swedencentral", "", "public_network_access"),
        ("contoso-oai-batch", "", "diagnostics_incomplete"),
        ("contoso-oai-eastus", "", "key_auth_enabled"),
        ("contoso-oai-swedencentral", "", "key_auth_enabled"),
        ("contoso-oai-eastus", "chat-gpt4o-mini", "model_retiring"),
        ("contoso-oai-swedencentral", "legacy-gpt4o-mini", "model_retiring"),
    }
    batch = result.flags[result.flags["Flag"] == "diagnostics_incomplete"].iloc[0]
    assert "AzureOpenAIRequestUsage" in batch["Detail"] and "RequestResponse" not in batch["Detail"]
    deps = result.deployments.set_index("Deployment")
    # every deployment of the world and of the estate, each with its retirement date
    assert set(deps.index) == {d.name for d in (*world.DEPLOYMENTS, *world.ESTATE_DEPLOYMENTS)}
    assert deps["RetirementDate"].notna().all()
    assert deps.loc["legacy-gpt4o-mini", "DaysToRetirement"] == 45
    assert deps.loc["support-gpt4o-ptu", "Spillover"] == "chat-gpt4o"
    assert deps.loc["foundry-gpt41-mini", "Account"] == "contoso-ai-foundry"
    # the configured deployments (what the rest of the app reads) are unchanged by the estate
    assert set(demo_lens.deployments().frame["Deployment"]) == {d.name for d in world.DEPLOYMENTS}


def test_the_inventory_is_read_once_per_lifetime(demo_settings: Settings) -> None:
    src = Bodies([account("a", publicNetworkAccess="Enabled")], diag={"a": [setting(("allLogs", True))]})
    lens = Lens(demo_settings, None, None, None, estate=src)  # type: ignore[arg-type]
    first, second = lens.inventory(), lens.inventory()
    assert src.calls == 1 and first is second
    broken = Bodies([account("b")], broken=("b",))
    lens = Lens(demo_settings, None, None, None, estate=broken)  # type: ignore[arg-type]
    assert lens.inventory().status == "partial" and lens.inventory().status == "partial"
    assert broken.calls == 2  # a partial answer is not kept


# ---- the real SDK clients against the local ARM server ------------------------------------------------


@pytest.fixture
def arm(demo_workspace: Path) -> Any:
    with ManagementServer(demo_workspace) as server:
        yield server


def test_azure_estate_through_the_sdks_matches_the_embedded_one(
    arm: ManagementServer, demo_lens: Lens, demo_end: datetime
) -> None:
    arm.graph_page_size = 3  # four accounts: two pages, the second asked for with the first's $skipToken
    credential = FakeCredential()
    estate = AzureEstate(endpoint=arm.url, credential=credential, subscriptions=[world.SUBSCRIPTION_ID])
    remote = inv.collect(estate, now=demo_end)
    local = demo_lens.inventory()
    assert remote.status == "ok", remote.notice
    for name in ("accounts", "deployments", "diagnostics", "flags"):
        pd.testing.assert_frame_equal(getattr(remote, name), getattr(local, name), check_dtype=False)
    graph = [r for r in arm.requests if r.method == "POST"]
    assert [r.path for r in graph] == ["/providers/Microsoft.ResourceGraph/resources"] * 2
    assert graph[0].query["api-version"] == "2021-03-01"
    assert graph[0].body["subscriptions"] == [world.SUBSCRIPTION_ID]
    assert graph[0].body["options"]["resultFormat"] == "objectArray" and "$skipToken" not in graph[0].body["options"]
    assert base64.b64decode(graph[1].body["options"]["$skipToken"]) == b"offset:3"
    assert "kind in~ ('OpenAI', 'AIServices')" in graph[0].body["query"]
    diag = [r for r in arm.requests if r.path.lower().endswith("/diagnosticsettings")]
    assert len(diag) == len(world.ACCOUNTS) and all(r.query["api-version"] == "2021-05-01-preview" for r in diag)
    assert all(r.authorized for r in arm.requests)
    assert set(credential.scopes) == {("https://management.azure.com/.default",)}


def test_azure_estate_other_subscription_and_refusals(arm: ManagementServer, demo_end: datetime) -> None:
    other = AzureEstate(endpoint=arm.url, credential=FakeCredential(), subscriptions=[SUB])
    assert other.accounts() == []
    estate = AzureEstate(endpoint=arm.url, credential=FakeCredential(), subscriptions=[world.SUBSCRIPTION_ID])
    gone = world.ACCOUNTS[2].arm_id
    del arm.diagnostics[gone.lower()]
    result = inv.collect(estate, now=demo_end)
    assert result.status == "partial" and len(result.problems) == 1
    assert result.problems[0].startswith("contoso-oai-batch diagnostic settings: ResourceNotFoundError")
