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


# ---- names from the logs are text, never markup --------------------------------------------------------
LINK = '<a href="https://evil.example/phish">open</a>'
TAG = "<b onmouseover=alert(1)>R&D</b>"


def _hostile_builds() -> dict[str, object]:
    """Every public figure builder, fed frames whose names (deployments, teams, resources, rules,
    reasons, labels) are markup."""
    a, b = LINK, TAG
    t = [_t(0), _t(0), _t(1)]
    ts = [1.8e9, 1.8e9 + 60, 1.8e9 + 120]
    probes = pd.DataFrame(
        {"ts": ts, "deployment": [a, b, a], "class": ["ok", "timeout", a], "ttft_ms": [300.0, None, 310.0]}
    )
    return {
        "status_over_time": figures.status_over_time(
            pd.DataFrame({"TimeGenerated": t, "StatusClass": ["2xx", "429", "2xx"], "Requests": [1, 2, 3]})
        ),
        "error_rates_by_deployment": figures.error_rates_by_deployment(
            pd.DataFrame({"Deployment": [a, b], "Requests": [10, 20], "Throttled": [1, 2], "ServerErrors": [0, 1]})
        ),
        "latency_over_time": figures.latency_over_time(
            pd.DataFrame({"TimeGenerated": t, "Deployment": [a, b, a], "P95": [1.0, 2.0, 3.0]})
        ),
        "latency_percentiles": figures.latency_percentiles(
            pd.DataFrame(
                {"Deployment": [a, b], "StreamType": [b, "Streaming"], "P50": [1, 2], "P95": [2, 3], "P99": [3, 4]}
            )
        ),
        "quota_headroom": figures.quota_headroom(
            pd.DataFrame({"Deployment": [a, b], "TpmLimit": [1000, 2000]}),
            pd.DataFrame({"Deployment": [a, b], "PeakTPM": [900, 100]}),
        ),
        "regional_quota": figures.regional_quota(
            pd.DataFrame({"Location": [a], "Name": [b], "Current": [1], "Limit": [10]})
        ),
        "ttft_over_time": figures.ttft_over_time(probes),
        "metric_tokens": figures.metric_tokens(
            pd.DataFrame(
                {
                    "Deployment": [a, b],
                    "PromptTokens": [1.0, 2.0],
                    "GeneratedTokens": [1.0, 1.0],
                    "TotalTokens": [2.0, 3.0],
                }
            )
        ),
        "probe_failures": figures.probe_failures(probes),
        "tokens_over_time": figures.tokens_over_time(
            pd.DataFrame(
                {"TimeGenerated": t, "Deployment": [a, b, a], "PromptTokens": [1, 2, 3], "CompletionTokens": [1, 1, 1]}
            )
        ),
        "stacked_over_time": figures.stacked_over_time(
            pd.DataFrame({"Day": t, "Team": [a, b, a], "Cost": [1.0, 2.0, -3.5]}), "Day", "Team", "Cost", b, unit="$"
        ),
        "budget_vs_actual": figures.budget_vs_actual(
            pd.DataFrame({"Scope": [a], "Name": [b], "BudgetUSD": [10.0], "ActualUSD": [5.0], "ForecastUSD": [12.0]})
        ),
        "shares_bar": figures.shares_bar(pd.DataFrame({"Team": [a, b], "Cost": [1.0, 2.0]}), "Team", "Cost", x_title=b),
        "ptu_vs_payg": figures.ptu_vs_payg(
            pd.DataFrame({"Deployment": [a], "PtuCostUSD": [10.0], "IdleCostUSD": [2.0], "PaygEquivalentUSD": [7.0]})
        ),
        "sparkline": figures.sparkline(pd.Series(t), pd.Series([1.0, 2.0, 3.0])),
        "activity_by_resource": figures.activity_by_resource(
            pd.DataFrame({"TimeGenerated": t, "Resource": [a, b, a], "Requests": [1, 2, 3]})
        ),
        "ingestion_lag": figures.ingestion_lag(
            pd.DataFrame({"Resource": [a], "Category": [b], "LagP50Sec": [1.0], "LagP95Sec": [2.0]})
        ),
        "transitions_timeline": figures.transitions_timeline(
            pd.DataFrame(
                {
                    "ts": ts,
                    "rule": [a, "r", "r"],
                    "subject": [b, a, "s"],
                    "new": ["firing", a, "ok"],
                    "reason": [a, b, ""],
                }
            )
        ),
        "client_errors_by_kind": figures.client_errors_by_kind(
            pd.DataFrame({"Deployment": [a, b, a], "Kind": ["content filter", a, b], "Requests": [1, 2, 3]})
        ),
        "days_to_retirement": figures.days_to_retirement(
            pd.DataFrame(
                {
                    "Account": [a, b],
                    "Deployment": [b, a],
                    "Model": [a, "gpt-4o"],
                    "Version": [b, "2024-08-06"],
                    "DaysToRetirement": [10.0, 200.0],
                }
            ),
            90,
        ),
        "estimate_vs_billed": figures.estimate_vs_billed(
            pd.DataFrame({"Day": t[:2], "Estimate": [1.0, 2.0], "Billed": [1.0, None], "Pending": [False, True]})
        ),
        "ab_comparison": figures.ab_comparison(
            pd.DataFrame(
                {
                    "ab": [a, a],
                    "arm": [a, b],
                    "latency_p50_ms": [100.0, 200.0],
                    "latency_p95_ms": [150.0, 260.0],
                    "ttft_p50_ms": [50.0, None],
                    "ttft_p95_ms": [70.0, None],
                }
            )
        ),
        "slo_budgets": figures.slo_budgets(
            pd.DataFrame(
                {
                    "deployment": [a, b],
                    "indicator": [b, "success"],
                    "budget_remaining_pct": [50.0, -5.0],
                    "status": [a, "ok"],
                }
            )
        ),
        "empty_figure": figures.empty_figure(LINK),
    }


