"""Budgets by hand: month to date, linear budget to date and pace, the 7-day run rate, the forecast to
month end and the projected (or past) overrun date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from queries.config import Budget
from queries.cost.budgets import budget_status, daily_costs

NOW = datetime(2026, 11, 11, 12, tzinfo=UTC)  # 10.5 of November's 30 days gone, 19.5 left


def _daily() -> pd.DataFrame:
    days = {f"2026-10-{d:02d}": 50.0 for d in range(25, 32)}  # last month: outside MTD and the window
    days.update({f"2026-11-{d:02d}": 0.0 for d in (1, 2, 3)})
    days.update({f"2026-11-{d:02d}": 10.0 for d in range(4, 11)})  # the 7 complete days before today
    days["2026-11-11"] = 5.0  # today, so far
    return pd.DataFrame(
        {"Day": pd.to_datetime(list(days), utc=True), "Scope": "team", "Name": "t", "Cost": list(days.values())}
    )


def test_forecast_pace_and_overrun_date_by_hand() -> None:
    budgets = [
        Budget(scope="team", name="t", monthly_usd=250),
        Budget(scope="team", name="t", monthly_usd=300),
        Budget(scope="team", name="t", monthly_usd=60),
        Budget(scope="feature", name="nobody", monthly_usd=100),
    ]
    st = budget_status(_daily(), budgets, NOW)
    at_risk, ok, over, idle = (st.iloc[i] for i in range(4))
    # MTD = 7 x 10 + 5 = 75; run rate = 70 / 7 = 10 a day; forecast = 75 + 10 x 19.5 = 270
    assert at_risk["MonthToDate"] == pytest.approx(75.0)
    assert at_risk["RunRate"] == pytest.approx(10.0) and at_risk["RunRateDays"] == 7
    assert at_risk["Forecast"] == pytest.approx(270.0)
    assert at_risk["BudgetToDate"] == pytest.approx(250 * 10.5 / 30)
    assert at_risk["Pace"] == pytest.approx(75 / (250 * 10.5 / 30))
    # 250 is reached (250 - 75) / 10 = 17.5 days after Nov 11 12:00: Nov 29
    assert at_risk["OverrunDate"] == date(2026, 11, 29) and at_risk["Status"] == "at risk"
    # 300: forecast 270 = 90% -> not over, not above 90%: ok, no overrun this month
    assert ok["OverrunDate"] is None and ok["Status"] == "ok" and ok["ForecastPct"] == pytest.approx(0.9)
    # 60: already over; cumulative 10, 20, ... passes 60 on Nov 10
    assert over["Status"] == "over" and over["OverrunDate"] == date(2026, 11, 10)
    assert (idle["MonthToDate"], idle["Forecast"], idle["Status"]) == (0.0, 0.0, "ok")


def test_run_rate_uses_fewer_days_when_data_starts_inside_the_window() -> None:
    d = _daily()
    d = d[d["Day"] >= pd.Timestamp("2026-11-08", tz="UTC")]  # data only from Nov 8
    st = budget_status(d, [Budget(scope="team", name="t", monthly_usd=1000)], NOW)
    # complete days Nov 8, 9, 10: 30 / 3
    assert st.iloc[0]["RunRateDays"] == 3 and st.iloc[0]["RunRate"] == pytest.approx(10.0)


def test_daily_costs_count_only_allocated_priced_rows() -> None:
    rows = pd.DataFrame(
        {
            "Day": pd.to_datetime(["2026-11-01"] * 4, utc=True),
            "Team": ["x", "x", "", "x"],
            "Feature": ["f", "f", "", "f"],
            "Category": ["allocated", "allocated", "unallocated", "allocated"],
            "Priced": [True, True, True, False],
            "Cost": [1.0, 2.0, 4.0, float("nan")],
        }
    )
    d = daily_costs(rows).set_index(["Scope", "Name"])
    assert d.loc[("team", "x"), "Cost"] == 3.0 and d.loc[("feature", "f"), "Cost"] == 3.0
    assert len(d) == 2
