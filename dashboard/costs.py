"""The cost model as the pages see it: an allocation for a period, wrapped as a QueryResult.

`queries.cost.service` computes each period's allocation once and shares it through the Lens's cache
(every page, every worker with Redis); this module adds the envelope a panel shows (status, notices, the
KQL behind it and its portal link). A failure becomes a failed result, shown in the panels that need it
and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from dashboard.data import Context, failed
from queries.cost import ledger_store, service
from queries.cost.budgets import budget_status, daily_costs
from queries.cost.forecast import MonthForecast, daily, history_start, month_bounds, month_end_forecast
from queries.cost.report import AllocationResult
from queries.results import QueryResult, portal_link


@dataclass(frozen=True)
class Allocation:
    result: AllocationResult | None  # None when the cost model failed
    envelope: QueryResult  # status, notices, the KQL it ran and its portal link

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def rows(self) -> pd.DataFrame:
        return self.result.rows if self.result is not None else pd.DataFrame()


def allocation(ctx: Context, start: datetime, end: datetime) -> Allocation:
    """The cost model's allocation over [start, end) for the request's scope (see queries.cost.service)."""
    start, end = service.bucket(start), service.bucket(end)
    kql, portal = "", None
    try:
        _spec, tr, kql = ctx.lens.render("cost_usage_by_caller", start=start, end=end, bin=timedelta(hours=1))
        scope_id = ctx.lens.scope_resource_id
        portal = portal_link(kql, scope_id, tr.start, tr.end) if scope_id else None
    except Exception:  # the KQL is a courtesy; the allocation below reports real failures
        pass
    try:
        result = service.allocation(ctx.lens, start, end, scope=ctx.scope)
    except Exception as e:
        return Allocation(None, failed("cost allocation", f"{type(e).__name__}: {e}", kql))
    notices = list(result.notices)
    failed_inputs = [n for n in notices if ": failed" in n]
    status = "partial" if notices and (failed_inputs or any(": partial" in n for n in notices)) else "ok"
    env = QueryResult(
        name="cost allocation",
        frame=result.rows,
        status=status,  # type: ignore[arg-type]
        notice="; ".join(notices) if status != "ok" else None,
        kql=kql,
        portal_url=portal,
        source="cost model",
    )
    return Allocation(result, env)


def month_to_date(ctx: Context, now: datetime) -> Allocation:
    """The allocation the month views share (the month so far and the forecast's run-rate window)."""
    return allocation(ctx, history_start(now), now)


def ledger_facts(ctx: Context, alloc: Allocation) -> tuple[pd.DataFrame, str | None]:
    """What the cost ledger holds and what it could not do cleanly, as Fact / Value rows, and a rebuild
    hint when records arrived after their hour closed."""
    st = ledger_store.status(ctx.settings)
    h = st["health"]
    last = st["last_build"]
    facts: list[tuple[str, str]] = [
        (
            "Closed hours",
            f"{st['closed_hours']:,}"
            + (f" ({st['first_hour']}h … {st['last_hour']}h UTC)" if st["closed_hours"] else ""),
        ),
        (
            "This view",
            f"{alloc.result.closed_hours:,} closed hour(s) read, {alloc.result.open_hours:,} open hour(s) computed"
            if alloc.result
            else "-",
        ),
        (
            "Last build",
            (
                datetime.fromtimestamp(float(last["at"]), UTC).strftime("%Y-%m-%d %H:%M UTC")
                + f", {last['hours']} hour(s) in {last['seconds']} s"
            )
            if last
            else "never: the scheduler's ledger job or `aoai-lens cost ledger build` builds it",
        ),
        ("Writer", st["writer"] or "none running"),
        ("Unreadable usage rows", f"{h['unreadable_usage']:,}"),
        (
            "Requests without a usage row",
            f"{h['unmatched_requests']:,} ({h['unfilled_requests']:,} not filled by metrics)",
        ),
        ("Tokens shared by bytes", f"{h['bytes_tokens']:,.0f}"),
        ("Tokens above PTU capacity", f"{h['over_capacity_tokens']:,.0f}"),
    ]
    hint = None
    try:
        late = ledger_store.late_records(ctx.lens, ctx.settings)
    except Exception as e:  # the facts above are still worth showing
        facts.append(("Late records", f"could not be counted: {type(e).__name__}"))
    else:
        n = int(late["Late"].clip(lower=0).sum()) if not late.empty else 0
        facts.append(("Late records", f"{n:,}" + (f" in {len(late)} closed hour(s)" if n else "")))
        if n:
            months = sorted({t.strftime("%Y-%m") for t in late["Hour"]})
            hint = (
                f"{n:,} record(s) arrived after their hour closed: `aoai-lens cost ledger rebuild --month {months[0]}`"
            )
    return pd.DataFrame(facts, columns=["Fact", "Value"]), hint


def month_start(now: datetime) -> datetime:
    return month_bounds(now)[0]


def month_end(now: datetime) -> datetime:
    return month_bounds(now)[1]


def this_month(rows: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The rows of the current month (a month-to-date allocation also holds the run-rate window)."""
    if rows.empty or "Day" not in rows.columns:
        return rows
    return rows[pd.to_datetime(rows["Day"], utc=True) >= pd.Timestamp(month_start(now))]


def spend_forecast(rows: pd.DataFrame, now: datetime) -> MonthForecast | None:
    """The month-end forecast of the priced cost in `rows` (a month-to-date allocation's, maybe narrowed)."""
    if rows.empty:
        return None
    priced = rows[rows["Priced"].astype(bool)]
    return month_end_forecast(daily(priced["Cost"], priced["Day"]), now, data_start=_data_start(rows))


def _data_start(rows: pd.DataFrame) -> datetime | None:
    days = pd.to_datetime(rows["Day"], utc=True)
    return days.min().to_pydatetime() if len(days) else None


def budgets_frame(ctx: Context, mtd: Allocation, now: datetime) -> tuple[pd.DataFrame, str | None]:
    """Scope, Name, BudgetUSD, ActualUSD, ForecastUSD, PacePct, Status, OverrunDate per budget, from the
    month-to-date allocation the page already has (`queries.cost.budgets.budget_status`)."""
    cols = ["Scope", "Name", "BudgetUSD", "ActualUSD", "ForecastUSD", "PacePct", "Status", "OverrunDate"]
    if mtd.result is None:
        return pd.DataFrame(columns=cols), f"budgets: the cost model failed: {mtd.envelope.notice}"
    st = budget_status(daily_costs(mtd.rows), list(ctx.settings.budgets), now)
    out = st.rename(columns={"MonthlyUSD": "BudgetUSD", "MonthToDate": "ActualUSD", "Forecast": "ForecastUSD"})
    out["PacePct"] = 100.0 * out["Pace"].astype(float)
    return out[cols], None


def spend_by(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """Day, <column>, Cost over priced rows; the unallocated, probe and idle lines keep their category."""
    if rows.empty or column not in rows.columns:
        return pd.DataFrame(columns=["Day", column, "Cost"])
    r = rows[rows["Priced"].astype(bool)].copy()
    label = r[column].fillna("").astype(str)
    if "Category" in r.columns and column in ("Team", "Feature", "CostCenter"):
        label = label.where(r["Category"] == "allocated", r["Category"].astype(str))
    r[column] = label.replace("", "(none)")
    r["Day"] = pd.to_datetime(r["Day"], utc=True)
    return r.groupby(["Day", column], as_index=False)["Cost"].sum()


def shares(result: AllocationResult) -> pd.DataFrame:
    """Part, Cost, Share: allocated, unallocated, probes, PTU idle (priced), and unpriced tokens."""
    rows = result.rows
    totals = result.category_totals()
    total = sum(totals.values())
    out = [{"Part": k, "Cost": v, "Share": (v / total if total else np.nan)} for k, v in totals.items()]
    unpriced = rows[~rows["Priced"].astype(bool)]
    tokens = float(unpriced[["PromptTokens", "CompletionTokens"]].sum().sum()) if not unpriced.empty else 0.0
    all_tokens = float(rows[["PromptTokens", "CompletionTokens"]].sum().sum()) if not rows.empty else 0.0
    out.append({"Part": "unpriced (tokens)", "Cost": np.nan, "Share": tokens / all_tokens if all_tokens else 0.0})
    return pd.DataFrame(out)


def ptu_frame(result: AllocationResult) -> pd.DataFrame:
    """Deployment, PtuCostUSD, IdleCostUSD, PaygEquivalentUSD (+ utilisation and effective prices)."""
    p = result.ptu
    if p.empty:
        return pd.DataFrame(columns=["Deployment", "PtuCostUSD", "IdleCostUSD", "PaygEquivalentUSD"])
    f = p.rename(columns={"Cost": "PtuCostUSD", "IdleCost": "IdleCostUSD", "PaygCost": "PaygEquivalentUSD"})
    keep = [
        c
        for c in [
            "Deployment",
            "PtuCostUSD",
            "IdleCostUSD",
            "PaygEquivalentUSD",
            "PaygSku",
            "ReservedPtus",
            "Utilisation",
            "EffectivePer1M",
            "PaygPer1M",
            "BreakEvenUtilisation",
            "Hint",
        ]
        if c in f.columns
    ]
    return f[keep]


# ---- the bill ----------------------------------------------------------------------------------------

METER_NAMES = {
    "input": "input",
    "cached_input": "cached input",
    "output": "output",
    "embeddings": "embeddings",
    "ptu_hour": "PTU hours",
}
WHOLE_ESTATE_ONLY = (
    "Estimate vs billed is whole-estate only: Azure bills accounts, not teams, so no team's share of a bill "
    "line exists. Someone who sees every team can open it."
)


@dataclass(frozen=True)
class BillCheck:
    """The reconciliation of the ledger's estimate with the bill for a panel, or why there is none."""

    frame: pd.DataFrame  # queries.billing.reconciliation's rows (empty when refused or failed)
    envelope: QueryResult
    refused: bool = False  # a team-scoped view: the bill is whole-estate money


def bill_check(ctx: Context, start: datetime, end: datetime, period: Allocation) -> BillCheck:
    """Estimate vs billed for the whole days of [start, end) (`queries.billing.reconciliation`, the bill
    through the Lens). A team-scoped user is refused before anything is read (the ScopedLens would refuse
    the bill too); a bill that cannot be read is a failed result that says why."""
    from queries.billing import reconciliation

    kql, portal = period.envelope.kql, period.envelope.portal_url  # the estimate's query (the ledger's)
    if not ctx.scope.is_everything:
        return BillCheck(pd.DataFrame(), QueryResult(name="estimate vs billed", frame=pd.DataFrame()), True)
    try:
        rec = reconciliation(ctx.settings, ctx.lens, start, end)
    except Exception as e:
        return BillCheck(pd.DataFrame(), failed("estimate vs billed", f"{type(e).__name__}: {e}", kql))
    env = QueryResult(
        name="estimate vs billed",
        frame=rec,
        kql=kql,
        portal_url=portal,
        source="Cost Management" if not ctx.settings.is_demo else "the demo's bill",
    )
    return BillCheck(rec, env)


def bill_daily(rec: pd.DataFrame) -> pd.DataFrame:
    """Day, Estimate, Billed, Pending: the estimate and the bill per day (pending: the bill may still grow)."""
    cols = ["Day", "Estimate", "Billed", "Pending"]
    if rec.empty:
        return pd.DataFrame(columns=cols)
    r = rec.assign(Pending=rec["Status"] == "pending")
    g = r.groupby("Day", as_index=False).agg(
        Estimate=("Estimate", lambda s: s.sum(min_count=1)),
        Billed=("Billed", lambda s: s.sum(min_count=1)),
        Pending=("Pending", "any"),
    )
    return g[cols]


def bill_lines(rec: pd.DataFrame) -> pd.DataFrame:
    """The lines someone should look at, by name: drift and bill-only first, then unpriced; Day, Account,
    Model, Meter, Estimate, Billed, Difference, Pct, Status."""
    cols = ["Day", "Account", "Model", "Meter", "Estimate", "Billed", "Difference", "Pct", "Status"]
    if rec.empty:
        return pd.DataFrame(columns=cols)
    order = {"drift": 0, "bill-only": 1, "unpriced": 2}
    r = rec[rec["Status"].isin(list(order))].copy()
    r["Meter"] = r["Meter"].map(lambda m: METER_NAMES.get(str(m), str(m)))
    r["Model"] = r["Model"].fillna("").replace("", "-")
    r["Day"] = pd.to_datetime(r["Day"], utc=True).dt.strftime("%Y-%m-%d")
    r["Pct"] = r["DifferencePct"]
    r["_o"] = r["Status"].map(order)
    r = r.sort_values(["_o", "Day", "Account", "Model", "Meter"], kind="stable")
    return r[cols].reset_index(drop=True)
