"""`prices refresh` against a local server replaying recorded Retail Prices pages, and `prices show`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes.retail_server import PAGES, RetailServer

from dashboard.cli import main
from queries.config import load_settings
from queries.cost import retail
from queries.cost.prices import PriceBook, load_catalogue
from queries.demo.world import DEPLOYMENTS, resource


@pytest.fixture
def server() -> Iterator[RetailServer]:
    with RetailServer() as s:
        s.throttle = {1: 1}  # the first request for page 2 is throttled once
        yield s


@pytest.fixture
def naps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A fake clock: records the waits instead of sleeping."""
    waits: list[float] = []
    monkeypatch.setattr(retail, "_sleep", waits.append)
    return waits


@pytest.fixture
def data_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = clean_env / "data"
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(path))
    return path


def test_fetch_follows_pages_and_honours_retry_after(server: RetailServer, naps: list[float]) -> None:
    seen: list[tuple[int, int]] = []
    items = retail.fetch_items(server.url, on_page=lambda pages, n: seen.append((pages, n)))
    assert len(items) == sum(p["Count"] for p in PAGES) == 64
    assert naps == [3.0]  # one 429, waited as Retry-After said
    assert len(server.requests) == 4  # page 1, 429, page 2, page 3
    first = server.requests[0]
    assert first["$filter"] == ["contains(productName, 'Azure OpenAI')"]
    assert first["currencyCode"] == ["'USD'"] and first["api-version"] == [retail.API_VERSION]
    assert [q.get("$skip") for q in server.requests[1:]] == [["1000"], ["1000"], ["2000"]]
    assert seen == [(1, 18), (2, 42), (3, 64)]


def test_fetch_gives_up_after_bounded_retries(naps: list[float]) -> None:
    with RetailServer() as s:
        s.throttle = {0: 99}
        s.retry_after = "600"  # longer than we are willing to wait: capped
        with pytest.raises(retail.RetailPricesError, match="gave up after 5 retries \\(HTTP 429\\)"):
            retail.fetch_items(s.url)
        assert len(s.requests) == retail.MAX_RETRIES + 1
    assert naps == [retail.MAX_RETRY_WAIT_S] * retail.MAX_RETRIES


def test_grouping_drops_reservations_and_folds_regions() -> None:
    items = [i for p in PAGES for i in p["Items"]]
    rows = retail.group_items(items)
    assert all(r["meterName"] for r in rows)
    glbl = [r for r in rows if r["meterName"] == "Provisioned Managed Global Unit"]
    assert [(r["retailPrice"], r["regions"]) for r in glbl] == [
        (1.0, ["eastus", "swedencentral"])
    ]  # no 8760 reservation
    units = {r["unitOfMeasure"] for r in rows}
    assert {"1K", "1M", "1/Hour", "1 Hour", "1/Month"} <= units


