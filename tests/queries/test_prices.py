"""The price book over the bundled snapshot: known list prices, every demo deployment, hand-computed costs."""

from __future__ import annotations

from pathlib import Path

import azure_genai_prices as agp
import pandas as pd
import pytest

from queries.cost.prices import PriceBook, load_catalogue, normalise, unit_quantity, version_tag
from queries.demo.world import DEPLOYMENTS, resource


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> PriceBook:
    return PriceBook(load_catalogue(tmp_path_factory.mktemp("empty-data-dir")))


def usage(*rows: tuple[str, str, str, str, int, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["model", "version", "sku", "region", "prompt_tokens", "cached_tokens", "completion_tokens"]
    )


def test_known_list_prices_for_gpt_4o(book: PriceBook) -> None:
    glob = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "eastus")
    assert glob is not None and glob.source == "bundled"
    assert (glob.input_per_1m, glob.output_per_1m) == (2.50, 10.00)
    assert glob.cached_input_per_1m == 1.25  # 50 % of input for gpt-4o
    dz = book.lookup("gpt-4o", "2024-11-20", "DataZoneStandard", "eastus")
    assert (
        dz is not None
        and dz.input_per_1m == pytest.approx(1.1 * 2.50)
        and dz.output_per_1m == pytest.approx(1.1 * 10.00)
    )
    batch = book.lookup("gpt-4o", "2024-11-20", "GlobalBatch", "eastus")
    assert batch is not None and (batch.input_per_1m, batch.output_per_1m) == (1.25, 5.00)
    assert "50% of" not in batch.key  # Azure lists the batch meters themselves
    assert glob.key == "gpt-4o 1120 · Global · eastus"


def test_ptu_hourly_prices_by_scope_and_region(book: PriceBook) -> None:
    got = {
        sku: book.lookup("gpt-4o", "2024-11-20", sku, "eastus")
        for sku in ("GlobalProvisionedManaged", "DataZoneProvisionedManaged", "ProvisionedManaged")
    }
    assert {k: p.ptu_per_hour for k, p in got.items() if p} == {
        "GlobalProvisionedManaged": 1.00,
        "DataZoneProvisionedManaged": 1.10,
        "ProvisionedManaged": 2.00,
    }
    assert all(p and p.input_per_1m is None and p.output_per_1m is None for p in got.values())
    sweden = book.lookup("gpt-4o", "2024-11-20", "ProvisionedManaged", "swedencentral")
    assert sweden is not None and sweden.ptu_per_hour == 2.20  # regional PTU costs more outside the US


@pytest.mark.parametrize("dep", DEPLOYMENTS, ids=lambda d: d.name)
def test_every_demo_deployment_is_priced(book: PriceBook, dep) -> None:  # type: ignore[no-untyped-def]
    price = book.lookup(dep.model, dep.version, dep.sku, resource(dep.resource).location)
    assert price is not None, (
        f"{dep.name}: {book.explain(dep.model, dep.version, dep.sku, resource(dep.resource).location)[1]}"
    )
    if dep.sku.endswith("ProvisionedManaged"):
        assert price.ptu_per_hour and price.ptu_per_hour > 0
    else:
        assert price.input_per_1m and price.input_per_1m > 0
        assert (price.output_per_1m is not None) == (dep.kind == "chat")


def test_demo_prices_match_the_published_list(book: PriceBook) -> None:
    def per_1m(model: str, version: str, sku: str, region: str) -> tuple[float | None, ...]:
        p = book.lookup(model, version, sku, region)
        assert p is not None
        return (p.input_per_1m, p.cached_input_per_1m, p.output_per_1m)

    assert per_1m("gpt-4o-mini", "2024-07-18", "GlobalStandard", "eastus") == (0.15, 0.075, 0.60)
    # Regional prices differ by region: swedencentral is not eastus.
    assert per_1m("gpt-4o-mini", "2024-07-18", "Standard", "swedencentral") == (0.165, 0.091, 0.66)
    assert per_1m("gpt-4o-mini", "2024-07-18", "Standard", "eastus") == (0.165, 0.083, 0.66)
    assert per_1m("gpt-4.1", "2025-04-14", "DataZoneStandard", "swedencentral") == (2.20, 0.55, 8.80)
    assert per_1m("o4-mini", "2025-04-16", "GlobalStandard", "eastus") == (1.10, 0.275, 4.40)
    assert per_1m("text-embedding-3-small", "1", "Standard", "swedencentral") == (0.025, None, None)
    assert per_1m("text-embedding-3-small", "1", "Standard", "eastus") == (0.022, None, None)
    assert per_1m("text-embedding-3-large", "1", "GlobalStandard", "eastus") == (0.13, None, None)
    # "Azure OpenAI Embedding" is its own product and holds the Data Zone embedding meters.
    assert per_1m("text-embedding-3-small", "1", "DataZoneStandard", "eastus") == (0.022, None, None)


