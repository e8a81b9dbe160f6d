"""A local Azure Monitor metrics batch API (`metrics:getBatch`) computed from the workspace's `MetricsApi` table.

It answers what `azure.monitor.querymetrics.MetricsClient.query_resources` sends:

    POST /subscriptions/{sub}/metrics:getBatch?api-version=2024-02-01&starttime=..&endtime=..&interval=PT1H
         &metricnamespace=Microsoft.CognitiveServices/accounts&metricnames=A,B&aggregation=Total,Average
         &filter=ModelDeploymentName eq '*'&top=10&orderby=Total desc
    body {"resourceids": [...]}

with `{"values": [{"starttime", "endtime", "interval", "namespace", "resourceregion", "resourceid",
"value": [metric objects]}]}`, each metric object as ARM returns it (`id`, `type`, `name`, `unit`,
`timeseries[{metadatavalues, data[{timeStamp, total, ...}]}]`, `errorCode`).

Behaviour copied from Azure:
- buckets start at `starttime` and step by `interval` up to `endtime` (exclusive); default interval PT1M;
- dimensions named in the filter (`eq '*'` splits, `eq 'v'` filters and splits) come back LOWER-CASED in
  `metadatavalues`; several values for one dimension are joined by `or`, different dimensions by `and`;
- a bucket with no data has `total: 0` when Total is asked for, and no other aggregation;
- without a split there is one series (zero-filled); with a split, only series that have data, at most
  `top` of them (default 10, ordered by `orderby`, default the first aggregation descending);
- unknown metric names or dimensions are a 400 for the whole request, as Azure answers.
`rollupby` is not implemented (501).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import isodate

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body, iso_z, parse_duration, parse_instant

NAMESPACE = "Microsoft.CognitiveServices/accounts"

_REQ_DIMS = (
    "ApiName",
    "OperationName",
    "Region",
    "StreamType",
    "ModelDeploymentName",
    "ModelName",
    "ModelVersion",
    "StatusCode",
)
_TOKEN_DIMS = ("ApiName", "ModelDeploymentName", "FeatureName", "UsageChannel", "Region", "ModelVersion")
_LATENCY_DIMS = ("Region", "ModelDeploymentName", "ModelName", "ModelVersion")

# REST name -> (display name, unit, default aggregation, dimensions)
METRICS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "AzureOpenAIRequests": ("Azure OpenAI Requests", "Count", "Total", (*_REQ_DIMS, "IsSpillover")),
    "AzureOpenAITimeToResponse": ("Time to Response", "MilliSeconds", "Average", _REQ_DIMS),
    "ProcessedPromptTokens": ("Processed Prompt Tokens", "Count", "Total", _TOKEN_DIMS),
    "GeneratedTokens": ("Generated Completion Tokens", "Count", "Total", _TOKEN_DIMS),
    "TokenTransaction": ("Processed Inference Tokens", "Count", "Total", _TOKEN_DIMS),
    "AzureOpenAIProvisionedManagedUtilizationV2": (
        "Provisioned-managed Utilization V2",
        "Percent",
        "Average",
        ("Region", "StreamType", "ModelDeploymentName", "ModelName", "ModelVersion"),
    ),
    "AzureOpenAITTLTInMS": ("Time to Last Byte", "MilliSeconds", "Average", _LATENCY_DIMS),
    "AzureOpenAINormalizedTTFTInMS": ("Normalized Time to First Byte", "MilliSeconds", "Average", _LATENCY_DIMS),
    "AzureOpenAITokenPerSecond": ("Tokens Per Second", "Count", "Average", _LATENCY_DIMS),
}
STORE_DIMENSIONS = (
    "ModelDeploymentName", "ModelName", "ModelVersion", "FeatureName", "StatusCode", "OperationName",
    "StreamType", "ApiName", "Region", "UsageChannel", "IsSpillover",
)  # fmt: skip
AGGREGATIONS = {"average", "count", "maximum", "minimum", "total"}
_CLAUSE = re.compile(r"^\s*(?P<name>.+?)\s+(?P<op>eq|ne)\s+'(?P<value>(?:[^']|'')*)'\s*$", re.IGNORECASE)


class MetricsServer(FakeAzureServer):
    """The metrics batch API over the `MetricsApi` table of a DuckDB workspace file (opened read-only).

    `workspace`: path of the DuckDB file. `now`: the end of the window when a request names no endtime.
    `require_auth`: answer 401 to requests without a bearer token (default True).
    """

    def __init__(self, workspace: Path | str, *, now: datetime | None = None, require_auth: bool = True) -> None:
        super().__init__(require_auth=require_auth, now=now)
        self.workspace = Path(workspace)
        self._con: duckdb.DuckDBPyConnection | None = None
        self._regions: dict[str, str] = {}

    def open(self) -> None:
        con = duckdb.connect(str(self.workspace), read_only=True)
        con.execute("SET TimeZone = 'UTC'")
        self._regions = {
            rid.lower(): region
            for rid, region in con.execute("SELECT ResourceId, any_value(Region) FROM MetricsApi GROUP BY 1").fetchall()
        }
        self._con = con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def throttle(self, retry_after: float | None = 0, *, times: int = 1) -> None:
        """429 TooManyRequests, with `Retry-After: <seconds>` unless retry_after is None."""
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.enqueue(Reply(429, error_body("TooManyRequests", "Too many requests."), headers), times=times)

    # ---- HTTP -------------------------------------------------------------------------------------------
    def handle(self, request: RecordedRequest) -> Reply:
        queued = self._next_queued()
        if queued is not None:
            return queued if isinstance(queued, Reply) else queued(request)
        m = re.fullmatch(r"/subscriptions/([^/]+)/metrics:getBatch", request.path, re.IGNORECASE)
        if m is None or request.method != "POST":
            return Reply(404, error_body("NotFound", f"No route for {request.method} {request.path}"))
        try:
            return Reply(200, self._batch(m.group(1), request))
        except _BadRequest as exc:
            return Reply(exc.status, error_body(exc.code, str(exc)))

    def _batch(self, subscription: str, request: RecordedRequest) -> dict[str, Any]:
        q = {k.lower(): v for k, v in request.query.items()}
        if "api-version" not in q:
            raise _BadRequest("MissingApiVersionParameter", "The api-version query parameter is required.")
        if q.get("rollupby"):
            raise _BadRequest("NotImplemented", "rollupby is not implemented by the fake metrics server.", status=501)
        namespace = q.get("metricnamespace", "")
        if namespace.lower() != NAMESPACE.lower():
            raise _BadRequest("BadRequest", f"Metric namespace {namespace!r} is not supported here ({NAMESPACE}).")
        ids = request.body.get("resourceids") if isinstance(request.body, dict) else None
        if not isinstance(ids, list) or not ids:
            raise _BadRequest("BadRequest", "The body needs a non-empty 'resourceids' list.")
        for rid in ids:
            if not str(rid).lower().startswith(f"/subscriptions/{subscription.lower()}/"):
                raise _BadRequest("BadRequest", f"Resource {rid} is not in subscription {subscription}.")
        names = [n for n in q.get("metricnames", "").split(",") if n]
        unknown = [n for n in names if n not in METRICS]
        if not names or unknown:
            raise _BadRequest(
                "BadRequest",
                f"Failed to find metric configuration for provider: Microsoft.CognitiveServices, resource Type: "
                f"accounts, metric: {','.join(unknown) or '(none)'}, Valid metrics: {','.join(METRICS)}",
            )
        end = parse_instant(q["endtime"]) if q.get("endtime") else self.now()
        start = parse_instant(q["starttime"]) if q.get("starttime") else end - timedelta(hours=1)
        interval_text = q.get("interval") or "PT1M"
        step = end - start if interval_text.upper() == "FULL" else parse_duration(interval_text, anchor=start)
        if step <= timedelta(0) or end <= start:
            raise _BadRequest("BadRequest", "The interval and time range must be positive.")
        aggs = [a.strip().lower() for a in q.get("aggregation", "").split(",") if a.strip()]
        if any(a not in AGGREGATIONS for a in aggs):
            raise _BadRequest("BadRequest", f"Unknown aggregation in {q.get('aggregation')!r}.")
        filters = _parse_filter(q.get("filter", ""))
        top = int(q.get("top") or 10)
        order = q.get("orderby", "")
        values = []
        for rid in ids:
            metrics = [
                self._metric(str(rid), name, start, end, step, aggs or [METRICS[name][2].lower()], filters, top, order)
                for name in names
            ]
            values.append(
                {
                    "starttime": iso_z(start),
                    "endtime": iso_z(end),
                    "interval": isodate.duration_isoformat(step) if interval_text.upper() != "FULL" else "FULL",
                    "namespace": NAMESPACE,
                    "resourceregion": self._regions.get(str(rid).lower(), "eastus"),
                    "resourceid": rid,
                    "value": metrics,
                }
            )
        return {"values": values}

    def _metric(
        self,
        rid: str,
        name: str,
        start: datetime,
        end: datetime,
        step: timedelta,
        aggs: list[str],
        filters: list[tuple[str, str, list[str]]],
        top: int,
        order: str,
    ) -> dict[str, Any]:
        display, unit, _, dims = METRICS[name]
        known = {d.lower(): d for d in dims}
        split: list[str] = []
        where = ["lower(ResourceId) = ?", "MetricName = ?", "TimeStamp >= ?", "TimeStamp < ?"]
        params: list[Any] = [rid.lower(), name, _naive(start), _naive(end)]
        for dim, op, vals in filters:
            col = known.get(dim.lower())
            if col is None:
                raise _BadRequest("BadRequest", f"Dimension {dim!r} is not a dimension of metric {name}.")
            if col not in STORE_DIMENSIONS:  # documented, but never set in the demo store: one empty value
                continue
            if op == "eq" and col not in split:
                split.append(col)
            if vals != ["*"]:
                marks = ", ".join("?" for _ in vals)
                neg = "NOT " if op == "ne" else ""
                where.append(f"{neg}lower(coalesce({col}, '')) IN ({marks})")
                params += [v.lower() for v in vals]
        n_buckets = -(-int((end - start).total_seconds()) // int(step.total_seconds()))
        select_split = "".join(f", coalesce({c}, '') AS {c}" for c in split)
        group_split = "".join(f", {i + 2}" for i in range(len(split)))
        sql = f"""
            SELECT CAST(floor((epoch(TimeStamp) - ?) / ?) AS BIGINT) AS bucket{select_split},
                   sum(Total), sum(Count), min(Minimum), max(Maximum),
                   sum(Average * Count) / nullif(sum(CASE WHEN Average IS NOT NULL THEN Count END), 0)
            FROM MetricsApi WHERE {" AND ".join(where)}
            GROUP BY 1{group_split} ORDER BY 1
        """
        assert self._con is not None, "the server is not started"
        cur = self._con.cursor()
        try:
            rows = cur.execute(sql, [start.timestamp(), step.total_seconds(), *params]).fetchall()
        finally:
            cur.close()
        series: dict[tuple[str, ...], dict[int, dict[str, float | None]]] = {}
        for row in rows:
            bucket, key, (total, count, minimum, maximum, average) = row[0], tuple(row[1 : 1 + len(split)]), row[-5:]
            series.setdefault(key, {})[int(bucket)] = {
                "total": total, "count": count, "minimum": minimum, "maximum": maximum, "average": average,
            }  # fmt: skip
        if not split:
            series.setdefault((), {})
        timeseries = []
        for key, points in series.items():
            data = []
            for b in range(n_buckets):
                point: dict[str, Any] = {"timeStamp": iso_z(start + b * step)}
                got = points.get(b)
                for a in aggs:
                    value = got.get(a) if got else (0.0 if a == "total" else None)
                    if value is not None:
                        point[a] = float(value)
                data.append(point)
            timeseries.append(
                {
                    "metadatavalues": [
                        {"name": {"value": c.lower(), "localizedValue": c.lower()}, "value": v}
                        for c, v in zip(split, key, strict=True)
                    ],
                    "data": data,
                }
            )
        if split:
            timeseries = _top(timeseries, aggs, order, top)
        return {
            "id": f"{rid}/providers/Microsoft.Insights/metrics/{name}",
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": display},
            "displayDescription": f"{display} (local fake metrics store).",
            "unit": unit,
            "timeseries": timeseries,
            "errorCode": "Success",
        }


class _BadRequest(Exception):
    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _split_outside_quotes(text: str, word: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    quoted, i = False, 0
    pattern = re.compile(rf"\s+{word}\s+", re.IGNORECASE)
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        if not quoted:
            m = pattern.match(text, i)
            if m:
                parts.append("".join(buf))
                buf, i = [], m.end()
                continue
        buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _parse_filter(text: str) -> list[tuple[str, str, list[str]]]:
    """`A eq 'a1' and B eq 'b1' or B eq 'b2' and C eq '*'` -> [(A, eq, [a1]), (B, eq, [b1, b2]), (C, eq, [*])]."""
    out: list[tuple[str, str, list[str]]] = []
    if not text.strip():
        return out
    for group in _split_outside_quotes(text.strip(), "and"):
        name = op = ""
        values: list[str] = []
        for clause in _split_outside_quotes(group, "or"):
            m = _CLAUSE.match(clause)
            if m is None:
                raise _BadRequest("BadRequest", f"Cannot parse filter clause {clause.strip()!r}.")
            n, o = m.group("name").strip(), m.group("op").lower()
            if name and (n.lower() != name.lower() or o != op):
                raise _BadRequest("BadRequest", "'or' may only join conditions on the same dimension.")
            name, op = n, o
            values.append(m.group("value").replace("''", "'"))
        out.append((name, op, values))
    return out


def _top(timeseries: list[dict[str, Any]], aggs: list[str], order: str, top: int) -> list[dict[str, Any]]:
    parts = order.split()
    key = parts[0].lower() if parts else aggs[0]
    descending = not (len(parts) > 1 and parts[1].lower() == "asc")

    def score(ts: dict[str, Any]) -> float:
        return sum(p.get(key) or 0.0 for p in ts["data"])

    return sorted(timeseries, key=score, reverse=descending)[:top]


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)
