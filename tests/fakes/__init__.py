"""Local HTTP servers that speak Azure's REST shapes, so the real SDK clients can be tested end to end.

- `LogAnalyticsServer`: the Log Analytics query API (single queries and `$batch`), answering by running
  the KQL with duckdb-kql over a DuckDB workspace file.
- `MetricsServer`: the Azure Monitor metrics batch API (`metrics:getBatch`), computed from the
  workspace's `MetricsApi` table.
- `ManagementServer`: the ARM calls for Azure OpenAI deployments and regional quota usages, from the
  `MgmtDeployments` / `MgmtUsages` tables; and for the inventory, Resource Graph, diagnostic settings and
  the models list from the demo estate's tables (`queries.demo.estate`).
- `FakeCredential`: a token credential the Azure SDK clients accept.

Every server binds 127.0.0.1 on a free port, records each request (`.requests`), answers queued
`Reply`s first (`.enqueue()`), and is a context manager. Import as `from fakes import ...` in tests.
"""

from __future__ import annotations

from ._server import FakeAzureServer, RecordedRequest, Reply, error_body
from .credential import FakeCredential
from .loganalytics_server import TYPES_EXPECTED, TYPES_QUERY, LogAnalyticsServer
from .metrics_server import MetricsServer
from .mgmt_server import ManagementServer

__all__ = [
    "TYPES_EXPECTED",
    "TYPES_QUERY",
    "FakeAzureServer",
    "FakeCredential",
    "LogAnalyticsServer",
    "ManagementServer",
    "MetricsServer",
    "RecordedRequest",
    "Reply",
    "error_body",
]
