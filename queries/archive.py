"""Import diagnostic-settings archives from Azure Blob Storage into the embedded workspace.

A diagnostic setting that archives to a storage account writes one append blob per resource and hour,
in a container per category:

    insights-logs-requestresponse/resourceId=/SUBSCRIPTIONS/<sub>/RESOURCEGROUPS/<rg>/PROVIDERS/
        MICROSOFT.COGNITIVESERVICES/ACCOUNTS/<NAME>/y=2026/m=12/d=01/h=13/m=00/PT1H.json

JSON lines, appended during the hour. The import reads them incrementally: a checkpoint remembers, per
blob, the ETag and how many bytes were loaded, so an appended blob is read from where the last run
stopped (a ranged download), an unchanged one (same ETag) is not read at all, and a re-run adds nothing.
Rows are mapped exactly as the local importer maps them (`queries.ingest`) and appended as one
immutable Parquet part under the workspace's writer lock, the checkpoint committed in the same manifest
as the part (`AppendLog.append(..., checkpoint=...)`): a crash between writing the part and saving the
checkpoint can neither load those records twice nor lose them. The checkpoint file
(`archive-checkpoint.json`) is a copy for people and the first run after an upgrade; the manifest's
is what the next run reads. A half-written last line waits for the next run. Bad lines are counted by
reason.

Credentials: a connection string (`AOAI_LENS_ARCHIVE__CONNECTION_STRING` or `..._FILE`), or
`DefaultAzureCredential` against the account URL (role: Storage Blob Data Reader on the account).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from azure.storage.blob import BlobServiceClient

from queries import schemas
from queries.archive_layout import CONTAINERS, blob_hour, blob_name, container_for
from queries.errors import ConfigError
from queries.filestore import atomic_write_text, command_line
from queries.ingest import WORKSPACE_LOCK, IngestReport, as_arrow, parse_lines
from queries.sources.embedded import append_log

log = logging.getLogger("aoai_lens.archive")

__all__ = ["CONTAINERS", "Checkpoint", "blob_name", "blob_service", "container_for", "import_archive"]


@dataclass
class BlobState:
    etag: str
    offset: int


CHECKPOINT_KEY = "import archive"  # the key of this importer's checkpoint in the workspace's manifest


class Checkpoint:
    """Per blob (account/container/name): the ETag last seen and the bytes loaded. Read from `stored`
    (the checkpoint committed with the last appended part) when given, else from the JSON file."""

    def __init__(self, path: Path, stored: dict[str, Any] | None = None) -> None:
        self.path = path
        raw: Any = stored
        if raw is None:
            try:
                raw = json.loads(path.read_text())
            except (OSError, ValueError):
                raw = {}
        self.blobs: dict[str, BlobState] = {}
        for key, v in (raw.get("blobs", {}) if isinstance(raw, dict) else {}).items():
            try:
                self.blobs[key] = BlobState(str(v["etag"]), int(v["offset"]))
            except (KeyError, TypeError, ValueError):
                continue

    def as_dict(self) -> dict[str, Any]:
        return {"blobs": {k: {"etag": s.etag, "offset": s.offset} for k, s in sorted(self.blobs.items())}}

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.as_dict(), indent=1))


def blob_service(account_url: str | None, connection_string: str | None, credential: Any = None) -> BlobServiceClient:
    """The account's client: from a connection string, or the URL with `DefaultAzureCredential`."""
    if connection_string:
        client = BlobServiceClient.from_connection_string(connection_string)
        if account_url and account_url.rstrip("/").lower() != client.url.rstrip("/").lower():
            raise ConfigError(
                [f"archive: --account-url {account_url} is not the account of the connection string ({client.url})"]
            )
        return client
    if not account_url:
        raise ConfigError(["archive: give --account-url (or archive.account_url), or a connection string"])
    if credential is None:
        from queries.sources.azure_http import default_credential

        credential = default_credential()
    return BlobServiceClient(account_url, credential=credential)


def ensure_workspace(path: Path) -> None:
    """A workspace with the tables and no rows, for a user whose only data is an archive."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute(schemas.create_table_sql("AzureDiagnostics"))
        con.execute(schemas.create_table_sql("AzureMetrics"))
    finally:
        con.close()


def import_archive(
    service: BlobServiceClient,
    workspace: Path,
    checkpoint_path: Path,
    *,
    since: timedelta = timedelta(days=7),
    containers: Iterable[str] = CONTAINERS,
    clock: Callable[[], float] = time.time,
) -> IngestReport:
    """Load what is new in the account's archive blobs (hours within `since`, or already begun) into
    `workspace` as one appended part. One writer at a time (`queries.filestore.WriterBusy` otherwise)."""
    report = IngestReport()
    now = datetime.fromtimestamp(clock(), UTC)
    received = now.replace(tzinfo=None)
    account = service.account_name or "storage"
    tenant = f"storage:{account}"
    ensure_workspace(workspace)
    log_ = append_log(workspace)
    with WORKSPACE_LOCK, log_.writer_lock(f"import archive ({command_line()})"):
        checkpoint = Checkpoint(checkpoint_path, log_.checkpoint(CHECKPOINT_KEY))
        rows: list[dict[str, Any]] = []
        updates: dict[str, BlobState] = {}
        for container in containers:
            cc = service.get_container_client(container)
            if not cc.exists():
                log.info("archive: no container %s in %s", container, account)
                continue
            for blob in cc.list_blobs(name_starts_with="resourceId="):
                hour = blob_hour(blob.name)
                if hour is None:
                    continue
                key = f"{account}/{container}/{blob.name}"
                state = checkpoint.blobs.get(key)
                etag, size = str(blob.etag), int(blob.size or 0)
                if state is None and hour + timedelta(hours=1) < now - since:
                    continue  # older than the first import reaches back
                if state is not None and state.etag == etag:
                    continue  # unchanged since the last run
                start = state.offset if state is not None else 0
                if size < start:  # rewritten (not an append): read again from the top
                    report.flagged["blob rewritten, read again"] += 1
                    start = 0
                if size == start:
                    updates[key] = BlobState(etag, start)
                    continue
                chunk = cc.get_blob_client(blob.name).download_blob(offset=start, length=size - start).readall()
                report.files += 1
                new, complete = parse_lines(chunk, f"{container}/{blob.name}", start, report, received, tenant)
                rows.extend(new)
                # an incomplete last line keeps the ETag unset, so the next run reads from `start + complete`
                updates[key] = BlobState(etag if complete == len(chunk) else "", start + complete)
        if updates:
            checkpoint.blobs.update(updates)
        if rows or updates:
            # one manifest commits the part and the checkpoint past it (see the module docstring)
            log_.append(as_arrow(rows) if rows else None, checkpoint={CHECKPOINT_KEY: checkpoint.as_dict()})
            report.loaded = len(rows)
            checkpoint.save()
    if report.bad or report.flagged:
        log.warning("%s; first problems: %s", report, "; ".join(report.problems[:3]))
    elif report.loaded:
        log.info("%s", report)
    return report
