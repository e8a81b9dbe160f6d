"""Probe classification and measurements, against the simulator (and a mock transport for timeouts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from fakes.doubles import FakeClock, in_memory_transport

from alerts.probes import make_client, run_probe
from alerts.store import Store
from queries.config import ProbeSettings, ProbeTarget
from queries.demo import simulator as sim

KEY = "probe-test-key"


@pytest.fixture
def running(clock: FakeClock) -> Iterator[sim.RunningSimulator]:
    run = sim.start(sim.Simulator(api_key=KEY, tpm_override={"chat-gpt4o-mini": 60}, clock=clock, sleep=clock.sleep))
    yield run
    run.shutdown()


def client(run: sim.RunningSimulator, **kw: object):  # type: ignore[no-untyped-def]
    settings = ProbeSettings(**{"timeout_s": 5, **kw})  # type: ignore[arg-type]
    return make_client(settings, run.url, api_key=KEY, token_provider=sim.local_token)


def test_streamed_chat_probe_measures_ttft_and_tokens_per_second(clock: FakeClock) -> None:
    core = sim.Simulator(api_key=KEY, clock=clock, sleep=clock.sleep)
    c = make_client(
        ProbeSettings(),
        "https://sim.openai.azure.com",
        api_key=KEY,
        http_client=httpx2.Client(transport=in_memory_transport(core)),
    )
    r = run_probe(c, ProbeTarget(deployment="chat-gpt4o", kind="chat"), clock=clock)
    d = sim.world.deployment("chat-gpt4o")
    assert r.klass == "ok" and r.status_code == 200
    # simulated latency on the fake clock: base before the first token, then ms_per_token per token
    assert r.ttft_ms == pytest.approx(d.base_ms + d.ms_per_token, abs=0.01)
    assert r.latency_ms == pytest.approx(d.base_ms + 16 * d.ms_per_token, abs=0.01)
    assert r.completion_tokens == 16 and r.prompt_tokens and r.total_tokens == r.prompt_tokens + 16
    assert r.tokens_per_s == pytest.approx(16 / (15 * d.ms_per_token / 1000), rel=1e-3)
    assert r.request_id and r.ratelimit and "x-ratelimit-remaining-tokens" in r.ratelimit


@pytest.mark.parametrize(
    "kw", [{"auth": "key"}, {"auth": "entra"}, {"auth": "key", "use_v1": True}, {"auth": "entra", "use_v1": True}]
)
def test_every_auth_and_url_shape(running: sim.RunningSimulator, clock: FakeClock, kw: dict) -> None:
    r = run_probe(client(running, **kw), ProbeTarget(deployment="embed-small", kind="embedding"), clock=clock)
    assert r.klass == "ok" and r.prompt_tokens and r.ttft_ms is None


def test_classes(running: sim.RunningSimulator, clock: FakeClock) -> None:
    c = client(running)
    mini = ProbeTarget(deployment="chat-gpt4o-mini", kind="chat", stream=False)
    got = [run_probe(c, mini, clock=clock).klass for _ in range(4)]
    assert got[0] == "ok" and got[-1] == "rate_limited"
    limited = run_probe(c, mini, clock=clock)
    assert limited.status_code == 429 and limited.ratelimit and "retry-after-ms" in limited.ratelimit
    assert limited.request_id and limited.error and "429" in limited.error
    chat = ProbeTarget(deployment="chat-gpt4o", kind="chat")
    assert run_probe(c, chat, clock=clock, prompt=sim.CONTENT_FILTER_MARKER).klass == "content_filter"
    assert run_probe(c, chat, clock=clock, prompt=sim.SERVER_ERROR_MARKER).klass == "http_5xx"
    bad = make_client(ProbeSettings(), running.url, api_key="wrong")
    assert run_probe(bad, chat, clock=clock).klass == "auth"
    missing = ProbeTarget(deployment="no-such", kind="chat")
    assert run_probe(c, missing, clock=clock).klass == "error"


def test_timeout_is_its_own_class(clock: FakeClock) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("slow", request=request)

    c = make_client(
        ProbeSettings(),
        "https://example.openai.azure.com",
        api_key=KEY,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    r = run_probe(c, ProbeTarget(deployment="chat-gpt4o"), clock=clock)
    assert r.klass == "timeout" and r.status_code is None


def test_results_are_stored(tmp_path: Path, running: sim.RunningSimulator, clock: FakeClock) -> None:
    store = Store(tmp_path / "state.sqlite")
    for _ in range(2):
        store.add_probe(run_probe(client(running), ProbeTarget(deployment="chat-gpt4o"), clock=clock))
        clock.advance(60)
    frame = store.probes()
    assert list(frame["class"]) == ["ok", "ok"] and frame["ttft_ms"].notna().all()
    assert frame["cost_usd"].isna().all()  # no price function yet: unknown, never $0
    last = store.last_probes(1)
    assert len(last) == 1 and last["ts"].iloc[0] == frame["ts"].max()


def test_probe_cost_from_the_price_book(tmp_path: Path, demo_workspace: Path, clock: FakeClock) -> None:
    from alerts.runtime import Runtime
    from queries.config import Settings

    settings = Settings(
        data_dir=tmp_path,
        demo={"path": str(demo_workspace)},
        probes={"auth": "entra", "targets": [{"deployment": "chat-gpt4o"}, {"deployment": "support-gpt4o-ptu"}]},
    )
    runtime = Runtime(settings, clock=clock, simulator_options={"clock": clock, "sleep": clock.sleep})
    try:
        payg, ptu = runtime.probe_all()
    finally:
        runtime.close()
    assert payg.klass == "ok" and payg.cost_usd is not None
    # gpt-4o Global list prices: $2.50 in, $10 out per 1M tokens
    assert payg.cost_usd == pytest.approx((payg.prompt_tokens * 2.5 + payg.completion_tokens * 10) / 1e6, rel=0.05)
    assert ptu.klass == "ok" and ptu.cost_usd is None  # provisioned: no per-token price


def test_a_reasoning_model_refuses_max_tokens_and_the_probe_sends_max_completion_tokens(
    running: sim.RunningSimulator, clock: FakeClock
) -> None:
    """o4-mini (agent-o4-mini) answers `max_tokens` with Azure's 400 unsupported_parameter; a probe told
    the deployment's model sends `max_completion_tokens` and succeeds."""
    import openai

    c = client(running)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="agent-o4-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    body = e.value.body if isinstance(e.value.body, dict) else {}
    err = body.get("error", body)
    assert err["code"] == "unsupported_parameter" and err["param"] == "max_tokens"
    assert "max_completion_tokens" in err["message"]
    target = ProbeTarget(deployment="agent-o4-mini", kind="chat", stream=False)
    refused = run_probe(c, target, clock=clock)  # without the model: max_tokens, refused like a user's call
    assert refused.klass != "ok" and refused.status_code == 400
    ok = run_probe(c, target, clock=clock, model="o4-mini")
    assert ok.klass == "ok" and ok.status_code == 200
    streamed = run_probe(c, ProbeTarget(deployment="agent-o4-mini", kind="chat"), clock=clock, model="o4-mini")
    assert streamed.klass == "ok"
    # a non-reasoning model still gets max_tokens and answers
    assert run_probe(c, ProbeTarget(deployment="chat-gpt4o", kind="chat"), clock=clock, model="gpt-4o").klass == "ok"


@pytest.mark.parametrize(
    ("model", "reasoning"),
    [
        ("o1", True),
        ("o3-mini", True),
        ("o4-mini", True),
        ("gpt-5", True),
        ("gpt-5-mini", True),
        ("gpt-4o", False),
        ("gpt-4o-mini", False),
        ("gpt-4.1", False),
        ("text-embedding-3-small", False),
    ],
)
def test_reasoning_models(model: str, reasoning: bool) -> None:
    from queries.models import is_reasoning_model, token_limit_parameter

    assert is_reasoning_model(model) is reasoning
    assert token_limit_parameter(model) == ("max_completion_tokens" if reasoning else "max_tokens")
