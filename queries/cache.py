"""A cache for query answers, with each query's own lifetime.

Keys are the source and the rendered query (whose time range the API has already rounded to the
query's cache bucket), so a repeat within the lifetime is a hit and the next bucket is a new query.
The clock is injectable: tests move time by hand instead of sleeping.

Two backends with the same `get`/`set` interface: `MemoryCache` (one process) and `RedisCache`
(settings `cache.backend = "redis"`), which several web workers share so a query one worker ran is a hit
in the others. Both count hits and misses per process and per thread (`request_counts`), which the
dashboard reports in a response header so a hit served by another worker can be seen.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from queries.config import Settings

log = logging.getLogger(__name__)


class Cache(Protocol):
    """What the Lens needs of a cache (both backends have it)."""

    backend: str

    def get(self, key: str) -> Any | None: ...
    def set(self, key: str, value: Any, ttl_s: float) -> None: ...
    def clear(self) -> None: ...
    def reset_request_counts(self) -> None: ...
    def request_counts(self) -> tuple[int, int]: ...


class _Counted:
    """Hit and miss counts: process-wide (`hits`, `misses`) and for the current thread since the last
    `reset_request_counts()` (one web request, in the dashboard)."""

    backend = "memory"
    hits = 0
    misses = 0
    _local: threading.local

    def _count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        local = self._local
        local.hits = getattr(local, "hits", 0) + int(hit)
        local.misses = getattr(local, "misses", 0) + int(not hit)

    def reset_request_counts(self) -> None:
        self._local.hits = self._local.misses = 0

    def request_counts(self) -> tuple[int, int]:
        return getattr(self._local, "hits", 0), getattr(self._local, "misses", 0)


class MemoryCache(_Counted):
    def __init__(self, max_entries: int = 512, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            item = self._data.get(key)
            if item is None or item[0] <= self.clock():
                if item is not None:
                    del self._data[key]
                self._count(False)
                return None
            self._data.move_to_end(key)
            self._count(True)
            return item[1]

    def set(self, key: str, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        with self._lock:
            self._data[key] = (self.clock() + ttl_s, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class RedisCache(_Counted):
    """A cache in Redis (redis-py), shared by every process that points at the same server.

    Values are pickled query results: the Redis server must be private to the app (it is a cache of
    your data, not a place other software writes to). Redis expires entries itself (`PX`). A Redis that
    cannot be reached makes every lookup a miss and every store a no-op, with a warning that never
    includes the URL (it may carry a password), so pages keep working, only slower."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = "aoai-lens:", client: Any = None) -> None:
        import redis

        self.prefix = prefix
        self._client = client or redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._errors = redis.RedisError
        self._local = threading.local()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    def _failed(self, op: str, e: Exception) -> None:
        self.errors += 1
        log.warning("redis cache %s failed (%s); answering without the cache", op, type(e).__name__)

    def get(self, key: str) -> Any | None:
        try:
            raw = self._client.get(self.prefix + key)
        except self._errors as e:
            self._failed("get", e)
            raw = None
        if raw is None:
            self._count(False)
            return None
        self._count(True)
        return pickle.loads(raw)  # type: ignore[arg-type]

    def set(self, key: str, value: Any, ttl_s: float) -> None:
        if ttl_s <= 0:
            return
        try:
            self._client.set(self.prefix + key, pickle.dumps(value), px=max(int(ttl_s * 1000), 1))
        except self._errors as e:
            self._failed("set", e)

    def clear(self) -> None:
        try:
            keys = list(self._client.scan_iter(match=self.prefix + "*"))
            if keys:
                self._client.delete(*keys)
        except self._errors as e:
            self._failed("clear", e)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except self._errors:
            return False


def cache_from_settings(settings: Settings) -> MemoryCache | RedisCache:
    """The cache `cache.backend` names: in this process, or in Redis (shared by every worker)."""
    if settings.cache.backend == "redis" and settings.cache.redis_url:
        return RedisCache(settings.cache.redis_url)
    return MemoryCache()
