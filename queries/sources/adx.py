"""Azure Data Explorer / Fabric Eventhouse through `azure-kusto-data`'s `KustoClient`.

The catalogue's KQL runs unchanged where the diagnostic tables were exported or ingested: a database
holding `AzureDiagnostics` (and `AzureMetrics`) with Log Analytics' columns (docs/adx.md says how to get
them there). Nothing needs mapping: every query bounds its own time range with `_start`/`_end` from the
renderer's `let` prefix (Log Analytics' `timespan` is only a scan bound there), and the catalogue uses
no Log Analytics-only function.

What the service does and how it becomes a `LogsAnswer`:
- the primary result → a frame typed from the Kusto column types (as for Log Analytics);
- errors reported inside a completed answer (QueryCompletionInformation, e.g. a truncated result) →
  status partial, the rows kept, the service's messages as the notice;
- a semantic error (400) → failed with the service's message (the Lens keeps the KQL);
- 401/403 → failed, saying which role the identity needs (Database Viewer);
- 429 (the cluster's request rate limits) → retried after a short backoff, then failed saying so.

The client sends a bearer token from the credential (DefaultAzureCredential unless one is given).
Plain http is refused except to a loopback address (the local test endpoint).
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlparse

import pandas as pd
from azure.core.exceptions import ClientAuthenticationError
from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import (
    KustoApiError,
    KustoAuthenticationError,
    KustoError,
    KustoNetworkError,
    KustoServiceError,
    KustoThrottlingError,
)

from queries.sources.azure_http import is_loopback
from queries.sources.base import LogsAnswer, LogsRequest
from queries.sources.loganalytics import column

log = logging.getLogger(__name__)

NO_ROWS = "the database answered no table"
ROLE_HINT = (
    "the identity needs the Database Viewer role on the database "
    "(ADX: Permissions on the database; Fabric: Viewer on the KQL database)"
)


class AdxConfigError(ValueError):
    """A cluster URL or database name that cannot be used; the message says why."""


def check_cluster_url(url: str) -> str:
    """https, or http only to a loopback address (a local endpoint: tokens never go over plain http
    to anything else). Returns the URL without a trailing slash."""
    parsed = urlparse(url or "")
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise AdxConfigError(f"{url!r} is not a cluster URL like https://mycluster.westeurope.kusto.windows.net")
    if parsed.scheme == "http" and not is_loopback(url):
        raise AdxConfigError(f"{url!r}: a cluster is only reached over https (http only for a loopback test endpoint)")
    if parsed.path not in ("", "/") or parsed.query:
        raise AdxConfigError(f"{url!r}: give the cluster's query URI alone, without a path (the database is separate)")
    return url.rstrip("/")


def result_frame(table: Any) -> pd.DataFrame:
    """A KustoResultTable as a frame with pandas types matching its Kusto column types, read from the
    raw JSON values (so longs keep all 64 bits and datetimes come out tz-aware UTC)."""
    names = [c.column_name for c in table.columns]
    types = [c.column_type for c in table.columns]
    rows = table.raw_rows
    data = {
        name: column([row[i] for row in rows], kusto) for i, (name, kusto) in enumerate(zip(names, types, strict=True))
    }
    return pd.DataFrame(data, columns=names)


def service_message(error: KustoError) -> str:
    """The most specific text the service gave: the API error's `@message`, else its description."""
    if isinstance(error, KustoApiError):
        try:
            api = error.get_api_error()
            text = api.description or api.message or ""
            code = api.code or ""
            return f"{code}: {text}" if code else str(text)
        except Exception:  # a body the client could not read: fall back to the exception text
            pass
    return (str(error) or type(error).__name__).splitlines()[0][:500]


def completion_errors(response: Any) -> list[str]:
    """The messages of the error rows (Level below 4: critical, error, warning) Kusto reports in a
    completed answer's QueryCompletionInformation table, read from their JSON payloads."""
    out = []
    for table in response.tables:
        if str(getattr(table, "table_kind", "")).endswith("QueryCompletionInformation"):
            names = [c.column_name for c in table.columns]
            if "Level" not in names or "Payload" not in names:
                continue
            level, payload = names.index("Level"), names.index("Payload")
            for row in table.raw_rows:
                if row[level] is None or int(row[level]) >= 4:
                    continue
                try:
                    body = json.loads(row[payload]) if isinstance(row[payload], str) else row[payload]
                    err = body.get("error", body) if isinstance(body, dict) else {}
                    text = err.get("@message") or err.get("message") or str(row[payload])
                except ValueError:
                    text = str(row[payload])
                out.append(str(text)[:300])
    return out


