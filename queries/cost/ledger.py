"""The hourly cost ledger's rows: what every cost figure is computed from.

One row per hour × resource × deployment × model/version × deployment type × meter × attribution
(feature, team, cost center, caller object id or IP, rule, method) × probe flag, with its quantity,
unit, unit price, list and effective cost, the price's source and the version of the rules and prices
that built it. Pure functions over frames: `build_rows` prices and attributes an hour range from the
cost query's answer, the metric tokens and the deployments; `queries.cost.ledger_store` keeps closed
hours as files and computes open ones on read.

Meters: ``input`` (uncached prompt tokens), ``cached_input``, ``output`` (of which reasoning tokens, in
`ReasoningTokens`), ``embeddings`` (an embedding model's input), and ``ptu_hour`` (a provisioned
deployment's PTU-hours, shared by consumed share; the unconsumed part is the ``ptu idle`` line).
Token rows of a provisioned deployment carry their quantities at a unit price of 0: its money is on
its ``ptu_hour`` rows. A row nothing prices has `Priced` false and NaN costs, never 0.

`Requests` is counted once per request, on its ``input`` (or ``embeddings``) row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from queries.config import AttributionRule
from queries.cost import attribution, ptu
from queries.cost.attribution import PROBES, PTU_IDLE, TokenHealth

METER_INPUT, METER_CACHED, METER_OUTPUT, METER_EMBEDDINGS, METER_PTU = (
    "input",
    "cached_input",
    "output",
    "embeddings",
    "ptu_hour",
)
TOKEN_METERS = (METER_INPUT, METER_CACHED, METER_OUTPUT, METER_EMBEDDINGS)
LEDGER_VERSION = "1"  # bump when the build itself changes what it writes

TEXT_COLUMNS = [
    "Resource",
    "Deployment",
    "Model",
    "Version",
    "Sku",
    "Region",
    "Meter",
    "Feature",
    "Team",
    "CostCenter",
    "ObjectId",
    "CallerIP",
    "Rule",
    "Method",
    "Category",
    "Unit",
    "PriceSource",
    "PriceKey",
    "BuildVersion",
]
NUMBER_COLUMNS = ["Requests", "Quantity", "ReasoningTokens", "UnitPrice", "ListUnitPrice", "ListCost", "EffectiveCost"]
LEDGER_COLUMNS = ["Hour", *TEXT_COLUMNS[:15], "IsProbe", *NUMBER_COLUMNS, "Priced", *TEXT_COLUMNS[15:]]


def empty_ledger() -> pd.DataFrame:
    dtypes: dict[str, Any] = {"Hour": "datetime64[us, UTC]", "IsProbe": bool, "Priced": bool}
    dtypes |= dict.fromkeys(NUMBER_COLUMNS, "float64")
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in LEDGER_COLUMNS})


def build_version(rules: list[AttributionRule], book: Any) -> str:
    """A short hash of what decides the money: the attribution rules, the price book's source, its
    overrides and discount, and the ledger's own version. A closed hour built under another version is
    rebuilt only on purpose (`cost ledger rebuild`)."""
    parts = {
        "ledger": LEDGER_VERSION,
        "rules": [r.model_dump(mode="json") for r in rules],
        "prices": getattr(book, "fingerprint", lambda: repr(type(book)))(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class BuildHealth:
    """What a build could not do cleanly: shown by `cost ledger status` and on Data health."""

    tokens: TokenHealth = field(default_factory=TokenHealth)
    over_capacity_tokens: float = 0.0  # consumed beyond a provisioned deployment's capacity in an hour
    no_deployment_record: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)  # "model (sku)" with no price

    def merge(self, other: BuildHealth) -> None:
        t, o = self.tokens, other.tokens
        t.unreadable_usage += o.unreadable_usage
        t.unmatched_requests += o.unmatched_requests
        t.unfilled_requests += o.unfilled_requests
        t.bytes_tokens += o.bytes_tokens
        t.metrics_below_usage += o.metrics_below_usage
        self.over_capacity_tokens += other.over_capacity_tokens
        self.no_deployment_record = sorted(set(self.no_deployment_record) | set(other.no_deployment_record))
        self.unpriced = sorted(set(self.unpriced) | set(other.unpriced))

    def as_dict(self) -> dict[str, Any]:
        t = self.tokens
        return {
            "unreadable_usage": t.unreadable_usage,
            "unmatched_requests": t.unmatched_requests,
            "unfilled_requests": t.unfilled_requests,
            "bytes_tokens": round(t.bytes_tokens, 3),
            "metrics_below_usage": t.metrics_below_usage[:50],
            "over_capacity_tokens": round(self.over_capacity_tokens, 3),
            "no_deployment_record": self.no_deployment_record,
            "unpriced": self.unpriced,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildHealth:
        h = cls()
        h.tokens.unreadable_usage = int(d.get("unreadable_usage", 0))
        h.tokens.unmatched_requests = int(d.get("unmatched_requests", 0))
        h.tokens.unfilled_requests = int(d.get("unfilled_requests", 0))
        h.tokens.bytes_tokens = float(d.get("bytes_tokens", 0.0))
        h.tokens.metrics_below_usage = list(d.get("metrics_below_usage", []))
        h.over_capacity_tokens = float(d.get("over_capacity_tokens", 0.0))
        h.no_deployment_record = list(d.get("no_deployment_record", []))
        h.unpriced = list(d.get("unpriced", []))
        return h


def _deployment_info(deployments: pd.DataFrame) -> pd.DataFrame:
    d = deployments.copy()
    d["Resource"] = d["Resource"].astype(str).str.lower()
    d["Region"] = d["Location"].fillna("").astype(str)
    return d.rename(columns={"Model": "DepModel", "Version": "DepVersion"})[
        ["Resource", "Deployment", "Sku", "Region", "DepModel", "DepVersion"]
    ]


def is_embedding(model: str) -> bool:
    return "embedding" in str(model).lower()


def _token_meter_rows(tok: pd.DataFrame, book: Any) -> pd.DataFrame:
    """Explode priced caller rows into input / cached_input / output (or embeddings) meter rows."""
    keys = tok[["Model", "Version", "Sku", "Region"]].drop_duplicates()
    factor = 1.0 - float(getattr(book, "discount_pct", 0.0) or 0.0) / 100.0
    info = []
    for model, version, sku, region in keys.itertuples(index=False):
        price, why = book.explain(model, version or None, sku, region)
        if price is None:
            info.append((model, version, sku, region, False, False, np.nan, np.nan, np.nan, "", f"unpriced: {why}"))
            continue
        provisioned = price.ptu_per_hour is not None
        if provisioned:
            rates = (0.0, 0.0, 0.0)
        else:
            cached = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
            rates = (price.input_per_1m, cached, price.output_per_1m if price.output_per_1m is not None else np.nan)
        key = f"provisioned: billed per PTU-hour ({price.key})" if provisioned else price.key
        info.append((model, version, sku, region, True, provisioned, *[r / 1e6 for r in rates], price.source, key))
    prices = pd.DataFrame(
        info,
        columns=[
            "Model",
            "Version",
            "Sku",
            "Region",
            "Known",
            "Provisioned",
            "In",
            "Ca",
            "Out",
            "PriceSource",
            "PriceKey",
        ],
    )
    t = tok.merge(prices, on=["Model", "Version", "Sku", "Region"], how="left")
    prompt = t["PromptTokens"].clip(lower=0)
    cached = np.minimum(t["CachedTokens"].clip(lower=0), prompt)
    embed = t["Model"].map(is_embedding).astype(bool)
    out = []
    for meter, qty, rate, reasoning, requests in (
        (METER_INPUT, prompt - cached, t["In"], 0.0, t["Requests"]),
        (METER_CACHED, cached, t["Ca"], 0.0, 0.0),
        (METER_OUTPUT, t["CompletionTokens"].clip(lower=0), t["Out"], t["ReasoningTokens"].clip(lower=0), 0.0),
    ):
        part = t.assign(
            Meter=np.where(embed & (meter == METER_INPUT), METER_EMBEDDINGS, meter),
            Quantity=qty.astype("float64"),
            ReasoningTokens=reasoning,
            Requests=requests,
            UnitPrice=rate.astype("float64"),
        )
        keep = (part["Quantity"] > 0) | (part["Requests"] > 0) if meter == METER_INPUT else part["Quantity"] > 0
        out.append(part[keep])
    rows = pd.concat(out, ignore_index=True) if out else t.iloc[0:0]
    rows["Priced"] = rows["Known"].fillna(False).astype(bool) & rows["UnitPrice"].notna()
    no_output = rows["Known"].fillna(False).astype(bool) & rows["UnitPrice"].isna()
    rows.loc[no_output, "PriceKey"] = "unpriced: no output price for " + rows.loc[no_output, "PriceKey"].astype(str)
    # Requests with no tokens at all (refused calls: a 404 for a deployment that no longer exists, 400s)
    # cost nothing whatever the price: priced at 0, never unpriced (there is nothing to put a price on)
    nothing = (rows["Quantity"] <= 0) & ~rows["Priced"]
    if nothing.any():
        rows.loc[nothing, "Priced"] = True
        rows.loc[nothing, "UnitPrice"] = 0.0
        rows.loc[nothing, "PriceKey"] = "no tokens: nothing to price"
    rows["Unit"] = "tokens"
    rows["ListUnitPrice"] = np.where(rows["Provisioned"].fillna(False).astype(bool), 0.0, rows["UnitPrice"] / factor)
    rows["EffectiveCost"] = np.where(rows["Priced"], rows["Quantity"] * rows["UnitPrice"], np.nan)
    rows["ListCost"] = np.where(rows["Priced"], rows["Quantity"] * rows["ListUnitPrice"], np.nan)
    rows["PriceSource"] = rows["PriceSource"].fillna("")
    rows["PriceKey"] = rows["PriceKey"].fillna("unpriced")
    return rows


def _ptu_rows(
    rows: pd.DataFrame, ptu_deps: pd.DataFrame, start: datetime, end: datetime, factor: float, health: BuildHealth
) -> pd.DataFrame:
    """Each provisioned deployment's hours: the used part shared by consumed share, the rest idle.
    Utilisation is capped at 100% per hour; what was consumed beyond capacity is counted, never billed
    twice and never a negative idle line."""
    parts = []
    for dep in ptu_deps.itertuples(index=False):
        price = float(dep.PtuPerHour) if dep.PtuPerHour is not None else np.nan
        since = ptu.active_from(dep, start)
        if not np.isfinite(price) or pd.Timestamp(since) >= pd.Timestamp(end):
            continue
        grid = ptu.hour_grid(since, end)
        mine = rows[(rows["Resource"] == dep.Resource) & (rows["Deployment"] == dep.Deployment)].copy()
        mine["Consumed"] = ptu.consumed(mine) if not mine.empty else pd.Series(dtype="float64")
        per_hour = mine.groupby("Hour")["Consumed"].sum()
        g = grid.rename(columns={"TimeGenerated": "Hour"}).set_index("Hour")
        g["PtuHours"] = float(dep.Capacity) * g["Fraction"]
        g["CapacityTokens"] = float(dep.TpmLimit) * 60.0 * g["Fraction"]
        g["Consumed"] = per_hour.reindex(g.index).fillna(0.0)
        util = np.where(
            g["CapacityTokens"] > 0,
            (g["Consumed"] / g["CapacityTokens"].where(g["CapacityTokens"] > 0, 1.0)).clip(upper=1.0),
            (g["Consumed"] > 0).astype(float),
        )
        g["Util"] = util
        health.over_capacity_tokens += float((g["Consumed"] - g["CapacityTokens"]).clip(lower=0).sum())
        common = {
            "Resource": dep.Resource,
            "Deployment": dep.Deployment,
            "Model": dep.Model,
            "Version": dep.Version,
            "Sku": dep.Sku,
            "Region": dep.Region,
            "Meter": METER_PTU,
            "Unit": "PTU-hours",
            "UnitPrice": price,
            "ListUnitPrice": price / factor,
            "Priced": True,
            "PriceSource": getattr(dep, "PriceSource", "") or "",
            "PriceKey": f"{dep.Sku} · {price:g}/PTU-hour",
            "Requests": 0.0,
            "ReasoningTokens": 0.0,
        }
        users = mine[mine["Consumed"] > 0]
        if not users.empty:
            total = users.groupby("Hour")["Consumed"].transform("sum")
            share = users["Consumed"] / total
            used_hours = users["Hour"].map(g["PtuHours"] * g["Util"]).fillna(0.0)
            used = users.assign(**{k: v for k, v in common.items() if k not in ("Model", "Version")})
            used["Quantity"] = used_hours.to_numpy() * share.to_numpy()
            parts.append(used[used["Quantity"] > 0])
        idle = g[g["Util"] < 1.0].reset_index()
        if not idle.empty:
            parts.append(
                pd.DataFrame(
                    {
                        "Hour": idle["Hour"],
                        **common,
                        "Feature": "",
                        "Team": "",
                        "CostCenter": "",
                        "ObjectId": "",
                        "CallerIP": "",
                        "Rule": "",
                        "Method": PTU_IDLE,
                        "Category": PTU_IDLE,
                        "Quantity": idle["PtuHours"] * (1.0 - idle["Util"]),
                    }
                )
            )
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out["EffectiveCost"] = out["Quantity"] * out["UnitPrice"]
    out["ListCost"] = out["Quantity"] * out["ListUnitPrice"]
    return out


def build_rows(
    usage: pd.DataFrame,
    metrics: pd.DataFrame,
    deployments: pd.DataFrame,
    rules: list[AttributionRule],
    book: Any,
    start: datetime,
    end: datetime,
    *,
    probe_object_id: str | None = None,
    version: str = "",
) -> tuple[pd.DataFrame, BuildHealth]:
    """The ledger rows of [start, end) (whole hours) and what the build could not do cleanly."""
    health = BuildHealth()
    tokens = attribution.token_rows(usage, metrics, deployments, health=health.tokens)
    rows = attribution.attribute(tokens, rules, probe_object_id)
    info = _deployment_info(deployments)
    rows = rows.merge(info, on=["Resource", "Deployment"], how="left")
    # a deployment the management plane no longer lists still ran in its account's region
    account_region = info[info["Region"] != ""].groupby("Resource")["Region"].first()
    rows["Region"] = rows["Region"].fillna(rows["Resource"].map(account_region))
    # a deployment the management plane no longer lists (retired, still called) only matters with tokens:
    # its refused calls carry none and cost nothing; its tokens, if any, are unpriced (never $0)
    missing = rows["Sku"].isna() & ((rows["PromptTokens"] + rows["CompletionTokens"]) > 0)
    if missing.any():
        health.no_deployment_record = sorted(set(rows.loc[missing, "Deployment"].astype(str)))
    rows["Sku"] = rows["Sku"].fillna("").astype(str)
    rows["Region"] = rows["Region"].fillna("").astype(str)
    rows["Model"] = rows["Model"].where(rows["Model"].astype(str) != "", rows["DepModel"]).fillna("").astype(str)
    rows["Version"] = (
        rows["Version"].where(rows["Version"].astype(str) != "", rows["DepVersion"]).fillna("").astype(str)
    )
    rows = rows.drop(columns=["DepModel", "DepVersion"])
    rows["Hour"] = pd.to_datetime(rows["TimeGenerated"], utc=True).dt.floor("h")
    factor = 1.0 - float(getattr(book, "discount_pct", 0.0) or 0.0) / 100.0

    token_meters = _token_meter_rows(rows, book) if not rows.empty else pd.DataFrame()
    ptu_deps = ptu.ptu_deployments_frame(deployments, book)
    ptu_part = _ptu_rows(rows, ptu_deps, start, end, factor, health)
    parts = [p for p in (token_meters, ptu_part) if not p.empty]
    if not parts:
        return empty_ledger(), health
    out = pd.concat(parts, ignore_index=True)
    out["Hour"] = pd.to_datetime(out["Hour"], utc=True).astype("datetime64[us, UTC]")
    out = out[(out["Hour"] >= pd.Timestamp(start).floor("h")) & (out["Hour"] < pd.Timestamp(end))]
    out["IsProbe"] = out["Category"] == PROBES
    out["BuildVersion"] = version
    for c in TEXT_COLUMNS:
        out[c] = out[c].fillna("").astype(str) if c in out.columns else ""
    for c in NUMBER_COLUMNS:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype("float64")
    out["Priced"] = out["Priced"].fillna(False).astype(bool)
    unpriced = out[~out["Priced"]]
    health.unpriced = sorted(
        {f"{m or '?'} ({s or '?'})" for m, s in zip(unpriced["Model"], unpriced["Sku"], strict=True)}
    )
    # one row per key: a caller's request rows and shared-by-bytes rows stay apart (Method differs)
    keys = ["Hour", *TEXT_COLUMNS[:15], "IsProbe", "Priced", *TEXT_COLUMNS[15:]]
    sums = ["Requests", "Quantity", "ReasoningTokens", "ListCost", "EffectiveCost"]
    firsts = ["UnitPrice", "ListUnitPrice"]
    agg = out.groupby(keys, dropna=False, sort=True).agg(
        **{c: (c, "sum") for c in sums}, **{c: (c, "first") for c in firsts}
    )
    agg = agg.reset_index()
    agg.loc[~agg["Priced"], ["ListCost", "EffectiveCost"]] = np.nan
    return agg[LEDGER_COLUMNS].reset_index(drop=True), health
