"""The cost model as the pages see it: an allocation for a period, wrapped as a QueryResult.

`queries.cost.report.allocate` does the work (prices, attribution, PTU sharing). Four pages want the
same allocation (Overview, Cost, Features & teams, Data health), so the result is kept for a minute per
(lens, start, end). A failure becomes a failed result, shown in the panels that need it and nowhere else.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from dashboard.data import Context, failed
from queries.results import QueryResult, portal_link

BUCKET_S = 300  # cost views are as fresh as the last 5-minute mark
TTL_S = 300.0
_memo: dict[tuple[int, str, str], tuple[float, Any, QueryResult]] = {}
_memo_lock = threading.Lock()
_flights: dict[tuple[int, str, str], threading.Lock] = {}


@dataclass(frozen=True)
class Allocation:
    result: Any  # queries.cost.report.AllocationResult, or None when the cost model failed
    envelope: QueryResult  # status, notices, the KQL it ran and its portal link

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def rows(self) -> pd.DataFrame:
        return self.result.rows if self.result is not None else pd.DataFrame()


def bucket(t: datetime) -> datetime:
    t = t.astimezone(UTC).replace(second=0, microsecond=0)
    return t - timedelta(minutes=t.minute % (BUCKET_S // 60))


def allocation(ctx: Context, start: datetime, end: datetime) -> Allocation:
    """The cost model's allocation over [start, end), both rounded down to BUCKET_S so that everyone
    opening a cost view within a few minutes shares one computation (one computes, the others wait)."""
    start, end = bucket(start), bucket(end)
    key = (id(ctx.lens), start.isoformat(), end.isoformat())
    with _memo_lock:
        flight = _flights.setdefault(key, threading.Lock())
    with flight:
        now = time.monotonic()
        with _memo_lock:
            hit = _memo.get(key)
            if hit and now - hit[0] < TTL_S:
                return Allocation(hit[1], hit[2])
        result = _allocate(ctx, start, end, key, now)
    with _memo_lock:
        _flights.pop(key, None)
    return result


def _allocate(ctx: Context, start: datetime, end: datetime, key: tuple[int, str, str], now: float) -> Allocation:
    kql, portal = "", None
    try:
        _spec, tr, kql = ctx.lens.render("cost_usage_by_caller", start=start, end=end, bin=timedelta(hours=1))
        scope = getattr(ctx.lens, "scope_resource_id", "")
        portal = portal_link(kql, scope, tr.start, tr.end) if scope else None
    except Exception:  # the KQL is a courtesy; the allocation below reports real failures
        pass
    try:
        from queries.cost.report import allocate

        result = allocate(ctx.lens, ctx.settings, start, end)
    except Exception as e:
        return Allocation(None, failed("cost allocation", f"{type(e).__name__}: {e}", kql))
    notices = list(getattr(result, "notices", []) or [])
    failed_inputs = [n for n in notices if ": failed" in n]
    status = "partial" if notices and (failed_inputs or any(": partial" in n for n in notices)) else "ok"
    env = QueryResult(
        name="cost allocation",
        frame=result.rows,
        status=status,  # type: ignore[arg-type]
        notice="; ".join(notices) if status != "ok" else None,
        kql=kql,
        portal_url=portal,
        source="cost model",
    )
    with _memo_lock:
        if len(_memo) > 32:
            _memo.clear()
        _memo[key] = (now, result, env)
    return Allocation(result, env)


def month_start(now: datetime) -> datetime:
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_end(now: datetime) -> datetime:
    s = month_start(now)
    return (s + timedelta(days=32)).replace(day=1)


def forecast_month(actual_mtd: float, now: datetime) -> float:
    """Linear run-rate forecast to the end of the month: spend so far / elapsed share of the month."""
    s, e = month_start(now), month_end(now)
    elapsed = (now - s) / (e - s)
    return actual_mtd / elapsed if elapsed > 0 else actual_mtd


def budgets_frame(ctx: Context, mtd: Allocation, now: datetime) -> tuple[pd.DataFrame, str | None]:
    """Scope, Name, BudgetUSD, ActualUSD, ForecastUSD, PacePct (+ Status, OverrunDate) per budget.

    From `queries.cost.budgets.budgets_status` (pace = month to date against the budget spread over the
    month so far; forecast from the recent run rate). Should it fail, the month's allocated cost per
    team/feature with a linear forecast, so the panel still shows spend against budget."""
    try:
        from queries.cost.budgets import budgets_status

        return _normalise_budgets(budgets_status(ctx.lens, ctx.settings, now)), None
    except Exception as e:
        notice = f"budgets_status failed ({type(e).__name__}: {e}); showing a linear forecast"
    rows = mtd.rows
    out = []
    for b in ctx.settings.budgets:
        col = "Team" if b.scope == "team" else "Feature"
        spent = 0.0
        if not rows.empty and col in rows.columns:
            mine = rows[(rows[col] == b.name) & rows["Priced"].astype(bool)]
            spent = float(mine["Cost"].sum())
        fc = forecast_month(spent, now)
        out.append(
            {
                "Scope": b.scope,
                "Name": b.name,
                "BudgetUSD": float(b.monthly_usd),
                "ActualUSD": spent,
                "ForecastUSD": fc,
                "PacePct": 100.0 * fc / float(b.monthly_usd),
            }
        )
    return pd.DataFrame(out, columns=["Scope", "Name", "BudgetUSD", "ActualUSD", "ForecastUSD", "PacePct"]), notice


def _normalise_budgets(frame: pd.DataFrame) -> pd.DataFrame:
    """Map the cost model's budget columns onto the figure's (tolerating either spelling)."""
    rename: dict[str, str] = {}
    for want, options in {
        "Scope": ("Scope", "scope"),
        "Name": ("Name", "name", "Budget"),
        "BudgetUSD": ("BudgetUSD", "Budget", "MonthlyUSD", "monthly_usd", "BudgetUsd"),
        "ActualUSD": ("ActualUSD", "MTD", "MonthToDate", "Actual", "SpentUSD", "ActualUsd", "MtdUsd"),
        "ForecastUSD": ("ForecastUSD", "Forecast", "ForecastUsd"),
    }.items():
        for o in options:
            if o in frame.columns and want not in rename.values():
                rename[o] = want
                break
    f = frame.rename(columns=rename)
    if not {"Name", "BudgetUSD", "ActualUSD", "ForecastUSD"} <= set(f.columns):
        raise ValueError("budgets_status returned unknown columns")
    if "Scope" not in f.columns:
        f["Scope"] = ""
    f["PacePct"] = (
        100.0 * f["Pace"].astype(float)
        if "Pace" in f.columns
        else 100.0 * f["ForecastUSD"].astype(float) / f["BudgetUSD"].astype(float)
    )
    extra = [c for c in ("Status", "OverrunDate") if c in f.columns]
    return f[["Scope", "Name", "BudgetUSD", "ActualUSD", "ForecastUSD", "PacePct", *extra]]


def spend_by(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Day, <column>, Cost over priced rows; the unallocated, probe and idle lines keep their category."""
    if rows.empty or column not in rows.columns:
        return pd.DataFrame(columns=["Day", column, "Cost"])
    r = rows[rows["Priced"].astype(bool)].copy()
    label = r[column].fillna("").astype(str)
    if "Category" in r.columns and column in ("Team", "Feature", "CostCenter"):
        label = label.where(r["Category"] == "allocated", r["Category"].astype(str))
    r[column] = label.replace("", "(none)")
    r["Day"] = pd.to_datetime(r["Day"], utc=True)
    return r.groupby(["Day", column], as_index=False)["Cost"].sum()


