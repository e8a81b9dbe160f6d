"""The importer loads archived diagnostic records into the workspace with the seeder's column mapping."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import duckdb_kql
import openai
import pytest
from fakes.doubles import FakeClock

from queries.demo import simulator as sim
from queries.demo import world
from queries.ingest import ingest, parse_time
from queries.sources.embedded import EmbeddedWorkspace, append_log


@contextlib.contextmanager
def view(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The workspace as every process reads it: the seeded file plus its appended parts."""
    ws = EmbeddedWorkspace(path)
    try:
        with ws.reading() as con:
            yield con
    finally:
        ws.close()


KQL = """
AzureDiagnostics
| where Category == "RequestResponse"
| extend p = parse_json(properties_s)
| extend Deployment = tostring(p.modelDeploymentName), Stream = tostring(p.streamType)
| join kind=leftouter (
    AzureDiagnostics
    | where Category == "AzureOpenAIRequestUsage"
    | extend u = parse_json(properties_s)
    | project CorrelationId, Prompt = tolong(u.promptTokens[0]), Generated = tolong(u.generatedTokens[0])
  ) on CorrelationId
| summarize Requests = count(), Throttled = countif(ResultSignature == "429"), Generated = sum(Generated)
    by Deployment, Resource
"""


def _traffic(tmp_path: Path, clock: FakeClock) -> Path:
    archive = tmp_path / "diagnostics" / "sim.jsonl"
    run = sim.start(
        sim.Simulator(archive_path=archive, tpm_override={"chat-gpt4o": 50}, clock=clock, sleep=clock.sleep)
    )
    try:
        c = openai.AzureOpenAI(azure_endpoint=run.url, api_version="2024-10-21", api_key="k", max_retries=0)
        for _ in range(6):
            with contextlib.suppress(openai.RateLimitError):
                c.chat.completions.create(
                    model="chat-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=10
                )
        c.embeddings.create(model="embed-small", input="x")
    finally:
        run.shutdown()
    return archive


def test_loaded_records_answer_kql(tmp_path: Path, clock: FakeClock, workspace: Path) -> None:
    archive = _traffic(tmp_path, clock)
    clock.advance(180)  # Log Analytics receives records a few minutes later
    report = ingest(archive.parent, workspace, tmp_path / "offsets.json", clock=clock)
    lines = archive.read_text().splitlines()
    assert report.loaded == len(lines) and report.bad == 0
    assert len(append_log(workspace).parts()) == 1  # an appended part; the workspace file is untouched
    with view(workspace) as con:
        got = duckdb_kql.df(con, KQL).sort_values("Deployment").reset_index(drop=True)
        row = con.execute(
            "SELECT TenantId, SubscriptionId, ResourceGroup, Resource, ResourceProvider, ResourceType, _ResourceId, "
            "Tenant_s, location_s, event_s, _TimeReceived, TimeGenerated, SourceSystem, Type "
            "FROM AzureDiagnostics WHERE Category = 'RequestResponse' LIMIT 1"
        ).fetchone()
    assert list(got["Deployment"]) == ["chat-gpt4o", "embed-small"]
    gpt = got.iloc[0]
    assert gpt["Resource"] == "CONTOSO-OAI-EASTUS"
    assert gpt["Requests"] == 6 and 1 <= gpt["Throttled"] < 6
    assert gpt["Generated"] == 10 * (6 - gpt["Throttled"])
    assert row is not None
    tenant, sub, rg, res, provider, rtype, rid, tenant_s, loc, event, received, generated, source, typ = row
    assert tenant == world.TENANT_ID
    assert (provider, rtype, source, typ) == ("MICROSOFT.COGNITIVESERVICES", "ACCOUNTS", "Azure", "AzureDiagnostics")
    assert sub == "3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28" and rg == "RG-CONTOSO-AI" and res == "CONTOSO-OAI-EASTUS"
    assert rid == rid.lower() and rid.endswith("/accounts/contoso-oai-eastus")
    assert tenant_s == loc == "eastus" and event == "ShoeboxCallResult"
    assert (received - generated).total_seconds() >= 170


