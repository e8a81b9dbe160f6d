"""Cost (FinOps): what we spend, on what, against which budget, and whether PTU pays off."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.costs import (
    allocation,
    budgets_frame,
    month_end,
    month_start,
    month_to_date,
    ptu_frame,
    shares,
    spend_by,
)
from dashboard.data import Context, context, deployments_frame
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries.cost.forecast import METHOD as FORECAST_METHOD
from queries.cost.report import narrow
from queries.scope import Scope

dash.register_page(__name__, path="/cost", name="Cost", order=1, title="Cost · aoai-lens")

PAGE = "cost"
PANELS = ("over_time", "budgets", "shares", "ptu", "statement")
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


def render(f: Filters, by: str, month: str | None, ctx: Context, include_idle: bool = False) -> list[Any]:
    deps = deployments_frame(ctx)
    now = ctx.now()
    start, end = f.window(now)
    period = allocation(ctx, start, end)
    m_start = month_start(now)
    if month:
        with contextlib.suppress(ValueError):
            m_start = month_start(datetime.strptime(month + "-15", "%Y-%m-%d").replace(tzinfo=now.tzinfo))
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
        if not monthly.ok:
            return panel_body(PAGE, "statement", frame_table(pd.DataFrame()), [monthly.envelope])
        from queries.cost.report import statement as make_statement

        st_by = by if by in ("team", "feature", "deployment", "cost-center") else "team"
        result = monthly.result
        assert result is not None  # monthly.ok
        if f.team:  # the team filter narrows the statement like a team-scoped user's view
            result = narrow(result, Scope.of([f.team]))
        st = make_statement(result, st_by)  # type: ignore[arg-type]
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
        return panel_body(PAGE, "statement", table, [monthly.envelope], frame=st, note=f"statement {label}")

    builders = {"over_time": over_time, "budgets": budgets, "shares": shares_panel, "ptu": ptu, "statement": statement}
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback(
    [Output(body_id(PAGE, k), "children") for k in PANELS],
    Input(filters_id(PAGE), "data"),
    Input(f"{PAGE}-by", "value"),
    Input(f"{PAGE}-month", "value"),
    Input(f"{PAGE}-idle", "value"),
)
def fill(data: dict[str, Any] | None, by: str | None, month: str | None, idle: bool | None) -> list[Any]:
    return render(Filters.from_store(data), by or "team", month, context(), include_idle=bool(idle))
