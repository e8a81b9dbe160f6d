"""Logs beside metrics: token counts per deployment and hour compared by hand, and the demo's planted
gap (an hour of rag-gpt41 whose usage rows never arrived) found and named."""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd

from queries.agreement import compare, logs_vs_metrics, tokens_per_deployment
from queries.config import Settings
from queries.lens import Lens

H = pd.to_datetime(["2026-11-20T10:00Z", "2026-11-20T11:00Z"])


def logs(rows: list[tuple[int, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"TimeGenerated": H[h], "Deployment": d, "PromptTokens": p, "CompletionTokens": c} for h, d, p, c in rows]
    )


def metrics(rows: list[tuple[int, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"TimeStamp": H[h], "ResourceId": "/r", "MetricName": m, "ModelDeploymentName": d, "Value": v}
            for h, d, m, v in rows
        ]
    )


def test_hours_that_disagree_are_named() -> None:
    lg = logs([(0, "a", 8000, 2000), (1, "a", 9000, 1000), (0, "b", 1500, 0), (1, "b", 500, 0)])
    mt = metrics(
        [
            (0, "a", "TokenTransaction", 10_000),  # agrees exactly
            (1, "a", "TokenTransaction", 10_600),  # 600 apart: 5.7%, but under 1,000 tokens: agrees
            (0, "b", "TokenTransaction", 1_500),
            (1, "b", "TokenTransaction", 40_500),  # 40,000 tokens the logs do not have
            (1, "c", "TokenTransaction", 2_000),  # no usage rows at all this hour
            (1, "c", "ProcessedPromptTokens", 2_000),  # the other token metrics are not summed in
        ]
    )
    out = compare(lg, mt)
    bad = out[~out["Agrees"]]
    assert list(zip(bad["Deployment"], bad["TimeGenerated"], strict=True)) == [("b", H[1]), ("c", H[1])]
    row = bad.iloc[0]
    assert (row["LogTokens"], row["MetricTokens"], row["Difference"]) == (500, 40_500, 40_000)
    assert row["DifferencePct"] == round(100 * 40_000 / 40_500, 2)
    assert len(out) == 5 and out["Agrees"].sum() == 3
    # a tighter tolerance with no floor flags the 600-token hour too
    strict = compare(lg, mt, tolerance=0.01, min_tokens=0)
    assert ("a", H[1]) in set(
        zip(strict.loc[~strict["Agrees"], "Deployment"], strict.loc[~strict["Agrees"], "TimeGenerated"], strict=True)
    )


def test_metric_tokens_per_deployment() -> None:
    mt = metrics(
        [
            (0, "a", "ProcessedPromptTokens", 700),
            (1, "a", "ProcessedPromptTokens", 300),
            (0, "a", "GeneratedTokens", 50),
            (0, "a", "TokenTransaction", 750),
            (1, "a", "TokenTransaction", 300),
            (0, "e", "ProcessedPromptTokens", 90),
            (0, "e", "TokenTransaction", 90),
        ]
    )
    out = tokens_per_deployment(mt)
    assert out.to_dict("records") == [
        {"Deployment": "a", "PromptTokens": 1000.0, "GeneratedTokens": 50.0, "TotalTokens": 1050.0},
        {"Deployment": "e", "PromptTokens": 90.0, "GeneratedTokens": 0.0, "TotalTokens": 90.0},
    ]


def test_the_demo_gap_is_the_only_disagreement(demo_settings: Settings, demo_end: datetime) -> None:
    with duckdb.connect(str(demo_settings.demo_path), read_only=True) as con:
        info = dict(con.execute("SELECT Key, Value FROM WorkspaceInfo").fetchall())
    gap_hour = pd.Timestamp(info["usage_gap_hour"])
    lens = Lens.from_settings(demo_settings)
    frame, results = logs_vs_metrics(lens, demo_end - timedelta(days=7), demo_end)
    assert all(r.status == "ok" for r in results)
    assert len(frame) > 100  # every deployment-hour with tokens was compared
    bad = frame[~frame["Agrees"]]
    assert list(zip(bad["Deployment"], bad["TimeGenerated"], strict=True)) == [(info["usage_gap_deployment"], gap_hour)]
    assert bad.iloc[0]["LogTokens"] == 0 and bad.iloc[0]["MetricTokens"] > 1000


def test_the_documented_tolerance_is_the_code() -> None:
    from pathlib import Path

    from queries.agreement import MIN_TOKENS, TOLERANCE

    text = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    assert f"more than {TOLERANCE:.0%} and {MIN_TOKENS:,} tokens" in text
