"""Load diagnostic records (JSON lines, as diagnostic settings archive them) into the demo workspace.

This is what Log Analytics does a few minutes after a call: it flattens each record into an
`AzureDiagnostics` row and stamps `_TimeReceived`. The column mapping is the seeder's
(queries/demo/seed.py), so simulator traffic and seeded history look alike to every query.

Files, not locks: the rows are appended as an immutable Parquet part next to the workspace
(`queries.sources.embedded`), never inserted into the file other processes read. An offsets file
remembers how far each archive has been read; a half-written last line is left for the next run; bad
lines are counted, not fatal.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from queries import schemas
from queries.demo import world
from queries.filestore import command_line
from queries.sources.embedded import append_log

log = logging.getLogger("aoai_lens.ingest")

REQUIRED = ("time", "resourceId", "category", "operationName")
# Operation names Azure OpenAI writes to RequestResponse; another name is loaded (the service adds new
# ones) but counted, so a typo'd or foreign archive shows up in the report.
KNOWN_OPERATIONS = frozenset(
    {
        "chatcompletions_create",
        "completions_create",
        "embeddings_create",
        "responses_create",
        "imagegenerations_create",
        "audiotranscriptions_create",
        "audiospeech_create",
    }
)
# A record time later than its arrival by more than this is a clock problem, not a call: skipped.
FUTURE_TOLERANCE = timedelta(minutes=5)
# One writer at a time within this process (the scheduler may run jobs on several threads).
WORKSPACE_LOCK = threading.Lock()


@dataclass
class IngestReport:
    files: int = 0
    loaded: int = 0
    bad: int = 0
    problems: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why lines were not loaded, with counts
    flagged: Counter[str] = field(default_factory=Counter)  # loaded, but with something odd, with counts

    def __str__(self) -> str:
        text = f"ingest: {self.loaded} records loaded from {self.files} file(s), {self.bad} bad line(s)"
        if self.skipped:
            text += " skipped (" + ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items())) + ")"
        if self.flagged:
            text += "; loaded but flagged: " + ", ".join(f"{n} {why}" for why, n in sorted(self.flagged.items()))
        return text


class BadRecord(ValueError):
    """A line that is not loaded; `reason` is the short category it is counted under."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def archive_files(root: Path) -> list[Path]:
    """Every JSON-lines archive under `root` (the simulator's *.jsonl and storage's PT1H.json)."""
    if root.is_file():
        return [root]
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json"))


