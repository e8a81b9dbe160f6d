"""The allocated cost as FOCUS-shaped rows (FinOps Open Cost and Usage Specification column names).

One row per day x deployment x caller line of an `AllocationResult` with a price (unpriced usage has no
cost to state and is left out; the statement's unpriced line shows it). The unallocated, probes and
ptu idle rows are included, marked in `x_AllocationCategory`, so the rows add up to the statement's
total and reconcile with the bill; filter on `x_AllocationCategory == "allocated"` for chargeback only.

Columns: BilledCost and EffectiveCost (what the price book says, after `prices.discount_pct`),
ListCost (the same before the discount), ChargePeriodStart/End (the day, clipped to the period),
BillingCurrency, ServiceName "Azure OpenAI", ServiceCategory "AI and Machine Learning", ResourceId
(the deployment's ARM id), ResourceName (the deployment), RegionId, SkuId (the deployment type), SkuMeter
(the price that applied), ConsumedQuantity and ConsumedUnit (tokens; hours for ptu idle), ChargeCategory
"Usage", then x_Feature, x_Team, x_CostCenter, x_AllocationMethod, x_AllocationRule,
x_AllocationCategory, x_Model, x_ModelVersion, x_CallerObjectId.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import pandas as pd

from queries.cost.attribution import PTU_IDLE, caller_names_column

if TYPE_CHECKING:
    from queries.cost.report import AllocationResult

SERVICE_NAME = "Azure OpenAI"
SERVICE_CATEGORY = "AI and Machine Learning"
FOCUS_COLUMNS = [
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "BillingCurrency",
    "ServiceName",
    "ServiceCategory",
    "ResourceId",
    "ResourceName",
    "RegionId",
    "SkuId",
    "SkuMeter",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ChargeCategory",
    "x_Feature",
    "x_Team",
    "x_CostCenter",
    "x_AllocationMethod",
    "x_AllocationRule",
    "x_AllocationCategory",
    "x_Model",
    "x_ModelVersion",
    "x_CallerObjectId",
    "x_CallerName",
]


def _iso(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts, utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def focus_rows(
    result: AllocationResult,
    resource_ids: dict[str, str] | None = None,
    caller_names: Mapping[str, str] | None = None,
    rule_names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """FOCUS rows of `result`'s priced cost. `resource_ids`: account name (lower case) -> ARM id;
    `caller_names`: object id -> directory name, `rule_names`: Rule -> display name (x_CallerName)."""
    rows = result.rows[result.rows["Priced"]].copy()
    start = pd.Timestamp(result.start)
    end = pd.Timestamp(result.end)
    day = pd.to_datetime(rows["Day"], utc=True)
    period_start = day.clip(lower=start)
    period_end = (day + pd.Timedelta(days=1)).clip(upper=end)
    factor = 1.0 - result.discount_pct / 100.0
    ids = {k.lower(): v for k, v in (resource_ids or {}).items()}
    account = rows["Resource"].map(lambda r: ids.get(str(r).lower(), str(r)))
    idle = rows["Category"] == PTU_IDLE
    hours = (period_end - period_start) / pd.Timedelta(hours=1)
    tokens = rows["PromptTokens"] + rows["CompletionTokens"]
    out = pd.DataFrame(
        {
            "BilledCost": rows["Cost"].round(6),
            "EffectiveCost": rows["Cost"].round(6),
            "ListCost": (rows["Cost"] / factor).round(6) if factor > 0 else rows["Cost"].round(6),
            "ChargePeriodStart": _iso(period_start),
            "ChargePeriodEnd": _iso(period_end),
            "BillingCurrency": result.currency,
            "ServiceName": SERVICE_NAME,
            "ServiceCategory": SERVICE_CATEGORY,
            "ResourceId": account + "/deployments/" + rows["Deployment"],
            "ResourceName": rows["Deployment"],
            "RegionId": rows["Region"],
            "SkuId": rows["Sku"],
            "SkuMeter": rows["PriceKey"],
            "ConsumedQuantity": tokens.where(~idle, hours).round(3),
            "ConsumedUnit": pd.Series("Tokens", index=rows.index).where(~idle, "Hours"),
            "ChargeCategory": "Usage",
            "x_Feature": rows["Feature"],
            "x_Team": rows["Team"],
            "x_CostCenter": rows["CostCenter"],
            "x_AllocationMethod": rows["Method"],
            "x_AllocationRule": rows["Rule"],
            "x_AllocationCategory": rows["Category"],
            "x_Model": rows["Model"],
            "x_ModelVersion": rows["Version"],
            "x_CallerObjectId": rows["ObjectId"],
            "x_CallerName": caller_names_column(rows, caller_names or {}, rule_names or {}),
        }
    )
    return out[FOCUS_COLUMNS].reset_index(drop=True)
