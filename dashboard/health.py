"""`/healthz`: the data source, the scheduler and the probe store, checked apart, off the request path.

    {"status": "ok" | "fail" | "starting"}                                     (anyone)
    {"status": ..., "checks": {"data": {...}, "scheduler": {...}, "store": {...}},
     "cache": {...}, "worker": pid}                                           (an operator)

HTTP 200 when every check passed, 503 when any failed or none has finished yet ("starting", right after
the process starts). Load balancers and platform probes need only the status code, so that is all an
unauthenticated caller gets when an auth mode is on; an operator (a signed-in user who sees every team)
also gets which check failed, the cache's counters and the worker's pid. With no auth mode (loopback, or
`--no-auth`) everyone is the operator. A failed check names only the kind of error (an exception's
class name, never its message: messages can carry paths, URLs or tokens).

The checks run in background threads, each at most once every `HEALTH_TTL_S` seconds per process, never
two of the same at once: a request answers from the latest results, waiting at most `HEALTH_WAIT_S` for a
run it started. So a burst of calls costs no workspace query per call, and a data source that hangs
cannot hold a probe: a check still running after `HEALTH_TIMEOUT_S` is reported failed ("timeout").
Each client address may call `/healthz` `HEALTH_RATE` (then 429 with Retry-After).

- data: one tiny query (`AzureDiagnostics | take 1 | count`) straight to the configured logs source,
  bypassing the cache; in demo mode the workspace file must exist first.
- scheduler: `in-process` when `serve` runs it (running, and no job overdue by more than its misfire
  grace plus a minute: a stuck scheduler fails), `external` when this process runs none (several
  workers, `--no-scheduler`, `scheduler.enabled = false`): it then runs as `aoai-lens scheduler`.
- store: the SQLite probe and alert store opens read-only and answers a query (absent before the
  scheduler's first write: reported, not failed).
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from queries.config import Settings

HEALTH_TTL_S = 5.0  # each check runs at most this often per process
HEALTH_WAIT_S = 0.8  # a request waits at most this long for the checks it started
HEALTH_TIMEOUT_S = 5.0  # a check still running after this long is failed ("timeout")
HEALTH_RATE = "10 per second"  # per client address, per process
HEALTH_QUERY = "AzureDiagnostics | take 1 | count"
STUCK_AFTER_S = 60.0

Check = dict[str, Any]


def _fail(reason: str, **extra: Any) -> Check:
    return {"status": "fail", "reason": reason, **extra}


def check_data(settings: Settings, lens_of: Callable[[], Any]) -> Check:
    if settings.is_demo and not settings.demo_path.exists():
        return _fail("demo workspace missing")
    try:
        from queries.sources.base import LogsRequest

        lens = lens_of()
        logs = getattr(lens, "unscoped", lens).logs
        end = datetime.now(UTC)
        started = time.perf_counter()
        answer = logs.run(LogsRequest(HEALTH_QUERY, end - timedelta(hours=1), end))
        took = round((time.perf_counter() - started) * 1000, 1)
    except Exception as e:
        return _fail(type(e).__name__)
    if answer.status == "failed":
        return _fail("query failed", source=getattr(logs, "name", "logs"))
    return {"status": "ok", "source": getattr(logs, "name", "logs"), "ms": took}


def check_scheduler(settings: Settings, handle: Any, now: datetime | None = None) -> Check:
    if handle is None:
        return {"status": "ok", "mode": "external"}
    sched = getattr(handle, "scheduler", handle)
    if not getattr(sched, "running", False):
        return _fail("not running", mode="in-process")
    now = now or datetime.now(UTC)
    grace = settings.scheduler.misfire_grace_s + STUCK_AFTER_S
    try:
        jobs = sched.get_jobs()
    except Exception as e:
        return _fail(type(e).__name__, mode="in-process")
    due = [j.next_run_time for j in jobs if j.next_run_time is not None]
    overdue = [t for t in due if (now - t).total_seconds() > grace]
    if overdue:
        return _fail("jobs overdue", mode="in-process", overdue=len(overdue))
    nxt = min(due) if due else None
    return {
        "status": "ok",
        "mode": "in-process",
        "jobs": len(jobs),
        "next_run_in_s": round((nxt - now).total_seconds(), 1) if nxt else None,
    }


def check_store(settings: Settings) -> Check:
    path = settings.state_path
    if not path.exists():
        return {"status": "ok", "detail": "not created yet"}
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            row = con.execute("SELECT max(ts) FROM job_runs").fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        return _fail(type(e).__name__)
    last = row[0] if row else None
    return {"status": "ok", "last_job_age_s": round(time.time() - last, 1) if last else None}


class HealthMonitor:
    """Runs named checks in background threads, at most once per `ttl` each, and answers from their
    latest results. `clock` is monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        checks: Mapping[str, Callable[[], Check]],
        *,
        ttl: float = HEALTH_TTL_S,
        wait: float = HEALTH_WAIT_S,
        timeout: float = HEALTH_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checks = dict(checks)
        self.ttl, self.wait, self.timeout, self.clock = ttl, wait, timeout, clock
        self.runs: Counter[str] = Counter()  # how often each check has started (tests; the details)
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, Check]] = {}  # name -> (finished at, result)
        self._running: dict[str, tuple[float, threading.Event]] = {}  # name -> (started at, finished)

    def _run(self, name: str, finished: threading.Event) -> None:
        try:
            result = self.checks[name]()
        except Exception as e:
            result = _fail(type(e).__name__)
        with self._lock:
            self._done[name] = (self.clock(), result)
            self._running.pop(name, None)
        finished.set()

    def results(self) -> dict[str, Check]:
        """Each check's latest result; starts the checks whose result is older than `ttl`."""
        now = self.clock()
        waiting: list[threading.Event] = []
        with self._lock:
            for name in self.checks:
                done, running = self._done.get(name), self._running.get(name)
                if running is None and (done is None or now - done[0] >= self.ttl):
                    finished = threading.Event()
                    self._running[name] = (now, finished)
                    self.runs[name] += 1
                    threading.Thread(
                        target=self._run, args=(name, finished), name=f"healthz-{name}", daemon=True
                    ).start()
                    waiting.append(finished)
                elif running is not None:
                    waiting.append(running[1])
        deadline = now + self.wait
        for finished in waiting:
            finished.wait(max(0.0, deadline - self.clock()))
        now = self.clock()
        out: dict[str, Check] = {}
        with self._lock:
            for name in self.checks:
                done, running = self._done.get(name), self._running.get(name)
                if running is not None and now - running[0] >= self.timeout:
                    out[name] = _fail("timeout", running_s=round(now - running[0], 1))
                elif done is not None:
                    out[name] = done[1]
                else:
                    out[name] = {"status": "pending"}
        return out


