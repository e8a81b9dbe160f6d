"""The answer cache on a fake clock: a hit within a query's lifetime, a miss after it, and a new query
when a relative range's time bucket rolls over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from queries.cache import MemoryCache
from queries.config import Settings
from queries.lens import Lens
from queries.sources.base import LogsAnswer, LogsRequest


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


class CountingLogs:
    """A logs source that answers one row and remembers every query it was sent."""

    name = "counting"

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[str] = []
        self.fail = fail

    def run(self, request: LogsRequest) -> LogsAnswer:
        self.sent.append(request.kql)
        if self.fail:
            return LogsAnswer(pd.DataFrame(), "failed", "boom")
        # the columns of both queries used here, so the answers conform (and are cached)
        frame = pd.DataFrame(
            {"Deployment": ["d"], "OperationName": ["o"], "ApiVersion": ["v"], "Requests": [1], "Throttled": [0]}
        ).assign(ThrottledPct=0.0, Errors=0)
        return LogsAnswer(frame, rows=1)

    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        return [self.run(r) for r in requests]


@pytest.fixture
def setup(demo_settings: Settings) -> tuple[Lens, CountingLogs, Clock, list[datetime]]:
    base = Lens.from_settings(demo_settings)
    clock = Clock()
    wall = [datetime(2025, 3, 3, 10, 1, 30, tzinfo=UTC)]
    logs = CountingLogs()
    lens = Lens(
        demo_settings,
        logs,
        base.metrics_source,
        base.management,
        cache=MemoryCache(clock=clock),
        now=lambda: wall[0],
    )
    return lens, logs, clock, wall


def advance(clock: Clock, wall: list[datetime], delta: timedelta) -> None:
    clock.t += delta.total_seconds()
    wall[0] += delta


def test_hit_within_the_lifetime_then_miss_after(setup: tuple) -> None:
    lens, logs, clock, wall = setup  # throttling_by_deployment: cache 5m
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    first = lens.run("throttling_by_deployment", start=start, end=end)
    assert not first.cached and len(logs.sent) == 1
    advance(clock, wall, timedelta(minutes=4, seconds=59))
    second = lens.run("throttling_by_deployment", start=start, end=end)
    assert second.cached and len(logs.sent) == 1 and second.duration_s == 0.0
    pd.testing.assert_frame_equal(second.frame, first.frame)
    advance(clock, wall, timedelta(seconds=2))
    third = lens.run("throttling_by_deployment", start=start, end=end)
    assert not third.cached and len(logs.sent) == 2 and logs.sent[1] == logs.sent[0]


def test_relative_ranges_share_a_bucket_then_roll_over(setup: tuple) -> None:
    lens, logs, clock, wall = setup  # wall clock 10:01:30, bucket 5m: the range ends at 10:05
    r1 = lens.run("throttling_by_deployment", since=timedelta(hours=1))
    assert "datetime(2025-03-03T10:05:00.000000Z)" in r1.kql
    advance(clock, wall, timedelta(minutes=3))  # 10:04:30, same bucket
    r2 = lens.run("throttling_by_deployment", since=timedelta(hours=1))
    assert r2.cached and r2.kql == r1.kql and len(logs.sent) == 1
    advance(clock, wall, timedelta(minutes=1))  # 10:05:30: the next bucket, a new query
    r3 = lens.run("throttling_by_deployment", since=timedelta(hours=1))
    assert not r3.cached and len(logs.sent) == 2
    assert "datetime(2025-03-03T10:10:00.000000Z)" in r3.kql


def test_each_query_keeps_its_own_lifetime(setup: tuple) -> None:
    lens, logs, clock, wall = setup
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    lens.run_many(
        [
            ("throttling_by_deployment", {"start": start, "end": end}),
            ("volume_by_api_version", {"start": start, "end": end}),
        ]
    )
    assert len(logs.sent) == 2
    advance(clock, wall, timedelta(minutes=10))  # past 5m (throttling), within 15m (volume)
    again = lens.run_many(
        [
            ("throttling_by_deployment", {"start": start, "end": end}),
            ("volume_by_api_version", {"start": start, "end": end}),
        ]
    )
    assert [r.cached for r in again] == [False, True] and len(logs.sent) == 3


def test_failures_are_not_cached(demo_settings: Settings) -> None:
    base = Lens.from_settings(demo_settings)
    logs = CountingLogs(fail=True)
    lens = Lens(demo_settings, logs, base.metrics_source, base.management, cache=MemoryCache(clock=Clock()))
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC)
    for _ in range(2):
        r = lens.run("throttling_by_deployment", start=start, end=end)
        assert r.status == "failed" and r.notice == "boom" and r.kql and r.frame.columns[0] == "Deployment"
    assert len(logs.sent) == 2


def test_cache_evicts_the_oldest_entries() -> None:
    clock = Clock()
    cache = MemoryCache(max_entries=2, clock=clock)
    cache.set("a", 1, 60)
    cache.set("b", 2, 60)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.set("c", 3, 60)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    cache.set("zero", 4, 0)  # a lifetime of 0 means: do not cache
    assert cache.get("zero") is None
