"""The price book: what one token (or one PTU-hour) costs, per model, version, SKU and region.

Where prices come from, in order of precedence:

1. the user's override file (`prices.overrides_file`, CSV; see `load_overrides`), field by field;
2. the snapshots written by `aoai-lens prices refresh` (`<data_dir>/prices/retail-YYYY-MM-DD.json`), the
   newest winning and the older ones adding history;
3. the Azure Retail Prices snapshot bundled in the `azure-genai-prices` package.

`prices.discount_pct` then scales every price (override rows marked `net = true` excepted).

Why not call `azure_genai_prices.calc_price` directly: its model ids are spelled the way Azure's meter
names happen to be ("gpt-4o-mini-0718", "o4-mini-0416", but "gpt-4.1" and, for the 2024-08-06 snapshot,
plain "gpt-4o"), so `gpt-4o-mini` and `o4-mini` are unknown to it and `gpt-4o` silently means the
August 2024 version; it knows no deployment SKUs, skips every provisioned (PTU) meter, refuses a
region-dependent price without a region, and prices one call at a time. We keep its meter-name parser
(`azure_genai_prices.parse_meter_name`, which untangles the dozen spellings of "input", "Data Zone" and
so on) and its bundled snapshot, and normalise them ourselves: the version comes from the meter name's
MMDD tag ("gpt 4o 1120 Inp glbl" → gpt-4o, 1120), the unit from each row's `unitOfMeasure`
("1K" or "1M" tokens, "1 Hour" or "1/Hour"), and every effective start date per region kept as a
timeline, so an hour is priced at the rate in force then (`pick`). tests/queries/test_prices.py shows
each shortcoming on the demo models; tests/queries/test_price_meters.py prices every meter kind and unit.

The API the cost code uses::

    book = PriceBook.load(settings)              # raises ConfigError for a bad override file
    price = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "eastus")
    price.input_per_1m, price.cached_input_per_1m, price.output_per_1m  # USD per 1M tokens, or None
    price.ptu_per_hour                          # USD per PTU-hour, for *ProvisionedManaged SKUs
    price.source                                # "bundled" | "refreshed" | "override"
    price.key                                   # what matched, e.g. "gpt-4o 1120 · Global · eastus"
    priced = book.price_usage(frame)            # frame: model, version, sku, region,
                                                #        prompt_tokens, cached_tokens, completion_tokens
    book.lookup(..., at=hour)                   # the prices in force at that time (default: the snapshot's day)
    book.lookup(..., tier="priority")           # Priority processing meters of a standard deployment
    book.timeline(model, version, sku, region)  # [(from day or None, Price, why)]: every price change
    book.meters(model, region)                  # every price-list row behind them (`prices show`)
    price.cache_write_per_1m, price.hosting_per_hour, price.effective, price.meters

`lookup` returns None when nothing covers the combination (unknown model, SKU or version, a region the
regional price list does not name). `price_usage` adds input_cost, cached_cost, output_cost, cost (USD),
priced (bool), price_key and billing ("tokens", "provisioned" or "unpriced"). `prompt_tokens` includes
the cached ones: uncached input = prompt − cached. Cached tokens use the cached-input price, or the input
price where a model has no cached meter. Rows nothing prices get priced=False and NaN costs, never 0.
Rows on a provisioned SKU get billing="provisioned" and token costs of 0: their cost is the hourly PTU
charge (`lookup(...).ptu_per_hour` × PTUs × hours), which the caller shares out.
SKU → price scope: GlobalStandard→Global, DataZoneStandard→Data Zone, Standard→Regional, GlobalBatch and
DataZoneBatch→the batch meters of that scope (50 % of the standard price where Azure lists no batch
meter), [Global|DataZone]ProvisionedManaged→PTU per hour of that scope. `PAYG_EQUIVALENT` names the
pay-as-you-go SKU to compare a provisioned one with.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from azure_genai_prices import parse_meter_name

from queries.config import PtuReservation, Settings
from queries.cost.overrides import Override, load_overrides
from queries.cost.retail import all_snapshots
from queries.cost.skus import BATCH_SHARE, SKUS, VERSION_TAG, Sku, version_tag
from queries.errors import ConfigError

USAGE_COLUMNS = ("model", "version", "sku", "region", "prompt_tokens", "cached_tokens", "completion_tokens")


_PTU_METER = re.compile(r"^Provisioned Managed (Global|Data Zone|Regional) Unit$", re.I)
_PTU_SCOPES = {"global": "global", "data zone": "data_zone", "regional": "regional"}
_KIND = {"input": "input", "cache_read": "cached", "cache_write": "cache_write", "output": "output"}
_SCOPE = {"global": "global", "data_zone": "data_zone", "regional": "regional"}


UNIT_KINDS = ("tokens", "hours", "count", "period")


def unit_quantity(unit_of_measure: str) -> tuple[str, float] | None:
    """What one price row is for, as (kind, how many): "1K" → ("tokens", 1000), "1M" → ("tokens", 1e6),
    "10K" → ("tokens", 10000), "1 Hour" and "1/Hour" → ("hours", 1), "1" → ("count", 1) (a session, an
    image, a second of video), "100" → ("count", 100), "1/Month", "1/Day" → ("period", ...). None for an
    empty or unreadable unit. Token prices are divided by the count to give a price per token: reading a
    "1K" price as per-1M would bill 1000 times too little (the 1000x trap the tests pin)."""
    unit = (unit_of_measure or "").strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([km])(?:tokens?)?", unit)
    if m:
        return "tokens", float(m.group(1)) * (1000.0 if m.group(2) == "k" else 1_000_000.0)
    m = re.fullmatch(r"(\d+)?/?hours?", unit)
    if m:
        return "hours", float(m.group(1) or 1)
    m = re.fullmatch(r"(\d+)?/?(day|month|year)s?", unit)
    if m:
        days = {"day": 1.0, "month": 30.4375, "year": 365.25}[m.group(2)]
        return "period", float(m.group(1) or 1) * days
    m = re.fullmatch(r"(\d+(?:\.\d+)?)", unit)
    if m:
        return "count", float(m.group(1))
    return None


def per_normalised_unit(retail_price: float, unit_of_measure: str) -> tuple[float, str] | None:
    """A Retail Prices row's price per the unit the book uses: USD per 1M tokens for token rows, per hour
    for hourly rows; None for rows the book does not use (per image, per session, per month, ...)."""
    unit = unit_quantity(unit_of_measure)
    if unit is None:
        return None
    kind, count = unit
    if kind == "tokens":
        return _clean(float(retail_price) * 1_000_000.0 / count), "1M tokens"
    if kind == "hours":
        return _clean(float(retail_price) / count), "hour"
    return None


@dataclass(frozen=True)
class Rate:
    value: float  # USD per 1M tokens, or per hour
    effective: str  # YYYY-MM-DD: in force from this day (00:00 UTC) until a later rate of the same slot
    meter: str
    sku_name: str = ""  # the API's skuName (for the bundled snapshot, which drops it: the meter name
    # without its trailing " Tokens"/" Unit", which is how Azure names them)
    unit: str = ""  # unitOfMeasure as the API gave it
    product: str = ""
    origin: str = ""  # which snapshot listed it: "bundled 2026-08-11", "refresh 2026-11-30"


Timeline = dict[str, list[Rate]]  # region -> rates sorted by effective date


@dataclass
class Catalogue:
    """A snapshot normalised into rate timelines per (model, version tag, scope, mode, kind) and region.

    Modes: standard, batch, priority (Priority processing, the "pp" meters), developer (the Developer
    tier of fine-tuned models, "dev ft" meters), fine_tuned (a fine-tuned model on a standard
    deployment). Kinds: input, cached, cache_write, output. `hosting` holds the hourly hosting price of a
    fine-tuned model per (model, scope); `ptu` the PTU-hour price per scope.
    """

    source: str  # bundled | refreshed
    label: str  # where it came from, for people
    as_of: str = ""  # YYYY-MM-DD: "now" for lookups that name no time
    tokens: dict[tuple[str, str | None, str, str, str], Timeline] = field(default_factory=dict)
    ptu: dict[str, Timeline] = field(default_factory=dict)
    hosting: dict[tuple[str, str], Timeline] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # same slot, same date, different price

    def models(self) -> list[str]:
        return sorted({k[0] for k in self.tokens})

    def tags(self, model: str) -> set[str | None]:
        return {k[1] for k in self.tokens if k[0] == model and k[3] in ("standard", "batch", "priority")} or {
            k[1] for k in self.tokens if k[0] == model
        }


def _clean(value: float) -> float:
    """Drop binary noise from unit conversion (0.0025 per 1K → 2.5 per 1M, not 2.5000000000000004)."""
    return float(f"{value:.12g}")


def _put(slot: Timeline, region: str, rate: Rate, conflicts: list[str], what: str) -> None:
    """Add `rate` to the region's timeline; on the same effective date keep the higher price (never
    under-state a cost on a tie) and record the conflict."""
    line = slot.setdefault(region, [])
    for i, old in enumerate(line):
        if old.effective == rate.effective:
            if old.value != rate.value:
                conflicts.append(f"{what} {region}: {old.meter} {old.value} vs {rate.meter} {rate.value}")
                if rate.value > old.value:
                    line[i] = rate
            return
    line.append(rate)
    line.sort(key=lambda r: r.effective)


def pick(line: list[Rate] | None, day: str, as_of: str = "9999-12-31") -> Rate | None:
    """The rate in force on `day` (YYYY-MM-DD): the latest one that had started. Before the first listed
    start, the first listed rate when it had started by `as_of` (the snapshot's day): the API lists
    today's prices, not their history, so an hour older than a meter's listed start is priced at its
    oldest known price rather than left unpriced; a meter only announced for later prices nothing yet."""
    if not line:
        return None
    found: Rate | None = line[0] if line[0].effective <= as_of else None
    for rate in line:
        if rate.effective <= day:
            found = rate
        else:
            break
    return found


_SKU_SUFFIX = re.compile(r"\s+(tokens|unit|units)$", re.I)


def _sku_name(item: dict[str, Any], meter: str) -> str:
    return str(item.get("skuName") or _SKU_SUFFIX.sub("", meter.strip()))


_HOSTING = re.compile(r"\b(hosting|hstng)\b", re.I)
_FT_WORDS = {"ft", "rft"}
_SKIP_WORDS = {"trng", "training", "grader", "grdr", "mdl", "model"}  # training and graders


def _ft_hosting(meter: str) -> tuple[str, str] | None:
    """("gpt-4.1", "global") for "gpt-4.1-ft hosting global Unit" / "4.1 ft hosting Dz Unit"."""
    if not _HOSTING.search(meter):
        return None
    cleaned = re.sub(r"(?i)[\s\-_]*(ft|hosting|hstng|deployment)(?=[\s\-_]|$)", " ", meter)
    key = parse_meter_name(cleaned.replace(" Unit", " inp Tokens"), "Azure OpenAI")
    if key is None:
        return None
    model = key.model
    tag_match = VERSION_TAG.search(cleaned)
    if tag_match:
        model = re.sub(rf"-?{tag_match.group(0)}(?=-|$)", "", model) or model
    return model, _SCOPE[key.deployment.value]


def normalise(
    items: Iterable[dict[str, Any]], source: str, label: str, as_of: str | None = None, origin: str | None = None
) -> Catalogue:
    """Turn Retail Prices rows (grouped with `regions`, or raw with `armRegionName`) into a Catalogue.

    Every effective date is kept (`pick` chooses the rate in force at a time); announced rates whose
    start is after `as_of` are kept too and apply from their start."""
    today = as_of or datetime.now(UTC).strftime("%Y-%m-%d")
    cat = Catalogue(source=source, label=label, as_of=today)
    for item in items:
        meter = str(item.get("meterName") or "").strip()
        product = str(item.get("productName") or "")
        price = item.get("retailPrice")
        raw_unit = str(item.get("unitOfMeasure") or "")
        unit = unit_quantity(raw_unit)
        if not meter or not isinstance(price, int | float) or price <= 0 or unit is None:
            continue
        if item.get("type", "Consumption") != "Consumption":
            continue
        regions = [str(r).lower() for r in (item.get("regions") or [item.get("armRegionName") or ""])]
        effective = str(item.get("effectiveStartDate") or "")[:10]
        what, per = unit
        common = {
            "meter": meter,
            "sku_name": _sku_name(item, meter),
            "unit": raw_unit,
            "product": product,
            "origin": origin or source,
        }
        if what == "hours":
            if not product.startswith("Azure OpenAI"):
                continue
            rate = Rate(_clean(float(price) / per), effective, **common)
            m = _PTU_METER.match(meter)
            if m:
                slot = cat.ptu.setdefault(_PTU_SCOPES[m.group(1).lower()], {})
                for region in regions:
                    _put(slot, region, rate, cat.conflicts, f"PTU {m.group(1)}")
                continue
            hosted = _ft_hosting(meter)
            if hosted is not None:
                slot = cat.hosting.setdefault(hosted, {})
                for region in regions:
                    _put(slot, region, rate, cat.conflicts, f"hosting {' '.join(hosted)}")
            continue
        if what != "tokens":
            continue
        words = set(re.split(r"[\s\-_/]+", meter.lower()))
        if words & _SKIP_WORDS or _HOSTING.search(meter):
            continue
        mode_override: str | None = None
        parse_name = meter
        if words & _FT_WORDS:
            mode_override = "developer" if "dev" in words else "fine_tuned"
            parse_name = re.sub(r"(?i)(?<![a-z])(dev|ft|rft)(?![a-z])", " ", meter)
        elif "dev" in words:
            continue
        key = parse_meter_name(parse_name, product)
        if key is None or key.context.value != "short" or key.kind.value not in _KIND:
            continue
        tag_match = VERSION_TAG.search(meter)
        tag = tag_match.group(0) if tag_match else None
        model = key.model.strip("-")
        if tag:
            model = re.sub(rf"-?{tag}(?=-|$)", "", model) or model
        mode = mode_override or key.mode.value
        slot_key = (model, tag, _SCOPE[key.deployment.value], mode, _KIND[key.kind.value])
        rate = Rate(_clean(float(price) * 1_000_000.0 / per), effective, **common)
        slot = cat.tokens.setdefault(slot_key, {})
        for region in regions:
            _put(slot, region, rate, cat.conflicts, " ".join(str(p) for p in slot_key))
    return cat


def _package_version() -> str:
    try:
        return metadata.version("azure-genai-prices")
    except metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


@lru_cache(maxsize=4)
def _load_bundled(today: str) -> Catalogue:
    raw = resources.files("azure_genai_prices.data").joinpath("snapshot.json").read_text(encoding="utf-8")
    payload = json.loads(raw)
    label = (
        f"bundled snapshot of azure-genai-prices {_package_version()} (fetched {payload.get('fetched_at', '?')[:10]})"
    )
    return normalise(payload["items"], "bundled", label, today, f"bundled {str(payload.get('fetched_at', '?'))[:10]}")


@lru_cache(maxsize=8)
def _load_refreshed(path: str, mtime_ns: int, today: str) -> Catalogue:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    label = f"refreshed snapshot {path} (fetched {str(payload.get('fetched_at', '?'))[:19]})"
    origin = f"refresh {str(payload.get('fetched_at', '?'))[:10]}"
    return normalise(payload.get("items", []), "refreshed", label, today, origin)


def _merge(older: Catalogue, newer: Catalogue) -> Catalogue:
    """`newer` with the rates only `older` knows added: a rate of the same slot, region and start date
    is newer's (a correction); an older start date the newer pull no longer lists is history that still
    prices the hours before the newer rate began."""
    out = Catalogue(newer.source, newer.label, newer.as_of, conflicts=list(newer.conflicts))
    for name in ("tokens", "ptu", "hosting"):
        merged: dict[Any, Timeline] = {}
        old_map: dict[Any, Timeline] = getattr(older, name)
        new_map: dict[Any, Timeline] = getattr(newer, name)
        for key in set(old_map) | set(new_map):
            timeline: Timeline = {}
            for region in set(old_map.get(key, {})) | set(new_map.get(key, {})):
                new_line = new_map.get(key, {}).get(region, [])
                dates = {r.effective for r in new_line}
                kept = [r for r in old_map.get(key, {}).get(region, []) if r.effective not in dates]
                timeline[region] = sorted([*kept, *new_line], key=lambda r: r.effective)
            merged[key] = timeline
        setattr(out, name, merged)
    return out


def load_catalogue(data_dir: Path, today: str | None = None) -> Catalogue:
    """The refreshed snapshots under `<data_dir>/prices` (each dated pull merged into the history of the
    ones before it, the newest winning), else the bundled one."""
    day = today or datetime.now(UTC).strftime("%Y-%m-%d")
    snapshots = all_snapshots(data_dir / "prices")
    if not snapshots:
        return _load_bundled(day)
    cat: Catalogue | None = None
    for path in snapshots:
        try:
            one = _load_refreshed(str(path), path.stat().st_mtime_ns, day)
        except (OSError, ValueError) as e:
            raise ConfigError([f"{path}: cannot read the price snapshot: {e}"]) from None
        cat = one if cat is None else _merge(cat, one)
    assert cat is not None
    if len(snapshots) > 1:
        cat.label = f"{cat.label}, with the history of {len(snapshots) - 1} earlier refresh(es)"
    return cat


# ---------------------------------------------------------------------------------------------------
# Overrides


# ---------------------------------------------------------------------------------------------------
# The book


@dataclass(frozen=True)
class Price:
    """USD prices for one (model, version, sku, region) at one time; None where a price does not apply."""

    input_per_1m: float | None
    cached_input_per_1m: float | None
    output_per_1m: float | None
    ptu_per_hour: float | None
    source: str  # bundled | refreshed | override
    key: str  # what matched, for people and for price_key
    cache_write_per_1m: float | None = None  # only where Azure bills cache writes
    hosting_per_hour: float | None = None  # a fine-tuned model's hosting, where listed
    effective: str = ""  # the latest start date among the rates used (YYYY-MM-DD)
    meters: tuple[Rate, ...] = ()  # the price-list rows behind it


def _day(at: Any, default: str) -> str:
    """YYYY-MM-DD of a time (datetime, Timestamp or ISO text); `default` when None."""
    if at is None:
        return default
    if isinstance(at, str):
        return at[:10]
    ts = pd.Timestamp(at)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d")


def _at(rates: Timeline | None, region: str, day: str, as_of: str) -> tuple[Rate | None, str]:
    """The rate in force on `day` in `region`; else the one rate every listed region agrees on that day;
    else None."""
    if not rates:
        return None, ""
    if region in rates:
        return pick(rates[region], day, as_of), region
    found = [r for r in (pick(line, day, as_of) for line in rates.values()) if r is not None]
    if found and len({r.value for r in found}) == 1:
        return found[0], "all regions"
    return None, ""


# Priority processing serves a request estimated above this many prompt tokens at the standard tier, and
# bills it at the standard price (Microsoft's priority-processing page: "long context requests").
PRIORITY_LONG_PROMPT = 128_000


def billed_tier(requested: str | None, prompt_tokens: float) -> str:
    """The tier a request is billed at: "priority" when it asked for priority and its prompt is not long
    context, else "standard"."""
    if (requested or "").strip().lower() == "priority" and prompt_tokens <= PRIORITY_LONG_PROMPT:
        return "priority"
    return "standard"


_FINE_TUNED = re.compile(r"^(?P<base>.+?)(?:-(?P<date>\d{4}-\d{2}-\d{2}))?\.ft-[0-9a-z]+$", re.I)


def fine_tuned_base(model: str) -> tuple[str, str | None] | None:
    """(base model, version) of a fine-tuned model name ("gpt-4o-mini-2024-07-18.ft-0e20..." →
    ("gpt-4o-mini", "2024-07-18")); None for a base model."""
    m = _FINE_TUNED.match(model.strip())
    if not m:
        return None
    return m.group("base").lower(), m.group("date")


def _text(value: Any) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
        else str(value).strip()
    )


def _same(a: Price | None, b: Price | None) -> bool:
    if a is None or b is None:
        return a is b
    fields = ("input_per_1m", "cached_input_per_1m", "output_per_1m", "ptu_per_hour", "cache_write_per_1m", "key")
    return all(getattr(a, k) == getattr(b, k) for k in fields)


def _fmt_tag(tag: str | None) -> str:
    return f" {tag}" if tag else ""


class PriceBook:
    def __init__(
        self,
        catalogue: Catalogue,
        overrides: Iterable[Override] = (),
        discount_pct: float = 0.0,
        reservations: Iterable[PtuReservation] = (),
    ):
        self.catalogue = catalogue
        self.overrides = list(overrides)
        self.discount_pct = float(discount_pct)
        self._factor = 1.0 - self.discount_pct / 100.0
        self.reservations = list(reservations)  # billing.reservations: PTU bought for a term

    @classmethod
    def load(cls, settings: Settings) -> PriceBook:
        cat = load_catalogue(settings.data_dir)
        overrides = load_overrides(settings.prices.overrides_file) if settings.prices.overrides_file else []
        return cls(cat, overrides, settings.prices.discount_pct, settings.billing.reservations)

    def fingerprint(self) -> str:
        """What decides this book's prices, for the ledger's build version: the snapshot it came from,
        the overrides and the discount."""
        overrides = sorted(
            f"{o.model}|{o.version}|{o.sku}|{o.region}|{sorted(o.prices.items())}|{o.net}" for o in self.overrides
        )
        reservations = [r.model_dump(mode="json") for r in self.reservations]
        return f"{self.catalogue.source}:{self.catalogue.label}|{self.discount_pct:g}|{overrides}|{reservations}"

    # -- what the book knows ------------------------------------------------------------------------
    def models(self) -> list[str]:
        return sorted(set(self.catalogue.models()) | {o.model for o in self.overrides})

    def versions(self, model: str) -> list[str | None]:
        tags = self.catalogue.tags(model.strip().lower())
        return sorted(tags, key=lambda t: (t is not None, t or ""))

    def close_matches(self, model: str, n: int = 5) -> list[str]:
        name = model.strip().lower()
        known = self.models()
        near = difflib.get_close_matches(name, known, n=n, cutoff=0.6)
        near += [m for m in known if name and name in m and m not in near]
        return near[:n]

    # -- lookups ------------------------------------------------------------------------------------
    def _resolve_tag(self, model: str, version: str | None) -> tuple[str | None, bool, str]:
        tags = self.catalogue.tags(model)
        if not tags:
            return None, False, f"unknown model {model!r}"
        wanted = version_tag(version)
        if wanted in tags:
            return wanted, True, ""
        if tags == {None}:
            return None, True, ""  # one unversioned price list (gpt-4.1, embeddings)
        if not (version or "").strip() and len(tags) == 1:
            return next(iter(tags)), True, ""
        known = ", ".join(sorted(t for t in tags if t))
        return None, False, f"no price for {model} version {version or '(none)'}; priced versions: {known}"

    def _book_tokens(
        self, model: str, version: str | None, sku: Sku, region: str, mode: str, day: str
    ) -> tuple[dict[str, Rate | None], float, str, str]:
        """(rate per kind, share applied, key, why-not) for the token meters of `mode`."""
        tag, ok, why = self._resolve_tag(model, version)
        if not ok:
            return {}, 1.0, "", why
        cat = self.catalogue

        def rates(m: str) -> dict[str, Rate | None]:
            return {
                k: _at(cat.tokens.get((model, tag, sku.scope, m, k)), region, day, cat.as_of)[0]
                for k in ("input", "cached", "cache_write", "output")
            }

        found = rates(mode)
        share = 1.0
        label = {"priority": f"{sku.label} Priority", "fine_tuned": f"{sku.label} fine-tuned"}.get(mode, sku.label)
        note = label
        if mode == "batch" and found["input"] is None:
            found = rates("standard")
            share = BATCH_SHARE
            note = f"{sku.label} (50% of {SKUS[sku.scope.replace('_', '') + 'standard'].label})"
        first = found["input"]
        if first is None:
            listed = sorted(cat.tokens.get((model, tag, sku.scope, mode, "input"), {}))
            if not listed:
                return {}, 1.0, "", f"no {label} price for {model}{_fmt_tag(tag)}"
            shown = ", ".join(listed[:6]) + (", ..." if len(listed) > 6 else "")
            return (
                {},
                1.0,
                "",
                f"no {label} price for {model}{_fmt_tag(tag)} in {region or '(no region)'}; priced in {shown}",
            )
        where = _at(
            cat.tokens.get((model, tag, sku.scope, mode if share == 1.0 else "standard", "input")),
            region,
            day,
            cat.as_of,
        )[1]
        return found, share, f"{model}{_fmt_tag(tag)} · {note} · {where}", ""

    def _book_ptu(self, sku: Sku, region: str, day: str) -> tuple[Rate | None, str, str]:
        rate, where = _at(self.catalogue.ptu.get(sku.scope), region, day, self.catalogue.as_of)
        if rate is None:
            return None, "", f"no {sku.label} hourly price in {region or '(no region)'}"
        return rate, f"{sku.label} · {where}", ""

    def _override(self, model: str, version: str | None, sku: str, region: str) -> Override | None:
        return max(
            (o for o in self.overrides if o.matches(model, version, sku, region)),
            key=lambda o: o.specificity,
            default=None,
        )

    def explain(
        self,
        model: str,
        version: str | None,
        sku: str,
        region: str | None,
        at: Any = None,
        tier: str | None = None,
    ) -> tuple[Price | None, str]:
        """`lookup`, plus why there is no price when there is none.

        `at`: the time to price (a datetime, or YYYY-MM-DD); default the snapshot's day. `tier`:
        "priority" prices a standard deployment's Priority processing meters."""
        name = (model or "").strip().lower()
        reg = (region or "").strip().lower()
        info = SKUS.get((sku or "").strip().lower())
        if info is None:
            return None, f"unknown sku {sku!r}"
        day = _day(at, self.catalogue.as_of)
        ov = self._override(name, version, info.name, reg)
        f = self._factor
        if info.mode == "provisioned":
            rate, key, why = self._book_ptu(info, reg, day)
            source = self.catalogue.source
            value = rate.value * f if rate is not None else None
            if ov is not None:
                value = ov.prices["ptu_per_hour"] * (1.0 if ov.net else f)
                key, source = f"override {ov.where}", "override"
            if value is None:
                return None, why
            used = (rate,) if rate is not None and source != "override" else ()
            return Price(
                None,
                None,
                None,
                value,
                source,
                self._discounted(key),
                effective=rate.effective if used and rate is not None else "",
                meters=used,
            ), ""
        mode = info.mode
        book_model, book_version = name, version
        tuned = fine_tuned_base(name)
        if tuned is not None:
            book_model, book_version = tuned[0], tuned[1] or version
            mode = "developer" if info.mode == "developer" else "fine_tuned"
        elif tier == "priority" and info.mode == "standard":
            mode = "priority"
        book, share, key, why = self._book_tokens(book_model, book_version, info, reg, mode, day)
        fields: dict[str, float | None] = {
            k: (None if r is None else r.value * share * f) for k, r in book.items()
        } or dict.fromkeys(("input", "cached", "cache_write", "output"))
        source = self.catalogue.source
        if ov is not None:
            for col, k in (("input_per_1m", "input"), ("cached_input_per_1m", "cached"), ("output_per_1m", "output")):
                if col in ov.prices:
                    fields[k] = ov.prices[col] * (1.0 if ov.net else f)
            key = f"override {ov.where}" + (f" over {key}" if key else "")
            source = "override"
        if fields["input"] is None:
            return None, why or f"the override at {ov.where if ov else '?'} gives no input price and the book has none"
        used_rates = tuple(r for r in book.values() if r is not None)
        hosting = None
        if tuned is not None and mode == "fine_tuned":
            h = _at(self.catalogue.hosting.get((book_model, info.scope)), reg, day, self.catalogue.as_of)[0]
            hosting = h.value * f if h is not None else None
        return Price(
            fields["input"],
            fields["cached"],
            fields["output"],
            None,
            source,
            self._discounted(key),
            cache_write_per_1m=fields.get("cache_write"),
            hosting_per_hour=hosting,
            effective=max((r.effective for r in used_rates), default=""),
            meters=used_rates,
        ), ""

    def _discounted(self, key: str) -> str:
        return f"{key} · −{self.discount_pct:g}%" if self.discount_pct else key

    def lookup(
        self, model: str, version: str | None, sku: str, region: str | None, at: Any = None, tier: str | None = None
    ) -> Price | None:
        return self.explain(model, version, sku, region, at, tier)[0]

    def change_days(self, model: str, version: str | None, sku: str, region: str | None) -> list[str]:
        """Every day (YYYY-MM-DD) on which a rate that could price this combination starts."""
        info = SKUS.get((sku or "").strip().lower())
        if info is None:
            return []
        cat = self.catalogue
        if info.mode == "provisioned":
            lines = list((cat.ptu.get(info.scope) or {}).values())
        else:
            name = (model or "").strip().lower()
            tuned = fine_tuned_base(name)
            name = tuned[0] if tuned else name
            lines = [
                line
                for (m, _, scope, _, _), timeline in cat.tokens.items()
                if m == name and scope == info.scope
                for line in timeline.values()
            ]
        return sorted({r.effective for line in lines for r in line})

    def timeline(
        self, model: str, version: str | None, sku: str, region: str | None, tier: str | None = None
    ) -> list[tuple[str | None, Price | None, str]]:
        """The prices of a combination over time: [(from day or None for "always before", price, why)],
        one entry per change, consecutive equal prices merged. The ledger prices each hour at the entry
        in force then."""
        out: list[tuple[str | None, Price | None, str]] = []
        days: list[str | None] = [None, *self.change_days(model, version, sku, region)]
        for day in days:
            price, why = self.explain(model, version, sku, region, at=day or "0000-01-01", tier=tier)
            if out and _same(out[-1][1], price):
                continue
            out.append((day, price, why))
        return out

    def meters(self, model: str, region: str) -> list[dict[str, Any]]:
        """Every price-list row behind a model's prices in a region (all start dates, oldest first), the
        PTU-hour rows of the region, the fine-tuned hosting rows, and the override rows for the model:
        what `prices show` lists."""
        name = model.strip().lower()
        reg = region.strip().lower()
        cat = self.catalogue
        out: list[dict[str, Any]] = []

        def line_for(timeline: Timeline) -> tuple[list[Rate], str]:
            if reg in timeline:
                return timeline[reg], reg
            lines = list(timeline.values())
            values = {tuple((r.effective, r.value) for r in line) for line in lines}
            return (lines[0], "all regions") if len(values) == 1 else ([], "")

        def add(what: dict[str, Any], timeline: Timeline) -> None:
            line, where = line_for(timeline)
            for r in line:
                per = "1M tokens" if what["kind"] not in ("ptu", "hosting") else "hour"
                out.append(
                    {
                        **what,
                        "region": where,
                        "sku_name": r.sku_name,
                        "meter": r.meter,
                        "unit": r.unit,
                        "per": per,
                        "price": r.value,
                        "effective": r.effective,
                        "source": r.origin or cat.source,
                    }
                )

        order = {"standard": 0, "priority": 1, "batch": 2, "fine_tuned": 3, "developer": 4}
        kinds = {"input": 0, "cached": 1, "cache_write": 2, "output": 3}
        scopes = {"global": 0, "data_zone": 1, "regional": 2}
        slots = sorted(
            (k for k in cat.tokens if k[0] == name),
            key=lambda k: (k[1] or "", scopes.get(k[2], 9), order.get(k[3], 9), kinds.get(k[4], 9)),
        )
        for m, tag, scope, mode, kind in slots:
            add(
                {"version": tag or "any", "scope": scope, "mode": mode, "kind": kind},
                cat.tokens[(m, tag, scope, mode, kind)],
            )
        for (m, scope), timeline in sorted(cat.hosting.items()):
            if m == name:
                add({"version": "any", "scope": scope, "mode": "fine_tuned", "kind": "hosting"}, timeline)
        for scope, timeline in sorted(cat.ptu.items(), key=lambda kv: scopes.get(kv[0], 9)):
            add({"version": "any", "scope": scope, "mode": "provisioned", "kind": "ptu"}, timeline)
        for o in self.overrides:
            if o.model != name or (o.region and o.region != reg):
                continue
            for col, value in sorted(o.prices.items()):
                out.append(
                    {
                        "version": o.version or "any",
                        "scope": SKUS[o.sku.lower()].scope,
                        "mode": SKUS[o.sku.lower()].mode,
                        "kind": col.removesuffix("_per_1m").removesuffix("_per_hour").replace("cached_input", "cached"),
                        "region": o.region or "any",
                        "sku_name": o.sku,
                        "meter": "(override)",
                        "unit": "1M" if col.endswith("_1m") else "1 Hour",
                        "per": "1M tokens" if col.endswith("_1m") else "hour",
                        "price": value,
                        "effective": "",
                        "source": f"override {o.where}" + (" (net)" if o.net else ""),
                    }
                )
        return out

    # -- pricing a frame ----------------------------------------------------------------------------
    def price_usage(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with input_cost, cached_cost, output_cost, cost, priced, price_key and billing added."""
        missing = [c for c in USAGE_COLUMNS if c not in frame.columns and c != "cached_tokens"]
        if missing:
            raise ValueError(f"price_usage needs the column(s) {', '.join(missing)}")
        out = frame.copy()
        n = len(out)
        cols = ["model", "version", "sku", "region"]
        codes = out.groupby(cols, sort=False, dropna=False).ngroup().to_numpy() if n else np.zeros(0, dtype=int)
        _, first = np.unique(codes, return_index=True)  # one row per distinct key, in code order
        uniques = [tuple(_text(v) for v in row) for row in out[cols].iloc[first].itertuples(index=False)]
        m = len(uniques)
        in_r, ca_r, out_r = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
        ok = np.zeros(m, dtype=bool)
        ptu = np.zeros(m, dtype=bool)
        label: list[str] = []
        for i, (model, version, sku, region) in enumerate(uniques):
            price, why = self.explain(model, version or None, sku, region)
            if price is None:
                label.append(f"unpriced: {why}")
                continue
            ok[i] = True
            label.append(price.key)
            if price.ptu_per_hour is not None:
                ptu[i] = True
                in_r[i] = ca_r[i] = out_r[i] = 0.0
                continue
            assert price.input_per_1m is not None
            in_r[i] = price.input_per_1m
            ca_r[i] = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
            if price.output_per_1m is not None:
                out_r[i] = price.output_per_1m

        def tokens(col: str) -> np.ndarray:
            if col not in out.columns:
                return np.zeros(n)
            return pd.to_numeric(out[col], errors="coerce").fillna(0).clip(lower=0).to_numpy(dtype=float)

        prompt, completion = tokens("prompt_tokens"), tokens("completion_tokens")
        cached = np.minimum(tokens("cached_tokens"), prompt)
        idx = codes
        r_in, r_ca, r_out = in_r[idx], ca_r[idx], out_r[idx]
        priced = ok[idx] & ~(np.isnan(r_out) & (completion > 0))  # output tokens with no output price
        r_out = np.where(np.isnan(r_out), 0.0, r_out)
        input_cost = (prompt - cached) * r_in / 1e6
        cached_cost = cached * r_ca / 1e6
        output_cost = completion * r_out / 1e6
        nan = np.nan
        out["input_cost"] = np.where(priced, input_cost, nan)
        out["cached_cost"] = np.where(priced, cached_cost, nan)
        out["output_cost"] = np.where(priced, output_cost, nan)
        out["cost"] = np.where(priced, input_cost + cached_cost + output_cost, nan)
        out["priced"] = priced
        labels = np.array(label, dtype=object)
        no_out_labels = np.array([f"unpriced: no output price for {k}" for k in label], dtype=object)
        keys_arr = np.where(ok[idx] & ~priced, no_out_labels[idx], labels[idx]) if m else np.array([], dtype=object)
        out["price_key"] = keys_arr
        out["billing"] = np.where(~priced, "unpriced", np.where(ptu[idx], "provisioned", "tokens"))
        return out
