"""Quota headroom (TPM, RPM, pools) and the time-to-limit forecast, on frames small enough to check by hand,
and on the demo workspace (the planted nightly evaluation suite grows agent-o4-mini's peak RPM)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queries import quota
from queries.config import Settings
from queries.lens import Lens

DAY0 = pd.Timestamp("2026-11-20T00:00Z")


def days(values: list[float]) -> pd.Series:
    return pd.Series(values, index=[DAY0 + pd.Timedelta(days=i) for i in range(len(values))], dtype=float)


DEPLOYMENTS = pd.DataFrame(
    {
        "Resource": ["east", "east", "west", "sweden", "east"],
        "Location": ["eastus", "eastus", "westus", "swedencentral", "eastus"],
        "Deployment": ["chat", "agent", "chat-west", "rag", "ptu"],
        "Sku": ["GlobalStandard", "GlobalStandard", "GlobalStandard", "DataZoneStandard", "GlobalProvisionedManaged"],
        "Model": ["gpt-4o", "o4-mini", "gpt-4o", "gpt-4.1", "gpt-4o"],
        "Capacity": [100, 60, 50, 120, 15],
        "TpmLimit": [100_000, 60_000, 50_000, 120_000, 37_500],
        "RpmLimit": [600, 60, 300, 120, 225],
    }
)
# a Global pool reported by both regions with the same numbers; a Data Zone pool; a regional pool no one uses
USAGES = pd.DataFrame(
    {
        "Location": ["eastus", "westus", "eastus", "swedencentral", "westus"],
        "Name": [
            "OpenAI.GlobalStandard.gpt-4o",
            "OpenAI.GlobalStandard.gpt-4o",
            "OpenAI.GlobalStandard.o4-mini",
            "OpenAI.DataZoneStandard.gpt-4.1",
            "OpenAI.Standard.gpt-4o-mini",
        ],
        "Sku": ["GlobalStandard", "GlobalStandard", "GlobalStandard", "DataZoneStandard", "Standard"],
        "Model": ["gpt-4o", "gpt-4o", "o4-mini", "gpt-4.1", "gpt-4o-mini"],
        "Current": [150.0, 150.0, 60.0, 120.0, 0.0],
        "Limit": [200.0, 200.0, 1000.0, 300.0, 450.0],
    }
)


def test_theil_sen_fit_ignores_a_burst_day() -> None:
    # a steady +2/day with one burst day: the median of the ten pairwise slopes is 2, the median of
    # y - 2x is 10, so the line is 10 + 2x and stands at 18 on the last day (least squares would say 0.4/day + ...)
    trend = quota.fit(days([10, 12, 60, 16, 18]))
    assert trend is not None
    assert trend.slope == pytest.approx(2.0) and trend.latest == pytest.approx(18.0) and trend.days == 5
    out = quota.time_to_limit(trend, 30.0, DAY0.to_pydatetime() + timedelta(days=4))
    assert out["DaysToLimit"] == pytest.approx(6.0)  # (30 - 18) / 2
    assert out["CrossesOn"] == date(2026, 11, 30) and out["Verdict"] == "crosses in 6 days (2026-11-30)"


def test_days_before_the_first_traffic_are_left_out() -> None:
    trend = quota.fit(days([0, 0, 5, 6, 7]))
    assert trend is not None and trend.days == 3 and trend.slope == pytest.approx(1.0)
    assert quota.fit(days([0, 0, 0, 6, 7])) is None  # two days of traffic: too few
    assert quota.time_to_limit(None, 10, DAY0.to_pydatetime())["Verdict"] == "fewer than 3 complete days"


def test_verdicts() -> None:
    last = DAY0.to_pydatetime()
    assert quota.time_to_limit(quota.Trend(1.0, 12.0, 14), 10.0, last)["Verdict"] == "at the limit now"
    assert quota.time_to_limit(quota.Trend(-1.0, 5.0, 14), 10.0, last)["Verdict"] == "not growing"
    far = quota.time_to_limit(quota.Trend(0.01, 5.0, 14), 10.0, last)
    assert far["Verdict"] == "not within 90 days" and math.isnan(far["DaysToLimit"])
    assert quota.time_to_limit(quota.Trend(1.0, 5.0, 14), 0.0, last)["Verdict"] == "no limit known"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.floats(min_value=-50, max_value=50),
    st.floats(min_value=0, max_value=1000),
    st.integers(min_value=3, max_value=20),
)
def test_an_exact_line_is_recovered(slope: float, intercept: float, n: int) -> None:
    values = [intercept + slope * i for i in range(n)]
    if values[0] <= 0:  # a line starting at zero or below loses its leading days: not this property
        return
    trend = quota.fit(days(values))
    assert trend is not None
    assert trend.slope == pytest.approx(slope, abs=1e-6)
    assert trend.latest == pytest.approx(values[-1], abs=1e-6)


def test_pools_by_scope() -> None:
    p = quota.pools(DEPLOYMENTS, USAGES).set_index("Pool")
    assert list(p.index) == [
        "data zone EU · DataZoneStandard · gpt-4.1",
        "subscription · GlobalStandard · gpt-4o",
        "subscription · GlobalStandard · o4-mini",
        "westus · Standard · gpt-4o-mini",
    ]
    glob = p.loc["subscription · GlobalStandard · gpt-4o"]
    # reported by two regions, counted once; both regions' deployments draw on it
    assert (glob["LimitK"], glob["AllocatedK"], glob["Deployments"]) == (200.0, 150.0, "chat, chat-west")
    assert p.loc["data zone EU · DataZoneStandard · gpt-4.1", "Deployments"] == "rag"
    assert p.loc["westus · Standard · gpt-4o-mini", "Deployments"] == ""
    assert quota.data_zone("East US") == "US" and quota.data_zone("atlantis") == "zone of atlantis"


def test_headroom_names_the_tighter_limit() -> None:
    peaks = pd.DataFrame(
        {"Deployment": ["chat", "agent", "chat-west"], "PeakTPM": [80_000, 6_000, 30_000], "PeakRPM": [60, 57, 10]}
    )
    h = quota.headroom(DEPLOYMENTS, peaks, USAGES).set_index("Name")
    assert "ptu" not in h.index  # provisioned: judged by its utilisation metric
    agent = h.loc["agent"]
    assert agent["Binding"] == "RPM" and agent["HeadroomPct"] == pytest.approx(5.0)  # 57 of 60 RPM; TPM 10%
    chat = h.loc["chat"]
    assert chat["Binding"] == "TPM" and chat["HeadroomPct"] == pytest.approx(20.0)
    glob = h.loc["subscription · GlobalStandard · gpt-4o"]
    # the pool: both regions' deployments' peaks (80K + 30K) against 200K TPM
    assert glob["PeakTPM"] == 110_000 and glob["HeadroomPct"] == pytest.approx(45.0)
    assert h.index[0] == "agent"  # tightest first


def test_forecast_on_a_small_frame() -> None:
    rows = []
    for i in range(5):
        day = DAY0 + pd.Timedelta(days=i)
        rows.append((day, "agent", 6_000, 40 + 2 * i))  # RPM 40..48, +2/day: 60 in (60-48)/2 = 6 days
        rows.append((day, "chat", 50_000 + 10_000 * i, 30))  # TPM 50K..90K
        rows.append((day, "chat-west", 40_000, 5))
    daily = pd.DataFrame(rows, columns=["Day", "Deployment", "PeakTPM", "PeakRPM"])
    f = quota.forecast(daily, DEPLOYMENTS, USAGES)
    by = {(r.Kind, r.Name, r.Limit): r for r in f.itertuples()}
    agent = by[("deployment", "agent", "RPM")]
    assert agent.DaysToLimit == pytest.approx(6.0) and agent.CrossesOn == date(2026, 11, 30) and agent.HistoryDays == 5
    chat = by[("deployment", "chat", "TPM")]
    assert chat.DaysToLimit == pytest.approx(1.0)  # 90K + 10K/day reaches 100K in a day
    pool = by[("pool", "subscription · GlobalStandard · gpt-4o", "TPM")]
    # its demand: chat + chat-west, 90K..130K; 130K + 10K/day reaches 200K in 7 days
    assert pool.Latest == pytest.approx(130_000) and pool.DaysToLimit == pytest.approx(7.0)
    assert by[("deployment", "chat-west", "TPM")].Verdict == "not growing"
    assert ("deployment", "ptu", "TPM") not in by
    assert list(f["Name"][:3]) == ["chat", "agent", "subscription · GlobalStandard · gpt-4o"]  # soonest first


def test_the_history_window_is_the_complete_days_before_today() -> None:
    start, end = quota.history_window(datetime(2026, 12, 1, 15, 30, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 11, 17, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_the_demo_plants_a_deployment_that_reaches_its_limit(demo_settings: Settings, demo_end: datetime) -> None:
    from queries.demo.seed import Seeder

    lens = Lens.from_settings(demo_settings)
    frame, results = quota.forecast_for(lens, demo_end)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    crossing = frame[frame["DaysToLimit"].notna()]
    first = crossing.iloc[0]
    # the suite grows by one call a day against agent-o4-mini's 60 RPM
    assert (first["Name"], first["Limit"]) == ("agent-o4-mini", "RPM")
    # a call that starts late in the suite's minute is logged in the next one, so a day's peak minute
    # holds zero to two calls fewer than the day's cases, and which days lose them moves with the hour the
    # session's workspace ends (fitted 0.83, 1.0 and 1.5 a day at 02:20, 01:50 and 03:03 UTC): growth
    # near the planted rate, a crossing within the horizon
    assert first["SlopePerDay"] == pytest.approx(Seeder.EVAL_CASES_PER_DAY, abs=0.75)
    assert 5 <= first["DaysToLimit"] <= 30
    assert first["HistoryDays"] >= quota.MIN_DAYS
