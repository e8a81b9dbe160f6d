"""Dashboard fixtures: one Dash app per test session (Dash keeps page callbacks in process-wide
registries, so a second app would not get them), a live server for the browser test, and an alerts
store seeded through its own API so the Probes and Alerts pages have something to show."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import dash
import pytest

from queries.config import Settings


@pytest.fixture(scope="session")
def dash_settings(demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """demo_settings (same demo workspace) with a data directory of its own, so the alerts store seeded
    here and the other layers' tests never see each other's probe results or alert states."""
    return demo_settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("dashboard-data"),
            "demo": demo_settings.demo.model_copy(update={"path": demo_settings.demo_path}),
        }
    )


@pytest.fixture(scope="session")
def seeded_store(dash_settings: Settings) -> Any:
    from alerts.store import ProbeResult, Store, Transition

    store = Store(dash_settings.state_path)
    now = time.time()
    classes = ["ok"] * 10 + ["rate_limited", "ok", "timeout", "ok", "ok"]
    for i in range(48):
        ts = now - (48 - i) * 1800
        for j, (dep, kind) in enumerate(
            (("chat-gpt4o", "chat"), ("chat-gpt4o-mini", "chat"), ("embed-small", "embedding"))
        ):
            klass = classes[(i + 5 * j) % len(classes)]
            ok = klass == "ok"
            store.add_probe(
                ProbeResult(
                    ts=ts,
                    deployment=dep,
                    kind=kind,
                    auth="key",
                    klass=klass,
                    status_code=200 if ok else (429 if klass == "rate_limited" else None),
                    latency_ms=(800 + 40 * (i % 7) + 200 * j) if ok else None,
                    ttft_ms=(300 + 25 * (i % 5) + 80 * j) if ok and kind == "chat" else None,
                    prompt_tokens=12 if ok else None,
                    completion_tokens=8 if ok and kind == "chat" else None,
                    request_id=f"req-{i}-{j}",
                    error=None if ok else f"{klass} on probe",
                )
            )
    t = store.apply(Transition("throttling", "chat-gpt4o", "ok", "firing", now - 7200, "429 rate 12.5% > 5%", 12.5))
    store.add_delivery(t.id, "ops-webhook", now - 7190, True, None)
    t = store.apply(Transition("throttling", "chat-gpt4o", "firing", "ok", now - 3600, "429 rate 1.2% <= 5%", 1.2))
    store.add_delivery(t.id, "ops-webhook", now - 3590, False, "HTTP 502 from webhook")
    store.apply(Transition("probe-failures", "embed-small", "ok", "firing", now - 900, "3 failed probes in a row", 3))
    for i in range(12):  # an A/B probe whose B side is twice as slow, and history backfilled from a seeded month
        for arm, slow in (("A", 1), ("B", 2)):
            r = ProbeResult(ts=now - 600 * i, deployment="chat-gpt4o-mini", kind="chat", auth="key", klass="ok")
            r.latency_ms, r.ttft_ms, r.cost_usd, r.ab, r.arm = 400.0 * slow + i, 150.0 * slow, 2e-5, "mini", arm
            store.add_probe(r)
    incident = [Transition("server-errors", "rag-gpt41", "ok", "firing", now - 3 * 86400, "5xx 9.1% > 2%", 9.1)]
    incident.append(Transition("server-errors", "rag-gpt41", "firing", "resolved", now - 3 * 86400 + 2700, "0%", 0.0))
    store.replace_backfill("conftest", [], incident, [], 0.0, now)
    return store


@pytest.fixture(scope="session")
def dash_app(dash_settings: Settings, seeded_store: Any) -> dash.Dash:
    from dashboard.app import create_app

    return create_app(dash_settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_url(dash_app: dash.Dash) -> Iterator[str]:
    from waitress.server import create_server

    port = _free_port()
    server = create_server(dash_app.server, host="127.0.0.1", port=port, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.close()
