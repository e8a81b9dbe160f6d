"""Callers' display names from Microsoft Graph through msgraph-sdk: `POST /v1.0/directoryObjects/getByIds`
for service principals (apps and managed identities) and users, at most 1000 ids a call.

msgraph-sdk is async; `resolve` is called from sync code (a page callback, an alert job), so each call
runs its own event loop on a helper thread (`asyncio.run` there), never on a loop the caller may have.
The SDK's own retry handler is off: 429/503/504 are retried here, honouring `Retry-After` up to a bound
with an injectable sleep (as `azure_http.BoundedRetryPolicy` does for the other sources), so a page is
never held for minutes and tests need no real waiting.

Permission: the identity aoai-lens runs as needs the Graph application permission `Directory.Read.All`
(admin consent); Graph answers 403 `Authorization_RequestDenied` without it, which is reported as such.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlparse

from queries.names import GRAPH_BATCH, NamesError

TYPES = ("servicePrincipal", "user")  # managed identities are service principals
PERMISSION = "Directory.Read.All"
RETRY_STATUSES = frozenset({429, 503, 504})


# Kiota's error-mapping key for "any 4xx or 5xx answer" (the key the generated post() uses too)
ANY_ERROR_STATUS = "XXX"


class GraphNames:
    """A `queries.names.NameResolver` over Microsoft Graph."""

    source = "Microsoft Graph"

    def __init__(
        self,
        endpoint: str,
        credential: Any,
        *,
        types: Sequence[str] = TYPES,
        retries: int = 3,
        max_wait_s: float = 30.0,
        timeout_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.credential = credential
        self.types = list(types)
        self.retries = retries
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.sleep = sleep
        self.waits: list[float] = []  # every wait honoured, for tests and logs
        self.calls = 0  # getByIds calls sent

    def resolve(self, object_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        ids = list(object_ids)
        for i in range(0, len(ids), GRAPH_BATCH):
            out.update(self._batch(ids[i : i + GRAPH_BATCH]))
        return out

    def _batch(self, ids: list[str]) -> dict[str, str]:
        from kiota_abstractions.api_error import APIError

        attempt = 0
        while True:
            try:
                with ThreadPoolExecutor(1, thread_name_prefix="graph-names") as pool:
                    return pool.submit(asyncio.run, self._post(ids)).result()
            except APIError as e:
                status = e.response_status_code or 0
                if status in RETRY_STATUSES and attempt < self.retries:
                    wait = _retry_after(e.response_headers) if status == 429 else None
                    wait = (2.0**attempt) if wait is None else wait
                    if wait <= self.max_wait_s:
                        attempt += 1
                        self.waits.append(wait)
                        self.sleep(wait)
                        continue
                raise NamesError(_explain(status, e)) from None
            except NamesError:
                raise
            except Exception as e:  # unreachable, a token the credential could not get, a bad answer
                raise NamesError(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None

    async def _post(self, ids: list[str]) -> dict[str, str]:
        import httpx
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.generated.directory_objects.get_by_ids.get_by_ids_post_request_body import (
            GetByIdsPostRequestBody,
        )
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError
        from msgraph_core import GraphClientFactory
        from msgraph_core.authentication import AzureIdentityAuthenticationProvider

        host = urlparse(self.endpoint).hostname or ""
        auth = AzureIdentityAuthenticationProvider(
            self.credential, scopes=[f"{self.endpoint}/.default"], allowed_hosts=[host]
        )
        async with httpx.AsyncClient(base_url=f"{self.endpoint}/v1.0", timeout=self.timeout_s) as http:
            client = GraphClientFactory.create_with_default_middleware(
                client=http, options={RetryHandlerOption.get_key(): RetryHandlerOption(should_retry=False)}
            )
            adapter = GraphRequestAdapter(auth, client=client)
            adapter.base_url = f"{self.endpoint}/v1.0"  # httpx's base_url would end in "/", doubling it
            graph = GraphServiceClient(request_adapter=adapter)
            self.calls += 1
            # the SDK builds, authenticates and sends the request, and maps errors (ODataError) as its own
            # post() does; the answer is read as JSON here: the SDK's model deserialiser spends ~20 ms on
            # each directory object (20 s for one batch of 1,000), and only id and displayName are needed
            request = graph.directory_objects.get_by_ids.to_post_request_information(
                GetByIdsPostRequestBody(ids=list(ids), types=list(self.types))
            )
            raw = await adapter.send_primitive_async(request, "bytes", {ANY_ERROR_STATUS: ODataError})
        out: dict[str, str] = {}
        answer = json.loads(raw) if raw else {}
        for obj in answer.get("value") or [] if isinstance(answer, dict) else []:
            oid, name = (obj.get("id"), obj.get("displayName")) if isinstance(obj, dict) else (None, None)
            if oid and name:
                out[str(oid).lower()] = str(name)
        return out


def _retry_after(headers: Any) -> float | None:
    value = None
    for k, v in dict(headers or {}).items():
        if str(k).lower() == "retry-after":
            value = v
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _explain(status: int, e: Any) -> str:
    message = getattr(e, "primary_message", None) or getattr(e, "message", None) or ""
    error = getattr(e, "error", None)
    code = getattr(error, "code", None) or ""
    if status in (401, 403):
        return (
            f"Graph refused directoryObjects/getByIds ({status} {code or 'forbidden'}): the identity aoai-lens "
            f"runs as needs the Microsoft Graph application permission {PERMISSION} (admin consent)"
        )
    if status == 429:
        return "Graph throttled directoryObjects/getByIds (429) past the wait allowed"
    return f"Graph answered {status}{' ' + code if code else ''}{': ' + message if message else ''}"