def test_azure_genai_prices_alone_cannot_price_the_demo() -> None:
    """Why the package is wrapped rather than called: its model ids, SKUs, PTU and regions."""
    one = agp.Usage(input_tokens=1000, output_tokens=100)
    for model in ("gpt-4o-mini", "o4-mini"):  # known only as gpt-4o-mini-0718, o4-mini-0416
        with pytest.raises(agp.ModelNotFound):
            agp.calc_price(one, model=model)
    # Plain "gpt-4o" is the 2024-08-06 version; 2024-05-13 costs twice as much and 2024-11-20 has its own meters.
    assert agp.get_meters("gpt-4o") and all("0806" in m.meter_name for m in agp.get_meters("gpt-4o"))
    # No provisioned (PTU) meter survives its parser.
    assert not any("provisioned" in m.meter_name.lower() for name in agp.list_models() for m in agp.get_meters(name))
    # A regional price needs a region, and the package knows no deployment SKU names.
    with pytest.raises(agp.AmbiguousRegionPrice):
        agp.calc_price(agp.Usage(input_tokens=1000), model="text-embedding-3-small", deployment="regional")
    with pytest.raises(ValueError):
        agp.calc_price(one, model="gpt-4.1", deployment="DataZoneStandard")


def test_hand_computed_costs(book: PriceBook) -> None:
    frame = usage(
        # 600k uncached × $2.50 + 400k cached × $1.25 + 200k out × $10 = 1.50 + 0.50 + 2.00
        ("gpt-4o", "2024-11-20", "GlobalStandard", "eastus", 1_000_000, 400_000, 200_000),
        # batch: 1M uncached × $1.25 + 1M cached at the batch input rate (no batch cached meter) + 1M out × $5
        ("gpt-4o", "2024-11-20", "GlobalBatch", "eastus", 2_000_000, 1_000_000, 1_000_000),
        # 800k × $2.20 + 200k × $0.55 + 100k × $8.80 = 1.76 + 0.11 + 0.88
        ("gpt-4.1", "2025-04-14", "DataZoneStandard", "swedencentral", 1_000_000, 200_000, 100_000),
        # 4M × $0.025
        ("text-embedding-3-small", "1", "Standard", "swedencentral", 4_000_000, 0, 0),
    )
    out = book.price_usage(frame)
    assert out["priced"].tolist() == [True] * 4
    assert out["input_cost"].tolist() == pytest.approx([1.50, 1.25, 1.76, 0.10])
    assert out["cached_cost"].tolist() == pytest.approx([0.50, 1.25, 0.11, 0.0])
    assert out["output_cost"].tolist() == pytest.approx([2.00, 5.00, 0.88, 0.0])
    assert out["cost"].tolist() == pytest.approx([4.00, 7.50, 2.75, 0.10])
    assert out["billing"].tolist() == ["tokens"] * 4
    assert out["price_key"][0] == "gpt-4o 1120 · Global · eastus"
    assert list(out.columns[:7]) == list(frame.columns) and out.index.equals(frame.index)


def test_unknown_usage_is_unpriced_never_zero(book: PriceBook) -> None:
    frame = usage(
        ("gpt-9-turbo", "2030-01-01", "GlobalStandard", "eastus", 1000, 0, 10),
        ("gpt-4o", "2024-11-20", "DeveloperTier", "eastus", 1000, 0, 10),  # a SKU the book does not price
        ("gpt-4o", "2030-01-01", "GlobalStandard", "eastus", 1000, 0, 10),  # a version it does not know
        ("gpt-4o", "2024-11-20", "Standard", "westeurope", 1000, 0, 10),  # a region the regional list lacks
        ("text-embedding-3-large", "1", "GlobalStandard", "eastus", 1000, 0, 5),  # output on an embedding
        ("gpt-4o", "2024-11-20", "GlobalStandard", "eastus", 1000, 0, 10),
    )
    out = book.price_usage(frame)
    assert out["priced"].tolist() == [False] * 5 + [True]
    assert out["cost"][:5].isna().all() and out["input_cost"][:5].isna().all()
    assert out["billing"][:5].eq("unpriced").all()
    assert out["price_key"][0] == "unpriced: unknown model 'gpt-9-turbo'"
    assert "priced versions: 0513, 0806, 1120" in out["price_key"][2]
    assert book.lookup("gpt-9-turbo", None, "GlobalStandard", "eastus") is None
    assert book.close_matches("gpt4o-mini")[0] == "gpt-4o-mini"


def test_provisioned_usage_costs_nothing_per_token(book: PriceBook) -> None:
    out = book.price_usage(usage(("gpt-4o", "2024-11-20", "ProvisionedManaged", "eastus", 5000, 1000, 500)))
    assert out["priced"][0] and out["billing"][0] == "provisioned" and out["cost"][0] == 0.0
    assert out["price_key"][0] == "PTU Regional · eastus"


