"""One typed settings object for the whole program.

Read from `aoai-lens.toml` in the working directory, or the file named by `AOAI_LENS_CONFIG`; with
neither, the bundled demo configuration (demo mode). Environment variables override the file
(`AOAI_LENS_SOURCE__KIND=azure`). Secrets are never read from the file: only from the environment or
from a file named by the matching `*_FILE` variable, so a config file can be committed safely.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from queries.cost.overrides import load_overrides
from queries.errors import ConfigError

ENV_PREFIX = "AOAI_LENS_"
DEMO_CONFIG = Path(__file__).parent / "demo" / "demo.toml"
# Kusto database names: letters, digits, spaces, underscores, hyphens and dots, up to 260 characters
ADX_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,259}")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Dotted paths of the secret settings: refused in the file, read from the environment or *_FILE.
SECRET_PATHS = (
    "probes.api_key",
    "dashboard.basic_password",
    "billing.storage_connection_string",
    "archive.connection_string",
)
# A dashboard password shorter than this is refused (an empty one included): basic auth on a reachable
# address is only as strong as its weakest password, and failed logins are throttled, not forbidden.
MIN_PASSWORD_LENGTH = 12
# Log Analytics queries at most 100 workspaces in one cross-workspace query.
MAX_WORKSPACES = 100


def password_problem(password: str | None) -> str | None:
    """Why a dashboard password must not be used (None: it may); never says the password itself."""
    if password is None:
        return "no password"
    if not password.strip():
        return "the password is empty"
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password is too short ({len(password)} characters; at least {MIN_PASSWORD_LENGTH})"
    return None


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SourceSettings(Section):
    """Where data comes from: the embedded demo workspace, Azure (Log Analytics), or Azure with the logs
    in Azure Data Explorer / Fabric Eventhouse (`adx`: metrics and the management plane still from Azure)."""

    kind: Literal["demo", "azure", "adx"] = "demo"
    workspace_id: str | None = None
    # more Log Analytics workspaces: every catalogue query runs across all of them (workspace_id first)
    workspace_ids: list[str] = Field(default_factory=list)
    resource_ids: list[str] = Field(default_factory=list)
    subscription_id: str | None = None
    metrics_region: str | None = None
    logs_endpoint: str = "https://api.loganalytics.io"
    metrics_endpoint: str | None = None
    management_endpoint: str = "https://management.azure.com"
    server_timeout_s: int = Field(180, ge=1, le=600)
    max_concurrent_queries: int = Field(5, ge=1, le=5)
    # kind = "adx": the cluster's query URI (ADX or a Fabric Eventhouse) and the database holding the tables
    adx_cluster_url: str | None = None
    adx_database: str | None = None

    @field_validator("adx_cluster_url")
    @classmethod
    def _cluster_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parsed = urlparse(v)
        host = parsed.hostname or ""
        if parsed.scheme not in ("https", "http") or not host:
            raise ValueError(f"{v!r} is not a cluster URL like https://mycluster.westeurope.kusto.windows.net")
        if parsed.scheme == "http" and host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"{v!r}: a cluster is reached over https (plain http only for a loopback test endpoint)")
        if parsed.path not in ("", "/") or parsed.query:
            raise ValueError(
                f"{v!r}: give the cluster's query URI alone, without a path (the database is adx_database)"
            )
        return v.rstrip("/")

    @field_validator("adx_database")
    @classmethod
    def _database(cls, v: str | None) -> str | None:
        if v is not None and not ADX_DATABASE.fullmatch(v):
            raise ValueError(f"{v!r} is not a database name (letters, digits, spaces, '_', '-', '.'; at most 260)")
        return v

    @field_validator("workspace_id", "subscription_id")
    @classmethod
    def _guid(cls, v: str | None) -> str | None:
        if v is not None and not GUID.match(v):
            raise ValueError(f"must be a GUID like 00000000-0000-0000-0000-000000000000, got {v!r}")
        return v

    @field_validator("workspace_ids")
    @classmethod
    def _guids(cls, v: list[str]) -> list[str]:
        for w in v:
            if not GUID.match(w):
                raise ValueError(f"workspace ids must be GUIDs like 00000000-0000-0000-0000-000000000000, got {w!r}")
        if len(v) > MAX_WORKSPACES:
            raise ValueError(f"at most {MAX_WORKSPACES} workspaces can be queried together (got {len(v)})")
        return v

    @property
    def workspaces(self) -> list[str]:
        """Every workspace to query, `workspace_id` first, each once (compared case-insensitively)."""
        out: list[str] = []
        for w in [self.workspace_id, *self.workspace_ids]:
            if w and w.lower() not in {x.lower() for x in out}:
                out.append(w)
        return out[:MAX_WORKSPACES]

    @field_validator("resource_ids")
    @classmethod
    def _resource_ids(cls, v: list[str]) -> list[str]:
        for rid in v:
            if not re.match(
                r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.cognitiveservices/accounts/[^/]+$",
                rid,
            ):
                raise ValueError(f"{rid!r} is not a Microsoft.CognitiveServices/accounts resource id")
        return v

    @model_validator(mode="after")
    def _azure_needs(self) -> SourceSettings:
        if self.kind in ("azure", "adx"):
            missing = [n for n in ("subscription_id", "metrics_region") if not getattr(self, n)]
            if self.kind == "azure" and not self.workspaces:
                missing.insert(0, "workspace_id (or workspace_ids)")
            if self.kind == "adx":
                missing[:0] = [n for n in ("adx_cluster_url", "adx_database") if not getattr(self, n)]
            if not self.resource_ids:
                missing.append("resource_ids")
            if missing:
                raise ValueError(f"kind = {self.kind!r} needs {', '.join(missing)}")
        return self


class DemoSettings(Section):
    """The embedded workspace built by `aoai-lens demo seed`."""

    path: Path | None = None  # default: <data_dir>/demo.duckdb
    days: int = Field(30, ge=1, le=400)
    requests_per_day: int = Field(10_000, ge=10, le=5_000_000)
    seed: int = 42
    backfill: bool = True  # serve and demo seed backfill the seeded month's probe and alert history


class CacheSettings(Section):
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    default_ttl_s: int = Field(300, ge=0)

    @model_validator(mode="after")
    def _redis(self) -> CacheSettings:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend = 'redis' needs redis_url")
        return self


class ProbeTarget(Section):
    deployment: str = Field(min_length=1, max_length=64)
    kind: Literal["chat", "embedding"] = "chat"
    interval_s: int = Field(300, ge=10)
    stream: bool = True


class ABTarget(Section):
    """One side of an A/B probe: an Azure OpenAI deployment (`api = "azure"`: `endpoint`, `deployment`,
    `api_version`) or any OpenAI-compatible API through the same SDK (`api = "openai"`: `base_url`,
    `model`). The key comes from the environment variable `key_env` or the file its `_FILE` variant
    names, never from the configuration. No endpoint and no base_url in demo mode: a local simulator,
    slowed by `demo_latency_scale`."""

    label: str = Field("", max_length=40)  # default: "A" / "B"
    api: Literal["azure", "openai"] = "azure"
    endpoint: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    base_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    deployment: str | None = Field(None, min_length=1, max_length=64)
    model: str | None = Field(None, min_length=1, max_length=64)
    api_version: str = "2024-10-21"
    key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    demo_latency_scale: float = Field(1.0, gt=0, le=100)

    @model_validator(mode="after")
    def _shape(self) -> ABTarget:
        if self.api == "azure" and not self.deployment:
            raise ValueError("api = 'azure' needs deployment")
        if self.api == "openai" and not (self.model or self.deployment):
            raise ValueError("api = 'openai' needs model")
        if self.api == "azure" and self.base_url:
            raise ValueError("api = 'azure' takes endpoint, not base_url")
        if self.api == "openai" and self.endpoint:
            raise ValueError("api = 'openai' takes base_url, not endpoint")
        if (self.endpoint or self.base_url) and not self.key_env:
            raise ValueError("a remote target needs key_env (the environment variable holding its key, or <NAME>_FILE)")
        return self

    @property
    def name(self) -> str:
        """What the target calls: the deployment (Azure) or the model (OpenAI API)."""
        return str(self.deployment if self.api == "azure" else (self.model or self.deployment))

    @property
    def remote(self) -> str | None:
        return self.endpoint if self.api == "azure" else self.base_url


class ABProbe(Section):
    """One probe definition run against two targets every `interval_s`, compared side by side."""

    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["chat", "embedding"] = "chat"
    stream: bool = True
    interval_s: int = Field(300, ge=10)
    a: ABTarget
    b: ABTarget

    @model_validator(mode="after")
    def _labels(self) -> ABProbe:
        if not self.a.label:
            self.a.label = "A"
        if not self.b.label:
            self.b.label = "B"
        if self.a.label == self.b.label:
            raise ValueError(f"the two targets of A/B probe {self.name!r} need different labels")
        return self


class ProbeSLO(Section):
    """Objectives on the probes of one deployment (or every probed deployment: `deployment = "*"`):
    success, latency under `latency_ms`, time to first token under `ttft_ms`, each judged over
    `window_days` with an error budget and multi-window burn rates."""

    deployment: str = Field("*", min_length=1, max_length=64)
    success_pct: float = Field(99.0, gt=0, lt=100)  # percent of probes that succeed
    latency_ms: float | None = Field(None, gt=0)
    latency_pct: float = Field(95.0, gt=0, lt=100)  # percent of successful probes under latency_ms
    ttft_ms: float | None = Field(None, gt=0)
    ttft_pct: float = Field(95.0, gt=0, lt=100)  # percent of streamed probes with a first token under ttft_ms
    window_days: int = Field(30, ge=1, le=90)


class ProbeSettings(Section):
    """Synthetic calls through the openai SDK. No endpoint in demo mode: the local simulator."""

    endpoint: str | None = None
    auth: Literal["key", "entra"] = "key"
    api_version: str = "2024-10-21"
    use_v1: bool = False
    timeout_s: float = Field(30.0, gt=0, le=600)
    api_key: SecretStr | None = None
    targets: list[ProbeTarget] = Field(default_factory=list)
    ab: list[ABProbe] = Field(default_factory=list)  # the same probe against two targets, side by side
    slos: list[ProbeSLO] = Field(default_factory=list)
    # the Entra object id the probes call with: their traffic is kept out of chargeback (demo: the simulated one)
    object_id: str | None = Field(None, pattern=GUID.pattern)

    @model_validator(mode="after")
    def _unique(self) -> ProbeSettings:
        names = [p.name for p in self.ab]
        if len(names) != len(set(names)):
            raise ValueError("two A/B probes share a name; names must be unique")
        deps = [s.deployment for s in self.slos]
        if len(deps) != len(set(deps)):
            raise ValueError("two SLOs name the same deployment; one SLO per deployment (and one for '*')")
        return self

    def slo_for(self, deployment: str) -> ProbeSLO | None:
        """The deployment's SLO, else the default one (`deployment = "*"`), else none."""
        by = {s.deployment: s for s in self.slos}
        return by.get(deployment) or by.get("*")


