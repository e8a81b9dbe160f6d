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
from queries.cost.prices import fine_tuned_base
from queries.cost.skus import SKUS

METER_INPUT, METER_CACHED, METER_OUTPUT, METER_EMBEDDINGS, METER_PTU, METER_ROUTER, METER_HOSTING = (
    "input",
    "cached_input",
    "output",
    "embeddings",
    "ptu_hour",
    "router_fee",
    "hosting_hour",
)
TOKEN_METERS = (METER_INPUT, METER_CACHED, METER_OUTPUT, METER_EMBEDDINGS, METER_ROUTER)
ROUTER_MODEL = "model-router"  # a deployment of this model routes each prompt to another model
LEDGER_VERSION = "2"  # bump when the build itself changes what it writes (2: effective-dated prices, reservations)

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


EPOCH = pd.Timestamp("1970-01-01", tz="UTC")
PRICE_COLUMNS = ["Known", "Provisioned", "In", "Ca", "Out", "PriceSource", "PriceKey"]


def _segments(book: Any, model: str, version: str, sku: str, region: str) -> list[tuple[Any, Any, str]]:
    """[(from day or None, price, why)]: the book's timeline when it has one, else one price for all time."""
    timeline = getattr(book, "timeline", None)
    if callable(timeline):
        return list(timeline(model, version or None, sku, region))
    price, why = book.explain(model, version or None, sku, region)
    return [(None, price, why)]


def _price_table(keys: pd.DataFrame, book: Any) -> pd.DataFrame:
    """One row per (model, version, sku, region) and price change (`From`): the rates in USD per token."""
    info = []
    for model, version, sku, region in keys.itertuples(index=False):
        for day, price, why in _segments(book, model, version, sku, region):
            since = EPOCH if day is None else pd.Timestamp(day, tz="UTC")
            if price is None:
                info.append(
                    (model, version, sku, region, since, False, False, np.nan, np.nan, np.nan, "", f"unpriced: {why}")
                )
                continue
            provisioned = price.ptu_per_hour is not None
            if provisioned:
                rates = (0.0, 0.0, 0.0)
            else:
                cached = price.cached_input_per_1m if price.cached_input_per_1m is not None else price.input_per_1m
                rates = (price.input_per_1m, cached, price.output_per_1m if price.output_per_1m is not None else np.nan)
            key = f"provisioned: billed per PTU-hour ({price.key})" if provisioned else price.key
            effective = getattr(price, "effective", "") or ""
            if effective and not provisioned:
                key = f"{key} · from {effective}"
            info.append(
                (model, version, sku, region, since, True, provisioned, *[r / 1e6 for r in rates], price.source, key)
            )
    table = pd.DataFrame(info, columns=["Model", "Version", "Sku", "Region", "From", *PRICE_COLUMNS])
    table["From"] = pd.to_datetime(table["From"], utc=True).astype("datetime64[ns, UTC]")
    return table


def _join_prices(tok: pd.DataFrame, book: Any) -> pd.DataFrame:
    """`tok` with the rates (PRICE_COLUMNS) in force at each row's hour for its (model, version, sku,
    region): one join on the key, then, where a price changed, a binary search of the row's hour among
    the key's change times (every key's first segment starts at EPOCH, so a search never leaves it)."""
    by = ["Model", "Version", "Sku", "Region"]
    prices = _price_table(tok[by].drop_duplicates(), book)
    if prices.empty or not prices.duplicated(by).any():
        return tok.merge(prices.drop(columns="From"), on=by, how="left")
    prices = prices.sort_values([*by, "From"], kind="stable").reset_index(drop=True)
    prices["_Code"] = prices.groupby(by, sort=False).ngroup().astype("int64")
    t = tok.merge(prices.drop_duplicates(by)[[*by, "_Code"]], on=by, how="left")
    hour = np.int64(3_600_000_000_000)
    span = np.int64(1 << 40)  # hours since 1970 stay far below this
    p_at = (prices["From"].astype("int64").to_numpy() - EPOCH.value) // hour
    t_at = (
        pd.to_datetime(t["Hour"], utc=True).astype("datetime64[ns, UTC]").astype("int64").to_numpy() - EPOCH.value
    ) // hour
    combined = prices["_Code"].to_numpy() * span + p_at  # sorted: by code, then by start
    idx = np.searchsorted(combined, t["_Code"].to_numpy() * span + t_at, side="right") - 1
    picked = prices.iloc[idx][PRICE_COLUMNS].reset_index(drop=True)
    t = t.drop(columns="_Code").reset_index(drop=True)
    for c in PRICE_COLUMNS:
        t[c] = picked[c].to_numpy()
    return t