def test_seeder_and_importer_agree_on_columns(
    demo_workspace: Path, tmp_path: Path, clock: FakeClock, workspace: Path
) -> None:
    """The same columns come out non-empty for seeded and imported rows."""
    archive = _traffic(tmp_path, clock)
    ingest(archive, workspace, tmp_path / "offsets.json", clock=clock)
    query = (
        "SELECT * EXCLUDE (properties_s, CorrelationId, TimeGenerated, _TimeReceived, DurationMs, _BilledSize) "
        "FROM AzureDiagnostics WHERE Category = ? AND ResultSignature IN ('200', '') AND Resource = "
        "'CONTOSO-OAI-EASTUS' LIMIT 1"
    )
    for category in ("RequestResponse", "AzureOpenAIRequestUsage"):
        seeded = duckdb.connect(str(demo_workspace), read_only=True)
        try:
            a = seeded.execute(query, [category]).fetchdf().iloc[0].to_dict()
            pa = json.loads(
                seeded.execute(
                    "SELECT properties_s FROM AzureDiagnostics WHERE Category = ? LIMIT 1", [category]
                ).fetchone()[0]
            )  # type: ignore[index]
        finally:
            seeded.close()
        with view(workspace) as ours:
            b = ours.execute(query, [category]).fetchdf().iloc[0].to_dict()
            pb = json.loads(
                ours.execute(
                    "SELECT properties_s FROM AzureDiagnostics WHERE Category = ? LIMIT 1", [category]
                ).fetchone()[0]
            )  # type: ignore[index]
        a.pop("CallerIPAddress")
        b.pop("CallerIPAddress")
        assert a == b, category
        assert list(pa) == list(pb)
        assert [type(v) for v in pa.values()] == [type(v) for v in pb.values()]


def test_bad_lines_are_counted_and_nothing_is_loaded_twice(tmp_path: Path, clock: FakeClock, workspace: Path) -> None:
    archive = _traffic(tmp_path, clock)
    good = archive.read_text().splitlines()
    with archive.open("a") as f:
        f.write("{not json\n")
        f.write(json.dumps({"time": "2026-01-01T00:00:00.0000000Z", "category": "RequestResponse"}) + "\n")
        f.write("[1, 2]\n")
        f.write(good[0][: len(good[0]) // 2])  # a record still being written: no newline yet
    offsets = tmp_path / "offsets.json"
    first = ingest(archive, workspace, offsets, clock=clock)
    assert (first.loaded, first.bad) == (len(good), 3)
    assert any("missing resourceId, operationName" in p for p in first.problems)
    again = ingest(archive, workspace, offsets, clock=clock)
    assert (again.loaded, again.bad) == (0, 0)
    with archive.open("a") as f:  # the writer finishes the line
        f.write(good[0][len(good[0]) // 2 :] + "\n")
    third = ingest(archive, workspace, offsets, clock=clock)
    assert third.loaded == 1
    with view(workspace) as con:
        n = con.execute("SELECT count(*) FROM AzureDiagnostics").fetchone()
    assert n == (len(good) + 1,)
    assert len(append_log(workspace).parts()) == 2  # one part per run that loaded something


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-05-24T12:23:02.4350000Z", "2024-05-24T12:23:02.435000"),
        ("2024-04-17T06:03:30.0000000Z", "2024-04-17T06:03:30"),
        ("2024-04-17T06:03:30Z", "2024-04-17T06:03:30"),
    ],
)
def test_parse_time(text: str, iso: str) -> None:
    assert parse_time(text).isoformat() == iso


def test_a_crash_after_the_part_before_the_offsets_file_loads_nothing_twice(
    tmp_path: Path, clock: FakeClock, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offsets are committed in the manifest that lists the part: losing the offsets file (a run
    killed just after the commit) does not load the same lines again."""
    from queries.ingest import Offsets

    archive = _traffic(tmp_path, clock)
    good = archive.read_text().splitlines()
    offsets = tmp_path / "offsets.json"

    def killed(*_args: object) -> None:
        raise OSError("killed")

    with monkeypatch.context() as m:
        m.setattr(Offsets, "save", killed)
        with pytest.raises(OSError, match="killed"):
            ingest(archive, workspace, offsets, clock=clock)
    assert not offsets.exists()
    assert ingest(archive, workspace, offsets, clock=clock).loaded == 0
    with view(workspace) as con:
        assert con.execute("SELECT count(*) FROM AzureDiagnostics").fetchone() == (len(good),)
