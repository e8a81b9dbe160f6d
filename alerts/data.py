"""The frames the alert rules judge, fetched through the query layer (queries.lens.Lens).

Every rule reads catalogue queries, so they run unchanged on the demo workspace and on Log Analytics:
`requests_by_status` (429 and 5xx rates), `latency_summary` (p95), `peak_load_by_deployment` (quota
headroom, with the deployments' limits from the management plane), `daily_peak_load` (the time-to-limit
forecast, `queries.quota`) and `data_health` (no data).

Cost-based rules read a frame of cost per period, team and feature (TimeGenerated, Team, Feature,
CostUsd) from `queries.cost.report.cost_frame(lens, settings, start, end)`. The billing_drift rule reads
the reconciliation of the ledger with the bill (`queries.billing.reconciliation`).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from queries.cost.attribution import ALLOCATED, UNALLOCATED
from queries.cost.report import allocate, cost_frame
from queries.quota import forecast_for, pools
from queries.scope import caller_label, describe_callers

log = logging.getLogger("aoai_lens.alerts.data")


class DataUnavailable(RuntimeError):
    """The frame a rule needs cannot be fetched now; the rule keeps its state."""


class RuleData(Protocol):
    def requests(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def latency(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def quota_forecast(self, now: datetime) -> pd.DataFrame: ...
    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]: ...
    def cost(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def caller_cost(self, start: datetime, end: datetime) -> pd.DataFrame: ...
    def retirements(self) -> pd.DataFrame: ...
    def billing(self, start: datetime, end: datetime, today: date) -> pd.DataFrame: ...
    def prompt_cache(self, start: datetime, end: datetime) -> pd.DataFrame: ...


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
        """Deployment, PeakTpm, TpmLimit, PeakRpm, RpmLimit: every known deployment, 0 when it had no traffic."""
        peaks = self._result_frame(self.lens.run("peak_load_by_deployment", start=start, end=end))
        peaks = peaks.rename(columns={"PeakTPM": "PeakTpm", "PeakRPM": "PeakRpm"})[["Deployment", "PeakTpm", "PeakRpm"]]
        deps = self._result_frame(self.lens.deployments())
        frame = deps[["Deployment", "TpmLimit", "RpmLimit"]].merge(peaks, on="Deployment", how="left")
        frame[["PeakTpm", "PeakRpm"]] = frame[["PeakTpm", "PeakRpm"]].fillna(0)
        return frame[["Deployment", "PeakTpm", "TpmLimit", "PeakRpm", "RpmLimit"]]

    def quota_forecast(self, now: datetime) -> pd.DataFrame:
        """`queries.quota.forecast` over the complete days before `now`, with each pool's deployments."""
        frame, results = forecast_for(self.lens, now)
        for r in results[:2]:
            self._result_frame(r)  # the daily peaks and the deployments are needed; the usages are not
        deps = results[1].frame
        usages = results[2].frame if results[2].status != "failed" else pd.DataFrame()
        members = pools(deps, usages).set_index("Pool")["Deployments"] if not usages.empty else pd.Series(dtype=str)
        return frame.assign(Deployments=frame["Name"].map(members).fillna(""))

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
        directory = self.lens.caller_names(per)  # Graph's names first: an unknown caller is named too
        named = describe_callers(per.drop(columns=["Feature"]), settings.attribution, directory)
        per["Caller"] = [
            caller_label(str(n), str(o), str(ip))
            for n, o, ip in zip(named["Caller"], per["ObjectId"], per["CallerIP"], strict=True)
        ]
        out = per.groupby(["Hour", "Caller", "Team", "Feature"], sort=True, dropna=False)["Cost"].sum().reset_index()
        return out.rename(columns={"Hour": "TimeGenerated", "Cost": "CostUsd"})[cols]

    def retirements(self) -> pd.DataFrame:
        """Account, Deployment, Model, Version, RetirementDate, DaysToRetirement of every deployment in the estate."""
        return _retirements(self.lens)

    def billing(self, start: datetime, end: datetime, today: date) -> pd.DataFrame:
        """The reconciliation of the days of [start, end): Day, Account, Model, Meter, Estimate, Billed,
        Status (`queries.billing.reconciliation`), the bill through the Lens."""
        from queries.billing import reconciliation
        from queries.cost.bill import BillError

        try:
            return reconciliation(self.lens.settings, self.lens, start, end, today=today)
        except BillError as e:  # Cost Management unreadable now (throttled, no role): the rule keeps its state
            raise DataUnavailable(str(e)) from None

    def prompt_cache(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Deployment, PromptTokens, CachedTokens of the cacheable prompts (`prompt_cache_by_caller`'s
        Eligible* columns summed per deployment): what the cache_hit_rate rule judges."""
        f = self._result_frame(self.lens.run("prompt_cache_by_caller", start=start, end=end))
        cols = ["Deployment", "PromptTokens", "CachedTokens"]
        if f.empty:
            return pd.DataFrame(columns=cols)
        g = f.groupby("Deployment", as_index=False, sort=True)[["EligiblePromptTokens", "EligibleCachedTokens"]].sum()
        return g.rename(columns={"EligiblePromptTokens": "PromptTokens", "EligibleCachedTokens": "CachedTokens"})[cols]


def _retirements(lens: Any) -> pd.DataFrame:
    """The inventory's deployments with their retirement dates (`queries.inventory`); unreadable -> unavailable.
    A partial inventory still judges the deployments it could read."""
    inv = lens.inventory()
    if inv.status == "failed":
        raise DataUnavailable(inv.notice or "the inventory cannot be read")
    return inv.deployments


def lookback(rule_window_minutes: int, threshold: float | None = None) -> timedelta:
    minutes = float(rule_window_minutes)
    if threshold is not None:
        minutes = max(minutes, 2 * threshold)
    return timedelta(minutes=minutes)
