"""The embedded default: the demo DuckDB workspace, queried with the same KQL through duckdb-kql.

Files, not locks (`queries.filestore`): the seeded workspace file is written once and only ever opened
read-only, by any number of processes. Records that arrive later (the simulator's calls, an imported
archive) are appended as immutable Parquet parts next to it (`<workspace>.appended/AzureDiagnostics/`),
and each process reads the table as the base rows plus those parts: an in-memory DuckDB connection
attaches the workspace read-only and defines `AzureDiagnostics` as a view over both. No process ever
needs a write lock on a file another one reads.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import duckdb_kql
import pandas as pd

from queries.filestore import AppendLog
from queries.sources.arm_shapes import deployments_frame, usages_frame
from queries.sources.base import LogsAnswer, LogsRequest

BASE_TABLES = (
    "AzureDiagnostics",
    "AzureMetrics",
    "MetricsApi",
    "MgmtDeployments",
    "MgmtUsages",
    "WorkspaceInfo",
    # the estate the inventory reads (queries.demo.estate)
    "MgmtAccounts",
    "MgmtEstateDeployments",
    "MgmtDiagnosticSettings",
    "MgmtModels",
)
APPENDABLE = ("AzureDiagnostics",)


class WorkspaceError(RuntimeError):
    """The demo workspace is missing or cannot be opened; the message says what to do."""


def appended_root(path: Path) -> Path:
    """Where records appended to the workspace at `path` live (`demo.duckdb` -> `demo.appended/`)."""
    return path.with_suffix(".appended")


def append_log(path: Path, table: str = "AzureDiagnostics") -> AppendLog:
    return AppendLog(appended_root(path), table)


class EmbeddedWorkspace:
    """A process's view of the demo workspace: the seeded file (read-only) plus its appended parts.

    One in-memory connection per process, one cursor per query. When the workspace file is replaced
    (a new seed) or the parts change (an ingestion run), the next query opens a fresh connection; queries
    running on the old one finish on it.
    """

    def __init__(self, path: Path, *, query_now: datetime | None = None) -> None:
        self.path = Path(path)
        self.query_now = query_now
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple[object, ...] | None = None
        self._logs = {t: append_log(self.path, t) for t in APPENDABLE}

    def _current_stamp(self) -> tuple[object, ...]:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_ino, *(log.stamp() for log in self._logs.values()))

    def _open(self) -> duckdb.DuckDBPyConnection:
        con = duckdb_kql.connect(":memory:")
        try:
            con.execute(f"ATTACH '{_sql_text(str(self.path))}' AS base (READ_ONLY)")
            present = {
                r[0]
                for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'base'").fetchall()
            }
            for table in BASE_TABLES:
                if table not in present:
                    continue
                parts = self._logs[table].parts() if table in self._logs else []
                sql = f'SELECT * FROM base."{table}"'
                if parts:
                    files = ", ".join(f"'{_sql_text(str(p))}'" for p in parts)
                    sql += f" UNION ALL BY NAME SELECT * FROM read_parquet([{files}], union_by_name = true)"
                con.execute(f'CREATE VIEW "{table}" AS {sql}')
        except duckdb.Error as e:
            con.close()
            raise WorkspaceError(f"the demo workspace {self.path.name} cannot be read: {type(e).__name__}") from e
        return con

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if not self.path.exists():
                raise WorkspaceError(
                    f"no demo workspace at {self.path.name}: run `aoai-lens demo seed` (or `make demo`, which builds it)"
                )
            stamp = self._current_stamp()
            if self._con is None or stamp != self._stamp:
                self._con = self._open()  # the old connection closes when its last cursor is gone
                self._stamp = stamp
            return self._con.cursor()

    @contextlib.contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one query."""
        cur = self._cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


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
        "IsSpillover",
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
        with self.workspace.reading() as con:
            # a workspace seeded before a dimension was stored answers it as one empty value, as Azure
            # answers a dimension no series sets
            present = {str(c[0]) for c in con.execute("SELECT * FROM MetricsApi LIMIT 0").description}
            for i, (dim, values) in enumerate((filters or {}).items()):
                match = next((k for k in self.DIMENSIONS if k.lower() == dim.lower()), None)
                if match is None:
                    raise ValueError(f"unknown metric dimension {dim!r}")
                col = f'"{match}"' if match in present else "CAST(NULL AS VARCHAR)"
                where.append(f"{col} IN (SELECT unnest($f{i}))")
                args[f"f{i}"] = list(values)
            dim_sql = "".join(
                f', "{m}" AS "{d}"' if m in present else f', CAST(NULL AS VARCHAR) AS "{d}"' for d, m in dims
            )
            group = "".join(f', "{m}"' for _, m in dims if m in present)
            sql = f"""
                SELECT to_timestamp(floor(epoch(TimeStamp) / $secs) * $secs) AT TIME ZONE 'UTC' AS TimeStamp,
                       ResourceId, MetricName{dim_sql}, {agg} AS Value
                FROM MetricsApi WHERE {" AND ".join(where)}
                GROUP BY 1, ResourceId, MetricName{group}
                ORDER BY 1
            """
            return con.execute(sql, args).df()


class EmbeddedManagement:
    """Management-plane source: deployments and quota usages from the workspace's ARM bodies, and the
    demo's bill. The bill is derived from the demo's own traffic priced by the cost model, which reads
    through a Lens: `Lens.from_settings` hands this source its `bill_source` (`queries.demo.bill.DemoBill`)."""

    name = "embedded"

    def __init__(
        self, workspace: EmbeddedWorkspace, bill_source: Callable[[datetime, datetime, str], pd.DataFrame] | None = None
    ) -> None:
        self.workspace = workspace
        self.bill_source = bill_source

    def bill(self, start: datetime, end: datetime, cost_type: str = "ActualCost") -> pd.DataFrame:
        if self.bill_source is None:
            raise WorkspaceError("this demo workspace has no bill: a Lens built by Lens.from_settings serves it")
        return self.bill_source(start, end, cost_type)

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


class EmbeddedEstate:
    """Inventory source (`queries.inventory.EstateSource`): the demo estate's Resource Graph rows,
    deployments, diagnostic settings and models lists, stored as the management plane answers them."""

    name = "embedded"

    def __init__(self, workspace: EmbeddedWorkspace) -> None:
        self.workspace = workspace

    def _bodies(self, table: str, key: str | None = None) -> list[dict]:
        column = "Location" if table == "MgmtModels" else "ResourceId"
        with self.workspace.reading() as con:
            present = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
            if table not in present:
                raise WorkspaceError(
                    f"the demo workspace {self.workspace.path.name} has no {table}: it was seeded by an older "
                    "version; run `aoai-lens demo seed` again"
                )
            sql = f'SELECT Body FROM "{table}"'
            args: list[object] = []
            if key is not None:
                sql += f" WHERE lower({column}) = lower(?)"
                args.append(key)
            return [json.loads(str(b)) for (b,) in con.execute(sql, args).fetchall()]

    def accounts(self) -> list[dict]:
        return self._bodies("MgmtAccounts")

    def deployments(self, account_id: str) -> list[dict]:
        return self._bodies("MgmtDeployments", account_id) + self._bodies("MgmtEstateDeployments", account_id)

    def diagnostic_settings(self, account_id: str) -> list[dict]:
        return [s for body in self._bodies("MgmtDiagnosticSettings", account_id) for s in body.get("value", [])]

    def models(self, subscription: str, location: str) -> list[dict]:
        return [m for body in self._bodies("MgmtModels", location) for m in body.get("value", [])]


def _naive(t: datetime) -> datetime:
    from datetime import UTC

    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
