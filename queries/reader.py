"""What the layers above are handed to read data: `LensLike`, the part of `queries.lens.Lens` that pages,
the cost model and the alert rules use. `queries.lens.Lens` has it; so does `queries.scoped.ScopedLens`,
which answers for one user's teams. Typing against this Protocol instead of `Any` lets the type checker
see every use, and keeps the scoped view's list of methods the same as what callers may call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import pandas as pd

from queries.cache import Cache
from queries.catalogue import QuerySpec
from queries.config import Settings
from queries.inventory import Inventory
from queries.names import CallerNames
from queries.results import QueryResult, TimeRange
from queries.scope import Scope

T = TypeVar("T")


class LensLike(Protocol):
    @property
    def settings(self) -> Settings: ...

    @property
    def scope_resource_id(self) -> str: ...

    @property
    def scope(self) -> Scope: ...

    def now(self) -> datetime: ...

    def time_range(
        self,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: timedelta = ...,
    ) -> TimeRange: ...

    def render(
        self,
        name: str,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        params: Mapping[str, object] | None = None,
        bin: timedelta | None = None,
    ) -> tuple[QuerySpec, TimeRange, str]: ...

    def run(self, name: str, **kwargs: object) -> QueryResult: ...

    def run_many(self, requests: Iterable[tuple[str, Mapping[str, object]]]) -> list[QueryResult]: ...

    def metrics(
        self,
        metric_names: list[str],
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        interval: timedelta | None = None,
        aggregation: str = "Total",
        split_by: list[str] | None = None,
        filters: dict[str, list[str]] | None = None,
        ttl: timedelta = ...,
    ) -> QueryResult: ...

    def deployments(self, ttl: timedelta = ...) -> QueryResult: ...

    def usages(self, ttl: timedelta = ...) -> QueryResult: ...

    def caller_names(self, callers: pd.DataFrame) -> CallerNames: ...


class WholeLens(LensLike, Protocol):
    """A Lens over every team's data: what the cost model computes on before it scopes the answer."""

    @property
    def cache(self) -> Cache: ...

    def memo(
        self, key: str, ttl: timedelta, compute: Callable[[], T], *, keep: Callable[[T], bool] | None = None
    ) -> T: ...

    def inventory(self) -> Inventory: ...
    def bill(self, start: datetime, end: datetime, cost_type: str = ...) -> pd.DataFrame: ...
