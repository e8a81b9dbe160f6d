"""The fictional organisation the demo workspace simulates.

Everything the workload simulator, the local Azure OpenAI simulator, the demo configuration and the
tests need to agree on lives here: resources, deployments (with the SKU and capacity the management
plane would report), the features and teams that call them, and who calls through what identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from queries import limits

TENANT_ID = "7f3c2a10-5b8e-4d2f-9a61-0c4e8b7d1a23"  # the Log Analytics workspace id (TenantId column)
SUBSCRIPTION_ID = "3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28"
RESOURCE_GROUP = "rg-contoso-ai"
# (retired deployment, the one that replaced it): still called by a client nobody updated -> 404s
RETIRED_DEPLOYMENT = ("chat-gpt35", "chat-gpt4o-mini")
PROBE_OBJECT_ID = "9c1e4b7a-0d2f-4e86-a3b5-6f8d2c9e1b04"  # the managed identity the probes call with


@dataclass(frozen=True)
class Resource:
    name: str
    location: str

    @property
    def resource_id(self) -> str:
        """The ARM id in the upper-case form AzureDiagnostics carries."""
        return (
            f"/SUBSCRIPTIONS/{SUBSCRIPTION_ID.upper()}/RESOURCEGROUPS/{RESOURCE_GROUP.upper()}"
            f"/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/{self.name.upper()}"
        )

    @property
    def arm_id(self) -> str:
        """The ARM id as the management plane spells it."""
        return (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


@dataclass(frozen=True)
class Deployment:
    name: str
    resource: str
    model: str
    version: str
    sku: str  # GlobalStandard, DataZoneStandard, Standard, (Global)ProvisionedManaged, GlobalBatch
    capacity: int  # 1K TPM units for standard SKUs, PTUs for provisioned, enqueued K tokens for batch
    kind: str = "chat"  # chat or embedding
    ms_per_token: float = 10.0  # generation speed, for latency growing with output tokens
    base_ms: float = 250.0
    quiet_after_days: float | None = None  # the deployment stops receiving traffic this many days before now
    created_days_ago: float | None = None  # created this many days before now (default: long before the data)
    replaces: str | None = None  # before it existed, its callers used this deployment
    spillover: str | None = None  # provisioned only: the standard deployment ARM names in spilloverDeploymentName

    @property
    def tpm_limit(self) -> int:
        """Tokens per minute the deployment allows (a PTU's throughput for provisioned)."""
        return limits.tpm_limit(self.sku, self.capacity, self.model)

    @property
    def rpm_limit(self) -> int:
        return limits.rpm_limit(self.sku, self.capacity, self.model)


@dataclass(frozen=True)
class Feature:
    name: str
    team: str
    cost_center: str
    object_id: str  # "" = calls with an API key
    display_name: str
    ip_prefix: str  # first three octets of the caller's network
    deployments: tuple[str, ...]
    share: float  # share of all requests
    prompt_tokens: tuple[float, float]  # lognormal median and sigma
    completion_tokens: tuple[float, float]
    cached_share: float = 0.0  # fraction of prompt tokens served from the prompt cache
    streaming: float = 0.0  # share of streamed calls
    rhythm: str = "office"  # office, nightly, flat
    bursts: tuple[int, ...] = field(default_factory=tuple)  # days before now with a burst


RESOURCES = (
    Resource("contoso-oai-eastus", "eastus"),
    Resource("contoso-oai-swedencentral", "swedencentral"),
    Resource("contoso-oai-batch", "eastus"),
)

DEPLOYMENTS = (
    Deployment("chat-gpt4o", "contoso-oai-eastus", "gpt-4o", "2024-11-20", "GlobalStandard", 150, ms_per_token=11.0),
    Deployment(
        "chat-gpt4o-mini",
        "contoso-oai-eastus",
        "gpt-4o-mini",
        "2024-07-18",
        "GlobalStandard",
        200,
        ms_per_token=6.0,
        base_ms=180.0,
    ),
    Deployment(
        "rag-gpt41", "contoso-oai-swedencentral", "gpt-4.1", "2025-04-14", "DataZoneStandard", 120, ms_per_token=9.0
    ),
    Deployment(
        "agent-o4-mini",
        "contoso-oai-eastus",
        "o4-mini",
        "2025-04-16",
        "GlobalStandard",
        60,
        ms_per_token=14.0,
        base_ms=900.0,
    ),
    # a provisioned-throughput pilot: 15 global PTUs ($1/PTU-hour) bought a week ago for support-chat
    Deployment(
        "support-gpt4o-ptu",
        "contoso-oai-eastus",
        "gpt-4o",
        "2024-11-20",
        "GlobalProvisionedManaged",
        15,
        ms_per_token=8.0,
        base_ms=200.0,
        created_days_ago=7.0,
        replaces="chat-gpt4o",
        spillover="chat-gpt4o",  # same resource, model and version; Global to Global, as Azure requires
    ),
    Deployment(
        "embed-small",
        "contoso-oai-swedencentral",
        "text-embedding-3-small",
        "1",
        "Standard",
        120,
        kind="embedding",
        ms_per_token=0.05,
        base_ms=60.0,
    ),
    Deployment(
        "embed-large",
        "contoso-oai-eastus",
        "text-embedding-3-large",
        "1",
        "GlobalStandard",
        100,
        kind="embedding",
        ms_per_token=0.08,
        base_ms=80.0,
    ),
    Deployment(
        "batch-gpt4o", "contoso-oai-batch", "gpt-4o", "2024-11-20", "GlobalBatch", 500, ms_per_token=2.0, base_ms=400.0
    ),
    Deployment(
        "legacy-gpt4o-mini",
        "contoso-oai-swedencentral",
        "gpt-4o-mini",
        "2024-07-18",
        "Standard",
        30,
        ms_per_token=7.0,
        base_ms=200.0,
        quiet_after_days=4.0,
    ),
)

FEATURES = (
    Feature(
        "support-chat",
        "support",
        "CC-1001",
        "1b6f0a52-8c3d-4e71-b2a9-5d0e7f3c8a16",
        "mi-support-chat",
        "10.20.1",
        ("support-gpt4o-ptu", "chat-gpt4o"),
        0.20,
        (1800, 0.6),
        (220, 0.7),
        cached_share=0.45,
        streaming=0.8,
    ),
    Feature(
        "ticket-triage",
        "support",
        "CC-1001",
        "",
        "triage-worker (API key)",
        "10.20.2",
        ("chat-gpt4o-mini",),
        0.18,
        (900, 0.5),
        (60, 0.5),
    ),
    Feature(
        "semantic-search",
        "search",
        "CC-2002",
        "3d8b2c74-ae5f-4093-94cb-7f2a9b5eac38",
        "mi-semantic-search",
        "10.30.1",
        ("embed-small",),
        0.22,
        (40, 0.6),
        (0, 0.0),
    ),
    Feature(
        "doc-indexer",
        "search",
        "CC-2002",
        "4e9c3d85-bf60-41a4-a5dc-803bac6fbd49",
        "mi-doc-indexer",
        "10.30.2",
        ("embed-large",),
        0.08,
        (700, 0.4),
        (0, 0.0),
        rhythm="nightly",
        bursts=(2, 9, 16, 23),
    ),
    Feature(
        "rag-answers",
        "search",
        "CC-2002",
        "5fad4e96-c071-42b5-b6ed-914cbd70ce5a",
        "mi-rag-answers",
        "10.30.3",
        ("rag-gpt41",),
        0.12,
        (3500, 0.5),
        (350, 0.6),
        cached_share=0.2,
        streaming=0.6,
    ),
    Feature(
        "marketing-copy",
        "growth",
        "CC-3003",
        "60be5fa7-d182-43c6-87fe-a25dde81df6b",
        "mi-marketing-copy",
        "10.40.1",
        ("chat-gpt4o",),
        0.09,
        (600, 0.5),
        (700, 0.5),
        streaming=0.3,
        bursts=(1, 6, 13),
    ),
    Feature(
        "reasoning-agent",
        "growth",
        "CC-3003",
        "71cf60b8-e293-44d7-98bf-b36eef92e07c",
        "mi-reasoning-agent",
        "10.40.2",
        ("agent-o4-mini",),
        0.04,
        (2500, 0.5),
        (1500, 0.6),
    ),
    Feature(
        "insights-batch",
        "growth",
        "CC-3003",
        "82d071c9-f3a4-45e8-a9c0-c47ff0a3f18d",
        "mi-insights-batch",
        "10.40.3",
        ("batch-gpt4o",),
        0.03,
        (1200, 0.4),
        (400, 0.4),
        rhythm="nightly",
    ),
)

# Callers no attribution rule knows: an API-key script and an unregistered identity.
UNKNOWN_CALLERS = (
    # (object id, ip prefix, deployments, share)
    ("", "172.16.8", ("legacy-gpt4o-mini", "chat-gpt4o-mini"), 0.03),
    ("a4f2e3d1-0b5c-4f6a-8e7d-9c1b2a3f4e5d", "192.168.77", ("chat-gpt4o",), 0.01),
)

API_VERSIONS = ("2024-10-21", "2024-10-21", "2024-10-21", "2025-01-01-preview", "2024-06-01")


def resource(name: str) -> Resource:
    return next(r for r in RESOURCES if r.name == name)


def deployment(name: str) -> Deployment:
    return next(d for d in DEPLOYMENTS if d.name == name)


def feature(name: str) -> Feature:
    return next(f for f in FEATURES if f.name == name)


# ---- the estate: what Resource Graph, diagnostic settings and the models list report ------------------
# Every Azure OpenAI / AI Services account the inventory finds, with the posture it shows: the sweden
# account is reachable from the internet, the batch account does not export AzureOpenAIRequestUsage,
# the Foundry (AIServices) account is not one aoai-lens reads logs from, and gpt-4o-mini 2024-07-18
# retires 45 days after the demo's end.
LOG_WORKSPACE_ARM_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-contoso-monitor"
    "/providers/Microsoft.OperationalInsights/workspaces/law-contoso-ai"
)
ARCHIVE_STORAGE_ARM_ID = (
    f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/rg-contoso-monitor"
    "/providers/Microsoft.Storage/storageAccounts/stcontosoailogs"
)


