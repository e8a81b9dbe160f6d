"""Pointing the real Azure code path at the local servers: settings, an ARM that also answers
`GET {account id}`, and a Lens over the Azure sources. Used by the Azure-path tests, the fault tests
and the benchmark's Log Analytics traffic count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from queries.config import Settings, load_settings
from queries.demo import world
from queries.lens import Lens
from queries.sources.azure import azure_sources

from ._server import RecordedRequest, Reply
from .credential import FakeCredential
from .mgmt_server import ManagementServer


class ArmServer(ManagementServer):
    """The fake ARM, also answering `GET {account id}` with the account's location, as ARM does."""

    def handle(self, request: RecordedRequest) -> Reply:
        for res in world.RESOURCES:
            if request.path.lower() == res.arm_id.lower() and not self.pending:
                return Reply(200, {"id": res.arm_id, "name": res.name, "location": res.location, "kind": "OpenAI"})
        return super().handle(request)


def azure_settings(data_dir: Path | str, la: str, ms: str, arm: str, **extra: str) -> Settings:
    """Settings of kind azure for the demo world, with the three endpoints pointed at local servers."""
    ids = ",".join(f'"{r.arm_id}"' for r in world.RESOURCES)
    return load_settings(
        environ={
            "AOAI_LENS_DATA_DIR": str(data_dir),
            "AOAI_LENS_SOURCE__KIND": "azure",
            "AOAI_LENS_SOURCE__WORKSPACE_ID": world.TENANT_ID,
            "AOAI_LENS_SOURCE__SUBSCRIPTION_ID": world.SUBSCRIPTION_ID,
            "AOAI_LENS_SOURCE__METRICS_REGION": "eastus",
            "AOAI_LENS_SOURCE__RESOURCE_IDS": f"[{ids}]",
            "AOAI_LENS_SOURCE__LOGS_ENDPOINT": la,
            "AOAI_LENS_SOURCE__METRICS_ENDPOINT": ms,
            "AOAI_LENS_SOURCE__MANAGEMENT_ENDPOINT": arm,
            **extra,
        }
    )


def azure_lens(
    settings: Settings, *, credential: FakeCredential | None = None, sleep: Callable[[float], None] | None = None
) -> Lens:
    """A Lens over the Azure sources (the real SDK clients) as `Lens.from_settings` would build it."""
    logs, metrics, mgmt = azure_sources(
        settings, credential=credential or FakeCredential(), sleep=sleep or (lambda _s: None)
    )
    return Lens(settings, logs, metrics, mgmt, scope_resource_id=settings.source.resource_ids[0])


def adx_settings(data_dir: Path | str, cluster_url: str, *, database: str = "AOAILogs", **extra: str) -> Settings:
    """Settings of kind adx for the demo world: the logs from a local Kusto endpoint (metrics and the
    management plane at their defaults unless `extra` points them somewhere)."""
    ids = ",".join(f'"{r.arm_id}"' for r in world.RESOURCES)
    return load_settings(
        environ={
            "AOAI_LENS_DATA_DIR": str(data_dir),
            "AOAI_LENS_SOURCE__KIND": "adx",
            "AOAI_LENS_SOURCE__ADX_CLUSTER_URL": cluster_url,
            "AOAI_LENS_SOURCE__ADX_DATABASE": database,
            "AOAI_LENS_SOURCE__SUBSCRIPTION_ID": world.SUBSCRIPTION_ID,
            "AOAI_LENS_SOURCE__METRICS_REGION": "eastus",
            "AOAI_LENS_SOURCE__RESOURCE_IDS": f"[{ids}]",
            **extra,
        }
    )
