"""Azure sources, chosen when `settings.source.kind = "azure"`: Log Analytics, the metrics batch API and
the management plane, sharing one credential. With `kind = "adx"` the logs come from an Azure Data
Explorer / Fabric Eventhouse database instead (`queries.sources.adx`), the rest is the same.

    logs, metrics, mgmt = azure_sources(settings)                  # DefaultAzureCredential
    logs, metrics, mgmt = azure_sources(settings, credential=cred)  # tests, or a chosen identity

What the three share (retry policy, loopback rule, credential) lives in `azure_http`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from queries.config import Settings
from queries.cost.bill import bill_scope
from queries.sources.adx import AdxLogs
from queries.sources.azure_http import default_credential
from queries.sources.estate import AzureEstate
from queries.sources.loganalytics import LogAnalyticsLogs
from queries.sources.management import ArmManagement
from queries.sources.metrics_api import MonitorMetrics


def azure_sources(
    settings: Settings,
    *,
    credential: Any = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Any, Any, Any]:
    """(logs, metrics, management) sources for the configured workspace, resources and subscription."""
    credential = credential if credential is not None else default_credential()
    src = settings.source
    logs: Any
    if src.kind == "adx":
        logs = AdxLogs(
            cluster_url=src.adx_cluster_url or "",
            database=src.adx_database or "",
            credential=credential,
            server_timeout_s=src.server_timeout_s,
            max_concurrent=src.max_concurrent_queries,
            sleep=sleep,
        )
    else:
        logs = LogAnalyticsLogs(
            workspace_id=src.workspaces[0] if src.workspaces else "",
            additional_workspaces=src.workspaces[1:],
            credential=credential,
            endpoint=src.logs_endpoint,
            server_timeout_s=src.server_timeout_s,
            max_concurrent=src.max_concurrent_queries,
            transport=transport,
            sleep=sleep,
        )
    metrics_endpoint = src.metrics_endpoint or f"https://{src.metrics_region}.metrics.monitor.azure.com"
    metrics = MonitorMetrics(
        endpoint=metrics_endpoint,
        credential=credential,
        resource_ids=list(src.resource_ids),
        transport=transport,
        sleep=sleep,
    )
    mgmt = ArmManagement(
        endpoint=src.management_endpoint,
        credential=credential,
        resource_ids=list(src.resource_ids),
        subscription_id=src.subscription_id or "",
        default_location=src.metrics_region or "",
        bill_scope=bill_scope(settings),
        transport=transport,
        sleep=sleep,
    )
    return logs, metrics, mgmt


def azure_estate(
    settings: Settings,
    *,
    credential: Any = None,
    transport: Any = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AzureEstate:
    """The inventory's source: Resource Graph, ARM and Azure Monitor across `inventory_subscriptions`."""
    return AzureEstate(
        endpoint=settings.source.management_endpoint,
        credential=credential if credential is not None else default_credential(),
        subscriptions=settings.inventory_subscriptions,
        transport=transport,
        sleep=sleep,
    )
