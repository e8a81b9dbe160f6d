"""The loop on one machine: probes push the simulator into 429s, the simulator's records are ingested,
the 429 rule (reading the ingested workspace through the query layer) fires exactly one notification to
a local webhook, survives a restart without a duplicate, and resolves with exactly one more."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.doubles import FakeClock, Receiver

from alerts.runtime import Runtime
from queries.config import Settings, load_settings
from queries.lens import Lens

CONFIG = """
[source]
kind = "demo"

[probes]
auth = "key"
timeout_s = 10

[[probes.targets]]
deployment = "chat-gpt4o"
kind = "chat"
interval_s = 60

[alerts]
evaluate_interval_s = 60

[[alerts.rules]]
name = "throttling"
kind = "rate_429"
threshold = 20
window_minutes = 5
min_count = 3
channels = ["ops"]

[[alerts.channels]]
name = "ops"
url_env = "AOAI_LENS_TEST_OPS_URL"
"""


def make_settings(tmp_path: Path, workspace: Path) -> Settings:
    path = tmp_path / "aoai-lens.toml"
    path.write_text(CONFIG)
    return load_settings(
        path, environ={"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(workspace)}
    )


def make_runtime(settings: Settings, clock: FakeClock) -> Runtime:
    # a small TPM: about four probes a minute fit
    options = {"tpm_override": {"chat-gpt4o": 150}, "clock": clock, "sleep": clock.sleep}
    return Runtime(settings, clock=clock, lens=Lens.from_settings(settings), simulator_options=options)


def test_probes_429_rule_fires_once_survives_restart_and_resolves_once(
    tmp_path: Path, workspace: Path, clock: FakeClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_LENS_TEST_OPS_URL", receiver.url)
    settings = make_settings(tmp_path, workspace)
    target = settings.probes.targets[0]

    runtime = make_runtime(settings, clock)
    try:
        # load: a burst of probes, far past the deployment's minute
        classes = []
        for _ in range(12):
            classes.append(runtime.probe(target).klass)
            clock.advance(2)
        assert "ok" in classes and classes.count("rate_limited") >= 6
        clock.advance(30)
        assert runtime.ingest().loaded > 0
        first = runtime.evaluate()
        assert [(t.old, t.new) for t in first.transitions] == [("ok", "firing")]
        assert len(receiver.posts) == 1 and "FIRING" in receiver.posts[0]["title"]
        assert "throttled (429)" in receiver.posts[0]["message"]

        # still throttling a minute later: still firing, no second notification
        for _ in range(6):
            runtime.probe(target)
        clock.advance(60)
        runtime.ingest()
        assert runtime.evaluate().transitions == []
        assert len(receiver.posts) == 1
    finally:
        runtime.close()
        runtime.lens().logs.workspace.close()  # the old process is gone, and its workspace connection with it

    # restart: a new process's runtime on the same state file
    restarted = make_runtime(settings, clock)
    try:
        clock.advance(30)
        assert restarted.evaluate().transitions == []
        assert len(receiver.posts) == 1

        # the load stops: after the window has passed, the probes get through again
        clock.advance(6 * 60)
        assert [restarted.probe(target).klass for _ in range(3)] == ["ok", "ok", "ok"]
        clock.advance(30)
        restarted.ingest()
        resolved = restarted.evaluate()
        assert [(t.old, t.new) for t in resolved.transitions] == [("firing", "resolved")]
        assert len(receiver.posts) == 2 and "RESOLVED" in receiver.posts[1]["title"]
        assert restarted.evaluate().transitions == []
        assert len(receiver.posts) == 2

        history = [(t.rule, t.subject, t.old, t.new) for t in restarted.store.transitions()]
        assert history == [
            ("throttling", "chat-gpt4o", "ok", "firing"),
            ("throttling", "chat-gpt4o", "firing", "resolved"),
        ]
        deliveries = restarted.store.deliveries()
        assert [(d["channel"], d["ok"]) for d in deliveries] == [("ops", 1), ("ops", 1)]
        assert all(receiver.url not in str(d) for d in deliveries)
    finally:
        restarted.close()