def overall(checks: Mapping[str, Check]) -> tuple[str, int]:
    """The status and HTTP code for a set of check results."""
    if any(c["status"] == "fail" for c in checks.values()):
        return "fail", 503
    if any(c["status"] != "ok" for c in checks.values()):
        return "starting", 503
    return "ok", 200


def cache_stats(lens_of: Callable[[], Any]) -> dict[str, Any] | None:
    try:
        cache = getattr(lens_of(), "cache", None)
    except Exception:
        return None
    if cache is None:
        return None
    return {
        "backend": getattr(cache, "backend", "memory"),
        "hits": getattr(cache, "hits", 0),
        "misses": getattr(cache, "misses", 0),
        "worker": os.getpid(),
    }


def health(settings: Settings, lens_of: Callable[[], Any], scheduler: Any) -> tuple[dict[str, Any], int]:
    """Every check run now, in this thread, and the full answer (the command line and tests; the
    endpoint answers from a HealthMonitor)."""
    checks = {
        "data": check_data(settings, lens_of),
        "scheduler": check_scheduler(settings, scheduler),
        "store": check_store(settings),
    }
    status, code = overall(checks)
    body: dict[str, Any] = {"status": status, "checks": checks}
    cache = cache_stats(lens_of)
    if cache is not None:
        body["cache"] = cache
    return body, code


