"""Provisioned throughput (PTU): a fixed hourly cost shared by consumed share, idle capacity on its own.

Provisioned deployments (SKUs ending in ``ProvisionedManaged``) are billed per PTU-hour on the units
deployed, prorated per minute, whatever they process. For each hour of the period (a partial first or
last hour counts by its covered fraction):

- the hour's cost is ``capacity x ptu_per_hour x fraction``;
- its capacity is the deployment's input tokens per minute (``TpmLimit``: PTUs x the model's input TPM
  per PTU) x 60 x fraction;
- consumption is counted the way Azure's utilisation counts it, simplified: uncached input tokens plus
  output tokens weighted (``OUTPUT_WEIGHT``: 4 input tokens per output token, 8 for the gpt-5 family);
  cached input tokens are deducted entirely;
- utilisation is consumption / capacity, capped at 100%; the used part of the cost is shared among the
  hour's callers by their consumption, the rest is the ``ptu idle`` line.

The hourly price is the list price in force that hour (the price book's timeline), or, for the PTUs a
reservation covers (`billing.reservations`: term, quantity, amortised hourly price), the reservation's
amortised price; the rest of the deployment's PTUs stay at the list price.

`ptu_summary` sets the period beside pay-as-you-go: the effective cost per 1M tokens, what the same
tokens would have cost at the pay-as-you-go deployment type of the same scope (Global provisioned →
GlobalStandard, Data Zone → DataZoneStandard, Regional → Standard: `skus.PAYG_EQUIVALENT`), and the
utilisation at which PTU breaks even
(pay-as-you-go cost grows with the tokens, the PTU cost does not, so break-even utilisation =
utilisation x PTU cost / pay-as-you-go cost at the same token mix).

Hours count from the deployment's creation (ARM systemData.createdAt, the `Created` column) or the
period's start, whichever is later, at its current capacity (the management plane reports no capacity
history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from queries import limits
from queries.cost.attribution import PTU_IDLE
from queries.cost.skus import PAYG_EQUIVALENT

OUTPUT_WEIGHT = 4.0  # input-token equivalents of one output token
OUTPUT_WEIGHT_BY_PREFIX = {"gpt-5": 8.0}
PAYG_SKU = "GlobalStandard"  # when a provisioned SKU is not in PAYG_EQUIVALENT
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def payg_sku(sku: str) -> str:
    """The pay-as-you-go deployment type a provisioned one is compared with (same scope)."""
    for name, payg in PAYG_EQUIVALENT.items():
        if name.lower() == str(sku).strip().lower():
            return payg
    return PAYG_SKU


def list_prices(dep: Any, hours: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """The list price per PTU-hour in force at each of `hours` (from the deployment's `PtuTimeline`:
    [(from, price)], sorted; else its `PtuPerHour`)."""
    line = getattr(dep, "PtuTimeline", None)
    stamps = pd.DatetimeIndex(pd.to_datetime(pd.Series(hours), utc=True))
    if not isinstance(line, list | tuple) or not line:
        value = float(dep.PtuPerHour) if dep.PtuPerHour is not None else np.nan
        return np.full(len(stamps), value)
    starts = pd.DatetimeIndex([t for t, _ in line]).as_unit("ns")
    values = np.array([np.nan if v is None else float(v) for _, v in line], dtype="float64")
    idx = np.searchsorted(starts.asi8, stamps.as_unit("ns").asi8, side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], values[0])


def reserved_share(dep: Any) -> tuple[float, float]:
    """(share of the deployment's PTUs a reservation covers, its amortised price per PTU-hour, NaN when
    the reservation gives no price: the list price then applies)."""
    ptus = getattr(dep, "ReservedPtus", 0.0)
    if ptus is None or not np.isfinite(ptus) or ptus <= 0 or float(dep.Capacity) <= 0:
        return 0.0, np.nan
    price = getattr(dep, "ReservedPerHour", np.nan)
    return min(float(ptus), float(dep.Capacity)) / float(dep.Capacity), float(price if price is not None else np.nan)


def hourly_cost(dep: Any, grid: pd.DataFrame) -> np.ndarray:
    """Each hour's cost of a deployment over `grid` (TimeGenerated, Fraction): reserved PTUs at the
    amortised price, the rest at the list price in force then."""
    lists = list_prices(dep, grid["TimeGenerated"])
    share, res = reserved_share(dep)
    per_ptu = (1.0 - share) * lists + share * (res if np.isfinite(res) else lists)
    return float(dep.Capacity) * per_ptu * grid["Fraction"].to_numpy(dtype="float64")


def is_ptu(sku: str) -> bool:
    return limits.is_provisioned(str(sku))


def output_weight(model: str) -> float:
    for prefix, weight in OUTPUT_WEIGHT_BY_PREFIX.items():
        if str(model).startswith(prefix):
            return weight
    return OUTPUT_WEIGHT


def consumed(frame: pd.DataFrame) -> pd.Series:
    """Input-token equivalents the rows consumed: uncached input + weighted output."""
    weights = frame["Model"].map(output_weight).astype("float64")
    uncached = (frame["PromptTokens"] - frame["CachedTokens"]).clip(lower=0)
    return uncached + weights * frame["CompletionTokens"]


def hour_grid(start: datetime, end: datetime) -> pd.DataFrame:
    """Every hour touching [start, end), with the fraction of it inside the period."""
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    if s.tzinfo is None:
        s, e = s.tz_localize("UTC"), e.tz_localize("UTC")
    hours = pd.date_range(s.floor("h"), e, freq="h", inclusive="left")
    if len(hours) == 0 and e > s:
        hours = pd.DatetimeIndex([s.floor("h")])
    lo = np.maximum(hours, s)
    hi = np.minimum(hours + pd.Timedelta(hours=1), e)
    frac = (hi - lo) / pd.Timedelta(hours=1)
    grid = pd.DataFrame({"TimeGenerated": hours, "Fraction": np.clip(np.asarray(frac, dtype="float64"), 0.0, 1.0)})
    return grid[grid["Fraction"] > 0].reset_index(drop=True)


def active_from(dep: Any, start: datetime) -> datetime:
    """When the deployment's capacity started costing within the period: its creation time
    (ARM systemData.createdAt) when that is later than `start`."""
    created = getattr(dep, "Created", None)
    if created is None or pd.isna(created):
        return start
    created_ts = pd.Timestamp(created)
    if created_ts.tzinfo is None:
        created_ts = created_ts.tz_localize("UTC")
    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is None:
        start_ts = start_ts.tz_localize("UTC")
    return max(created_ts, start_ts).to_pydatetime()


def deployment_hours(dep: Any, start: datetime, end: datetime) -> float:
    """Billable PTU hours of one deployment over [start, end)."""
    since = active_from(dep, start)
    if pd.Timestamp(since) >= pd.Timestamp(end):
        return 0.0
    return float(hour_grid(since, end)["Fraction"].sum())


def share_ptu(
    rows: pd.DataFrame, ptu_deployments: pd.DataFrame, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Price the token rows of provisioned deployments; return (rows with Cost and Priced, idle rows).

    `ptu_deployments`: Resource, Deployment, Model, Version, Sku, Region, Capacity, TpmLimit, PtuPerHour
    (NaN when no price is known: those rows come back unpriced and no idle line is made).
    """
    rows = rows.copy()
    rows["Cost"] = np.nan
    rows["Priced"] = False
    idle_parts = []
    for dep in ptu_deployments.itertuples(index=False):
        since = active_from(dep, start)
        grid = hour_grid(since, end) if pd.Timestamp(since) < pd.Timestamp(end) else hour_grid(end, end)
        last_hour = grid["TimeGenerated"].max() if not grid.empty else None
        mine = (rows["Resource"] == dep.Resource) & (rows["Deployment"] == dep.Deployment)
        price = float(dep.PtuPerHour) if dep.PtuPerHour is not None else np.nan
        if not np.isfinite(price) or grid.empty:
            continue
        sub = rows[mine].copy()
        hour = sub["TimeGenerated"].dt.floor("h")
        if last_hour is not None:
            hour = hour.clip(lower=grid["TimeGenerated"].min(), upper=last_hour)
        sub["Hour"] = hour
        sub["Consumed"] = consumed(sub) if not sub.empty else pd.Series(dtype="float64")
        per_hour = sub.groupby("Hour")["Consumed"].sum()
        g = grid.set_index("TimeGenerated")
        g["Cost"] = hourly_cost(dep, grid)
        g["Capacity"] = float(dep.TpmLimit) * 60.0 * g["Fraction"]
        g["Consumed"] = per_hour.reindex(g.index).fillna(0.0)
        util = np.where(
            g["Capacity"] > 0,
            (g["Consumed"] / g["Capacity"].where(g["Capacity"] > 0, 1.0)).clip(upper=1.0),
            (g["Consumed"] > 0).astype(float),
        )
        g["Used"] = g["Cost"] * util
        g["Idle"] = g["Cost"] - g["Used"]
        used_per_unit = (g["Used"] / g["Consumed"].where(g["Consumed"] > 0)).fillna(0.0)
        sub_cost = sub["Consumed"] * sub["Hour"].map(used_per_unit).fillna(0.0)
        rows.loc[sub.index, "Cost"] = sub_cost.astype("float64")
        rows.loc[sub.index, "Priced"] = True
        idle = g[g["Idle"] > 0].reset_index()
        if not idle.empty:
            idle_parts.append(
                pd.DataFrame(
                    {
                        "TimeGenerated": idle["TimeGenerated"],
                        "Resource": dep.Resource,
                        "Deployment": dep.Deployment,
                        "Model": dep.Model,
                        "Version": dep.Version,
                        "ObjectId": "",
                        "CallerIP": "",
                        "Requests": 0.0,
                        "PromptTokens": 0.0,
                        "CachedTokens": 0.0,
                        "CompletionTokens": 0.0,
                        "Method": PTU_IDLE,
                        "Feature": "",
                        "Team": "",
                        "CostCenter": "",
                        "Rule": "",
                        "Category": PTU_IDLE,
                        "Cost": idle["Idle"].astype("float64"),
                        "Priced": True,
                    }
                )
            )
    idle_rows = pd.concat(idle_parts, ignore_index=True) if idle_parts else pd.DataFrame(columns=rows.columns)
    return rows, idle_rows


