"""Where the bill comes from, and `aoai-lens cost reconcile`.

The bill comes through the Lens (`Lens.bill`, cached), from the management source: an Azure configuration
reads Cost Management (`queries.cost.bill.CostManagementBill`) for `billing.scope` (default: the source's
subscription), the demo serves a bill derived from its own traffic (`queries.demo.bill`). Kept outside
`queries.cost`, whose model never reads a source.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

import pandas as pd

from queries.config import Settings
from queries.cost.bill import ACTUAL, COST_TYPES
from queries.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from queries.reader import LensLike
from queries.scope import Scope


def reconciliation(
    settings: Settings,
    lens: LensLike,
    start: datetime,
    end: datetime,
    *,
    cost_type: str = ACTUAL,
    today: date | None = None,
) -> pd.DataFrame:
    """Estimate vs bill per day × account × model × meter for the days of [start, end) (what the CLI, the
    Cost page and the billing_drift rule show): Day, ResourceId, Account (its name), Model, Meter,
    Estimate, Billed, Difference, DifferencePct, Status. The bill comes through `lens.bill` (the
    management source's: Cost Management, or the demo's), so a team-scoped view refuses it."""
    from queries.cost.bill import billed_daily, estimate_daily, reconcile, whole_days
    from queries.cost.service import allocation

    start, end = whole_days(start, end)
    bill = lens.bill(start, end, cost_type)  # type: ignore[attr-defined]  # a ScopedLens raises ScopeError here
    result = allocation(lens, start, end, scope=Scope.everything())
    deployments = lens.deployments().frame
    ids = dict(zip(deployments["Resource"].astype(str).str.lower(), deployments["ResourceId"], strict=False))
    b = settings.billing
    rec = reconcile(
        estimate_daily(result.ledger, ids),
        billed_daily(bill),
        today=today or lens.now().date(),
        lag_days=b.lag_days,
        drift_pct=b.drift_pct,
        drift_min_usd=b.drift_min_usd,
    )
    rec.insert(2, "Account", rec["ResourceId"].astype(str).str.rsplit("/", n=1).str[-1])
    return rec


def render(rec: pd.DataFrame) -> str:
    head = ["day", "account", "model", "meter", "estimate", "billed", "difference", "%", "status"]
    body = []
    for r in rec.itertuples(index=False):
        pct = "-" if pd.isna(r.DifferencePct) else f"{r.DifferencePct:+.1f}%"
        body.append(
            [
                f"{r.Day:%Y-%m-%d}",
                str(r.Account),
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
    """`aoai-lens cost reconcile --month YYYY-MM [--format table|csv] [--cost-type actual|amortized]`."""
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
        cost_type = COST_TYPES[getattr(args, "cost_type", None) or "actual"]
        rec = reconciliation(settings, lens, start, end, cost_type=cost_type)
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