def parse_time(value: str) -> datetime:
    """A record time ("2024-05-24T12:23:02.4350000Z", seven fractional digits) as naive UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        text = f"{head}.{(digits + '000000')[:6]}{rest}"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def to_row(record: dict[str, Any], *, received: datetime, tenant_id: str, size: int) -> dict[str, Any]:
    """One AzureDiagnostics row from one diagnostic record, the way the seeder fills the columns."""
    missing = [k for k in REQUIRED if not record.get(k)]
    if missing:
        raise BadRecord("missing fields", f"missing {', '.join(missing)}")
    rid = str(record["resourceId"])
    parts = rid.strip("/").split("/")
    lower = [p.lower() for p in parts]
    try:
        sub = parts[lower.index("subscriptions") + 1]
        rg = parts[lower.index("resourcegroups") + 1]
        name = parts[lower.index("accounts") + 1]
    except (ValueError, IndexError):
        raise BadRecord("bad resourceId", f"resourceId {rid[:120]!r} is not an accounts resource id") from None
    try:
        when = parse_time(str(record["time"]))
    except ValueError:
        raise BadRecord("bad time", f"time {str(record['time'])[:40]!r} is not an ISO 8601 time") from None
    if when > received + FUTURE_TOLERANCE:
        raise BadRecord(
            "time in the future", f"time {record['time']!s:.40} is after its arrival ({received:%Y-%m-%dT%H:%M}Z)"
        )
    props = record.get("properties")
    props_s = props if isinstance(props, str) else json.dumps(props or {}, separators=(",", ":"))
    location = str(record.get("location") or record.get("Tenant") or "")
    duration = record.get("durationMs")
    return {
        "TenantId": tenant_id,
        "TimeGenerated": when,
        "ResourceId": rid.upper(),
        "Category": str(record["category"]),
        "ResourceGroup": rg.upper(),
        "SubscriptionId": sub.lower(),
        "ResourceProvider": "MICROSOFT.COGNITIVESERVICES",
        "Resource": name.upper(),
        "ResourceType": "ACCOUNTS",
        "OperationName": str(record["operationName"]),
        "OperationVersion": "",
        "ResultType": "",
        "ResultSignature": str(record.get("resultSignature") or ""),
        "ResultDescription": str(record.get("resultDescription") or ""),  # a refused call's error code
        "DurationMs": int(duration) if duration not in (None, "") else 0,
        "CallerIPAddress": str(record.get("callerIpAddress") or ""),
        "CorrelationId": str(record.get("correlationId") or ""),
        "Level": str(record.get("level") or ""),
        "properties_s": props_s,
        "location_s": location,
        "event_s": str(record.get("event") or ""),
        "Tenant_s": str(record.get("Tenant") or location),
        "SourceSystem": "Azure",
        "Type": "AzureDiagnostics",
        "_ResourceId": rid.lower(),
        "_SubscriptionId": sub.lower(),
        "_TimeReceived": received,
        "_IsBillable": "True",
        "_BilledSize": float(size),
    }


OFFSETS_KEY = "ingest"  # the key of this importer's offsets in the workspace's manifest


class Offsets:
    """How far each archive file has been loaded (bytes). Committed with the appended part in the
    workspace's manifest (so a crash between the two neither duplicates nor loses records); the JSON
    file is a copy, read when the manifest has none (the first run after an upgrade)."""

    def __init__(self, path: Path, stored: dict[str, Any] | None = None) -> None:
        self.path = path
        raw: Any = stored.get("files") if isinstance(stored, dict) else None
        if raw is None:
            try:
                raw = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                raw = {}
        self.data: dict[str, int] = {}
        for k, v in (raw if isinstance(raw, dict) else {}).items():
            try:
                self.data[str(k)] = int(v)
            except (TypeError, ValueError):
                continue

    def get(self, f: Path) -> int:
        return int(self.data.get(str(f.resolve()), 0))

    def set(self, f: Path, offset: int) -> None:
        self.data[str(f.resolve())] = offset

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self.path)


def parse_lines(
    chunk: bytes, source: str, start: int, report: IngestReport, received: datetime, tenant_id: str
) -> tuple[list[dict[str, Any]], int]:
    """The rows of the complete lines in `chunk` (read from byte `start` of `source`) and how many bytes
    they span; a half-written last line is left for the next run. Bad lines are counted by reason."""
    rows: list[dict[str, Any]] = []
    complete = chunk.rfind(b"\n") + 1
    pos = start
    for line in chunk[:complete].splitlines(keepends=True):
        pos += len(line)
        text = line.strip()
        if not text:
            continue
        try:
            try:
                record = json.loads(text)
            except ValueError:
                raise BadRecord("not JSON", "not valid JSON") from None
            if not isinstance(record, dict):
                raise BadRecord("not JSON", "not a JSON object")
            row = to_row(record, received=received, tenant_id=tenant_id, size=len(text))
            rows.append(row)
            for flag in flags(record, row):
                report.flagged[flag] += 1
        except (ValueError, TypeError) as e:
            report.bad += 1
            report.skipped[e.reason if isinstance(e, BadRecord) else "unreadable"] += 1
            if len(report.problems) < 20:
                report.problems.append(f"{source}: line after byte {pos - len(line)}: {str(e)[:120]}")
    return rows, complete


def read_new(
    files: Iterable[Path], offsets: Offsets, report: IngestReport, received: datetime, tenant_id: str
) -> tuple[list[dict[str, Any]], dict[Path, int]]:
    rows: list[dict[str, Any]] = []
    ends: dict[Path, int] = {}
    for f in files:
        start = offsets.get(f)
        size = f.stat().st_size
        if size < start:  # truncated or replaced: read it again from the top
            start = 0
        if size == start:
            continue
        report.files += 1
        with f.open("rb") as fh:
            fh.seek(start)
            chunk = fh.read(size - start)
        new, complete = parse_lines(chunk, f.name, start, report, received, tenant_id)
        rows.extend(new)
        ends[f] = start + complete
    return rows, ends


def flags(record: dict[str, Any], row: dict[str, Any]) -> list[str]:
    """What is odd about a record that is still loaded (queries read it defensively)."""
    out = []
    if str(row["OperationName"]).lower() not in KNOWN_OPERATIONS:
        out.append("unknown operationName")
    try:
        props = json.loads(row["properties_s"]) if row["properties_s"] else None
    except ValueError:
        props = None
    if not isinstance(props, dict):
        out.append("properties not a JSON object")
    elif not props.get("modelDeploymentName"):
        out.append("properties without modelDeploymentName")
    return out


def as_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with exactly the workspace's AzureDiagnostics column types."""
    frame = pd.DataFrame(rows, columns=list(schemas.AZURE_DIAGNOSTICS))
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(schemas.create_table_sql("AzureDiagnostics"))
        con.register("incoming", frame)
        cols = ", ".join(f'"{c}"' for c in schemas.AZURE_DIAGNOSTICS)
        con.execute(f"INSERT INTO AzureDiagnostics ({cols}) SELECT {cols} FROM incoming")
        return con.execute("SELECT * FROM AzureDiagnostics").to_arrow_table()
    finally:
        con.close()


def ingest(
    archive: Path,
    workspace: Path,
    offsets_path: Path,
    *,
    clock: Callable[[], float] = time.time,
    tenant_id: str = world.TENANT_ID,
) -> IngestReport:
    """Append every new complete line of the archive(s) to `workspace`'s AzureDiagnostics, as one
    immutable Parquet part (files, not locks: readers never wait). One writer at a time: a second one
    gets `queries.filestore.WriterBusy` naming the first."""
    report = IngestReport()
    files = archive_files(archive)
    if not files:
        return report
    if not workspace.exists():
        raise FileNotFoundError(f"no demo workspace at {workspace.name}: run `aoai-lens demo seed`")
    log_ = append_log(workspace)
    with WORKSPACE_LOCK, log_.writer_lock(f"ingest ({command_line()})"):
        offsets = Offsets(offsets_path, log_.checkpoint(OFFSETS_KEY))
        received = datetime.fromtimestamp(clock(), UTC).replace(tzinfo=None)
        rows, ends = read_new(files, offsets, report, received, tenant_id)
        for f, end in ends.items():
            offsets.set(f, end)
        if rows or ends:
            # the part and the offsets past it, in one manifest
            log_.append(as_arrow(rows) if rows else None, checkpoint={OFFSETS_KEY: {"files": dict(offsets.data)}})
            report.loaded = len(rows)
        offsets.save()
    if report.bad or report.flagged:
        log.warning("%s; first problems: %s", report, "; ".join(report.problems[:3]))
    elif report.loaded:
        log.info("%s", report)
    return report
