"""The frames the alert rules judge, fetched through the query layer (queries.lens.Lens).

Every rule reads catalogue queries, so they run unchanged on the demo workspace and on Log Analytics:
`requests_by_status` (429 and 5xx rates), `latency_summary` (p95), `peak_load_by_deployment` (quota
headroom, with the deployments' limits from the management plane) and `data_health` (no data).

Cost-based rules read a frame of cost per period, team and feature (TimeGenerated, Team, Feature,
CostUsd) from `queries.cost.report.cost_frame(lens, settings, start, end)`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from queries.cost.attribution import ALLOCATED, UNALLOCATED
from queries.cost.report import allocate, cost_frame
from queries.scope import caller_label, describe_callers

log = logging.getLogger("aoai_lens.alerts.data")


class DataUnavailable(RuntimeError):
    """The frame a rule needs cannot be fetched now; the rule keeps its state."""


class RuleData(Protocol):
    def requests(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def latency(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]: ...
    def cost(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def caller_cost(self, start: datetime, end: datetime) -> pd.DataFrame: ...


class LensData:
    """RuleData over a queries.lens.Lens (the process-wide one in `serve`)."""

    def __init__(self, lens: Any) -> None:
        self.lens = lens

    def _result_frame(self, result: Any) -> pd.DataFrame:
        if result.status == "failed":
            raise DataUnavailable(result.notice or "query failed")
        return result.frame

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
        """Deployment, P95Ms, Requests over the whole range."""
        f = self._result_frame(self.lens.run("latency_summary", start=start, end=end))
        return f.rename(columns={"P95": "P95Ms"})[["Deployment", "P95Ms", "Requests"]]

    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Deployment, PeakTpm, TpmLimit: every known deployment, 0 when it had no traffic."""
        peaks = self._result_frame(self.lens.run("peak_load_by_deployment", start=start, end=end))
        peaks = peaks.rename(columns={"PeakTPM": "PeakTpm"})[["Deployment", "PeakTpm"]]
        deps = self._result_frame(self.lens.deployments())
        frame = deps[["Deployment", "TpmLimit"]].merge(peaks, on="Deployment", how="left")
        frame["PeakTpm"] = frame["PeakTpm"].fillna(0)
        return frame[["Deployment", "PeakTpm", "TpmLimit"]]

    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]:
        health = self._result_frame(self.lens.run("data_health", start=start, end=end))
        resources = sorted({str(r).upper() for r in self._result_frame(self.lens.deployments())["Resource"]})
        out: dict[str, datetime | None] = {r: None for r in resources}
        if not health.empty:
            newest = health.groupby(health["Resource"].astype(str).str.upper())["LastRecord"].max()
            for r, t in newest.items():
                ts = pd.Timestamp(t)
                if pd.notna(ts):
                    out[str(r)] = (ts if ts.tzinfo else ts.tz_localize("UTC")).to_pydatetime()
        return out

    def deployment_last_seen(self, deployment: str, start: datetime, end: datetime) -> datetime | None:
        """When the deployment last answered a request in [start, end] (to 5 minutes), None: not at all."""
        bin_ = timedelta(minutes=5)
        f = self._result_frame(
            self.lens.run("requests_by_status", start=start, end=end, bin=bin_, params={"deployments": [deployment]})
        )
        if f.empty:
            return None
        last = pd.Timestamp(pd.to_datetime(f["TimeGenerated"], utc=True).max()) + bin_
        return min(last, pd.Timestamp(end)).to_pydatetime()

    def cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        """TimeGenerated (hour), Team, Feature, CostUsd of the allocated cost, through this Lens."""
        return cost_frame(self.lens, self.lens.settings, start, end)

    def caller_cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        """TimeGenerated (hour), Caller, Team, Feature, CostUsd: priced cost per caller and hour, allocated or
        not (an unknown caller's spend is what a per-caller alert is most often for); probes excluded."""
        settings = self.lens.settings
        rows = allocate(self.lens, settings, start, end, hourly=True).rows
        rows = rows[rows["Category"].isin([ALLOCATED, UNALLOCATED]) & rows["Priced"]]
        cols = ["TimeGenerated", "Caller", "Team", "Feature", "CostUsd"]
        if rows.empty:
            return pd.DataFrame(columns=cols)
        g = rows.groupby(["Hour", "ObjectId", "CallerIP", "Deployment", "Team", "Feature"], sort=True, dropna=False)
        per = g["Cost"].sum().reset_index()
        named = describe_callers(per.drop(columns=["Feature"]), settings.attribution)
        per["Caller"] = [
            caller_label(str(n), str(o), str(ip))
            for n, o, ip in zip(named["Caller"], per["ObjectId"], per["CallerIP"], strict=True)
        ]
        out = per.groupby(["Hour", "Caller", "Team", "Feature"], sort=True, dropna=False)["Cost"].sum().reset_index()
        return out.rename(columns={"Hour": "TimeGenerated", "Cost": "CostUsd"})[cols]


def lookback(rule_window_minutes: int, threshold: float | None = None) -> timedelta:
    minutes = float(rule_window_minutes)
    if threshold is not None:
        minutes = max(minutes, 2 * threshold)
    return timedelta(minutes=minutes)
