"""A local Microsoft Graph: `POST /v1.0/directoryObjects/getByIds`.

Answers `{"@odata.context": ..., "value": [{"@odata.type": "#microsoft.graph.servicePrincipal", "id", "displayName",
...}]}` for the ids it knows, in the request's `types` (ids it does not know are left out, as Graph leaves out
deleted objects). More than 1000 ids is Graph's 400. Queue `throttle()` for a 429 with `Retry-After`,
`forbid()` for the 403 Graph answers an identity without `Directory.Read.All`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._server import FakeAzureServer, RecordedRequest, Reply

MAX_IDS = 1000  # Graph: "You can specify up to 1000 IDs."


@dataclass(frozen=True)
class DirectoryObject:
    id: str
    display_name: str | None
    kind: str = "servicePrincipal"  # servicePrincipal (apps and managed identities) or user


def _graph_error(code: str, message: str) -> dict[str, Any]:
    """Graph's error envelope (`innerError` with a request id and date, camel-cased as Graph spells it)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": "2026-01-01T00:00:00", "request-id": "00000000-0000-0000-0000-000000000000"},
        }
    }


class GraphServer(FakeAzureServer):
    def __init__(self, objects: list[DirectoryObject], *, require_auth: bool = True) -> None:
        super().__init__(require_auth=require_auth)
        self.objects = {o.id.lower(): o for o in objects}

    def throttle(self, retry_after: int = 2, *, times: int = 1) -> None:
        body = _graph_error("TooManyRequests", "Too many requests.")
        self.enqueue(Reply(429, body, {"Retry-After": str(retry_after)}), times=times)

    def forbid(self, *, times: int = 1) -> None:
        body = _graph_error("Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        self.enqueue(Reply(403, body), times=times)

    def handle(self, request: RecordedRequest) -> Reply:
        queued = self._next_queued()
        if queued is not None:
            return queued if isinstance(queued, Reply) else queued(request)
        if request.method != "POST" or request.path != "/v1.0/directoryObjects/getByIds":
            return Reply(404, _graph_error("Request_ResourceNotFound", f"No route for {request.path}"))
        body: Any = request.body if isinstance(request.body, dict) else {}
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            return Reply(400, _graph_error("Request_BadRequest", "Invalid value specified for property 'ids'."))
        if len(ids) > MAX_IDS:
            return Reply(400, _graph_error("Request_BadRequest", f"Too many ids: {len(ids)} (at most {MAX_IDS})."))
        types = {t.lower() for t in body.get("types") or []}
        value = []
        for oid in ids:
            o = self.objects.get(str(oid).lower())
            if o is None or (types and o.kind.lower() not in types):
                continue
            item: dict[str, Any] = {
                "@odata.type": f"#microsoft.graph.{o.kind}",
                "id": o.id,
                "displayName": o.display_name,
            }
            if o.kind == "servicePrincipal":
                item["servicePrincipalType"] = "ManagedIdentity"
                item["appId"] = "00000000-0000-0000-0000-" + o.id[-12:]
            else:
                item["userPrincipalName"] = f"{o.display_name or o.id}@contoso.example"
            value.append(item)
        return Reply(200, {"@odata.context": f"{self.url}/v1.0/$metadata#directoryObjects", "value": value})
