"""Where the bill comes from, and `aoai-lens cost reconcile`.

The demo serves a bill derived from its own traffic (`queries.demo.bill`); an Azure configuration reads
Cost Management (`queries.cost.bill.CostManagementBill`) for `billing.scope` (default: the source's
subscription). Kept outside `queries.cost`, which never imports the demo or a source.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

import pandas as pd

from queries.config import Settings
from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def bill_scope(settings: Settings) -> str | None:
    if settings.billing.scope:
        return settings.billing.scope
    sub = settings.source.subscription_id
    return f"/subscriptions/{sub}" if sub else None


def read_bill(
    settings: Settings,
    ledger: pd.DataFrame,
    deployments: pd.DataFrame,
    start: datetime,
    end: datetime,
    today: Any,
    *,
    bill_client: Any = None,
) -> pd.DataFrame:
    """The bill's rows (Day, ResourceId, MeterName, Cost) for [start, end)."""
    if settings.is_demo and bill_client is None:
        from queries.demo.bill import demo_bill

        b = demo_bill(ledger, deployments, today)
        day = pd.to_datetime(b["Day"], utc=True)
        return b[(day >= pd.Timestamp(start).floor("D")) & (day < pd.Timestamp(end))].reset_index(drop=True)
    from queries.cost.bill import BillError, CostManagementBill

    if bill_client is None:
        scope = bill_scope(settings)
        if not scope:
            raise BillError("no Cost Management scope: set billing.scope or source.subscription_id")
        bill_client = CostManagementBill.connect(scope, settings.source.management_endpoint)
    frame: pd.DataFrame = bill_client.daily(start, end)
    return frame


def reconciliation(
    settings: Settings, lens: Any, start: datetime, end: datetime, *, bill_client: Any = None
) -> pd.DataFrame:
    """Estimate vs bill per day × account × model × meter for [start, end) (what the CLI and the Cost
    page show)."""
    from queries.cost.bill import billed_daily, estimate_daily, reconcile
    from queries.cost.report import allocate

    result = allocate(lens, settings, start, end)
    deployments = lens.deployments().frame
    ids = dict(zip(deployments["Resource"].astype(str).str.lower(), deployments["ResourceId"], strict=False))
    today = lens.now().date()
    bill = read_bill(settings, result.ledger, deployments, start, end, today, bill_client=bill_client)
    b = settings.billing
    return reconcile(
        estimate_daily(result.ledger, ids),
        billed_daily(bill),
        today=today,
        lag_days=b.lag_days,
        drift_pct=b.drift_pct,
        drift_min_usd=b.drift_min_usd,
    )


def render(rec: pd.DataFrame) -> str:
    head = ["day", "account", "model", "meter", "estimate", "billed", "difference", "%", "status"]
    body = []
    for r in rec.itertuples(index=False):
        pct = "-" if pd.isna(r.DifferencePct) else f"{r.DifferencePct:+.1f}%"
        body.append(
            [
                f"{r.Day:%Y-%m-%d}",
                str(r.ResourceId).rsplit("/", 1)[-1],
                r.Model or "-",
                r.Meter,
                "-" if pd.isna(r.Estimate) else f"{r.Estimate:,.2f}",
                "-" if pd.isna(r.Billed) else f"{r.Billed:,.2f}",
                f"{r.Difference:+,.2f}",
                pct,
                r.Status,
            ]
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 4 or i == 8 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [head, ["-" * w for w in widths], *body]
    ]
    counts = rec["Status"].value_counts()
    lines.append(
        "; ".join(f"{k}: {int(counts.get(k, 0))}" for k in ("match", "drift", "pending", "unpriced", "bill-only"))
    )
    return "\n".join(lines) + "\n"


def cost_reconcile(args: argparse.Namespace) -> int:
    """`aoai-lens cost reconcile --month YYYY-MM [--format table|csv]`."""
    from queries.config import load_settings
    from queries.cost.bill import BillError
    from queries.cost.report import month_period
    from queries.lens import get_lens

    settings = load_settings()
    lens = get_lens(settings)
    try:
        start, end, _ = month_period(args.month, lens.now())
    except ValueError as e:
        print(f"cost reconcile: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rec = reconciliation(settings, lens, start, end)
    except BillError as e:
        print(f"cost reconcile: {e}", file=sys.stderr)
        return EXIT_FAILED
    if getattr(args, "format", "table") == "csv":
        out = rec.copy()
        out["Day"] = out["Day"].dt.strftime("%Y-%m-%d")
        from queries.safecsv import to_csv

        sys.stdout.write(to_csv(out, float_format="%.6f"))
    else:
        sys.stdout.write(render(rec))
    return EXIT_OK
