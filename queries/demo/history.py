"""The probe traffic a seeded demo workspace already holds, as calls (what the backfill turns into probe
results): the probe identity's RequestResponse records joined with their usage records.

Read from the seeded file only (read-only, like `workspace_info`), never from records ingested later:
the backfill tells the seeded month's story; the scheduler writes what happens from then on.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from queries.demo import world

COLUMNS = [
    "ts",
    "deployment",
    "model",
    "status",
    "duration_ms",
    "stream",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "request_id",
]


def probe_calls(path: Path, object_id: str = world.PROBE_OBJECT_ID) -> pd.DataFrame:
    """One row per probe call in the seeded workspace, oldest first: start time (epoch seconds),
    deployment, model, HTTP status, duration, streamed or not, tokens (successful calls), and the
    CorrelationId the diagnostic logs carry (what a live probe records as its request id)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        frame = con.execute(
            """
            WITH calls AS (
              SELECT CorrelationId, TimeGenerated, DurationMs, ResultSignature,
                     json_extract_string(properties_s, '$.modelDeploymentName') AS deployment,
                     json_extract_string(properties_s, '$.modelName') AS model,
                     json_extract_string(properties_s, '$.streamType') = 'Streaming' AS stream
              FROM AzureDiagnostics
              WHERE Category = 'RequestResponse' AND json_extract_string(properties_s, '$.objectId') = ?
            ),
            usage AS (
              SELECT CorrelationId,
                     CAST(json_extract(properties_s, '$.promptTokens[0]') AS BIGINT) AS prompt_tokens,
                     CAST(json_extract(properties_s, '$.cachedTokens[0]') AS BIGINT) AS cached_tokens,
                     CAST(json_extract(properties_s, '$.generatedTokens[0]') AS BIGINT) AS completion_tokens
              FROM AzureDiagnostics
              WHERE Category = 'AzureOpenAIRequestUsage' AND CorrelationId IN (SELECT CorrelationId FROM calls)
            )
            SELECT epoch_ms(c.TimeGenerated) / 1000.0 - c.DurationMs / 1000.0 AS ts,
                   c.deployment, c.model, CAST(c.ResultSignature AS INTEGER) AS status,
                   CAST(c.DurationMs AS DOUBLE) AS duration_ms, c.stream,
                   u.prompt_tokens, u.cached_tokens, u.completion_tokens, c.CorrelationId AS request_id
            FROM calls c LEFT JOIN usage u USING (CorrelationId)
            ORDER BY ts, deployment
            """,
            [object_id],
        ).df()
    finally:
        con.close()
    return frame[COLUMNS]
