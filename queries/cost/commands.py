"""CLI subcommands owned by the cost layer: `prices refresh`, `prices show`, `cost report` and `cost ledger`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

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


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells).rstrip())


_SCOPE_WORDS = {"global": "Global", "data_zone": "Data Zone", "regional": "Regional"}


def prices_show(args: argparse.Namespace) -> int:
    """Prices per 1M tokens (and per PTU-hour) for one model in one region, by deployment type, then
    every price-list row behind them."""
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
        for tier in (None, "priority") if sku.mode == "standard" else (None,):
            for tag in versions:
                price = book.lookup(model, tag, sku.name, region, tier=tier)
                if price is None:
                    continue
                derived = "50% of" in price.key
                footnote = footnote or derived
                label = sku.label + (" Priority" if tier else "")
                table.append(
                    [
                        label + (" *" if derived else ""),
                        sku.name,
                        tag or "any",
                        _money(price.input_per_1m),
                        _money(price.cached_input_per_1m),
                        _money(price.cache_write_per_1m),
                        _money(price.output_per_1m),
                        "-",
                        price.effective or "-",
                        price.source,
                    ]
                )
    token_rows = len(table)
    for sku in SKUS.values():
        if sku.mode != "provisioned":
            continue
        price = book.lookup(model, None, sku.name, region)
        if price is not None:
            table.append(
                [
                    sku.label,
                    sku.name,
                    "any",
                    "-",
                    "-",
                    "-",
                    "-",
                    _money(price.ptu_per_hour),
                    price.effective or "-",
                    price.source,
                ]
            )
    print(f"{model} in {region}: USD per 1M tokens; PTU per PTU-hour (any model)")
    print(f"prices from the {book.catalogue.label}", end="")
    print(f"; discount {book.discount_pct:g}% applied" if book.discount_pct else "")
    if not token_rows:
        print(f"no token prices for {model} in {region}; try another --region", file=sys.stderr)
        return EXIT_FAILED
    header = [
        "deployment type",
        "sku",
        "version",
        "input",
        "cached input",
        "cache write",
        "output",
        "PTU/hour",
        "from",
        "source",
    ]
    _table(header, table, {3, 4, 5, 6, 7})
    if footnote:
        print("* no batch meter in the price list: 50% of the standard price, as Microsoft documents for Batch")
    for r in book.reservations:
        amortised = r.amortised_per_hour
        print(
            f"reservation {r.reservation_id} ({r.term}) on {r.deployment}: "
            f"{r.quantity if r.quantity else 'all'} PTUs at "
            + (
                f"{_money(amortised)} per PTU-hour amortised"
                if amortised is not None
                else "the list price (no price configured)"
            )
        )
    meters = book.meters(model, region)
    print()
    print(f"meters ({len(meters)}): every price-list row behind these prices, each start date, before any discount")
    rows = [
        [
            _SCOPE_WORDS.get(m["scope"], m["scope"]),
            m["mode"].replace("_", "-"),
            m["kind"].replace("_", " "),
            m["version"],
            m["sku_name"],
            m["meter"],
            m["unit"],
            f"{_money(m['price'])}/{m['per']}",
            m["effective"] or "-",
            m["region"],
            m["source"],
        ]
        for m in meters
    ]
    _table(
        ["scope", "mode", "kind", "version", "sku name", "meter name", "unit", "price", "from", "region", "source"],
        rows,
        {7},
    )
    print(
        "units as the Retail Prices API gives them ('1K', '1M' tokens; '1 Hour', '1/Hour'); prices normalised "
        "to USD per 1M tokens or per hour"
    )
    return EXIT_OK


# --- cost report ------------------------------------------------------------------------------------


def cost_report(args: argparse.Namespace) -> int:
    """`aoai-lens cost report [--month YYYY-MM] [--by ...] [--format table|csv|focus] [-o FILE]`."""
    from pathlib import Path

    from queries.config import load_settings
    from queries.cost.attribution import rule_names
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
        names = lens.caller_names(result.rows).names
        text = to_csv(focus_rows(result, ids, names, rule_names(settings.attribution)))
    else:
        st = statement(result, by)
        text = _statement_csv(st) if fmt == "csv" else render_table(st, result, by)
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


def _statement_csv(st: Any) -> str:
    """Counts as integers, money to the cent, shares to 4 places (what a finance team can put in a sheet)."""
    from queries.safecsv import to_csv

    out = st.copy()
    out["Cost"] = out["Cost"].map(lambda v: "" if v != v else f"{v:.2f}")
    out["Share"] = out["Share"].map(lambda v: "" if v != v else f"{v:.4f}")
    return to_csv(out)


# --- cost ledger --------------------------------------------------------------------------------------


def _since(text: str | None) -> Any:
    from queries.render import RenderError, parse_duration

    if not text:
        return None
    try:
        return parse_duration(text)
    except RenderError as e:
        raise ValueError(f"--since: {e}") from None


def ledger_status(args: argparse.Namespace) -> int:
    """What the ledger holds: closed hours, versions, the last build, the writer, what was not clean."""
    import json

    from queries.config import load_settings
    from queries.cost import ledger_store

    settings = load_settings()
    st = ledger_store.status(settings)
    if getattr(args, "format", "table") == "json":
        print(json.dumps(st, indent=1, default=str))
        return EXIT_OK
    print(f"ledger at {st['path']}")
    if not st["closed_hours"]:
        print("  no closed hours yet: `aoai-lens cost ledger build` (or the scheduler's ledger job) builds them")
    else:
        print(f"  closed hours: {st['closed_hours']:,} ({st['first_hour']}h .. {st['last_hour']}h UTC)")
        print(f"  build versions: {', '.join(st['versions'])}")
    last = st["last_build"]
    if last:
        import time

        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(last["at"])))
        print(f"  last build: {when}, {last['hours']} hour(s) in {last['seconds']} s by {last['by']}")
    print(f"  writer: {st['writer'] or 'none running'}")
    h = st["health"]
    print(
        f"  unreadable usage rows: {h['unreadable_usage']:,}; requests without usage: {h['unmatched_requests']:,} "
        f"({h['unfilled_requests']:,} not filled by metrics); tokens shared by bytes: {h['bytes_tokens']:,.0f}; "
        f"tokens above PTU capacity: {h['over_capacity_tokens']:,.0f}"
    )
    for r in st["rebuilds"]:
        print(f"  rebuilt {r['from']}h..{r['to']}h: {r['hours']} hour(s), {r.get('reason') or 'no reason given'}")
    return EXIT_OK


def _build(args: argparse.Namespace, *, rebuild_month: str | None) -> int:
    from tqdm import tqdm

    from queries.config import load_settings
    from queries.cost import ledger_store
    from queries.cost.report import month_period
    from queries.filestore import WriterBusy
    from queries.lens import get_lens

    settings = load_settings()
    lens = get_lens(settings)
    try:
        since = _since(getattr(args, "since", None))
        window = month_period(rebuild_month, lens.now())[:2] if rebuild_month else None
    except ValueError as e:
        print(f"cost ledger: {e}", file=sys.stderr)
        return EXIT_USAGE
    what = f"rebuilding {rebuild_month}" if rebuild_month else "closing hours"
    try:
        with tqdm(desc=f"ledger: {what}", unit="day", file=sys.stderr) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            report = ledger_store.build(
                lens,
                settings,
                since=since,
                rebuild=window,
                reason=getattr(args, "reason", "") or "",
                progress=progress,
            )
    except WriterBusy as e:
        print(f"cost ledger: {e}; try again when it has finished", file=sys.stderr)
        return EXIT_FAILED
    except ledger_store.CostDataError as e:
        print(f"cost ledger: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(report)
    return EXIT_OK


def ledger_build(args: argparse.Namespace) -> int:
    """Close every hour that is due (older than the late-arrival window) and not closed yet."""
    return _build(args, rebuild_month=None)


def ledger_rebuild(args: argparse.Namespace) -> int:
    """Build a month's closed hours again (after a price override or a rule change), recorded."""
    return _build(args, rebuild_month=args.month)


