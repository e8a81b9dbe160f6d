"""The demo workspace: Log Analytics' table shapes and a world that behaves like real traffic."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from queries import schemas
from queries.demo import world
from queries.demo.seed import seed
from queries.schemas import DOTNET_EPOCH_TICKS

DUCK_TO_KUSTO = {"VARCHAR": "string", "TIMESTAMP": "datetime", "BIGINT": "long", "DOUBLE": "real"}


@pytest.fixture(scope="module")
def con(demo_workspace: Path):
    c = duckdb.connect(str(demo_workspace), read_only=True)
    c.execute("SET TimeZone = 'UTC'")
    yield c
    c.close()


def q(con, sql: str):
    return con.execute(sql).fetchall()


@pytest.mark.parametrize("table", ["AzureDiagnostics", "AzureMetrics"])
def test_tables_carry_the_declared_columns_and_types(con, table: str) -> None:
    described = [(name, DUCK_TO_KUSTO.get(typ, typ)) for name, typ, *_ in q(con, f'DESCRIBE "{table}"')]
    assert described == list(schemas.TABLES[table].items())


def test_management_and_metrics_stores_exist_with_their_shapes(con) -> None:
    deployments = [json.loads(b) for (b,) in q(con, "SELECT Body FROM MgmtDeployments")]
    assert {d["name"] for d in deployments} == {d.name for d in world.DEPLOYMENTS}
    for d in deployments:
        assert d["type"] == "Microsoft.CognitiveServices/accounts/deployments"
        assert set(d["sku"]) == {"name", "capacity"}
        assert {"name", "version", "format"} <= set(d["properties"]["model"])
    usages = [json.loads(b) for (b,) in q(con, "SELECT Body FROM MgmtUsages")]
    names = {u["name"]["value"] for body in usages for u in body["value"]}
    assert "OpenAI.GlobalStandard.gpt-4o" in names
    dims = q(con, "SELECT DISTINCT MetricName FROM MetricsApi")
    assert {"AzureOpenAIRequests", "TokenTransaction", "ProcessedPromptTokens", "GeneratedTokens"} <= {
        d for (d,) in dims
    }
    # token metrics carry the model in FeatureName, not ModelName (as Azure does)
    row = q(
        con,
        "SELECT count(*) FROM MetricsApi WHERE MetricName = 'TokenTransaction' AND (ModelName IS NOT NULL OR FeatureName IS NULL)",
    )
    assert row[0][0] == 0


def test_usage_rows_join_to_successful_request_rows(con) -> None:
    usage, joined_ok, joined_other = q(
        con,
        """
        SELECT count(*),
               count(*) FILTER (WHERE r.ResultSignature = '200'),
               count(*) FILTER (WHERE r.ResultSignature IS NOT NULL AND r.ResultSignature <> '200')
        FROM AzureDiagnostics u
        LEFT JOIN (SELECT CorrelationId, ResultSignature FROM AzureDiagnostics WHERE Category = 'RequestResponse') r
          ON r.CorrelationId = u.CorrelationId
        WHERE u.Category = 'AzureOpenAIRequestUsage'
        """,
    )[0]
    assert usage > 1000
    assert joined_ok == usage and joined_other == 0
    info = dict(q(con, "SELECT Key, Value FROM WorkspaceInfo"))
    without = """FROM AzureDiagnostics r WHERE r.Category = 'RequestResponse' AND r.ResultSignature = '200'
           AND r.CorrelationId NOT IN (SELECT CorrelationId FROM AzureDiagnostics WHERE Category = 'AzureOpenAIRequestUsage')"""
    planted = world.feature(info["no_usage_feature"]).object_id
    ok_without_usage = q(
        con,
        f"""SELECT DISTINCT json_extract_string(r.properties_s, '$.modelDeploymentName'), date_trunc('hour', r.TimeGenerated)
           {without} AND json_extract_string(r.properties_s, '$.objectId') <> '{planted}'""",
    )
    # besides the planted streams without include_usage: one hour of one deployment whose usage rows never arrived
    gap = datetime.fromisoformat(info["usage_gap_hour"].removesuffix("Z"))
    assert ok_without_usage == [(info["usage_gap_deployment"], gap)]
    # the planted streams: all streamed, on rag-gpt41, every one of them without its usage row
    streams = q(
        con,
        f"""SELECT json_extract_string(r.properties_s, '$.modelDeploymentName'), json_extract_string(r.properties_s, '$.streamType'),
                  count(*) {without} AND json_extract_string(r.properties_s, '$.objectId') = '{planted}'
           AND date_trunc('hour', r.TimeGenerated) <> TIMESTAMP '{gap:%Y-%m-%d %H:%M:%S}' GROUP BY ALL""",
    )
    assert [(d, st) for d, st, _ in streams] == [("rag-gpt41", "Streaming")]
    planted_calls = int(info["no_usage_calls"])  # one an hour: at most two end in the gap hour
    assert planted_calls - 2 <= streams[0][2] <= planted_calls and planted_calls > 100
    dup = q(
        con, "SELECT count(*) - count(DISTINCT CorrelationId) FROM AzureDiagnostics WHERE Category = 'RequestResponse'"
    )
    assert dup[0][0] == 0


def test_request_rows_look_like_azure(con) -> None:
    rows = con.execute(
        """SELECT ResourceProvider, ResourceType, ResultSignature, CallerIPAddress, properties_s, DurationMs,
                  location_s, event_s, ResourceId, _ResourceId, TimeGenerated, _TimeReceived
           FROM AzureDiagnostics WHERE Category = 'RequestResponse' USING SAMPLE 300 ROWS"""
    ).fetchall()
    for prov, rtype, sig, ip, props, dur, loc, event, rid, rid_lower, tg, received in rows:
        assert prov == "MICROSOFT.COGNITIVESERVICES" and rtype == "ACCOUNTS"
        assert isinstance(sig, str) and sig.isdigit()
        assert ip.endswith(".***") and ip.count(".") == 3
        p = json.loads(props)
        assert set(p) == {
            "apiName",
            "requestTime",
            "requestLength",
            "responseTime",
            "responseLength",
            "objectId",
            "streamType",
            "modelDeploymentName",
            "modelName",
            "modelVersion",
        }
        assert p["apiName"].startswith("Azure OpenAI API version ")
        assert p["streamType"] in ("Streaming", "Non-Streaming")
        assert (p["responseTime"] - p["requestTime"]) / 10_000 == dur  # .NET ticks agree with DurationMs
        start = datetime(1970, 1, 1) + timedelta(microseconds=(p["requestTime"] - DOTNET_EPOCH_TICKS) // 10)
        assert abs((tg - start).total_seconds() * 1000 - dur) < 2
        assert loc in {r.location for r in world.RESOURCES}
        assert event == "ShoeboxCallResult"
        assert rid == rid.upper() and rid_lower == rid.lower()
        assert received > tg


def test_the_world_has_what_the_dashboard_needs_to_show(con) -> None:
    per_dep = dict(
        q(
            con,
            """SELECT json_extract_string(properties_s, '$.modelDeploymentName'), count(*)
                              FROM AzureDiagnostics WHERE Category = 'RequestResponse' GROUP BY ALL""",
        )
    )
    # every deployment, plus the retired one a forgotten client still calls (404s)
    assert set(per_dep) == {d.name for d in world.DEPLOYMENTS} | {world.RETIRED_DEPLOYMENT[0]}
    assert len({r.location for r in world.RESOURCES}) >= 2 and len(world.RESOURCES) >= 3
    assert {d.sku for d in world.DEPLOYMENTS} >= {
        "GlobalStandard",
        "DataZoneStandard",
        "Standard",
        "GlobalProvisionedManaged",
        "GlobalBatch",
    }
    statuses = dict(
        q(con, "SELECT ResultSignature, count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse' GROUP BY ALL")
    )
    assert statuses.get("429", 0) > 50, "bursts over TPM/RPM give 429s"
    assert statuses.get("400", 0) > 5, "content-filter 400s"
    assert statuses.get("500", 0) + statuses.get("503", 0) > 0, "a 5xx incident"
    ops = dict(
        q(con, "SELECT OperationName, count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse' GROUP BY ALL")
    )
    assert ops.get("embeddings_create", 0) > 100 and ops.get("ChatCompletions_Create", 0) > 100
    streams = dict(
        q(
            con,
            """SELECT json_extract_string(properties_s, '$.streamType'), count(*) FROM AzureDiagnostics
                             WHERE Category = 'RequestResponse' GROUP BY ALL""",
        )
    )
    assert streams.get("Streaming", 0) > 100 and streams.get("Non-Streaming", 0) > 100
    callers = dict(
        q(
            con,
            """SELECT json_extract_string(properties_s, '$.objectId'), count(*) FROM AzureDiagnostics
                             WHERE Category = 'RequestResponse' GROUP BY ALL""",
        )
    )
    assert "" in callers, "API-key callers have an empty objectId"
    assert world.PROBE_OBJECT_ID in callers
    features = {f.object_id for f in world.FEATURES if f.object_id}
    assert len(features & set(callers)) >= 6 and len({f.team for f in world.FEATURES}) >= 3
    # one deployment goes quiet: nothing in its last days
    quiet = next(d for d in world.DEPLOYMENTS if d.quiet_after_days)
    last = q(
        con,
        f"""SELECT max(TimeGenerated) FROM AzureDiagnostics
                      WHERE json_extract_string(properties_s, '$.modelDeploymentName') = '{quiet.name}'""",
    )[0][0]
    newest = q(con, "SELECT max(TimeGenerated) FROM AzureDiagnostics")[0][0]
    assert newest - last > timedelta(days=quiet.quiet_after_days - 0.1)


def test_daily_and_weekly_rhythm(con) -> None:
    by_hour = dict(
        q(
            con,
            """SELECT hour(TimeGenerated), count(*) FROM AzureDiagnostics
                             WHERE Category = 'RequestResponse'
                               AND json_extract_string(properties_s, '$.objectId') = '3d8b2c74-ae5f-4093-94cb-7f2a9b5eac38'
                             GROUP BY ALL""",
        )
    )
    assert by_hour.get(14, 0) > 3 * by_hour.get(3, 0)
    by_day = dict(
        q(
            con,
            """SELECT isodow(TimeGenerated) >= 6, count(*) / count(DISTINCT date_trunc('day', TimeGenerated))
                            FROM AzureDiagnostics WHERE Category = 'RequestResponse'
                              AND json_extract_string(properties_s, '$.objectId') = '3d8b2c74-ae5f-4093-94cb-7f2a9b5eac38'
                            GROUP BY ALL""",
        )
    )
    assert by_day[False] > 1.8 * by_day[True]


def test_latency_grows_with_output_and_bytes_follow_tokens(con) -> None:
    corr_latency, corr_bytes = q(
        con,
        """
        SELECT corr(r.DurationMs, CAST(json_extract(u.properties_s, '$.generatedTokens[0]') AS DOUBLE)),
               corr(CAST(json_extract(r.properties_s, '$.requestLength') AS DOUBLE),
                    CAST(json_extract(u.properties_s, '$.promptTokens[0]') AS DOUBLE))
        FROM AzureDiagnostics r JOIN AzureDiagnostics u ON u.CorrelationId = r.CorrelationId
        WHERE r.Category = 'RequestResponse' AND u.Category = 'AzureOpenAIRequestUsage'
          AND json_extract_string(r.properties_s, '$.modelDeploymentName') = 'chat-gpt4o'
        """,
    )[0]
    assert corr_latency > 0.6
    assert corr_bytes > 0.95


def _digest(path: Path) -> str:
    c = duckdb.connect(str(path), read_only=True)
    try:
        h = hashlib.sha256()
        for table in ("AzureDiagnostics", "AzureMetrics", "MetricsApi", "MgmtDeployments"):
            for row in c.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall():
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        c.close()


def test_same_seed_gives_the_same_data(tmp_path: Path) -> None:
    end = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    a, b, c = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "c.duckdb"
    ra = seed(a, days=2, requests_per_day=400, seed=11, end=end)
    rb = seed(b, days=2, requests_per_day=400, seed=11, end=end)
    rc = seed(c, days=2, requests_per_day=400, seed=12, end=end)
    assert ra == rb
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c) and rc["requests"] > 0


def test_seed_is_sized_by_days_and_requests_per_day(tmp_path: Path) -> None:
    end = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    seed(tmp_path / "s.duckdb", days=2, requests_per_day=500, seed=1, end=end)
    seed(tmp_path / "l.duckdb", days=4, requests_per_day=2000, seed=1, end=end)
    counts = {}
    for name in ("s", "l"):
        c = duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True)
        # a steady feature (no bursts): its volume follows days x requests-per-day
        counts[name] = c.execute(
            """SELECT count(*) FROM AzureDiagnostics WHERE Category = 'RequestResponse'
               AND json_extract_string(properties_s, '$.objectId') = '3d8b2c74-ae5f-4093-94cb-7f2a9b5eac38'"""
        ).fetchall()[0][0]
        first, last = c.execute("SELECT min(TimeGenerated), max(TimeGenerated) FROM AzureDiagnostics").fetchall()[0]
        c.close()
    assert 5 < counts["l"] / counts["s"] < 11
    assert last <= end.replace(tzinfo=None)  # nothing after "now"
    assert (last - first) > timedelta(days=3.5)
