"""Token fields in every shape, through the real cost query on the embedded engine: a usage record whose
tokens are plain numbers (or spelled inputTokens / completionTokens / outputTokens) is priced, and one
whose tokens cannot be read is counted, never priced at $0."""

from __future__ import annotations

import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from queries.config import Settings, load_settings
from queries.cost.prices import PriceBook
from queries.cost.report import allocate
from queries.demo import world
from queries.ingest import as_arrow, to_row
from queries.lens import Lens
from queries.sources.embedded import append_log

RESOURCE = next(r for r in world.RESOURCES if r.name == "contoso-oai-eastus")
OID = "1b6f0a52-8c3d-4e71-b2a9-5d0e7f3c8a16"  # mi-support-chat: team support


def records(when: datetime, usage_props: dict[str, object]) -> list[dict[str, object]]:
    cid = str(uuid.uuid4())
    t = when.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    common = {"time": t, "resourceId": RESOURCE.resource_id, "correlationId": cid, "location": RESOURCE.location}
    return [
        {
            **common,
            "category": "RequestResponse",
            "operationName": "ChatCompletions_Create",
            "resultSignature": "200",
            "durationMs": 900,
            "callerIpAddress": "10.0.1.***",
            "properties": {
                "modelDeploymentName": "chat-gpt4o",
                "modelName": "gpt-4o",
                "modelVersion": "2024-11-20",
                "objectId": OID,
                "requestLength": 500,
                "responseLength": 1500,
            },
        },
        {
            **common,
            "category": "AzureOpenAIRequestUsage",
            "operationName": "ChatCompletions_Create",
            "properties": usage_props,
        },
    ]


@pytest.fixture
def workspace(tmp_path: Path, demo_workspace: Path) -> tuple[Settings, datetime]:
    path = tmp_path / "demo.duckdb"
    shutil.copy(demo_workspace, path)
    settings = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(path)})
    hour = (datetime.now(UTC) - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)
    return settings, hour


def _allocate(settings: Settings, hour: datetime):  # type: ignore[no-untyped-def]
    return allocate(Lens.from_settings(settings), settings, hour, hour + timedelta(hours=1))


def _append(settings: Settings, recs: list[dict[str, object]]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [to_row(r, received=now, tenant_id=world.TENANT_ID, size=100) for r in recs]
    log = append_log(settings.demo_path)
    with log.writer_lock("test"):
        log.append(as_arrow(rows))


@pytest.mark.parametrize(
    "props",
    [
        {"promptTokens": 100_000, "generatedTokens": 20_000},  # plain numbers
        {"inputTokens": [100_000], "completionTokens": [20_000]},  # other names, arrays
        {"promptTokens": "100000", "outputTokens": 20_000, "cachedTokens": [0]},  # a string, outputTokens
    ],
)
def test_a_usage_record_in_any_shape_is_priced(workspace: tuple[Settings, datetime], props: dict[str, object]) -> None:
    settings, hour = workspace
    before = _allocate(settings, hour)
    _append(settings, records(hour + timedelta(minutes=20), props))
    after = _allocate(settings, hour)
    mine = lambda r: r.rows[(r.rows["Deployment"] == "chat-gpt4o") & (r.rows["ObjectId"] == OID)]  # noqa: E731
    d_prompt = mine(after)["PromptTokens"].sum() - mine(before)["PromptTokens"].sum()
    d_completion = mine(after)["CompletionTokens"].sum() - mine(before)["CompletionTokens"].sum()
    assert (d_prompt, d_completion) == (100_000, 20_000)
    price = PriceBook.load(settings).lookup("gpt-4o", "2024-11-20", "GlobalStandard", RESOURCE.location)
    assert price is not None and price.input_per_1m and price.output_per_1m
    want = 0.1 * price.input_per_1m + 0.02 * price.output_per_1m
    assert after.total - before.total == pytest.approx(want, rel=1e-6)
    assert after.health.tokens.unreadable_usage == 0


def test_a_usage_record_whose_tokens_cannot_be_read_is_counted_not_priced_at_zero(
    workspace: tuple[Settings, datetime],
) -> None:
    settings, hour = workspace
    _append(settings, records(hour + timedelta(minutes=25), {"promptTokens": "n/a", "note": "tokens elsewhere"}))
    r = _allocate(settings, hour)
    assert r.health.tokens.unreadable_usage == 1
    assert r.health.tokens.unmatched_requests >= 1
    assert any("could not be read" in n for n in r.notices)