class AttributionRule(Section):
    """Maps a caller to a feature, team and cost center. Rules are tried in order; first match wins."""

    feature: str = Field(min_length=1)
    team: str = Field(min_length=1)
    cost_center: str = ""
    object_id: str | None = None
    display_name: str | None = None
    ip_range: str | None = None
    deployment_pattern: str | None = None

    @field_validator("object_id")
    @classmethod
    def _oid(cls, v: str | None) -> str | None:
        if v is not None and not GUID.match(v):
            raise ValueError(f"object_id must be an Entra object id (a GUID), got {v!r}")
        return v.lower() if v else v

    @field_validator("ip_range")
    @classmethod
    def _cidr(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError as e:
                raise ValueError(f"ip_range must be a CIDR range like 10.0.0.0/24: {e}") from None
        return v

    @model_validator(mode="after")
    def _one_matcher(self) -> AttributionRule:
        if not (self.object_id or self.ip_range or self.deployment_pattern):
            raise ValueError("a rule needs at least one of object_id, ip_range, deployment_pattern")
        return self


class Budget(Section):
    scope: Literal["team", "feature"]
    name: str = Field(min_length=1)
    monthly_usd: float = Field(gt=0)


class PriceSettings(Section):
    overrides_file: Path | None = None  # CSV of custom prices (format: queries/cost/prices.py load_overrides)
    discount_pct: float = Field(0.0, ge=0, lt=100)
    currency: str = "USD"

    @model_validator(mode="after")
    def _overrides(self) -> PriceSettings:
        if self.overrides_file is not None:
            try:
                load_overrides(self.overrides_file)
            except ConfigError as e:
                raise ValueError("; ".join(e.problems)) from None
        return self


class AlertRule(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Literal[
        "rate_429",
        "rate_5xx",
        "quota_headroom",
        "quota_forecast",
        "latency_p95",
        "probe_failures",
        "probe_ttft",
        "budget_pace",
        "burn_rate",
        "spend_anomaly",
        "caller_spend",
        "no_data",
        "model_retirement",
        "billing_drift",
        "cache_hit_rate",
        "slo_burn",
    ]
    threshold: float
    window_minutes: int = Field(15, ge=1, le=60 * 24 * 31)
    min_count: int = Field(1, ge=1)  # requests (or probes) a window needs before the rule judges it
    deployment: str | None = None
    team: str | None = None
    feature: str | None = None
    channels: list[str] = Field(default_factory=list)
    min_usd: float | None = Field(None, ge=0)  # billing_drift: dollars a difference must exceed too

    @model_validator(mode="after")
    def _billing_drift(self) -> AlertRule:
        if self.kind == "billing_drift" and (self.team or self.feature or self.deployment):
            raise ValueError("a billing_drift rule judges the whole bill: no team, feature or deployment")
        if self.min_usd is not None and self.kind != "billing_drift":
            raise ValueError("min_usd applies to billing_drift rules only")
        return self

    @model_validator(mode="before")
    @classmethod
    def _retirement_default(cls, data: object) -> object:
        """A model_retirement rule's threshold is days before retirement; 90 when not given."""
        if isinstance(data, dict) and data.get("kind") == "model_retirement" and "threshold" not in data:
            return {**data, "threshold": 90}
        return data

    min_prompt_tokens: int = Field(100_000, ge=0)  # cache_hit_rate: prompt tokens a deployment needs to be judged

    @model_validator(mode="after")
    def _cache_rate_is_a_percent(self) -> AlertRule:
        if self.kind == "cache_hit_rate" and not 0 <= self.threshold <= 100:
            raise ValueError(f"a cache_hit_rate threshold is a percent (0 to 100), not {self.threshold:g}")
        return self


class AlertChannel(Section):
    """An apprise URL, read from an environment variable or a file so tokens stay out of the config."""

    name: str = Field(min_length=1)
    url_env: str | None = None
    url_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AlertChannel:
        if bool(self.url_env) == bool(self.url_file):
            raise ValueError("a channel needs exactly one of url_env, url_file")
        return self


class AlertSettings(Section):
    evaluate_interval_s: int = Field(60, ge=10)
    # budget_pace judges a forecast only once its run rate rests on this many complete days of spend
    budget_min_history_days: int = Field(3, ge=0, le=7)
    rules: list[AlertRule] = Field(default_factory=list)
    channels: list[AlertChannel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_channels(self) -> AlertSettings:
        seen: set[str] = set()
        for r in self.rules:
            if r.name in seen:  # alert state is kept per (rule, subject): two rules of one name would share it
                raise ValueError(f"two alert rules are named {r.name!r}; rule names must be unique")
            seen.add(r.name)
        names = {c.name for c in self.channels}
        for r in self.rules:
            for c in r.channels:
                if c not in names:
                    raise ValueError(f"rule {r.name!r} routes to unknown channel {c!r}")
        return self


class BasicUser(Section):
    """A basic-auth user with its teams (none: sees everything); the password comes from the environment
    variable `password_env` or the file `password_file`, never from the configuration (read when used,
    so it can be rotated without a restart; `user_password_problems` checks it)."""

    name: str = Field(min_length=1, pattern=r"^[^:\s]+$")
    teams: list[str] = Field(default_factory=list)
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> BasicUser:
        if bool(self.password_env) == bool(self.password_file):
            raise ValueError("a user needs exactly one of password_env, password_file")
        return self

    def password(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The user's password, from `password_env` or `password_file` (None when neither gives one)."""
        if self.password_env:
            return (os.environ if environ is None else environ).get(self.password_env)
        try:
            return Path(str(self.password_file)).read_text().strip()
        except OSError:
            return None

    def password_source(self) -> str:
        return f"env {self.password_env}" if self.password_env else f"file {self.password_file}"


class DashboardSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)
    auth: Literal["none", "basic", "appservice"] = "none"
    basic_user: str | None = None  # one user who sees every team (password: dashboard.basic_password)
    basic_password: SecretStr | None = None
    users: list[BasicUser] = Field(default_factory=list)  # more basic-auth users, each with its teams
    # appservice: Entra group object id -> the teams its members see; admin_groups see every team
    group_teams: dict[str, list[str]] = Field(default_factory=dict)
    admin_groups: list[str] = Field(default_factory=list)

    @field_validator("admin_groups")
    @classmethod
    def _admin_guids(cls, v: list[str]) -> list[str]:
        for g in v:
            if not GUID.match(g):
                raise ValueError(f"admin group must be an Entra group object id (a GUID), got {g!r}")
        return [g.lower() for g in v]

    @field_validator("group_teams")
    @classmethod
    def _group_guids(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for g in v:
            if not GUID.match(g):
                raise ValueError(f"group_teams keys must be Entra group object ids (GUIDs), got {g!r}")
        return {g.lower(): teams for g, teams in v.items()}

    @field_validator("basic_password")
    @classmethod
    def _strong_enough(cls, v: SecretStr | None) -> SecretStr | None:
        problem = password_problem(v.get_secret_value()) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _mode_needs(self) -> DashboardSettings:
        if self.auth == "basic" and not self.users and not (self.basic_user and self.basic_password):
            raise ValueError(
                "auth = 'basic' needs basic_user with AOAI_LENS_DASHBOARD__BASIC_PASSWORD(_FILE), or [[dashboard.users]]"
            )
        if self.auth == "appservice" and not (self.group_teams or self.admin_groups):
            raise ValueError("auth = 'appservice' needs group_teams and/or admin_groups")
        return self


class LedgerSettings(Section):
    """The hourly cost ledger (`queries.cost.ledger_store`): closed hours kept as day-partitioned Parquet."""

    path: Path | None = None  # default: <data_dir>/ledger; may be a share every process mounts
    # An hour closes once it is older than this; None: the workspace's measured p99 ingestion lag plus
    # `margin_minutes`, at least `min_window_minutes`.
    late_window_minutes: int | None = Field(None, ge=1, le=60 * 24 * 7)
    margin_minutes: int = Field(30, ge=0, le=24 * 60)
    min_window_minutes: int = Field(120, ge=60, le=24 * 60 * 7)
    build_interval_s: int = Field(600, ge=60)  # the scheduler's ledger job
    backfill_days: int = Field(35, ge=1, le=400)  # how far back the scheduler's first build reaches


class PtuReservation(Section):
    """A reservation (monthly or yearly) that covers a provisioned deployment's PTUs. The ledger prices the
    covered PTU-hours at the amortised reservation price (the rest at the hourly list price) and says so
    on the row; the FOCUS export names the commitment discount on those rows."""

    deployment: str = Field(min_length=1)
    reservation_id: str = Field(min_length=1)  # the reservation order id, as Cost Management names it
    name: str = ""
    term: Literal["monthly", "yearly", "P1M", "P1Y"] = "monthly"
    resource: str | None = None  # the account, when the deployment name is not unique
    quantity: int | None = Field(None, ge=1)  # PTUs covered; default: the deployment's whole capacity
    hourly_price: float | None = Field(None, ge=0)  # amortised USD per PTU-hour
    term_price: float | None = Field(None, ge=0)  # USD per PTU for the whole term (amortised over its hours)

    @model_validator(mode="after")
    def _one_price(self) -> PtuReservation:
        if self.hourly_price is not None and self.term_price is not None:
            raise ValueError("give hourly_price or term_price, not both")
        return self

    @property
    def term_hours(self) -> float:
        """Hours a term is amortised over: 730 for a month (Azure's 8,760 hours a year / 12), 8,760 a year."""
        return 730.0 if self.term in ("monthly", "P1M") else 8760.0

    @property
    def amortised_per_hour(self) -> float | None:
        """USD per PTU-hour: `hourly_price`, or `term_price` / the term's hours; None when neither is given."""
        if self.hourly_price is not None:
            return self.hourly_price
        if self.term_price is not None:
            return self.term_price / self.term_hours
        return None


class BillingSettings(Section):
    """The bill: the FOCUS export, its upload, and reconciliation with Cost Management."""

    account_id: str | None = None  # FOCUS BillingAccountId; default: the subscription
    account_name: str | None = None
    subscription_names: dict[str, str] = Field(default_factory=dict)  # subscription id -> display name
    scope: str | None = None  # Cost Management scope; default /subscriptions/<source.subscription_id>
    hub_scope: str = "aoai-lens"  # the folder under the hub's ingestion container
    storage_connection_string: SecretStr | None = None  # env or *_FILE only; else DefaultAzureCredential
    lag_days: int = Field(3, ge=0, le=10)  # days the bill may lag: their differences are pending
    drift_pct: float = Field(5.0, gt=0)  # above this difference a day x resource x meter is drift
    drift_min_usd: float = Field(0.01, ge=0)  # and at least this much money (a bill line is rounded to the cent)
    reservations: list[PtuReservation] = Field(default_factory=list)


class ArchiveSettings(Section):
    """Diagnostic-settings archives in a storage account, imported into the embedded workspace
    (`aoai-lens import archive`, and the scheduler's archive job when an account is configured)."""

    account_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # a secret: only from AOAI_LENS_ARCHIVE__CONNECTION_STRING or ..._FILE (otherwise DefaultAzureCredential)
    connection_string: SecretStr | None = None
    containers: list[str] = Field(
        default_factory=lambda: ["insights-logs-requestresponse", "insights-logs-azureopenairequestusage"]
    )
    since_days: int = Field(7, ge=1, le=400)  # how far back the first import reaches
    interval_s: int = Field(300, ge=60)  # the scheduler's archive job

    @property
    def configured(self) -> bool:
        return bool(self.account_url or self.connection_string)


class InventorySettings(Section):
    """The estate inventory (`aoai-lens inventory`, the Inventory page): every Azure OpenAI and AI Services
    account in these subscriptions, read through Azure Resource Graph."""

    # empty: source.subscription_id and the subscriptions of source.resource_ids
    subscriptions: list[str] = Field(default_factory=list)
    # ARM ids of the Log Analytics workspaces and storage accounts a diagnostic setting must send to;
    # empty: any workspace or storage account counts
    destinations: list[str] = Field(default_factory=list)
    retirement_days: int = Field(90, ge=1, le=3650)  # flag a model version retiring within this many days
    ttl_s: int = Field(1800, ge=0)  # how long one reading of the estate is reused

    @field_validator("subscriptions")
    @classmethod
    def _guids(cls, v: list[str]) -> list[str]:
        for sub in v:
            if not GUID.match(sub):
                raise ValueError(f"subscriptions must be GUIDs like 00000000-0000-0000-0000-000000000000, got {sub!r}")
        return v

    @field_validator("destinations")
    @classmethod
    def _destinations(cls, v: list[str]) -> list[str]:
        pattern = (
            r"(?i)^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/"
            r"(microsoft\.operationalinsights/workspaces|microsoft\.storage/storageaccounts)/[^/]+$"
        )
        for d in v:
            if not re.match(pattern, d):
                raise ValueError(f"{d!r} is not the resource id of a Log Analytics workspace or a storage account")
        return v


class NamesSettings(Section):
    """Callers' display names from Microsoft Graph (`directoryObjects/getByIds`), cached: a page shows a
    managed identity's or user's name, not its object id. The demo answers from its own directory."""

    enabled: bool = True
    graph_endpoint: str = Field("https://graph.microsoft.com", pattern=r"^https?://[^\s/]+(:[0-9]+)?/?$")
    ttl_minutes: int = Field(360, ge=1, le=60 * 24 * 7)  # how long a name (or "Graph knows no such id") is kept
    error_ttl_minutes: int = Field(5, ge=1, le=24 * 60)  # after a failed lookup, ids fall back this long

    @field_validator("graph_endpoint")
    @classmethod
    def _https_unless_loopback(cls, v: str) -> str:
        host = v.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
        if v.startswith("http://") and host not in ("127.0.0.1", "localhost", "[::1]"):
            raise ValueError("must be https (plain http only for a local test server)")
        return v.rstrip("/")


class SchedulerSettings(Section):
    enabled: bool = True  # run the scheduler inside `serve`
    jobstore_url: str | None = None  # default: sqlite:///<data_dir>/scheduler.sqlite
    misfire_grace_s: int = Field(60, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Path(".aoai-lens")
    source: SourceSettings = Field(default_factory=SourceSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    attribution: list[AttributionRule] = Field(default_factory=list)
    budgets: list[Budget] = Field(default_factory=list)
    prices: PriceSettings = Field(default_factory=PriceSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    inventory: InventorySettings = Field(default_factory=InventorySettings)
    names: NamesSettings = Field(default_factory=NamesSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment overrides them.
        return (env_settings, init_settings)

    @property
    def demo_path(self) -> Path:
        return self.demo.path or self.data_dir / "demo.duckdb"

    @property
    def state_path(self) -> Path:
        """SQLite file for probe results, alert state and deliveries."""
        return self.data_dir / "state.sqlite"

    @property
    def ledger_path(self) -> Path:
        return self.ledger.path or self.data_dir / "ledger"

    @property
    def archive_checkpoint_path(self) -> Path:
        """How far each archive blob has been imported (ETag and bytes)."""
        return self.data_dir / "archive-checkpoint.json"

    @property
    def jobstore_url(self) -> str:
        return self.scheduler.jobstore_url or f"sqlite:///{self.data_dir / 'scheduler.sqlite'}"

    @property
    def inventory_subscriptions(self) -> list[str]:
        """The subscriptions the inventory reads: `inventory.subscriptions`, or else the source's."""
        if self.inventory.subscriptions:
            return list(self.inventory.subscriptions)
        candidates = [self.source.subscription_id or ""] + [
            r.strip("/").split("/")[1] for r in self.source.resource_ids
        ]
        out: list[str] = []
        for sub in candidates:
            if sub and sub.lower() not in {x.lower() for x in out}:
                out.append(sub)
        return out

    @property
    def is_demo(self) -> bool:
        return self.source.kind == "demo"

    @property
    def probe_object_id(self) -> str | None:
        """The Entra object id the probes call with, kept out of chargeback (`probes.object_id`; the
        bundled demo configuration names the simulated probe identity)."""
        return self.probes.object_id.lower() if self.probes.object_id else None


def config_path(environ: dict[str, str] | None = None) -> tuple[Path, bool]:
    """The file to read and whether it is the user's own (False: the bundled demo config)."""
    env = os.environ if environ is None else environ
    named = env.get(f"{ENV_PREFIX}CONFIG")
    if named:
        return Path(named), True
    local = Path("aoai-lens.toml")
    if local.exists():
        return local, True
    return DEMO_CONFIG, False


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of a setting (a validation error's location) in TOML text."""
    parts = list(loc)
    idx_pos = max((i for i, p in enumerate(parts) if isinstance(p, int)), default=None)
    if idx_pos is not None:
        table, index = ".".join(str(p) for p in parts[:idx_pos]), int(parts[idx_pos])
        rest = [p for p in parts[idx_pos + 1 :] if isinstance(p, str)]
        key = rest[0] if rest else None
    else:
        table, index, key = ".".join(str(p) for p in parts[:-1]), None, str(parts[-1]) if parts else None
    current, header_line = "", None
    seen: dict[str, int] = {}
    in_target = table == ""
    for no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        m = re.match(r"^(\[\[?)\s*([^\]]+?)\s*\]\]?", line)
        if m:
            current = m.group(2)
            count = seen.get(current, -1) + 1 if m.group(1) == "[[" else 0
            seen[current] = count
            in_target = current == table and (index is None or count == index)
            if in_target:
                header_line = no
            if index is None and key is not None and current == f"{table}.{key}".strip("."):
                return no
            continue
        if in_target and key is not None and re.match(rf"^{re.escape(key)}\s*=", line):
            return no
    return header_line


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _read_secret(name: str, env: dict[str, str], problems: list[str]) -> str | None:
    var = f"{ENV_PREFIX}{name.upper().replace('.', '__')}"
    if var in env:
        return env[var]
    file_var = f"{var}_FILE"
    if file_var in env:
        p = Path(env[file_var])
        try:
            return p.read_text().strip()
        except OSError as e:
            problems.append(f"env {file_var}: cannot read the secret file {str(p)!r}: {e.strerror}")
    return None


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, validate and return the settings; raise ConfigError listing every problem."""
    env = dict(os.environ if environ is None else environ)
    own = True
    if path is None:
        path, own = config_path(env)
    problems: list[str] = []
    shown = str(path) if own else "(demo defaults)"
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the configuration file: {e.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None

    for secret in SECRET_PATHS:
        section, key = secret.split(".")
        if isinstance(data.get(section), dict) and key in data[section]:
            line = _line_of(text, tuple(secret.split(".")))
            where = f"{shown}:{line}" if line else shown
            var = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
            problems.append(f"{where} {secret}: secrets are not read from the file; set {var} or {var}_FILE")
            del data[section][key]

    # The environment is read by pydantic-settings itself; secrets' *_FILE variants are resolved here.
    secret_values: dict[str, str] = {}
    for secret in SECRET_PATHS:
        value = _read_secret(secret, env, problems)
        if value is not None:
            secret_values[secret] = value
    for secret, value in secret_values.items():
        section, key = secret.split(".")
        data.setdefault(section, {})[key] = value

    # pydantic-settings reads os.environ itself: give it exactly the variables meant for it (the given
    # environment, without the secrets' *_FILE variables, which were resolved above).
    file_vars = {f"{ENV_PREFIX}{p.upper().replace('.', '__')}_FILE" for p in SECRET_PATHS} | {f"{ENV_PREFIX}CONFIG"}
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    settings: Settings | None = None
    try:
        for k in saved:
            os.environ.pop(k)
        for k, v in env.items():
            if k.startswith(ENV_PREFIX) and k not in file_vars:
                os.environ[k] = v
        settings = Settings(**data)
    except ValidationError as e:
        for err in e.errors():
            dotted = _dotted(err["loc"])
            plain = re.sub(r"\[\d+\]", "", dotted)
            var = ENV_PREFIX + plain.upper().replace(".", "__")
            from_env = sorted(k for k in env if k == var or k.startswith(var + "__"))
            if from_env:
                where = "env " + ", ".join(from_env)
            else:
                line = _line_of(text, tuple(err["loc"]))
                where = f"{shown}:{line}" if line else shown
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
            if err["type"] not in ("extra_forbidden", "missing") and "input" in err and dotted not in SECRET_PATHS:
                value = err["input"]
                if isinstance(value, str | int | float | bool):
                    msg = f"{msg} (got {value!r})"
            problems.append(f"{where} {dotted or '(top level)'}: {msg}")
    finally:
        for k in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            os.environ.pop(k)
        os.environ.update(saved)
    if problems or settings is None:
        raise ConfigError(problems or [f"{shown}: could not be read"])
    return settings


def user_password_problems(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """One `location: problem` line per `[[dashboard.users]]` whose password is missing, empty or too
    short (checked by `check-config` and by `serve` before it starts); no password is ever printed."""
    if settings.dashboard.auth != "basic":
        return []
    out = []
    for i, u in enumerate(settings.dashboard.users):
        problem = password_problem(u.password(environ))
        if problem:
            out.append(f"dashboard.users[{i}] ({u.name}): {problem} in {u.password_source()}")
    return out


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
