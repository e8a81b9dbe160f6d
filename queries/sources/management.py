"""The management plane (ARM): deployments with SKU and capacity per account, and regional quota usages.

Plain REST through azure-core's `PipelineClient` with a bearer-token policy (scope
`<management endpoint>/.default`), so the same code runs against ARM and a local test server:

    GET {endpoint}{account id}/deployments?api-version=2024-10-01                    (paged by nextLink)
    GET {endpoint}{account id}?api-version=2024-10-01                                 (its location)
    GET {endpoint}/subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{loc}/usages?api-version=2024-10-01

The bodies become frames with the same functions the embedded source uses. The bill (`bill`) comes from
the Cost Management Query API through its SDK (`queries.cost.bill.CostManagementBill`), for `billing.scope`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pandas as pd
from azure.core import PipelineClient
from azure.core.pipeline.policies import BearerTokenCredentialPolicy, HttpLoggingPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest

from queries.cost.bill import BillError, CostManagementBill
from queries.sources.arm_shapes import deployments_frame, usages_frame
from queries.sources.azure_http import BoundedRetryPolicy, https_options, is_loopback

API_VERSION = "2024-10-01"
MAX_PAGES = 50


class ManagementError(RuntimeError):
    """An ARM call that failed; the message says which call and what ARM answered."""


def subscription_of(resource_id: str) -> str:
    """The subscription id of an ARM resource id ("" when it is not one)."""
    parts = resource_id.strip("/").split("/")
    return parts[1] if len(parts) > 1 and parts[0].lower() == "subscriptions" else ""


class ArmManagement:
    """Management source for the configured Azure OpenAI accounts."""

    name = "arm"

    def __init__(
        self,
        *,
        endpoint: str,
        credential: Any,
        resource_ids: list[str],
        subscription_id: str = "",
        default_location: str = "",
        bill_scope: str | None = None,
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self.bill_scope = bill_scope
        self._sleep = sleep
        self._bill: CostManagementBill | None = None
        self.resource_ids = resource_ids
        self.subscription_id = subscription_id
        self.default_location = default_location
        scope = "https://management.azure.com/.default" if is_loopback(self.endpoint) else f"{self.endpoint}/.default"
        policies = [
            UserAgentPolicy(sdk_moniker="aoai-lens"),
            BoundedRetryPolicy(sleep=sleep),
            BearerTokenCredentialPolicy(credential, scope),
            HttpLoggingPolicy(),
        ]
        kwargs: dict[str, Any] = {"policies": policies}
        if transport is not None:
            kwargs["transport"] = transport
        self.client: PipelineClient[HttpRequest, Any] = PipelineClient(self.endpoint, **kwargs)
        self._call_options = https_options(self.endpoint)
        self._locations: dict[str, str] = {}
        self._lock = threading.Lock()

    def _get(self, url: str) -> dict[str, Any]:
        if url.startswith("/"):
            url = self.endpoint + url
        response = self.client.send_request(HttpRequest("GET", url), **self._call_options)
        if response.status_code != 200:
            try:
                err = response.json().get("error", {})
                detail = f"{err.get('code', '')}: {err.get('message', '')}".strip(": ")
            except Exception:
                detail = (response.text() or "")[:300]
            path = url[len(self.endpoint) :] if url.startswith(self.endpoint) else url
            raise ManagementError(f"GET {path.split('?')[0]} answered HTTP {response.status_code}: {detail}")
        body = response.json()
        return body if isinstance(body, dict) else {}

    def _list(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paged ARM list."""
        url: str | None = f"{path}?api-version={API_VERSION}"
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            if not url:
                break
            body = self._get(url)
            items.extend(body.get("value") or [])
            url = body.get("nextLink")
            if url and not url.startswith(self.endpoint + "/"):
                raise ManagementError(f"refusing to follow a nextLink to another host: {url.split('?')[0]}")
        return items

    def list_items(self, path: str) -> list[dict[str, Any]]:
        """Every item of a paged ARM list at `path` (an ARM path, api-version 2024-10-01)."""
        return self._list(path)

    def location(self, resource_id: str) -> str:
        with self._lock:
            if resource_id.lower() not in self._locations:
                try:
                    loc = str(self._get(f"{resource_id}?api-version={API_VERSION}").get("location") or "")
                except ManagementError:
                    loc = ""
                self._locations[resource_id.lower()] = (loc or self.default_location).replace(" ", "").lower()
            return self._locations[resource_id.lower()]

    def deployments(self) -> pd.DataFrame:
        items = [(rid, {"value": self._list(f"{rid}/deployments")}) for rid in self.resource_ids]
        return deployments_frame(items, locations={rid.lower(): self.location(rid) for rid in self.resource_ids})

    def usages(self) -> pd.DataFrame:
        pairs: list[tuple[str, str]] = []
        for rid in self.resource_ids:
            pair = (subscription_of(rid) or self.subscription_id, self.location(rid))
            if pair[1] and pair not in pairs:
                pairs.append(pair)
        items = []
        for sub, loc in pairs:
            path = f"/subscriptions/{quote(sub)}/providers/Microsoft.CognitiveServices/locations/{quote(loc)}/usages"
            items.append((loc, {"value": self._list(path)}))
        return usages_frame(items)

    def bill(self, start: datetime, end: datetime, cost_type: str = "ActualCost") -> pd.DataFrame:
        """The bill of `bill_scope` from the Cost Management Query API (azure-mgmt-costmanagement), for the
        days of [start, end); needs Cost Management Reader on the scope."""
        if not self.bill_scope:
            raise BillError("no Cost Management scope: set billing.scope or source.subscription_id")
        with self._lock:
            if self._bill is None:
                self._bill = CostManagementBill.connect(
                    self.bill_scope, self.endpoint, self.credential, sleep=self._sleep or time.sleep
                )
        return self._bill.daily(start, end, cost_type)
