"""Faults: the dashboard keeps serving, the panel or job says what went wrong, nothing recorded is lost.

- Log Analytics throttling (429), server errors (5xx), query timeouts (504) and partial answers, for
  some of a page's queries: those panels fail with their notice, the others are filled.
- Log Analytics or the metrics API unreachable or failing: the page still renders, saying why.
- The probe endpoint (simulator) down or hanging: probes are recorded as `error` / `timeout`, the job
  keeps running and records its runs.
- The state store locked by another writer: writes wait (busy_timeout) and land.
- A notification endpoint down: the attempt is stored with its error, the transition is kept, and the
  next transition is still delivered.
- kill -9 in the middle of writing probe results and transitions: the store opens cleanly and every
  committed write is there.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import dash
import duckdb
import pytest
from fakes import (
    LogAnalyticsServer,
    MetricsServer,
    RecordedRequest,
    Reply,
    error_body,
)
from fakes.azure_env import ArmServer, azure_settings
from fakes.azure_env import azure_lens as fake_azure_lens
from plotly.utils import PlotlyJSONEncoder

from alerts import runtime as rt
from alerts import scheduler
from alerts.evaluate import Evaluator
from alerts.notify import Notifier
from alerts.store import ProbeResult, Store, Transition
from queries import catalogue
from queries.config import (
    AlertChannel,
    AlertRule,
    AlertSettings,
    ProbeSettings,
    ProbeTarget,
    Settings,
    load_settings,
)
from queries.demo import world
from queries.lens import Lens

REPO = Path(__file__).resolve().parents[2]


# ---- the dashboard's pages ---------------------------------------------------------------------------
def the_app(settings: Settings) -> dash.Dash:
    """The session's Dash app (Dash keeps page callbacks in process-wide registries, so there is one per
    session: the dashboard tests' if they ran first, else one made here)."""
    try:
        return dash.get_app()
    except Exception:
        from dashboard.app import create_app

        return create_app(settings)


def page_module(path: str) -> Any:
    for page in dash.page_registry.values():
        if page["path"] == path:
            return sys.modules[page["module"]]
    raise KeyError(path)


def rendered(app: dash.Dash, path: str, settings: Settings, lens: Lens, query: dict[str, str]) -> dict[str, str]:
    """A page's data callback as the app runs it (settings and Lens from the Flask app's config), each
    panel's body as the JSON Dash would send."""
    from dashboard.data import context
    from dashboard.filters import Filters

    page = page_module(path)
    cfg = app.server.config
    saved = {k: cfg.get(k) for k in ("aoai_lens_settings", "aoai_lens_lens", "aoai_lens_context")}
    try:
        cfg.update(aoai_lens_settings=settings, aoai_lens_lens=lens, aoai_lens_context=None)
        with app.server.test_request_context():
            bodies = page.render(Filters.from_query(query), context())
    finally:
        cfg.update(saved)
    keys = list(page.PANELS) if len(bodies) == len(page.PANELS) else ["kpis", *page.PANELS]  # Overview: KPIs first
    return dict(zip(keys, (json.dumps(b, cls=PlotlyJSONEncoder) for b in bodies), strict=True))


# ---- fake Azure with faults chosen per query -----------------------------------------------------------
def needle(name: str) -> str:
    """`name`'s KQL body, found verbatim in the rendered query (after the `let` lines) and in no other."""
    return catalogue.get(name).body.strip()


class FaultyLogAnalytics(LogAnalyticsServer):
    """Answers like Log Analytics, except for the queries named in `faults`: every time one of them is
    asked (batched or alone, first try or retry), it gets its fault."""

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.faults: dict[str, str] = {}

    def _run(self, body: dict[str, Any], request: RecordedRequest) -> Reply:
        query = str(body.get("query", ""))
        for name, fault in self.faults.items():
            if needle(name) in query:
                if fault == "throttle":
                    body_ = error_body("ThrottledError", "Your request was throttled: too many requests.")
                    return Reply(429, body_, {"Retry-After": "900"})
                if fault == "5xx":
                    return Reply(500, error_body("InternalServerError", "The service answered 500."))
                if fault == "timeout":
                    return Reply(504, error_body("GatewayTimeout", "The query exceeded the allowed time."))
                if fault == "partial":
                    answer = super()._run(body, request)
                    return Reply(
                        200,
                        {
                            **answer.body,
                            "error": {
                                "code": "PartialError",
                                "message": "There were some errors when processing your query.",
                                "details": [{"code": "EngineError", "message": "ran out of memory on one shard"}],
                            },
                        },
                    )
        return super()._run(body, request)


