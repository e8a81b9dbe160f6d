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
from queries.cost import attribution, ptu
from queries.cost.attribution import ALLOCATED, PROBES, PTU_IDLE, UNALLOCATED
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
    "Cost",
    "Priced",
    "PriceKey",
]
GROUP_COLUMNS = [*ROW_COLUMNS[:15], "Priced", "PriceKey"]
SUM_COLUMNS = ["Requests", "PromptTokens", "CachedTokens", "CompletionTokens", "Cost"]


class PriceBookLike(Protocol):
    """What the cost model needs of a price book (queries.cost.prices.PriceBook has it)."""

    def lookup(self, model: str, version: str | None, sku: str, region: str | None) -> Any: ...

    def price_usage(self, frame: pd.DataFrame) -> pd.DataFrame: ...


class CostDataError(RuntimeError):
    """The usage or the deployments could not be read, so no cost is computed; the message says why."""


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

    def category_totals(self) -> dict[str, float]:
        """Cost per category over the priced rows (and the unpriced tokens' cost, always NaN)."""
        priced = self.rows[self.rows["Priced"]]
        out = {c: float(priced.loc[priced["Category"] == c, "Cost"].sum()) for c in (ALLOCATED, UNALLOCATED, PROBES)}
        out[PTU_IDLE] = float(priced.loc[priced["Category"] == PTU_IDLE, "Cost"].sum())
        return out

    @property
    def unpriced(self) -> pd.DataFrame:
        return self.rows[~self.rows["Priced"]]


