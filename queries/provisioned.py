"""Provisioned deployments from Azure's own metrics: utilisation V2 beside the token estimate, and spillover.

**Utilisation.** Azure reports a provisioned deployment's load as `AzureOpenAIProvisionedManagedUtilizationV2`
(percent, per minute; 100% means it answers 429, or spills over). It is not exported to Log Analytics, so
it comes from the metrics API. The cost model estimates the same thing from the usage logs (uncached input
plus weighted output tokens against the PTUs' tokens per minute, `queries.cost.ptu.consumed`): per hour
the metric's maximum and average sit beside that estimate, so a gap between them shows (a different
output weight, traffic the logs miss).

**Spillover.** A provisioned deployment may name a standard deployment of the same resource, model and
data processing type in its ARM property `spilloverDeploymentName`; requests it turns away (429 when its
PTUs are used up, some 400s and 5xx) are sent on to that deployment and billed there at standard rates.
What Azure exposes, and what is read here:

- the ARM property (the deployments frame's `Spillover` column): which deployment spills where;
- the `IsSpillover` dimension of the `AzureOpenAIRequests` metric, split by deployment and status code:
  the spilled requests and whether the spillover deployment served them. Azure's documentation shows the
  spilled requests on the spillover deployment; if they are marked on the provisioned deployment instead
  the larger of the two counts is taken, so a request marked on both is not counted twice;
- the response headers `x-ms-spillover-from-<deployment>` and `x-ms-spillover-error` reach only the
  caller (no log or metric carries them), so they are not read here.

The per-request logs carry no spillover mark, so the standard-rate cost of spilled requests is their share
of the spillover deployment's ledger cost (`queries.cost.spillover`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from queries.cost.ptu import consumed
from queries.limits import is_provisioned
from queries.reader import LensLike
from queries.results import QueryResult

UTILISATION_METRIC = "AzureOpenAIProvisionedManagedUtilizationV2"
REQUESTS_METRIC = "AzureOpenAIRequests"
HOUR = timedelta(hours=1)

UTILISATION_COLUMNS = ["TimeGenerated", "Deployment", "MetricMaxPct", "MetricAvgPct", "EstimatedPct"]
SPILL_COLUMNS = ["Hour", "Deployment", "Target", "Spilled", "SpillFailed", "PtuTurnedAway"]


def provisioned(deployments: pd.DataFrame) -> pd.DataFrame:
    """The provisioned deployments of a deployments frame (with their `Spillover` target, "" if none)."""
    if deployments.empty or "Sku" not in deployments.columns:
        return pd.DataFrame(columns=["Deployment", "Model", "TpmLimit", "Spillover"])
    out = deployments[deployments["Sku"].astype(str).map(is_provisioned)].copy()
    if "Spillover" not in out.columns:
        out["Spillover"] = ""
    out["Spillover"] = out["Spillover"].fillna("").astype(str)
    return out.reset_index(drop=True)


def utilisation_metrics(
    lens: LensLike, names: list[str], start: datetime, end: datetime
) -> tuple[QueryResult, QueryResult]:
    """The metric's hourly maximum and average for the named deployments (two metrics calls)."""
    kw = {
        "start": start,
        "end": end,
        "interval": HOUR,
        "split_by": ["ModelDeploymentName"],
        "filters": {"ModelDeploymentName": names},
    }
    peak = lens.metrics([UTILISATION_METRIC], aggregation="Maximum", **kw)  # type: ignore[arg-type]
    mean = lens.metrics([UTILISATION_METRIC], aggregation="Average", **kw)  # type: ignore[arg-type]
    return peak, mean


def _hourly(metric: pd.DataFrame, name: str) -> pd.DataFrame:
    if metric.empty:
        return pd.DataFrame(columns=["TimeGenerated", "Deployment", name])
    f = pd.DataFrame(
        {
            "TimeGenerated": pd.to_datetime(metric["TimeStamp"], utc=True),
            "Deployment": metric["ModelDeploymentName"].astype(str),
            name: pd.to_numeric(metric["Value"], errors="coerce"),
        }
    )
    return f.groupby(["TimeGenerated", "Deployment"], as_index=False)[name].max()


def estimated_utilisation(tokens: pd.DataFrame, ptu: pd.DataFrame) -> pd.DataFrame:
    """TimeGenerated, Deployment, EstimatedPct: the hour's consumed tokens (uncached input + weighted
    output) as a percent of its capacity (TpmLimit x 60), uncapped. `tokens`: `tokens_by_deployment` at
    one-hour bins (TimeGenerated, Deployment, Model, PromptTokens, CachedTokens, CompletionTokens)."""
    cols = ["TimeGenerated", "Deployment", "EstimatedPct"]
    if tokens.empty or ptu.empty:
        return pd.DataFrame(columns=cols)
    limits = ptu.drop_duplicates("Deployment").set_index("Deployment")["TpmLimit"].astype(float)
    t = tokens[tokens["Deployment"].isin(limits.index)].copy()
    if t.empty:
        return pd.DataFrame(columns=cols)
    for c in ("PromptTokens", "CachedTokens", "CompletionTokens"):
        t[c] = pd.to_numeric(t[c], errors="coerce").fillna(0.0)
    t["Consumed"] = consumed(t)
    g = t.groupby([pd.to_datetime(t["TimeGenerated"], utc=True), "Deployment"], as_index=False)["Consumed"].sum()
    capacity = g["Deployment"].map(limits) * 60.0
    g["EstimatedPct"] = 100.0 * g["Consumed"] / capacity.where(capacity > 0)
    return g[cols]


