"""Where diagnostic settings archive a record in a storage account (no Azure SDK here: the simulator
writes the same layout to local files).

    insights-logs-<category lower-case>/resourceId=/SUBSCRIPTIONS/<sub>/RESOURCEGROUPS/<rg>/PROVIDERS/
        MICROSOFT.COGNITIVESERVICES/ACCOUNTS/<NAME>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

CONTAINERS = ("insights-logs-requestresponse", "insights-logs-azureopenairequestusage")
BLOB_HOUR = re.compile(r"/y=(\d{4})/m=(\d{2})/d=(\d{2})/h=(\d{2})/m=00/PT1H\.json$")


def blob_name(resource_id: str, when: datetime) -> str:
    """The blob a record of `resource_id` at `when` goes to (one per resource and hour)."""
    t = when.astimezone(UTC) if when.tzinfo else when
    return f"resourceId={resource_id.upper()}/y={t:%Y}/m={t:%m}/d={t:%d}/h={t:%H}/m=00/PT1H.json"


def container_for(category: str) -> str:
    return f"insights-logs-{category.lower()}"


def blob_hour(name: str) -> datetime | None:
    m = BLOB_HOUR.search(name)
    if not m:
        return None
    y, mo, d, h = (int(x) for x in m.groups())
    return datetime(y, mo, d, h, tzinfo=UTC)