def _router_rows(t: pd.DataFrame, book: Any) -> pd.DataFrame:
    """The model router's fee: a deployment of `model-router` bills its input tokens (cached included)
    at the router's price per 1M input tokens, besides the routed model's own tokens. The price is the
    input price of the model `model-router` in the book (an override row, or a meter once Azure lists
    one); with none, the rows are unpriced, never $0."""
    if "RouterVersion" not in t.columns:
        return t.iloc[0:0]
    mine = t[(t["RouterVersion"].astype(str) != "") & (t["PromptTokens"] > 0)]
    if mine.empty:
        return t.iloc[0:0]
    base = mine.drop(columns=[c for c in PRICE_COLUMNS if c in mine.columns]).assign(
        Model=ROUTER_MODEL, Version=mine["RouterVersion"].astype(str)
    )
    r = _join_prices(base, book)
    return r.assign(
        Meter=METER_ROUTER,
        Quantity=r["PromptTokens"].clip(lower=0).astype("float64"),
        ReasoningTokens=0.0,
        Requests=0.0,
        UnitPrice=np.where(r["Provisioned"].fillna(False).astype(bool), np.nan, r["In"]).astype("float64"),
    )


def _token_meter_rows(tok: pd.DataFrame, book: Any) -> pd.DataFrame:
    """Explode priced caller rows into input / cached_input / output (or embeddings) meter rows, each
    hour at the prices in force then (the book's timeline: a price change mid-month prices the hours
    before and after it differently)."""
    factor = 1.0 - float(getattr(book, "discount_pct", 0.0) or 0.0) / 100.0
    t = _join_prices(tok, book)
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
    out.append(_router_rows(t, book))
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


def _price_ptu(part: pd.DataFrame, dep: Any, factor: float, share: float, res_price: float) -> list[pd.DataFrame]:
    """Price a deployment's PTU-hour rows hour by hour: the list price in force that hour; the share of
    its PTUs a reservation covers at the reservation's amortised price, on rows of their own that say so
    (`PriceSource` "reservation"), the rest at list."""
    lists = ptu.list_prices(dep, part["Hour"])
    list_text = pd.Series(lists, index=part.index).map(lambda v: f"{v:g}")
    source = getattr(dep, "PriceSource", "") or ""
    out = []
    if share < 1.0:
        at_list = part.assign(
            Quantity=part["Quantity"] * (1.0 - share),
            UnitPrice=lists,
            ListUnitPrice=lists / factor,
            Priced=np.isfinite(lists),
            PriceSource=source,
            PriceKey=f"{dep.Sku} · list " + list_text + "/PTU-hour",
        )
        out.append(at_list[at_list["Quantity"] > 0])
    if share > 0.0:
        term = {"P1M": "monthly", "P1Y": "yearly"}.get(str(dep.ReservationTerm), str(dep.ReservationTerm))
        if np.isfinite(res_price):
            price = np.full(len(part), res_price)
            key = pd.Series(
                f"reservation {dep.ReservationId} ({term}) · {res_price:g}/PTU-hour amortised", index=part.index
            )
        else:
            price = lists
            key = f"reservation {dep.ReservationId} ({term}) · no price configured: list " + list_text + "/PTU-hour"
        reserved = part.assign(
            Quantity=part["Quantity"] * share,
            UnitPrice=price,
            ListUnitPrice=lists / factor,
            Priced=np.isfinite(price),
            PriceSource="reservation",
            PriceKey=key,
        )
        out.append(reserved[reserved["Quantity"] > 0])
    return out