def _deployment_info(deployments: pd.DataFrame) -> pd.DataFrame:
    d = deployments.copy()
    d["Resource"] = d["Resource"].astype(str).str.lower()
    d["Region"] = d["Location"].fillna("").astype(str)
    return d.rename(columns={"Model": "DepModel", "Version": "DepVersion"})[
        ["Resource", "Deployment", "Sku", "Region", "DepModel", "DepVersion"]
    ]


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
    """Allocate [start, end) from its frames: `cost_usage_by_caller` at 1h, metric tokens at PT1H, deployments.

    Rows are per day; `hourly=True` keeps an `Hour` column too (one row per hour, for burn-rate alerts)."""
    notices: list[str] = []
    tokens = attribution.token_rows(usage, metrics, deployments)
    rows = attribution.attribute(tokens, rules, probe_object_id)
    rows = rows.merge(_deployment_info(deployments), on=["Resource", "Deployment"], how="left")
    missing_dep = rows["Sku"].isna()
    if missing_dep.any():
        names = sorted(set(rows.loc[missing_dep, "Deployment"]))
        notices.append(f"no management-plane record (SKU, region) for {', '.join(names)}: their usage is unpriced")
    rows["Sku"] = rows["Sku"].fillna("").astype(str)
    rows["Region"] = rows["Region"].fillna("").astype(str)
    rows["Model"] = rows["Model"].where(rows["Model"].astype(str) != "", rows["DepModel"]).fillna("").astype(str)
    rows["Version"] = (
        rows["Version"].where(rows["Version"].astype(str) != "", rows["DepVersion"]).fillna("").astype(str)
    )
    rows = rows.drop(columns=["DepModel", "DepVersion"])

    is_ptu = rows["Sku"].map(ptu.is_ptu).astype(bool)
    tok = rows[~is_ptu].copy()
    priced = book.price_usage(
        pd.DataFrame(
            {
                "model": tok["Model"],
                "version": tok["Version"],
                "sku": tok["Sku"],
                "region": tok["Region"],
                "prompt_tokens": tok["PromptTokens"],
                "cached_tokens": tok["CachedTokens"],
                "completion_tokens": tok["CompletionTokens"],
            },
            index=tok.index,
        )
    )
    tok["Cost"] = priced["cost"].astype("float64")
    tok["Priced"] = priced["priced"].astype(bool)
    tok["PriceKey"] = priced["price_key"].astype(str)

    ptu_deps = ptu.ptu_deployments_frame(deployments, book)
    ptu_rows, idle = ptu.share_ptu(rows[is_ptu], ptu_deps, start, end)
    keys = {(d.Resource, d.Deployment): d.PtuPerHour for d in ptu_deps.itertuples(index=False)}
    ptu_rows["PriceKey"] = [
        f"{s} · {keys.get((r, d), float('nan')):g}/PTU-hour" if ok else "unpriced: no PTU-hour price"
        for r, d, s, ok in zip(
            ptu_rows["Resource"], ptu_rows["Deployment"], ptu_rows["Sku"], ptu_rows["Priced"], strict=True
        )
    ]
    if not idle.empty:
        idle = idle.merge(
            _deployment_info(deployments)[["Resource", "Deployment", "Sku", "Region"]], on=["Resource", "Deployment"]
        )
        idle["PriceKey"] = "ptu idle"
    parts = [p for p in (tok, ptu_rows, idle) if not p.empty]
    all_rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*ROW_COLUMNS, "TimeGenerated"])
    all_rows["Day"] = pd.to_datetime(all_rows["TimeGenerated"], utc=True).dt.floor("D")
    all_rows["Priced"] = all_rows["Priced"].astype(bool)
    for c in SUM_COLUMNS:
        all_rows[c] = pd.to_numeric(all_rows[c], errors="coerce").astype("float64")
    for c in GROUP_COLUMNS:
        if c not in ("Day", "Priced"):
            all_rows[c] = all_rows[c].fillna("").astype(str)
    group, columns = GROUP_COLUMNS, ROW_COLUMNS
    if hourly:
        all_rows["Hour"] = pd.to_datetime(all_rows["TimeGenerated"], utc=True).dt.floor("h")
        group, columns = ["Hour", *GROUP_COLUMNS], ["Hour", *ROW_COLUMNS]
    daily = all_rows.groupby(group, dropna=False, sort=True)[SUM_COLUMNS].sum(min_count=1).reset_index()
    daily.loc[~daily["Priced"], "Cost"] = np.nan
    daily = daily[columns]

    # the total, computed apart from the allocation: every priced token row, plus every PTU-hour
    token_total = float(priced.loc[priced["priced"].astype(bool), "cost"].sum())
    ptu_total = float(ptu.period_cost(ptu_deps, start, end).sum(min_count=0))
    summary = ptu.ptu_summary(all_rows, ptu_deps, book, start, end)
    if not ptu_deps.empty:
        notices.append(
            "provisioned hours count each PTU deployment's current capacity from its creation "
            "(ARM systemData.createdAt) or the period's start; the management plane keeps no capacity history"
        )
    unpriced = daily[~daily["Priced"]]
    if not unpriced.empty:
        tokens_n = unpriced["PromptTokens"].sum() + unpriced["CompletionTokens"].sum()
        what = sorted({f"{m or '?'} ({s or '?'})" for m, s in zip(unpriced["Model"], unpriced["Sku"], strict=True)})
        notices.append(f"{tokens_n:,.0f} tokens have no price: {', '.join(what)}")
    bytes_rows = daily["Method"] == attribution.METHOD_BYTES
    if bytes_rows.any():
        notices.append("some hours had no usage rows: their tokens come from metrics, shared by request/response bytes")
    return AllocationResult(
        start=start,
        end=end,
        rows=daily.reset_index(drop=True),
        total=token_total + ptu_total,
        ptu=summary,
        currency=currency,
        discount_pct=float(getattr(book, "discount_pct", 0.0) or 0.0),
        notices=notices,
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
    """Allocate [start, end): one KQL aggregate (hourly per caller), hourly metric tokens, deployments.

    Metric tokens are fetched only when some (deployment, hour) lacks usage rows or the request logs
    miss a deployment the metrics know, so the usual case costs one Log Analytics query.

    `scope` (a queries.scope.Scope; default: the scope of a `queries.scope.ScopedLens`, else everything)
    restricts the answer to a team-scoped user's allocated rows. The allocation itself always runs on
    every caller, so PTU and metric-token shares are the same whoever asks.
    """
    if scope is None:
        scope = lens.scope
    lens = whole(lens)
    if not scope.is_everything:
        return narrow(allocate(lens, settings, start, end, book=book, hourly=hourly), scope)
    start, end = _utc(start), _utc(end)
    if book is None:
        from queries.cost.prices import PriceBook

        book = PriceBook.load(settings)
    notices: list[str] = []
    usage = lens.run("cost_usage_by_caller", start=start, end=end, bin=timedelta(hours=1))
    deps = lens.deployments()
    for what, r in (("cost_usage_by_caller", usage), ("deployments", deps)):
        if r.status == "failed":  # money is not estimated from half the data: say why instead
            raise CostDataError(f"cannot compute costs: {what} failed: {r.notice}")
        if r.status != "ok":
            notices.append(f"{what}: {r.status}: {r.notice}")
    deployments = deps.frame
    if deployments.empty:
        from queries.sources.arm_shapes import DEPLOYMENT_COLUMNS

        deployments = pd.DataFrame(columns=DEPLOYMENT_COLUMNS)
    frame = usage.frame
    need_metrics = True
    if not frame.empty:
        per_hour = frame.groupby(["TimeGenerated", "Resource", "Deployment"])[["UsageRows", "Succeeded"]].sum()
        need_metrics = bool(((per_hour["UsageRows"] <= 0) & (per_hour["Succeeded"] > 0)).any())
    metrics = pd.DataFrame()
    if need_metrics or frame.empty:
        m = lens.metrics(
            ["ProcessedPromptTokens", "GeneratedTokens"],
            start=start,
            end=end,
            interval=timedelta(hours=1),
            aggregation="Total",
            split_by=["ModelDeploymentName"],
        )
        if m.status != "ok":
            notices.append(f"metrics: {m.status}: {m.notice}")
        else:
            metrics = m.frame
    result = allocate_frames(
        frame,
        metrics,
        deployments,
        list(settings.attribution),
        book,
        start,
        end,
        probe_object_id=settings.probe_object_id,
        currency=settings.prices.currency,
        hourly=hourly,
    )
    result.notices[:0] = notices
    return result


def narrow(result: AllocationResult, scope: Scope) -> AllocationResult:
    """An allocation as a team-scoped user sees it: their teams' allocated rows only (`queries.scope`)."""
    if scope.teams is None:
        return result
    rows = result.rows
    mine = rows[(rows["Category"] == ALLOCATED) & rows["Team"].astype(str).isin(scope.teams)]
    priced = mine[mine["Priced"].astype(bool)]
    return dataclasses.replace(
        result,
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


def statement(result: AllocationResult, by: By = "team") -> pd.DataFrame:
    """The chargeback statement: one line per `by` value of the allocated cost, then the unallocated,
    probes, ptu idle and unpriced lines, then the total. Columns: Line, Kind, Requests, PromptTokens,
    CachedTokens, CompletionTokens, Cost, Share (of the total cost). The unpriced line carries tokens and
    a NaN cost; every other line's cost adds up to the total whatever `by` is."""
    col = BY_COLUMN[by]
    rows = result.rows
    priced = rows[rows["Priced"]]
    cols = ["Requests", "PromptTokens", "CachedTokens", "CompletionTokens", "Cost"]
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
    unpriced = rows[~rows["Priced"]]
    lines.append(
        {"Line": UNPRICED, "Kind": UNPRICED, **{c: float(unpriced[c].sum()) for c in cols[:-1]}, "Cost": math.nan}
    )
    out = pd.DataFrame(lines, columns=["Line", "Kind", *cols])
    total = {c: float(rows[c].sum()) for c in cols[:-1]}
    total_cost = float(out["Cost"].sum(min_count=1)) if len(out) else 0.0
    out = pd.concat(
        [out, pd.DataFrame([{"Line": TOTAL, "Kind": TOTAL, **total, "Cost": total_cost}])], ignore_index=True
    )
    out["Share"] = out["Cost"] / total_cost if total_cost else np.nan
    out = out.rename(columns={"Line": col})
    return out


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
