"""The FOCUS 1.2 export: conformance to our spec table (columns, types, nulls, allowed values) in CSV and
Parquet, one row per ledger row, quantities and units per meter, and money that agrees with the
chargeback statement per team to the cent and with the ledger computed apart."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from queries import lens as api
from queries.config import PtuReservation, Settings
from queries.cost import focus_export, focus_spec
from queries.cost.prices import PriceBook
from queries.cost.report import AllocationResult, allocate, month_period, statement
from queries.lens import Lens


@pytest.fixture(scope="module")
def lens(demo_settings: Settings, demo_end: datetime) -> Iterator[Lens]:
    lens = Lens.from_settings(demo_settings)
    lens.now = lambda: demo_end
    yield lens


@pytest.fixture(scope="module")
def period(demo_end: datetime) -> tuple[datetime, datetime, datetime]:
    # the month with the most demo days in it: this one, or the last one early in a month
    month = f"{demo_end:%Y-%m}" if demo_end.day > 4 else f"{demo_end.replace(day=1) - timedelta(days=1):%Y-%m}"
    return month_period(month, demo_end)


@pytest.fixture(scope="module")
def result(lens: Lens, demo_settings: Settings, period: tuple[datetime, datetime, datetime]) -> AllocationResult:
    # the reservation is part of the price book: the ledger prices the covered PTU-hours and says so
    settings = _settings_with_reservation(demo_settings)
    return allocate(lens, settings, period[0], period[1], book=PriceBook.load(settings))


def _settings_with_reservation(demo_settings: Settings) -> Settings:
    billing = demo_settings.billing.model_copy(
        update={
            "account_id": "billing-account-1",
            "account_name": "Contoso",
            "subscription_names": {"3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28": "contoso-prod"},
            "reservations": [
                PtuReservation(deployment="support-gpt4o-ptu", reservation_id="ro-123", name="ptu-1y", term="yearly")
            ],
        }
    )
    return demo_settings.model_copy(update={"billing": billing})


@pytest.fixture(scope="module")
def frame(
    result: AllocationResult, lens: Lens, demo_settings: Settings, period: tuple[datetime, datetime, datetime]
) -> pd.DataFrame:
    ctx = focus_export.context_from(
        _settings_with_reservation(demo_settings), lens.deployments().frame, period[0], period[2]
    )
    return focus_export.focus_frame(result.ledger, ctx)


def test_every_mandatory_column_of_focus_1_2_is_in_the_spec_table() -> None:
    mandatory = {c.name for c in focus_spec.COLUMNS if c.level == "Mandatory"}
    # FOCUS 1.2's Mandatory columns, listed here apart from the table so that dropping one fails
    assert mandatory == {
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
        "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargePeriodEnd",
        "ChargePeriodStart", "ContractedCost", "EffectiveCost", "InvoiceIssuerName", "ListCost",
        "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName",
    }  # fmt: skip
    assert all(c.name.startswith("x_") == (c.level == "Extension") for c in focus_spec.COLUMNS)


def test_export_conforms_to_the_spec_table(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == focus_spec.NAMES
    assert len(frame) > 100
    assert focus_export.conformance_problems(frame) == []
    # the checker itself catches what it should
    broken = frame.copy()
    broken.loc[0, "ChargeCategory"] = "Usage-ish"
    broken.loc[1, "BilledCost"] = math.nan
    problems = focus_export.conformance_problems(broken.drop(columns=["PublisherName"]))
    assert any(p.startswith("ChargeCategory: values ['Usage-ish']") for p in problems)
    assert any(p.startswith("BilledCost: 1 null") for p in problems)
    assert "PublisherName: missing (Mandatory)" in problems


@pytest.mark.parametrize("fmt", focus_export.FORMATS)
def test_export_round_trips_with_the_spec_types(frame: pd.DataFrame, fmt: str) -> None:
    data = focus_export.encode(frame, fmt)
    back = focus_export.read_export(data, fmt)
    assert list(back.columns) == focus_spec.NAMES and len(back) == len(frame)
    assert focus_export.conformance_problems(back) == []
    for c in focus_spec.COLUMNS:
        if c.kind == "Decimal":
            assert pd.api.types.is_float_dtype(back[c.name]), c.name
            pd.testing.assert_series_equal(back[c.name], frame[c.name], check_names=False, rtol=1e-9)
        elif c.kind == "DateTime":
            assert (pd.to_datetime(back[c.name], utc=True) == frame[c.name]).all(), c.name
        else:
            assert back[c.name].isna().equals(frame[c.name].isna()), c.name
    if fmt == "focus-parquet":
        schema = pq.read_schema(pa.BufferReader(data))
        for c in focus_spec.COLUMNS:
            field = schema.field(c.name)
            assert field.type == c.arrow_type and field.nullable == c.nullable, c.name
        assert schema.metadata[b"FocusVersion"] == b"1.2"
    else:
        first = data.decode().splitlines()[1].split(",")
        assert first[focus_spec.NAMES.index("ChargePeriodStart")].endswith(":00:00Z")


def test_one_row_per_priced_ledger_row_with_quantities_per_meter(result: AllocationResult, frame: pd.DataFrame) -> None:
    ledger = result.ledger[result.ledger["Priced"]]
    assert len(frame) == len(ledger)
    assert (frame["ChargePeriodEnd"] - frame["ChargePeriodStart"] == pd.Timedelta(hours=1)).all()
    ptu = frame["SkuMeter"] == "ptu_hour"
    tokens = frame[~ptu]
    assert set(tokens["ConsumedUnit"]) == {"Tokens"} and set(tokens["PricingUnit"]) == {"1000000 Tokens"}
    assert (tokens["PricingQuantity"] * 1e6 - tokens["ConsumedQuantity"]).abs().max() < 1e-6
    # ListCost = ListUnitPrice x PricingQuantity; ContractedCost = ContractedUnitPrice x PricingQuantity
    assert ((frame["ListUnitPrice"] * frame["PricingQuantity"] - frame["ListCost"]).abs() < 1e-9).all()
    assert ((frame["ContractedUnitPrice"] * frame["PricingQuantity"] - frame["ContractedCost"]).abs() < 1e-9).all()
    # a PTU hour is PTU-Hours: the demo's 15-PTU deployment draws at most 15 per hour (never "24 Hours")
    hours = frame[ptu]
    assert set(hours["PricingUnit"]) == {"PTU-Hours"} and set(hours["ConsumedUnit"]) == {"PTU-Hours"}
    per_hour = hours.groupby(["ResourceId", "ChargePeriodStart"])["ConsumedQuantity"].sum()
    assert per_hour.max() == pytest.approx(15.0) and (per_hour <= 15.0 + 1e-9).all()
    assert set(hours["ContractedUnitPrice"]) == {1.0}  # GlobalProvisionedManaged: $1 per PTU-hour
    assert set(frame["SkuMeter"]) >= {"input", "cached_input", "output", "embeddings", "ptu_hour"}
    by_meter = frame.groupby("SkuMeter")["ConsumedQuantity"].sum()
    want = ledger.groupby("Meter")["Quantity"].sum()
    pd.testing.assert_series_equal(by_meter.sort_index(), want.sort_index(), check_names=False, rtol=1e-12)
    assert frame["x_ReasoningTokens"].sum() == pytest.approx(ledger["ReasoningTokens"].sum())


def test_reservation_and_account_columns(frame: pd.DataFrame) -> None:
    res = frame[frame["CommitmentDiscountId"].notna()]
    assert set(res["ResourceName"]) == {"support-gpt4o-ptu"} and set(res["SkuMeter"]) == {"ptu_hour"}
    assert set(res["PricingCategory"]) == {"Committed"} and set(res["CommitmentDiscountType"]) == {"Reservation"}
    idle = res["x_AllocationCategory"] == "ptu idle"
    assert set(res.loc[idle, "CommitmentDiscountStatus"]) == {"Unused"}
    assert set(res.loc[~idle, "CommitmentDiscountStatus"]) == {"Used"}
    assert (res["CommitmentDiscountQuantity"] == res["ConsumedQuantity"]).all()
    assert set(frame.loc[frame["CommitmentDiscountId"].isna(), "PricingCategory"]) == {"Standard"}
    assert set(frame["BillingAccountId"]) == {"billing-account-1"} and set(frame["BillingAccountName"]) == {"Contoso"}
    assert set(frame["SubAccountId"]) == {"/subscriptions/3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28"}
    assert set(frame["SubAccountName"]) == {"contoso-prod"}
    assert frame["ResourceId"].str.contains("/providers/Microsoft.CognitiveServices/accounts/.+/deployments/").all()
    assert set(frame["RegionId"]) == {"eastus", "swedencentral"}
    assert set(frame["RegionName"]) == {"East US", "Sweden Central"}
    alloc = frame[frame["x_AllocationCategory"] == "allocated"]
    assert alloc["Tags"].str.contains('"team": ').all()
    assert frame.loc[frame["x_AllocationCategory"] == "ptu idle", "Tags"].isna().all()


def test_export_agrees_with_the_statement_per_team_to_the_cent(result: AllocationResult, frame: pd.DataFrame) -> None:
    st = statement(result, "team")
    lines = dict(zip(st["Team"], st["Cost"], strict=True))
    got = focus_export.team_totals(frame)
    assert {"support", "search", "growth", "unallocated", "probes", "ptu idle"} <= set(got)
    for team, cost in got.items():
        assert abs(lines[team] - cost) < 0.01, (team, lines[team], cost)
    assert round(frame["BilledCost"].sum(), 2) == lines["total"]
    # and with the ledger priced apart: tokens x unit price, PTU-hours x hourly price
    ledger = result.ledger[result.ledger["Priced"]]
    assert (ledger["Quantity"] * ledger["UnitPrice"]).sum() == pytest.approx(frame["EffectiveCost"].sum(), abs=1e-6)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, demo_settings: Settings, lens: Lens) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(demo_settings.data_dir))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_settings.demo_path))
    monkeypatch.setattr(api, "get_lens", lambda settings=None: lens)


def test_cli_export_writes_the_month_and_a_rerun_replaces_it(
    cli_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    period: tuple[datetime, datetime, datetime],
    result: AllocationResult,
) -> None:
    from dashboard.cli import main

    month = f"{period[0]:%Y-%m}"
    for fmt, suffix in (("focus-parquet", "parquet"), ("focus-csv", "csv")):
        for _ in range(2):
            assert main(["cost", "export", "--month", month, "--format", fmt, "--to", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        path = tmp_path / f"aoai-lens-focus-{month}.{suffix}"
        assert str(path) in out
        back = focus_export.read_export(path.read_bytes(), fmt)
        assert focus_export.conformance_problems(back) == []
        assert round(back["BilledCost"].sum(), 2) == round(result.total, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"aoai-lens-focus-{month}.csv",
        f"aoai-lens-focus-{month}.parquet",
    ]
    assert main(["cost", "export", "--month", "2026-13", "--to", str(tmp_path)]) == 2
    assert "not YYYY-MM" in capsys.readouterr().err


def test_the_period_bounds_are_the_month(frame: pd.DataFrame, period: tuple[datetime, datetime, datetime]) -> None:
    assert set(frame["BillingPeriodStart"]) == {pd.Timestamp(period[0])}
    assert set(frame["BillingPeriodEnd"]) == {pd.Timestamp(period[2])}
    assert frame["ChargePeriodStart"].min() >= pd.Timestamp(period[0])
    assert frame["ChargePeriodEnd"].max() <= pd.Timestamp(period[1]).ceil("h")
    assert period[0].tzinfo is UTC or period[0].utcoffset() == timedelta(0)


def test_the_subscription_names_the_account_when_no_account_is_configured(
    result: AllocationResult, lens: Lens, demo_settings: Settings, period: tuple[datetime, datetime, datetime]
) -> None:
    sub = "3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28"
    billing = demo_settings.billing.model_copy(update={"subscription_names": {sub: "contoso-prod"}})
    ctx = focus_export.context_from(
        demo_settings.model_copy(update={"billing": billing}), lens.deployments().frame, period[0], period[2]
    )
    frame = focus_export.focus_frame(result.ledger.head(50), ctx)
    assert set(frame["BillingAccountId"]) == {f"/subscriptions/{sub}"}
    assert set(frame["BillingAccountName"]) == {"contoso-prod"}  # not null: Azure names its accounts
    unnamed = focus_export.focus_frame(result.ledger.head(50), dataclasses.replace(ctx, subscription_names={}))
    assert unnamed["BillingAccountName"].isna().all()  # no name known: null, never an invented one
    named = dataclasses.replace(ctx, account_id="ba-1")  # a billing account without a configured name
    assert focus_export.focus_frame(result.ledger.head(50), named)["BillingAccountName"].isna().all()