class FaultyMetrics(MetricsServer):
    down = False

    def handle(self, request: RecordedRequest) -> Reply:
        if self.down:
            return Reply(500, error_body("InternalServerError", "metrics backend unavailable"))
        return super().handle(request)


def azure_lens(settings: Settings) -> Lens:
    return fake_azure_lens(settings)


@pytest.fixture(scope="module")
def azure(demo_workspace: Path) -> Iterator[tuple[FaultyLogAnalytics, FaultyMetrics, ArmServer]]:
    with (
        FaultyLogAnalytics(demo_workspace, workspace_id=world.TENANT_ID) as la,
        FaultyMetrics(demo_workspace) as ms,
        ArmServer(demo_workspace) as arm,
    ):
        yield la, ms, arm


@pytest.fixture
def faulty(azure: tuple, tmp_path: Path) -> Iterator[tuple[FaultyLogAnalytics, FaultyMetrics, Settings]]:
    la, ms, arm = azure
    la.faults.clear()
    ms.down = False
    yield la, ms, azure_settings(tmp_path, la.url, ms.url, arm.url)
    la.faults.clear()
    ms.down = False


def failed_panels(bodies: dict[str, str]) -> list[str]:
    return [k for k, t in bodies.items() if "panel-failed" in t]


def test_log_analytics_faults_fail_their_panels_and_the_rest_is_filled(faulty: tuple, demo_settings: Settings) -> None:
    la, _ms, settings = faulty
    la.faults.update(
        {
            "requests_by_status": "throttle",
            "latency_by_deployment": "5xx",
            "latency_by_stream_type": "timeout",
            "top_callers_before_429": "partial",
        }
    )
    app = the_app(demo_settings)
    bodies = rendered(app, "/reliability", settings, azure_lens(settings), {"range": "7d"})
    assert sorted(failed_panels(bodies)) == ["latency", "percentiles", "status"]
    assert "HTTP 429" in bodies["status"] and "asked to wait 900 s" in bodies["status"]
    # inside a $batch the service's error code is what comes back for a failed item
    assert "InternalServerError: The service answered 500." in bodies["latency"]
    assert "GatewayTimeout: The query exceeded the allowed time." in bodies["percentiles"]
    assert "panel-partial" in bodies["callers"] and "ran out of memory on one shard" in bodies["callers"]
    # the panels whose queries were answered are drawn from data
    assert '"type": "bar"' in bodies["rates"] and "panel-partial" not in bodies["rates"]
    assert "panel-failed" not in bodies["headroom"] and "panel-failed" not in bodies["quota"]
    # a failed panel keeps its query, to run it in the portal
    assert "StatusClass = case(" in bodies["status"]


def test_log_analytics_unreachable_the_page_still_renders(faulty: tuple, demo_settings: Settings) -> None:
    _la, ms, _ = faulty
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once the socket closes
    settings = azure_settings(Path(demo_settings.data_dir), dead, ms.url, faulty[2].source.management_endpoint)
    bodies = rendered(the_app(demo_settings), "/reliability", settings, azure_lens(settings), {"range": "24h"})
    log_panels = ["callers", "latency", "percentiles", "rates", "status"]
    assert sorted(k for k in failed_panels(bodies) if k in log_panels) == log_panels
    assert "ServiceRequestError" in bodies["status"] or "Connection refused" in bodies["status"]
    assert "panel-failed" not in bodies["quota"]  # the management plane still answers


