"""/healthz: the data source, the scheduler and the probe store checked apart; 503 when any fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from flask import Flask

from dashboard import health
from queries.config import Settings
from queries.sources.base import LogsAnswer, LogsRequest


class Logs:
    name = "fake logs"

    def __init__(self, answer: LogsAnswer | Exception) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def run(self, request: LogsRequest) -> LogsAnswer:
        self.asked.append(request.kql)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def lens(answer: LogsAnswer | Exception) -> Any:
    return SimpleNamespace(logs=Logs(answer), cache=None)


OK = LogsAnswer(pd.DataFrame({"Count": [1]}))


class Job:
    def __init__(self, next_run_time: datetime | None) -> None:
        self.next_run_time = next_run_time


class Sched:
    def __init__(self, running: bool, jobs: list[Job]) -> None:
        self.running = running
        self.jobs = jobs

    def get_jobs(self) -> list[Job]:
        return self.jobs


@pytest.fixture
def settings(demo_settings: Settings, tmp_path: Path) -> Settings:
    return demo_settings.model_copy(update={"data_dir": tmp_path})


def client(settings: Settings, the_lens: Any, scheduler: Any = None) -> Any:
    app = Flask("healthz-test")
    app.config.update(aoai_lens_settings=settings, aoai_lens_lens=the_lens, aoai_lens_scheduler=scheduler)
    health.install(app)
    return app.test_client()


def test_all_ok_and_scheduler_external_when_this_process_runs_none(settings: Settings) -> None:
    r = client(settings, lens(OK)).get("/healthz")
    body = r.get_json()
    assert r.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["data"]["status"] == "ok"
    assert body["checks"]["scheduler"] == {"status": "ok", "mode": "external"}
    assert body["checks"]["store"] == {"status": "ok", "detail": "not created yet"}


def test_data_source_failure_names_only_the_data_check(settings: Settings) -> None:
    secret_msg = "https://user:hunter2@logs.example/ token=abc"
    for the_lens in (lens(RuntimeError(secret_msg)), lens(LogsAnswer(pd.DataFrame(), "failed", secret_msg))):
        r = client(settings, the_lens).get("/healthz")
        body = r.get_json()
        assert r.status_code == 503 and body["status"] == "fail"
        assert body["checks"]["data"]["status"] == "fail"
        assert body["checks"]["scheduler"]["status"] == "ok" and body["checks"]["store"]["status"] == "ok"
        assert "hunter2" not in r.get_data(as_text=True) and "token" not in r.get_data(as_text=True)
    assert the_lens.logs.asked == [health.HEALTH_QUERY]


def test_missing_demo_workspace_fails_the_data_check(settings: Settings, tmp_path: Path) -> None:
    s = settings.model_copy(update={"demo": settings.demo.model_copy(update={"path": tmp_path / "gone.duckdb"})})
    r = client(s, lens(OK)).get("/healthz")
    assert r.status_code == 503 and r.get_json()["checks"]["data"] == {
        "status": "fail",
        "reason": "demo workspace missing",
    }


def test_scheduler_stopped_or_stuck_fails_the_scheduler_check(settings: Settings) -> None:
    now = datetime.now(UTC)
    handle = SimpleNamespace(scheduler=Sched(True, [Job(now + timedelta(minutes=5))]))
    r = client(settings, lens(OK), handle).get("/healthz")
    assert r.status_code == 200 and r.get_json()["checks"]["scheduler"]["mode"] == "in-process"

    stopped = SimpleNamespace(scheduler=Sched(False, []))
    r = client(settings, lens(OK), stopped).get("/healthz")
    assert r.status_code == 503 and r.get_json()["checks"]["scheduler"]["reason"] == "not running"

    overdue = now - timedelta(seconds=settings.scheduler.misfire_grace_s + health.STUCK_AFTER_S + 30)
    stuck = SimpleNamespace(scheduler=Sched(True, [Job(overdue), Job(now + timedelta(minutes=1))]))
    r = client(settings, lens(OK), stuck).get("/healthz")
    body = r.get_json()
    assert r.status_code == 503 and body["checks"]["scheduler"]["reason"] == "jobs overdue"
    assert body["checks"]["data"]["status"] == "ok" and body["checks"]["store"]["status"] == "ok"


def test_unreadable_probe_store_fails_the_store_check(settings: Settings) -> None:
    from alerts.store import Store

    Store(settings.state_path).add_job_run("probe:x:chat", 1.0, True, 3.0, None)
    r = client(settings, lens(OK)).get("/healthz")
    assert r.status_code == 200 and r.get_json()["checks"]["store"]["status"] == "ok"

    settings.state_path.write_bytes(b"this is not a database" * 100)
    r = client(settings, lens(OK)).get("/healthz")
    body = r.get_json()
    assert r.status_code == 503 and body["checks"]["store"]["status"] == "fail"
    assert body["checks"]["data"]["status"] == "ok" and body["checks"]["scheduler"]["status"] == "ok"
    assert str(settings.state_path) not in r.get_data(as_text=True)
