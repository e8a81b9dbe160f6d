"""The one month-end forecast, used by the Overview and Cost pages, the budgets and the budget alert.

Method (named wherever a forecast is shown, `METHOD`): month to date + the mean daily cost of the last
`RUN_RATE_DAYS` complete days before today × the days left in the month (fractional). The window reaches
into last month early in a month, so the first day's forecast rests on a week of history instead of a
few hours; with less history than the window (a new deployment, a young workspace) the mean is over the
complete days there are, and `run_rate_days` says how many. With no complete day at all, the forecast is
the month to date (nothing to extrapolate from), and `run_rate_days` is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

RUN_RATE_DAYS = 7
METHOD = f"month to date + the mean of the last {RUN_RATE_DAYS} complete days × days left"


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    """[first of the month, first of the next month) in UTC."""
    first = _utc(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first, (first + timedelta(days=32)).replace(day=1)


def history_start(now: datetime, run_rate_days: int = RUN_RATE_DAYS) -> datetime:
    """The earliest time a forecast at `now` reads: the first of the month or the run-rate window's
    start, whichever is earlier."""
    first, _ = month_bounds(now)
    today = _utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(first, today - timedelta(days=run_rate_days))


@dataclass(frozen=True)
class MonthForecast:
    month_to_date: float
    run_rate: float  # per day
    run_rate_days: int  # complete days the run rate is the mean of
    forecast: float
    method: str = METHOD


def daily(values: pd.Series, times: pd.Series) -> pd.Series:
    """Cost per UTC day from costs and their (hourly or daily) times."""
    days = pd.to_datetime(times, utc=True).dt.floor("D")
    return pd.Series(values.to_numpy(dtype=float), index=days).groupby(level=0).sum().sort_index()


def month_end_forecast(
    per_day: pd.Series,
    now: datetime,
    *,
    data_start: datetime | None = None,
    run_rate_days: int = RUN_RATE_DAYS,
) -> MonthForecast:
    """`per_day`: cost indexed by UTC day. `data_start`: the first day the data covers (default: the
    first day in `per_day`), so a series with no spend on its first days is not mistaken for young."""
    now = _utc(now)
    first, nxt = month_bounds(now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    window_start = today - timedelta(days=run_rate_days)
    s = per_day.copy()
    s.index = pd.to_datetime(s.index, utc=True)
    earliest = data_start if data_start is not None else (s.index.min() if len(s) else None)
    n_days = run_rate_days
    if earliest is not None and not pd.isna(earliest):
        start = max(window_start, pd.Timestamp(earliest).to_pydatetime())
        n_days = max(0, min(run_rate_days, (today - start).days))
    mtd = float(s[(s.index >= first) & (s.index < nxt) & (s.index <= now)].sum())
    complete = s[(s.index >= window_start) & (s.index < today)]
    rate = float(complete.sum()) / n_days if n_days else 0.0
    left = (nxt - now).total_seconds() / 86400.0
    return MonthForecast(month_to_date=mtd, run_rate=rate, run_rate_days=n_days, forecast=mtd + rate * left)