def rendered_markup(figure_json: object, path: str = "") -> list[str]:
    """Strings in a figure (as JSON) that Plotly would render with a tag in them; hover and text
    templates are the builders' own markup and are skipped."""
    import re

    found: list[str] = []
    if isinstance(figure_json, dict):
        for k, v in figure_json.items():
            if k not in ("hovertemplate", "texttemplate"):
                found += rendered_markup(v, f"{path}.{k}")
    elif isinstance(figure_json, list):
        for i, v in enumerate(figure_json):
            found += rendered_markup(v, f"{path}[{i}]")
    elif isinstance(figure_json, str) and re.search(r"<\s*/?\s*[a-z]", figure_json, re.I):
        found.append(f"{path}: {figure_json[:80]}")
    return found


def test_every_figure_builder_is_checked_with_hostile_names() -> None:
    import inspect

    import plotly.graph_objects as go

    builders = {
        name
        for name, fn in inspect.getmembers(figures, inspect.isfunction)
        if fn.__module__ == figures.__name__
        and not name.startswith("_")
        and inspect.signature(fn).return_annotation in (go.Figure, "go.Figure")
    }
    assert builders - {"as_text"} == set(_hostile_builds())


@pytest.mark.parametrize("name", sorted(_hostile_builds()))
def test_names_from_the_logs_are_escaped_wherever_plotly_renders_html(name: str) -> None:
    import json

    fig = _hostile_builds()[name]
    assert isinstance(fig, __import__("plotly").graph_objects.Figure)
    as_json = json.loads(fig.to_json())
    assert rendered_markup(as_json) == []
    text = json.dumps(as_json)
    if name not in (
        "sparkline",
        "status_over_time",
        "estimate_vs_billed",
    ):  # (no names in these) the names are still there, as text Plotly shows with the characters
        assert '&lt;a href=\\"https://evil.example/phish\\"&gt;' in text or "&lt;b onmouseover" in text


def test_escaped_names_keep_their_colours_and_read_as_the_original() -> None:
    import html

    frame = pd.DataFrame({"TimeGenerated": [_t(0), _t(1)], "Deployment": [TAG, TAG], "P95": [1.0, 2.0]})
    fig = figures.latency_over_time(frame, {TAG: "#123456"})
    assert fig.data[0].line.color == "#123456"
    assert html.unescape(fig.data[0].name) == TAG  # what Plotly shows: the name, character for character


def test_days_to_retirement_marks_the_ones_within_the_threshold() -> None:
    frame = pd.DataFrame(
        {
            "Account": ["a", "a", "b"],
            "Deployment": ["soon", "later", "unknown"],
            "Model": ["m", "m", "m"],
            "Version": ["1", "2", "3"],
            "DaysToRetirement": [45.0, 200.0, float("nan")],
        }
    )
    fig = figures.days_to_retirement(frame, 90)
    (bar,) = fig.data
    assert list(bar.y) == ["a / later", "a / soon"]  # an undated model is left out; the nearest at the bottom
    assert list(bar.marker.color) == ["#1E88E5", "#C62828"]
    assert fig.layout.shapes[0].x0 == 90
    assert "No deployment" in figures.days_to_retirement(frame.iloc[2:], 90).layout.annotations[0].text
