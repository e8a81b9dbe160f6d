"""Team-scoped views of the data layer that fail closed (see `queries.scope` for what a scope may see)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from queries.catalogue import QuerySpec
from queries.config import AttributionRule, Settings
from queries.names import CallerNames
from queries.reader import LensLike, WholeLens
from queries.results import QueryResult, TimeRange
from queries.scope import Scope, features_of


class ScopeError(PermissionError):
    """Something a team-scoped view does not offer, or a name outside the scope; refused, never passed on."""


class ScopedLens:
    """A Lens seen through a scope. It fails closed: it offers exactly the names below, each decided, and
    anything else raises `ScopeError` (no `__getattr__` forwarding), so a method added to the Lens later
    is refused here until someone decides its scope. `tests/hardening/test_scope_views.py` walks every
    public name of `Lens` and fails on one that is in none of these lists.

    - SCOPED: answers narrowed to the scope (catalogue rows; settings with the scope's budgets and rules);
    - SHARED: deployment-level infrastructure every signed-in user sees (the module docstring says why),
      or no data at all (the KQL text, the time range);
    - REFUSED: the sources, the cache and the unscoped computations behind the view; the estate
      inventory (every account across the subscriptions, with its network exposure, key auth and where
      its logs go: an estate owner's view, not a team's); and the bill: Azure bills an account, not a
      team, so the bill is whole-estate money no team scope can be cut from.
    The cost model reaches the whole data only through `whole(lens)`, and scopes its answer."""

    SCOPED = frozenset({"run", "run_many", "settings", "caller_names"})
    SHARED = frozenset(
        {"now", "time_range", "render", "metrics", "deployments", "usages", "scope", "scope_resource_id"}
    )
    REFUSED = frozenset(
        {
            "allowed",
            "names",
            "names_cache",
            "bill",
            "memo",
            "cache",
            "logs",
            "metrics_source",
            "management",
            "with_fresh_cache",
            "from_settings",
            "inventory",
            "estate",
        }
    )

    def __init__(self, lens: WholeLens, scope: Scope, rules: Sequence[AttributionRule]) -> None:
        if scope.is_everything:
            raise ValueError("a ScopedLens needs a team scope")
        self._whole = lens
        self._scope = scope
        self._rules = list(rules)
        self._settings = scope.settings(lens.settings)

    def __getattr__(self, name: str) -> Any:
        raise ScopeError(f"{name!r} is not offered to a team-scoped view of the data")

    # ---- scoped ----
    @property
    def settings(self) -> Settings:
        return self._settings

    def run(self, name: str, **kwargs: object) -> QueryResult:
        return self.run_many([(name, kwargs)])[0]

    def run_many(self, requests: Iterable[tuple[str, Mapping[str, object]]]) -> list[QueryResult]:
        requests = list(requests)
        for name, kwargs in requests:
            self._check_params(name, kwargs)
        return [self._scoped(r) for r in self._whole.run_many(requests)]

    def _check_params(self, name: str, kwargs: Mapping[str, object]) -> None:
        """A team or feature parameter naming something outside the scope is refused (a forged URL)."""
        params = kwargs.get("params")
        if not isinstance(params, Mapping):
            return
        mine_features = features_of(self._scope.teams or (), self._whole.settings.attribution)
        for key, allowed in (("team", self._scope.teams or frozenset()), ("feature", mine_features)):
            for pname, value in params.items():
                if not str(pname).lower().startswith(key):
                    continue
                values = value if isinstance(value, list | tuple | set | frozenset) else [value]
                outside = sorted(str(v) for v in values if v not in (None, "") and str(v) not in allowed)
                if outside:
                    raise ScopeError(f"{name}: {pname} {', '.join(outside)} is outside your teams")

    def _scoped(self, result: QueryResult) -> QueryResult:
        frame = self._scope.frame(result.frame, self._rules)
        return result if frame is result.frame else dataclasses.replace(result, frame=frame)

    def caller_names(self, callers: pd.DataFrame) -> CallerNames:
        """Names of the callers in `callers` that the scope sees (rows narrowed as a query's would be, so an
        id outside the scope is never looked up or named)."""
        return self._whole.caller_names(self._scope.frame(callers, self._rules))

    # ---- shared ----
    @property
    def scope(self) -> Scope:
        return self._scope

    @property
    def scope_resource_id(self) -> str:
        return self._whole.scope_resource_id

    def now(self) -> datetime:
        return self._whole.now()

    def time_range(
        self,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: timedelta = timedelta(minutes=1),
    ) -> TimeRange:
        return self._whole.time_range(since=since, start=start, end=end, bucket=bucket)

    def render(
        self,
        name: str,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        params: Mapping[str, object] | None = None,
        bin: timedelta | None = None,
    ) -> tuple[QuerySpec, TimeRange, str]:
        return self._whole.render(name, since=since, start=start, end=end, params=params, bin=bin)

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
        ttl: timedelta = timedelta(minutes=1),
    ) -> QueryResult:
        return self._whole.metrics(
            metric_names,
            since=since,
            start=start,
            end=end,
            interval=interval,
            aggregation=aggregation,
            split_by=split_by,
            filters=filters,
            ttl=ttl,
        )

    def deployments(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return self._whole.deployments(ttl)

    def usages(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return self._whole.usages(ttl)


def scoped_lens(lens: WholeLens, scope: Scope, rules: Sequence[AttributionRule]) -> LensLike:
    return lens if scope.is_everything else ScopedLens(lens, scope, rules)


def whole(lens: LensLike) -> WholeLens:
    """The Lens over every team behind a view: what the cost model allocates on (PTU and metric-token
    shares need every caller) before it narrows the answer to the view's scope. Not for pages."""
    if isinstance(lens, ScopedLens):
        return lens._whole
    return lens  # type: ignore[return-value]
