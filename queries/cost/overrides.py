"""The price override file (`prices.overrides_file`): negotiated or custom prices as CSV, validated
when the configuration is loaded, so a bad row refuses to start with `file:line: problem`."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queries.cost.skus import SKUS, version_tag
from queries.errors import ConfigError

OVERRIDE_COLUMNS = (
    "model",
    "version",
    "sku",
    "region",
    "input_per_1m",
    "cached_input_per_1m",
    "output_per_1m",
    "ptu_per_hour",
    "net",
)
_PRICE_COLUMNS = OVERRIDE_COLUMNS[4:8]


@dataclass(frozen=True)
class Override:
    where: str  # file:line
    model: str
    version: str | None  # a version tag ("1120") or a literal version ("1"); None = any
    sku: str  # canonical sku name
    region: str | None  # None = any
    prices: dict[str, float]  # the columns given
    net: bool  # already net of the discount

    def matches(self, model: str, version: str | None, sku: str, region: str) -> bool:
        if self.model != model or self.sku != sku:
            return False
        if self.version is not None and self.version != _version_key(version):
            return False
        return self.region is None or self.region == region

    @property
    def specificity(self) -> int:
        return (self.version is not None) * 2 + (self.region is not None)


def _version_key(version: str | None) -> str | None:
    v = (version or "").strip().lower()
    if v in ("", "*"):
        return None
    return version_tag(v) or v


def load_overrides(path: Path) -> list[Override]:
    """Read the override CSV; raise ConfigError with one `file:line: problem` per bad row.

    Columns: model, sku (required), version, region (empty or * = any), input_per_1m,
    cached_input_per_1m, output_per_1m (USD per 1M tokens), ptu_per_hour (USD per PTU-hour, for
    provisioned SKUs), net (true: the price is already net of discount_pct). Lines starting with # are
    comments.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read the price override file: {e.strerror}"]) from None
    lines = [
        (no, line)
        for no, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    problems: list[str] = []
    header_no, header_line = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_line]))]
    unknown = [h for h in header if h not in OVERRIDE_COLUMNS]
    if unknown:
        problems.append(
            f"{path}:{header_no}: unknown column(s) {', '.join(unknown)}; known: {', '.join(OVERRIDE_COLUMNS)}"
        )
    for need in ("model", "sku"):
        if need not in header:
            problems.append(f"{path}:{header_no}: the header needs a {need!r} column")
    if problems:
        raise ConfigError(problems)
    out: list[Override] = []
    seen: dict[tuple[Any, ...], str] = {}
    for no, line in lines[1:]:
        where = f"{path}:{no}"
        values = next(csv.reader([line]))
        if len(values) > len(header):
            problems.append(f"{where}: {len(values)} values for {len(header)} columns")
            continue
        row = {h: v.strip() for h, v in zip(header, values, strict=False)}
        bad: list[str] = []
        model = row.get("model", "").lower()
        if not model:
            bad.append("model is empty")
        sku = SKUS.get(row.get("sku", "").lower())
        if sku is None:
            bad.append(f"unknown sku {row.get('sku', '')!r}; one of {', '.join(s.name for s in SKUS.values())}")
        prices: dict[str, float] = {}
        for col in _PRICE_COLUMNS:
            raw = row.get(col, "")
            if not raw:
                continue
            try:
                value = float(raw.removeprefix("$"))
            except ValueError:
                bad.append(f"{col} {raw!r} is not a number")
                continue
            if not math.isfinite(value) or value < 0:
                bad.append(f"{col} {raw!r} must be a number ≥ 0")
                continue
            prices[col] = value
        net_raw = row.get("net", "").lower()
        if net_raw not in ("", "true", "false", "yes", "no", "1", "0"):
            bad.append(f"net {row.get('net')!r} must be true or false")
        if sku is not None:
            if sku.mode == "provisioned" and set(prices) - {"ptu_per_hour"}:
                bad.append(f"{sku.name} is billed per PTU-hour: give ptu_per_hour only")
            if sku.mode != "provisioned" and "ptu_per_hour" in prices:
                bad.append(f"ptu_per_hour applies to provisioned SKUs, not {sku.name}")
        if not prices and not bad:
            bad.append("no price given")
        if bad:
            problems.extend(f"{where}: {b}" for b in bad)
            continue
        assert sku is not None
        region = row.get("region", "").lower()
        ov = Override(
            where=where,
            model=model,
            version=_version_key(row.get("version")),
            sku=sku.name,
            region=None if region in ("", "*") else region,
            prices=prices,
            net=net_raw in ("true", "yes", "1"),
        )
        ident = (ov.model, ov.version, ov.sku, ov.region)
        if ident in seen:
            problems.append(f"{where}: duplicates the row at {seen[ident]}")
            continue
        seen[ident] = where
        out.append(ov)
    if problems:
        raise ConfigError(problems)
    return out
