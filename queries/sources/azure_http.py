"""What the Azure sources share, as a leaf they all import: the retry policy (429/503 retried honouring
Retry-After, bounded, with an injectable sleep so tests need no real waiting), the rule that plain http
is only ever used for a loopback endpoint (the local servers the tests run), never for a real one, and
the default credential."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from azure.core.pipeline.policies import RetryPolicy

# Retried statuses: Log Analytics answers 429 when a user's queue is full and 503 when busy; a 504 means
# the query ran out of time, and running it again would only spend another few minutes.
RETRY_STATUSES = frozenset({429, 503})
MAX_RETRIES = 3
MAX_RETRY_AFTER_S = 60.0


class BoundedRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy, limited to 429/503 (POST included: these queries only read), honouring
    `Retry-After` / `retry-after-ms` up to `max_wait_s`; a server asking for longer gets no retry, so the
    caller reports the throttling at once instead of hanging a page."""

    def __init__(
        self,
        *,
        retries: int = MAX_RETRIES,
        max_wait_s: float = MAX_RETRY_AFTER_S,
        backoff_s: float = 1.0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(
            retry_total=retries,
            retry_status=retries,
            retry_connect=retries,
            retry_read=0,
            retry_backoff_factor=backoff_s,
            retry_backoff_max=int(max_wait_s),
        )
        self.max_wait_s = max_wait_s
        self._sleep = sleep or time.sleep
        self.waits: list[float] = []  # every wait, for tests and logs
        self._local = threading.local()

    def start_call(self) -> None:
        """Reset the retry count of the calling thread (a sync pipeline runs on the caller's thread)."""
        self._local.retries = 0

    @property
    def retries_this_call(self) -> int:
        return int(getattr(self._local, "retries", 0))

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        status = response.http_response.status_code
        if status not in RETRY_STATUSES or not settings["total"]:
            return False
        wait = self.get_retry_after(response)
        return wait is None or wait <= self.max_wait_s

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        wait = self.get_retry_after(response) if response is not None else None
        if wait is None:
            wait = self.get_backoff_time(settings)
        wait = max(0.0, min(float(wait), self.max_wait_s))
        self.waits.append(wait)
        self._local.retries = self.retries_this_call + 1
        if wait > 0:
            self._sleep(wait)


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def https_options(url: str) -> dict[str, Any]:
    """Per-call options: azure-core refuses to send a token over http; allow it for loopback only."""
    return {"enforce_https": False} if url.startswith("http://") and is_loopback(url) else {}


def default_credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()
