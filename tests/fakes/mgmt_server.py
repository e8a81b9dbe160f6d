"""A local Azure Resource Manager for the two management-plane reads aoai-lens makes.

    GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}/deployments
        ?api-version=...  -> {"value": [deployment, ...]}      (from MgmtDeployments.Body)
    GET .../accounts/{account}/deployments/{name}?api-version=...  -> deployment
    GET /subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}/usages
        ?api-version=...  -> {"value": [usage, ...]}           (from MgmtUsages.Body)

Paths match case-insensitively, as ARM does. A missing api-version is a 400 MissingApiVersionParameter;
an unknown account a 404 ResourceNotFound; a location without quota rows answers an empty list.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body

_ACCOUNT = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)"
_DEPLOYMENTS = re.compile(_ACCOUNT + r"/deployments(?:/(?P<name>[^/]+))?", re.IGNORECASE)
_USAGES = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.CognitiveServices/locations/(?P<loc>[^/]+)/usages",
    re.IGNORECASE,
)


class ManagementServer(FakeAzureServer):
    """ARM deployments and usages over a DuckDB workspace file (read once at start).

    `workspace`: path of the DuckDB file. `require_auth`: answer 401 without a bearer token (default True).
    Tests may edit `deployments` (lower-cased account id -> list of bodies) and `usages` (location -> body)
    after `start()` to shape answers.
    """

    def __init__(self, workspace: Path | str, *, require_auth: bool = True, now: datetime | None = None) -> None:
        super().__init__(require_auth=require_auth, now=now)
        self.workspace = Path(workspace)
        self.deployments: dict[str, list[dict[str, Any]]] = {}
        self.usages: dict[str, dict[str, Any]] = {}

    def open(self) -> None:
        con = duckdb.connect(str(self.workspace), read_only=True)
        try:
            self.deployments = {}
            for rid, body in con.execute("SELECT ResourceId, Body FROM MgmtDeployments ORDER BY rowid").fetchall():
                self.deployments.setdefault(rid.lower(), []).append(json.loads(body))
            self.usages = {
                loc.lower(): json.loads(body)
                for loc, body in con.execute("SELECT Location, Body FROM MgmtUsages").fetchall()
            }
        finally:
            con.close()

    def throttle(self, retry_after: float | None = 0, *, times: int = 1) -> None:
        """429 TooManyRequests (ARM's throttling), with `Retry-After` unless retry_after is None."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.enqueue(Reply(429, error_body("TooManyRequests", "The request was throttled."), headers), times=times)

    def handle(self, request: RecordedRequest) -> Reply:
        queued = self._next_queued()
        if queued is not None:
            return queued if isinstance(queued, Reply) else queued(request)
        if request.method != "GET":
            return Reply(405, error_body("MethodNotAllowed", f"{request.method} is not supported by this fake."))
        if not any(k.lower() == "api-version" for k in request.query):
            return Reply(
                400,
                error_body(
                    "MissingApiVersionParameter",
                    "The api-version query parameter (?api-version=) is required for all requests.",
                ),
            )
        headers = {"x-ms-ratelimit-remaining-subscription-reads": "11999"}
        m = _DEPLOYMENTS.fullmatch(request.path)
        if m:
            account_id = request.path[: m.end("account")]
            found = self.deployments.get(account_id.lower())
            if found is None:
                return Reply(
                    404, _not_found(f"Microsoft.CognitiveServices/accounts/{m.group('account')}", m.group("rg"))
                )
            if m.group("name") is None:
                return Reply(200, {"value": found}, headers)
            for body in found:
                if body.get("name", "").lower() == m.group("name").lower():
                    return Reply(200, body, headers)
            return Reply(
                404,
                _not_found(
                    f"Microsoft.CognitiveServices/accounts/{m.group('account')}/deployments/{m.group('name')}",
                    m.group("rg"),
                ),
            )
        m = _USAGES.fullmatch(request.path)
        if m:
            loc = m.group("loc").replace(" ", "").lower()
            return Reply(200, self.usages.get(loc, {"value": []}), headers)
        return Reply(
            404, error_body("InvalidResourceType", f"No route for {request.method} {request.path} in this fake.")
        )


def _not_found(resource: str, group: str) -> dict[str, Any]:
    return error_body(
        "ResourceNotFound",
        f"The Resource '{resource}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )
