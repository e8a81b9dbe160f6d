"""A local Azure OpenAI data plane: the embedded target for probes, demos and tests.

It answers chat completions (streamed or not) and embeddings under both URL shapes Azure serves
(`/openai/deployments/{d}/...?api-version=...` and `/openai/v1/...` with the deployment as `model`),
enforces each demo deployment's TPM and RPM over a sliding minute, refuses prompts carrying
`CONTENT_FILTER_MARKER` the way Azure's content filter does, and records every call as the diagnostic
records a diagnostic setting would archive to a storage account (JSON lines, one record per line). A
scheduled ingestion job (queries/ingest.py) later loads those records into the demo workspace, so the
simulator never writes the DuckDB file another process may be reading.

Time is injected (`clock`, `sleep`) so tests run on a fake clock without waiting.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from queries.archive_layout import blob_name, container_for
from queries.demo import world
from queries.models import is_reasoning_model
from queries.schemas import DOTNET_EPOCH_TICKS

log = logging.getLogger("aoai_lens.simulator")

CONTENT_FILTER_MARKER = "[[simulate:content_filter]]"
SERVER_ERROR_MARKER = "[[simulate:server_error]]"
REPLY = "pong. This is a synthetic answer from the aoai-lens local Azure OpenAI simulator, one word per token."
REGION_NAMES = {"eastus": "East US", "swedencentral": "Sweden Central"}

UNAUTHORIZED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
NOT_FOUND = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again."
)
FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify "
    "your prompt and retry. To learn more about our content filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766"
)


def _safe_filters(flag_violence: bool = False) -> dict[str, Any]:
    sev = {"filtered": False, "severity": "safe"}
    return {
        "hate": dict(sev),
        "self_harm": dict(sev),
        "sexual": dict(sev),
        "violence": {"filtered": True, "severity": "high"} if flag_violence else dict(sev),
        "jailbreak": {"filtered": False, "detected": False},
        "profanity": {"filtered": False, "detected": False},
        "custom_blocklists": [],
    }


@dataclass
class Limits:
    tpm: int
    rpm: int


@dataclass
class _Window:
    """Sliding one-minute window of (time, tokens) for one deployment."""

    calls: deque[tuple[float, int]] = field(default_factory=deque)

    def trim(self, now: float) -> None:
        while self.calls and self.calls[0][0] <= now - 60.0:
            self.calls.popleft()

    def tokens(self) -> int:
        return sum(t for _, t in self.calls)


@dataclass
class CallRecord:
    """What the simulator knows about one call, enough to write its diagnostic records."""

    start: float
    duration_ms: int
    deployment: str
    operation: str
    api_version: str
    status: int
    stream: bool
    object_id: str
    caller_ip: str
    request_length: int
    response_length: int
    correlation_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0  # visible output tokens
    reasoning_tokens: int = 0  # hidden reasoning tokens (reasoning models), billed as output
    cached_tokens: int = 0
    error_code: str = ""  # a refused call's error code (`content_filter`, `unsupported_parameter`, ...)


class SimulatorError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def estimate_prompt_tokens(text: str) -> int:
    """A tokenizer-free estimate: about four characters per token, as Azure's rate limiter estimates."""
    return max(1, math.ceil(len(text) / 4))


