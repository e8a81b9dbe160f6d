"""The cost model's front door: allocate a period's cost, and the monthly chargeback statement.

The API the dashboard calls::

    from queries.cost.report import allocate, statement
    result = allocate(lens, settings, start, end)          # AllocationResult
    result.rows        # one row per day x deployment x caller: Day, Resource, Deployment, Model, Version,
                       #   Sku, Region, ObjectId, CallerIP, Feature, Team, CostCenter, Category, Method,
                       #   Rule, Requests, PromptTokens, CachedTokens, CompletionTokens, Cost, Priced
    result.total       # USD: token costs + provisioned hours, computed apart from the rows
    result.ptu         # queries.cost.ptu.ptu_summary: one line per provisioned deployment
    result.notices     # what went wrong or was approximated, for a panel's notice
    statement(result, "team")                             # lines + unallocated/probes/ptu idle/unpriced/total

    from queries.cost.budgets import budgets_status
    budgets_status(lens, settings, now)                   # month to date, forecast, pace, overrun date

    from queries.cost.focus import focus_rows
    focus_rows(result, currency="USD")                    # FOCUS-shaped rows

`Category` says where a row's money goes: ``allocated`` (a rule claimed it), ``unallocated`` (no rule
did), ``probes`` (the probes' own calls, never charged back), ``ptu idle`` (provisioned capacity nobody
used). Rows with ``Priced`` false have tokens and a NaN cost: no price covers them (never $0).
Allocation conserves money: the priced rows' costs add up to `total`.

`allocate_frames` is the same computation over plain frames (no query layer), for tests and notebooks.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from queries.config import AttributionRule, Settings
from queries.cost import ledger_store, ptu
from queries.cost.attribution import ALLOCATED, PROBES, PTU_IDLE, UNALLOCATED
from queries.cost.ledger import BuildHealth, build_rows
from queries.cost.ledger_store import CostDataError as CostDataError  # re-exported: callers catch it here
from queries.cost.ledger_store import caller_rows
from queries.reader import LensLike
from queries.scope import Scope
from queries.scoped import whole

By = Literal["team", "feature", "deployment", "cost-center"]
BY_COLUMN = {"team": "Team", "feature": "Feature", "deployment": "Deployment", "cost-center": "CostCenter"}
UNPRICED = "unpriced"
TOTAL = "total"

ROW_COLUMNS = [
    "Day",
    "Resource",
    "Deployment",
    "Model",
    "Version",
    "Sku",
    "Region",
    "ObjectId",
    "CallerIP",
    "Feature",
    "Team",
    "CostCenter",
    "Category",
    "Method",
    "Rule",
    "Requests",
    "PromptTokens",
    "CachedTokens",
    "CompletionTokens",
    "ReasoningTokens",
    "Cost",
    "ListCost",
    "Priced",
    "PriceKey",
]


class PriceBookLike(Protocol):
    """What the cost model needs of a price book (queries.cost.prices.PriceBook has it)."""

    def lookup(self, model: str, version: str | None, sku: str, region: str | None) -> Any: ...

    def price_usage(self, frame: pd.DataFrame) -> pd.DataFrame: ...


@dataclass
class AllocationResult:
    start: datetime
    end: datetime
    rows: pd.DataFrame
    total: float
    ptu: pd.DataFrame
    currency: str = "USD"
    discount_pct: float = 0.0
    notices: list[str] = field(default_factory=list)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)  # the ledger rows behind it (per meter)
    health: BuildHealth = field(default_factory=BuildHealth)
    closed_hours: int = 0  # hours read from the ledger's files
    open_hours: int = 0  # hours computed on read

    def category_totals(self) -> dict[str, float]:
        """Cost per category over the priced rows (and the unpriced tokens' cost, always NaN)."""
        priced = self.rows[self.rows["Priced"]]
        out = {c: float(priced.loc[priced["Category"] == c, "Cost"].sum()) for c in (ALLOCATED, UNALLOCATED, PROBES)}
        out[PTU_IDLE] = float(priced.loc[priced["Category"] == PTU_IDLE, "Cost"].sum())
        return out

    @property
    def unpriced(self) -> pd.DataFrame:
        return self.rows[~self.rows["Priced"]]


def _result(
    ledger_rows: pd.DataFrame,
    deployments: pd.DataFrame,
    book: PriceBookLike,
    start: datetime,
    end: datetime,
    *,
    health: BuildHealth,
    notices: list[str],
    currency: str,
    hourly: bool,
    closed_hours: int = 0,
    open_hours: int = 0,
) -> AllocationResult:
    """An AllocationResult over ledger rows: the caller lines pages and statements use, the PTU summary,
    and the notices of what could not be done cleanly."""
    rows = caller_rows(ledger_rows, grain="H" if hourly else "D")
    columns = ["Hour", *ROW_COLUMNS] if hourly else ROW_COLUMNS
    rows = rows[columns].reset_index(drop=True)
    priced = ledger_rows[ledger_rows["Priced"].astype(bool)]
    total = float(priced["EffectiveCost"].sum())
    ptu_deps = ptu.ptu_deployments_frame(deployments, book) if not deployments.empty else pd.DataFrame()
    summary = (
        ptu.ptu_summary(caller_rows(ledger_rows), ptu_deps, book, start, end) if not ptu_deps.empty else pd.DataFrame()
    )
    notices = list(notices)
    if not ptu_deps.empty:
        notices.append(
            "provisioned hours count each PTU deployment's current capacity from its creation "
            "(ARM systemData.createdAt) or the period's start; the management plane keeps no capacity history"
        )
    t = health.tokens
    if health.no_deployment_record:
        notices.append(
            f"no management-plane record (SKU, region) for {', '.join(health.no_deployment_record)}: their usage is unpriced"
        )
    unpriced = ledger_rows[~ledger_rows["Priced"].astype(bool)]
    if not unpriced.empty:
        tokens_n = float(unpriced.loc[unpriced["Unit"] == "tokens", "Quantity"].sum())
        notices.append(f"{tokens_n:,.0f} tokens have no price: {', '.join(health.unpriced) or '?'}")
    if t.bytes_tokens > 0:
        notices.append(
            f"{t.bytes_tokens:,.0f} tokens the metrics show had no usage row: shared by request/response bytes"
        )
    if t.unreadable_usage:
        notices.append(f"{t.unreadable_usage:,} usage rows had token fields that could not be read (not priced)")
    if t.unfilled_requests:
        notices.append(
            f"{t.unfilled_requests:,} successful requests had no usage row and no metric tokens to fill them: their tokens are unknown"
        )
    if health.over_capacity_tokens > 0:
        notices.append(
            f"{health.over_capacity_tokens:,.0f} tokens were consumed beyond provisioned capacity (utilisation capped at 100%)"
        )
    return AllocationResult(
        start=start,
        end=end,
        rows=rows,
        total=total,
        ptu=summary,
        currency=currency,
        discount_pct=float(getattr(book, "discount_pct", 0.0) or 0.0),
        notices=notices,
        ledger=ledger_rows,
        health=health,
        closed_hours=closed_hours,
        open_hours=open_hours,
    )


def allocate_frames(
    usage: pd.DataFrame,
    metrics: pd.DataFrame,
    deployments: pd.DataFrame,
    rules: list[AttributionRule],
    book: PriceBookLike,
    start: datetime,
    end: datetime,
    *,
    probe_object_id: str | None = None,
    currency: str = "USD",
    hourly: bool = False,
) -> AllocationResult:
    """Allocate [start, end) from its frames (`cost_usage_by_caller` at 1h, metric tokens at PT1H, the
    deployments): the ledger rows built now, folded into caller lines. Rows are per day; `hourly=True`
    keeps an `Hour` column too (one row per hour)."""
    ledger_rows, health = build_rows(
        usage, metrics, deployments, rules, book, start, end, probe_object_id=probe_object_id, version="frames"
    )
    return _result(
        ledger_rows, deployments, book, start, end, health=health, notices=[], currency=currency, hourly=hourly
    )


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def allocate(
    lens: LensLike,
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    book: PriceBookLike | None = None,
    hourly: bool = False,
    scope: Scope | None = None,
) -> AllocationResult:
    """Allocate [start, end) from the cost ledger: its closed hours as written, the rest computed now
    (`queries.cost.ledger_store.read`). Every cost figure comes from here.

    `scope` (a queries.scope.Scope; default: the Lens's own) restricts the answer to a team-scoped
    user's allocated rows. The ledger always covers every caller, so PTU and metric-token shares are
    the same whoever asks.
    """
    if scope is None:
        scope = lens.scope
    base = whole(lens)
    if not scope.is_everything:
        return narrow(allocate(base, settings, start, end, book=book, hourly=hourly), scope)
    start, end = _utc(start), _utc(end)
    if book is None:
        from queries.cost.prices import PriceBook

        book = PriceBook.load(settings)
    got = ledger_store.read(base, settings, start, end, book=book)
    return _result(
        got.rows,
        got.deployments,
        book,
        start,
        end,
        health=got.health,
        notices=got.notices,
        currency=settings.prices.currency,
        hourly=hourly,
        closed_hours=got.closed_hours,
        open_hours=got.open_hours,
    )


def narrow(result: AllocationResult, scope: Scope) -> AllocationResult:
    """An allocation as a team-scoped user sees it: their teams' allocated rows only (`queries.scope`)."""
    if scope.teams is None:
        return result
    rows = result.rows
    mine = rows[(rows["Category"] == ALLOCATED) & rows["Team"].astype(str).isin(scope.teams)]
    priced = mine[mine["Priced"].astype(bool)]
    led = result.ledger
    if not led.empty:
        led = led[(led["Category"] == ALLOCATED) & led["Team"].astype(str).isin(scope.teams)].reset_index(drop=True)
    return dataclasses.replace(
        result,
        ledger=led,
        rows=mine.reset_index(drop=True),
        total=float(priced["Cost"].sum()),
        ptu=result.ptu.iloc[0:0],
        notices=[*result.notices, f"showing teams {', '.join(sorted(scope.teams))} only"],
    )


def cost_frame(lens: LensLike, settings: Settings, start: datetime, end: datetime) -> pd.DataFrame:
    """Allocated (chargeback) cost per hour, team and feature: TimeGenerated, Team, Feature, CostUsd.

    What the budget alert rules read (alerts/data.py)."""
    rows = allocate(lens, settings, start, end, hourly=True).rows
    alloc = rows[(rows["Category"] == ALLOCATED) & rows["Priced"]]
    out = alloc.groupby(["Hour", "Team", "Feature"], sort=True)["Cost"].sum().reset_index()
    return out.rename(columns={"Hour": "TimeGenerated", "Cost": "CostUsd"})


# ---- the statement ---------------------------------------------------------------------------------


def largest_remainder(values: np.ndarray, total: float, unit: float) -> np.ndarray:
    """`values` rounded to multiples of `unit` so that they add up to `total` rounded to `unit` exactly:
    every value rounded down, then the units left over go to the values with the largest remainders
    (ties to the earlier line). Money is rounded once, here, never line by line."""
    v = np.asarray(values, dtype="float64") / unit
    target = round(float(total) / unit)
    base = np.floor(v + 1e-9)
    left = target - int(base.sum())
    order = np.argsort(-(v - base), kind="stable")
    out = base.copy()
    if left > 0:
        out[order[:left]] += 1
    elif left < 0:  # the parts exceed the total (cannot happen for sums of the parts; kept safe)
        out[order[::-1][:-left]] -= 1
    return out * unit


def statement(result: AllocationResult, by: By = "team") -> pd.DataFrame:
    """The chargeback statement: one line per `by` value of the allocated cost, then the unallocated,
    probes, ptu idle and unpriced lines, then the total. Columns: Line, Kind, Requests, PromptTokens,
    CachedTokens, CompletionTokens, ReasoningTokens, Cost, Share (of the total cost).

    Counts are whole numbers and costs are cents, each rounded once by the largest remainder so that
    every grouping's lines add up to the same total, to the cent and to the token: the total is the
    ledger's priced cost, computed apart from the lines. The unpriced line carries tokens and a NaN cost."""
    col = BY_COLUMN[by]
    rows = result.rows
    priced = rows[rows["Priced"].astype(bool)]
    counts = ["Requests", "PromptTokens", "CachedTokens", "CompletionTokens", "ReasoningTokens"]
    cols = [*counts, "Cost"]
    lines = []
    alloc = priced[priced["Category"] == ALLOCATED]
    if not alloc.empty:
        g = alloc.groupby(col, sort=True)[cols].sum().reset_index()
        for rec in g.itertuples(index=False):
            lines.append(
                {"Line": getattr(rec, col) or "(none)", "Kind": ALLOCATED, **{c: getattr(rec, c) for c in cols}}
            )
    for kind in (UNALLOCATED, PROBES, PTU_IDLE):
        part = priced[priced["Category"] == kind]
        lines.append({"Line": kind, "Kind": kind, **{c: float(part[c].sum()) for c in cols}})
    unpriced = rows[~rows["Priced"].astype(bool)]
    lines.append(
        {"Line": UNPRICED, "Kind": UNPRICED, **{c: float(unpriced[c].sum()) for c in counts}, "Cost": math.nan}
    )
    out = pd.DataFrame(lines, columns=["Line", "Kind", *cols])
    totals = {c: float(rows[c].sum()) for c in counts}
    total_cost = round(float(result.total), 2)
    for c in counts:
        out[c] = largest_remainder(out[c].to_numpy(), totals[c], 1.0).astype("int64")
    money = out["Kind"] != UNPRICED
    out.loc[money, "Cost"] = largest_remainder(out.loc[money, "Cost"].to_numpy(), total_cost, 0.01).round(2)
    total_line = {"Line": TOTAL, "Kind": TOTAL, **{c: round(totals[c]) for c in counts}, "Cost": total_cost}
    out = pd.concat([out, pd.DataFrame([total_line])], ignore_index=True)
    for c in counts:
        out[c] = out[c].astype("int64")
    out["Share"] = out["Cost"] / total_cost if total_cost else np.nan
    return out.rename(columns={"Line": col})


def month_period(month: str | None, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, month_end) of YYYY-MM; the current month ends now (a partial month is prorated)."""
    now = _utc(now)
    if month is None:
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}", month):
                raise ValueError(month)
            first = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError(f"--month {month!r} is not YYYY-MM") from None
    nxt = (first + timedelta(days=32)).replace(day=1)
    end = min(nxt, now)
    if end <= first:
        raise ValueError(f"--month {month} has not started yet")
    return first, end, nxt


# ---- the command -----------------------------------------------------------------------------------


def _fmt_money(v: float) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:,.2f}"


def _fmt_int(v: float) -> str:
    return f"{v:,.0f}"


def render_table(st: pd.DataFrame, result: AllocationResult, by: By) -> str:
    col = BY_COLUMN[by]
    head = [col, "requests", "prompt", "cached", "completion", f"cost {result.currency}", "share"]
    body = []
    for r in st.itertuples(index=False):
        d = r._asdict()
        body.append(
            [
                str(d[col]),
                _fmt_int(d["Requests"]),
                _fmt_int(d["PromptTokens"]),
                _fmt_int(d["CachedTokens"]),
                _fmt_int(d["CompletionTokens"]),
                _fmt_money(d["Cost"]),
                "-" if not np.isfinite(d["Share"]) else f"{d['Share']:.1%}",
            ]
        )
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        f"Chargeback {result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC, by {by}"
        + (f" (prices less {result.discount_pct:g}%)" if result.discount_pct else "")
    ]
    sep = ["-" * w for w in widths]
    for i, row in enumerate([head, sep, *body]):
        if i >= 2 and row[0] == TOTAL:
            lines.append("  ".join(sep))
        lines.append(
            "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    for p in result.ptu.itertuples(index=False):
        lines.append(
            f"PTU {p.Deployment}: {_fmt_money(p.Cost)} for {p.Capacity} PTU x {p.Hours:,.1f} h, "
            f"utilisation {p.Utilisation:.0%}, idle {_fmt_money(p.IdleCost)}; "
            f"{_fmt_money(p.EffectivePer1M)} per 1M tokens vs {_fmt_money(p.PaygPer1M)} pay-as-you-go. {p.Hint}"
        )
    for n in result.notices:
        lines.append(f"note: {n}")
    return "\n".join(lines) + "\n"
