"""The demo's bill: what Cost Management would answer for the demo's own traffic, with two planted faults.

Derived from the ledger's priced rows (the demo's traffic at list prices) per day × account × meter,
named as Azure names meters ("gpt 4o 1120 cached Inp glbl Tokens", "Provisioned Managed Global Unit"),
each line rounded to the cent as a bill is, and lagging: the last `LAG_DAYS` days are not billed yet.
Planted, so reconciliation has something to find:

- `FAULT_DAYS_AGO` days ago, `FAULT_DEPLOYMENT`'s cached input tokens are billed at the full input
  price (Azure/azure-rest-api-specs#45178 describes such an incident);
- `PHANTOM_METER` is billed on `PHANTOM_ACCOUNT` that day, though no log ever saw it.

`DemoBill` serves it behind the management source's `bill(start, end, cost_type)` (the embedded source
holds one; `Lens.from_settings` wires it). The demo has no reservations or savings plans, so its
AmortizedCost bill is its ActualCost bill, as Cost Management's is for such a scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pandas as pd

from queries.cost import service
from queries.cost.bill import BILL_COLUMNS, whole_days
from queries.reader import WholeLens

LAG_DAYS = 2
FAULT_DAYS_AGO = 4
FAULT_DEPLOYMENT = "chat-gpt4o"
PHANTOM_METER = "gpt 4.1 mini Inp glbl Tokens"
PHANTOM_ACCOUNT = "contoso-oai-eastus"
PHANTOM_COST = 2.37

_KIND = {"input": "Inp", "cached_input": "cached Inp", "output": "Outp", "embeddings": "Inp"}
_SCOPE = {"Global": "glbl", "DataZone": "Data Zone", "": "regnl"}
_PTU = {"Global": "Provisioned Managed Global Unit", "DataZone": "Provisioned Managed Data Zone Unit"}


def _scope(sku: str) -> str:
    return "Global" if sku.startswith("Global") else "DataZone" if sku.startswith("DataZone") else ""


def meter_name(model: str, version: str, sku: str, meter: str) -> str:
    if meter == "ptu_hour":
        return _PTU.get(_scope(sku), "Provisioned Managed Regional Unit")
    tag = version[5:7] + version[8:10] if len(version) == 10 else ""
    batch = " Batch" if "Batch" in sku else ""
    words = [model.replace("-", " "), tag, batch.strip(), _KIND.get(meter, meter), _SCOPE[_scope(sku)], "Tokens"]
    return " ".join(w for w in words if w)


def demo_bill(ledger: pd.DataFrame, deployments: pd.DataFrame, today: date) -> pd.DataFrame:
    """Day, ResourceId, MeterName, Cost: the bill up to `today - LAG_DAYS`, faults included."""
    ids = dict(zip(deployments["Resource"].astype(str).str.lower(), deployments["ResourceId"], strict=False))
    rows = ledger[ledger["Priced"].astype(bool) & (ledger["EffectiveCost"] > 0)].copy()
    rows["Day"] = pd.to_datetime(rows["Hour"], utc=True).dt.floor("D")
    last = pd.Timestamp(today, tz="UTC") - pd.Timedelta(days=LAG_DAYS)
    rows = rows[rows["Day"] < last]
    fault_day = pd.Timestamp(today - timedelta(days=FAULT_DAYS_AGO), tz="UTC")
    fault = (rows["Day"] == fault_day) & (rows["Deployment"] == FAULT_DEPLOYMENT) & (rows["Meter"] == "cached_input")
    rows["Cost"] = rows["EffectiveCost"]
    if fault.any():  # the full input price: the same model's input rate on the same rows
        inp = ledger[(ledger["Deployment"] == FAULT_DEPLOYMENT) & (ledger["Meter"] == "input")]
        rate = float(inp["UnitPrice"].iloc[0]) if not inp.empty else 0.0
        rows.loc[fault, "Cost"] = rows.loc[fault, "Quantity"] * rate
    rows["ResourceId"] = rows["Resource"].astype(str).str.lower().map(ids).fillna(rows["Resource"])
    rows["MeterName"] = [
        meter_name(m, v, s, k)
        for m, v, s, k in zip(rows["Model"], rows["Version"], rows["Sku"], rows["Meter"], strict=True)
    ]
    out = rows.groupby(["Day", "ResourceId", "MeterName"], as_index=False)["Cost"].sum()
    out["Cost"] = out["Cost"].round(2)
    phantom = pd.DataFrame(
        {
            "Day": [fault_day],
            "ResourceId": [ids.get(PHANTOM_ACCOUNT, PHANTOM_ACCOUNT)],
            "MeterName": [PHANTOM_METER],
            "Cost": [PHANTOM_COST],
        }
    )
    return pd.concat([out, phantom], ignore_index=True)


@dataclass
class DemoBill:
    """The demo's bill for the days of [start, end), from the shared allocation of those days."""

    lens: WholeLens

    def __call__(self, start: datetime, end: datetime, cost_type: str = "ActualCost") -> pd.DataFrame:
        start, end = whole_days(start, end)
        today = self.lens.now().date()
        billed_to = datetime(today.year, today.month, today.day, tzinfo=start.tzinfo) - timedelta(days=LAG_DAYS)
        end = min(end, billed_to)  # nothing later is billed yet
        if end <= start:
            return pd.DataFrame(columns=BILL_COLUMNS)
        result = service.allocation(self.lens, start, end)
        b = demo_bill(result.ledger, self.lens.deployments().frame, today)
        day = pd.to_datetime(b["Day"], utc=True)
        return b[(day >= pd.Timestamp(start)) & (day < pd.Timestamp(end))].reset_index(drop=True)