@dataclass(frozen=True)
class Account:
    name: str
    kind: str  # OpenAI or AIServices
    location: str
    public_network_access: str = "Disabled"
    key_auth: bool = False  # disableLocalAuth false: API keys work
    private_endpoints: int = 1
    # enabled log categories of its diagnostic setting ("allLogs" is the category group)
    diagnostic_logs: tuple[str, ...] = ("allLogs",)
    archive_too: bool = False  # a second setting archives RequestResponse to storage

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.name}"
        )


ACCOUNTS = (
    Account("contoso-oai-eastus", "OpenAI", "eastus", key_auth=True, archive_too=True),
    Account(
        "contoso-oai-swedencentral",
        "OpenAI",
        "swedencentral",
        public_network_access="Enabled",
        key_auth=True,
        private_endpoints=0,
        diagnostic_logs=("Audit", "RequestResponse", "AzureOpenAIRequestUsage"),
    ),
    Account("contoso-oai-batch", "OpenAI", "eastus", diagnostic_logs=("Audit", "RequestResponse")),
    Account("contoso-ai-foundry", "AIServices", "westus3"),
)

# deployments of accounts aoai-lens does not read logs from (the inventory still lists them)
ESTATE_DEPLOYMENTS = (
    Deployment("foundry-gpt41-mini", "contoso-ai-foundry", "gpt-4.1-mini", "2025-04-14", "GlobalStandard", 50),
    Deployment("foundry-embed", "contoso-ai-foundry", "text-embedding-3-small", "1", "GlobalStandard", 30),
)


# days after the demo's end each (model, version) retires (the models list's deprecation.inference)
RETIRES_IN_DAYS = {
    ("gpt-4o", "2024-11-20"): 200,
    ("gpt-4o-mini", "2024-07-18"): 45,
    ("gpt-4.1", "2025-04-14"): 320,
    ("gpt-4.1-mini", "2025-04-14"): 320,
    ("o4-mini", "2025-04-16"): 250,
    ("text-embedding-3-small", "1"): 540,
    ("text-embedding-3-large", "1"): 540,
}


def account_location(name: str) -> str:
    return next(a.location for a in ACCOUNTS if a.name == name)
