"""A month of the cost ledger as a FOCUS 1.2 dataset (CSV or Parquet), one row per ledger row.

One row per hour × resource × deployment × meter × allocation: the ledger's priced rows as they are
(`queries.cost.ledger.LEDGER_COLUMNS`), so the export adds up to the same money as the chargeback
statement (both read the same rows) and to the ledger's total to the cent. Usage no price covers is left
out (FOCUS has no cost to state for it; the statement's ``unpriced`` line shows its tokens).

Units. Tokens are consumed as ``Tokens`` and priced per ``1000000 Tokens`` (FOCUS's unit format: a unit
quantity is a positive integer, so not "1M"; PricingQuantity is tokens / 1,000,000 and the unit prices read
as the price list's "1M" ones do); a provisioned deployment's hours are consumed
and priced as ``PTU-Hours`` (15 PTUs for one hour is 15 PTU-Hours, never "24 Hours"). ListCost =
ListUnitPrice × PricingQuantity and ContractedCost = ContractedUnitPrice × PricingQuantity, as the
specification requires. A provisioned deployment's token rows carry their tokens at no cost: their money
is on its ``ptu_hour`` rows.

The columns, their types, nulls and allowed values come from `queries.cost.focus_spec`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from queries.cost import focus_spec
from queries.cost.attribution import PTU_IDLE, caller_names_column, rule_names
from queries.cost.ledger import METER_HOSTING, METER_PTU

PROVIDER = "Microsoft"
SERVICE_NAME = "Azure OpenAI"
SERVICE_SUBCATEGORY = "Generative AI"
RESOURCE_TYPE = "Azure OpenAI deployment"
TOKENS, MTOKENS, PTU_HOURS, HOURS = "Tokens", "1000000 Tokens", "PTU-Hours", "Hours"
FORMATS = ("focus-csv", "focus-parquet")

METER_WORDS = {
    "input": "input tokens",
    "cached_input": "cached input tokens",
    "output": "output tokens",
    "embeddings": "embedding tokens",
    "ptu_hour": "provisioned throughput unit hours",
    "router_fee": "model router fee on input tokens",
    "hosting_hour": "fine-tuned model hosting hours",
}

REGION_NAMES = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus": "West US",
    "westus3": "West US 3",
    "northcentralus": "North Central US",
    "southcentralus": "South Central US",
    "swedencentral": "Sweden Central",
    "westeurope": "West Europe",
    "francecentral": "France Central",
    "uksouth": "UK South",
    "japaneast": "Japan East",
    "australiaeast": "Australia East",
    "canadaeast": "Canada East",
}

_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Reservation:
    """A PTU reservation as the export names it (from `billing.reservations`)."""

    reservation_id: str
    name: str


@dataclass
class ExportContext:
    """What the export needs beyond the ledger rows: the billing period, the billing account, and how
    the ledger's account names map to ARM ids."""

    period_start: datetime
    period_end: datetime
    currency: str = "USD"
    account_id: str | None = None
    account_name: str | None = None
    subscription_names: Mapping[str, str] = field(default_factory=dict)
    resource_ids: Mapping[str, str] = field(default_factory=dict)  # account name (lower) -> ARM id
    reservations: Mapping[str, Reservation] = field(default_factory=dict)  # deployment -> reservation
    caller_names: Mapping[str, str] = field(default_factory=dict)  # object id (lower) -> directory name
    rule_names: Mapping[str, str] = field(default_factory=dict)  # ledger Rule ("3:label") -> its display name


def _none_if_empty(s: pd.Series) -> pd.Series:
    s = s.astype(object)
    return s.where(s.astype(str) != "", None)


def _when(mask: pd.Series, value: Any) -> pd.Series:
    """`value` where `mask`, null elsewhere (a string column)."""
    values = pd.Series(value, index=mask.index, dtype=object) if np.ndim(value) else pd.Series(value, index=mask.index)
    return values.astype(object).where(mask.to_numpy(), None)


def _tags(feature: str, team: str, cost_center: str) -> str | None:
    tags = {k: v for k, v in (("feature", feature), ("team", team), ("cost-center", cost_center)) if v}
    return json.dumps(tags, sort_keys=True) if tags else None


