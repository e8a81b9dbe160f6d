"""One allocation per period, shared by everyone who asks for it within a few minutes.

The Overview, Cost, Features & teams and Data health pages, the budgets and the CLI all ask for the
cost of a period; `allocation` computes it once per period and 5-minute bucket through the Lens's cache
and single flight (so with Redis, once across every web worker), on the whole data, and then narrows it
to the asker's scope. `month_to_date` is the one period the month views share: from the earlier of the
first of the month and the forecast's run-rate window, so the month's spend, its forecast and every
budget come from one computation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from queries.cost.forecast import history_start
from queries.cost.report import AllocationResult, allocate, narrow
from queries.reader import LensLike
from queries.scope import Scope
from queries.scoped import whole

BUCKET = timedelta(minutes=5)  # cost views are as fresh as the last 5-minute mark
TTL = timedelta(minutes=5)


def bucket(t: datetime) -> datetime:
    """`t` rounded down to the bucket, in UTC."""
    t = (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)).replace(second=0, microsecond=0)
    step = int(BUCKET.total_seconds() // 60)
    return t - timedelta(minutes=t.minute % step)


def allocation(
    lens: LensLike, start: datetime, end: datetime, *, scope: Scope | None = None, book: Any = None
) -> AllocationResult:
    """The allocation of [start, end) (both rounded down to the bucket), computed on the whole data with
    the whole Lens's settings (every attribution rule), then narrowed to `scope` (default: the view's).
    A given price `book` (tests) bypasses the shared answer."""
    start, end = bucket(start), bucket(end)
    scope = lens.scope if scope is None else scope
    base = whole(lens)

    def compute() -> AllocationResult:
        return allocate(base, base.settings, start, end, book=book, scope=Scope.everything())

    key = f"cost:allocation:{start:%Y-%m-%dT%H:%M}:{end:%Y-%m-%dT%H:%M}"
    everything = compute() if book is not None else base.memo(key, TTL, compute)
    return narrow(everything, scope)


def month_to_date(lens: LensLike, now: datetime, *, scope: Scope | None = None, book: Any = None) -> AllocationResult:
    """The allocation the month views share: [history_start(now), now)."""
    return allocation(lens, history_start(now), now, scope=scope, book=book)
