"""Capacity panels of the Reliability page: provisioned utilisation from Azure's metric beside the token
estimate, spillover with its standard-rate cost, quota headroom (TPM, RPM, pools) and time to limit.

Each builder takes the request's Context and what the page already fetched, and returns a panel body;
the page wraps each in `panels.safe`, so a failure here says why and the rest of the page goes on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from dashboard import capacity_figures as cf
from dashboard.costs import allocation
from dashboard.data import Context, guarded
from dashboard.panels import frame_table, panel_body
from queries import provisioned, quota
from queries.cost.spillover import spillover_cost, target_hours
from queries.results import QueryResult


def _in_scope(ptu: pd.DataFrame, scope: list[str]) -> pd.DataFrame:
    return ptu[ptu["Deployment"].isin(scope)] if scope else ptu


def ptu_utilisation(
    page: str, ctx: Context, deps: pd.DataFrame, scope: list[str], start: datetime, end: datetime, colours: Any
) -> list[Any]:
    ptu = _in_scope(provisioned.provisioned(deps), scope)
    if ptu.empty:
        return panel_body(page, "ptu", cf.ptu_utilisation(pd.DataFrame()))
    names = sorted(ptu["Deployment"].astype(str))
    peak, mean = provisioned.utilisation_metrics(ctx.lens, names, start, end)
    tokens = ctx.lens.run(
        "tokens_by_deployment", start=start, end=end, bin=timedelta(hours=1), params={"deployments": names}
    )
    est = provisioned.estimated_utilisation(tokens.frame, ptu) if tokens.status != "failed" else pd.DataFrame()
    frame = provisioned.utilisation_frame(
        peak.frame if peak.status != "failed" else pd.DataFrame(),
        mean.frame if mean.status != "failed" else pd.DataFrame(),
        est,
    )
    note = None
    if not frame.empty and frame["MetricMaxPct"].notna().any():
        top = frame.loc[frame["MetricMaxPct"].idxmax()]
        saturated = int((frame["MetricMaxPct"] >= 100).sum())
        note = (
            f"busiest hour {pd.Timestamp(top['TimeGenerated']):%Y-%m-%d %H:%M} UTC on {top['Deployment']}: "
            f"utilisation V2 peaked at {float(top['MetricMaxPct']):.0f}%; {saturated} hour(s) reached 100%"
        )
    return panel_body(page, "ptu", cf.ptu_utilisation(frame, colours), [peak, mean, tokens], frame=frame, note=note)


def spillover(
    page: str, ctx: Context, deps: pd.DataFrame, scope: list[str], start: datetime, end: datetime
) -> list[Any]:
    ptu = _in_scope(provisioned.provisioned(deps), scope)
    with_target = ptu[ptu["Spillover"] != ""]
    if with_target.empty:
        what = "No provisioned deployment names a spillover deployment (ARM spilloverDeploymentName)"
        return panel_body(page, "spill", cf.spillover(pd.DataFrame()), note=what if not ptu.empty else None)
    names = sorted(set(with_target["Deployment"].astype(str)) | set(with_target["Spillover"].astype(str)))
    req = provisioned.spill_metrics(ctx.lens, names, start, end)
    spilled = provisioned.spill_frame(req.frame, with_target) if req.status != "failed" else pd.DataFrame()
    results: list[QueryResult] = [req]
    show_cost = ctx.scope.is_everything
    if spilled.empty:
        return panel_body(page, "spill", cf.spillover(pd.DataFrame()), results)
    if show_cost:
        alloc = allocation(ctx, start, end)
        results.append(alloc.envelope)
        ledger = alloc.result.ledger if alloc.result is not None else pd.DataFrame()
        targets = target_hours(ledger, sorted(with_target["Spillover"].astype(str)))
        priced = spillover_cost(spilled[["Hour", "Deployment", "Target", "Spilled"]], targets)
        frame = priced.merge(spilled[["Hour", "Deployment", "SpillFailed", "PtuTurnedAway"]], on=["Hour", "Deployment"])
    else:
        frame = spilled
    n = float(frame["Spilled"].sum())
    note = f"{n:,.0f} request(s) spilled over"
    if show_cost:
        cost = float(frame["SpilloverCost"].sum(min_count=1)) if frame["SpilloverCost"].notna().any() else None
        unknown = int(frame["SpilloverCost"].isna().sum())
        note += (
            f", ${cost:,.2f} at the spillover deployment's standard rates (already in its cost, not added)"
            if cost is not None
            else ", their cost is not priced yet"
        )
        if unknown:
            note += f"; {unknown} hour(s) without a price"
    else:
        note += "; their cost is the spillover deployment's, shared by teams: not shown in a team view"
    return panel_body(page, "spill", cf.spillover(frame, show_cost=show_cost), results, frame=frame, note=note)


def limits(page: str, deps_r: QueryResult, peaks: QueryResult, usages: QueryResult, scope: list[str]) -> list[Any]:
    deps = deps_r.frame if deps_r.status != "failed" else pd.DataFrame()
    if deps.empty or peaks.status == "failed":
        return panel_body(page, "limits", frame_table(pd.DataFrame()), [peaks, deps_r])
    u = usages.frame if usages.status != "failed" else pd.DataFrame()
    frame = quota.headroom(deps, peaks.frame, u)
    if scope:
        frame = frame[(frame["Kind"] == "pool") | frame["Name"].isin(scope)]

    def of(peak: float, limit: float) -> str:
        return "" if pd.isna(limit) else f"{peak:,.0f} of {limit:,.0f}"

    shown = pd.DataFrame(
        {
            "Name": frame["Name"] + frame["Kind"].map({"pool": " (pool)", "deployment": ""}),
            "Headroom": frame["HeadroomPct"],
            "Binding": frame["Binding"],
            "TPM": [of(p, lim) for p, lim in zip(frame["PeakTPM"], frame["TpmLimit"], strict=True)],
            "RPM": [of(p, lim) for p, lim in zip(frame["PeakRPM"], frame["RpmLimit"], strict=True)],
        }
    )
    table = frame_table(shown, {"Headroom": "{:.0f}%"}, max_rows=10, empty="No deployment with a limit")
    note = f"tightest 10 of {len(frame)}: the CSV has them all" if len(frame) > 10 else None
    return panel_body(page, "limits", table, [peaks, deps_r, usages], frame=frame, note=note)


def time_to_limit(page: str, ctx: Context, scope: list[str]) -> list[Any]:
    now = ctx.now()
    start, end = quota.history_window(now)
    daily = ctx.lens.run("daily_peak_load", start=start, end=end, params={"deployments": scope})
    deps = guarded("deployments", ctx.lens.deployments)
    usages = guarded("usages", ctx.lens.usages)
    results = [daily, deps, usages]
    if daily.status == "failed" or deps.status == "failed":
        return panel_body(page, "forecast", cf.time_to_limit(pd.DataFrame(), pd.DataFrame()), results)
    u = usages.frame if usages.status != "failed" else pd.DataFrame()
    series = quota.daily_series(daily.frame, deps.frame, u)
    frame = quota.forecast(daily.frame, deps.frame, u)
    if scope:  # a pool's demand needs all its deployments: with a deployment filter, deployments only
        frame = frame[(frame["Kind"] == "deployment") & frame["Name"].isin(scope)].reset_index(drop=True)
        series = series[(series["Kind"] == "deployment") & series["Name"].isin(scope)]
    crossing = frame[frame["DaysToLimit"].notna()]
    days = int(frame["HistoryDays"].max()) if not frame.empty else 0
    if crossing.empty:
        note = f"nothing reaches its limit within {quota.HORIZON_DAYS} days on the trend of {days} complete day(s)"
    else:
        first = crossing.iloc[0]
        note = (
            f"{len(crossing)} limit(s) reached within {quota.HORIZON_DAYS} days; first: {first['Kind']} "
            f"{first['Name']} ({first['Limit']}), {first['Verdict']}, on {int(first['HistoryDays'])} day(s) of history"
        )
    return panel_body(page, "forecast", cf.time_to_limit(series, frame), results, frame=frame, note=note)


__all__ = ["limits", "ptu_utilisation", "spillover", "time_to_limit"]
