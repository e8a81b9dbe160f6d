"""APScheduler 3.x jobs declared from settings: a probe per target, alert evaluation, ingestion.

The job store is persistent (SQLAlchemy: SQLite by default, any URL in scheduler.jobstore_url); every
job runs once at start, coalesces missed runs, has a misfire grace and never overlaps itself. A failing
job is logged and counted in the state store; it never stops the scheduler. Stored jobs name module
functions and plain arguments only, never settings or secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger

from alerts import runtime as rt
from queries.config import Settings

log = logging.getLogger("aoai_lens.scheduler")

INGEST_INTERVAL_S = 60
JOB_GROUPS = ("probes", "alerts", "ingest", "archive", "ledger")


def run_job(name: str, fn: Callable[[], Any], runtime: rt.Runtime | None = None) -> bool:
    """Run one job body, record its outcome (ok or the error) and never raise."""
    runtime = runtime or rt.current()
    started = time.perf_counter()
    ok, error = True, None
    try:
        fn()
    except Exception as e:
        ok, error = False, f"{type(e).__name__}: {e}"[:500]
        log.exception("job %s failed", name)
    took = (time.perf_counter() - started) * 1000
    try:
        runtime.store.add_job_run(name, runtime.clock(), ok, took, error)
    except Exception:  # the state store itself failing must not stop the scheduler either
        log.exception("could not record the outcome of job %s", name)
    return ok


def probe_job(deployment: str, kind: str) -> bool:
    r = rt.current()

    def body() -> None:
        result = r.probe(r.target(deployment, kind))
        log.info("probe %s %s: %s %.0f ms", deployment, kind, result.klass, result.latency_ms or 0)

    return run_job(f"probe:{deployment}:{kind}", body, r)


def ab_job(name: str) -> bool:
    r = rt.current()

    def body() -> None:
        for result in r.probe_ab(name):
            log.info("A/B probe %s %s: %s %.0f ms", name, result.arm, result.klass, result.latency_ms or 0)

    return run_job(f"ab:{name}", body, r)


def evaluate_job() -> bool:
    r = rt.current()

    def body() -> None:
        report = r.evaluate()
        for rule, why in report.skipped.items():
            log.debug("rule %s skipped: %s", rule, why)

    return run_job("alerts:evaluate", body, r)


def ingest_job() -> bool:
    r = rt.current()

    def body() -> None:
        from queries.filestore import WriterBusy

        try:
            r.ingest()
        except WriterBusy as e:  # a CLI command is loading the same records: it will, not us
            log.info("ingest job skipped: %s", e)

    return run_job("ingest", body, r)


def archive_job() -> bool:
    """Import what is new in the storage account's archive; a CLI import at work is not a failure."""
    r = rt.current()

    def body() -> None:
        from queries.filestore import WriterBusy

        try:
            r.import_archive()
        except WriterBusy as e:
            log.info("archive job skipped: %s", e)

    return run_job("archive", body, r)


def ledger_job() -> bool:
    """Close the cost ledger's hours that are due; a writer already at work (a CLI build) is not a failure."""
    r = rt.current()

    def body() -> None:
        from queries.filestore import WriterBusy

        try:
            report = r.build_ledger()
        except WriterBusy as e:
            log.info("ledger job skipped: %s", e)
            return
        if report.hours_built:
            log.info("%s", report)

    return run_job("ledger", body, r)


def job_specs(settings: Settings, groups: tuple[str, ...] = JOB_GROUPS) -> list[dict[str, Any]]:
    """The jobs the settings declare, as add_job keyword arguments (without the run-once-now time)."""
    specs: list[dict[str, Any]] = []
    if "probes" in groups:
        for t in settings.probes.targets:
            specs.append(
                {
                    "id": f"probe:{t.deployment}:{t.kind}",
                    "func": probe_job,
                    "args": [t.deployment, t.kind],
                    "trigger": IntervalTrigger(seconds=t.interval_s),
                }
            )
    if "probes" in groups:
        for ab in settings.probes.ab:
            specs.append(
                {
                    "id": f"ab:{ab.name}",
                    "func": ab_job,
                    "args": [ab.name],
                    "trigger": IntervalTrigger(seconds=ab.interval_s),
                }
            )
    if "alerts" in groups and settings.alerts.rules:
        specs.append(
            {
                "id": "alerts:evaluate",
                "func": evaluate_job,
                "args": [],
                "trigger": IntervalTrigger(seconds=settings.alerts.evaluate_interval_s),
            }
        )
    if "ingest" in groups and settings.is_demo:
        specs.append(
            {"id": "ingest", "func": ingest_job, "args": [], "trigger": IntervalTrigger(seconds=INGEST_INTERVAL_S)}
        )
    if "archive" in groups and settings.archive.configured:
        specs.append(
            {
                "id": "archive",
                "func": archive_job,
                "args": [],
                "trigger": IntervalTrigger(seconds=settings.archive.interval_s),
            }
        )
    if "ledger" in groups:
        specs.append(
            {
                "id": "ledger",
                "func": ledger_job,
                "args": [],
                "trigger": IntervalTrigger(seconds=settings.ledger.build_interval_s),
            }
        )
    return specs


def build(settings: Settings, *, groups: tuple[str, ...] = JOB_GROUPS, now: datetime | None = None) -> BaseScheduler:
    """A background scheduler holding the settings' jobs; `start()` below starts it and syncs them.
    (The CLI's foreground commands run this too and wait for SIGTERM in the main thread.)"""
    url = settings.jobstore_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    job_defaults = {"coalesce": True, "max_instances": 1, "misfire_grace_time": settings.scheduler.misfire_grace_s}
    sched = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)}, job_defaults=job_defaults, timezone=UTC
    )
    sched._aoai_specs = job_specs(settings, groups)  # type: ignore[attr-defined]
    sched._aoai_now = now  # type: ignore[attr-defined]
    return sched


def sync_jobs(sched: BaseScheduler) -> list[str]:
    """Make the (started, possibly paused) scheduler's stored jobs match the settings: stale ones go,
    declared ones are (re)written and due now."""
    specs: list[dict[str, Any]] = sched._aoai_specs  # type: ignore[attr-defined]
    now = sched._aoai_now or datetime.now(UTC)  # type: ignore[attr-defined]
    wanted = {s["id"] for s in specs}
    for job in sched.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s: no longer in the settings", job.id)
            job.remove()
    for s in specs:
        sched.add_job(replace_existing=True, next_run_time=now, name=s["id"], **s)
    return sorted(wanted)


def start(sched: BaseScheduler, *, paused: bool = False) -> list[str]:
    """Start, sync the jobs from settings, then run (each job once now, then on its interval)."""
    sched.start(paused=True)
    ids = sync_jobs(sched)
    if not paused:
        sched.resume()
    log.info("scheduler started with %d job(s): %s", len(ids), ", ".join(ids))
    return ids


class InProcessScheduler:
    """The scheduler running inside `serve`; `shutdown()` stops it and the in-process simulator."""

    def __init__(self, sched: BaseScheduler, runtime: rt.Runtime) -> None:
        self.scheduler = sched
        self.runtime = runtime

    def shutdown(self) -> None:
        try:
            if self.scheduler.running:
                self.scheduler.shutdown(wait=True)
        finally:
            self.runtime.close()


def start_in_process(settings: Settings) -> InProcessScheduler:
    """For `serve`: a background scheduler with every job from settings, sharing the process's Lens."""
    runtime = rt.install(rt.Runtime(settings))
    sched = build(settings)
    start(sched)
    return InProcessScheduler(sched, runtime)
