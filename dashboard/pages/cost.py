"""Cost (FinOps): what we spend, on what, against which budget, and whether PTU pays off."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, dcc, html

from dashboard import figures
from dashboard.costs import (
    WHOLE_ESTATE_ONLY,
    Allocation,
    allocation,
    bill_check,
    bill_daily,
    bill_lines,
    budgets_frame,
    month_end,
    month_start,
    month_to_date,
    ptu_frame,
    shares,
    spend_by,
)
from dashboard.data import Context, deployments_frame, page_answer
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import GRAPH_CONFIG, body_id, compact, frame_table, panel, panel_body, safe
from queries.cost.forecast import METHOD as FORECAST_METHOD
from queries.cost.report import narrow
from queries.scope import Scope

dash.register_page(__name__, path="/cost", name="Cost", order=1, title="Cost · aoai-lens")

PAGE = "cost"
PANELS = ("over_time", "budgets", "shares", "ptu", "statement", "bill")
BY = {"deployment": "Deployment", "model": "Model", "team": "Team", "feature": "Feature", "cost-center": "CostCenter"}


def _months(now: datetime, n: int = 3) -> list[str]:
    out, m = [], month_start(now)
    for _ in range(n):
        out.append(m.strftime("%Y-%m"))
        m = month_start(m - timedelta(days=1))
    return out


def layout(**query: Any) -> Any:
    query = {"range": "30d", **query}
    now = datetime.now().astimezone()
    controls = dbc.Row(
        [
            dbc.Col(html.Span("Group by", className="small text-muted me-2"), width="auto"),
            dbc.Col(
                dbc.RadioItems(
                    id=f"{PAGE}-by",
                    options=[{"label": k.replace("-", " "), "value": k} for k in BY],
                    value="team",
                    inline=True,
                    className="small",
                ),
                width="auto",
            ),
            dbc.Col(
                dbc.Switch(id=f"{PAGE}-idle", label="Draw PTU idle capacity", value=False, className="small ms-3 mb-0"),
                width="auto",
            ),
            dbc.Col(html.Span("Statement month", className="small text-muted ms-3 me-2"), width="auto"),
            dbc.Col(
                dbc.Select(
                    id=f"{PAGE}-month",
                    options=[{"label": m, "value": m} for m in _months(now)],
                    value=_months(now)[0],
                    size="sm",
                ),
                width="auto",
            ),
        ],
        className="align-items-center mb-2 g-1",
    )
    return page_shell(
        PAGE,
        "Cost",
        "For FinOps: spend by deployment, model, team, feature and cost center; budgets; PTU; chargeback.",
        query,
        [
            controls,
            row((panel(PAGE, "over_time", "Spend over time", "Estimated cost per day, USD, from tokens × prices"), 12)),
            row(
                (panel(PAGE, "budgets", "Budgets this month", "Spent month to date, run-rate forecast, budget"), 6),
                (
                    panel(
                        PAGE,
                        "shares",
                        "Where the money goes",
                        "Allocated, unallocated, probes, PTU idle; unpriced tokens",
                    ),
                    6,
                ),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "ptu",
                        "Provisioned (PTU) vs pay-as-you-go",
                        "Fixed PTU cost, used and idle, against the same tokens at PAYG prices",
                    ),
                    6,
                ),
                (
                    panel(
                        PAGE,
                        "statement",
                        "Chargeback statement",
                        "One line per group: requests, tokens, USD. The CSV button downloads it",
                    ),
                    6,
                ),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "bill",
                        "Estimate vs billed",
                        "The ledger's estimate beside what Azure billed (Cost Management), per day; the lines that "
                        "drift or were billed but never seen in the logs",
                    ),
                    12,
                )
            ),
        ],
        show=("range", "resource", "deployment", "team"),
    )


def _scope(rows: pd.DataFrame, f: Filters, deps: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    scope = f.scoped_deployments(deps)
    if scope:
        rows = rows[rows["Deployment"].isin(scope)]
    if f.team:
        rows = rows[rows["Team"] == f.team]
    return rows


def statement_month(month: object, now: datetime) -> tuple[datetime, str | None]:
    """The statement's month (its first instant) from the month picker's value, and a problem when the
    value is not a month between 1970 and now (then: this month). The value comes from the browser."""
    this = month_start(now)
    if month is None or month == "":
        return this, None
    text = str(month)
    m = re.fullmatch(r"(\d{4})-(\d{2})", text)
    year, mon = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if 1 <= mon <= 12 and (1970, 1) <= (year, mon) <= (this.year, this.month):
        return datetime(year, mon, 1, tzinfo=UTC), None
    shown = text if len(text) <= 20 else text[:20] + "…"
    return this, f"no month {shown!r}: showing {this:%Y-%m}"


def render(f: Filters, by: str, month: object, ctx: Context, include_idle: bool = False) -> list[Any]:
    deps = deployments_frame(ctx)
    now = ctx.now()
    start, end = f.window(now)
    period = allocation(ctx, start, end)
    m_start, month_problem = statement_month(month, now)
    m_end = min(month_end(m_start), now)
    monthly = allocation(ctx, m_start, m_end)  # the statement's month
    current = month_to_date(ctx, now)  # budgets: this month and the forecast's run-rate window (the same
    # period as `monthly` from the 8th of the month on, so one computation)
    col = BY.get(by, "Team")
    team_colours = figures.colour_map(ctx.teams())
    dep_colours = figures.colour_map(deps["Deployment"].astype(str)) if not deps.empty else {}
    colours = team_colours if col == "Team" else dep_colours if col == "Deployment" else None

    def over_time() -> list[Any]:
        rows = _scope(period.rows, f, deps)
        note = None
        if not include_idle and not rows.empty and "Category" in rows.columns:
            idle = rows["Category"] == "ptu idle"
            if idle.any():
                note = f"PTU idle capacity (${rows.loc[idle, 'Cost'].sum():,.0f}) not drawn: switch it on above"
                rows = rows[~idle]
        frame = spend_by(rows, col)
        fig = figures.stacked_over_time(frame, "Day", col, "Cost", "USD per day", colours, unit="$", bars=True)
        return panel_body(PAGE, "over_time", fig, [period.envelope], frame=frame, height=360, note=note)

    def budgets() -> list[Any]:
        frame, notice = budgets_frame(ctx, current, now)
        if f.team and not frame.empty:
            frame = frame[(frame["Scope"] != "team") | (frame["Name"] == f.team)]
        over = frame[frame["ForecastUSD"].astype(float) > frame["BudgetUSD"].astype(float)]["Name"].tolist()
        note = notice or (("forecast over budget: " + ", ".join(over)) if over else "all budgets on track")
        note += f" · forecast: {FORECAST_METHOD}"
        return panel_body(PAGE, "budgets", figures.budget_vs_actual(frame), [current.envelope], frame=frame, note=note)

    def shares_panel() -> list[Any]:
        if period.result is None:
            return panel_body(PAGE, "shares", figures.empty_figure("Cost model unavailable"), [period.envelope])
        frame = shares(period.result)
        priced = frame[frame["Cost"].notna()]
        fig = figures.shares_bar(
            priced,
            "Part",
            "Cost",
            colours={"allocated": "#1E88E5", "unallocated": figures.OTHER, "probes": "#8E24AA", "ptu idle": "#BDBDBD"},
            with_share=True,
        )
        unpriced = frame.loc[frame["Part"] == "unpriced (tokens)", "Share"]
        share = float(unpriced.iloc[0]) if len(unpriced) else 0.0
        total = float(priced["Cost"].sum())
        unalloc = float(priced.loc[priced["Part"] == "unallocated", "Cost"].sum())
        note = (f"unallocated {100 * unalloc / total:.1f}% of ${total:,.0f}" if total else "no cost") + (
            f" · unpriced {100 * share:.1f}% of tokens"
        )
        return panel_body(PAGE, "shares", fig, [period.envelope], frame=frame, note=note)

    def ptu() -> list[Any]:
        frame = ptu_frame(period.result) if period.result is not None else pd.DataFrame()
        scope = f.scoped_deployments(deps)
        if scope and not frame.empty:
            frame = frame[frame["Deployment"].isin(scope)]
        note = None
        if not frame.empty and "Utilisation" in frame.columns:
            note = "utilisation " + ", ".join(
                f"{d}: {100 * float(u):.2f}%" for d, u in zip(frame["Deployment"], frame["Utilisation"], strict=False)
            )
        return panel_body(PAGE, "ptu", figures.ptu_vs_payg(frame), [period.envelope], frame=frame, note=note)

    def statement() -> list[Any]:
        if monthly.result is None:
            return panel_body(PAGE, "statement", frame_table(pd.DataFrame()), [monthly.envelope])
        from queries.cost.report import statement as make_statement

        st_by = by if by in ("team", "feature", "deployment", "cost-center") else "team"
        result = monthly.result
        assert result is not None  # monthly.ok
        if f.team:  # the team filter narrows the statement like a team-scoped user's view
            result = narrow(result, Scope.of([f.team]))
        st = make_statement(result, st_by)  # type: ignore[arg-type]  # st_by is one of the four
        shown = st.drop(columns=["Kind"], errors="ignore").rename(
            columns={"PromptTokens": "Prompt", "CachedTokens": "Cached", "CompletionTokens": "Completion"}
        )
        table = frame_table(
            shown,
            {
                "Requests": "{:,.0f}",
                "Prompt": "{:,.0f}",
                "Cached": "{:,.0f}",
                "Completion": "{:,.0f}",
                "Cost": "${:,.2f}",
                "Share": "{:.1%}",
            },
            class_name="cost-statement",
        )
        label = (
            m_start.strftime("%Y-%m")
            + (" (month to date)" if m_end == now else "")
            + (f", team {f.team}" if f.team else "")
        )
        note = f"statement {label}" + (f" · {month_problem}" if month_problem else "")
        return panel_body(PAGE, "statement", table, [monthly.envelope], frame=st, note=note)

    def bill() -> list[Any]:
        return bill_panel(f, ctx, start, now, period)

    builders = {
        "over_time": over_time,
        "budgets": budgets,
        "shares": shares_panel,
        "ptu": ptu,
        "statement": statement,
        "bill": bill,
    }
    return [safe(PAGE, k, builders[k]) for k in PANELS]


def bill_panel(f: Filters, ctx: Context, start: datetime, now: datetime, period: Allocation) -> list[Any]:
    """Estimate vs billed over the whole days of the page's range (dashboard.costs.bill_check)."""
    check = bill_check(ctx, start, now, period)
    if check.refused:
        shown = html.Div(WHOLE_ESTATE_ONLY, className="text-muted small p-3 panel-whole-estate")
        return panel_body(PAGE, "bill", shown, [check.envelope], frame=pd.DataFrame())
    rec = check.frame
    notes = []
    if f.resource and not rec.empty:
        rec = rec[rec["Account"].astype(str).str.lower() == f.resource.lower()]
    if f.deployments or f.team:
        notes.append("the bill is per account: the deployment and team filters do not narrow it")
    fig = compact(figures.estimate_vs_billed(bill_daily(rec)))
    fig.update_layout(height=260)
    lines = bill_lines(rec)
    lines["Difference"] = [f"{'-' if v < 0 else '+'}${abs(v):,.2f}" for v in lines["Difference"]]
    lines["Estimate"] = [f"${v:,.2f}" if pd.notna(v) else "not in the logs" for v in lines["Estimate"]]
    lines["Billed"] = [f"${v:,.2f}" if pd.notna(v) else "not billed" for v in lines["Billed"]]
    table = frame_table(
        lines,
        {"Pct": "{:+.1f}%"},
        max_rows=12,
        empty="Every settled line matches the bill",
        class_name="bill-lines",
    )
    content = html.Div(
        [dcc.Graph(figure=fig, config=GRAPH_CONFIG, id={"type": "panel-graph", "page": PAGE, "key": "bill"}), table]
    )
    if not rec.empty:
        counts = rec["Status"].value_counts()
        lag = ctx.settings.billing.lag_days
        notes.insert(
            0,
            " · ".join(f"{k} {int(counts.get(k, 0))}" for k in ("match", "drift", "bill-only", "unpriced"))
            + f" · pending {int(counts.get('pending', 0))} (the last {lag} days: the bill lags)",
        )
    frame = rec.assign(Day=pd.to_datetime(rec["Day"], utc=True).dt.strftime("%Y-%m-%d")) if not rec.empty else rec
    return panel_body(PAGE, "bill", content, [check.envelope], frame=frame, note=" · ".join(notes) or None)


@callback(
    [Output(body_id(PAGE, k), "children") for k in PANELS],
    Input(filters_id(PAGE), "data"),
    Input(f"{PAGE}-by", "value"),
    Input(f"{PAGE}-month", "value"),
    Input(f"{PAGE}-idle", "value"),
)
def fill(data: dict[str, Any] | None, by: object, month: object, idle: object) -> list[Any]:
    """The inputs come from the browser: anything that is not one of the offered values falls back."""
    group = by if isinstance(by, str) and by in BY else "team"
    inputs = {"filters": data, "by": group, "month": month, "idle": idle is True}
    return page_answer(
        PAGE,
        inputs,
        lambda ctx: render(Filters.from_store(data), group, month, ctx, include_idle=idle is True),  # type: ignore[arg-type]
    )