def test_refresh_command_writes_a_dated_snapshot_that_replaces_the_bundled_one(
    server: RetailServer, naps: list[float], data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prices", "refresh", "--endpoint", server.url]) == 0
    assert naps == [3.0]
    path = data_dir / "prices" / f"retail-{datetime.now(UTC):%Y-%m-%d}.json"
    snap = json.loads(path.read_text())
    assert snap["endpoint"] == server.url and snap["raw_items"] == 64 and snap["currency"] == "USD"
    assert "wrote" in capsys.readouterr().out

    book = PriceBook.load(load_settings())
    assert book.catalogue.source == "refreshed"
    gpt4o = book.lookup("gpt-4o", "2024-11-20", "GlobalStandard", "eastus")
    assert gpt4o is not None and gpt4o.source == "refreshed"
    assert (gpt4o.input_per_1m, gpt4o.cached_input_per_1m, gpt4o.output_per_1m) == (2.5, 1.25, 10.0)
    # a "1M" row and a "1K" row land on the same per-1M scale
    gpt5 = book.lookup("gpt-5", None, "GlobalStandard", "swedencentral")
    assert gpt5 is not None and (gpt5.input_per_1m, gpt5.output_per_1m) == (1.25, 10.0)
    # the superseded row (0.0825) loses to the current one; regional prices differ by region
    sweden = book.lookup("gpt-4o-mini", "2024-07-18", "Standard", "swedencentral")
    assert sweden is not None and sweden.cached_input_per_1m == 0.091
    assert book.lookup("gpt-4o", "2024-11-20", "Standard", "swedencentral").input_per_1m == 3.025  # type: ignore[union-attr]
    # PTU from "1/Hour" and "1 Hour" rows; the monthly and reservation rows are not hourly prices
    assert book.lookup("gpt-4o", "2024-11-20", "GlobalProvisionedManaged", "eastus").ptu_per_hour == 1.0  # type: ignore[union-attr]
    assert book.lookup("gpt-4o", "2024-11-20", "ProvisionedManaged", "swedencentral").ptu_per_hour == 2.2  # type: ignore[union-attr]
    # the fine-tuned meter does not become a second gpt-4o-mini price
    assert book.lookup("gpt-4o-mini", "2024-07-18", "GlobalStandard", "swedencentral").input_per_1m == 0.15  # type: ignore[union-attr]
    for dep in DEPLOYMENTS:
        price = book.lookup(dep.model, dep.version, dep.sku, resource(dep.resource).location)
        assert price is not None and price.source == "refreshed", dep.name


def test_failed_refresh_writes_nothing(naps: list[float], data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with RetailServer() as s:
        s.throttle = {0: 99}
        s.retry_after = "1"
        assert main(["prices", "refresh", "--endpoint", s.url]) == 1
    assert "gave up" in capsys.readouterr().err
    assert not (data_dir / "prices").exists()
    assert load_catalogue(data_dir).source == "bundled"


def test_newest_snapshot_wins(tmp_path: Path) -> None:
    prices = tmp_path / "prices"
    rows = retail.group_items(PAGES[0]["Items"])
    now = datetime(2026, 11, 1, tzinfo=UTC)
    retail.write_snapshot(prices, rows, endpoint="x", currency="USD", raw_items=1, now=now)
    newer = retail.write_snapshot(prices, rows[:3], endpoint="y", currency="USD", raw_items=1, now=now.replace(day=20))
    (prices / "retail-notes.json").write_text("{}")
    assert retail.newest_snapshot(prices) == newer
    assert load_catalogue(tmp_path).label.startswith(f"refreshed snapshot {newer}")


def test_show_prints_prices_per_1m_by_deployment_type(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "show", "gpt-4o"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "gpt-4o in eastus: USD per 1M tokens; PTU per PTU-hour (any model)"
    row = next(line.split() for line in out if line.startswith("Global ") and " 1120 " in line)
    # input, cached input, cache write (not billed for gpt-4o), output, PTU/hour, in force from, source
    assert row == ["Global", "GlobalStandard", "1120", "2.50", "1.25", "-", "10.00", "-", "2024-12-01", "bundled"]
    dz = next(line.split() for line in out if line.startswith("Data Zone ") and " 1120 " in line)
    assert dz[4:8] == ["2.75", "1.375", "-", "11.00"]
    ptu = next(line.split() for line in out if line.startswith("PTU Regional"))
    assert ptu[-3:] == ["2.00", "2024-04-01", "bundled"]
    # then every meter: SKU and meter names, the unit as Azure gives it, the price per normalised unit
    meter = next(line for line in out if "gpt 4o 1120 cached Inp Data Zone Tokens" in line)
    assert "1K" in meter and "1.375/1M tokens" in meter and "2024-12-01" in meter and "bundled 2026-08-11" in meter
    assert meter.split()[:3] == ["Data", "Zone", "standard"]
    assert any("Provisioned Managed Regional Unit" in line and "2.00/hour" in line for line in out)


def test_show_region_and_unknown_model(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prices", "show", "text-embedding-3-small", "--region", "swedencentral"]) == 0
    out = capsys.readouterr().out
    regional = next(line.split() for line in out.splitlines() if line.startswith("Regional "))
    assert regional[:4] == ["Regional", "Standard", "any", "0.025"]
    assert "* no batch meter" in out  # embeddings have no batch meter: the derived price is marked

    assert main(["prices", "show", "gpt-4o-mni"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'gpt-4o-mni'" in err and "Close matches: gpt-4o-mini" in err


def test_show_names_the_configured_reservations(clean_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (clean_env / "aoai-lens.toml").write_text(
        "[[billing.reservations]]\n"
        'deployment = "support-gpt4o-ptu"\nreservation_id = "ro-123"\nterm = "yearly"\n'
        "quantity = 15\nterm_price = 2628.0\n"
    )
    assert main(["prices", "show", "gpt-4o"]) == 0
    out = capsys.readouterr().out
    assert "reservation ro-123 (yearly) on support-gpt4o-ptu: 15 PTUs at 0.30 per PTU-hour amortised" in out
