"""`/healthz`: the data source, the scheduler and the probe store, checked apart.

    {"status": "ok" | "fail", "checks": {"data": {...}, "scheduler": {...}, "store": {...}}, "cache": {...}}

HTTP 200 when every check passed, 503 when any failed; each check says `ok` or `fail` and, when it
failed, only the kind of error (an exception's class name, never its message: messages can carry
paths, URLs or tokens). It needs no sign-in, so it shows no data, names, paths or settings.

- data: one tiny query (`AzureDiagnostics | take 1 | count`) straight to the configured logs source,
  bypassing the cache; in demo mode the workspace file must exist first.
- scheduler: `in-process` when `serve` runs it (running, and no job overdue by more than its misfire
  grace plus a minute: a stuck scheduler fails), `external` when this process runs none (several
  workers, `--no-scheduler`, `scheduler.enabled = false`): it then runs as `aoai-lens scheduler`.
- store: the SQLite probe and alert store opens read-only and answers a query (absent before the
  scheduler's first write: reported, not failed).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Response, jsonify

from queries.config import Settings

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


def health(settings: Settings, lens_of: Callable[[], Any], scheduler: Any) -> tuple[dict[str, Any], int]:
    checks = {
        "data": check_data(settings, lens_of),
        "scheduler": check_scheduler(settings, scheduler),
        "store": check_store(settings),
    }
    ok = all(c["status"] == "ok" for c in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "fail", "checks": checks}
    try:
        cache = getattr(lens_of(), "cache", None)
    except Exception:
        cache = None
    if cache is not None:
        body["cache"] = {
            "backend": getattr(cache, "backend", "memory"),
            "hits": getattr(cache, "hits", 0),
            "misses": getattr(cache, "misses", 0),
            "worker": os.getpid(),
        }
    return body, 200 if ok else 503


def _lens(server: Flask) -> Any:
    lens = server.config.get("aoai_lens_lens")
    if lens is None:
        from queries.lens import get_lens

        lens = get_lens(server.config["aoai_lens_settings"])
    return lens


def install(server: Flask) -> None:
    """`/healthz`, and on every response which worker answered and its cache hits and misses for this
    request (`X-Aoai-Lens-Worker`, `X-Aoai-Lens-Cache`)."""

    @server.get("/healthz")
    def healthz() -> Any:
        body, code = health(
            server.config["aoai_lens_settings"], lambda: _lens(server), server.config.get("aoai_lens_scheduler")
        )
        return jsonify(body), code

    @server.before_request
    def _reset_cache_counts() -> None:
        try:
            cache = getattr(_lens(server), "cache", None)
        except Exception:  # the pages report a broken source themselves
            return
        if cache is not None and hasattr(cache, "reset_request_counts"):
            cache.reset_request_counts()

    @server.after_request
    def _cache_headers(resp: Response) -> Response:
        try:
            cache = getattr(_lens(server), "cache", None)
        except Exception:
            cache = None
        if cache is not None and hasattr(cache, "request_counts"):
            hits, misses = cache.request_counts()
            resp.headers["X-Aoai-Lens-Cache"] = f"{getattr(cache, 'backend', 'memory')} hits={hits} misses={misses}"
        resp.headers["X-Aoai-Lens-Worker"] = str(os.getpid())
        return resp
