"""The renderer: literals, bins, and hostile input that never changes a query's meaning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import duckdb_kql
import pytest

from queries import catalogue
from queries.config import Settings
from queries.lens import Lens
from queries.render import (
    BINS,
    MAX_POINTS,
    Param,
    RenderError,
    auto_bin,
    kql_datetime,
    kql_string,
    kql_string_list,
    kql_timespan,
    parse_duration,
    render,
)

HOSTILE = [
    "x' or 1==1 or '",
    'x" or 1==1 or "',
    "o'brien\\",
    "chat-gpt4o\n| union AzureMetrics",
    "chat-gpt4o\r\n",
    ")) | union AzureMetrics",
    "chat-gpt4o') | union (AzureMetrics",
    "@'x'",
    "x" * 5000,
    "",
]


# ---- literals -------------------------------------------------------------------------------------------


def test_datetime_literals_are_utc() -> None:
    assert kql_datetime(datetime(2025, 1, 31, 12, 0, tzinfo=UTC)) == "datetime(2025-01-31T12:00:00.000000Z)"
    paris = timezone(timedelta(hours=1))
    assert kql_datetime(datetime(2025, 1, 31, 13, 0, 0, 5, tzinfo=paris)) == "datetime(2025-01-31T12:00:00.000005Z)"
    assert kql_datetime(datetime(2025, 1, 31)) == "datetime(2025-01-31T00:00:00.000000Z)"  # naive = UTC


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=3), "3h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_timespan_literals(value: timedelta, literal: str) -> None:
    assert kql_timespan(value) == literal


def test_timespans_must_be_positive() -> None:
    with pytest.raises(RenderError):
        kql_timespan(timedelta(0))
    with pytest.raises(RenderError):
        kql_timespan(timedelta(minutes=-5))


def test_string_and_list_literals() -> None:
    assert kql_string("o'brien") == "@'o''brien'"
    assert kql_string("back\\slash") == "@'back\\slash'"  # verbatim: a backslash escapes nothing
    assert kql_string_list(["a", "b'c"]) == "dynamic([@'a', @'b''c'])"
    assert kql_string_list([]) == "dynamic([])"
    with pytest.raises(RenderError, match="line breaks"):
        kql_string("a\nb")


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("", "7", "-1d", "0h", "1y", "1d; drop"):
        with pytest.raises(RenderError):
            parse_duration(bad)


@pytest.mark.parametrize(
    "span",
    [
        timedelta(minutes=30),
        timedelta(hours=6),
        timedelta(days=1),
        timedelta(days=7),
        timedelta(days=31),
        timedelta(days=400),
    ],
)
def test_auto_bins_keep_at_most_500_points(span: timedelta) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    b = auto_bin(start, start + span)
    assert span / b <= MAX_POINTS
    smaller = [x for x in BINS if x < b]
    if smaller:  # and it is the finest bin that does
        assert span / smaller[-1] > MAX_POINTS


def test_render_binds_every_parameter_in_a_let_prefix() -> None:
    params = [
        Param("deployments", "names", "[]", "deployment"),
        Param("minutes", "long", "5"),
        Param("share", "real", "0.5"),
        Param("strict", "bool", "false"),
        Param("window", "timespan", "15m"),
        Param("since", "datetime", "2025-01-01T00:00:00Z"),
        Param("who", "string", ""),
    ]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    text = render(
        "T | take 1",
        params,
        {"deployments": ["a", "b"], "minutes": "7", "strict": "true", "who": "o'brien"},
        start=start,
        end=start + timedelta(days=1),
        allowed={"deployment": ["a", "b", "c"]},
    )
    assert text.splitlines() == [
        "let _start = datetime(2025-01-01T00:00:00.000000Z);",
        "let _end = datetime(2025-01-02T00:00:00.000000Z);",
        "let _bin = 5m;",
        "let _deployments = dynamic([@'a', @'b']);",
        "let _minutes = 7;",
        "let _share = 0.5;",
        "let _strict = true;",
        "let _window = 15m;",
        "let _since = datetime(2025-01-01T00:00:00.000000Z);",
        "let _who = @'o''brien';",
        "T | take 1",
    ]


def test_render_refuses_bad_usage() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    p = [Param("minutes", "long", "5"), Param("deployments", "names", "[]", "deployment")]
    with pytest.raises(RenderError, match="unknown parameter"):
        render("T", p, {"minute": 3}, start=start, end=start + timedelta(hours=1))
    with pytest.raises(RenderError, match="not a whole number"):
        render("T", p, {"minutes": "5 | take 1"}, start=start, end=start + timedelta(hours=1))
    with pytest.raises(RenderError, match="after its start"):
        render("T", p, {}, start=start, end=start)
    with pytest.raises(RenderError, match="not one of the known values"):
        render(
            "T", p, {"deployments": ["zzz"]}, start=start, end=start + timedelta(hours=1), allowed={"deployment": ["a"]}
        )


# ---- hostile input ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lens(demo_settings: Settings) -> Lens:
    return Lens.from_settings(demo_settings)


USER_PARAMS = [(n, p) for n, spec in sorted(catalogue.load_catalogue().items()) for p in spec.params]


def test_every_query_has_its_user_parameters_covered() -> None:
    assert USER_PARAMS, "the catalogue declares parameters"
    assert {p.type for _, p in USER_PARAMS} <= {
        "names",
        "name",
        "string",
        "long",
        "real",
        "bool",
        "timespan",
        "datetime",
    }


@pytest.mark.parametrize(("name", "param"), USER_PARAMS, ids=[f"{n}.{p.name}" for n, p in USER_PARAMS])
def test_hostile_values_in_every_parameter(name: str, param: Param, lens: Lens) -> None:
    """Each hostile value is refused, or bound as one literal that returns no extra rows."""
    since = timedelta(days=7)
    benign = lens.run(name, since=since)
    assert benign.status == "ok"
    # names arrive as lists from pages and as "a,b" text from the command line: try both
    attempts = [([v] if param.type == "names" else v) for v in HOSTILE] + (
        [v for v in HOSTILE if v] if param.type == "names" else []
    )
    for values in attempts:
        value = values[0] if isinstance(values, list) else values
        try:
            result = lens.run(name, since=since, params={param.name: values})
        except RenderError as e:
            assert str(e).startswith(param.name), e  # the message names the parameter
            continue
        # bound: still one literal, so no more rows than the unfiltered question, and nothing from elsewhere
        assert result.status == "ok", result.notice
        assert len(result.frame) <= len(benign.frame)
        assert "AzureMetrics" not in result.frame.to_csv()
        if param.type in ("names", "name", "string") and value:
            assert len(result.frame) == 0, f"{name}: {value!r} matched rows"


def test_a_names_value_that_is_well_formed_but_unknown_is_refused(lens: Lens) -> None:
    with pytest.raises(RenderError, match="not one of the known values"):
        lens.run("summary_by_deployment", params={"deployments": ["chat-gpt5"]})


def test_string_literals_stay_one_value_on_the_engine(lens: Lens, demo_settings: Settings) -> None:
    """Bound straight into a query (no allow-list), each hostile string is one literal: 0 rows, where the
    benign spelling of a real value finds its rows."""
    con = duckdb_kql.connect(str(demo_settings.demo_path), read_only=True)
    body = (
        "AzureDiagnostics\n| where Category == 'RequestResponse' and CallerIPAddress == _who\n| summarize n = count()"
    )
    params = [Param("who", "string")]
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    try:

        def count(value: str) -> int:
            text = render(body, params, {"who": value}, start=start, end=end)
            return int(duckdb_kql.df(con, text)["n"].iloc[0])

        assert count("10.20.1.***") > 0
        for value in HOSTILE:
            if "\n" in value or "\r" in value or len(value) > 1000:
                with pytest.raises(RenderError):
                    count(value)
            else:
                assert count(value) == 0, value
    finally:
        con.close()