def period_cost(ptu_deployments: pd.DataFrame, start: datetime, end: datetime) -> pd.Series:
    """Each provisioned deployment's cost over [start, end): its hours at the price in force each hour,
    reserved PTUs at the reservation's amortised price (NaN when unpriced)."""
    return pd.Series(
        [_period_cost(d, start, end) for d in ptu_deployments.itertuples(index=False)],
        index=ptu_deployments.index,
        dtype="float64",
    )


def _period_cost(dep: Any, start: datetime, end: datetime) -> float:
    since = active_from(dep, start)
    if pd.Timestamp(since) >= pd.Timestamp(end):
        return 0.0
    return float(hourly_cost(dep, hour_grid(since, end)).sum())


def ptu_summary(
    rows: pd.DataFrame, ptu_deployments: pd.DataFrame, book: Any, start: datetime, end: datetime
) -> pd.DataFrame:
    """One line per provisioned deployment: cost, used and idle, utilisation, per-1M cost against PAYG.

    `rows`: the allocated rows (with Cost and Category, idle rows included); `book`: a price book (for
    the GlobalStandard price of the same model).
    """
    cols = [
        "Resource",
        "Deployment",
        "Model",
        "Sku",
        "Region",
        "Capacity",
        "Hours",
        "PtuPerHour",
        "Cost",
        "UsedCost",
        "IdleCost",
        "Utilisation",
        "PromptTokens",
        "CachedTokens",
        "CompletionTokens",
        "Tokens",
        "EffectivePer1M",
        "PaygSku",
        "PaygCost",
        "PaygPer1M",
        "ReservedPtus",
        "BreakEvenUtilisation",
        "Hint",
    ]
    out = []
    for dep in ptu_deployments.itertuples(index=False):
        hours = deployment_hours(dep, start, end)
        mine = rows[(rows["Resource"] == dep.Resource) & (rows["Deployment"] == dep.Deployment)]
        idle_mask = mine["Category"] == PTU_IDLE
        used = mine[~idle_mask]
        price = float(dep.PtuPerHour) if dep.PtuPerHour is not None else np.nan
        cost = _period_cost(dep, start, end)
        idle_cost = float(mine.loc[idle_mask, "Cost"].sum())
        prompt, cached, completion = (
            float(used[c].sum()) for c in ("PromptTokens", "CachedTokens", "CompletionTokens")
        )
        tokens = prompt + completion
        capacity = float(dep.TpmLimit) * 60.0 * hours
        util = float(consumed(used).sum()) / capacity if capacity > 0 and not used.empty else 0.0
        payg = _payg_cost(book, dep.Model, dep.Version, dep.Region, prompt, cached, completion, payg_sku(dep.Sku))
        effective = cost / tokens * 1e6 if tokens > 0 else np.nan
        payg_per_1m = payg / tokens * 1e6 if tokens > 0 and np.isfinite(payg) else np.nan
        breakeven = util * cost / payg if np.isfinite(payg) and payg > 0 and np.isfinite(cost) else np.nan
        out.append(
            {
                "Resource": dep.Resource,
                "Deployment": dep.Deployment,
                "Model": dep.Model,
                "Sku": dep.Sku,
                "Region": dep.Region,
                "Capacity": int(dep.Capacity),
                "Hours": hours,
                "PtuPerHour": price,
                "Cost": cost,
                "UsedCost": cost - idle_cost if np.isfinite(cost) else np.nan,
                "IdleCost": idle_cost if np.isfinite(cost) else np.nan,
                "Utilisation": util,
                "PromptTokens": prompt,
                "CachedTokens": cached,
                "CompletionTokens": completion,
                "Tokens": tokens,
                "EffectivePer1M": effective,
                "PaygSku": payg_sku(dep.Sku),
                "PaygCost": payg,
                "PaygPer1M": payg_per_1m,
                "ReservedPtus": float(getattr(dep, "ReservedPtus", 0.0) or 0.0),
                "BreakEvenUtilisation": breakeven,
                "Hint": break_even_hint(util, breakeven, cost, payg),
            }
        )
    return pd.DataFrame(out, columns=cols)


