"""Importing diagnostic-settings archives from Blob Storage: the real azure-storage-blob client against
Azurite, append blobs in the layout diagnostic settings write, read incrementally with a checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from azure.storage.blob import BlobServiceClient, BlobType
from fakes.azurite_archive import Azurite
from fakes.doubles import FakeClock

from queries.archive import Checkpoint, blob_name, blob_service, container_for, import_archive
from queries.demo import world
from queries.sources.embedded import append_log

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
RES = world.RESOURCES[0]
OTHER = world.RESOURCES[1]


@pytest.fixture
def azurite(tmp_path: Path) -> Iterator[Azurite]:
    with Azurite(tmp_path / "azurite") as a:
        yield a


def record(res: world.Resource, when: datetime, category: str = "RequestResponse", **extra: object) -> dict:
    return {
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "resourceId": res.resource_id.upper(),
        "category": category,
        "operationName": "ChatCompletions_Create",
        "correlationId": str(uuid.uuid4()),
        "durationMs": 120,
        "resultSignature": "200",
        "location": res.location,
        "properties": {"modelDeploymentName": "chat-gpt4o", "modelName": "gpt-4o", "objectId": ""},
        **extra,
    }


def lines(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


class Archive:
    """Writes blobs the way a diagnostic setting does: append blobs, appended during the hour."""

    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service

    def append(self, res: world.Resource, hour: datetime, data: bytes, category: str = "RequestResponse") -> str:
        cc = self.service.get_container_client(container_for(category))
        if not cc.exists():
            cc.create_container()
        name = blob_name(res.resource_id, hour)
        bc = cc.get_blob_client(name)
        if not bc.exists():
            bc.create_append_blob()
        bc.append_block(data)
        assert bc.get_blob_properties().blob_type == BlobType.APPENDBLOB
        return name


def loaded(workspace: Path) -> list[dict]:
    rows: list[dict] = []
    for part in append_log(workspace).parts():
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def run(azurite: Azurite, tmp_path: Path, clock: FakeClock | None = None, since: timedelta = timedelta(days=7)):
    service = blob_service(None, azurite.connection_string)
    return import_archive(
        service,
        tmp_path / "ws.duckdb",
        tmp_path / "checkpoint.json",
        since=since,
        clock=clock or FakeClock(NOW.timestamp()),
    )


def test_appended_blob_is_read_from_where_it_stopped_without_duplicates(azurite: Azurite, tmp_path: Path) -> None:
    archive = Archive(BlobServiceClient.from_connection_string(azurite.connection_string))
    hour = NOW.replace(minute=0)
    first = [record(RES, hour + timedelta(minutes=i)) for i in range(3)]
    usage = [record(RES, hour, "AzureOpenAIRequestUsage", properties={"modelDeploymentName": "chat-gpt4o"})]
    archive.append(RES, hour, lines(first))
    archive.append(RES, hour, lines(usage), category="AzureOpenAIRequestUsage")
    archive.append(OTHER, hour - timedelta(hours=1), lines([record(OTHER, hour - timedelta(minutes=30))]))

    r1 = run(azurite, tmp_path)
    assert (r1.loaded, r1.files, r1.bad) == (5, 3, 0)
    rows = loaded(tmp_path / "ws.duckdb")
    assert sorted(r["Category"] for r in rows) == ["AzureOpenAIRequestUsage"] + ["RequestResponse"] * 4
    assert {r["Resource"] for r in rows} == {RES.name.upper(), OTHER.name.upper()}
    assert {r["TenantId"] for r in rows} == {"storage:devstoreaccount1"}

    again = run(azurite, tmp_path)
    assert (again.loaded, again.files) == (0, 0)  # unchanged ETags: not even downloaded

    more = [record(RES, hour + timedelta(minutes=10 + i)) for i in range(2)]
    archive.append(RES, hour, lines(more))
    r3 = run(azurite, tmp_path)
    assert (r3.loaded, r3.files) == (2, 1)
    ids = [r["CorrelationId"] for r in loaded(tmp_path / "ws.duckdb")]
    assert len(ids) == len(set(ids)) == 7
    assert set(ids) >= {r["correlationId"] for r in first + more + usage}


def test_a_half_written_line_waits_and_bad_lines_are_counted_by_reason(azurite: Azurite, tmp_path: Path) -> None:
    archive = Archive(BlobServiceClient.from_connection_string(azurite.connection_string))
    hour = NOW.replace(minute=0)
    whole = lines([record(RES, hour + timedelta(minutes=1))])
    last = lines([record(RES, hour + timedelta(minutes=2))])
    bad = b"not json\n" + lines([{"time": "x"}]) + lines([record(RES, hour, resourceId="/nope")])
    archive.append(RES, hour, whole + bad + last[:20])
    r1 = run(azurite, tmp_path)
    assert r1.loaded == 1 and r1.bad == 3
    assert dict(r1.skipped) == {"not JSON": 1, "missing fields": 1, "bad resourceId": 1}
    archive.append(RES, hour, last[20:])
    r2 = run(azurite, tmp_path)
    assert (r2.loaded, r2.bad) == (1, 0)  # the rest of the line, once; the bad lines are not read again
    assert len(loaded(tmp_path / "ws.duckdb")) == 2


def test_the_first_import_reaches_back_only_as_far_as_since(azurite: Azurite, tmp_path: Path) -> None:
    archive = Archive(BlobServiceClient.from_connection_string(azurite.connection_string))
    old = NOW.replace(minute=0) - timedelta(days=3)
    archive.append(RES, old, lines([record(RES, old)]))
    archive.append(RES, NOW.replace(minute=0), lines([record(RES, NOW)]))
    assert run(azurite, tmp_path, since=timedelta(days=1)).loaded == 1
    assert run(azurite, tmp_path, since=timedelta(days=7)).loaded == 1  # the older hour, now in reach; once


def test_cli_import_survives_a_restart(azurite: Azurite, tmp_path: Path) -> None:
    """Two separate processes (`aoai-lens import archive`): the second reads only what was appended
    after the first, from the checkpoint on disk; the connection string never reaches the output."""
    archive = Archive(BlobServiceClient.from_connection_string(azurite.connection_string))
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    archive.append(RES, hour, lines([record(RES, hour), record(RES, hour)]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOAI_LENS_")}
    env.update(
        AOAI_LENS_DATA_DIR=str(tmp_path / "data"),
        AOAI_LENS_ARCHIVE__CONNECTION_STRING_FILE=str(tmp_path / "cs.txt"),
    )
    (tmp_path / "cs.txt").write_text(azurite.connection_string)
    cmd = [sys.executable, "-m", "dashboard.cli", "import", "archive", "--account-url", azurite.account_url]

    def cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    p1 = cli()
    assert p1.returncode == 0, p1.stderr
    assert "2 records loaded" in p1.stdout
    checkpoint = Checkpoint(tmp_path / "data" / "archive-checkpoint.json")
    [(key, state)] = checkpoint.blobs.items()
    assert key.endswith(blob_name(RES.resource_id, hour)) and state.offset > 0 and state.etag
    archive.append(RES, hour, lines([record(RES, hour)]))
    p2 = cli()
    assert p2.returncode == 0, p2.stderr
    assert "1 records loaded" in p2.stdout
    p3 = cli()
    assert "0 records loaded" in p3.stdout
    assert len(loaded(tmp_path / "data" / "demo.duckdb")) == 3
    for p in (p1, p2, p3):
        assert "AccountKey" not in p.stdout + p.stderr and azurite.connection_string not in p.stdout + p.stderr


def test_an_account_url_that_is_not_the_connection_strings_is_refused(azurite: Azurite) -> None:
    from queries.errors import ConfigError

    with pytest.raises(ConfigError, match="not the account"):
        blob_service("https://other.blob.core.windows.net", azurite.connection_string)


def test_the_simulator_writes_the_storage_layout_and_the_importer_reads_it(tmp_path: Path) -> None:
    """What the simulator writes locally is what a diagnostic setting writes to storage: uploaded as
    append blobs unchanged, the importer reads it; locally, the ingestion job reads the same files."""
    from queries.archive_layout import blob_hour
    from queries.demo import simulator as sim

    clock = FakeClock(NOW.timestamp())
    s = sim.Simulator(archive_dir=tmp_path / "diagnostics", clock=clock, sleep=clock.sleep)
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}).encode()
    status, _headers, _body = s.handle(
        "POST",
        "/openai/deployments/chat-gpt4o/chat/completions?api-version=2024-10-21",
        {"api-key": "k"},
        body,
        "10.0.0.9",
    )
    assert status == 200
    files = sorted((tmp_path / "diagnostics").rglob("PT1H.json"))
    rel = [f.relative_to(tmp_path / "diagnostics").as_posix() for f in files]
    assert [r.split("/", 1)[0] for r in rel] == [
        "insights-logs-azureopenairequestusage",
        "insights-logs-requestresponse",
    ]
    for r in rel:
        assert "/resourceId=/SUBSCRIPTIONS/" in "/" + r and blob_hour(r) == NOW.replace(minute=0)
    # the local ingestion job reads the same files
    from fakes.doubles import empty_workspace

    from queries.ingest import ingest

    ws = empty_workspace(tmp_path / "ws.duckdb")
    report = ingest(tmp_path / "diagnostics", ws, tmp_path / "offsets.json", clock=clock)
    assert (report.loaded, report.files, report.bad) == (2, 2, 0)


def test_the_scheduler_declares_the_archive_job_once_an_account_is_configured(tmp_path: Path) -> None:
    from alerts.scheduler import job_specs
    from queries.config import load_settings

    plain = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})
    assert "archive" not in [j["id"] for j in job_specs(plain)]
    configured = load_settings(
        environ={
            "AOAI_LENS_DATA_DIR": str(tmp_path),
            "AOAI_LENS_ARCHIVE__ACCOUNT_URL": "https://acct.blob.core.windows.net",
        }
    )
    [job] = [j for j in job_specs(configured) if j["id"] == "archive"]
    assert job["trigger"].interval.total_seconds() == 300


def test_a_reasoning_model_reports_reasoning_tokens_in_usage_and_in_the_usage_record(tmp_path: Path) -> None:
    """o4-mini: the answer's usage counts reasoning tokens inside completion_tokens (billed as output),
    and the AzureOpenAIRequestUsage record carries `reasoningTokens` with generatedTokens including them."""
    from queries.demo import simulator as sim

    clock = FakeClock(NOW.timestamp())
    s = sim.Simulator(archive_dir=tmp_path / "d", clock=clock, sleep=clock.sleep)
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 5}).encode()
    status, _h, raw = s.handle(
        "POST",
        "/openai/deployments/agent-o4-mini/chat/completions?api-version=2024-10-21",
        {"api-key": "k"},
        body,
        "10.0.0.9",
    )
    assert status == 200
    usage = json.loads(raw)["usage"]  # type: ignore[arg-type]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning == sim.REASONING_TOKENS and usage["completion_tokens"] == 5 + reasoning
    [f] = (tmp_path / "d" / "insights-logs-azureopenairequestusage").rglob("PT1H.json")
    props = json.loads(f.read_text().splitlines()[0])["properties"]
    assert props["reasoningTokens"] == [reasoning] and props["generatedTokens"] == [5 + reasoning]


def test_a_crash_between_a_part_and_its_checkpoint_loads_nothing_twice(
    azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The part and the checkpoint past it are committed by one manifest: a run killed after writing the
    part but before committing leaves nothing visible (the next run loads those records once), and one
    killed after committing but before the checkpoint file is written loads nothing again."""
    from queries.filestore import AppendLog

    archive = Archive(BlobServiceClient.from_connection_string(azurite.connection_string))
    hour = NOW.replace(minute=0)
    archive.append(RES, hour, lines([record(RES, hour + timedelta(minutes=i)) for i in range(3)]))
    parts_dir = append_log(tmp_path / "ws.duckdb").dir

    def killed(*_args: object, **_kwargs: object) -> None:
        raise OSError("killed")

    # 1. killed between writing the part and committing its manifest
    with monkeypatch.context() as m:
        m.setattr(AppendLog, "_write_manifest", killed)
        with pytest.raises(OSError, match="killed"):
            run(azurite, tmp_path)
    assert len(list(parts_dir.glob("part-*.parquet"))) == 1 and loaded(tmp_path / "ws.duckdb") == []
    assert run(azurite, tmp_path).loaded == 3
    assert len(loaded(tmp_path / "ws.duckdb")) == 3

    # 2. killed after the commit, before the checkpoint file is written
    archive.append(RES, hour, lines([record(RES, hour + timedelta(minutes=10 + i)) for i in range(2)]))
    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "save", killed)
        with pytest.raises(OSError, match="killed"):
            run(azurite, tmp_path)
    assert run(azurite, tmp_path).loaded == 0
    ids = [r["CorrelationId"] for r in loaded(tmp_path / "ws.duckdb")]
    assert len(ids) == len(set(ids)) == 5

    # the part the first crash left behind is never read, and is deleted once past the grace period
    orphans = [p for p in parts_dir.glob("part-*.parquet") if p not in append_log(tmp_path / "ws.duckdb").parts()]
    assert len(orphans) == 1
    monkeypatch.setattr(AppendLog, "GRACE_S", 0.0)
    archive.append(RES, hour, lines([record(RES, hour + timedelta(minutes=20))]))
    assert run(azurite, tmp_path).loaded == 1
    assert not orphans[0].exists() and len(loaded(tmp_path / "ws.duckdb")) == 6
