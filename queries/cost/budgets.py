"""Budgets per team and feature: month to date, forecast to month end, pace, projected overrun date.

For each budget in settings (`[[budgets]]`, scope team or feature, monthly_usd), from the allocated
daily cost (chargeback only: no unallocated, probes or idle PTU):

- ``MonthlyUSD``: the budget; ``MonthToDate``: cost from the first of the month to now;
- ``BudgetToDate``: the budget spread linearly over the month, up to now; ``Pace`` = MonthToDate /
  BudgetToDate (1.0 = exactly on pace, above 1 = spending faster than the budget allows);
- ``RunRate``: the mean daily cost over the last `RUN_RATE_DAYS` (7) complete days before today (fewer
  when the data starts later; ``RunRateDays`` says how many);
- ``Forecast`` = MonthToDate + RunRate x the days left in the month (fractional);
- ``OverrunDate``: the day the budget was or will be exceeded: the day cumulative spend crossed it when
  already over, else now + (budget - MonthToDate) / RunRate when that falls inside the month, else none.
- ``Status``: "over" (already over), "at risk" (forecast above budget), "near" (forecast above 90%) or "ok".

The forecast is `queries.cost.forecast.month_end_forecast`, the same one the pages and the budget alert
use. `budget_status` is the pure function (tests compute its cases by hand); `budgets_status(lens,
settings, now)` reads the month-to-date allocation the pages share and calls it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from queries.config import Budget, Settings
from queries.cost.attribution import ALLOCATED
from queries.cost.forecast import RUN_RATE_DAYS, month_bounds, month_end_forecast
from queries.reader import LensLike

NEAR = 0.9

COLUMNS = [
    "Scope",
    "Name",
    "MonthlyUSD",
    "MonthToDate",
    "BudgetToDate",
    "Pace",
    "RunRate",
    "RunRateDays",
    "Forecast",
    "ForecastPct",
    "OverrunDate",
    "Status",
]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def daily_costs(rows: pd.DataFrame) -> pd.DataFrame:
    """Allocated, priced cost per Day, Scope (team / feature) and Name, from `AllocationResult.rows`."""
    alloc = rows[(rows["Category"] == ALLOCATED) & rows["Priced"]]
    parts = []
    for scope, col in (("team", "Team"), ("feature", "Feature")):
        g = alloc.groupby(["Day", col])["Cost"].sum().reset_index().rename(columns={col: "Name"})
        g["Scope"] = scope
        parts.append(g)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["Day", "Name", "Cost", "Scope"])
    return out[["Day", "Scope", "Name", "Cost"]]


def budget_status(
    daily: pd.DataFrame, budgets: list[Budget], now: datetime, run_rate_days: int = RUN_RATE_DAYS
) -> pd.DataFrame:
    """`daily`: Day (UTC midnight), Scope, Name, Cost. One line per budget (see the module docstring)."""
    now = _utc(now)
    first, nxt = month_bounds(now)
    month_days = (nxt - first).total_seconds() / 86400.0
    elapsed = (now - first).total_seconds() / 86400.0
    d = daily.copy()
    d["Day"] = pd.to_datetime(d["Day"], utc=True)
    data_start = d["Day"].min().to_pydatetime() if not d.empty else None
    out = []
    for b in budgets:
        mine = d[(d["Scope"] == b.scope) & (d["Name"] == b.name)].groupby("Day")["Cost"].sum().sort_index()
        fc = month_end_forecast(mine, now, data_start=data_start, run_rate_days=run_rate_days)
        mtd, rate, forecast = fc.month_to_date, fc.run_rate, fc.forecast
        month = mine[(mine.index >= first) & (mine.index < nxt)]
        to_date = b.monthly_usd * elapsed / month_days
        overrun: pd.Timestamp | None = None
        if mtd > b.monthly_usd:
            crossed = month.cumsum()
            overrun = crossed[crossed > b.monthly_usd].index[0].normalize()
        elif rate > 0:
            when = now + timedelta(days=(b.monthly_usd - mtd) / rate)
            if when < nxt:
                overrun = pd.Timestamp(when).normalize()
        if mtd > b.monthly_usd:
            status = "over"
        elif forecast > b.monthly_usd:
            status = "at risk"
        elif forecast > NEAR * b.monthly_usd:
            status = "near"
        else:
            status = "ok"
        out.append(
            {
                "Scope": b.scope,
                "Name": b.name,
                "MonthlyUSD": b.monthly_usd,
                "MonthToDate": mtd,
                "BudgetToDate": to_date,
                "Pace": mtd / to_date if to_date > 0 else np.nan,
                "RunRate": rate,
                "RunRateDays": fc.run_rate_days,
                "Forecast": forecast,
                "ForecastPct": forecast / b.monthly_usd,
                "OverrunDate": overrun.date() if overrun is not None else None,
                "Status": status,
            }
        )
    return pd.DataFrame(out, columns=COLUMNS)


def budgets_status(
    lens: LensLike, settings: Settings, now: datetime | None = None, *, book: Any = None
) -> pd.DataFrame:
    """Every budget from the month-to-date allocation (the one the pages share, `service.month_to_date`)."""
    from queries.cost.service import month_to_date

    now = _utc(now or datetime.now(UTC))
    result = month_to_date(lens, now, book=book)
    return budget_status(daily_costs(result.rows), list(settings.budgets), now)
