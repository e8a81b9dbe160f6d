"""Logs beside metrics: token counts from the two sources Azure keeps, and whether they agree.

Tokens reach aoai-lens twice: per request in the `AzureOpenAIRequestUsage` log category (what attribution
uses), and per deployment and minute in the platform metrics (`ProcessedPromptTokens`, `GeneratedTokens`,
`TokenTransaction` = their sum), which Azure emits whatever the diagnostic settings say. When an hour's
usage rows go missing (a diagnostic setting changed, an ingestion gap), the metrics still count the
tokens: comparing the two per deployment and hour finds the gap, and names it.

An hour is compared once it is closed and older than `SETTLE` (records arrive minutes late). A
deployment-hour disagrees when the two counts differ by more than the tolerance (5% of the metric count
by default) *and* by more than `MIN_TOKENS`, so a handful of calls the metrics have not caught up with
(the simulator's probes, say) in a quiet hour is not a finding.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from queries.reader import LensLike
from queries.results import QueryResult

TOKEN_METRICS = ["ProcessedPromptTokens", "GeneratedTokens", "TokenTransaction"]
TOLERANCE = 0.05
MIN_TOKENS = 1000
SETTLE = timedelta(minutes=15)
COLUMNS = ["TimeGenerated", "Deployment", "LogTokens", "MetricTokens", "Difference", "DifferencePct", "Agrees"]


def metric_tokens(lens: LensLike, start: datetime, end: datetime, interval: timedelta | None = None) -> QueryResult:
    """Prompt, generated and total tokens per deployment (and time bin) from the metrics API: a long frame
    (TimeStamp, ResourceId, MetricName, ModelDeploymentName, Value)."""
    return lens.metrics(
        TOKEN_METRICS, start=start, end=end, interval=interval, aggregation="Total", split_by=["ModelDeploymentName"]
    )


def tokens_per_deployment(metrics: pd.DataFrame) -> pd.DataFrame:
    """Deployment, PromptTokens, GeneratedTokens, TotalTokens over the whole range, from `metric_tokens`."""
    cols = ["Deployment", "PromptTokens", "GeneratedTokens", "TotalTokens"]
    if metrics.empty:
        return pd.DataFrame(columns=cols)
    wide = metrics.pivot_table(index="ModelDeploymentName", columns="MetricName", values="Value", aggfunc="sum")
    wide = wide.reindex(columns=TOKEN_METRICS, fill_value=0.0).fillna(0.0)
    out = pd.DataFrame(
        {
            "Deployment": wide.index.astype(str),
            "PromptTokens": wide["ProcessedPromptTokens"].to_numpy(),
            "GeneratedTokens": wide["GeneratedTokens"].to_numpy(),
            "TotalTokens": wide["TokenTransaction"].to_numpy(),
        }
    )
    return out.sort_values("TotalTokens", ascending=False).reset_index(drop=True)[cols]


def compare(
    logs: pd.DataFrame, metrics: pd.DataFrame, *, tolerance: float = TOLERANCE, min_tokens: int = MIN_TOKENS
) -> pd.DataFrame:
    """Per deployment and hour: tokens the logs hold (prompt + completion, `tokens_by_deployment` at 1 h
    bins) against the metrics' `TokenTransaction` (`metric_tokens` at 1 h). Disagreements first."""
    log_part = (
        logs.assign(LogTokens=logs["PromptTokens"].fillna(0) + logs["CompletionTokens"].fillna(0))
        .groupby(["TimeGenerated", "Deployment"], as_index=False)["LogTokens"]
        .sum()
        if not logs.empty
        else pd.DataFrame(columns=["TimeGenerated", "Deployment", "LogTokens"])
    )
    total = metrics[metrics["MetricName"] == "TokenTransaction"] if not metrics.empty else metrics
    metric_part = (
        total.rename(
            columns={"TimeStamp": "TimeGenerated", "ModelDeploymentName": "Deployment", "Value": "MetricTokens"}
        )
        .groupby(["TimeGenerated", "Deployment"], as_index=False)["MetricTokens"]
        .sum()
        if not total.empty
        else pd.DataFrame(columns=["TimeGenerated", "Deployment", "MetricTokens"])
    )
    for part in (log_part, metric_part):
        part["TimeGenerated"] = pd.to_datetime(part["TimeGenerated"], utc=True)
        part["Deployment"] = part["Deployment"].astype(str)
    out = log_part.merge(metric_part, on=["TimeGenerated", "Deployment"], how="outer")
    if out.empty:
        return pd.DataFrame(columns=COLUMNS)
    out["LogTokens"] = pd.to_numeric(out["LogTokens"], errors="coerce").fillna(0.0)
    out["MetricTokens"] = pd.to_numeric(out["MetricTokens"], errors="coerce").fillna(0.0)
    out["Difference"] = out["MetricTokens"] - out["LogTokens"]
    base = out[["MetricTokens", "LogTokens"]].max(axis=1)
    out["DifferencePct"] = (100.0 * out["Difference"].abs() / base.where(base > 0)).fillna(0.0).round(2)
    out["Agrees"] = ~((out["Difference"].abs() > tolerance * base) & (out["Difference"].abs() > min_tokens))
    out = out.sort_values(["Agrees", "TimeGenerated", "Deployment"], ascending=[True, False, True])
    return out[COLUMNS].reset_index(drop=True)


def logs_vs_metrics(
    lens: LensLike, start: datetime, end: datetime, *, tolerance: float = TOLERANCE
) -> tuple[pd.DataFrame, list[QueryResult]]:
    """`compare` over the closed hours of [start, end) older than SETTLE, with the results behind it."""
    hour = timedelta(hours=1)
    first = pd.Timestamp(start).ceil("h").to_pydatetime()
    last = pd.Timestamp(end - SETTLE).floor("h").to_pydatetime()
    if last <= first:
        return pd.DataFrame(columns=COLUMNS), []
    logs = lens.run("tokens_by_deployment", start=first, end=last, bin=hour)
    metrics = metric_tokens(lens, first, last, interval=hour)
    results = [logs, metrics]
    if logs.status == "failed" or metrics.status == "failed":
        return pd.DataFrame(columns=COLUMNS), results
    frame = compare(logs.frame, metrics.frame, tolerance=tolerance)
    t = pd.to_datetime(frame["TimeGenerated"], utc=True)
    return frame[(t >= pd.Timestamp(first)) & (t < pd.Timestamp(last))].reset_index(drop=True), results
