"""/healthz: the data source, the scheduler and the probe store checked apart; 503 when any fails."""

from __future__ import annotations

import threading
import time
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


# ---- answered from cached checks, in bounded time, rate-limited, details for operators only ------------
class Clock:
    """Monotonic seconds the test moves by hand (the monitor's TTL and timeout read it)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def monitored(settings: Settings, the_lens: Any) -> tuple[Any, Clock]:
    c = client(settings, the_lens)
    clock = Clock()
    c.application.config["aoai_lens_health"].clock = clock
    return c, clock


def call_from(c: Any, address: str) -> Any:
    return c.get("/healthz", environ_base={"REMOTE_ADDR": address})


def test_a_burst_of_calls_runs_the_data_query_once_per_ttl(settings: Settings) -> None:
    the_lens = lens(OK)
    c, clock = monitored(settings, the_lens)
    answers = [call_from(c, f"10.0.{i // 250}.{i % 250}") for i in range(60)]  # 60 clients, one call each
    assert {r.status_code for r in answers} == {200}
    assert the_lens.logs.asked == [health.HEALTH_QUERY]  # one workspace query for the whole burst
    clock.t += health.HEALTH_TTL_S - 0.1
    call_from(c, "10.1.0.1")
    assert len(the_lens.logs.asked) == 1  # still fresh
    clock.t += 0.2
    assert call_from(c, "10.1.0.2").status_code == 200
    assert len(the_lens.logs.asked) == 2  # at most once per HEALTH_TTL_S


class HungLogs(Logs):
    """A logs source whose query does not come back until the test says so."""

    def __init__(self) -> None:
        super().__init__(OK)
        self.release = threading.Event()

    def run(self, request: LogsRequest) -> LogsAnswer:
        self.asked.append(request.kql)
        self.release.wait(30)
        return OK


def test_a_hung_data_source_does_not_hold_the_probe(settings: Settings) -> None:
    logs = HungLogs()
    c, clock = monitored(settings, SimpleNamespace(logs=logs, cache=None))
    try:
        started = time.monotonic()
        r = c.get("/healthz")
        took = time.monotonic() - started
        assert took < 1.5, took  # a guard on the behaviour (answered while the query hangs), not a benchmark
        assert r.status_code == 503 and r.get_json()["status"] == "starting"
        assert r.get_json()["checks"]["data"] == {"status": "pending"}
        assert r.get_json()["checks"]["store"]["status"] == "ok"

        clock.t += health.HEALTH_TIMEOUT_S  # still hanging after the timeout: failed
        r = c.get("/healthz")
        assert r.status_code == 503 and r.get_json()["checks"]["data"]["reason"] == "timeout"
        assert logs.asked == [health.HEALTH_QUERY]  # and never a second query piled on the hung one
    finally:
        logs.release.set()
    deadline = time.monotonic() + 10
    while c.get("/healthz").get_json()["checks"]["data"]["status"] != "ok":  # the query came back
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_healthz_is_rate_limited_per_client(settings: Settings) -> None:
    c, _clock = monitored(settings, lens(OK))
    answers = [call_from(c, "192.0.2.7") for _ in range(40)]
    limited = [r for r in answers if r.status_code == 429]
    assert limited and all(r.status_code in (200, 429) for r in answers)
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert call_from(c, "192.0.2.8").status_code == 200  # another client is not affected


def basic_settings(tmp_path: Path) -> Settings:
    """Basic auth: ops sees every team, supp only support (its password is read from the environment
    when someone signs in: the test sets HEALTHZ_SUPP_PW)."""
    from queries.config import load_settings

    toml = tmp_path / "aoai-lens.toml"
    toml.write_text(
        '[dashboard]\nauth = "basic"\nbasic_user = "ops"\n'
        '[[dashboard.users]]\nname = "supp"\nteams = ["support"]\npassword_env = "HEALTHZ_SUPP_PW"\n'
    )
    env = {"AOAI_LENS_DATA_DIR": str(tmp_path), "AOAI_LENS_DASHBOARD__BASIC_PASSWORD": "ops-password-for-healthz"}
    return load_settings(toml, environ=env)


def test_details_only_for_an_operator_when_an_auth_mode_is_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    monkeypatch.setenv("HEALTHZ_SUPP_PW", "supp-password-for-healthz")
    s = basic_settings(tmp_path)
    c = client(s, lens(LogsAnswer(pd.DataFrame(), "failed", "boom")))

    def auth(user: str, pw: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}

    for headers in ({}, auth("ops", "wrong"), auth("supp", "supp-password-for-healthz"), {"Authorization": "Basic ä"}):
        r = c.get("/healthz", headers=headers)
        assert r.status_code == 503 and r.get_json() == {"status": "fail"}  # what a load balancer needs
    r = c.get("/healthz", headers=auth("ops", "ops-password-for-healthz"))
    body = r.get_json()
    assert r.status_code == 503 and body["checks"]["data"]["status"] == "fail"
    assert body["checks"]["scheduler"]["status"] == "ok" and isinstance(body["worker"], int)
