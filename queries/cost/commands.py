"""CLI subcommands owned by the cost layer: `prices refresh`, `prices show` (and `cost report`)."""

from __future__ import annotations

import argparse
import sys

from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

# --- prices -----------------------------------------------------------------------------------------


def prices_refresh(args: argparse.Namespace) -> int:
    """Pull the Azure Retail Prices API into `<data_dir>/prices/retail-YYYY-MM-DD.json`."""
    from datetime import UTC, datetime

    from tqdm import tqdm

    from queries.config import load_settings
    from queries.cost import retail
    from queries.cost.prices import normalise

    settings = load_settings()
    endpoint = getattr(args, "endpoint", None) or retail.RETAIL_PRICES_URL
    currency = settings.prices.currency
    with tqdm(desc=f"fetching {endpoint}", unit="page", file=sys.stderr) as bar:

        def progress(pages: int, items: int) -> None:
            bar.update(pages - bar.n)
            bar.set_postfix(items=items)

        try:
            items = retail.fetch_items(endpoint, currency, on_page=progress)
        except retail.RetailPricesError as e:
            bar.close()
            print(f"prices refresh: {e}; the previous snapshot stays in use", file=sys.stderr)
            return EXIT_FAILED
    rows = retail.group_items(items)
    catalogue = normalise(rows, "refreshed", "new snapshot")
    if not catalogue.tokens:
        print(
            f"prices refresh: {len(items)} rows but no Azure OpenAI token prices among them; nothing written",
            file=sys.stderr,
        )
        return EXIT_FAILED
    path = retail.write_snapshot(
        settings.data_dir / "prices",
        rows,
        endpoint=endpoint,
        currency=currency,
        raw_items=len(items),
        now=datetime.now(UTC),
    )
    print(
        f"wrote {len(rows):,} price rows ({len(items):,} API items) to {path}: "
        f"{len(catalogue.models())} models, PTU prices for {len(catalogue.ptu)} scope(s). "
        "This snapshot now replaces the bundled one."
    )
    return EXIT_OK


def _money(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:.6f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def prices_show(args: argparse.Namespace) -> int:
    """Prices per 1M tokens (and per PTU-hour) for one model in one region, by deployment type."""
    from queries.config import load_settings
    from queries.cost.prices import PriceBook
    from queries.cost.skus import SKUS

    settings = load_settings()
    book = PriceBook.load(settings)
    model = args.model.strip().lower()
    region = (args.region or "eastus").strip().lower()
    if model not in book.models():
        near = book.close_matches(model)
        hint = f" Close matches: {', '.join(near)}." if near else ""
        print(f"prices show: unknown model {args.model!r}.{hint}", file=sys.stderr)
        return EXIT_FAILED
    versions = book.versions(model) or [None]
    table: list[list[str]] = []
    footnote = False
    for sku in SKUS.values():
        if sku.mode == "provisioned":
            continue
        for tag in versions:
            price = book.lookup(model, tag, sku.name, region)
            if price is None:
                continue
            derived = "50% of" in price.key
            footnote = footnote or derived
            table.append(
                [
                    sku.label + (" *" if derived else ""),
                    sku.name,
                    tag or "any",
                    _money(price.input_per_1m),
                    _money(price.cached_input_per_1m),
                    _money(price.output_per_1m),
                    "-",
                    price.source,
                ]
            )
    token_rows = len(table)
    for sku in SKUS.values():
        if sku.mode != "provisioned":
            continue
        price = book.lookup(model, None, sku.name, region)
        if price is not None:
            table.append([sku.label, sku.name, "any", "-", "-", "-", _money(price.ptu_per_hour), price.source])
    print(f"{model} in {region}: USD per 1M tokens; PTU per PTU-hour (any model)")
    print(f"prices from the {book.catalogue.label}", end="")
    print(f"; discount {book.discount_pct:g}% applied" if book.discount_pct else "")
    if not token_rows:
        print(f"no token prices for {model} in {region}; try another --region", file=sys.stderr)
        return EXIT_FAILED
    header = ["deployment type", "sku", "version", "input", "cached input", "output", "PTU/hour", "source"]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    right = {3, 4, 5, 6}
    for row in [header, ["-" * w for w in widths], *table]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip())
    if footnote:
        print("* no batch meter in the price list: 50% of the standard price, as Microsoft documents for Batch")
    return EXIT_OK


# --- cost report ------------------------------------------------------------------------------------


def cost_report(args: argparse.Namespace) -> int:
    """`aoai-lens cost report [--month YYYY-MM] [--by ...] [--format table|csv|focus] [-o FILE]`."""
    from pathlib import Path

    from queries.config import load_settings
    from queries.cost.focus import focus_rows
    from queries.cost.report import By, allocate, month_period, render_table, statement
    from queries.lens import get_lens
    from queries.safecsv import to_csv

    settings = load_settings()
    by: By = getattr(args, "by", None) or "team"
    fmt = getattr(args, "format", None) or "table"
    lens = get_lens(settings)
    try:
        start, end, _ = month_period(getattr(args, "month", None), lens.now())
    except ValueError as e:
        print(f"cost report: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = allocate(lens, settings, start, end)
    except Exception as e:  # a missing workspace or an unreadable price file: say so, exit 1
        print(f"cost report: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    if fmt == "focus":
        deps = lens.deployments().frame
        ids = (
            dict(zip(deps["Resource"].astype(str).str.lower(), deps["ResourceId"], strict=False))
            if not deps.empty
            else {}
        )
        text = to_csv(focus_rows(result, ids))
    else:
        st = statement(result, by)
        text = to_csv(st, float_format="%.6f") if fmt == "csv" else render_table(st, result, by)
    output = getattr(args, "output", None)
    if output:
        Path(output).write_text(text)
        print(f"wrote {fmt} {by if fmt != 'focus' else ''} report for {start:%Y-%m} to {output}".replace("  ", " "))
    else:
        sys.stdout.write(text)
    if fmt != "table" or output:  # the table carries its notes itself
        for n in result.notices:
            print(f"cost report: note: {n}", file=sys.stderr)
    return EXIT_OK
