"""The frames the alert rules judge, fetched through the query layer (queries.api.Lens).

The 429 and 5xx rules use the catalogue query `requests_by_status`. The latency, quota and no-data rules
use the KQL bodies below, rendered by the query layer's renderer (the one place values become KQL) and
run by the configured logs source, so they run unchanged on the demo workspace and on Log Analytics.
TODO(lead): these three bodies could move into queries/kql/ as catalogue files once the catalogue
owner wants them there; only `_run_body` would change.

Cost-based rules read a frame of cost per period, team and feature (TimeGenerated, Team, Feature,
CostUsd) from `queries.cost` when it offers one (`cost_frame(settings, start, end)`); until then those
rules report "no cost data" and change no state.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

log = logging.getLogger("aoai_lens.alerts.data")

LATENCY_KQL = """
AzureDiagnostics
| where TimeGenerated between (_start .. _end)
| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse" and ResultSignature == "200"
| extend Deployment = tostring(parse_json(properties_s).modelDeploymentName)
| summarize P95Ms = percentile(DurationMs, 95), Requests = count() by Deployment
"""

PEAK_TPM_KQL = """
AzureDiagnostics
| where TimeGenerated between (_start .. _end)
| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "AzureOpenAIRequestUsage"
| extend p = parse_json(properties_s)
| extend Deployment = tostring(p.modelDeploymentName), Tokens = tolong(p.promptTokens[0]) + tolong(p.generatedTokens[0])
| summarize MinuteTokens = sum(Tokens) by Deployment, Minute = bin(TimeGenerated, 1m)
| summarize PeakTpm = max(MinuteTokens) by Deployment
"""

LAST_SEEN_KQL = """
AzureDiagnostics
| where TimeGenerated between (_start .. _end)
| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES"
| summarize LastSeen = max(TimeGenerated) by Resource
"""


class DataUnavailable(RuntimeError):
    """The frame a rule needs cannot be fetched now; the rule keeps its state."""


class RuleData(Protocol):
    def requests(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def latency(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]: ...
    def cost(self, start: datetime, end: datetime) -> pd.DataFrame: ...


class LensData:
    """RuleData over a queries.api.Lens (the process-wide one in `serve`)."""

    def __init__(self, lens: Any) -> None:
        self.lens = lens

    def _result_frame(self, result: Any) -> pd.DataFrame:
        if result.status == "failed":
            raise DataUnavailable(result.notice or "query failed")
        return result.frame

    def _run_body(self, body: str, start: datetime, end: datetime) -> pd.DataFrame:
        from queries.render import render
        from queries.sources.base import LogsRequest

        kql = render(body, [], {}, start=start, end=end, bin=end - start)
        try:
            answer = self.lens.logs.run(LogsRequest(kql, start, end))
        except Exception as e:
            raise DataUnavailable(f"{type(e).__name__}: {e}") from e
        if answer.status == "failed":
            raise DataUnavailable(answer.notice or "query failed")
        return answer.frame

    def requests(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Deployment, Requests, Throttled, ServerErrors over the whole range."""
        r = self.lens.run("requests_by_status", start=start, end=end, bin=end - start)
        f = self._result_frame(r)
        cols = ["Deployment", "Requests", "Throttled", "ServerErrors"]
        if f.empty:
            return pd.DataFrame(columns=cols)
        f = f.assign(
            Throttled=f["Requests"].where(f["StatusClass"] == "429", 0),
            ServerErrors=f["Requests"].where(f["StatusClass"] == "5xx", 0),
        )
        g = f.groupby("Deployment", as_index=False)[["Requests", "Throttled", "ServerErrors"]].sum()
        return g[cols]

    def latency(self, start: datetime, end: datetime) -> pd.DataFrame:
        return self._run_body(LATENCY_KQL, start, end)

    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Deployment, PeakTpm, TpmLimit: every known deployment, 0 when it had no traffic."""
        peaks = self._run_body(PEAK_TPM_KQL, start, end)
        try:
            deps = self.lens.management.deployments()
        except Exception as e:
            raise DataUnavailable(f"deployments: {e}") from e
        frame = deps[["Deployment", "TpmLimit"]].merge(peaks, on="Deployment", how="left")
        frame["PeakTpm"] = frame["PeakTpm"].fillna(0)
        return frame[["Deployment", "PeakTpm", "TpmLimit"]]

    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]:
        seen = self._run_body(LAST_SEEN_KQL, start, end)
        try:
            resources = sorted({str(r).upper() for r in self.lens.management.deployments()["Resource"]})
        except Exception as e:
            raise DataUnavailable(f"deployments: {e}") from e
        got = {
            str(r).upper(): pd.Timestamp(t).to_pydatetime()
            for r, t in zip(seen["Resource"], seen["LastSeen"], strict=True)
        }
        out: dict[str, datetime | None] = {r: None for r in resources}
        for r, t in got.items():
            out[r] = t if t.tzinfo else t.replace(tzinfo=UTC)
        return out

    def cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        try:
            from queries import cost as cost_module
        except ImportError as e:
            raise DataUnavailable("no cost model (queries.cost) yet") from e
        fn = getattr(cost_module, "cost_frame", None)
        if fn is None:
            raise DataUnavailable("queries.cost offers no cost_frame(settings, start, end) yet")
        frame: pd.DataFrame = fn(self.lens.settings, start, end)
        return frame


def lookback(rule_window_minutes: int, threshold: float | None = None) -> timedelta:
    minutes = float(rule_window_minutes)
    if threshold is not None:
        minutes = max(minutes, 2 * threshold)
    return timedelta(minutes=minutes)
