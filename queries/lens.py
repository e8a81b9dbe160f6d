"""The query layer's front door: catalogue queries, metrics and the management plane, with caching.

    from queries.lens import get_lens
    lens = get_lens()                      # sources chosen from settings, one per process
    r = lens.run("requests_by_status", since=timedelta(days=1), params={"deployments": ["chat-gpt4o"]})
    r.frame, r.status, r.notice, r.kql, r.portal_url, r.cached

Sources are chosen in one place (`Lens.from_settings`): the embedded demo workspace, or Azure (Log
Analytics, the metrics batch API, the management plane). Tests build a `Lens` with their own sources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pandas as pd

from queries import catalogue
from queries.cache import Cache, MemoryCache, cache_from_settings
from queries.config import Settings, get_settings
from queries.inventory import EstateSource, Inventory, collect
from queries.names import CallerNames, NameResolver, lookup
from queries.render import RenderError, auto_bin, render
from queries.results import QueryResult, TimeRange, portal_link
from queries.scope import Scope
from queries.sources.base import LogsAnswer, LogsRequest, LogsSource, ManagementSource, MetricsSource

log = logging.getLogger(__name__)
T = TypeVar("T")
NAMES_KEPT = 200_000  # callers' names a process keeps in memory (a few MB)
BILL_TTL = timedelta(hours=1)  # Cost Management refreshes the bill a few times a day; its query quota is small

__all__ = ["Lens", "QueryResult", "RenderError", "TimeRange", "get_lens"]


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass
class Lens:
    settings: Settings
    logs: LogsSource
    metrics_source: MetricsSource
    management: ManagementSource
    cache: Cache = field(default_factory=MemoryCache)
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    scope_resource_id: str = ""
    estate: EstateSource | None = None  # the inventory's source (Resource Graph, or the demo's estate)
    names: NameResolver | None = None  # callers' display names (Graph, or the demo's directory)
    names_cache: Cache | None = None  # where names are kept (default: `cache`; kept by `with_fresh_cache`)
    _allowed: dict[str, list[str]] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _flights: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _names_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stripes: list[threading.Lock] = field(
        default_factory=lambda: [threading.Lock() for _ in range(64)], init=False, repr=False
    )

    # ---- construction ----------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: Settings) -> Lens:
        if settings.is_demo:
            from queries.demo import world
            from queries.demo.bill import DemoBill
            from queries.sources.embedded import (
                EmbeddedEstate,
                EmbeddedLogs,
                EmbeddedManagement,
                EmbeddedMetrics,
                EmbeddedWorkspace,
            )

            ws = EmbeddedWorkspace(settings.demo_path)
            mgmt = EmbeddedManagement(ws)
            lens = cls(
                settings,
                EmbeddedLogs(ws),
                EmbeddedMetrics(ws),
                mgmt,
                cache=cache_from_settings(settings),
                scope_resource_id=world.RESOURCES[0].arm_id,
                estate=EmbeddedEstate(ws),
                names=_demo_names(settings),
            )
            lens.names_cache = _names_cache(lens.cache)
            mgmt.bill_source = DemoBill(lens)  # the demo's bill is priced from its traffic, through this Lens
            return lens
        from queries.sources.azure import azure_estate, azure_sources

        logs, metrics, mgmt = azure_sources(settings)
        lens = cls(
            settings,
            logs,
            metrics,
            mgmt,
            cache=cache_from_settings(settings),
            scope_resource_id=settings.source.resource_ids[0],
            estate=azure_estate(settings),
            names=_graph_names(settings),
        )
        lens.names_cache = _names_cache(lens.cache)
        return lens

    def with_fresh_cache(self) -> Lens:
        """The same sources with an empty cache of its own: the alert rules judge the newest rows, not a
        page's cached answer. Callers' names are not data to judge: the new Lens keeps reading the names
        this one cached (else every evaluation would ask Graph again)."""
        return dataclasses.replace(self, cache=MemoryCache(), names_cache=self.names_cache or self.cache)

    # ---- time ranges --------------------------------------------------------------------------
    def time_range(
        self,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        bucket: timedelta = timedelta(minutes=1),
    ) -> TimeRange:
        """Explicit start/end as given; a relative range ends at the current cache bucket's end, so
        repeats within a bucket render the same query (and hit the cache)."""
        if start is not None:
            end = _utc(end) if end is not None else self.now()
            return TimeRange(_utc(start), end)
        since = since or timedelta(hours=24)
        step = max(bucket.total_seconds(), 60.0)
        now = self.now().timestamp()
        bucket_end = datetime.fromtimestamp((now // step + 1) * step, UTC)
        if end is not None:
            bucket_end = _utc(end)
        return TimeRange(bucket_end - since, bucket_end)

    # ---- allow-lists ---------------------------------------------------------------------------
    def allowed(self) -> dict[str, list[str]]:
        """The names user-chosen parameters are checked against: the deployments, resources and models
        the management plane reports now (cached like `deployments()`, so a new deployment is known
        within its lifetime), and the teams and features of the configuration. If the management plane
        cannot be read, the last list known is used; with none, names cannot be checked and are refused."""
        deps = self.deployments()
        with self._lock:
            if deps.status == "ok" or self._allowed is None:
                if deps.status != "ok":
                    raise RenderError(f"cannot check names against the deployments: {deps.notice}")
                rules = self.settings.attribution
                self._allowed = {
                    "deployment": sorted(set(deps.frame["Deployment"])),
                    "resource": sorted(set(deps.frame["Resource"])),
                    "model": sorted(set(deps.frame["Model"])),
                    "team": sorted(
                        {r.team for r in rules} | {b.name for b in self.settings.budgets if b.scope == "team"}
                    ),
                    "feature": sorted({r.feature for r in rules}),
                }
            return self._allowed

    # ---- catalogue queries --------------------------------------------------------------------
    def render(
        self,
        name: str,
        *,
        since: timedelta | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        params: Mapping[str, object] | None = None,
        bin: timedelta | None = None,
    ) -> tuple[catalogue.QuerySpec, TimeRange, str]:
        spec = catalogue.get(name)
        tr = self.time_range(
            since=since or (None if start else spec.range),
            start=start,
            end=end,
            bucket=spec.cache or timedelta(minutes=1),
        )
        params = dict(params or {})
        needs_allow = any(p.allow for p in spec.params if params.get(p.name) not in (None, "", []))
        kql = render(
            spec.body,
            spec.params,
            params,
            start=tr.start,
            end=tr.end,
            bin=bin or auto_bin(tr.start, tr.end),
            allowed=self.allowed() if needs_allow else None,
        )
        return spec, tr, kql

    def run(self, name: str, **kwargs: object) -> QueryResult:
        return self.run_many([(name, kwargs)])[0]

    def run_many(self, requests: Iterable[tuple[str, Mapping[str, object]]]) -> list[QueryResult]:
        """Several catalogue queries (one page's worth): cached ones answered at once, the rest sent
        together (Log Analytics `query_batch`)."""
        prepared = []
        for name, kwargs in requests:
            spec, tr, kql = self.render(name, **kwargs)  # type: ignore[arg-type]
            prepared.append((spec, tr, kql))
        results: list[QueryResult | None] = [None] * len(prepared)
        todo = self._from_cache(prepared, results, range(len(prepared)))
        if not todo:
            return [r for r in results if r is not None]
        # Single flight: concurrent requests for the same queries (a page opened by many users as a
        # cache bucket rolls over) wait for the one that is computing them, then read its answers.
        stripes = sorted({self._stripe(self._key(prepared[i][2])) for i in todo})
        for n in stripes:
            self._stripes[n].acquire()
        try:
            todo = self._from_cache(prepared, results, todo)
            self._compute(prepared, results, todo)
        finally:
            for n in reversed(stripes):
                self._stripes[n].release()
        return [r for r in results if r is not None]

    def _stripe(self, key: str) -> int:
        return int(key.rsplit(":", 1)[-1][:8], 16) % len(self._stripes)

    def _from_cache(self, prepared: list, results: list[QueryResult | None], indices: Iterable[int]) -> list[int]:
        """Fill `results` from the cache; return the indices still missing."""
        missing = []
        for i in indices:
            spec, _tr, kql = prepared[i]
            hit = self.cache.get(self._key(kql)) if spec.cache.total_seconds() > 0 else None
            if hit is not None:
                results[i] = QueryResult(**{**hit.__dict__, "cached": True, "duration_s": 0.0})
            else:
                missing.append(i)
        return missing

    def _compute(self, prepared: list, results: list[QueryResult | None], todo: list[int]) -> None:
        if todo:
            started = time.perf_counter()
            reqs = [LogsRequest(prepared[i][2], prepared[i][1].start, prepared[i][1].end) for i in todo]
            try:
                answers = self.logs.run_batch(reqs) if len(reqs) > 1 else [self.logs.run(reqs[0])]
            except Exception as e:  # a source failure becomes a failed result per query
                log.warning("logs source %s failed: %s", self.logs.name, e)
                answers = [LogsAnswer(pd.DataFrame(), "failed", _describe(e)) for _ in reqs]
            took = (time.perf_counter() - started) / max(len(todo), 1)
            for i, answer in zip(todo, answers, strict=True):
                spec, tr, kql = prepared[i]
                result = self._envelope(spec, tr, kql, answer, took)
                if result.status == "ok" and spec.cache.total_seconds() > 0:
                    self.cache.set(self._key(kql), result, spec.cache.total_seconds())
                results[i] = result

    def _envelope(
        self, spec: catalogue.QuerySpec, tr: TimeRange, kql: str, answer: LogsAnswer, took: float
    ) -> QueryResult:
        frame = answer.frame
        status, notice = answer.status, answer.notice
        if status != "failed":
            frame, problem = _conform(frame, spec)
            if problem:
                status, notice = "partial", "; ".join(x for x in (notice, problem) if x)
        else:
            frame = pd.DataFrame({c: pd.Series(dtype=_dtype(t)) for c, t in spec.returns})
        return QueryResult(
            name=spec.name,
            frame=frame,
            status=status,
            notice=notice,
            kql=kql,
            portal_url=self._link(kql, tr),
            duration_s=took,
            cached=False,
            source=self.logs.name,
            rows_transferred=answer.rows,
        )

    def _link(self, kql: str, tr: TimeRange) -> str | None:
        """Where a person can run the query: the source's own UI when it has one (ADX's deep link), else
        the Azure portal's Logs blade scoped to the first resource."""
        deep_link = getattr(self.logs, "deep_link", None)
        if callable(deep_link):
            return str(deep_link(kql))
        return portal_link(kql, self.scope_resource_id, tr.start, tr.end) if self.scope_resource_id else None

    def _key(self, kql: str) -> str:
        return self.logs.name + ":" + hashlib.sha256(kql.encode()).hexdigest()

    # ---- metrics and management ---------------------------------------------------------------
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
        tr = self.time_range(since=since, start=start, end=end, bucket=ttl)
        interval = interval or auto_bin(tr.start, tr.end)
        key = f"metrics:{self.metrics_source.name}:{metric_names}:{tr}:{interval}:{aggregation}:{split_by}:{filters}"
        return self._cached(
            "metrics",
            key,
            ttl,
            lambda: self.metrics_source.query(
                metric_names,
                start=tr.start,
                end=tr.end,
                interval=interval,
                aggregation=aggregation,
                split_by=split_by,
                filters=filters,
            ),
            self.metrics_source.name,
        )

    def deployments(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return self._cached("deployments", "mgmt:deployments", ttl, self.management.deployments, self.management.name)

    def usages(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return self._cached("usages", "mgmt:usages", ttl, self.management.usages, self.management.name)

    def inventory(self) -> Inventory:
        """The estate inventory (`queries.inventory`): accounts, deployments with retirement dates,
        diagnostic settings and flags, read once per `inventory.ttl_s` and shared by every caller. An
        answer with a part that could not be read is not kept: the next call reads again."""
        inv = self.settings.inventory
        if self.estate is None:
            empty = collect(_NoEstate(), now=self.now())
            return dataclasses.replace(empty, notice="no inventory source: the estate cannot be read here")
        estate = self.estate
        return self.memo(
            f"inventory:{estate.name}:{inv.retirement_days}:{sorted(inv.destinations)}",
            timedelta(seconds=inv.ttl_s),
            lambda: collect(estate, now=self.now(), destinations=inv.destinations, retirement_days=inv.retirement_days),
            keep=lambda answer: answer.status == "ok",
        )

    def bill(self, start: datetime, end: datetime, cost_type: str = "ActualCost") -> pd.DataFrame:
        """What Azure billed for the days of [start, end) (Day, ResourceId, MeterName, Cost), from the
        management source (Cost Management; the demo's own bill), read once per days, cost type and hour
        and shared through the cache. Whole-estate money: a team-scoped view refuses it. Raises what the
        source raises (a 401/403 names the role needed)."""
        from queries.cost.bill import whole_days

        s, e = whole_days(start, end)
        key = f"bill:{self.management.name}:{cost_type}:{s:%Y-%m-%d}:{e:%Y-%m-%d}:{self.now():%Y-%m-%dT%H}"
        return self.memo(key, BILL_TTL, lambda: self.management.bill(s, e, cost_type))

    # ---- computed values (the cost model's allocation) ---------------------------------------------
    def memo(self, key: str, ttl: timedelta, compute: Callable[[], T], *, keep: Callable[[T], bool] | None = None) -> T:
        """A value computed once per key and lifetime and shared by every caller, through the same cache
        and single flight as the catalogue queries: concurrent callers of one key wait for the one
        computing it, then read its answer. A value that raises, or that `keep` refuses, is not kept."""
        hit = self.cache.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        # one lock per key in flight (not a stripe: values nest, a page's answer holds its allocation's,
        # and two keys sharing a stripe would wait on each other)
        with self._lock:
            flight = self._flights.setdefault(key, threading.Lock())
        try:
            with flight:
                hit = self.cache.get(key)
                if hit is not None:
                    return hit  # type: ignore[no-any-return]
                value = compute()
                if keep is None or keep(value):
                    self.cache.set(key, value, ttl.total_seconds())
                return value
        finally:
            with self._lock:
                if self._flights.get(key) is flight and not flight.locked():
                    del self._flights[key]

    def caller_names(self, callers: pd.DataFrame) -> CallerNames:
        """Directory names of the callers (`ObjectId` column) in `callers`, through the cache: each name is
        kept `names.ttl_minutes`, a failed lookup `names.error_ttl_minutes` (`queries.names`)."""
        ids = callers["ObjectId"].tolist() if callers is not None and "ObjectId" in callers.columns else []
        n = self.settings.names
        return lookup(
            self.names_cache or self.cache,
            self.names if n.enabled else None,
            ids,
            ttl_s=n.ttl_minutes * 60.0,
            error_ttl_s=n.error_ttl_minutes * 60.0,
            lock=self._names_lock,
        )

    @property
    def scope(self) -> Scope:
        """Everything: a Lens answers for every team (`queries.scope.ScopedLens` for one user's teams)."""
        return Scope.everything()

    def _cached(
        self, name: str, key: str, ttl: timedelta, fetch: Callable[[], pd.DataFrame], source: str
    ) -> QueryResult:
        hit = self.cache.get(key)
        if hit is not None:
            return QueryResult(**{**hit.__dict__, "cached": True, "duration_s": 0.0})
        started = time.perf_counter()
        try:
            frame = fetch()
            result = QueryResult(
                name=name,
                frame=frame,
                duration_s=time.perf_counter() - started,
                source=source,
                rows_transferred=len(frame),
            )
            self.cache.set(key, result, ttl.total_seconds())
            return result
        except Exception as e:
            log.warning("%s from %s failed: %s", name, source, e)
            return QueryResult(
                name=name,
                frame=pd.DataFrame(),
                status="failed",
                notice=_describe(e),
                duration_s=time.perf_counter() - started,
                source=source,
            )


class _NoEstate:
    name = "none"

    def accounts(self) -> list[dict]:
        raise RuntimeError("no inventory source is configured")

    def deployments(self, account_id: str) -> list[dict]:
        return []

    def diagnostic_settings(self, account_id: str) -> list[dict]:
        return []

    def models(self, subscription: str, location: str) -> list[dict]:
        return []


def _names_cache(cache: Cache) -> Cache:
    """Where callers' names are kept: Redis when the answers are there (shared by every worker), else a
    memory cache of their own, so a tenant's thousands of callers never evict the page answers (512)."""
    return cache if cache.backend == "redis" else MemoryCache(max_entries=NAMES_KEPT)


def _demo_names(settings: Settings) -> NameResolver | None:
    from queries.demo.directory import DemoDirectory

    return DemoDirectory() if settings.names.enabled else None


def _graph_names(settings: Settings) -> NameResolver | None:
    if not settings.names.enabled:
        return None
    from queries.sources.azure_http import default_credential
    from queries.sources.graph import GraphNames

    return GraphNames(settings.names.graph_endpoint, default_credential())


def _describe(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"{type(e).__name__}: {text[:500]}"


def _dtype(kusto: str) -> str:
    return {
        "long": "Int64",
        "int": "Int64",
        "real": "float64",
        "bool": "boolean",
        "datetime": "datetime64[us, UTC]",
        "string": "str",
    }.get(kusto, "object")


def _conform(frame: pd.DataFrame, spec: catalogue.QuerySpec) -> tuple[pd.DataFrame, str | None]:
    """Columns in the declared order and types; datetimes as UTC. A missing column is a partial answer."""
    if len(frame.columns) == 0 and len(frame) == 0:  # no data at all (HTTP 204): nothing is missing
        return pd.DataFrame({c: pd.Series(dtype=_dtype(t)) for c, t in spec.returns}), None
    missing = [c for c in spec.columns if c not in frame.columns]
    out = frame.copy()
    for c in missing:
        out[c] = pd.Series([None] * len(out), dtype="object")
    for c, t in spec.returns:
        if t == "datetime":
            s = pd.to_datetime(out[c], utc=True, errors="coerce")
            out[c] = s
        elif t in ("long", "int"):
            out[c] = pd.to_numeric(out[c], errors="coerce").round().astype("Int64")
        elif t == "real":
            out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
        elif t == "string":
            out[c] = out[c].astype("str")
    out = out[spec.columns]
    return out, (f"columns missing from the answer: {', '.join(missing)}" if missing else None)


_lens: Lens | None = None
_lens_lock = threading.Lock()


def get_lens(settings: Settings | None = None) -> Lens:
    """The process-wide Lens for the configured settings."""
    global _lens
    with _lens_lock:
        if _lens is None or (settings is not None and _lens.settings is not settings):
            _lens = Lens.from_settings(settings or get_settings())
        return _lens