def test_metrics_errors_are_reported_by_the_cost_panels(
    azure: tuple, demo_workspace: Path, demo_settings: Settings, tmp_path: Path
) -> None:
    """A workspace without the AzureOpenAIRequestUsage category (not exported) is costed from metric
    tokens; with the metrics API failing, the cost panels say so (partial) instead of showing those
    hours as free, and the page still renders."""
    copy = tmp_path / "no-usage.duckdb"
    shutil.copy(demo_workspace, copy)
    con = duckdb.connect(str(copy))
    con.execute("DELETE FROM AzureDiagnostics WHERE Category = 'AzureOpenAIRequestUsage'")
    con.close()
    _la, _ms, arm = azure
    with FaultyLogAnalytics(copy, workspace_id=world.TENANT_ID) as la, FaultyMetrics(copy) as ms:
        settings = azure_settings(tmp_path, la.url, ms.url, arm.url)
        lens = azure_lens(settings)
        ms.down = True
        bodies = rendered(the_app(demo_settings), "/features", settings, lens, {"range": "7d"})  # a new Lens: no cache
        assert any("metrics:getBatch" in r.path for r in ms.requests)
    texts = " ".join(bodies.values())
    assert "metrics: failed" in texts and "metrics backend unavailable" in texts
    assert not failed_panels(bodies)  # partial, not failed: what the logs hold is still shown
    assert any("panel-partial" in t for t in bodies.values())


# ---- probes with the endpoint down -------------------------------------------------------------------
def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung simulator)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def probe_settings(tmp: Path, endpoint: str, timeout_s: float = 5.0) -> Settings:
    base = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp)})
    probes = ProbeSettings(
        endpoint=endpoint,
        auth="key",
        api_key="not-a-real-key",  # type: ignore[arg-type]
        timeout_s=timeout_s,
        targets=[
            ProbeTarget(deployment="chat-gpt4o", kind="chat"),
            ProbeTarget(deployment="embed-small", kind="embedding"),
        ],
    )
    return base.model_copy(update={"probes": probes})


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.mark.parametrize("fault", ["down", "hung"])
def test_probes_record_the_endpoint_fault_and_the_job_keeps_running(
    fault: str, tmp_path: Path, silent_endpoint: str
) -> None:
    endpoint = f"http://127.0.0.1:{_dead_port()}" if fault == "down" else silent_endpoint
    settings = probe_settings(tmp_path, endpoint, timeout_s=0.3)
    runtime = rt.install(rt.Runtime(settings, clock=FakeClock(), lens=object()))
    try:
        for _ in range(2):  # the job runs again after a failed probe
            assert scheduler.probe_job("chat-gpt4o", "chat")
            assert scheduler.probe_job("embed-small", "embedding")
        results = runtime.store.probes()
        expected = "error" if fault == "down" else "timeout"
        assert list(results["class"]) == [expected] * 4
        assert results["error"].str.len().gt(0).all() and results["status_code"].isna().all()
        assert runtime.store.job_counts() == {
            "probe:chat-gpt4o:chat": {"ok": 2, "failed": 0},
            "probe:embed-small:embedding": {"ok": 2, "failed": 0},
        }
    finally:
        runtime.close()
        rt.install(None)  # type: ignore[arg-type]


def test_a_job_whose_body_raises_is_counted_and_the_next_one_runs(tmp_path: Path) -> None:
    settings = probe_settings(tmp_path, "http://127.0.0.1:9")
    runtime = rt.Runtime(settings, clock=FakeClock(), lens=object())

    def boom() -> None:
        raise RuntimeError("the simulator process is gone")

    assert not scheduler.run_job("ingest", boom, runtime)
    assert scheduler.run_job("ingest", lambda: None, runtime)
    assert runtime.store.job_counts() == {"ingest": {"ok": 1, "failed": 1}}