def _payg_cost(
    book: Any,
    model: str,
    version: str,
    region: str,
    prompt: float,
    cached: float,
    completion: float,
    sku: str = PAYG_SKU,
) -> float:
    if book is None:
        return np.nan
    frame = pd.DataFrame(
        {
            "model": [model],
            "version": [version],
            "sku": [sku],
            "region": [region],
            "prompt_tokens": [prompt],
            "cached_tokens": [cached],
            "completion_tokens": [completion],
        }
    )
    priced = book.price_usage(frame)
    if not bool(priced["priced"].iloc[0]):
        return np.nan
    return float(priced["cost"].iloc[0])


def break_even_hint(util: float, breakeven: float, cost: float, payg: float) -> str:
    if not np.isfinite(cost):
        return "no PTU price for this deployment"
    if not np.isfinite(breakeven):
        return "no pay-as-you-go price to compare with"
    if breakeven > 1.0:
        return (
            f"at this token mix pay-as-you-go stays cheaper even at 100% utilisation "
            f"(break-even {breakeven:.0%}); PTU buys latency, not savings"
        )
    verdict = "PTU is paying off" if util >= breakeven else "pay-as-you-go would have been cheaper"
    return f"PTU beats pay-as-you-go above {breakeven:.0%} utilisation; it ran at {util:.0%}: {verdict}"


