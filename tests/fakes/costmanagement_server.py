"""A local Cost Management Query API: `POST {scope}/providers/Microsoft.CostManagement/query`.

Answers `properties.columns` [{name, type}] and `properties.rows` from a bill frame (Day, ResourceId,
MeterName, Cost; `amortized`: the AmortizedCost one, default the same), `page_size` rows a page with `properties.nextLink` to the rest (`$skiptoken`). Queue
`throttle()` for a 429 with Cost Management's `x-ms-ratelimit-microsoft.costmanagement-*-retry-after`
headers, or `forbid()` for a 403 naming the missing permission.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body

_QUERY = re.compile(r"(?P<scope>/.+)/providers/Microsoft\.CostManagement/query", re.IGNORECASE)


class CostManagementServer(FakeAzureServer):
    def __init__(
        self,
        bill: pd.DataFrame,
        *,
        amortized: pd.DataFrame | None = None,
        page_size: int = 50,
        require_auth: bool = True,
    ) -> None:
        super().__init__(require_auth=require_auth)
        self.bill = bill
        self.amortized = amortized if amortized is not None else bill
        self.page_size = page_size

    def throttle(self, qpu_retry_after: int = 7, *, times: int = 1) -> None:
        headers = {
            "x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after": str(qpu_retry_after),
            "x-ms-ratelimit-microsoft.costmanagement-entity-retry-after": "3",
            "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining": "QueryResource=0",
        }
        self.enqueue(Reply(429, error_body("429", "Too many requests. Please retry."), headers), times=times)

    def forbid(self) -> None:
        self.enqueue(
            Reply(
                403,
                error_body(
                    "AuthorizationFailed",
                    "The client does not have authorization to perform action "
                    "'Microsoft.CostManagement/query/action' over scope.",
                ),
            )
        )

    def unauthorised(self) -> None:
        self.enqueue(Reply(401, error_body("InvalidAuthenticationToken", "The access token is invalid.")))

    def handle(self, request: RecordedRequest) -> Reply:
        queued = self._next_queued()
        if queued is not None:
            return queued if isinstance(queued, Reply) else queued(request)
        m = _QUERY.fullmatch(request.path)
        if request.method != "POST" or m is None:
            return Reply(404, error_body("NotFound", f"No route for {request.method} {request.path}"))
        if "api-version" not in request.query:
            return Reply(400, error_body("MissingApiVersionParameter", "api-version is required"))
        body: Any = request.body or {}
        period = body.get("timePeriod") or {}
        start = pd.Timestamp(period["from"]).floor("D")
        end = pd.Timestamp(period["to"])
        kind = body.get("type")
        if kind not in ("ActualCost", "AmortizedCost", "Usage"):
            return Reply(400, error_body("BadRequest", f"Invalid query type {kind!r}"))
        source = self.amortized if kind == "AmortizedCost" else self.bill
        b = source[(source["Day"] >= start) & (source["Day"] <= end)].reset_index(drop=True)
        skip = int(request.query.get("$skiptoken", "0"))
        page = b.iloc[skip : skip + self.page_size]
        rows = [
            [float(r.Cost), int(r.Day.strftime("%Y%m%d")), r.ResourceId.lower(), r.MeterName, "USD"]
            for r in page.itertuples(index=False)
        ]
        nxt = None
        if skip + self.page_size < len(b):
            nxt = f"{self.url}{request.path}?api-version={request.query['api-version']}&$skiptoken={skip + self.page_size}"
        return Reply(
            200,
            {
                "id": f"{m.group('scope')}/providers/Microsoft.CostManagement/query/fake",
                "name": "fake",
                "type": "Microsoft.CostManagement/query",
                "properties": {
                    "nextLink": nxt,
                    "columns": [
                        {"name": "Cost", "type": "Number"},
                        {"name": "UsageDate", "type": "Number"},
                        {"name": "ResourceId", "type": "String"},
                        {"name": "Meter", "type": "String"},
                        {"name": "Currency", "type": "String"},
                    ],
                    "rows": rows,
                },
            },
        )