def _ptu_rows(
    rows: pd.DataFrame, ptu_deps: pd.DataFrame, start: datetime, end: datetime, factor: float, health: BuildHealth
) -> pd.DataFrame:
    """Each provisioned deployment's hours: the used part shared by consumed share, the rest idle.
    Utilisation is capped at 100% per hour; what was consumed beyond capacity is counted, never billed
    twice and never a negative idle line."""
    parts = []
    for dep in ptu_deps.itertuples(index=False):
        since = ptu.active_from(dep, start)
        if pd.Timestamp(since) >= pd.Timestamp(end):
            continue
        grid = ptu.hour_grid(since, end)
        lists = ptu.list_prices(dep, grid["TimeGenerated"])
        res_share, res_price = ptu.reserved_share(dep)
        if not np.isfinite(lists).any() and not (res_share >= 1.0 and np.isfinite(res_price)):
            continue
        dep_parts = []
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
            dep_parts.append(used[used["Quantity"] > 0])
        idle = g[g["Util"] < 1.0].reset_index()
        if not idle.empty:
            dep_parts.append(
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
        if dep_parts:
            parts.extend(_price_ptu(pd.concat(dep_parts, ignore_index=True), dep, factor, res_share, res_price))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out["EffectiveCost"] = np.where(out["Priced"], out["Quantity"] * out["UnitPrice"], np.nan)
    out["ListCost"] = out["Quantity"] * out["ListUnitPrice"]
    return out


def _hosting_rows(
    rows: pd.DataFrame,
    deployments: pd.DataFrame,
    rules: list[AttributionRule],
    probe_object_id: str | None,
    book: Any,
    start: datetime,
    end: datetime,
    factor: float,
) -> pd.DataFrame:
    """A fine-tuned model's hosting hours on a standard deployment (billed per hour deployed, used or
    not; the Developer tier has none): each hour at the hosting price in force then, shared by the
    hour's callers by their tokens; an hour nobody called goes to the rule that names the deployment
    (a deployment pattern), else unallocated. No hosting price listed: the hours are unpriced."""
    timeline = getattr(book, "timeline", None)
    if not callable(timeline) or deployments.empty:
        return pd.DataFrame()
    parts = []
    for dep in deployments.itertuples(index=False):
        sku = SKUS.get(str(dep.Sku).lower())
        if sku is None or sku.mode != "standard" or fine_tuned_base(str(dep.Model)) is None:
            continue
        region = str(getattr(dep, "Location", "") or "")
        since = ptu.active_from(dep, start)
        if pd.Timestamp(since) >= pd.Timestamp(end):
            continue
        grid = ptu.hour_grid(since, end).rename(columns={"TimeGenerated": "Hour"})
        line = [
            (ptu.EPOCH if day is None else pd.Timestamp(day, tz="UTC"), getattr(p, "hosting_per_hour", None))
            for day, p, _ in timeline(dep.Model, dep.Version, dep.Sku, region)
        ]
        holder = type("H", (), {"PtuTimeline": line, "PtuPerHour": None})()
        grid["Price"] = ptu.list_prices(holder, grid["Hour"])
        resource = str(dep.Resource).lower()
        mine = rows[(rows["Resource"] == resource) & (rows["Deployment"] == dep.Deployment)]
        weight = (mine["PromptTokens"].clip(lower=0) + mine["CompletionTokens"].clip(lower=0)).astype("float64")
        users = mine.assign(_W=weight)
        users = users[users["_W"] > 0]
        g = grid.set_index("Hour")
        common = {
            "Resource": resource,
            "Deployment": dep.Deployment,
            "Model": dep.Model,
            "Version": dep.Version,
            "Sku": dep.Sku,
            "Region": region,
            "Meter": METER_HOSTING,
            "Unit": "hours",
            "Requests": 0.0,
            "ReasoningTokens": 0.0,
        }
        if not users.empty:
            share = users["_W"] / users.groupby("Hour")["_W"].transform("sum")
            used = users.assign(**{k: v for k, v in common.items() if k not in ("Model", "Version")})
            used["Quantity"] = users["Hour"].map(g["Fraction"]).fillna(0.0).to_numpy() * share.to_numpy()
            used["UnitPrice"] = users["Hour"].map(g["Price"]).to_numpy()
            parts.append(used[used["Quantity"] > 0].drop(columns="_W"))
        idle = g[~g.index.isin(users["Hour"])].reset_index()
        if not idle.empty:
            who = attribution.attribute(
                pd.DataFrame(
                    {"ObjectId": [""], "CallerIP": [""], "Deployment": [dep.Deployment], "Method": ["hosting"]}
                ),
                rules,
                probe_object_id,
            ).iloc[0]
            parts.append(
                pd.DataFrame(
                    {
                        "Hour": idle["Hour"],
                        **common,
                        **{c: who[c] for c in ("Feature", "Team", "CostCenter", "Rule", "Category", "Method")},
                        "ObjectId": "",
                        "CallerIP": "",
                        "Quantity": idle["Fraction"],
                        "UnitPrice": idle["Price"],
                    }
                )
            )
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    price = out["UnitPrice"].astype("float64")
    out["Priced"] = np.isfinite(price)
    out["ListUnitPrice"] = price / factor
    out["EffectiveCost"] = np.where(out["Priced"], out["Quantity"] * price, np.nan)
    out["ListCost"] = out["EffectiveCost"] / factor
    out["PriceSource"] = np.where(out["Priced"], getattr(getattr(book, "catalogue", None), "source", ""), "")
    out["PriceKey"] = np.where(
        out["Priced"],
        out["Model"].astype(str) + " hosting · " + price.map(lambda v: f"{v:g}") + "/hour",
        "unpriced: no hosting price listed for " + out["Model"].astype(str),
    )
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
    router = rows["DepModel"].fillna("").astype(str).str.lower().str.startswith(ROUTER_MODEL)
    router_version = rows["DepVersion"].fillna("").astype(str).replace("", "any")
    rows["RouterVersion"] = np.where(router, router_version, "")
    rows = rows.drop(columns=["DepModel", "DepVersion"])
    rows["Hour"] = pd.to_datetime(rows["TimeGenerated"], utc=True).dt.floor("h")
    factor = 1.0 - float(getattr(book, "discount_pct", 0.0) or 0.0) / 100.0

    token_meters = _token_meter_rows(rows, book) if not rows.empty else pd.DataFrame()
    ptu_deps = ptu.ptu_deployments_frame(deployments, book)
    ptu_part = _ptu_rows(rows, ptu_deps, start, end, factor, health)
    hosting = _hosting_rows(rows, deployments, rules, probe_object_id, book, start, end, factor)
    parts = [p for p in (token_meters, ptu_part, hosting) if not p.empty]
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
    health.unpriced = sorted(  # a deployment the management plane does not know is named, not "? (?)"
        {
            f"{m or '?'} ({s or '?'})" if m or s else f"deployment {d or '?'} (model and SKU unknown)"
            for m, s, d in zip(unpriced["Model"], unpriced["Sku"], unpriced["Deployment"], strict=True)
        }
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