def utilisation_frame(peak: pd.DataFrame, mean: pd.DataFrame, estimate: pd.DataFrame) -> pd.DataFrame:
    """Per provisioned deployment and hour: Azure's utilisation V2 (max, average) beside the estimate."""
    parts = [_hourly(peak, "MetricMaxPct"), _hourly(mean, "MetricAvgPct"), estimate]
    out = parts[0].merge(parts[1], on=["TimeGenerated", "Deployment"], how="outer")
    if not estimate.empty:
        est = estimate.assign(TimeGenerated=pd.to_datetime(estimate["TimeGenerated"], utc=True))
        out = out.merge(est, on=["TimeGenerated", "Deployment"], how="outer")
    else:
        out["EstimatedPct"] = np.nan
    if out.empty:
        return pd.DataFrame(columns=UTILISATION_COLUMNS)
    return out[UTILISATION_COLUMNS].sort_values(["Deployment", "TimeGenerated"]).reset_index(drop=True)


def spill_metrics(lens: LensLike, names: list[str], start: datetime, end: datetime) -> QueryResult:
    """`AzureOpenAIRequests` per hour, split by deployment, status code and IsSpillover, for the
    provisioned deployments and their spillover targets."""
    return lens.metrics(
        [REQUESTS_METRIC],
        start=start,
        end=end,
        interval=HOUR,
        aggregation="Total",
        split_by=["ModelDeploymentName", "StatusCode", "IsSpillover"],
        filters={"ModelDeploymentName": names},
    )


def _truthy(v: object) -> bool:
    return str(v).strip().lower() in ("true", "1", "yes")


def spill_frame(requests: pd.DataFrame, ptu: pd.DataFrame) -> pd.DataFrame:
    """Per hour and provisioned deployment with a spillover target: Spilled (spilled requests its target
    served, 2xx), SpillFailed (spilled requests the target failed too: the caller got the original
    answer and `x-ms-spillover-error`), PtuTurnedAway (the provisioned deployment's 429/5xx answers)."""
    with_target = ptu[ptu["Spillover"].astype(str) != ""] if not ptu.empty else ptu
    if requests.empty or with_target.empty:
        return pd.DataFrame(columns=SPILL_COLUMNS)
    r = requests.copy()
    r["Hour"] = pd.to_datetime(r["TimeStamp"], utc=True)
    r["Deployment"] = r["ModelDeploymentName"].astype(str)
    r["Value"] = pd.to_numeric(r["Value"], errors="coerce").fillna(0.0)
    code = r["StatusCode"].astype(str)
    r["Ok"] = code.str.startswith("2")
    r["Spill"] = r["IsSpillover"].map(_truthy) if "IsSpillover" in r.columns else False
    rows = []
    for dep in with_target.itertuples(index=False):
        ptu_name, target = str(dep.Deployment), str(dep.Spillover)
        on_target = r[(r["Deployment"] == target) & r["Spill"]]
        on_ptu = r[(r["Deployment"] == ptu_name) & r["Spill"]]
        turned = r[(r["Deployment"] == ptu_name) & (code.isin(["429"]) | code.str.startswith("5"))]
        parts = {
            "TargetOk": on_target[on_target["Ok"]].groupby("Hour")["Value"].sum(),
            "TargetFailed": on_target[~on_target["Ok"]].groupby("Hour")["Value"].sum(),
            "PtuMarked": on_ptu.groupby("Hour")["Value"].sum(),
            "PtuTurnedAway": turned.groupby("Hour")["Value"].sum(),
        }
        hours = sorted(set().union(*(p.index for p in parts.values())))
        if not hours:
            continue
        f = pd.DataFrame({k: v.reindex(hours).fillna(0.0) for k, v in parts.items()}, index=pd.DatetimeIndex(hours))
        # the larger of the two marks: the documented one (on the target) or the provisioned side's
        served = np.maximum(f["TargetOk"], f["PtuMarked"] - f["TargetFailed"]).clip(lower=0)
        rows.append(
            pd.DataFrame(
                {
                    "Hour": f.index,
                    "Deployment": ptu_name,
                    "Target": target,
                    "Spilled": served.to_numpy(),
                    "SpillFailed": f["TargetFailed"].to_numpy(),
                    "PtuTurnedAway": f["PtuTurnedAway"].to_numpy(),
                }
            )
        )
    if not rows:
        return pd.DataFrame(columns=SPILL_COLUMNS)
    return pd.concat(rows, ignore_index=True)[SPILL_COLUMNS].sort_values(["Deployment", "Hour"]).reset_index(drop=True)


__all__ = [
    "REQUESTS_METRIC",
    "SPILL_COLUMNS",
    "UTILISATION_COLUMNS",
    "UTILISATION_METRIC",
    "estimated_utilisation",
    "provisioned",
    "spill_frame",
    "spill_metrics",
    "utilisation_frame",
    "utilisation_metrics",
]
