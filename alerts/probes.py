"""Synthetic probes: one small chat or embedding call per target through the real openai SDK.

No SDK retries (a probe must see the 429 a user would see) and an explicit timeout. Each call is
classified (ok, rate_limited, content_filter, auth, timeout, http_5xx, error) and recorded with its
latency, time to first token (streamed chat), tokens per second, usage, rate-limit headers and the
`apim-request-id` that joins it to the diagnostic logs' CorrelationId.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import openai

from alerts.store import ProbeResult
from queries.config import ProbeSettings, ProbeTarget
from queries.models import token_limit_parameter

log = logging.getLogger("aoai_lens.probes")

PROBE_PROMPT = "Health check from aoai-lens. Reply with one word: pong."
ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
RATELIMIT_HEADERS = (
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "retry-after-ms",
    "retry-after",
)
Clock = Callable[[], float]


def entra_token_provider() -> Callable[[], str]:
    """Bearer tokens for the data plane from DefaultAzureCredential (managed identity, CLI, ...)."""
    from azure.identity import DefaultAzureCredential, get_bearer_token_provider

    provider: Callable[[], str] = get_bearer_token_provider(DefaultAzureCredential(), ENTRA_SCOPE)
    return provider


def make_client(
    settings: ProbeSettings,
    endpoint: str,
    *,
    api_key: str | None = None,
    token_provider: Callable[[], str] | None = None,
    http_client: Any = None,
) -> openai.OpenAI:
    """An SDK client for the endpoint: `AzureOpenAI` with an api-version, or `OpenAI` on the v1 URL."""
    endpoint = endpoint.rstrip("/")
    common: dict[str, Any] = {"max_retries": 0, "timeout": settings.timeout_s}
    if http_client is not None:
        common["http_client"] = http_client
    if settings.auth == "entra" and token_provider is None:
        token_provider = entra_token_provider()
    if settings.use_v1:
        credential: str | Callable[[], str] | None = token_provider if settings.auth == "entra" else api_key
        if credential is None:
            raise ValueError("probes: key auth needs AOAI_LENS_PROBES__API_KEY (or _FILE)")
        return openai.OpenAI(base_url=f"{endpoint}/openai/v1/", api_key=credential, **common)  # type: ignore[arg-type]
    if settings.auth == "entra":
        return openai.AzureOpenAI(
            azure_endpoint=endpoint, api_version=settings.api_version, azure_ad_token_provider=token_provider, **common
        )
    if api_key is None:
        raise ValueError("probes: key auth needs AOAI_LENS_PROBES__API_KEY (or _FILE)")
    return openai.AzureOpenAI(azure_endpoint=endpoint, api_version=settings.api_version, api_key=api_key, **common)


def _ratelimit(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    return {h: headers[h] for h in RATELIMIT_HEADERS if headers.get(h) is not None}


def classify(exc: BaseException) -> tuple[str, int | None]:
    """(class, HTTP status) of an exception raised by a probe call."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", None
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429:
            return "rate_limited", status
        if status in (401, 403):
            return "auth", status
        if status >= 500:
            return "http_5xx", status
        if status == 400 and _is_content_filter(exc):
            return "content_filter", status
        return "error", status
    if isinstance(exc, openai.APIConnectionError):
        return "error", None
    name = type(exc).__name__
    if name in ("ClientAuthenticationError", "CredentialUnavailableError", "AuthenticationRequiredError"):
        return "auth", None
    return "error", None


def _is_content_filter(exc: openai.APIStatusError) -> bool:
    if getattr(exc, "code", None) == "content_filter":
        return True
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("innererror") or body.get("inner_error") or {}
    return isinstance(inner, dict) and inner.get("code") == "ResponsibleAIPolicyViolation"


