"""A local Azure Resource Manager for the two management-plane reads aoai-lens makes.

    GET /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}/deployments
        ?api-version=...  -> {"value": [deployment, ...]}      (from MgmtDeployments.Body)
    GET .../accounts/{account}/deployments/{name}?api-version=...  -> deployment
    GET /subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}/usages
        ?api-version=...  -> {"value": [usage, ...]}           (from MgmtUsages.Body)

and, for the inventory:

    POST /providers/Microsoft.ResourceGraph/resources?api-version=...   (Resource Graph; body {subscriptions,
        query, options{$top, $skip, $skipToken, resultFormat}} -> {totalRecords, count, resultTruncated,
        data, facets, $skipToken when more}); the query's `type =~ '...'` and `kind in~ (...)` filters
        are applied to the stored account rows, anything else in it is ignored
    GET {account id}/providers/Microsoft.Insights/diagnosticSettings?api-version=...  -> {"value": [...]}
    GET /subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{location}/models?api-version=...

Paths match case-insensitively, as ARM does. A missing api-version is a 400 MissingApiVersionParameter;
an unknown account a 404 ResourceNotFound; a location without quota rows answers an empty list.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body

_ACCOUNT = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.CognitiveServices/accounts/(?P<account>[^/]+)"
_DEPLOYMENTS = re.compile(_ACCOUNT + r"/deployments(?:/(?P<name>[^/]+))?", re.IGNORECASE)
_DIAGNOSTICS = re.compile(_ACCOUNT + r"/providers/Microsoft\.Insights/diagnosticSettings", re.IGNORECASE)
_MODELS = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.CognitiveServices/locations/(?P<loc>[^/]+)/models",
    re.IGNORECASE,
)
_GRAPH = "/providers/microsoft.resourcegraph/resources"
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
        self.accounts: list[dict[str, Any]] = []  # Resource Graph rows
        self.diagnostics: dict[str, dict[str, Any]] = {}  # lower-cased account id -> {"value": [...]}
        self.models: dict[str, dict[str, Any]] = {}  # location -> {"value": [...]}
        self.graph_page_size = 1000  # Resource Graph answers at most this many rows per page

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
            tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            if "MgmtAccounts" in tables:
                self.accounts = [
                    json.loads(b) for (b,) in con.execute("SELECT Body FROM MgmtAccounts ORDER BY rowid").fetchall()
                ]
                for rid, body in con.execute(
                    "SELECT ResourceId, Body FROM MgmtEstateDeployments ORDER BY rowid"
                ).fetchall():
                    self.deployments.setdefault(rid.lower(), []).append(json.loads(body))
                self.diagnostics = {
                    rid.lower(): json.loads(body)
                    for rid, body in con.execute("SELECT ResourceId, Body FROM MgmtDiagnosticSettings").fetchall()
                }
                self.models = {
                    loc.lower(): json.loads(body)
                    for loc, body in con.execute("SELECT Location, Body FROM MgmtModels").fetchall()
                }
        finally:
            con.close()

    def _graph(self, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        query = str(body.get("query") or "")
        if not query.strip():
            return Reply(400, error_body("BadRequest", "Please provide a query.", inner_code="InvalidQuery"))
        subs = {str(s).lower() for s in body.get("subscriptions") or []}
        rows = [r for r in self.accounts if not subs or str(r.get("subscriptionId", "")).lower() in subs]
        m = re.search(r"type\s*=~\s*'([^']+)'", query)
        if m:
            rows = [r for r in rows if str(r.get("type", "")).lower() == m.group(1).lower()]
        m = re.search(r"kind\s+in~\s*\(([^)]*)\)", query)
        if m:
            kinds = {k.strip().strip("'\"").lower() for k in m.group(1).split(",")}
            rows = [r for r in rows if str(r.get("kind", "")).lower() in kinds]
        options = body.get("options") or {}
        top = min(int(options.get("$top") or self.graph_page_size), self.graph_page_size)
        start = int(options.get("$skip") or 0)
        if options.get("$skipToken"):
            try:
                start = int(base64.b64decode(str(options["$skipToken"])).decode().removeprefix("offset:"))
            except ValueError:
                return Reply(
                    400, error_body("BadRequest", "The skip token is not valid.", inner_code="InvalidSkipToken")
                )
        page = rows[start : start + top]
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "false",
            "facets": [],
        }
        if (options.get("resultFormat") or "objectArray") == "table":
            columns = sorted({k for r in page for k in r})
            answer["data"] = {
                "columns": [{"name": c, "type": "object"} for c in columns],
                "rows": [[r.get(c) for c in columns] for r in page],
            }
        else:
            answer["data"] = page
        if start + top < len(rows):
            answer["$skipToken"] = base64.b64encode(f"offset:{start + top}".encode()).decode()
        return Reply(200, answer, {"x-ms-user-quota-remaining": "14"})

    def throttle(self, retry_after: float | None = 0, *, times: int = 1) -> None:
        """429 TooManyRequests (ARM's throttling), with `Retry-After` unless retry_after is None."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.enqueue(Reply(429, error_body("TooManyRequests", "The request was throttled."), headers), times=times)

    def handle(self, request: RecordedRequest) -> Reply:
        queued = self._next_queued()
        if queued is not None:
            return queued if isinstance(queued, Reply) else queued(request)
        if request.method == "POST" and request.path.lower() == _GRAPH:
            if not any(k.lower() == "api-version" for k in request.query):
                return Reply(
                    400, error_body("MissingApiVersionParameter", "The api-version query parameter is required.")
                )
            return self._graph(request)
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
        m = _DIAGNOSTICS.fullmatch(request.path)
        if m:
            found_settings = self.diagnostics.get(request.path[: m.end("account")].lower())
            if found_settings is None:
                return Reply(
                    404, _not_found(f"Microsoft.CognitiveServices/accounts/{m.group('account')}", m.group("rg"))
                )
            return Reply(200, found_settings, headers)
        m = _MODELS.fullmatch(request.path)
        if m:
            return Reply(200, self.models.get(m.group("loc").replace(" ", "").lower(), {"value": []}), headers)
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
