"""The user's override file and discount: custom prices win field by field, bad rows refuse to start."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from queries.config import ConfigError, load_settings
from queries.cost.overrides import load_overrides
from queries.cost.prices import PriceBook, load_catalogue

GOOD = """\
# negotiated prices (USD per 1M tokens; PTU per hour)
model,version,sku,region,input_per_1m,cached_input_per_1m,output_per_1m,ptu_per_hour,net
gpt-4o,2024-11-20,GlobalStandard,,2.00,,8.00,,
gpt-4o,2024-11-20,GlobalStandard,swedencentral,1.90,,,,
gpt-4o,*,ProvisionedManaged,eastus,,,,1.50,true
contoso-ft-model,,GlobalStandard,,3.00,1.00,12.00,,true
"""


@pytest.fixture
def settings(clean_env: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    csv = clean_env / "prices.csv"
    csv.write_text(GOOD)
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("AOAI_LENS_PRICES__OVERRIDES_FILE", str(csv))
    monkeypatch.setenv("AOAI_LENS_PRICES__DISCOUNT_PCT", "10")
    return load_settings()


def test_override_and_discount(settings) -> None:  # type: ignore[no-untyped-def]
    book = PriceBook.load(settings)
    p = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "eastus")
    assert p is not None and p.source == "override"
    # 10 % off the override's 2.00 and 8.00; cached comes from the list (1.25) and is discounted too
    assert (p.input_per_1m, p.cached_input_per_1m, p.output_per_1m) == pytest.approx((1.80, 1.125, 7.20))
    assert p.key.startswith(f"override {settings.prices.overrides_file}:3 over gpt-4o 1120 · Global · eastus")
    assert p.key.endswith("−10%")
    # the region-specific row beats the any-region one, and only replaces what it gives
    s = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "swedencentral")
    assert s is not None and (s.input_per_1m, s.output_per_1m) == pytest.approx((1.71, 9.00))
    # a net price is not discounted again; other scopes keep list price minus the discount
    ptu = book.lookup("gpt-4o", "2024-11-20", "ProvisionedManaged", "eastus")
    assert ptu is not None and ptu.ptu_per_hour == 1.50 and ptu.source == "override"
    assert book.lookup("gpt-4o", "2024-11-20", "GlobalProvisionedManaged", "eastus").ptu_per_hour == pytest.approx(0.90)  # type: ignore[union-attr]
    dz = book.lookup("gpt-4o", "2024-11-20", "DataZoneStandard", "eastus")
    assert dz is not None and dz.source == "bundled" and dz.input_per_1m == pytest.approx(2.475)
    # a model the price list does not know becomes priceable
    ft = book.lookup("contoso-ft-model", "1", "GlobalStandard", "eastus")
    assert ft is not None and (ft.input_per_1m, ft.cached_input_per_1m, ft.output_per_1m) == (3.0, 1.0, 12.0)
    assert "contoso-ft-model" in book.models()


def test_price_usage_with_overrides(settings) -> None:  # type: ignore[no-untyped-def]
    book = PriceBook.load(settings)
    frame = pd.DataFrame(
        [
            # 500k × 1.80 + 500k × 1.125 + 100k × 7.20 = 0.90 + 0.5625 + 0.72
            ("gpt-4o", "2024-11-20", "GlobalStandard", "eastus", 1_000_000, 500_000, 100_000),
            ("contoso-ft-model", "", "GlobalStandard", "eastus", 1_000_000, 0, 1_000_000),  # 3 + 12
        ],
        columns=["model", "version", "sku", "region", "prompt_tokens", "cached_tokens", "completion_tokens"],
    )
    out = book.price_usage(frame)
    assert out["cost"].tolist() == pytest.approx([2.1825, 15.0])
    assert out["priced"].all()


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("gpt-4o,,GlobalStandrd,,2.0,,,,", "unknown sku 'GlobalStandrd'"),
        ("gpt-4o,,GlobalStandard,,two,,,,", "input_per_1m 'two' is not a number"),
        ("gpt-4o,,GlobalStandard,,-1,,,,", "input_per_1m '-1' must be a number ≥ 0"),
        ("gpt-4o,,GlobalStandard,,2.0,,,1.0,", "ptu_per_hour applies to provisioned SKUs"),
        ("gpt-4o,,ProvisionedManaged,,2.0,,,,", "give ptu_per_hour only"),
        ("gpt-4o,,GlobalStandard,,,,,,", "no price given"),
        (",,GlobalStandard,,1,,,,", "model is empty"),
        ("gpt-4o,,GlobalStandard,,1,,,,maybe", "net 'maybe' must be true or false"),
        ("gpt-4o,,GlobalStandard,,1,,,,,,", "11 values for 9 columns"),
    ],
)
def test_bad_rows_are_reported_with_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(
        "model,version,sku,region,input_per_1m,cached_input_per_1m,output_per_1m,ptu_per_hour,net\n\n# note\n"
        + line
        + "\n"
    )
    with pytest.raises(ConfigError) as e:
        load_overrides(path)
    assert len(e.value.problems) == 1
    assert e.value.problems[0].startswith(f"{path}:4: ") and problem in e.value.problems[0]


def test_every_problem_is_listed_and_duplicates_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("model,sku,input_per_1m\ngpt-4o,Standard,1\ngpt-4o,Standard,2\ngpt-4o,Nope,x\n")
    with pytest.raises(ConfigError) as e:
        load_overrides(path)
    assert e.value.problems == [
        f"{path}:3: duplicates the row at {path}:2",
        f"{path}:4: unknown sku 'Nope'; one of GlobalStandard, DataZoneStandard, Standard, GlobalBatch, DataZoneBatch, "
        "GlobalProvisionedManaged, DataZoneProvisionedManaged, ProvisionedManaged, DeveloperTier",
        f"{path}:4: input_per_1m 'x' is not a number",
    ]
    path.write_text("model,sku,price\n")
    with pytest.raises(ConfigError, match=r"prices.csv:1: unknown column\(s\) price"):
        load_overrides(path)
    with pytest.raises(ConfigError, match="cannot read the price override file"):
        load_overrides(tmp_path / "missing.csv")


def test_a_bad_override_file_refuses_to_start(clean_env: Path) -> None:
    (clean_env / "prices.csv").write_text("model,sku,input_per_1m\ngpt-4o,Standard,-3\n")
    config = clean_env / "aoai-lens.toml"
    config.write_text('[prices]\ndiscount_pct = 5\noverrides_file = "prices.csv"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(config)
    assert len(e.value.problems) == 1
    assert "prices.csv:2: input_per_1m '-3' must be a number ≥ 0" in e.value.problems[0]


def test_without_overrides_the_discount_applies_to_list_prices(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AOAI_LENS_PRICES__DISCOUNT_PCT", "20")
    book = PriceBook.load(load_settings())
    p = book.lookup("gpt-4o-mini", "2024-07-18", "GlobalStandard", "eastus")
    assert p is not None and (p.input_per_1m, p.output_per_1m) == pytest.approx((0.12, 0.48)) and p.source == "bundled"
    undiscounted = PriceBook(load_catalogue(clean_env)).lookup("gpt-4o-mini", "2024-07-18", "GlobalStandard", "eastus")
    assert undiscounted is not None and undiscounted.input_per_1m == 0.15