def _lens(server: Flask) -> Any:
    lens = server.config.get("aoai_lens_lens")
    if lens is None:
        from queries.lens import get_lens

        lens = get_lens(server.config["aoai_lens_settings"])
    return lens


def is_operator(settings: Settings, headers: Any) -> bool:
    """May this request see the checks' details? With an auth mode: only a signed-in user who sees every
    team. Without one (loopback, `--no-auth`), everyone."""
    if settings.dashboard.auth == "none":
        return True
    from dashboard.auth import PRINCIPAL_HEADER, authenticate

    if not (headers.get("Authorization") or headers.get(PRINCIPAL_HEADER)):
        return False
    from flask import current_app, has_request_context, request

    # the same failed-sign-in throttle as every other path: /healthz is no side door for guessing passwords
    throttle = current_app.config.get("aoai_lens_login_throttle") if has_request_context() else None
    client = (request.remote_addr or "?") if has_request_context() else "?"
    if throttle is not None and throttle.retry_after(client) is not None:
        return False
    try:
        return authenticate(settings, headers).is_admin
    except Exception:  # refused, or credentials too odd to read: the bare status
        if throttle is not None and settings.dashboard.auth == "basic" and headers.get("Authorization"):
            throttle.failed(client)
        return False


def monitor_for(server: Flask) -> HealthMonitor:
    """The app's HealthMonitor; its checks read the app's settings, Lens and scheduler when they run."""
    cfg = server.config
    return HealthMonitor(
        {
            "data": lambda: check_data(cfg["aoai_lens_settings"], lambda: _lens(server)),
            "scheduler": lambda: check_scheduler(cfg["aoai_lens_settings"], cfg.get("aoai_lens_scheduler")),
            "store": lambda: check_store(cfg["aoai_lens_settings"]),
        }
    )


def install(server: Flask) -> None:
    """`/healthz` (answered from a HealthMonitor, rate-limited per client), and on every other response
    which worker answered and its cache hits and misses for this request (`X-Aoai-Lens-Worker`,
    `X-Aoai-Lens-Cache`)."""
    server.config.setdefault("aoai_lens_health", monitor_for(server))
    limiter = Limiter(get_remote_address, app=server, storage_uri="memory://")

    def too_many(limit: RequestLimit) -> Response:
        """429 with how long to wait, in whole seconds and at least one (the library's own header
        rounds a one-second window down to 0)."""
        resp = jsonify({"status": "rate limited"})
        resp.status_code = 429
        resp.headers["Retry-After"] = str(max(1, math.ceil(limit.reset_at - time.time())))
        return resp

    @server.get("/healthz")
    @limiter.limit(HEALTH_RATE, on_breach=too_many)
    def healthz() -> Any:
        settings: Settings = server.config["aoai_lens_settings"]
        monitor: HealthMonitor = server.config["aoai_lens_health"]
        checks = monitor.results()
        status, code = overall(checks)
        body: dict[str, Any] = {"status": status}
        if is_operator(settings, request.headers):
            body["checks"] = checks
            cache = cache_stats(lambda: _lens(server))
            if cache is not None:
                body["cache"] = cache
            body["worker"] = os.getpid()
        resp = jsonify(body)
        resp.status_code = code
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @server.before_request
    def _reset_cache_counts() -> None:
        if request.path == "/healthz":  # answered from the monitor: no Lens on the probe's path
            return
        try:
            cache = getattr(_lens(server), "cache", None)
        except Exception:  # the pages report a broken source themselves
            return
        if cache is not None and hasattr(cache, "reset_request_counts"):
            cache.reset_request_counts()

    @server.after_request
    def _cache_headers(resp: Response) -> Response:
        resp.headers["X-Aoai-Lens-Worker"] = str(os.getpid())
        if request.path == "/healthz":
            return resp
        try:
            cache = getattr(_lens(server), "cache", None)
        except Exception:
            cache = None
        if cache is not None and hasattr(cache, "request_counts"):
            hits, misses = cache.request_counts()
            resp.headers["X-Aoai-Lens-Cache"] = f"{getattr(cache, 'backend', 'memory')} hits={hits} misses={misses}"
        return resp