# ---- the state store locked by another writer --------------------------------------------------------
def test_writes_wait_for_a_locked_store_and_land(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    locker = sqlite3.connect(tmp_path / "state.sqlite", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    locker.execute("INSERT INTO job_runs (job, ts, ok) VALUES ('other', 1, 1)")
    errors: list[BaseException] = []
    ids: list[int] = []

    def write() -> None:
        try:
            ids.append(store.add_probe(ProbeResult(ts=1.0, deployment="d", kind="chat", auth="key", klass="ok")))
            ids.append(store.apply(Transition("r", "d/chat", "ok", "firing", 2.0, "why", 1.0)).id or 0)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(0.5)
    assert writer.is_alive() and not errors  # waiting on the lock, not failed
    locker.execute("COMMIT")
    locker.close()
    writer.join(15)
    assert not writer.is_alive() and not errors
    assert len(store.probes()) == 1 and [t.new for t in store.transitions()] == ["firing"]
    assert store.states() == {("r", "d/chat"): "firing"}


# ---- the state store deleted or damaged under a running process ---------------------------------------
def _tables(path: Path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        con.close()


def _delete(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)


def test_a_deleted_or_corrupt_store_is_recreated_and_what_follows_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = Store(path)  # the scheduler's, open for the life of the process
    store.apply(Transition("r", "a", "ok", "firing", 1.0, "before", 1.0))

    _delete(path)  # someone deletes the file while the process runs
    assert store.transitions() == []  # read: a new, empty store ...
    assert {"probe_results", "alert_state", "transitions", "deliveries", "job_runs"} <= _tables(
        path
    )  # ... with its schema
    t = store.apply(Transition("r", "b", "ok", "firing", 2.0, "after the delete", 1.0))
    store.add_probe(ProbeResult(ts=2.0, deployment="d", kind="chat", auth="key", klass="ok"))
    store.add_job_run("probe:d:chat", 2.0, True, 5.0, None)
    other = Store(path)  # another process (the web tier) reads what was written
    assert [x.reason for x in other.transitions()] == ["after the delete"] and t.id == 1
    assert len(other.probes()) == 1 and other.job_counts() == {"probe:d:chat": {"ok": 1, "failed": 0}}

    path.write_bytes(b"this is not a database" * 200)  # damaged: not a database any more
    store.add_job_run("alerts:evaluate", 3.0, True, 5.0, None)  # the write lands in a new file
    assert other.job_counts() == {"alerts:evaluate": {"ok": 1, "failed": 0}}
    aside = list(tmp_path.glob("state.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")


def test_a_served_app_keeps_working_when_its_store_is_deleted(tmp_path: Path, demo_settings: Settings) -> None:
    from hardening_server import free_port, page_callbacks, post_callback, serving

    data = tmp_path / "data"
    path = data / "state.sqlite"
    scheduler_store = Store(path)  # the scheduler's store, in a process of its own in production
    now = time.time()  # newer than the demo month's backfilled transitions, so first in the table
    scheduler_store.apply(Transition("throttling", "chat-gpt4o", "ok", "firing", now, "first reason", 9.0))
    env = {
        "AOAI_LENS_DATA_DIR": str(data),
        "AOAI_LENS_DEMO__PATH": str(demo_settings.demo_path),
        "AOAI_LENS_SCHEDULER__ENABLED": "false",
    }
    with serving([], env, tmp_path, free_port()) as srv:
        url = srv["url"]
        import requests

        s = requests.Session()
        alerts = next(d for d in page_callbacks(s, url) if d["inputs"][0]["id"] == "alert-filters")
        store_data = {"alert-filters.data": {"range": "30d"}}
        first = post_callback(s, url, alerts, store_data)
        assert first.status_code == 200 and "first reason" in first.text

        _delete(path)
        emptied = post_callback(s, url, alerts, store_data)
        assert emptied.status_code == 200 and "panel-failed" not in emptied.text, emptied.text[:500]
        assert "first reason" not in emptied.text
        assert "transitions" in _tables(path)  # the app recreated the store with its schema

        scheduler_store.apply(Transition("throttling", "rag-gpt41", "ok", "firing", now + 60, "second reason", 7.0))
        later = post_callback(s, url, alerts, store_data)
        assert later.status_code == 200 and "second reason" in later.text  # written after the delete: shown


# ---- a notification endpoint down --------------------------------------------------------------------
class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        Hook.received.append(json.loads(self.rfile.read(n) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_channel_down_keeps_the_transition_and_the_next_one_is_delivered(tmp_path: Path) -> None:
    base = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})
    alerts = AlertSettings(
        rules=[AlertRule(name="probe-down", kind="probe_failures", threshold=2, channels=["hook"])],
        channels=[AlertChannel(name="hook", url_env="HOOK_URL")],
    )
    settings = base.model_copy(update={"alerts": alerts})
    store = Store(settings.state_path)
    clock = FakeClock()
    env = {"HOOK_URL": f"json://127.0.0.1:{_dead_port()}/alerts"}
    evaluator = Evaluator(settings, store, None, Notifier(settings.alerts.channels, environ=env), clock=clock)

    def probe(klass: str) -> None:
        store.add_probe(ProbeResult(ts=clock(), deployment="chat", kind="chat", auth="key", klass=klass))

    probe("timeout")
    probe("timeout")
    first = evaluator.evaluate()
    assert [(t.old, t.new) for t in first.transitions] == [("ok", "firing")]
    assert [d.ok for d in first.deliveries] == [False] and first.deliveries[0].error

    Hook.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env["HOOK_URL"] = f"json://127.0.0.1:{server.server_address[1]}/alerts"
        probe("ok")
        second = evaluator.evaluate()
    finally:
        server.shutdown()
        server.server_close()
    assert [(t.old, t.new) for t in second.transitions] == [("firing", "resolved")]
    assert [d.ok for d in second.deliveries] == [True] and len(Hook.received) == 1
    assert "probe-down" in json.dumps(Hook.received[0])
    # both transitions are kept, each with its delivery attempt (the failed one with its error)
    ts = store.transitions()
    assert [(t.old, t.new) for t in ts] == [("ok", "firing"), ("firing", "resolved")]
    ds = store.deliveries()
    assert [(d["transition_id"], d["ok"]) for d in ds] == [(ts[0].id, 0), (ts[1].id, 1)]
    assert ds[0]["error"] and store.states() == {("probe-down", "chat/chat"): "resolved"}


# ---- kill -9 in the middle of writes -----------------------------------------------------------------
WRITER = """
import sys
from alerts.store import ProbeResult, Store, Transition
store = Store(__import__("pathlib").Path(sys.argv[1]))
i = 0
while True:
    i += 1
    pid = store.add_probe(ProbeResult(ts=float(i), deployment="d", kind="chat", auth="key", klass="ok",
                                      error="x" * (i % 500)))
    print("probe", pid, flush=True)
    t = store.apply(Transition("r", f"s{i % 7}", "ok", "firing" if i % 2 else "resolved", float(i), "y" * 50, 1.0))
    print("transition", t.id, flush=True)
"""


def test_committed_writes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    stop_after = random.Random().randint(40, 400)  # a different point in the write loop each run
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    committed: dict[str, set[int]] = {"probe": set(), "transition": set()}
    killer = threading.Timer(30, proc.kill)  # bound the test whatever happens
    killer.start()
    try:
        assert proc.stdout is not None
        for n, line in enumerate(proc.stdout, start=1):
            kind, rid = line.split()
            committed[kind].add(int(rid))
            if n >= stop_after:
                proc.kill()  # SIGKILL, while the loop is writing the next rows
                break
    finally:
        killer.cancel()
        proc.wait(10)
    assert proc.returncode == -9
    assert sum(len(v) for v in committed.values()) >= stop_after
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    store = Store(path)  # opens (and recovers the WAL) cleanly
    assert committed["probe"] <= set(store.probes()["id"].astype(int))
    assert committed["transition"] <= {t.id for t in store.transitions()}
    # the store is usable after the crash
    new = store.add_probe(ProbeResult(ts=0.0, deployment="d", kind="chat", auth="key", klass="ok"))
    assert new > max(committed["probe"] or {0})
