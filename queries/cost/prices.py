"""The price book: what one token (or one PTU-hour) costs, per model, version, SKU and region.

Where prices come from, in order of precedence:

1. the user's override file (`prices.overrides_file`, CSV; see `load_overrides`), field by field;
2. the newest snapshot written by `aoai-lens prices refresh` (`<data_dir>/prices/retail-YYYY-MM-DD.json`);
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
("1K" or "1M" tokens, "1 Hour" or "1/Hour"), the price per region from the row with the latest
effective date that has started. tests/queries/test_prices.py shows each shortcoming on the demo models.

The API the cost code uses::

    book = PriceBook.load(settings)              # raises ConfigError for a bad override file
    price = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "eastus")
    price.input_per_1m, price.cached_input_per_1m, price.output_per_1m  # USD per 1M tokens, or None
    price.ptu_per_hour                          # USD per PTU-hour, for *ProvisionedManaged SKUs
    price.source                                # "bundled" | "refreshed" | "override"
    price.key                                   # what matched, e.g. "gpt-4o 1120 · Global · eastus"
    priced = book.price_usage(frame)            # frame: model, version, sku, region,
                                                #        prompt_tokens, cached_tokens, completion_tokens

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

from queries.config import Settings
from queries.cost.overrides import Override, load_overrides
from queries.cost.retail import newest_snapshot
from queries.cost.skus import BATCH_SHARE, SKUS, VERSION_TAG, Sku, version_tag
from queries.errors import ConfigError

USAGE_COLUMNS = ("model", "version", "sku", "region", "prompt_tokens", "cached_tokens", "completion_tokens")


_PTU_METER = re.compile(r"^Provisioned Managed (Global|Data Zone|Regional) Unit$", re.I)
_PTU_SCOPES = {"global": "global", "data zone": "data_zone", "regional": "regional"}
_KIND = {"input": "input", "cache_read": "cached", "output": "output"}  # the token kinds we price
_SCOPE = {"global": "global", "data_zone": "data_zone", "regional": "regional"}
# Meter-name tokens of things that are not inference on a deployed base model (fine-tuning, its
# hosting and graders, developer-tier): they would otherwise share a model id with the base model.
_NOT_INFERENCE = {"ft", "rft", "dev", "trng", "training", "hstng", "hosting", "grader", "grdr", "mdl", "model"}


def unit_quantity(unit_of_measure: str) -> tuple[str, float] | None:
    """What one price row is for: ("tokens", 1000) for "1K", ("tokens", 1e6) for "1M", ("hours", 1) for
    "1 Hour" and "1/Hour"; None for units a token or PTU price cannot use ("1/Month", "1 Second", ...)."""
    unit = (unit_of_measure or "").strip().lower().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)(?:tokens?)?", unit)
    if m and m.group(2):
        return "tokens", float(m.group(1)) * (1000.0 if m.group(2) == "k" else 1_000_000.0)
    m = re.fullmatch(r"(\d+)?/?hours?", unit)
    if m:
        return "hours", float(m.group(1) or 1)
    return None


@dataclass(frozen=True)
class Rate:
    value: float  # USD per 1M tokens, or per PTU-hour
    effective: str  # YYYY-MM-DD
    meter: str


@dataclass
class Catalogue:
    """A snapshot normalised into rates per (model, version tag, scope, mode, kind) and region."""

    source: str  # bundled | refreshed
    label: str  # where it came from, for people
    tokens: dict[tuple[str, str | None, str, str, str], dict[str, Rate]] = field(default_factory=dict)
    ptu: dict[str, dict[str, Rate]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # same slot, same date, different price

    def models(self) -> list[str]:
        return sorted({k[0] for k in self.tokens})

    def tags(self, model: str) -> set[str | None]:
        return {k[1] for k in self.tokens if k[0] == model}


def _clean(value: float) -> float:
    """Drop binary noise from unit conversion (0.0025 per 1K → 2.5 per 1M, not 2.5000000000000004)."""
    return float(f"{value:.12g}")


def _put(slot: dict[str, Rate], region: str, rate: Rate, as_of: str, conflicts: list[str], what: str) -> None:
    if rate.effective > as_of:
        return  # announced, not yet billed
    old = slot.get(region)
    if old is None or rate.effective > old.effective:
        slot[region] = rate
    elif rate.effective == old.effective and rate.value != old.value:
        conflicts.append(f"{what} {region}: {old.meter} {old.value} vs {rate.meter} {rate.value}")
        if rate.value > old.value:  # never under-state a cost on a tie
            slot[region] = rate


def normalise(items: Iterable[dict[str, Any]], source: str, label: str, as_of: str | None = None) -> Catalogue:
    """Turn Retail Prices rows (grouped with `regions`, or raw with `armRegionName`) into a Catalogue."""
    today = as_of or datetime.now(UTC).strftime("%Y-%m-%d")
    cat = Catalogue(source=source, label=label)
    for item in items:
        meter = str(item.get("meterName") or "")
        product = str(item.get("productName") or "")
        price = item.get("retailPrice")
        unit = unit_quantity(str(item.get("unitOfMeasure") or ""))
        if not meter or not isinstance(price, int | float) or price <= 0 or unit is None:
            continue
        if item.get("type", "Consumption") != "Consumption":
            continue
        regions = item.get("regions") or [item.get("armRegionName") or ""]
        effective = str(item.get("effectiveStartDate") or "")[:10]
        what, per = unit
        if what == "hours":
            m = _PTU_METER.match(meter.strip())
            if m and product.startswith("Azure OpenAI"):
                slot = cat.ptu.setdefault(_PTU_SCOPES[m.group(1).lower()], {})
                rate = Rate(_clean(float(price) / per), effective, meter)
                for region in regions:
                    _put(slot, str(region).lower(), rate, today, cat.conflicts, f"PTU {m.group(1)}")
            continue
        words = set(re.split(r"[\s\-_/]+", meter.lower()))
        if words & _NOT_INFERENCE:
            continue
        key = parse_meter_name(meter, product)
        if key is None or key.context.value != "short" or key.kind.value not in _KIND:
            continue
        tag_match = VERSION_TAG.search(meter)
        tag = tag_match.group(0) if tag_match else None
        model = key.model
        if tag:
            model = re.sub(rf"-?{tag}(?=-|$)", "", model) or model
        slot_key = (model, tag, _SCOPE[key.deployment.value], key.mode.value, _KIND[key.kind.value])
        rate = Rate(_clean(float(price) * 1_000_000.0 / per), effective, meter)
        slot = cat.tokens.setdefault(slot_key, {})
        for region in regions:
            _put(slot, str(region).lower(), rate, today, cat.conflicts, " ".join(str(p) for p in slot_key))
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
    return normalise(payload["items"], "bundled", label, today)


@lru_cache(maxsize=8)
def _load_refreshed(path: str, mtime_ns: int, today: str) -> Catalogue:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    label = f"refreshed snapshot {path} (fetched {str(payload.get('fetched_at', '?'))[:19]})"
    return normalise(payload.get("items", []), "refreshed", label, today)


def load_catalogue(data_dir: Path, today: str | None = None) -> Catalogue:
    """The newest refreshed snapshot under `<data_dir>/prices`, else the bundled one."""
    day = today or datetime.now(UTC).strftime("%Y-%m-%d")
    newest = newest_snapshot(data_dir / "prices")
    if newest is not None:
        try:
            return _load_refreshed(str(newest), newest.stat().st_mtime_ns, day)
        except (OSError, ValueError) as e:
            raise ConfigError([f"{newest}: cannot read the price snapshot: {e}"]) from None
    return _load_bundled(day)


# ---------------------------------------------------------------------------------------------------
# Overrides


# ---------------------------------------------------------------------------------------------------
# The book


@dataclass(frozen=True)
class Price:
    """USD prices for one (model, version, sku, region); None where a price does not apply."""

    input_per_1m: float | None
    cached_input_per_1m: float | None
    output_per_1m: float | None
    ptu_per_hour: float | None
    source: str  # bundled | refreshed | override
    key: str  # what matched, for people and for price_key


def _at(rates: dict[str, Rate] | None, region: str) -> tuple[Rate | None, str]:
    """The rate in `region`; else the one rate every listed region agrees on; else None."""
    if not rates:
        return None, ""
    if region in rates:
        return rates[region], region
    values = {r.value for r in rates.values()}
    if len(values) == 1:
        return next(iter(rates.values())), "all regions"
    return None, ""


def _text(value: Any) -> str:
    return (
        ""
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA
        else str(value).strip()
    )


def _fmt_tag(tag: str | None) -> str:
    return f" {tag}" if tag else ""


class PriceBook:
    def __init__(self, catalogue: Catalogue, overrides: Iterable[Override] = (), discount_pct: float = 0.0):
        self.catalogue = catalogue
        self.overrides = list(overrides)
        self.discount_pct = float(discount_pct)
        self._factor = 1.0 - self.discount_pct / 100.0

    @classmethod
    def load(cls, settings: Settings) -> PriceBook:
        cat = load_catalogue(settings.data_dir)
        overrides = load_overrides(settings.prices.overrides_file) if settings.prices.overrides_file else []
        return cls(cat, overrides, settings.prices.discount_pct)

    def fingerprint(self) -> str:
        """What decides this book's prices, for the ledger's build version: the snapshot it came from,
        the overrides and the discount."""
        overrides = sorted(
            f"{o.model}|{o.version}|{o.sku}|{o.region}|{sorted(o.prices.items())}|{o.net}" for o in self.overrides
        )
        return f"{self.catalogue.source}:{self.catalogue.label}|{self.discount_pct:g}|{overrides}"

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
        self, model: str, version: str | None, sku: Sku, region: str
    ) -> tuple[dict[str, float | None], str, str]:
        tag, ok, why = self._resolve_tag(model, version)
        if not ok:
            return {}, "", why
        cat = self.catalogue

        def rates(mode: str) -> dict[str, tuple[Rate | None, str]]:
            return {
                k: _at(cat.tokens.get((model, tag, sku.scope, mode, k)), region) for k in ("input", "cached", "output")
            }

        found = rates(sku.mode)
        share = 1.0
        note = sku.label
        if sku.mode == "batch" and found["input"][0] is None:
            found = rates("standard")
            share = BATCH_SHARE
            note = f"{sku.label} (50% of {SKUS[sku.scope.replace('_', '') + 'standard'].label})"
        first = found["input"]
        if first[0] is None:
            listed = sorted(cat.tokens.get((model, tag, sku.scope, sku.mode, "input"), {}))
            if not listed:
                return {}, "", f"no {sku.label} price for {model}{_fmt_tag(tag)}"
            shown = ", ".join(listed[:6]) + (", ..." if len(listed) > 6 else "")
            return (
                {},
                "",
                f"no {sku.label} price for {model}{_fmt_tag(tag)} in {region or '(no region)'}; priced in {shown}",
            )
        out: dict[str, float | None] = {}
        for k, (rate, _) in found.items():
            out[k] = rate.value * share if rate else None
        return out, f"{model}{_fmt_tag(tag)} · {note} · {first[1]}", ""

    def _book_ptu(self, sku: Sku, region: str) -> tuple[float | None, str, str]:
        rate, where = _at(self.catalogue.ptu.get(sku.scope), region)
        if rate is None:
            return None, "", f"no {sku.label} hourly price in {region or '(no region)'}"
        return rate.value, f"{sku.label} · {where}", ""

    def explain(self, model: str, version: str | None, sku: str, region: str | None) -> tuple[Price | None, str]:
        """`lookup`, plus why there is no price when there is none."""
        name = (model or "").strip().lower()
        reg = (region or "").strip().lower()
        info = SKUS.get((sku or "").strip().lower())
        if info is None:
            return None, f"unknown sku {sku!r}"
        ov = max(
            (o for o in self.overrides if o.matches(name, version, info.name, reg)),
            key=lambda o: o.specificity,
            default=None,
        )
        f = self._factor
        if info.mode == "provisioned":
            value, key, why = self._book_ptu(info, reg)
            source = self.catalogue.source
            if value is not None:
                value *= f
            if ov is not None:
                value = ov.prices["ptu_per_hour"] * (1.0 if ov.net else f)
                key, source = f"override {ov.where}", "override"
            if value is None:
                return None, why
            return Price(None, None, None, value, source, self._discounted(key)), ""
        book, key, why = self._book_tokens(name, version, info, reg)
        fields = {"input": book.get("input"), "cached": book.get("cached"), "output": book.get("output")}
        for k, v in fields.items():
            fields[k] = None if v is None else v * f
        source = self.catalogue.source
        if ov is not None:
            for col, k in (("input_per_1m", "input"), ("cached_input_per_1m", "cached"), ("output_per_1m", "output")):
                if col in ov.prices:
                    fields[k] = ov.prices[col] * (1.0 if ov.net else f)
            key = f"override {ov.where}" + (f" over {key}" if key else "")
            source = "override"
        if fields["input"] is None:
            return None, why or f"the override at {ov.where if ov else '?'} gives no input price and the book has none"
        return Price(fields["input"], fields["cached"], fields["output"], None, source, self._discounted(key)), ""

    def _discounted(self, key: str) -> str:
        return f"{key} · −{self.discount_pct:g}%" if self.discount_pct else key

    def lookup(self, model: str, version: str | None, sku: str, region: str | None) -> Price | None:
        return self.explain(model, version, sku, region)[0]

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
