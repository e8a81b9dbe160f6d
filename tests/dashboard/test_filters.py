"""Global filters in the URL: read leniently, written back, turned into query arguments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import pytest

from dashboard.filters import Filters, filter_bar, from_controls

DEPS = pd.DataFrame({"Resource": ["east", "east", "west"], "Deployment": ["chat", "embed", "rag"]})


def test_defaults_and_round_trip_through_the_url() -> None:
    f = Filters.from_query({"range": "7d", "resource": "east", "deployment": "chat,embed", "team": "support"})
    assert (f.range, f.resource, f.deployments, f.team) == ("7d", "east", ("chat", "embed"), "support")
    search = f.to_search()
    back = Filters.from_query({k: v[0] for k, v in parse_qs(search[1:]).items()})
    assert back == f
    assert Filters.from_query({}).range == "24h"


def test_repeated_keys_are_accepted_like_commas() -> None:
    f = Filters.from_query({"deployment": ["chat", "rag,chat"]})
    assert f.deployments == ("chat", "rag")


def test_custom_range_includes_the_end_day_and_survives_the_url() -> None:
    f = Filters.from_query({"range": "custom", "start": "2026-11-01", "end": "2026-11-03"})
    assert f.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert f.end == datetime(2026, 11, 4, tzinfo=UTC)
    assert f.time_kwargs() == {"start": f.start, "end": f.end}
    assert "start=2026-11-01" in f.to_search() and "end=2026-11-03" in f.to_search()


def test_bad_values_fall_back_and_say_why() -> None:
    f = Filters.from_query({"range": "fortnight"})
    assert f.range == "24h" and f.problems
    g = Filters.from_query({"range": "custom", "start": "not a date"})
    assert g.range == "custom" and "start date" in g.problems[0]  # the date picker stays open
    assert g.time_kwargs() == {"since": timedelta(hours=24)}
    assert g.to_search() == "?range=custom"
    h = Filters.from_query({"range": "custom", "start": "2026-11-05", "end": "2026-11-01"})
    assert h.range == "24h" and h.problems


def test_presets_become_since() -> None:
    assert Filters.from_query({"range": "1h"}).time_kwargs() == {"since": timedelta(hours=1)}
    now = datetime(2026, 11, 10, 12, tzinfo=UTC)
    assert Filters.from_query({"range": "30d"}).window(now) == (now - timedelta(days=30), now)


def test_scoped_deployments_check_names_and_resource() -> None:
    assert Filters().scoped_deployments(DEPS) == []
    assert Filters(deployments=("chat", "nope")).scoped_deployments(DEPS) == ["chat"]
    assert Filters(resource="east").scoped_deployments(DEPS) == ["chat", "embed"]
    assert Filters(resource="east", deployments=("rag",)).scoped_deployments(DEPS) == ["(none)"]


def test_store_round_trip() -> None:
    f = Filters.from_query({"range": "custom", "start": "2026-11-01", "team": "search"})
    assert Filters.from_store(f.to_store()) == f
    assert Filters.from_store(None) == Filters()


def test_from_controls_builds_the_same_filters_as_the_url() -> None:
    f = from_controls("custom", "2026-11-01T00:00:00", "2026-11-02", "east", ["chat"], "support")
    assert f == Filters.from_query(
        {
            "range": "custom",
            "start": "2026-11-01",
            "end": "2026-11-02",
            "resource": "east",
            "deployment": "chat",
            "team": "support",
        }
    )


@pytest.mark.parametrize(
    "query",
    [
        {"range": "custom", "start": "9999-01-01"},
        {"range": "custom", "start": "-5000-01-01"},
        {"range": "custom", "start": "2026-01-01", "end": "9999-12-31"},
        {"range": "custom", "start": "0001-01-01", "end": "0001-01-02"},
        {"range": "custom", "start": "2026-01-01T00:00:00+99:00"},
        {"range": ["custom", "7d"], "start": ["abc", "-1"]},
    ],
)
def test_dates_outside_1970_to_today_fall_back_to_24h_with_a_notice(query: dict[str, Any]) -> None:
    f = Filters.from_query(query)
    assert f.problems
    assert f.time_kwargs() == {"since": timedelta(hours=24)}
    assert f.to_search() in ("?range=24h", "?range=custom")
    assert filter_bar(f) is not None  # the bar renders with it


@pytest.mark.parametrize(
    "data",
    ["x", [1], 5, {"range": 5}, {"deployments": 5}, {"problems": {"a": 1}}, {"range": "custom", "start": "-5000"}],
)
def test_a_store_that_holds_no_filters_gives_the_defaults_and_says_so(data: Any) -> None:
    f = Filters.from_store(data)
    assert f.range == "24h" and f.deployments == () and f.problems
