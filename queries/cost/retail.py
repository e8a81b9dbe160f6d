"""A small client for the Azure Retail Prices API, and the dated local snapshots it writes.

The API is public and unauthenticated, pages its answer (a `NextPageLink` per page, `null` on the last
one) and answers 429 during long pulls, so a refresh follows the links and waits as `Retry-After` asks,
a bounded number of times. Azure returns one row per meter *per region* and keeps superseded and
reservation rows in the feed; a snapshot keeps only consumption rows and folds the regions of identical
rows together, in the shape the `azure-genai-prices` package bundles (`productName`, `meterName`,
`unitOfMeasure`, `retailPrice`, `effectiveStartDate`, `regions`), so one loader reads both.
Units stay as Azure wrote them ("1K", "1M", "1 Hour", "1/Hour"): the price book reads them per row.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
API_VERSION = "2023-01-01-preview"  # filter values are case-sensitive from this version on
# Azure files OpenAI models under several product names ("Azure OpenAI", "... GPT5", "... Reasoning",
# "... Embedding"); the service name changed over time, the product prefix did not.
ODATA_FILTER = "contains(productName, 'Azure OpenAI')"
MAX_RETRIES = 5  # per page, for 429 and 5xx answers
MAX_RETRY_WAIT_S = 120.0  # a Retry-After longer than this is capped
MAX_PAGES = 1000  # a loop guard: a full pull is a few dozen pages
TIMEOUT_S = 60.0
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
SNAPSHOT_NAME = re.compile(r"^retail-(\d{4}-\d{2}-\d{2})\.json$")

_sleep: Callable[[float], None] = time.sleep  # tests replace this with a fake clock


class RetailPricesError(Exception):
    """The price list could not be fetched; nothing was written."""


def _retry_after(response: requests.Response, attempt: int) -> float:
    """Seconds to wait: Azure's Retry-After (seconds or an HTTP date) when sent, else backoff."""
    value = response.headers.get("Retry-After")
    if value:
        try:
            return min(max(float(value), 0.0), MAX_RETRY_WAIT_S)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
                return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_WAIT_S)
            except (TypeError, ValueError):
                pass
    return min(2.0 ** (attempt + 1), MAX_RETRY_WAIT_S)


def _get_page(
    session: requests.Session, url: str, params: dict[str, str] | None, sleep: Callable[[float], None]
) -> dict[str, Any]:
    last = ""
    for attempt in range(MAX_RETRIES + 1):
        try:
            response = session.get(url, params=params, timeout=TIMEOUT_S)
        except requests.RequestException as e:
            last = f"{type(e).__name__}: {e}"
            if attempt == MAX_RETRIES:
                break
            sleep(min(2.0 ** (attempt + 1), MAX_RETRY_WAIT_S))
            continue
        if response.status_code == 200:
            try:
                payload = response.json()
            except ValueError:
                raise RetailPricesError(f"{url}: the answer is not JSON") from None
            if not isinstance(payload, dict) or not isinstance(payload.get("Items"), list):
                raise RetailPricesError(f"{url}: the answer has no Items list (not a Retail Prices page)")
            return payload
        last = f"HTTP {response.status_code}"
        if response.status_code not in RETRY_STATUS or attempt == MAX_RETRIES:
            break
        sleep(_retry_after(response, attempt))
    raise RetailPricesError(f"{url}: gave up after {MAX_RETRIES} retries ({last})")


def fetch_items(
    endpoint: str = RETAIL_PRICES_URL,
    currency: str = "USD",
    *,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] | None = None,
    on_page: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every Azure OpenAI row of the price list, following `NextPageLink` to the last page.

    `on_page(pages_done, items_so_far)` is called after each page (for a progress bar).
    """
    wait = sleep or _sleep
    own = session is None
    s = session or requests.Session()
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        url: str | None = endpoint
        params: dict[str, str] | None = {
            "api-version": API_VERSION,
            "currencyCode": f"'{currency}'",
            "$filter": ODATA_FILTER,
        }
        pages = 0
        while url:
            if url in seen or pages >= MAX_PAGES:
                raise RetailPricesError(f"{url}: paging does not end (page {pages + 1})")
            seen.add(url)
            payload = _get_page(s, url, params, wait)
            billed = payload.get("BillingCurrency")
            if billed and billed != currency:
                raise RetailPricesError(f"{url}: asked for {currency} prices, got {billed}")
            items.extend(i for i in payload["Items"] if isinstance(i, dict))
            pages += 1
            if on_page:
                on_page(pages, len(items))
            url = payload.get("NextPageLink") or None
            params = None  # the next link carries the query
    finally:
        if own:
            s.close()
    return items


def group_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consumption rows only, one row per (product, meter, unit, price, start date) with its regions."""
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for item in items:
        if item.get("type", "Consumption") != "Consumption":
            continue  # reservation and dev/test rows price something else
        meter = item.get("meterName") or ""
        price = item.get("retailPrice", item.get("unitPrice"))
        if not meter or not isinstance(price, int | float):
            continue
        key = (
            item.get("productName") or "",
            meter,
            item.get("unitOfMeasure") or "",
            float(price),
            item.get("effectiveStartDate") or "",
        )
        row = grouped.get(key)
        if row is None:
            row = grouped[key] = {
                "productName": key[0],
                "meterName": key[1],
                "unitOfMeasure": key[2],
                "retailPrice": key[3],
                "effectiveStartDate": key[4],
                "skuName": item.get("skuName") or "",
                "regions": [],
            }
        region = (item.get("armRegionName") or "").strip().lower()
        if region not in row["regions"]:
            row["regions"].append(region)
    for row in grouped.values():
        row["regions"].sort()
    return sorted(grouped.values(), key=lambda r: (r["productName"], r["meterName"], r["effectiveStartDate"]))


def write_snapshot(
    directory: Path, rows: list[dict[str, Any]], *, endpoint: str, currency: str, raw_items: int, now: datetime
) -> Path:
    """Write `retail-YYYY-MM-DD.json` atomically (a refresh on the same day replaces it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"retail-{now:%Y-%m-%d}.json"
    payload = {
        "fetched_at": now.isoformat(timespec="seconds"),
        "source": "azure retail prices api",
        "endpoint": endpoint,
        "filter": ODATA_FILTER,
        "currency": currency,
        "raw_items": raw_items,
        "items": rows,
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def all_snapshots(directory: Path) -> list[Path]:
    """Every `retail-YYYY-MM-DD.json` in `directory`, oldest first."""
    if not directory.is_dir():
        return []
    dated = [(m.group(1), p) for p in directory.iterdir() if (m := SNAPSHOT_NAME.match(p.name))]
    return [p for _, p in sorted(dated)]


def newest_snapshot(directory: Path) -> Path | None:
    """The most recent `retail-YYYY-MM-DD.json` in `directory`, if any."""
    if not directory.is_dir():
        return None
    dated = [(m.group(1), p) for p in directory.iterdir() if (m := SNAPSHOT_NAME.match(p.name))]
    return max(dated)[1] if dated else None
