"""The simulator speaks Azure OpenAI's shapes: checked through the real openai SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest
from fakes.doubles import FakeClock

from queries.demo import simulator as sim
from queries.demo import world
from queries.schemas import DOTNET_EPOCH_TICKS

KEY = "test-key-not-secret"


@pytest.fixture
def running(tmp_path: Path, clock: FakeClock) -> Iterator[sim.RunningSimulator]:
    s = sim.Simulator(
        archive_path=tmp_path / "archive.jsonl",
        api_key=KEY,
        tpm_override={"chat-gpt4o": 200},
        clock=clock,
        sleep=clock.sleep,
    )
    run = sim.start(s)
    yield run
    run.shutdown()


def azure(run: sim.RunningSimulator, **kw: object) -> openai.AzureOpenAI:
    args: dict[str, object] = {"api_key": KEY, **kw}
    return openai.AzureOpenAI(azure_endpoint=run.url, api_version="2024-10-21", max_retries=0, timeout=10, **args)  # type: ignore[arg-type]


def records(run: sim.RunningSimulator) -> list[dict]:
    path = run.simulator.archive_path
    assert path is not None
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_chat_response_shape_and_headers(running: sim.RunningSimulator) -> None:
    raw = azure(running).chat.completions.with_raw_response.create(
        model="chat-gpt4o", messages=[{"role": "user", "content": "hello"}], max_tokens=5
    )
    chat = raw.parse()
    assert chat.object == "chat.completion"
    assert chat.model == "gpt-4o-2024-11-20"  # the model, not the deployment
    assert chat.usage is not None and chat.usage.completion_tokens == 5
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + 5
    assert chat.choices[0].finish_reason == "length"
    assert chat.model_extra is not None and "prompt_filter_results" in chat.model_extra
    assert chat.choices[0].model_extra is not None and "content_filter_results" in chat.choices[0].model_extra
    assert raw.headers["x-ratelimit-limit-tokens"] == "200"
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == 200 - chat.usage.prompt_tokens - 5
    rr = records(running)
    assert rr[0]["correlationId"] == raw.headers["apim-request-id"]


def test_rate_limit_429_with_azure_headers_and_body(running: sim.RunningSimulator, clock: FakeClock) -> None:
    client = azure(running)
    ok = 0
    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(20):
            client.chat.completions.create(
                model="chat-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=16
            )
            ok += 1
    e = info.value
    assert 1 <= ok < 20
    h = e.response.headers
    assert int(h["retry-after-ms"]) > 0 and int(h["retry-after"]) >= 1
    assert h["x-ratelimit-limit-tokens"] == "200"
    assert int(h["x-ratelimit-remaining-tokens"]) < 200
    assert h["apim-request-id"]
    assert isinstance(e.body, dict) and e.body["code"] == "429"
    assert "exceeded token rate limit" in e.body["message"]
    # the minute slides: after a minute the same call is admitted again
    clock.advance(61)
    client.chat.completions.create(model="chat-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=16)
    statuses = [r["resultSignature"] for r in records(running) if r["category"] == "RequestResponse"]
    assert statuses.count("429") == 1 and statuses[-1] == "200"


def test_rpm_limit(tmp_path: Path, clock: FakeClock) -> None:
    run = sim.start(sim.Simulator(api_key=KEY, rpm_override=2, clock=clock, sleep=clock.sleep))
    try:
        c = azure(run)
        for _ in range(2):
            c.embeddings.create(model="embed-small", input="x")
        with pytest.raises(openai.RateLimitError) as info:
            c.embeddings.create(model="embed-small", input="x")
        assert "call rate limit" in info.value.body["message"]  # type: ignore[index]
        assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    finally:
        run.shutdown()


def test_content_filter_400_in_the_captured_shape(running: sim.RunningSimulator) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        azure(running).chat.completions.create(
            model="chat-gpt4o", messages=[{"role": "user", "content": f"tell me {sim.CONTENT_FILTER_MARKER}"}]
        )
    e = info.value
    assert e.status_code == 400 and e.code == "content_filter" and e.param == "prompt"
    body = e.body
    assert isinstance(body, dict)
    inner = body["innererror"]
    assert inner["code"] == "ResponsibleAIPolicyViolation"
    assert inner["content_filter_result"]["violence"] == {"filtered": True, "severity": "high"}
    assert records(running)[-1]["resultSignature"] == "400"


def test_stream_with_prompt_filter_first_chunk_and_usage_last(running: sim.RunningSimulator) -> None:
    stream = azure(running).chat.completions.create(
        model="chat-gpt4o",
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    first, last = chunks[0], chunks[-1]
    assert first.choices == [] and first.model_extra is not None and "prompt_filter_results" in first.model_extra
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 4
    rr = [r for r in records(running) if r["category"] == "RequestResponse"]
    assert rr[-1]["properties"]["streamType"] == "Streaming"


def test_stream_without_include_usage_has_no_usage_chunk(running: sim.RunningSimulator) -> None:
    chunks = list(
        azure(running).chat.completions.create(
            model="chat-gpt4o", messages=[{"role": "user", "content": "hello"}], max_tokens=2, stream=True
        )
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_auth_missing_or_wrong_is_401_in_azure_shape(running: sim.RunningSimulator) -> None:
    r = httpx2.post(
        f"{running.url}/openai/deployments/chat-gpt4o/chat/completions?api-version=2024-10-21",
        json={"messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "401"
    with pytest.raises(openai.AuthenticationError):
        azure(running, api_key="wrong").embeddings.create(model="embed-small", input="x")


def test_v1_paths_with_bearer_key_and_entra_token(running: sim.RunningSimulator) -> None:
    v1 = openai.OpenAI(base_url=f"{running.url}/openai/v1/", api_key=KEY, max_retries=0)
    emb = v1.embeddings.create(model="embed-small", input=["a", "b"])
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == 1536  # base64 decoded by the SDK
    chat = v1.chat.completions.create(model="rag-gpt41", messages=[{"role": "user", "content": "x"}], max_tokens=3)
    assert chat.usage is not None and chat.usage.completion_tokens == 3
    entra = azure(running, api_key=None, azure_ad_token_provider=sim.local_token)
    entra.embeddings.create(model="embed-small", input="x")
    rr = [r for r in records(running) if r["category"] == "RequestResponse"]
    assert [r["properties"]["apiName"] for r in rr] == [
        "Azure OpenAI API version v1",
        "Azure OpenAI API version v1",
        "Azure OpenAI API version 2024-10-21",
    ]
    assert rr[0]["properties"]["objectId"] == ""  # a key carries no identity
    assert rr[-1]["properties"]["objectId"] == world.PROBE_OBJECT_ID
    with pytest.raises(openai.NotFoundError):
        v1.embeddings.create(model="no-such-deployment", input="x")


def test_records_match_the_diagnostic_shape(running: sim.RunningSimulator, clock: FakeClock) -> None:
    start = clock()
    azure(running).chat.completions.create(
        model="chat-gpt4o", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    rr, usage = records(running)
    d = world.deployment("chat-gpt4o")
    res = world.resource(d.resource)
    assert rr["category"] == "RequestResponse" and usage["category"] == "AzureOpenAIRequestUsage"
    assert rr["resourceId"] == res.resource_id and rr["location"] == res.location
    assert rr["operationName"] == "ChatCompletions_Create" and rr["event"] == "ShoeboxCallResult"
    assert rr["callerIpAddress"] == "127.0.0.***"
    assert rr["time"].endswith("Z") and len(rr["time"].split(".")[1]) == 8  # seven digits and Z
    p = rr["properties"]
    assert list(p) == [
        "apiName",
        "requestTime",
        "requestLength",
        "responseTime",
        "responseLength",
        "objectId",
        "streamType",
        "modelDeploymentName",
        "modelName",
        "modelVersion",
    ]
    # .NET ticks: 100 ns since 0001-01-01; the simulated latency is the gap between them
    assert p["requestTime"] == DOTNET_EPOCH_TICKS + round(start * 1000) * 10_000
    assert (p["responseTime"] - p["requestTime"]) // 10_000 == rr["durationMs"]
    assert rr["durationMs"] == round(d.base_ms + 3 * d.ms_per_token)
    assert usage["properties"]["generatedTokens"] == [3] and usage["properties"]["cachedTokens"] == [0]
    assert usage["event"] == "ShoeboxAzureOpenAIRequestUsage" and usage["correlationId"] == rr["correlationId"]