def iso7(ts: float) -> str:
    """A record `time` the way diagnostic settings write it: seven fractional digits and a Z."""
    dt = datetime.fromtimestamp(ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0Z"


def dotnet_ticks(ts: float) -> int:
    return DOTNET_EPOCH_TICKS + round(ts * 1000) * 10_000


def mask_ip(ip: str) -> str:
    parts = ip.split(".")
    if len(parts) == 4:
        return ".".join([*parts[:3], "***"])
    return ip


def jwt_object_id(token: str) -> str | None:
    """The `oid` claim of a JWT, read without verifying it (the simulator is not an identity provider)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        pad = "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + pad))
    except (ValueError, json.JSONDecodeError):
        return None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    return oid if isinstance(oid, str) else None


def local_token(object_id: str = world.PROBE_OBJECT_ID) -> str:
    """An unsigned JWT carrying `oid`: what the simulator accepts as an Entra ID bearer token."""

    def part(d: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

    claims = {"aud": "https://cognitiveservices.azure.com", "oid": object_id, "iss": "aoai-lens-simulator"}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


# hidden reasoning tokens a reasoning model spends on a call (inside max_completion_tokens on Azure;
# a fixed count here, so tests can compute the bill by hand)
REASONING_TOKENS = 24


def unsupported_max_tokens() -> SimulatorError:
    """What Azure OpenAI answers a reasoning model called with `max_tokens`."""
    return SimulatorError(
        400,
        {
            "error": {
                "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                "type": "invalid_request_error",
                "param": "max_tokens",
                "code": "unsupported_parameter",
            }
        },
    )


class Simulator:
    """The request-handling core, independent of HTTP so it can be driven directly."""

    def __init__(
        self,
        *,
        archive_path: Path | None = None,
        archive_dir: Path | None = None,
        api_key: str | None = None,
        tpm_override: int | dict[str, int] | None = None,
        rpm_override: int | dict[str, int] | None = None,
        latency_scale: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.archive_path = archive_path
        self.archive_dir = archive_dir
        self.api_key = api_key
        self.latency_scale = latency_scale
        self.clock = clock
        self.sleep = sleep
        self.deployments = {d.name: d for d in world.DEPLOYMENTS}
        self.limits: dict[str, Limits] = {}
        for d in world.DEPLOYMENTS:
            tpm = _pick(tpm_override, d.name, d.tpm_limit)
            rpm = _pick(rpm_override, d.name, d.rpm_limit)
            self.limits[d.name] = Limits(tpm=tpm, rpm=rpm)
        self._windows: dict[str, _Window] = {name: _Window() for name in self.deployments}
        self._lock = threading.Lock()
        self._archive_lock = threading.Lock()
        self.calls = 0
        if archive_path is not None:
            archive_path.parent.mkdir(parents=True, exist_ok=True)

    # ---- auth --------------------------------------------------------------------------------
    def authenticate(self, headers: dict[str, str]) -> str:
        """The caller's object id ("" for key auth); raise 401 in Azure's shape otherwise."""
        key = headers.get("api-key")
        auth = headers.get("authorization", "")
        if key:
            if self.api_key is None or key == self.api_key:
                return ""
        elif auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            oid = jwt_object_id(token)
            if oid is not None:
                return oid
            if token and (self.api_key is None or token == self.api_key):
                return ""  # the v1 API takes a key as a bearer token
        raise SimulatorError(401, {"error": {"code": "401", "message": UNAUTHORIZED}})

    # ---- rate limits -------------------------------------------------------------------------
    def admit(self, deployment: str, estimate: int, operation: str, api_version: str) -> dict[str, str]:
        """Count the call against the deployment's minute or raise a 429 with Azure's headers."""
        lim = self.limits[deployment]
        now = self.clock()
        with self._lock:
            w = self._windows[deployment]
            w.trim(now)
            used = w.tokens()
            count = len(w.calls)
            over_requests = count + 1 > lim.rpm
            over_tokens = used + estimate > lim.tpm
            if over_requests or over_tokens:
                wait = self._wait_s(w, now, estimate, lim, over_requests)
                headers = {
                    "retry-after-ms": str(max(1, round(wait * 1000))),
                    "retry-after": str(max(1, math.ceil(wait))),
                    "x-ratelimit-limit-requests": str(lim.rpm),
                    "x-ratelimit-limit-tokens": str(lim.tpm),
                    "x-ratelimit-remaining-requests": str(max(0, lim.rpm - count)),
                    "x-ratelimit-remaining-tokens": str(max(0, lim.tpm - used)),
                }
                what = "call rate limit" if over_requests else "token rate limit"
                version = f"API version {api_version}" if api_version != "v1" else "API v1"
                message = (
                    f"Requests to the {operation} Operation under Azure OpenAI {version} have exceeded {what} of "
                    f"your current OpenAI S0 pricing tier. Please retry after {headers['retry-after']} seconds. "
                    "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the "
                    "default rate limit."
                )
                raise SimulatorError(429, {"error": {"code": "429", "message": message}}, headers)
            w.calls.append((now, estimate))
            return {
                "x-ratelimit-limit-requests": str(lim.rpm),
                "x-ratelimit-limit-tokens": str(lim.tpm),
                "x-ratelimit-remaining-requests": str(lim.rpm - count - 1),
                "x-ratelimit-remaining-tokens": str(lim.tpm - used - estimate),
            }

    @staticmethod
    def _wait_s(w: _Window, now: float, estimate: int, lim: Limits, over_requests: bool) -> float:
        """Seconds until the oldest calls leave the window and this one would fit."""
        if over_requests:
            return max(0.001, w.calls[0][0] + 60.0 - now) if w.calls else 1.0
        need = w.tokens() + estimate - lim.tpm
        freed = 0
        for t, tok in w.calls:
            freed += tok
            if freed >= need:
                return max(0.001, t + 60.0 - now)
        return 60.0  # larger than the whole limit: it never fits

    # ---- archive -----------------------------------------------------------------------------
    def record(self, call: CallRecord) -> None:
        """Append the call's diagnostic records (RequestResponse, and usage for 200s) to the archive: one
        JSON-lines file (`archive_path`), or the storage layout diagnostic settings write (`archive_dir`:
        a container directory per category, one PT1H.json per resource and hour)."""
        if self.archive_path is None and self.archive_dir is None:
            return
        d = self.deployments[call.deployment]
        res = world.resource(d.resource)
        end = call.start + call.duration_ms / 1000.0
        common = {
            "time": iso7(end),
            "resourceId": res.resource_id,
            "operationName": call.operation,
            "correlationId": call.correlation_id,
            "location": res.location,
            "Tenant": res.location,
        }
        records = [
            {
                **common,
                "category": "RequestResponse",
                "durationMs": call.duration_ms,
                "resultSignature": str(call.status),
                **({"resultDescription": call.error_code} if call.error_code else {}),
                "callerIpAddress": mask_ip(call.caller_ip),
                "event": "ShoeboxCallResult",
                "properties": {
                    "apiName": f"Azure OpenAI API version {call.api_version}",
                    "requestTime": dotnet_ticks(call.start),
                    "requestLength": call.request_length,
                    "responseTime": dotnet_ticks(end),
                    "responseLength": call.response_length,
                    "objectId": call.object_id,
                    "streamType": "Streaming" if call.stream else "Non-Streaming",
                    "modelDeploymentName": d.name,
                    "modelName": d.model,
                    "modelVersion": d.version,
                },
            }
        ]
        if call.status == 200:
            records.append(
                {
                    **common,
                    "category": "AzureOpenAIRequestUsage",
                    "durationMs": 0,
                    "resultSignature": "",
                    "callerIpAddress": "",
                    "event": "ShoeboxAzureOpenAIRequestUsage",
                    "properties": {
                        "modelDeploymentName": d.name,
                        "modelName": d.model,
                        "modelVersion": d.version,
                        "promptTokens": [call.prompt_tokens],
                        "cachedTokens": [call.cached_tokens],
                        "generatedTokens": [call.completion_tokens + call.reasoning_tokens],
                        **({"reasoningTokens": [call.reasoning_tokens]} if call.reasoning_tokens else {}),
                    },
                }
            )
        if self.archive_dir is not None:
            hour = datetime.fromtimestamp(end, UTC)
            with self._archive_lock:
                for r in records:
                    path = self.archive_dir / container_for(str(r["category"])) / blob_name(res.resource_id, hour)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(r, separators=(",", ":")) + "\n")
            return
        assert self.archive_path is not None
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        with self._archive_lock, self.archive_path.open("a", encoding="utf-8") as f:
            f.write(text)

    # ---- requests ----------------------------------------------------------------------------
    def route(self, method: str, raw_path: str) -> tuple[str | None, str, str]:
        """(deployment or None for v1, operation kind, api-version) of a request path."""
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        m = re.fullmatch(r"/openai/deployments/([^/]+)/(chat/completions|embeddings)", parts.path)
        if method == "POST" and m:
            versions = query.get("api-version")
            if not versions:
                raise SimulatorError(404, {"error": {"code": "404", "message": "Resource not found"}})
            return m.group(1), m.group(2), versions[0]
        m = re.fullmatch(r"/openai/v1/(chat/completions|embeddings)", parts.path)
        if method == "POST" and m:
            return None, m.group(1), "v1"
        raise SimulatorError(404, {"error": {"code": "404", "message": "Resource not found"}})

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, caller_ip: str
    ) -> tuple[int, dict[str, str], bytes | Iterator[bytes]]:
        """Answer one request: (status, headers, body bytes or an iterator of SSE chunks)."""
        start = self.clock()
        correlation = str(uuid.uuid4())
        base_headers = {"apim-request-id": correlation, "x-request-id": correlation}
        try:
            deployment, op, api_version = self.route(method, path)
            object_id = self.authenticate(headers)
            try:
                payload = json.loads(body or b"{}")
            except json.JSONDecodeError:
                raise SimulatorError(
                    400, {"error": {"code": "BadRequest", "message": "The request body is not valid JSON."}}
                ) from None
            if not isinstance(payload, dict):
                raise SimulatorError(400, {"error": {"code": "BadRequest", "message": "Expected a JSON object."}})
            if deployment is None:
                deployment = str(payload.get("model") or "")
            if deployment not in self.deployments:
                raise SimulatorError(404, {"error": {"code": "DeploymentNotFound", "message": NOT_FOUND}})
        except SimulatorError as e:
            return e.status, {**base_headers, **e.headers}, json.dumps(e.body).encode()
        d = self.deployments[deployment]
        region = REGION_NAMES.get(world.resource(d.resource).location, world.resource(d.resource).location)
        base_headers["x-ms-region"] = region
        chat = op == "chat/completions"
        operation = "ChatCompletions_Create" if chat else "embeddings_create"
        stream = bool(payload.get("stream")) and chat
        call = CallRecord(
            start=start,
            duration_ms=0,
            deployment=deployment,
            operation=operation,
            api_version=api_version,
            status=200,
            stream=stream,
            object_id=object_id,
            caller_ip=caller_ip,
            request_length=len(body),
            response_length=0,
            correlation_id=correlation,
        )
        if chat != (d.kind == "chat"):
            err = SimulatorError(
                400,
                {
                    "error": {
                        "code": "OperationNotSupported",
                        "message": (
                            f"The {operation} operation does not work with the specified model, {d.model}. Please choose "
                            "different model and try again."
                        ),
                    }
                },
            )
            return self._fail(call, err, base_headers)
        if chat and is_reasoning_model(d.model) and payload.get("max_tokens") is not None:
            return self._fail(call, unsupported_max_tokens(), base_headers)
        text = _prompt_text(payload, chat)
        prompt_tokens = estimate_prompt_tokens(text) + (3 if chat else 0)
        max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens") or 16
        completion_tokens = min(int(max_tokens), len(REPLY.split())) if chat else 0
        try:
            rl = self.admit(deployment, prompt_tokens + (int(max_tokens) if chat else 0), operation, api_version)
            if chat and CONTENT_FILTER_MARKER in text:
                raise SimulatorError(
                    400,
                    {
                        "error": {
                            "message": FILTERED,
                            "type": None,
                            "param": "prompt",
                            "code": "content_filter",
                            "status": 400,
                            "innererror": {
                                "code": "ResponsibleAIPolicyViolation",
                                "content_filter_result": _safe_filters(flag_violence=True),
                            },
                        }
                    },
                )
            if SERVER_ERROR_MARKER in text:
                raise SimulatorError(
                    500,
                    {
                        "error": {
                            "code": "InternalServerError",
                            "message": ("The server had an error while processing your request. Sorry about that!"),
                        }
                    },
                )
        except SimulatorError as e:
            return self._fail(call, e, base_headers)
        call.prompt_tokens = prompt_tokens
        call.completion_tokens = completion_tokens
        call.reasoning_tokens = REASONING_TOKENS if chat and is_reasoning_model(d.model) else 0
        headers = {**base_headers, **rl}
        model = f"{d.model}-{d.version}" if chat else d.model
        if not chat:
            return self._embeddings(call, payload, model, headers)
        if stream:
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return 200, {**headers, "content-type": "text/event-stream"}, self._stream(call, model, include_usage)
        self.sleep(self._latency_s(d, completion_tokens))
        words = REPLY.split()[:completion_tokens]
        out = {
            "choices": [
                {
                    "content_filter_results": _safe_filters(),
                    "finish_reason": "length" if completion_tokens < len(REPLY.split()) else "stop",
                    "index": 0,
                    "logprobs": None,
                    "message": {"content": " ".join(words), "refusal": None, "role": "assistant"},
                }
            ],
            "created": int(self.clock()),
            "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
            "model": model,
            "object": "chat.completion",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _safe_filters()}],
            "system_fingerprint": "fp_aoai_lens_sim",
            "usage": _usage(prompt_tokens, completion_tokens, call.reasoning_tokens),
        }
        return self._finish(call, 200, {**headers, "content-type": "application/json"}, json.dumps(out).encode())

    def _latency_s(self, d: world.Deployment, tokens: int) -> float:
        return (d.base_ms + d.ms_per_token * tokens) / 1000.0 * self.latency_scale

    def _fail(self, call: CallRecord, e: SimulatorError, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(e.body).encode()
        call.status = e.status
        error = e.body.get("error") if isinstance(e.body, dict) else None
        call.error_code = str(error.get("code") or "") if isinstance(error, dict) else ""
        call.stream = False if e.status != 200 else call.stream
        return self._finish(call, e.status, {**headers, **e.headers, "content-type": "application/json"}, body)

    def _finish(
        self, call: CallRecord, status: int, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        call.duration_ms = max(1, round((self.clock() - call.start) * 1000))
        call.response_length = len(body)
        self.calls += 1
        self.record(call)
        return status, headers, body

    def _embeddings(
        self, call: CallRecord, payload: dict[str, Any], model: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        d = self.deployments[call.deployment]
        self.sleep(self._latency_s(d, call.prompt_tokens))
        inputs = payload.get("input")
        items = inputs if isinstance(inputs, list) and inputs and not isinstance(inputs[0], int) else [inputs]
        dims = int(payload.get("dimensions") or (3072 if d.model.endswith("large") else 1536))
        data = []
        for i, _ in enumerate(items):
            vec = [((j * 7 + i * 13) % 97) / 97.0 - 0.5 for j in range(dims)]
            if payload.get("encoding_format") == "base64":
                emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        out = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": call.prompt_tokens, "total_tokens": call.prompt_tokens},
        }
        return self._finish(call, 200, {**headers, "content-type": "application/json"}, json.dumps(out).encode())

    def _stream(self, call: CallRecord, model: str, include_usage: bool) -> Iterator[bytes]:
        d = self.deployments[call.deployment]
        cid = f"chatcmpl-{uuid.uuid4().hex[:29]}"
        created = int(self.clock())
        sent = 0

        def event(obj: dict[str, Any]) -> bytes:
            nonlocal sent
            data = b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"
            sent += len(data)
            return data

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "choices": [
                    {
                        "content_filter_results": {}
                        if finish is None and not delta.get("content")
                        else _safe_filters(),
                        "delta": delta,
                        "finish_reason": finish,
                        "index": 0,
                        "logprobs": None,
                    }
                ],
                "created": created,
                "id": cid,
                "model": model,
                "object": "chat.completion.chunk",
                "system_fingerprint": "fp_aoai_lens_sim",
            }
            if include_usage:
                c["usage"] = None
            return c

        recorded = False

        def finish_call() -> None:
            nonlocal recorded
            if recorded:
                return
            recorded = True
            call.duration_ms = max(1, round((self.clock() - call.start) * 1000))
            call.response_length = sent
            self.calls += 1
            self.record(call)

        try:
            yield event(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _safe_filters()}],
                }
            )
            self.sleep(self._latency_s(d, 0))
            yield event(chunk({"content": "", "refusal": None, "role": "assistant"}, None))
            words = REPLY.split()[: call.completion_tokens]
            for i, w in enumerate(words):
                self.sleep(d.ms_per_token / 1000.0 * self.latency_scale)
                yield event(chunk({"content": w if i == 0 else " " + w}, None))
            finish = "length" if call.completion_tokens < len(REPLY.split()) else "stop"
            yield event(chunk({}, finish))
            if include_usage:
                yield event(
                    {
                        "choices": [],
                        "created": created,
                        "id": cid,
                        "model": model,
                        "object": "chat.completion.chunk",
                        "system_fingerprint": "fp_aoai_lens_sim",
                        "usage": _usage(call.prompt_tokens, call.completion_tokens, call.reasoning_tokens),
                    }
                )
            done = b"data: [DONE]\n\n"
            sent += len(done)
            finish_call()  # recorded before the client can see the end of the stream
            yield done
        finally:
            finish_call()  # a client that hung up early still made a call


def _pick(override: int | dict[str, int] | None, name: str, default: int) -> int:
    if isinstance(override, dict):
        return int(override.get(name, default))
    return int(override) if override is not None else default


def _usage(prompt: int, visible: int, reasoning: int = 0) -> dict[str, Any]:
    """Usage as Azure reports it: completion_tokens counts the reasoning tokens too (billed as output)."""
    completion = visible + reasoning
    return {
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": reasoning,
            "rejected_prediction_tokens": 0,
        },
    }


def _prompt_text(payload: dict[str, Any], chat: bool) -> str:
    if chat:
        parts = []
        for m in payload.get("messages") or []:
            content = m.get("content") if isinstance(m, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)
    inp = payload.get("input")
    if isinstance(inp, list):
        return "\n".join(str(x) for x in inp)
    return str(inp or "")


class _Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, out_headers, out = self.server.simulator.handle(
            "POST", self.path, headers, body, self.client_address[0]
        )
        self.send_response(status)
        for k, v in out_headers.items():
            self.send_header(k, v)
        if isinstance(out, bytes):
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        self.send_header("transfer-encoding", "chunked")
        self.send_header("cache-control", "no-cache")
        self.end_headers()
        try:
            for piece in out:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        status, headers, body = (
            404,
            {"content-type": "application/json"},
            json.dumps({"error": {"code": "404", "message": "Resource not found"}}).encode(),
        )
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a probe timing out, a process stopping) is not an error worth a traceback."""
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class RunningSimulator:
    """A simulator serving on a background thread; `shutdown()` stops it."""

    server: SimulatorServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def simulator(self) -> Simulator:
        return self.server.simulator

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start(simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Serve `simulator` on a background thread (port 0: a free port)."""
    server = SimulatorServer(simulator, host, port)
    thread = threading.Thread(target=server.serve_forever, name="aoai-simulator", daemon=True)
    thread.start()
    return RunningSimulator(server, thread)
