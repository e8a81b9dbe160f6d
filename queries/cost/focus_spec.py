"""The FOCUS 1.2 cost-and-usage columns aoai-lens emits, as data: requirement level, type, nulls, values.

Derived by hand from the FinOps Foundation's FOCUS 1.2 specification (FOCUS_Spec,
specification/datasets/cost_and_usage/columns/*.md: each column's "Feature level", "Allows nulls",
"Data type" and allowed values), summarised in our own words. Every Mandatory column is here; of the
Conditional and Recommended ones, those that apply to Azure OpenAI usage (resources, regions, SKUs,
consumed quantities, tags, commitment discounts for PTU reservations). Columns that never apply (tax,
invoices we do not issue, capacity reservations of virtual machines, pricing currencies other than the
billing one) are left out, which the specification allows for Conditional columns.

`x_` columns are our own (the specification reserves the prefix for provider extensions): the
allocation (feature, team, cost center, caller, rule, method, category) and what FOCUS 1.2 has no column
for yet (model, model version, token meter, reasoning tokens).

The export (`queries.cost.focus_export`) builds its frame and its Parquet schema from this table, and
`tests/queries/test_focus_export.py` checks an export against it: columns, types, nulls, allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import pyarrow as pa

Level = Literal["Mandatory", "Conditional", "Recommended", "Extension"]
Kind = Literal["Decimal", "String", "DateTime", "JSON"]

FOCUS_VERSION = "1.2"


@dataclass(frozen=True)
class FocusColumn:
    name: str
    level: Level
    kind: Kind
    nullable: bool
    allowed: tuple[str, ...] | None = None  # the only values allowed (besides null when nullable)
    why: str = ""  # when a Conditional column applies, or what an x_ column holds

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_TYPES[self.kind]


ARROW_TYPES: dict[str, pa.DataType] = {
    "Decimal": pa.float64(),  # FOCUS "Decimal": a number; Parquet double keeps sub-cent token costs
    "String": pa.string(),
    "DateTime": pa.timestamp("us", tz="UTC"),  # ISO 8601 in UTC in CSV
    "JSON": pa.string(),  # key-value format, serialised as a JSON object
}

CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
PRICING_CATEGORIES = ("Standard", "Dynamic", "Committed", "Other")
SERVICE_CATEGORY = "AI and Machine Learning"

M: Final = "Mandatory"
C: Final = "Conditional"
R: Final = "Recommended"
X: Final = "Extension"

COLUMNS: tuple[FocusColumn, ...] = (
    # --- billing account and period -------------------------------------------------------------------
    FocusColumn("BillingAccountId", M, "String", False, why="billing.account_id"),
    FocusColumn(
        "BillingAccountName",
        M,
        "String",
        True,
        why="billing.account_name; else the subscription's name when the subscription is the account",
    ),
    FocusColumn("BillingCurrency", M, "String", False, why="ISO 4217 code, prices.currency"),
    FocusColumn("BillingPeriodStart", M, "DateTime", False, why="first instant of the month (inclusive)"),
    FocusColumn("BillingPeriodEnd", M, "DateTime", False, why="first instant of the next month (exclusive)"),
    FocusColumn("InvoiceIssuerName", M, "String", False, why="Microsoft"),
    FocusColumn("ProviderName", M, "String", False, why="Microsoft"),
    FocusColumn("PublisherName", M, "String", False, why="Microsoft"),
    FocusColumn("SubAccountId", C, "String", True, why="the subscription (/subscriptions/<id>)"),
    FocusColumn("SubAccountName", C, "String", True, why="billing.subscription_names, else null"),
    # --- the charge -----------------------------------------------------------------------------------
    FocusColumn("ChargeCategory", M, "String", False, CHARGE_CATEGORIES, "always Usage"),
    FocusColumn("ChargeClass", M, "String", True, ("Correction",), "null: no corrections"),
    FocusColumn("ChargeDescription", M, "String", True, why="meter, model and deployment in words"),
    FocusColumn("ChargeFrequency", R, "String", False, ("One-Time", "Recurring", "Usage-Based")),
    FocusColumn("ChargePeriodStart", M, "DateTime", False, why="the hour (inclusive)"),
    FocusColumn("ChargePeriodEnd", M, "DateTime", False, why="the hour's end (exclusive)"),
    # --- money and quantities -------------------------------------------------------------------------
    FocusColumn("BilledCost", M, "Decimal", False, why="EffectiveCost: usage is billed as consumed"),
    FocusColumn("EffectiveCost", M, "Decimal", False, why="the ledger's cost after prices.discount_pct"),
    FocusColumn("ListCost", M, "Decimal", False, why="the cost at the list price"),
    FocusColumn("ListUnitPrice", C, "Decimal", True, why="price per PricingUnit before the discount"),
    FocusColumn("ContractedCost", M, "Decimal", False, why="EffectiveCost: the discount is the contract"),
    FocusColumn("ContractedUnitPrice", C, "Decimal", True, why="price per PricingUnit after the discount"),
    FocusColumn("PricingCategory", C, "String", True, PRICING_CATEGORIES, "Standard; Committed on reserved PTU"),
    FocusColumn("PricingQuantity", M, "Decimal", True, why="tokens, or PTU-hours"),
    FocusColumn("PricingUnit", M, "String", True, why="1000000 Tokens, PTU-Hours or Hours (fine-tuned hosting)"),
    FocusColumn("ConsumedQuantity", C, "Decimal", True, why="tokens, or PTU-hours"),
    FocusColumn("ConsumedUnit", C, "String", True, why="Tokens, PTU-Hours or Hours (fine-tuned hosting)"),
    # --- service, SKU, region, resource ---------------------------------------------------------------
    FocusColumn("ServiceName", M, "String", False, why="Azure OpenAI"),
    FocusColumn("ServiceCategory", M, "String", False, (SERVICE_CATEGORY,), "AI and Machine Learning"),
    FocusColumn("ServiceSubcategory", R, "String", True, why="Generative AI"),
    FocusColumn("SkuId", C, "String", True, why="the deployment type (sku.name)"),
    FocusColumn("SkuPriceId", C, "String", True, why="the price that applied (model, version, SKU, meter, region)"),
    FocusColumn("SkuMeter", C, "String", True, why="the meter: input, cached_input, output, embeddings, ptu_hour"),
    FocusColumn("RegionId", C, "String", True, why="the account's ARM location"),
    FocusColumn("RegionName", C, "String", True, why="the location's display name"),
    FocusColumn("ResourceId", C, "String", True, why="the deployment's ARM id"),
    FocusColumn("ResourceName", C, "String", True, why="the deployment's name"),
    FocusColumn("ResourceType", C, "String", True, why="Azure OpenAI deployment"),
    FocusColumn("Tags", C, "JSON", True, why="the allocation as tags (feature, team, cost center)"),
    # --- commitment discounts (PTU reservations from billing.reservations) ----------------------------
    FocusColumn("CommitmentDiscountId", C, "String", True, why="the reservation order id"),
    FocusColumn("CommitmentDiscountName", C, "String", True, why="the reservation's name"),
    FocusColumn("CommitmentDiscountType", C, "String", True, why="Reservation"),
    FocusColumn("CommitmentDiscountCategory", C, "String", True, ("Spend", "Usage"), "Usage (PTU-hours)"),
    FocusColumn("CommitmentDiscountStatus", C, "String", True, ("Used", "Unused"), "Used, or Unused for idle"),
    FocusColumn("CommitmentDiscountQuantity", C, "Decimal", True, why="PTU-hours of the commitment drawn"),
    FocusColumn("CommitmentDiscountUnit", C, "String", True, why="PTU-Hours"),
    # --- ours -----------------------------------------------------------------------------------------
    FocusColumn("x_Feature", X, "String", True, why="the attribution rule's feature"),
    FocusColumn("x_Team", X, "String", True, why="the attribution rule's team"),
    FocusColumn("x_CostCenter", X, "String", True, why="the attribution rule's cost center"),
    FocusColumn("x_CallerObjectId", X, "String", True, why="the caller's Entra object id"),
    FocusColumn("x_CallerName", X, "String", True, why="the caller's name: Graph's display name, else the rule's"),
    FocusColumn("x_AllocationMethod", X, "String", True, why="request, bytes, deployment or ptu idle"),
    FocusColumn("x_AllocationRule", X, "String", True, why="position:label of the rule that matched"),
    FocusColumn(
        "x_AllocationCategory",
        X,
        "String",
        False,
        ("allocated", "unallocated", "probes", "ptu idle"),
        "where the money goes",
    ),
    FocusColumn("x_Model", X, "String", True, why="the model"),
    FocusColumn("x_ModelVersion", X, "String", True, why="the model version"),
    FocusColumn("x_ReasoningTokens", X, "Decimal", True, why="of the output tokens, reasoning ones"),
    FocusColumn("x_Requests", X, "Decimal", True, why="requests (counted on the input meter)"),
    FocusColumn("x_PriceSource", X, "String", True, why="where the price came from"),
    FocusColumn("x_LedgerBuildVersion", X, "String", True, why="the ledger build that made the row"),
)

BY_NAME = {c.name: c for c in COLUMNS}
NAMES = [c.name for c in COLUMNS]


def arrow_schema() -> pa.Schema:
    return pa.schema(
        [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in COLUMNS],
        metadata={"FocusVersion": FOCUS_VERSION},
    )
