"""A/B probes: one probe definition against two simulator instances of different latency, through the
real openai SDK (AzureOpenAI on one side, OpenAI with a base URL on the other), compared side by side."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.doubles import FakeClock

from alerts import ab
from alerts import runtime as rt
from alerts import scheduler as sch
from queries.config import ABProbe, Settings, load_settings
from queries.demo import simulator as sim
from queries.demo import world
from queries.errors import ConfigError

FAST, SLOW = 1.0, 3.0
MINI = world.deployment("chat-gpt4o-mini")


@pytest.fixture
def two_simulators(clock: FakeClock) -> Iterator[tuple[sim.RunningSimulator, sim.RunningSimulator]]:
    fast = sim.start(sim.Simulator(api_key="key-a", latency_scale=FAST, clock=clock, sleep=clock.sleep))
    slow = sim.start(sim.Simulator(api_key="key-b", latency_scale=SLOW, clock=clock, sleep=clock.sleep))
    yield fast, slow
    fast.shutdown()
    slow.shutdown()


def ab_settings(demo_settings: Settings, tmp_path: Path, a: dict, b: dict, **kw: object) -> Settings:
    probe = ABProbe(name="mini", kind="chat", a=a, b=b, **kw)  # type: ignore[arg-type]
    probes = demo_settings.probes.model_copy(update={"ab": [probe]})
    return demo_settings.model_copy(update={"data_dir": tmp_path, "probes": probes})


def test_ab_probe_against_two_simulator_instances(
    demo_settings: Settings,
    tmp_path: Path,
    clock: FakeClock,
    two_simulators: tuple[sim.RunningSimulator, sim.RunningSimulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, slow = two_simulators
    monkeypatch.setenv("AB_KEY_A", "key-a")  # A's key from the environment, B's from a file (_FILE)
    (tmp_path / "b.key").write_text("key-b\n")
    monkeypatch.setenv("AB_KEY_B_FILE", str(tmp_path / "b.key"))
    settings = ab_settings(
        demo_settings,
        tmp_path,
        a={
            "label": "eastus",
            "api": "azure",
            "endpoint": fast.url,
            "deployment": "chat-gpt4o-mini",
            "key_env": "AB_KEY_A",
        },
        b={
            "label": "v1",
            "api": "openai",
            "base_url": f"{slow.url}/openai/v1",
            "model": "chat-gpt4o-mini",
            "key_env": "AB_KEY_B",
        },
    )
    runtime = rt.Runtime(settings, clock=clock)
    try:
        for _ in range(6):
            got = runtime.probe_ab("mini")
            assert [r.arm for r in got] == ["eastus", "v1"]
            assert all(r.klass == "ok" and r.ab == "mini" for r in got), [r.error for r in got]
            clock.advance(300)
    finally:
        runtime.close()
    assert fast.simulator.calls == 6 and slow.simulator.calls == 6  # each side went to its own instance
    frame = runtime.store.ab_probes()
    assert len(frame) == 12 and set(frame["arm"]) == {"eastus", "v1"}
    assert runtime.store.probes().empty and runtime.store.last_probes(3).empty  # kept apart from the regular probes

    s = ab.summary(frame).set_index("arm")
    # a streamed chat probe takes base + 16 tokens x ms per token, scaled by each instance's latency
    whole = MINI.base_ms + 16 * MINI.ms_per_token
    assert s.loc["eastus", "latency_p50_ms"] == pytest.approx(whole * FAST, abs=0.5)
    assert s.loc["v1", "latency_p50_ms"] == pytest.approx(whole * SLOW, abs=0.5)
    assert s.loc["v1", "ttft_p50_ms"] > s.loc["eastus", "ttft_p50_ms"]
    assert (s["errors"] == 0).all() and (s["error_pct"] == 0).all() and (s["probes"] == 6).all()
    # the same tokens on the same model: the same price per probe, from the price book
    assert s.loc["eastus", "cost_per_probe_usd"] > 0
    assert s.loc["v1", "cost_per_probe_usd"] == pytest.approx(s.loc["eastus", "cost_per_probe_usd"])
    line = ab.verdict(ab.summary(frame))["mini"]
    assert line.startswith("mini: eastus is faster") and "3.00x" in line


def test_a_side_without_its_key_fails_as_auth_and_the_other_still_runs(
    demo_settings: Settings,
    tmp_path: Path,
    clock: FakeClock,
    two_simulators: tuple[sim.RunningSimulator, sim.RunningSimulator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast, slow = two_simulators
    monkeypatch.setenv("AB_KEY_A", "key-a")
    monkeypatch.delenv("AB_KEY_B", raising=False)
    settings = ab_settings(
        demo_settings,
        tmp_path,
        a={"api": "azure", "endpoint": fast.url, "deployment": "chat-gpt4o-mini", "key_env": "AB_KEY_A"},
        b={"api": "openai", "base_url": f"{slow.url}/openai/v1", "model": "chat-gpt4o-mini", "key_env": "AB_KEY_B"},
        stream=False,
    )
    runtime = rt.Runtime(settings, clock=clock)
    try:
        a, b = runtime.probe_ab("mini")
    finally:
        runtime.close()
    assert (a.arm, a.klass) == ("A", "ok") and a.ttft_ms is None
    assert (b.arm, b.klass) == ("B", "auth") and b.error and "AB_KEY_B" in b.error and "key-" not in b.error
    s = ab.summary(runtime.store.ab_probes()).set_index("arm")
    assert s.loc["B", "error_pct"] == 100.0 and s.loc["A", "error_pct"] == 0.0


def test_the_demo_runs_two_simulator_targets_of_different_latency(
    demo_settings: Settings, tmp_path: Path, clock: FakeClock
) -> None:
    (probe,) = demo_settings.probes.ab  # the bundled demo configuration's A/B probe
    assert probe.a.api == "azure" and probe.b.api == "openai" and not (probe.a.remote or probe.b.remote)
    settings = demo_settings.model_copy(update={"data_dir": tmp_path})
    runtime = rt.Runtime(settings, clock=clock, simulator_options={"clock": clock, "sleep": clock.sleep})
    try:
        for _ in range(3):
            runtime.probe_ab(probe.name)
            clock.advance(probe.interval_s)
        assert len(runtime.ab_simulators) == 2
    finally:
        runtime.close()
    s = ab.summary(runtime.store.ab_probes()).set_index("arm")
    ratio = s.loc[probe.b.label, "latency_p50_ms"] / s.loc[probe.a.label, "latency_p50_ms"]
    assert ratio == pytest.approx(probe.b.demo_latency_scale / probe.a.demo_latency_scale, rel=1e-3)
    ids = [spec["id"] for spec in sch.job_specs(settings, ("probes",))]
    assert f"ab:{probe.name}" in ids


@pytest.mark.parametrize(
    ("ab_toml", "problem"),
    [
        ('a = {api = "azure"}\nb = {api = "azure", deployment = "x"}', "needs deployment"),
        (
            'a = {api = "azure", deployment = "x", endpoint = "https://e"}\nb = {api = "azure", deployment = "x"}',
            "key_env",
        ),
        (
            'a = {api = "openai", deployment = "x", endpoint = "https://e", key_env = "K"}\nb = {deployment = "y"}',
            "base_url",
        ),
        ('a = {deployment = "x", label = "same"}\nb = {deployment = "y", label = "same"}', "different labels"),
    ],
)
def test_bad_ab_settings_are_refused_with_their_line(tmp_path: Path, ab_toml: str, problem: str) -> None:
    path = tmp_path / "aoai-lens.toml"
    path.write_text(f'[[probes.ab]]\nname = "x"\n{ab_toml}\n')
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    assert any(problem in p and "probes.ab" in p for p in e.value.problems), e.value.problems
