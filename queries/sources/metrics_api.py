"""Azure Monitor platform metrics through `azure-monitor-querymetrics`' `MetricsClient` (the regional
metrics batch API: one call answers up to 50 resources of one subscription).

Splits and filters become the API's `filter` (`ModelDeploymentName eq '*'` splits by deployment,
`StatusCode eq '429' or StatusCode eq '500'` filters). The service answers dimension names lower-cased
(`modeldeploymentname`); they are matched case-insensitively and returned under the names the caller
asked for. Results carry no resource id, so each is mapped back through `Metric.id`, which starts with
the resource id, to the spelling in the settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from azure.monitor.querymetrics import MetricsClient

from queries.render import RenderError, check_name
from queries.sources.azure_http import BoundedRetryPolicy, https_options

NAMESPACE = "Microsoft.CognitiveServices/accounts"
RESOURCES_PER_CALL = 50
MAX_SERIES = 1000  # `top`: without it the API returns only 10 series when a filter splits
# Time grains the metrics API accepts; a requested interval is rounded up to one of them.
GRAINS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)
AGGREGATIONS = {"total": "total", "average": "average", "minimum": "minimum", "maximum": "maximum", "count": "count"}
_DIMENSION_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def grain(interval: timedelta) -> timedelta:
    return next((g for g in GRAINS if g >= interval), GRAINS[-1])


def _quote(value: str) -> str:
    # the API's escape for brackets in filter values; names were already checked (no quotes possible)
    return value.replace("(", "%2528").replace(")", "%2529")


def metrics_filter(split_by: list[str], filters: dict[str, list[str]]) -> str | None:
    """`A eq 'a1' or A eq 'a2' and B eq '*'`: filters first, then a `'*'` per split dimension."""
    parts = []
    for dim, values in filters.items():
        if not values:
            continue
        parts.append(" or ".join(f"{dim} eq '{_quote(v)}'" for v in values))
    for dim in split_by:
        if dim.lower() not in {d.lower() for d in filters if filters[d]}:
            parts.append(f"{dim} eq '*'")
    return " and ".join(parts) or None


class MonitorMetrics:
    """Metrics source over the configured Azure OpenAI resources."""

    name = "azure-metrics"

    def __init__(
        self,
        *,
        endpoint: str,
        credential: Any,
        resource_ids: list[str],
        transport: Any = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.resource_ids = resource_ids
        self.retry_policy = BoundedRetryPolicy(sleep=sleep)
        kwargs: dict[str, Any] = {"retry_policy": self.retry_policy}
        if transport is not None:
            kwargs["transport"] = transport
        self.client = MetricsClient(endpoint, credential, **kwargs)
        self._call_options = https_options(endpoint)

    def query(
        self,
        metric_names: list[str],
        *,
        start: datetime,
        end: datetime,
        interval: timedelta,
        aggregation: str = "Total",
        split_by: list[str] | None = None,
        filters: dict[str, list[str]] | None = None,
    ) -> pd.DataFrame:
        split_by = list(split_by or [])
        filters = dict(filters or {})
        agg = AGGREGATIONS.get(aggregation.lower())
        if agg is None:
            raise RenderError(f"unknown aggregation {aggregation!r}; one of {', '.join(AGGREGATIONS)}")
        for dim in [*split_by, *filters]:
            if not _DIMENSION_RE.match(dim):
                raise RenderError(f"{dim!r} is not a metric dimension name")
        for m in metric_names:
            if not _DIMENSION_RE.match(m):
                raise RenderError(f"{m!r} is not a metric name")
        for dim, values in filters.items():
            for v in values:
                check_name(f"filter {dim}", v)
        flt = metrics_filter(split_by, filters)
        columns = ["TimeStamp", "ResourceId", "MetricName", *split_by, "Value"]
        rows: list[dict[str, Any]] = []
        for i in range(0, len(self.resource_ids), RESOURCES_PER_CALL):
            chunk = self.resource_ids[i : i + RESOURCES_PER_CALL]
            results = self.client.query_resources(
                resource_ids=chunk,
                metric_namespace=NAMESPACE,
                metric_names=list(metric_names),
                timespan=(start, end),
                granularity=grain(interval),
                aggregations=[agg.capitalize()],
                filter=flt,
                max_results=MAX_SERIES if flt else None,
                **self._call_options,
            )
            for result in results:
                for metric in result.metrics:
                    rid = self._resource_of(metric.id or "")
                    for series in metric.timeseries:
                        dims = {str(k).lower(): v for k, v in (series.metadata_values or {}).items()}
                        labels = {d: dims.get(d.lower()) for d in split_by}
                        for point in series.data:
                            value = getattr(point, agg, None)
                            if value is None:
                                continue
                            rows.append(
                                {
                                    "TimeStamp": point.timestamp,
                                    "ResourceId": rid,
                                    "MetricName": str(metric.name),
                                    **labels,
                                    "Value": float(value),
                                }
                            )
        frame = pd.DataFrame(rows, columns=columns)
        frame["TimeStamp"] = pd.to_datetime(frame["TimeStamp"], utc=True).astype("datetime64[us, UTC]")
        frame["Value"] = frame["Value"].astype("float64")
        frame = frame[(frame["TimeStamp"] >= _utc(start)) & (frame["TimeStamp"] < _utc(end))]
        return frame.sort_values(["TimeStamp", "ResourceId", "MetricName", *split_by], kind="stable").reset_index(
            drop=True
        )

    def _resource_of(self, metric_id: str) -> str:
        """The configured resource id a metric id (`<resource id>/providers/Microsoft.Insights/metrics/X`)
        belongs to, compared case-insensitively."""
        low = metric_id.lower()
        for rid in self.resource_ids:
            if low == rid.lower() or low.startswith(rid.lower() + "/"):
                return rid
        cut = low.find("/providers/microsoft.insights/")
        return metric_id[:cut] if cut > 0 else metric_id


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
