"""What every query returns: a frame and an envelope saying how it went."""

from __future__ import annotations

import base64
import gzip
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

import pandas as pd

Status = Literal["ok", "partial", "failed"]


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True)
class QueryResult:
    """A frame plus how it was obtained.

    `status` is ok, partial (rows kept, `notice` says what is missing) or failed (empty frame, `notice`
    says why, `kql` kept so the user can run it in the portal).
    """

    name: str
    frame: pd.DataFrame
    status: Status = "ok"
    notice: str | None = None
    kql: str = ""
    portal_url: str | None = None
    duration_s: float = 0.0
    cached: bool = False
    source: str = ""
    rows_transferred: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def with_frame(self, frame: pd.DataFrame) -> QueryResult:
        return replace(self, frame=frame)


def portal_link(kql: str, scope_resource_id: str, start: datetime | None = None, end: datetime | None = None) -> str:
    """A deep link that opens the query in the Azure portal's Logs blade, scoped to a resource."""
    encoded = base64.b64encode(gzip.compress(kql.encode("utf-8"), mtime=0)).decode("ascii")
    url = (
        "https://portal.azure.com/#blade/Microsoft_Azure_Monitoring_Logs/LogsBlade/resourceId/"
        + quote(scope_resource_id, safe="")
        + "/source/LogsBlade.AnalyticsShareLinkToQuery/q/"
        + quote(encoded, safe="")
    )
    if start and end:
        span = f"{start.strftime('%Y-%m-%dT%H:%M:%S.000Z')}/{end.strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
        url += "/timespan/" + quote(span, safe="")
    return url
