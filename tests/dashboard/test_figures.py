"""figures.py: pure frame → Figure builders, checked on frames of a few rows."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard import figures

T0 = pd.Timestamp("2026-11-01T00:00:00Z")


def _t(i: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=i)


def test_colour_map_is_stable_whatever_the_subset_order() -> None:
    full = figures.colour_map(["b-dep", "a-dep", "c-dep"])
    again = figures.colour_map(["c-dep", "a-dep", "b-dep"])
    assert full == again
    assert len(set(full.values())) == 3
    assert full["a-dep"] == figures.PALETTE[0]


def test_colour_map_keeps_special_lines_grey() -> None:
    cmap = figures.colour_map(["support", "unallocated", "ptu idle"])
    assert cmap["unallocated"] == figures.OTHER
    assert cmap["ptu idle"] == figures.SPECIAL_COLOURS["ptu idle"]
    assert cmap["support"] == figures.PALETTE[0]


def test_given_colours_are_used_for_every_trace() -> None:
    frame = pd.DataFrame(
        {"TimeGenerated": [_t(0), _t(0), _t(1)], "Deployment": ["a", "b", "a"], "P95": [100.0, 200.0, 150.0]}
    )
    fig = figures.latency_over_time(frame, {"a": "#111111", "b": "#222222"})
    colours = {t.name: t.line.color for t in fig.data}
    assert colours == {"a": "#111111", "b": "#222222"}
    assert "ms" in fig.layout.yaxis.title.text


def test_status_over_time_stacks_classes_in_a_fixed_order_and_sums_deployments() -> None:
    frame = pd.DataFrame(
        {
            "TimeGenerated": [_t(0), _t(0), _t(0), _t(1)],
            "Deployment": ["a", "b", "a", "a"],
            "StatusClass": ["2xx", "2xx", "429", "5xx"],
            "Requests": [10, 5, 2, 1],
        }
    )
    fig = figures.status_over_time(frame)
    assert [t.name for t in fig.data] == ["2xx", "429", "5xx"]
    two = next(t for t in fig.data if t.name == "2xx")
    assert list(two.y) == [15.0, 0.0]
    assert fig.data[2].line.color == figures.STATUS_COLOURS["5xx"]


def test_error_rates_are_percent_of_each_deployments_requests() -> None:
    summary = pd.DataFrame(
        {"Deployment": ["a", "b", "idle"], "Requests": [200, 50, 0], "Throttled": [20, 0, 0], "ServerErrors": [2, 5, 0]}
    )
    fig = figures.error_rates_by_deployment(summary)
    rate429 = dict(zip(fig.data[0].x, fig.data[0].y, strict=True))
    rate5xx = dict(zip(fig.data[1].x, fig.data[1].y, strict=True))
    assert rate429 == {"a": pytest.approx(10.0), "b": pytest.approx(0.0)}
    assert rate5xx["b"] == pytest.approx(10.0)
    assert "idle" not in rate429  # no requests: no rate


def test_headroom_is_peak_over_limit() -> None:
    deps = pd.DataFrame({"Deployment": ["a", "b", "batch"], "TpmLimit": [1000, 4000, 0]})
    peaks = pd.DataFrame({"Deployment": ["a", "b", "batch"], "PeakTPM": [1100, 1000, 5]})
    f = figures.headroom_frame(deps, peaks)
    assert list(f["Deployment"]) == ["a", "b"]  # no limit, no headroom
    assert list(f["UsedPct"]) == [pytest.approx(110.0), pytest.approx(25.0)]
    assert list(f["HeadroomTPM"]) == [-100, 3000]
    fig = figures.quota_headroom(deps, peaks)
    assert fig.data[0].marker.color[0] == "#C62828"  # over the limit is red


def test_regional_quota_used_share() -> None:
    usages = pd.DataFrame(
        {"Location": ["eastus", "eastus"], "Name": ["gpt-4o", "none"], "Current": [150.0, 0.0], "Limit": [450.0, 0.0]}
    )
    fig = figures.regional_quota(usages)
    assert list(fig.data[0].x) == [pytest.approx(100 * 150 / 450)]
    assert "%" in fig.layout.xaxis.title.text


def test_stacked_money_chart_has_dollar_axis_and_biggest_group_first() -> None:
    frame = pd.DataFrame({"Day": [_t(0), _t(0), _t(24)], "Team": ["small", "big", "big"], "Cost": [1.0, 10.0, 12.0]})
    fig = figures.stacked_over_time(frame, "Day", "Team", "Cost", "USD per day", unit="$", bars=True)
    assert [t.name for t in fig.data] == ["big", "small"]
    assert fig.layout.yaxis.tickprefix == "$"
    assert fig.layout.barmode == "stack"


def test_budget_chart_marks_forecast_over_budget() -> None:
    frame = pd.DataFrame(
        {
            "Scope": ["team", "team"],
            "Name": ["a", "b"],
            "BudgetUSD": [100.0, 100.0],
            "ActualUSD": [50.0, 10.0],
            "ForecastUSD": [150.0, 40.0],
        }
    )
    fig = figures.budget_vs_actual(frame)
    forecast = next(t for t in fig.data if t.name == "forecast")
    assert forecast.marker.color[0] != forecast.marker.color[1]
    assert list(next(t for t in fig.data if t.name == "budget").y) == [100.0, 100.0]


def test_ptu_bars_split_used_and_idle() -> None:
    frame = pd.DataFrame(
        {"Deployment": ["ptu"], "PtuCostUSD": [100.0], "IdleCostUSD": [70.0], "PaygEquivalentUSD": [20.0]}
    )
    fig = figures.ptu_vs_payg(frame)
    by = {t.name: list(t.y) for t in fig.data}
    assert by["PTU used"] == [pytest.approx(30.0)]
    assert by["PTU idle"] == [70.0]
    assert by["same tokens pay-as-you-go"] == [20.0]


def test_probe_charts() -> None:
    probes = pd.DataFrame(
        {
            "ts": [1.7e9, 1.7e9 + 60, 1.7e9 + 120],
            "deployment": ["a", "a", "b"],
            "class": ["ok", "timeout", "ok"],
            "ttft_ms": [300.0, None, 200.0],
        }
    )
    fig = figures.ttft_over_time(probes)
    assert {t.name for t in fig.data} == {"a", "b"}
    fails = figures.probe_failures(probes)
    assert [t.name for t in fails.data] == ["timeout"]
    assert (
        figures.probe_failures(probes[probes["class"] == "ok"])
        .layout.annotations[0]
        .text.startswith("No probe failures")
    )


@pytest.mark.parametrize(
    "build",
    [
        lambda e: figures.status_over_time(e),
        lambda e: figures.latency_over_time(e),
        lambda e: figures.latency_percentiles(e),
        lambda e: figures.tokens_over_time(e),
        lambda e: figures.error_rates_by_deployment(e),
        lambda e: figures.regional_quota(e),
        lambda e: figures.activity_by_resource(e),
        lambda e: figures.ingestion_lag(e),
        lambda e: figures.transitions_timeline(e),
        lambda e: figures.budget_vs_actual(e),
        lambda e: figures.ptu_vs_payg(e),
    ],
)
def test_empty_frames_say_no_data(build) -> None:  # type: ignore[no-untyped-def]
    fig = build(pd.DataFrame())
    assert not fig.data
    assert fig.layout.annotations and fig.layout.annotations[0].text
