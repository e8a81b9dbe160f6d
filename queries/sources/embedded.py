"""The embedded default: the demo DuckDB workspace, queried with the same KQL through duckdb-kql.

One `EmbeddedWorkspace` per process owns the DuckDB database. It reads through a read-only connection
(so several processes can read the file at once) and, for the ingestion job, briefly swaps it for a
read-write one under a lock (`writer()`): DuckDB allows one writer or many readers per file, not both.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import duckdb_kql
import pandas as pd

from queries.sources.arm_shapes import deployments_frame, usages_frame
from queries.sources.base import LogsAnswer, LogsRequest


class WorkspaceError(RuntimeError):
    """The demo workspace is missing or cannot be opened; the message says what to do."""


class EmbeddedWorkspace:
    """Owns the DuckDB connection to the demo workspace file.

    Readers share one read-only connection, each query on its own cursor inside `reading()`; the
    ingestion job's `writer()` waits until no query is running, holds new ones back, swaps in a
    read-write connection for the load, then lets readers reopen read-only.
    """

    def __init__(self, path: Path, *, query_now: datetime | None = None) -> None:
        self.path = Path(path)
        self.query_now = query_now
        self._lock = threading.RLock()  # guards the connection object itself
        self._gate = threading.Condition()  # readers/writer admission
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[float, int] | None = None

    def _file_stamp(self) -> tuple[float, int]:
        st = self.path.stat()
        return (st.st_mtime, st.st_ino)

    def _open(self, read_only: bool = True) -> duckdb.DuckDBPyConnection:
        if not self.path.exists():
            raise WorkspaceError(
                f"no demo workspace at {self.path}: run `aoai-lens demo seed` (or `make demo`, which builds it)"
            )
        last: Exception | None = None
        for attempt in range(20):  # another process may hold the write lock for a moment
            try:
                con = duckdb_kql.connect(str(self.path), read_only=read_only)
                return con
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():  # not a lock: a file that is no database, or unreadable
                    raise WorkspaceError(f"the demo workspace {self.path} cannot be opened: {e}") from None
                last = e
                time.sleep(min(0.05 * (attempt + 1), 0.5))
        raise WorkspaceError(f"the demo workspace {self.path} is locked by another process: {last}")

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            stamp = self._file_stamp() if self.path.exists() else None
            if self._con is None or stamp != self._stamp:
                if self._con is not None and self._readers <= 1:
                    self._con.close()
                self._con = self._open(read_only=True)
                self._stamp = stamp
            return self._con.cursor()

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one query; a load waiting in `writer()` goes first."""
        with self._gate:
            while self._writing or self._writers_waiting:
                self._gate.wait()
            self._readers += 1
        cur = None
        try:
            cur = self._cursor()
            yield cur
        finally:
            if cur is not None:
                cur.close()
            with self._gate:
                self._readers -= 1
                self._gate.notify_all()

    @contextlib.contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection for a short load, once running queries have finished."""
        with self._gate:
            self._writers_waiting += 1
            while self._readers or self._writing:
                self._gate.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            with self._lock:
                if self._con is not None:
                    self._con.close()
                    self._con = None
                con = self._open(read_only=False)
                try:
                    yield con
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                    self._stamp = None
        finally:
            with self._gate:
                self._writing = False
                self._gate.notify_all()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


_KUSTO_TYPES = {
    "int64": "long",
    "Int64": "long",
    "int32": "int",
    "float64": "real",
    "Float64": "real",
    "bool": "bool",
    "boolean": "bool",
    "object": "string",
    "string": "string",
    "str": "string",
}


class EmbeddedLogs:
    """Logs source: runs the rendered KQL with duckdb-kql over the workspace."""

    name = "embedded"

    def __init__(self, workspace: EmbeddedWorkspace) -> None:
        self.workspace = workspace

    def run(self, request: LogsRequest) -> LogsAnswer:
        with self.workspace.reading() as con:
            if self.workspace.query_now is not None:
                frame = duckdb_kql.df(con, request.kql, query_now=self.workspace.query_now)
            else:
                frame = duckdb_kql.df(con, request.kql)
        return LogsAnswer(frame=frame, rows=len(frame))

    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        return [self.run(r) for r in requests]


class EmbeddedMetrics:
    """Metrics source: answers metrics-API questions from the workspace's MetricsApi store."""

    name = "embedded"
    DIMENSIONS = (
        "ModelDeploymentName",
        "ModelName",
        "ModelVersion",
        "FeatureName",
        "StatusCode",
        "OperationName",
        "StreamType",
        "ApiName",
        "Region",
        "UsageChannel",
    )

    def __init__(self, workspace: EmbeddedWorkspace) -> None:
        self.workspace = workspace

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
        dims = []
        for d in split_by or []:
            match = next((k for k in self.DIMENSIONS if k.lower() == d.lower()), None)
            if match is None:
                raise ValueError(f"unknown metric dimension {d!r}")
            dims.append((d, match))
        agg = {
            "total": "sum(Total)",
            "count": "sum(Count)",
            "average": "sum(Total) / nullif(sum(Count), 0)",
            "minimum": "min(Minimum)",
            "maximum": "max(Maximum)",
        }.get(aggregation.lower())
        if agg is None:
            raise ValueError(f"unknown aggregation {aggregation!r}")
        if aggregation.lower() == "average":
            agg = "CASE WHEN bool_and(Average IS NOT NULL AND Total IS NULL) THEN avg(Average) ELSE sum(Total) / nullif(sum(Count), 0) END"
        where = ["MetricName IN (SELECT unnest($names))", "TimeStamp >= $start", "TimeStamp < $end"]
        args: dict[str, object] = {
            "names": list(metric_names),
            "start": _naive(start),
            "end": _naive(end),
            "secs": int(interval.total_seconds()),
        }
        for i, (dim, values) in enumerate((filters or {}).items()):
            match = next((k for k in self.DIMENSIONS if k.lower() == dim.lower()), None)
            if match is None:
                raise ValueError(f"unknown metric dimension {dim!r}")
            where.append(f'"{match}" IN (SELECT unnest($f{i}))')
            args[f"f{i}"] = list(values)
        dim_sql = "".join(f', "{m}" AS "{d}"' for d, m in dims)
        group = "".join(f', "{m}"' for _, m in dims)
        sql = f"""
            SELECT to_timestamp(floor(epoch(TimeStamp) / $secs) * $secs) AT TIME ZONE 'UTC' AS TimeStamp,
                   ResourceId, MetricName{dim_sql}, {agg} AS Value
            FROM MetricsApi WHERE {" AND ".join(where)}
            GROUP BY 1, ResourceId, MetricName{group}
            ORDER BY 1
        """
        with self.workspace.reading() as con:
            return con.execute(sql, args).df()


class EmbeddedManagement:
    """Management-plane source: deployments and quota usages from the workspace's ARM bodies."""

    name = "embedded"

    def __init__(self, workspace: EmbeddedWorkspace) -> None:
        self.workspace = workspace

    def _rows(self, sql: str) -> list[tuple[str, str]]:
        with self.workspace.reading() as con:
            return [(str(a), str(b)) for a, b in con.execute(sql).fetchall()]

    def deployments(self) -> pd.DataFrame:
        return deployments_frame(
            [(rid, json.loads(body)) for rid, body in self._rows("SELECT ResourceId, Body FROM MgmtDeployments")],
            locations=self._locations(),
        )

    def _locations(self) -> dict[str, str]:
        with self.workspace.reading() as con:
            rows = con.execute(
                "SELECT DISTINCT lower(_ResourceId), location_s FROM AzureDiagnostics WHERE location_s <> ''"
            ).fetchall()
        return {str(r): str(loc) for r, loc in rows}

    def usages(self) -> pd.DataFrame:
        return usages_frame(
            [(loc, json.loads(body)) for loc, body in self._rows("SELECT Location, Body FROM MgmtUsages")]
        )


def _naive(t: datetime) -> datetime:
    from datetime import UTC

    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