def focus_frame(ledger: pd.DataFrame, ctx: ExportContext) -> pd.DataFrame:
    """The FOCUS rows of the ledger rows in `ctx`'s billing period (priced rows only), in the column order
    of `focus_spec.COLUMNS`, typed as the spec says (DateTime as UTC timestamps, Decimal as float)."""
    rows = ledger[ledger["Priced"].astype(bool)].copy()
    hour = pd.to_datetime(rows["Hour"], utc=True)
    start, end = pd.Timestamp(ctx.period_start), pd.Timestamp(ctx.period_end)
    rows = rows[(hour >= start) & (hour < end)].reset_index(drop=True)
    hour = pd.to_datetime(rows["Hour"], utc=True).astype("datetime64[us, UTC]")
    n = len(rows)
    ptu = rows["Meter"] == METER_PTU
    ids = {k.lower(): v for k, v in ctx.resource_ids.items()}
    account_id = rows["Resource"].astype(str).map(lambda r: ids.get(r.lower(), ""))
    resource_id = np.where(
        account_id != "", account_id + "/deployments/" + rows["Deployment"].astype(str), rows["Deployment"]
    )
    subscription = account_id.map(lambda a: m.group(0).lower() if (m := _SUBSCRIPTION.match(a)) else "")
    sub_name = subscription.map(lambda s: ctx.subscription_names.get(s.rsplit("/", 1)[-1], "") if s else "")
    billing_id = ctx.account_id or None
    billing_ids = pd.Series([billing_id] * n, dtype=object) if billing_id else _none_if_empty(subscription)
    if billing_ids.isna().any():  # no account configured and no subscription known: still not null
        billing_ids = billing_ids.fillna("unknown")
    # the billing account's display name; with no account configured the subscription is the account, and
    # its name (billing.subscription_names) is the account's (FOCUS: not null when the issuer names accounts)
    account_names = (
        pd.Series([ctx.account_name] * n, dtype=object)
        if ctx.account_name
        else _none_if_empty(sub_name)
        if not ctx.account_id
        else pd.Series([None] * n, dtype=object)
    )
    quantity = rows["Quantity"].astype("float64")
    hosting = rows["Meter"] == METER_HOSTING
    hourly = ptu | hosting
    pricing_qty = np.where(hourly, quantity, quantity / 1e6)
    per = np.where(hourly, 1.0, 1e6)
    list_price = rows["ListUnitPrice"].astype("float64") * per
    contracted_price = rows["UnitPrice"].astype("float64") * per
    # the ledger row says whether a reservation priced it (PriceSource "reservation"); the name comes from
    # billing.reservations, the id from it or, failing that, from the row's price key
    on_res = ptu & (rows["PriceSource"].astype(str) == "reservation")
    reserved = rows["Deployment"].map(lambda d: ctx.reservations.get(str(d))).where(on_res, None)
    from_key = rows["PriceKey"].astype(str).str.extract(r"^reservation (\S+)", expand=False)
    reserved = reserved.where(reserved.notna() | ~on_res, from_key.map(lambda i: Reservation(str(i), "")))
    has_res = reserved.notna() & on_res
    res_id = reserved.map(lambda r: r.reservation_id if r is not None else None)
    res_name = reserved.map(lambda r: (r.name or r.reservation_id) if r is not None else None)
    region = rows["Region"].astype(str)
    words = rows["Meter"].map(METER_WORDS).fillna(rows["Meter"])
    desc = (
        words
        + " of "
        + rows["Model"].astype(str)
        + np.where(rows["Version"].astype(str) != "", " " + rows["Version"].astype(str), "")
        + " on "
        + rows["Deployment"].astype(str)
        + " ("
        + rows["Sku"].astype(str)
        + ")"
    )
    covered = (~ptu) & (rows["UnitPrice"].astype("float64") == 0) & rows["PriceKey"].str.startswith("provisioned")
    desc = desc.where(~covered, desc + ", billed on the PTU-hour rows")
    desc = desc.where(~(rows["Category"] == PTU_IDLE), desc + ", unused")

    out = pd.DataFrame(
        {
            "BillingAccountId": billing_ids,
            "BillingAccountName": account_names,
            "BillingCurrency": ctx.currency,
            "BillingPeriodStart": start,
            "BillingPeriodEnd": end,
            "InvoiceIssuerName": PROVIDER,
            "ProviderName": PROVIDER,
            "PublisherName": PROVIDER,
            "SubAccountId": _none_if_empty(subscription),
            "SubAccountName": _none_if_empty(sub_name),
            "ChargeCategory": "Usage",
            "ChargeClass": None,
            "ChargeDescription": desc,
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodStart": hour,
            "ChargePeriodEnd": hour + pd.Timedelta(hours=1),
            "BilledCost": rows["EffectiveCost"].astype("float64"),
            "EffectiveCost": rows["EffectiveCost"].astype("float64"),
            "ListCost": rows["ListCost"].astype("float64"),
            "ListUnitPrice": list_price,
            "ContractedCost": rows["EffectiveCost"].astype("float64"),
            "ContractedUnitPrice": contracted_price,
            "PricingCategory": np.where(has_res, "Committed", "Standard"),
            "PricingQuantity": pricing_qty,
            "PricingUnit": np.where(ptu, PTU_HOURS, np.where(hosting, HOURS, MTOKENS)),
            "ConsumedQuantity": quantity,
            "ConsumedUnit": np.where(ptu, PTU_HOURS, np.where(hosting, HOURS, TOKENS)),
            "ServiceName": SERVICE_NAME,
            "ServiceCategory": focus_spec.SERVICE_CATEGORY,
            "ServiceSubcategory": SERVICE_SUBCATEGORY,
            "SkuId": rows["Model"].astype(str) + "/" + rows["Sku"].astype(str),
            "SkuPriceId": (
                rows["Model"].astype(str)
                + "/"
                + rows["Version"].astype(str)
                + "/"
                + rows["Sku"].astype(str)
                + "/"
                + region
                + "/"
                + rows["Meter"].astype(str)
            ),
            "SkuMeter": rows["Meter"].astype(str),
            "RegionId": _none_if_empty(region),
            "RegionName": _none_if_empty(region.map(lambda r: REGION_NAMES.get(r.lower(), r))),
            "ResourceId": pd.Series(resource_id, dtype=object),
            "ResourceName": rows["Deployment"].astype(str),
            "ResourceType": RESOURCE_TYPE,
            "Tags": [_tags(f, t, c) for f, t, c in zip(rows["Feature"], rows["Team"], rows["CostCenter"], strict=True)],
            "CommitmentDiscountId": res_id,
            "CommitmentDiscountName": res_name,
            "CommitmentDiscountType": _when(has_res, "Reservation"),
            "CommitmentDiscountCategory": _when(has_res, "Usage"),
            "CommitmentDiscountStatus": _when(has_res, np.where(rows["Category"] == PTU_IDLE, "Unused", "Used")),
            "CommitmentDiscountQuantity": np.where(has_res, quantity, np.nan),
            "CommitmentDiscountUnit": _when(has_res, PTU_HOURS),
            "x_Feature": _none_if_empty(rows["Feature"]),
            "x_Team": _none_if_empty(rows["Team"]),
            "x_CostCenter": _none_if_empty(rows["CostCenter"]),
            "x_CallerObjectId": _none_if_empty(rows["ObjectId"]),
            "x_CallerName": _none_if_empty(caller_names_column(rows, ctx.caller_names, ctx.rule_names)),
            "x_AllocationMethod": _none_if_empty(rows["Method"]),
            "x_AllocationRule": _none_if_empty(rows["Rule"]),
            "x_AllocationCategory": rows["Category"].astype(str),
            "x_Model": _none_if_empty(rows["Model"]),
            "x_ModelVersion": _none_if_empty(rows["Version"]),
            "x_ReasoningTokens": rows["ReasoningTokens"].astype("float64"),
            "x_Requests": rows["Requests"].astype("float64"),
            "x_PriceSource": _none_if_empty(rows["PriceSource"]),
            "x_LedgerBuildVersion": _none_if_empty(rows["BuildVersion"]),
        },
        index=rows.index,
    )
    for c in focus_spec.COLUMNS:
        if c.kind == "String" or c.kind == "JSON":
            out[c.name] = out[c.name].astype(object).where(out[c.name].notna(), None)
        elif c.kind == "Decimal":
            out[c.name] = pd.to_numeric(out[c.name], errors="coerce").astype("float64")
    return (
        out[focus_spec.NAMES]
        .sort_values(
            ["ChargePeriodStart", "ResourceId", "SkuMeter", "x_AllocationCategory", "x_Team", "x_Feature"],
            kind="stable",
            na_position="first",
        )
        .reset_index(drop=True)
    )