# --- cost export ------------------------------------------------------------------------------------


def cost_export(args: argparse.Namespace) -> int:
    """`aoai-lens cost export --month YYYY-MM --format focus-csv|focus-parquet [--to DIR | BLOB URL]`."""
    from pathlib import Path

    from queries.config import load_settings
    from queries.cost import focus_export, hub_upload
    from queries.cost.report import allocate, month_period
    from queries.lens import get_lens

    settings = load_settings()
    fmt = getattr(args, "format", None) or "focus-parquet"
    lens = get_lens(settings)
    try:
        start, end, month_end = month_period(args.month, lens.now())
    except ValueError as e:
        print(f"cost export: {e}", file=sys.stderr)
        return EXIT_USAGE
    month = f"{start:%Y-%m}"
    to = getattr(args, "to", None) or str(settings.data_dir / "exports")
    target = None
    if hub_upload.is_blob_url(to):
        try:
            target = hub_upload.parse_target(to)
        except hub_upload.UploadError as e:
            print(f"cost export: {e}", file=sys.stderr)
            return EXIT_USAGE
    try:
        result = allocate(lens, settings, start, end)
        deployments = lens.deployments().frame
    except Exception as e:  # a missing workspace or an unreadable price file: say so, exit 1
        print(f"cost export: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILED
    ctx = focus_export.context_from(settings, deployments, start, month_end, lens.caller_names(result.ledger).names)
    frame = focus_export.focus_frame(result.ledger, ctx)
    data = focus_export.encode(frame, fmt)
    name = focus_export.file_name(month, fmt)
    total = float(frame["EffectiveCost"].sum())
    if target is None:
        folder = Path(to)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a re-export replaces the month's file whole
        where = str(path)
    else:
        secret = settings.billing.storage_connection_string
        try:
            up = hub_upload.upload_month(
                data,
                name,
                month,
                target,
                scope=settings.billing.hub_scope,
                rows=len(frame),
                connection_string=secret.get_secret_value() if secret else None,
            )
        except hub_upload.UploadError as e:
            print(f"cost export: {e}", file=sys.stderr)
            return EXIT_FAILED
        where = f"{target.account_url}/{up.container}/{up.blob}" + (
            f" (replaced {len(up.replaced)} earlier blob(s))" if up.replaced else ""
        )
    print(f"wrote {len(frame):,} FOCUS 1.2 rows for {month} ({total:,.2f} {settings.prices.currency}) to {where}")
    skipped = result.ledger[~result.ledger["Priced"].astype(bool)]
    if not skipped.empty:
        print(f"cost export: note: {len(skipped):,} unpriced ledger rows left out (no cost to state)", file=sys.stderr)
    return EXIT_OK