def _reservation(book: Any, resource: str, deployment: str) -> Any:
    for r in getattr(book, "reservations", None) or ():
        if r.deployment == deployment and (not r.resource or r.resource.lower() == resource.lower()):
            return r
    return None


def ptu_deployments_frame(deployments: pd.DataFrame, book: Any) -> pd.DataFrame:
    """The provisioned deployments of a `lens.deployments().frame`, with their PTU-hour list price now
    (`PtuPerHour`, NaN if none), its timeline (`PtuTimeline`: [(from, price)]), where it came from, and
    the reservation that covers them (`ReservedPtus`, `ReservedPerHour`, `ReservationId`, `ReservationTerm`)."""
    deps = deployments[deployments["Sku"].map(is_ptu)].copy()
    deps["Resource"] = deps["Resource"].astype(str).str.lower()
    deps["Region"] = deps["Location"].astype(str)
    prices, lines, sources = [], [], []
    reserved: list[tuple[float, float, str, str]] = []
    timeline = getattr(book, "timeline", None)
    for d in deps.itertuples(index=False):
        p = book.lookup(d.Model, d.Version, d.Sku, d.Region) if book is not None else None
        value = getattr(p, "ptu_per_hour", None) if p is not None else None
        prices.append(float(value) if value is not None else np.nan)
        sources.append(str(getattr(p, "source", "") or ""))
        if callable(timeline):
            line = [
                (EPOCH if day is None else pd.Timestamp(day, tz="UTC"), getattr(q, "ptu_per_hour", None))
                for day, q, _ in timeline(d.Model, d.Version, d.Sku, d.Region)
            ]
        else:
            line = [(EPOCH, value)]
        lines.append(line)
        r = _reservation(book, str(d.Resource), str(d.Deployment))
        if r is None:
            reserved.append((0.0, np.nan, "", ""))
        else:
            ptus = float(min(r.quantity or d.Capacity, d.Capacity))
            price = r.amortised_per_hour
            reserved.append((ptus, np.nan if price is None else float(price), r.reservation_id, r.term))
    deps["PtuPerHour"] = prices
    deps["PtuTimeline"] = pd.Series(lines, index=deps.index, dtype=object)
    deps["PriceSource"] = sources
    deps["ReservedPtus"] = [r[0] for r in reserved]
    deps["ReservedPerHour"] = [r[1] for r in reserved]
    deps["ReservationId"] = [r[2] for r in reserved]
    deps["ReservationTerm"] = [r[3] for r in reserved]
    if "Created" not in deps.columns:
        deps["Created"] = pd.NaT
    return deps[
        [
            "Created",
            "Resource",
            "ResourceId",
            "Deployment",
            "Model",
            "Version",
            "Sku",
            "Region",
            "Capacity",
            "TpmLimit",
            "PtuPerHour",
            "PtuTimeline",
            "PriceSource",
            "ReservedPtus",
            "ReservedPerHour",
            "ReservationId",
            "ReservationTerm",
        ]
    ].reset_index(drop=True)


__all__ = [
    "OUTPUT_WEIGHT",
    "active_from",
    "break_even_hint",
    "consumed",
    "deployment_hours",
    "hour_grid",
    "hourly_cost",
    "is_ptu",
    "list_prices",
    "payg_sku",
    "period_cost",
    "ptu_deployments_frame",
    "ptu_summary",
    "share_ptu",
]