def to_table(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table with the spec's schema (types and nullability)."""
    return pa.Table.from_pandas(frame[focus_spec.NAMES], schema=focus_spec.arrow_schema(), preserve_index=False)


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(to_table(frame), buf, compression="snappy")
    return buf.getvalue()


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with DateTime in ISO 8601 UTC (``2026-11-01T00:00:00Z``), nulls as empty fields."""
    out = frame[focus_spec.NAMES].copy()
    for c in focus_spec.COLUMNS:
        if c.kind == "DateTime":
            out[c.name] = pd.to_datetime(out[c.name], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    from queries.safecsv import to_csv

    return to_csv(out, float_format="%.10g").encode()


def read_export(data: bytes, fmt: str) -> pd.DataFrame:
    """An export read back, typed as `focus_frame` types it (what the tests and a re-import use):
    strings as objects with None for null, Decimal as float64, DateTime as UTC timestamps."""
    kinds = {c.name: c.kind for c in focus_spec.COLUMNS}
    if fmt == "focus-parquet":
        frame = pq.read_table(io.BytesIO(data)).to_pandas()
    else:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype={n: "float64" if k == "Decimal" else object for n, k in kinds.items() if k != "DateTime"},
            keep_default_na=False,
            na_values={n: [""] for n in kinds},
        )
    for name, kind in kinds.items():
        if name not in frame.columns:
            continue
        if kind == "DateTime":
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
        elif kind == "Decimal":
            frame[name] = frame[name].astype("float64")
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def encode(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "focus-parquet":
        return to_parquet_bytes(frame)
    if fmt == "focus-csv":
        return to_csv_bytes(frame)
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")


def file_name(month: str, fmt: str) -> str:
    return f"aoai-lens-focus-{month}.{'parquet' if fmt == 'focus-parquet' else 'csv'}"


def conformance_problems(
    frame: pd.DataFrame, columns: Sequence[focus_spec.FocusColumn] = focus_spec.COLUMNS
) -> list[str]:
    """What in `frame` breaks the spec table: a missing column, a null where none is allowed, a value
    outside the allowed ones. Empty when the frame conforms."""
    problems: list[str] = []
    for c in columns:
        if c.name not in frame.columns:
            problems.append(f"{c.name}: missing ({c.level})")
            continue
        s = frame[c.name]
        if not c.nullable and s.isna().any():
            problems.append(f"{c.name}: {int(s.isna().sum())} null value(s) in a column that allows none")
        if c.allowed is not None:
            bad = sorted({str(v) for v in s.dropna().unique()} - set(c.allowed))
            if bad:
                problems.append(f"{c.name}: values {bad} not among {list(c.allowed)}")
        if c.kind == "JSON":
            for v in s.dropna():
                try:
                    if not isinstance(json.loads(v), dict):
                        raise ValueError
                except (ValueError, TypeError):
                    problems.append(f"{c.name}: {v!r} is not a JSON object")
                    break
    return problems


def context_from(
    settings: Any,
    deployments: pd.DataFrame,
    start: datetime,
    end: datetime,
    caller_names: Mapping[str, str] | None = None,
) -> ExportContext:
    """The export context from the settings (`billing.*`, `prices.currency`, the attribution rules'
    names), the deployments frame and the callers' directory names (`Lens.caller_names`)."""
    billing = settings.billing
    ids = (
        dict(zip(deployments["Resource"].astype(str).str.lower(), deployments["ResourceId"].astype(str), strict=False))
        if not deployments.empty
        else {}
    )
    return ExportContext(
        period_start=start,
        period_end=end,
        currency=settings.prices.currency,
        account_id=billing.account_id,
        account_name=billing.account_name,
        subscription_names={k.lower(): v for k, v in billing.subscription_names.items()},
        resource_ids=ids,
        reservations={r.deployment: Reservation(r.reservation_id, r.name) for r in billing.reservations},
        caller_names=dict(caller_names or {}),
        rule_names=rule_names(settings.attribution),
    )


def team_totals(frame: pd.DataFrame) -> dict[str, float]:
    """EffectiveCost per team of the allocated rows, and per category for the rest (what the statement's
    lines say), unrounded."""
    alloc = frame["x_AllocationCategory"] == "allocated"
    out = frame[alloc].groupby(frame.loc[alloc, "x_Team"].fillna("(none)"))["EffectiveCost"].sum().to_dict()
    for kind, part in frame[~alloc].groupby("x_AllocationCategory"):
        out[str(kind)] = float(part["EffectiveCost"].sum())
    return {str(k): float(v) for k, v in out.items()}