def test_empty_frame_and_missing_columns(book: PriceBook) -> None:
    empty = book.price_usage(usage())
    assert len(empty) == 0 and "cost" in empty.columns
    with pytest.raises(ValueError, match="completion_tokens"):
        book.price_usage(
            pd.DataFrame(
                {"model": ["gpt-4o"], "version": ["x"], "sku": ["Standard"], "region": ["eastus"], "prompt_tokens": [1]}
            )
        )


def test_versions_and_regions(book: PriceBook) -> None:
    old = book.lookup("gpt-4o", "2024-05-13", "GlobalStandard", "eastus")
    assert old is not None and (old.input_per_1m, old.cached_input_per_1m, old.output_per_1m) == (5.0, None, 15.0)
    assert book.lookup("gpt-4.1", "2031-01-01", "GlobalStandard", "eastus") is not None  # one unversioned list
    assert book.lookup("gpt-4o", None, "GlobalStandard", "eastus") is None  # three versions: which one?
    mini = book.lookup("gpt-4o-mini", None, "GlobalStandard", "eastus")  # only one version exists
    assert mini is not None and mini.input_per_1m == 0.15
    east = book.lookup("gpt-4o", "2024-11-20", "Standard", "eastus")
    sweden = book.lookup("gpt-4o", "2024-11-20", "Standard", "swedencentral")
    assert east and sweden and (east.input_per_1m, sweden.input_per_1m) == (2.75, 3.025)
    anywhere = book.lookup(
        "gpt-4o", "2024-11-20", "GlobalStandard", "usgovvirginia"
    )  # not listed; one price everywhere
    assert anywhere is not None and anywhere.input_per_1m == 2.5 and anywhere.key.endswith("all regions")
    assert version_tag("2024-11-20") == "1120" and version_tag("1") is None and version_tag("0718") == "0718"


def test_units_are_read_per_row() -> None:
    assert unit_quantity("1K") == ("tokens", 1000.0)
    assert unit_quantity("1M") == ("tokens", 1_000_000.0)
    assert unit_quantity("1 Hour") == unit_quantity("1/Hour") == ("hours", 1.0)
    assert unit_quantity("1/Month") == ("period", 30.4375) and unit_quantity("100") == ("count", 100.0)
    assert unit_quantity("1 Second") is None and unit_quantity("") is None
    cat = normalise(
        [
            {
                "productName": "Azure OpenAI GPT5",
                "meterName": "GPT 5 Inpt Glbl 1M Tokens",
                "unitOfMeasure": "1M",
                "retailPrice": 1.25,
                "effectiveStartDate": "2025-08-01",
                "regions": ["eastus"],
            },
            {
                "productName": "Azure OpenAI GPT5",
                "meterName": "gpt 5 pro inp glbl Tokens",
                "unitOfMeasure": "1K",
                "retailPrice": 0.015,
                "effectiveStartDate": "2025-10-01",
                "regions": ["eastus"],
            },
            # superseded (older), current, and announced-but-future rows of one meter
            {
                "productName": "Azure OpenAI GPT5",
                "meterName": "GPT 5 outpt Glbl 1M Tokens",
                "unitOfMeasure": "1M",
                "retailPrice": 12.0,
                "effectiveStartDate": "2025-01-01",
                "regions": ["eastus"],
            },
            {
                "productName": "Azure OpenAI GPT5",
                "meterName": "GPT 5 outpt Glbl 1M Tokens",
                "unitOfMeasure": "1M",
                "retailPrice": 10.0,
                "effectiveStartDate": "2025-08-01",
                "regions": ["eastus"],
            },
            {
                "productName": "Azure OpenAI GPT5",
                "meterName": "GPT 5 outpt Glbl 1M Tokens",
                "unitOfMeasure": "1M",
                "retailPrice": 8.0,
                "effectiveStartDate": "2027-01-01",
                "regions": ["eastus"],
            },
        ],
        "bundled",
        "test",
        as_of="2026-11-25",
    )
    b = PriceBook(cat)
    five, pro = (
        b.lookup("gpt-5", None, "GlobalStandard", "eastus"),
        b.lookup("gpt-5-pro", None, "GlobalStandard", "eastus"),
    )
    assert five and pro and (five.input_per_1m, five.output_per_1m, pro.input_per_1m) == (1.25, 10.0, 15.0)


def test_bundled_snapshot_parses_without_conflicts_for_demo_models(book: PriceBook) -> None:
    demo = {d.model for d in DEPLOYMENTS}
    clashes = [c for c in book.catalogue.conflicts if c.split(" ")[0] in demo]
    assert clashes == []


def test_load_prefers_nothing_when_data_dir_is_missing(tmp_path: Path) -> None:
    assert load_catalogue(tmp_path / "nowhere").source == "bundled"