def _status(error: KustoServiceError) -> int | None:
    response = error.get_raw_http_response()
    return getattr(response, "status_code", None) if response is not None else None


class AdxLogs:
    """Logs source for one Azure Data Explorer (or Fabric Eventhouse) database."""

    name = "adx"

    def __init__(
        self,
        *,
        cluster_url: str,
        database: str,
        credential: Any,
        server_timeout_s: int = 180,
        max_concurrent: int = 5,
        retries: int = 3,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.cluster_url = check_cluster_url(cluster_url)
        self.database = database
        self.server_timeout_s = server_timeout_s
        self.max_concurrent = max(1, max_concurrent)
        self.retries = retries
        self._sleep = sleep or time.sleep
        self.waits: list[float] = []
        kcsb = KustoConnectionStringBuilder.with_azure_token_credential(self.cluster_url, credential)
        self.client = KustoClient(kcsb)

    def _properties(self) -> ClientRequestProperties:
        props = ClientRequestProperties()
        props.set_option(ClientRequestProperties.request_timeout_option_name, timedelta(seconds=self.server_timeout_s))
        props.application = "aoai-lens"
        return props

    # ---- one query -----------------------------------------------------------------------------
    def run(self, request: LogsRequest) -> LogsAnswer:
        tries = 0
        while True:
            try:
                response = self.client.execute_query(self.database, request.kql, self._properties())
                return self._answer(response)
            except KustoThrottlingError:
                if tries >= self.retries:
                    return LogsAnswer(
                        pd.DataFrame(),
                        "failed",
                        f"the cluster is throttling queries (HTTP 429) and still refused after {tries} "
                        f"retr{'y' if tries == 1 else 'ies'}; try again in a minute",
                    )
                wait = float(2**tries)
                self.waits.append(wait)
                self._sleep(wait)
                tries += 1
            except (KustoAuthenticationError, ClientAuthenticationError) as e:
                return LogsAnswer(pd.DataFrame(), "failed", f"authentication failed: {str(e).splitlines()[0][:300]}")
            except KustoNetworkError as e:
                # a dropped or reset connection is often transient (a kept-alive connection the cluster
                # closed): tried again like a throttled query before the panel says so
                if tries >= self.retries:
                    return LogsAnswer(
                        pd.DataFrame(), "failed", f"the cluster {self.cluster_url} cannot be reached: {e}"
                    )
                wait = float(2**tries)
                self.waits.append(wait)
                self._sleep(wait)
                tries += 1
            except KustoServiceError as e:
                return LogsAnswer(pd.DataFrame(), "failed", self._service_notice(e))
            except KustoError as e:
                return LogsAnswer(pd.DataFrame(), "failed", f"the Kusto client failed: {service_message(e)}")

    def _service_notice(self, e: KustoServiceError) -> str:
        status = _status(e)
        if status in (401, 403):
            return f"the cluster refused access (HTTP {status}): {ROLE_HINT}"
        if status == 404:
            return f"the database {self.database!r} was not found on {self.cluster_url} (HTTP 404)"
        return f"the cluster refused the query (HTTP {status}): {service_message(e)}"

    @staticmethod
    def _answer(response: Any) -> LogsAnswer:
        primary = response.primary_results
        if not primary:
            return LogsAnswer(pd.DataFrame(), "ok", NO_ROWS, 0)
        frame = result_frame(primary[0])
        if response.errors_count:
            messages = "; ".join(completion_errors(response)) or "some of the data could not be read"
            return LogsAnswer(frame, "partial", f"partial result, some rows may be missing: {messages}", len(frame))
        return LogsAnswer(frame, "ok", None, len(frame))

    # ---- several queries ------------------------------------------------------------------------
    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        """Kusto has no batch call: the queries go side by side, at most `max_concurrent` at once."""
        if len(requests) <= 1:
            return [self.run(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrent, len(requests))) as pool:
            return list(pool.map(self.run, requests))

    # ---- where a person can run the same query ---------------------------------------------------
    def deep_link(self, kql: str) -> str:
        """A UI deep link (`https://<cluster>/<database>?query=<base64(gzip(kql))>`): the cluster redirects
        it to the Azure Data Explorer web UI (or Fabric's query workbench) with the query in place."""
        packed = base64.b64encode(gzip.compress(kql.encode("utf-8"))).decode("ascii")
        return f"{self.cluster_url}/{quote(self.database)}?query={quote(packed, safe='')}"

    def close(self) -> None:
        self.client.close()
