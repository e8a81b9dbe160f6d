"""Spillover's cost: the requests a provisioned deployment handed to its standard spillover deployment,
priced at the standard deployment's rates.

Azure bills a spilled request where it was served: on the spillover (standard) deployment, at its input,
cached input and output token rates, and its usage is logged there. The ledger therefore already holds
that money, on the standard deployment's rows; this module only says how much of it spillover caused, so
nothing is added to any total and nothing is counted twice.

The logs do not mark a spilled request; the metrics do (`AzureOpenAIRequests` with `IsSpillover` true).
Per hour, the spilled share of the spillover deployment's cost is its share of that deployment's served
requests: ``cost x min(1, spilled / requests)``. When the spillover deployment serves nothing but
spillover (a dedicated one), the share is 1 and the figure is exact; when it also takes other traffic the
figure assumes a spilled request cost what an average request did that hour (said in the panel).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = [
    "Hour",
    "Deployment",
    "Target",
    "Spilled",
    "TargetRequests",
    "TargetCost",
    "Share",
    "SpilloverCost",
]


def target_hours(ledger: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Hour, Target, TargetRequests, TargetCost (priced effective cost; NaN when some of the hour's rows
    have no price) of the spillover deployments, from ledger rows (Hour, Deployment, Requests,
    EffectiveCost, Priced)."""
    cols = ["Hour", "Target", "TargetRequests", "TargetCost"]
    if ledger.empty or not targets:
        return pd.DataFrame(columns=cols)
    mine = ledger[ledger["Deployment"].isin(targets)].copy()
    if mine.empty:
        return pd.DataFrame(columns=cols)
    mine["Hour"] = pd.to_datetime(mine["Hour"], utc=True)
    mine["Unpriced"] = ~mine["Priced"].astype(bool)
    g = mine.groupby(["Hour", "Deployment"], as_index=False).agg(
        TargetRequests=("Requests", "sum"), TargetCost=("EffectiveCost", "sum"), Unpriced=("Unpriced", "any")
    )
    g.loc[g["Unpriced"], "TargetCost"] = np.nan
    return g.rename(columns={"Deployment": "Target"})[cols]


def spillover_cost(spilled: pd.DataFrame, targets: pd.DataFrame) -> pd.DataFrame:
    """Per hour and provisioned deployment: the spilled requests its spillover deployment served and their
    share of that deployment's cost.

    `spilled`: Hour, Deployment (provisioned), Target (its spillover deployment), Spilled (served spilled
    requests); `targets`: `target_hours`. An hour with spilled requests but no ledger rows (not yet built,
    or unpriced) keeps its requests with a NaN cost, never 0."""
    if spilled.empty:
        return pd.DataFrame(columns=COLUMNS)
    s = spilled.copy()
    s["Hour"] = pd.to_datetime(s["Hour"], utc=True)
    t = targets.copy()
    if not t.empty:
        t["Hour"] = pd.to_datetime(t["Hour"], utc=True)
    out = s.merge(t, on=["Hour", "Target"], how="left")
    requests = pd.to_numeric(out["TargetRequests"], errors="coerce")
    out["Share"] = (out["Spilled"].astype(float) / requests.where(requests > 0)).clip(upper=1.0)
    out["SpilloverCost"] = out["Share"] * pd.to_numeric(out["TargetCost"], errors="coerce")
    return out[COLUMNS].sort_values(["Hour", "Deployment"]).reset_index(drop=True)


__all__ = ["COLUMNS", "spillover_cost", "target_hours"]