def shares(result: Any) -> pd.DataFrame:
    """Part, Cost, Share: allocated, unallocated, probes, PTU idle (priced), and unpriced tokens."""
    rows = result.rows
    totals = result.category_totals()
    total = sum(totals.values())
    out = [{"Part": k, "Cost": v, "Share": (v / total if total else np.nan)} for k, v in totals.items()]
    unpriced = rows[~rows["Priced"].astype(bool)]
    tokens = float(unpriced[["PromptTokens", "CompletionTokens"]].sum().sum()) if not unpriced.empty else 0.0
    all_tokens = float(rows[["PromptTokens", "CompletionTokens"]].sum().sum()) if not rows.empty else 0.0
    out.append({"Part": "unpriced (tokens)", "Cost": np.nan, "Share": tokens / all_tokens if all_tokens else 0.0})
    return pd.DataFrame(out)


def ptu_frame(result: Any) -> pd.DataFrame:
    """Deployment, PtuCostUSD, IdleCostUSD, PaygEquivalentUSD (+ utilisation and effective prices)."""
    p = getattr(result, "ptu", None)
    if p is None or p.empty:
        return pd.DataFrame(columns=["Deployment", "PtuCostUSD", "IdleCostUSD", "PaygEquivalentUSD"])
    f = p.rename(columns={"Cost": "PtuCostUSD", "IdleCost": "IdleCostUSD", "PaygCost": "PaygEquivalentUSD"})
    keep = [
        c
        for c in [
            "Deployment",
            "PtuCostUSD",
            "IdleCostUSD",
            "PaygEquivalentUSD",
            "Utilisation",
            "EffectivePer1M",
            "PaygPer1M",
            "BreakEvenUtilisation",
            "Hint",
        ]
        if c in f.columns
    ]
    return f[keep]
