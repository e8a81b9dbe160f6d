"""Scheduler behaviour: jobs from settings in a persistent store, run once at start, on a fake clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.doubles import FakeClock

from alerts import runtime as rt
from alerts import scheduler as sch
from queries.config import Settings


def settings_for(tmp_path: Path, targets: list[dict], rules: bool = True) -> Settings:
    return Settings(
        data_dir=tmp_path,
        demo={"path": str(tmp_path / "missing.duckdb")},
        probes={"auth": "key", "targets": targets},
        alerts={
            "evaluate_interval_s": 120,
            "rules": [{"name": "p", "kind": "probe_failures", "threshold": 2}] if rules else [],
        },
        scheduler={"misfire_grace_s": 45},
    )


TARGETS = [
    {"deployment": "chat-gpt4o", "kind": "chat", "interval_s": 300},
    {"deployment": "embed-small", "kind": "embedding", "interval_s": 600},
]


def test_jobs_from_settings_persist_and_run_once_at_start(tmp_path: Path) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    settings = settings_for(tmp_path, TARGETS)
    sched = sch.build(settings, now=now)
    ids = sch.start(sched, paused=True)
    try:
        assert ids == ["alerts:evaluate", "ingest", "ledger", "probe:chat-gpt4o:chat", "probe:embed-small:embedding"]
        jobs = {j.id: j for j in sched.get_jobs()}
        for job in jobs.values():
            assert job.next_run_time == now  # run once at start
            assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 45
        assert jobs["probe:chat-gpt4o:chat"].trigger.interval == timedelta(seconds=300)
        assert jobs["probe:embed-small:embedding"].args == ("embed-small", "embedding")
        assert jobs["alerts:evaluate"].trigger.interval == timedelta(seconds=120)
        assert jobs["ledger"].trigger.interval == timedelta(seconds=settings.ledger.build_interval_s)
    finally:
        sched.shutdown(wait=False)
    assert (tmp_path / "scheduler.sqlite").exists()

    # a restart with one target fewer: the stored job store is reused, the stale job goes, no duplicates
    fewer = settings_for(tmp_path, TARGETS[:1])
    again = sch.build(fewer, now=now + timedelta(minutes=5))
    sch.start(again, paused=True)
    try:
        assert sorted(j.id for j in again.get_jobs()) == [
            "alerts:evaluate",
            "ingest",
            "ledger",
            "probe:chat-gpt4o:chat",
        ]
    finally:
        again.shutdown(wait=False)


def test_job_bodies_on_a_fake_clock(tmp_path: Path, clock: FakeClock) -> None:
    settings = settings_for(tmp_path, TARGETS[:1])
    runtime = rt.install(
        rt.Runtime(settings, clock=clock, simulator_options={"clock": clock, "sleep": clock.sleep, "rpm_override": 1})
    )
    try:
        assert sch.probe_job("chat-gpt4o", "chat") is True  # ok
        clock.advance(300)
        assert sch.probe_job("chat-gpt4o", "chat") is True  # a new minute: ok again
        assert sch.probe_job("chat-gpt4o", "chat") is True  # same minute: 429, a result, not a job failure
        assert sch.probe_job("chat-gpt4o", "chat") is True
        assert list(runtime.store.probes()["class"]) == ["ok", "ok", "rate_limited", "rate_limited"]
        assert sch.evaluate_job() is True
        assert [(t.rule, t.new) for t in runtime.store.transitions()] == [("p", "firing")]
        # a failing job is logged and counted; the next job still runs
        assert sch.probe_job("not-a-target", "chat") is False
        assert sch.ingest_job() is False  # records to load but no workspace: a counted failure
        assert sch.probe_job("chat-gpt4o", "chat") is True  # and the scheduler goes on
    finally:
        runtime.close()
    counts = runtime.store.job_counts()
    assert counts["probe:not-a-target:chat"] == {"ok": 0, "failed": 1}
    assert counts["probe:chat-gpt4o:chat"] == {"ok": 5, "failed": 0}
    assert counts["ingest"] == {"ok": 0, "failed": 1}
    assert counts["alerts:evaluate"]["ok"] == 1


def test_a_raising_job_never_escapes(tmp_path: Path, clock: FakeClock) -> None:
    runtime = rt.Runtime(settings_for(tmp_path, []), clock=clock)

    def boom() -> None:
        raise RuntimeError("database is on fire")

    assert sch.run_job("boom", boom, runtime) is False
    assert sch.run_job("fine", lambda: None, runtime) is True
    assert runtime.store.job_counts() == {"boom": {"ok": 0, "failed": 1}, "fine": {"ok": 1, "failed": 0}}


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigterm_stops_the_scheduler_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "aoai-lens.toml"
    config.write_text('[source]\nkind = "demo"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOAI_LENS_")}
    env.update({"AOAI_LENS_CONFIG": str(config), "AOAI_LENS_DATA_DIR": str(tmp_path / "data")})
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard.cli", "scheduler"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "scheduler started" in line:
            break
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert (tmp_path / "data" / "scheduler.sqlite").exists()