def run_probe(
    client: openai.OpenAI,
    target: ProbeTarget,
    *,
    auth: str = "key",
    clock: Clock = time.time,
    perf: Clock | None = None,
    prompt: str = PROBE_PROMPT,
    cost: Callable[[str, int, int, int], float | None] | None = None,
    model: str | None = None,
) -> ProbeResult:
    """Call the target once and describe what happened. Never raises for a failed call. `model` (from
    the management plane) picks the output limit's name: reasoning models refuse `max_tokens`."""
    perf = perf or (clock if clock is not time.time else time.perf_counter)
    ts = clock()
    result = ProbeResult(ts=ts, deployment=target.deployment, kind=target.kind, auth=auth, klass="ok")
    limit: dict[str, Any] = {token_limit_parameter(model or ""): 16}
    t0 = perf()
    try:
        if target.kind == "embedding":
            raw_emb = client.embeddings.with_raw_response.create(model=target.deployment, input=prompt)
            result.request_id = raw_emb.headers.get("apim-request-id")
            result.ratelimit = _ratelimit(raw_emb.headers)
            emb = raw_emb.parse()
            result.latency_ms = (perf() - t0) * 1000
            result.prompt_tokens = emb.usage.prompt_tokens
            result.total_tokens = emb.usage.total_tokens
            result.completion_tokens = 0
        elif target.stream:
            raw_stream = client.chat.completions.with_raw_response.create(
                model=target.deployment,
                messages=[{"role": "user", "content": prompt}],
                **limit,
                stream=True,
                stream_options={"include_usage": True},
            )
            result.request_id = raw_stream.headers.get("apim-request-id")
            result.ratelimit = _ratelimit(raw_stream.headers)
            usage = None
            for chunk in raw_stream.parse():
                if result.ttft_ms is None and chunk.choices and chunk.choices[0].delta.content:
                    result.ttft_ms = (perf() - t0) * 1000
                if chunk.usage is not None:
                    usage = chunk.usage
            result.latency_ms = (perf() - t0) * 1000
            _usage(result, usage)
        else:
            raw = client.chat.completions.with_raw_response.create(
                model=target.deployment,
                messages=[{"role": "user", "content": prompt}],
                **limit,
            )
            result.request_id = raw.headers.get("apim-request-id")
            result.ratelimit = _ratelimit(raw.headers)
            chat = raw.parse()
            result.latency_ms = (perf() - t0) * 1000
            _usage(result, chat.usage)
        result.status_code = 200
    except Exception as e:
        result.latency_ms = (perf() - t0) * 1000
        result.klass, result.status_code = classify(e)
        response = getattr(e, "response", None)
        headers = getattr(response, "headers", None) if response is not None else None
        if headers is not None:
            result.request_id = headers.get("apim-request-id")
            result.ratelimit = _ratelimit(headers)
        result.error = _describe(e)
    if result.klass == "ok" and result.completion_tokens and result.latency_ms:
        gen_ms = result.latency_ms - (result.ttft_ms or 0.0)
        result.tokens_per_s = result.completion_tokens / (gen_ms / 1000) if gen_ms > 0 else None
    if cost is not None and result.prompt_tokens is not None:
        result.cost_usd = cost(
            target.deployment, result.prompt_tokens, result.cached_tokens or 0, result.completion_tokens or 0
        )
    return result


def _usage(result: ProbeResult, usage: Any) -> None:
    if usage is None:
        return
    result.prompt_tokens = usage.prompt_tokens
    result.completion_tokens = usage.completion_tokens
    result.total_tokens = usage.total_tokens
    details = getattr(usage, "prompt_tokens_details", None)
    result.cached_tokens = getattr(details, "cached_tokens", None) or 0


def _describe(e: BaseException) -> str:
    """A short error text without request bodies or credentials."""
    if isinstance(e, openai.APIStatusError):
        body = e.body if isinstance(e.body, dict) else {}
        code = body.get("code") or e.status_code
        message = str(body.get("message") or "")[:200]
        return f"HTTP {e.status_code} {code}: {message}".strip()
    return f"{type(e).__name__}: {str(e)[:200]}"


def probe_cost_function(
    settings: Any, deployments: Callable[[], Any]
) -> Callable[[str, int, int, int], float | None] | None:
    """The price of a probe's tokens from the cost model's price book (None: unpriced, never $0).

    `deployments` returns the management plane's frame (Deployment, Model, Version, Sku, Location).
    Probe cost is kept here, in the probe store; chargeback excludes the probe identity's traffic.
    """
    try:
        from queries.cost.prices import PriceBook
    except ImportError:
        return None
    cache: dict[str, Any] = {}

    def cost(deployment: str, prompt: int, cached: int, completion: int) -> float | None:
        try:
            if "book" not in cache:
                cache["book"] = PriceBook.load(settings)
                frame = deployments()
                cache["deps"] = {str(r["Deployment"]): r for _, r in frame.iterrows()}
            row = cache["deps"].get(deployment)
            if row is None:
                return None
            price = cache["book"].lookup(
                str(row["Model"]), str(row["Version"]) or None, str(row["Sku"]), str(row["Location"]) or None
            )
        except Exception:  # an unpriced model or an unreachable plane is "unknown", never $0
            log.debug("no price for the probe on %s", deployment, exc_info=True)
            return None
        if price is None or price.input_per_1m is None:
            return None
        cached_rate = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
        out_rate = price.output_per_1m or 0.0
        if completion and price.output_per_1m is None:
            return None
        return ((prompt - cached) * price.input_per_1m + cached * cached_rate + completion * out_rate) / 1e6

    return cost
