"""The price book meter by meter, from Retail-Prices-shaped rows: one test per unit kind (and the 1000x
trap), one per meter kind, a price change in the middle of a month (each hour at the price in force
then, checked against a total computed apart), and PTU reservations amortised per hour."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cost_fakes import deployments, usage
from pydantic import ValidationError

from queries.config import AttributionRule, PtuReservation
from queries.cost import retail
from queries.cost.ledger import (
    METER_CACHED,
    METER_HOSTING,
    METER_INPUT,
    METER_OUTPUT,
    METER_PTU,
    METER_ROUTER,
    build_rows,
)
from queries.cost.prices import (
    PRIORITY_LONG_PROMPT,
    Catalogue,
    PriceBook,
    billed_tier,
    load_catalogue,
    normalise,
    per_normalised_unit,
    unit_quantity,
)
from queries.cost.ptu import ptu_deployments_frame

FIXTURE = Path(__file__).parents[1] / "fixtures" / "retail" / "meters.json"
AS_OF = "2026-11-25"
A = "aaaaaaaa-0000-4000-8000-000000000001"
RULES = [AttributionRule(object_id=A, feature="feat-a", team="team-x")]


def items() -> list[dict[str, Any]]:
    return list(json.loads(FIXTURE.read_text())["Items"])


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook(normalise(items(), "refreshed", "meters.json", as_of=AS_OF))


# --- units -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "kind", "count"),
    [
        ("1K", "tokens", 1_000.0),
        ("1M", "tokens", 1_000_000.0),
        ("10K", "tokens", 10_000.0),
        ("1 Hour", "hours", 1.0),
        ("1/Hour", "hours", 1.0),
        ("1", "count", 1.0),
        ("100", "count", 100.0),
        ("1/Day", "period", 1.0),
        ("1/Month", "period", 30.4375),
    ],
)
def test_each_unit_kind_is_read(unit: str, kind: str, count: float) -> None:
    assert unit_quantity(unit) == (kind, count)


def test_units_no_price_can_use_are_refused() -> None:
    assert unit_quantity("1 Second") is None and unit_quantity("") is None and unit_quantity("GB") is None
    # a session, 100 images, a month of PTU: no per-token or per-hour price comes from them
    assert per_normalised_unit(0.03, "1") is None
    assert per_normalised_unit(2.0, "100") is None
    assert per_normalised_unit(312.0, "1/Month") is None


@pytest.mark.parametrize(
    ("price", "unit", "per_1m"),
    [(0.0025, "1K", 2.5), (1.25, "1M", 1.25), (0.025, "10K", 2.5), (0.0000025, "1", None)],
)
def test_token_prices_normalise_to_per_1m(price: float, unit: str, per_1m: float | None) -> None:
    got = per_normalised_unit(price, unit)
    assert (got[0] if got else None) == per_1m


def test_hour_units_normalise_to_per_hour() -> None:
    assert per_normalised_unit(2.0, "1 Hour") == per_normalised_unit(2.0, "1/Hour") == (2.0, "hour")


def test_the_1000x_trap(book: PriceBook) -> None:
    """gpt-4.1's Global input is listed at 0.002 per "1K": 2.00 per 1M tokens. Reading the row as per 1M
    (ignoring its unit) bills a million tokens at $0.002, a thousand times too little."""
    raw = next(i for i in items() if i["meterName"] == "gpt 4.1 Inp glbl Tokens")
    assert raw["unitOfMeasure"] == "1K" and raw["retailPrice"] == 0.002
    price = book.lookup("gpt-4.1", "2025-04-14", "GlobalStandard", "eastus")
    assert price is not None and price.input_per_1m == 2.0 == raw["retailPrice"] * 1000
    frame = pd.DataFrame(
        {
            "model": ["gpt-4.1"],
            "version": ["2025-04-14"],
            "sku": ["GlobalStandard"],
            "region": ["eastus"],
            "prompt_tokens": [1_000_000],
            "cached_tokens": [0],
            "completion_tokens": [0],
        }
    )
    assert book.price_usage(frame)["cost"].iloc[0] == pytest.approx(2.0)  # not 0.002
    # a "1M" row is not divided again: gpt-5.6-luna's 1.00 per "1M" stays 1.00
    luna = book.lookup("gpt-5.6-luna", None, "GlobalStandard", "eastus")
    assert luna is not None and luna.input_per_1m == 1.0


# --- meter kinds -------------------------------------------------------------------------------------


def test_input_cached_and_output_by_scope(book: PriceBook) -> None:
    glbl = book.lookup("gpt-4.1", "2025-04-14", "GlobalStandard", "eastus")
    dz = book.lookup("gpt-4.1", "2025-04-14", "DataZoneStandard", "eastus")
    assert glbl and dz
    assert (glbl.input_per_1m, glbl.cached_input_per_1m, glbl.output_per_1m) == (2.0, 0.5, 8.0)
    # cached input at its own (discounted) price, never the full input price
    assert glbl.cached_input_per_1m is not None and glbl.cached_input_per_1m < glbl.input_per_1m
    # Data Zone at its own meters: neither $0 nor Global's (nor OpenAI's) price
    assert (dz.input_per_1m, dz.cached_input_per_1m, dz.output_per_1m) == (2.2, 0.55, 8.8)
    assert {m.meter for m in dz.meters} == {
        "gpt 4.1 Inp Data Zone Tokens",
        "gpt 4.1 cached Inp Data Zone Tokens",
        "gpt 4.1 Outp Data Zone Tokens",
    }
    assert dz.effective == "2025-04-01" and dz.source == "refreshed"


def test_batch_meters(book: PriceBook) -> None:
    batch = book.lookup("gpt-4.1", None, "GlobalBatch", "eastus")
    assert batch and (batch.input_per_1m, batch.output_per_1m) == (1.0, 4.0)
    assert "50% of" not in batch.key  # a listed batch meter, not the derived half
    derived = book.lookup("gpt-5.6-luna", None, "GlobalBatch", "eastus")  # no batch meter listed
    assert derived and derived.input_per_1m == 0.5 and "50% of" in derived.key


def test_priority_processing_meters_and_the_long_prompt_fallback(book: PriceBook) -> None:
    std = book.lookup("gpt-4.1", None, "GlobalStandard", "eastus")
    pp = book.lookup("gpt-4.1", None, "GlobalStandard", "eastus", tier="priority")
    assert std and pp and (pp.input_per_1m, pp.cached_input_per_1m, pp.output_per_1m) == (3.5, 0.875, 14.0)
    assert "Priority" in pp.key
    # a long-context request asked for priority but is served and billed at standard
    assert billed_tier("priority", PRIORITY_LONG_PROMPT) == "priority"
    assert billed_tier("priority", PRIORITY_LONG_PROMPT + 1) == "standard"
    assert billed_tier(None, 10) == billed_tier("default", 10) == "standard"
    # Priority exists only where listed: Data Zone gpt-4.1 has no pp row in the fixture
    assert book.lookup("gpt-4.1", None, "DataZoneStandard", "eastus", tier="priority") is None


def test_cache_write_where_billed(book: PriceBook) -> None:
    luna = book.lookup("gpt-5.6-luna", None, "GlobalStandard", "eastus")
    assert luna and (luna.input_per_1m, luna.cached_input_per_1m, luna.cache_write_per_1m, luna.output_per_1m) == (
        1.0,
        0.1,
        1.25,
        6.0,
    )
    luna_pp = book.lookup("gpt-5.6-luna", None, "GlobalStandard", "eastus", tier="priority")
    assert luna_pp and (luna_pp.input_per_1m, luna_pp.cache_write_per_1m) == (2.0, 2.5)
    gpt41 = book.lookup("gpt-4.1", None, "GlobalStandard", "eastus")
    assert gpt41 and gpt41.cache_write_per_1m is None  # not billed for this model
    # the long-context row does not replace the short-context price
    assert luna.input_per_1m != 2.0


def test_embeddings(book: PriceBook) -> None:
    emb = book.lookup("text-embedding-3-small", "1", "GlobalStandard", "eastus")
    assert emb and emb.input_per_1m == 0.02 and emb.output_per_1m is None


def test_developer_and_fine_tuned_meters_with_hosting(book: PriceBook) -> None:
    tuned = "gpt-4.1-2025-04-14.ft-0e208cf33a6a466994aff31a08aba678"
    dev = book.lookup(tuned, "1", "DeveloperTier", "eastus")
    assert dev and (dev.input_per_1m, dev.cached_input_per_1m, dev.output_per_1m) == (2.0, 0.5, 8.0)
    assert {m.meter for m in dev.meters} >= {"gpt-4.1-dev-ft inpt glbl Tokens"}
    assert dev.hosting_per_hour is None  # the Developer tier has no hosting fee
    ft = book.lookup(tuned, "1", "GlobalStandard", "eastus")
    assert ft and ft.input_per_1m == 2.0 and ft.hosting_per_hour == 1.7
    assert "fine-tuned" in ft.key
    # the training meter is not an inference price of gpt-4.1-mini
    assert "gpt-4.1-mini" not in book.models()


def test_ptu_hour_meters_and_what_is_not_hourly(book: PriceBook) -> None:
    got = {
        sku: book.lookup("gpt-4.1", None, sku, "eastus").ptu_per_hour  # type: ignore[union-attr]
        for sku in ("GlobalProvisionedManaged", "DataZoneProvisionedManaged", "ProvisionedManaged")
    }
    # "1/Hour" and "1 Hour" rows; the monthly row (312 per "1/Month") and the reservation row (2652 for a
    # year on a "1 Hour" unit) are not hourly list prices
    assert got == {"GlobalProvisionedManaged": 1.0, "DataZoneProvisionedManaged": 1.1, "ProvisionedManaged": 2.0}


def test_show_lists_every_meter_with_its_unit_and_source(book: PriceBook) -> None:
    rows = book.meters("gpt-4.1", "eastus")
    by_meter = {r["meter"]: r for r in rows}
    inp = by_meter["gpt 4.1 Inp glbl Tokens"]
    assert (inp["unit"], inp["per"], inp["price"], inp["effective"], inp["sku_name"]) == (
        "1K",
        "1M tokens",
        2.0,
        "2025-04-01",
        "gpt 4.1 Inp glbl",
    )
    assert by_meter["Provisioned Managed Regional Unit"]["unit"] == "1 Hour"
    assert by_meter["gpt-4.1-ft hosting global Unit"]["per"] == "hour"
    assert {r["mode"] for r in rows} >= {"standard", "batch", "priority", "developer", "fine_tuned", "provisioned"}


# --- effective dates ---------------------------------------------------------------------------------

T0 = datetime(2026, 11, 14, 22, tzinfo=UTC)  # two hours before the new price, two after
CHANGE = "2026-11-15"


def _with_price_change() -> PriceBook:
    later = [
        {**i, "retailPrice": 0.0024, "unitPrice": 0.0024, "effectiveStartDate": f"{CHANGE}T00:00:00Z"}
        for i in items()
        if i["meterName"] == "gpt 4.1 Inp glbl Tokens"
    ] + [
        {**i, "retailPrice": 1.2, "unitPrice": 1.2, "effectiveStartDate": f"{CHANGE}T00:00:00Z"}
        for i in items()
        if i["meterName"] == "Provisioned Managed Global Unit" and i["type"] == "Consumption"
    ]
    return PriceBook(normalise([*items(), *later], "refreshed", "with a change", as_of=AS_OF))


def test_lookup_at_a_time_uses_the_price_in_force_then() -> None:
    b = _with_price_change()
    before = b.lookup("gpt-4.1", None, "GlobalStandard", "eastus", at=datetime(2026, 11, 14, 23, tzinfo=UTC))
    after = b.lookup("gpt-4.1", None, "GlobalStandard", "eastus", at=datetime(2026, 11, 15, 0, tzinfo=UTC))
    assert before and after and (before.input_per_1m, after.input_per_1m) == (2.0, 2.4)
    assert before.output_per_1m == after.output_per_1m == 8.0  # only input changed
    line = b.timeline("gpt-4.1", None, "GlobalStandard", "eastus")
    assert [(d, p.input_per_1m if p else None) for d, p, _ in line] == [(None, 2.0), (CHANGE, 2.4)]
    # before the earliest listed start, the earliest listed price (the API lists no history)
    old = b.lookup("gpt-4.1", None, "GlobalStandard", "eastus", at="2024-01-01")
    assert old and old.input_per_1m == 2.0


def test_a_mid_month_price_change_prices_each_hour_at_the_price_then() -> None:
    b = _with_price_change()
    deps = deployments(("chat", "gpt-4.1", "GlobalStandard", 100, 100_000))
    per_hour = [(100_000, 20_000, 10_000), (200_000, 0, 5_000), (300_000, 50_000, 0), (400_000, 100_000, 1_000)]
    u = usage(
        *[
            ((T0 + timedelta(hours=h)).isoformat(), "chat", "gpt-4.1", A, "10.0.1.***", 3, 3, p, c, o, 1, 1)
            for h, (p, c, o) in enumerate(per_hour)
        ]
    )
    u["ReasoningTokens"] = 0.0
    rows, _ = build_rows(u, pd.DataFrame(), deps, RULES, b, T0, T0 + timedelta(hours=4))
    # independently: the input price is $2.00 per 1M before 2026-11-15 00:00 UTC and $2.40 from then
    want = 0.0
    for h, (p, c, o) in enumerate(per_hour):
        input_price = 2.0 if h < 2 else 2.4
        want += ((p - c) * input_price + c * 0.5 + o * 8.0) / 1e6
    assert rows["EffectiveCost"].sum() == pytest.approx(want, rel=1e-12)
    inputs = rows[rows["Meter"] == METER_INPUT].set_index("Hour")["UnitPrice"] * 1e6
    assert list(inputs.round(9)) == [2.0, 2.0, 2.4, 2.4]
    keys = rows[rows["Meter"] == METER_INPUT].set_index("Hour")["PriceKey"]
    assert keys.iloc[0] != keys.iloc[2] and "from 2026-11-15" in keys.iloc[2]
    assert set(rows.loc[rows["Meter"] == METER_CACHED, "UnitPrice"] * 1e6) == {0.5}
    assert set((rows.loc[rows["Meter"] == METER_OUTPUT, "UnitPrice"] * 1e6).round(9)) == {8.0}


def test_a_ptu_price_change_prices_each_hour_at_the_price_then() -> None:
    b = _with_price_change()
    deps = deployments(("ptu", "gpt-4.1", "GlobalProvisionedManaged", 15, 45_000))
    empty = usage()
    empty["ReasoningTokens"] = pd.Series(dtype="float64")
    rows, _ = build_rows(empty, pd.DataFrame(), deps, RULES, b, T0, T0 + timedelta(hours=4))
    ptu = rows[rows["Meter"] == METER_PTU]
    assert ptu["EffectiveCost"].sum() == pytest.approx(15 * (2 * 1.0 + 2 * 1.2))
    assert list(ptu.sort_values("Hour")["UnitPrice"]) == [1.0, 1.0, 1.2, 1.2]


def test_dated_refreshes_keep_the_history(tmp_path: Path) -> None:
    prices = tmp_path / "prices"
    old_rows = retail.group_items(items())
    retail.write_snapshot(
        prices, old_rows, endpoint="x", currency="USD", raw_items=1, now=datetime(2026, 10, 2, tzinfo=UTC)
    )
    new_items = [
        {**i, "retailPrice": 0.0024, "effectiveStartDate": f"{CHANGE}T00:00:00Z"}
        for i in items()
        if i["meterName"] == "gpt 4.1 Inp glbl Tokens"
    ]  # the newer pull lists only the new row of that meter
    others = [i for i in items() if i["meterName"] != "gpt 4.1 Inp glbl Tokens"]
    retail.write_snapshot(
        prices, retail.group_items([*others, *new_items]), endpoint="x", currency="USD", raw_items=1,
        now=datetime(2026, 11, 20, tzinfo=UTC),
    )  # fmt: skip
    cat: Catalogue = load_catalogue(tmp_path, today=AS_OF)
    b = PriceBook(cat)
    assert b.lookup("gpt-4.1", None, "GlobalStandard", "eastus", at="2026-11-01").input_per_1m == 2.0  # type: ignore[union-attr]
    assert b.lookup("gpt-4.1", None, "GlobalStandard", "eastus").input_per_1m == 2.4  # type: ignore[union-attr]
    assert "1 earlier refresh" in cat.label
    shown = [r for r in b.meters("gpt-4.1", "eastus") if r["meter"] == "gpt 4.1 Inp glbl Tokens"]
    assert [(r["effective"], r["source"]) for r in shown] == [
        ("2025-04-01", "refresh 2026-10-02"),
        (CHANGE, "refresh 2026-11-20"),
    ]


# --- reservations ------------------------------------------------------------------------------------


def test_reservation_amortisation() -> None:
    yearly = PtuReservation(deployment="d", reservation_id="r", term="P1Y", term_price=2652.0)
    monthly = PtuReservation(deployment="d", reservation_id="r", term="monthly", term_price=260.0)
    hourly = PtuReservation(deployment="d", reservation_id="r", hourly_price=0.31)
    assert yearly.amortised_per_hour == pytest.approx(2652.0 / 8760)
    assert monthly.amortised_per_hour == pytest.approx(260.0 / 730)
    assert hourly.amortised_per_hour == 0.31
    assert PtuReservation(deployment="d", reservation_id="r").amortised_per_hour is None
    with pytest.raises(ValidationError, match="not both"):
        PtuReservation(deployment="d", reservation_id="r", hourly_price=1.0, term_price=2.0)
    with pytest.raises(ValidationError):
        PtuReservation(deployment="d", reservation_id="r", term="P3Y")


def _ptu_world(reservation: PtuReservation | None) -> tuple[pd.DataFrame, float]:
    b = PriceBook(
        normalise(items(), "refreshed", "meters.json", as_of=AS_OF), reservations=[reservation] if reservation else []
    )
    deps = deployments(("ptu", "gpt-4.1", "GlobalProvisionedManaged", 20, 60_000))  # 3.6M tokens an hour
    u = usage(
        ("2026-11-14T22:10Z", "ptu", "gpt-4.1", A, "10.0.1.***", 2, 2, 900_000, 0, 0, 1, 1),  # 25% used
    )
    u["ReasoningTokens"] = 0.0
    rows, _ = build_rows(u, pd.DataFrame(), deps, RULES, b, T0, T0 + timedelta(hours=2))
    return rows, float(rows["EffectiveCost"].sum())


def test_a_partial_reservation_prices_its_ptus_at_the_amortised_price_and_the_rest_at_list() -> None:
    res = PtuReservation(
        deployment="ptu", reservation_id="ro-1", term="yearly", quantity=15, term_price=0.6 * 8760
    )  # 15 of 20 PTUs at $0.60 an hour
    rows, total = _ptu_world(res)
    ptu = rows[rows["Meter"] == METER_PTU]
    # independently: 2 hours x (15 PTU x $0.60 + 5 PTU x $1.00 list)
    assert total == pytest.approx(2 * (15 * 0.6 + 5 * 1.0))
    reserved = ptu[ptu["PriceSource"] == "reservation"]
    listed = ptu[ptu["PriceSource"] != "reservation"]
    assert reserved["Quantity"].sum() == pytest.approx(2 * 15) and listed["Quantity"].sum() == pytest.approx(2 * 5)
    assert set(reserved["UnitPrice"].round(9)) == {0.6} and set(listed["UnitPrice"]) == {1.0}
    assert reserved["PriceKey"].str.startswith("reservation ro-1 (yearly)").all()
    assert set(reserved["ListUnitPrice"]) == {1.0}  # the list cost stays at list: the saving is visible
    assert reserved["ListCost"].sum() - reserved["EffectiveCost"].sum() == pytest.approx(2 * 15 * 0.4)
    # used and idle lines both split by the reserved share
    assert set(reserved["Category"]) == {"allocated", "ptu idle"}
    no_res, list_total = _ptu_world(None)
    assert list_total == pytest.approx(2 * 20 * 1.0)
    assert (no_res["PriceSource"] != "reservation").all()


def test_a_reservation_without_a_price_stays_at_list_but_says_it_is_reserved() -> None:
    rows, total = _ptu_world(PtuReservation(deployment="ptu", reservation_id="ro-2"))
    ptu = rows[rows["Meter"] == METER_PTU]
    assert total == pytest.approx(2 * 20 * 1.0)
    assert (ptu["PriceSource"] == "reservation").all()
    assert ptu["PriceKey"].str.contains("no price configured").all()


def test_reservations_change_the_book_fingerprint_and_the_ptu_frame() -> None:
    cat = normalise(items(), "refreshed", "meters.json", as_of=AS_OF)
    res = PtuReservation(deployment="ptu", reservation_id="ro-1", quantity=50, hourly_price=0.5)
    assert PriceBook(cat).fingerprint() != PriceBook(cat, reservations=[res]).fingerprint()
    deps = deployments(("ptu", "gpt-4.1", "GlobalProvisionedManaged", 20, 60_000))
    frame = ptu_deployments_frame(deps, PriceBook(cat, reservations=[res]))
    assert frame.iloc[0]["ReservedPtus"] == 20  # a quantity above the capacity covers the capacity
    assert frame.iloc[0]["ReservedPerHour"] == 0.5 and frame.iloc[0]["ReservationId"] == "ro-1"


# --- the model router's fee --------------------------------------------------------------------------


def _router_world(overrides: list[Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    b = PriceBook(normalise(items(), "refreshed", "meters.json", as_of=AS_OF), overrides)
    deps = deployments(("router", "model-router", "GlobalStandard", 100, 100_000))
    # the logs name the routed model; the deployment is the router
    u = usage(("2026-11-14T22:10Z", "router", "gpt-4.1", A, "10.0.1.***", 2, 2, 1_000_000, 200_000, 10_000, 1, 1))
    u["ReasoningTokens"] = 0.0
    rows, _ = build_rows(u, pd.DataFrame(), deps, RULES, b, T0, T0 + timedelta(hours=1))
    return rows, rows[rows["Meter"] == METER_ROUTER]


def test_the_router_fee_is_charged_per_input_token_on_top_of_the_routed_model(tmp_path: Path) -> None:
    from queries.cost.overrides import load_overrides

    csv = tmp_path / "prices.csv"
    csv.write_text("model,sku,input_per_1m\nmodel-router,GlobalStandard,0.14\n")
    rows, fee = _router_world(load_overrides(csv))
    assert len(fee) == 1 and fee["Quantity"].iloc[0] == 1_000_000  # cached input included
    assert fee["EffectiveCost"].iloc[0] == pytest.approx(0.14)
    assert fee["Model"].iloc[0] == "model-router" and fee["PriceSource"].iloc[0] == "override"
    # the routed model's own tokens at gpt-4.1's prices, independently
    want = (800_000 * 2.0 + 200_000 * 0.5 + 10_000 * 8.0) / 1e6 + 0.14
    assert rows["EffectiveCost"].sum() == pytest.approx(want)
    # the fee's tokens are not counted again as prompt tokens
    assert rows.loc[rows["Meter"].isin([METER_INPUT, METER_CACHED]), "Quantity"].sum() == 1_000_000


def test_an_unlisted_router_fee_is_unpriced_not_free() -> None:
    rows, fee = _router_world([])
    assert len(fee) == 1 and not fee["Priced"].iloc[0] and fee["EffectiveCost"].isna().all()
    assert "model-router" in fee["PriceKey"].iloc[0]
    assert rows.loc[rows["Priced"], "EffectiveCost"].sum() == pytest.approx(
        (800_000 * 2.0 + 200_000 * 0.5 + 10_000 * 8.0) / 1e6
    )


# --- fine-tuned hosting hours ------------------------------------------------------------------------

TUNED = "gpt-4.1-2025-04-14.ft-0e208cf33a6a466994aff31a08aba678"


def _hosting_world(sku: str, rules: list[AttributionRule]) -> pd.DataFrame:
    b = PriceBook(normalise(items(), "refreshed", "meters.json", as_of=AS_OF))
    deps = deployments(("tuned", TUNED, sku, 10, 10_000))
    u = usage(
        # hour 22: A 30k tokens, the stranger 10k; hour 23: nobody
        ("2026-11-14T22:05Z", "tuned", TUNED, A, "10.0.1.***", 1, 1, 20_000, 0, 10_000, 1, 1),
        ("2026-11-14T22:06Z", "tuned", TUNED, "", "10.7.0.***", 1, 1, 10_000, 0, 0, 1, 1),
    )
    u["ReasoningTokens"] = 0.0
    rows, _ = build_rows(u, pd.DataFrame(), deps, rules, b, T0, T0 + timedelta(hours=2))
    return rows


def test_fine_tuned_hosting_hours_are_billed_every_hour_and_shared_by_tokens() -> None:
    rows = _hosting_world("GlobalStandard", RULES)
    host = rows[rows["Meter"] == METER_HOSTING]
    # independently: 2 hours x $1.70, whoever called
    assert host["EffectiveCost"].sum() == pytest.approx(2 * 1.7)
    hour22 = host[host["Hour"] == pd.Timestamp(T0)].set_index("Category")["Quantity"]
    assert hour22["allocated"] == pytest.approx(0.75) and hour22["unallocated"] == pytest.approx(0.25)
    idle = host[host["Hour"] == pd.Timestamp(T0 + timedelta(hours=1))]
    assert list(idle["Category"]) == ["unallocated"] and list(idle["Method"]) == ["hosting"]
    # the tokens are priced at the fine-tuned meters: 30k input x $2 + 10k output x $8, per 1M
    tokens = rows[rows["Meter"].isin([METER_INPUT, METER_OUTPUT])]
    assert tokens["EffectiveCost"].sum() == pytest.approx((30_000 * 2.0 + 10_000 * 8.0) / 1e6)


def test_an_idle_hosting_hour_goes_to_the_rule_naming_the_deployment() -> None:
    rules = [*RULES, AttributionRule(deployment_pattern="tuned", feature="ft-eval", team="team-ml")]
    rows = _hosting_world("GlobalStandard", rules)
    idle = rows[(rows["Meter"] == METER_HOSTING) & (rows["Hour"] == pd.Timestamp(T0 + timedelta(hours=1)))]
    assert list(idle["Team"]) == ["team-ml"] and list(idle["Category"]) == ["allocated"]


def test_the_developer_tier_has_no_hosting_fee() -> None:
    rows = _hosting_world("DeveloperTier", RULES)
    assert not (rows["Meter"] == METER_HOSTING).any()
    dev = rows[rows["Meter"] == METER_INPUT]
    assert dev["Priced"].all() and "Developer" in dev["PriceKey"].iloc[0]
