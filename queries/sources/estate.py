"""The estate on Azure, for the inventory (`queries.inventory`): every Azure OpenAI and AI Services
account in the configured subscriptions from Azure Resource Graph, each account's deployments and the
region's models list from ARM, and its diagnostic settings from Azure Monitor.

    POST {endpoint}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01   (ResourceGraphClient.resources,
         paged by $skipToken; rows as objects)
    GET  {endpoint}{account id}/providers/Microsoft.Insights/diagnosticSettings?api-version=2021-05-01-preview
         (MonitorManagementClient.diagnostic_settings.list)
    GET  {endpoint}{account id}/deployments?api-version=2024-10-01                      (`ArmManagement`)
    GET  {endpoint}/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{loc}/models?api-version=2024-10-01

Roles: Reader on each subscription covers all four (Resource Graph only returns what the caller may
read; `Microsoft.Insights/diagnosticSettings/read` is part of Reader and of Monitoring Reader).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from azure.mgmt.monitor import MonitorManagementClient
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from queries.sources.azure_http import BoundedRetryPolicy, https_options, is_loopback
from queries.sources.management import ArmManagement, subscription_of

# Every account of the two kinds; the rest of the shape is read in Python (queries.inventory), so the
# query stays pasteable into Resource Graph Explorer.
ACCOUNTS_QUERY = """resources
| where type =~ 'microsoft.cognitiveservices/accounts'
| where kind in~ ('OpenAI', 'AIServices')
| project id, name, type, kind, location, resourceGroup, subscriptionId, sku, properties
| order by id asc"""
PAGE_SIZE = 1000
MAX_PAGES = 100


class EstateError(RuntimeError):
    """A Resource Graph answer that cannot be used; the message says what it was."""


class AzureEstate:
    """EstateSource over Azure: Resource Graph, ARM and Azure Monitor, with one credential."""

    name = "azure"

    def __init__(
        self,
        *,
        endpoint: str,
        credential: Any,
        subscriptions: list[str],
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.subscriptions = subscriptions
        self.credential = credential
        scope = "https://management.azure.com/.default" if is_loopback(self.endpoint) else f"{self.endpoint}/.default"
        self._kwargs: dict[str, Any] = {
            "base_url": self.endpoint,
            "credential_scopes": [scope],
            "retry_policy": BoundedRetryPolicy(sleep=sleep or time.sleep),
        }
        if transport is not None:
            self._kwargs["transport"] = transport
        self._call = https_options(self.endpoint)
        self.graph = ResourceGraphClient(credential, **self._kwargs)
        self._monitors: dict[str, MonitorManagementClient] = {}
        self.arm = ArmManagement(
            endpoint=self.endpoint, credential=credential, resource_ids=[], transport=transport, sleep=sleep
        )

    def accounts(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            request = QueryRequest(
                subscriptions=list(self.subscriptions),
                query=ACCOUNTS_QUERY,
                options=QueryRequestOptions(result_format="objectArray", top=PAGE_SIZE, skip_token=token),
            )
            answer = self.graph.resources(request, **self._call)
            data = answer.data
            if not isinstance(data, list):
                raise EstateError("Resource Graph answered a table, not rows as objects (resultFormat objectArray)")
            rows.extend(r for r in data if isinstance(r, dict))
            token = answer.skip_token
            if not token:
                return rows
        raise EstateError(f"Resource Graph kept paging past {MAX_PAGES * PAGE_SIZE} accounts")

    def _monitor(self, subscription: str) -> MonitorManagementClient:
        if subscription not in self._monitors:
            self._monitors[subscription] = MonitorManagementClient(self.credential, subscription, **self._kwargs)
        return self._monitors[subscription]

    def diagnostic_settings(self, account_id: str) -> list[dict[str, Any]]:
        monitor = self._monitor(subscription_of(account_id) or (self.subscriptions or [""])[0])
        found = monitor.diagnostic_settings.list(resource_uri=account_id.lstrip("/"), **self._call)
        return [s.serialize(keep_readonly=True) for s in found]

    def deployments(self, account_id: str) -> list[dict[str, Any]]:
        return self.arm.list_items(f"{account_id}/deployments")

    def models(self, subscription: str, location: str) -> list[dict[str, Any]]:
        path = f"/subscriptions/{quote(subscription)}/providers/Microsoft.CognitiveServices/locations/{quote(location)}/models"
        return self.arm.list_items(path)
