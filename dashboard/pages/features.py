"""Features & teams (team leads): what each feature costs, per request and per caller, and its trend."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback

from dashboard import figures
from dashboard.costs import allocation, spend_by
from dashboard.data import Context, page_answer
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe

dash.register_page(__name__, path="/features", name="Features & teams", order=2, title="Features & teams · aoai-lens")

PAGE = "feat"
PANELS = ("cost", "unit", "trend", "table")


def layout(**query: Any) -> Any:
    query = {"range": "30d", **query}
    return page_shell(
        PAGE,
        "Features & teams",
        "For team leads: each feature's cost, tokens, requests, cost per request and per active caller. "
        "The team filter scopes the whole page.",
        query,
        [
            row(
                (panel(PAGE, "cost", "Cost by feature", "Allocated cost over the range, coloured by team"), 6),
                (panel(PAGE, "unit", "Cost per request", "USD per request, by feature"), 6),
            ),
            row((panel(PAGE, "trend", "Cost trend by feature", "USD per day"), 12)),
            row((panel(PAGE, "table", "Features", "Totals over the range"), 12)),
        ],
        show=("range", "team"),
    )


def feature_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per feature: Team, Cost, Requests, Tokens, ActiveCallers, CostPerRequest, CostPerCaller (allocated,
    priced rows; a caller is a distinct object id, or caller IP for API-key calls, that made requests)."""
    cols = [
        "Feature",
        "Team",
        "CostCenter",
        "Cost",
        "Requests",
        "Tokens",
        "ActiveCallers",
        "CostPerRequest",
        "CostPerCaller",
    ]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows[(rows["Category"] == "allocated") & rows["Priced"].astype(bool)].copy()
    if r.empty:
        return pd.DataFrame(columns=cols)
    r["Tokens"] = r["PromptTokens"].fillna(0) + r["CompletionTokens"].fillna(0)
    r["Caller"] = (
        r["ObjectId"].fillna("").astype(str).where(r["ObjectId"].fillna("") != "", "ip:" + r["CallerIP"].astype(str))
    )
    active = r[r["Requests"] > 0].groupby("Feature")["Caller"].nunique().rename("ActiveCallers")
    g = r.groupby(["Feature", "Team", "CostCenter"], as_index=False)[["Cost", "Requests", "Tokens"]].sum()
    g = g.merge(active, on="Feature", how="left")
    g["ActiveCallers"] = g["ActiveCallers"].fillna(0).astype(int)
    g["CostPerRequest"] = g["Cost"] / g["Requests"].where(g["Requests"] > 0)
    g["CostPerCaller"] = g["Cost"] / g["ActiveCallers"].where(g["ActiveCallers"] > 0)
    return g[cols].sort_values("Cost", ascending=False).reset_index(drop=True)


def render(f: Filters, ctx: Context) -> list[Any]:
    now = ctx.now()
    start, end = f.window(now)
    alloc = allocation(ctx, start, end)
    rows = alloc.rows
    if f.team and not rows.empty:
        rows = rows[rows["Team"] == f.team]
    table = feature_table(rows)
    team_colours = figures.colour_map(ctx.teams())
    feature_colours = {
        str(ft): team_colours.get(str(tm), figures.OTHER)
        for ft, tm in zip(table["Feature"], table["Team"], strict=False)
    }
    env = [alloc.envelope]

    def cost() -> list[Any]:
        fig = figures.shares_bar(table, "Feature", "Cost", colours=feature_colours)
        teams = ", ".join(f"{t}" for t in sorted(set(table["Team"])))
        return panel_body(
            PAGE, "cost", fig, env, frame=table[["Feature", "Team", "Cost"]], note=f"teams: {teams}" if teams else None
        )

    def unit() -> list[Any]:
        t = table.dropna(subset=["CostPerRequest"])
        fig = figures.shares_bar(t, "Feature", "CostPerRequest", unit="$", colours=feature_colours)
        fig.update_xaxes(title_text="USD per request", tickformat="$,.4f", tickprefix="")
        fig.update_traces(hovertemplate="%{y}: %{x:$,.5f} per request<extra></extra>", texttemplate="%{x:$,.4f}")
        return panel_body(PAGE, "unit", fig, env, frame=t[["Feature", "Team", "CostPerRequest", "CostPerCaller"]])

    def trend() -> list[Any]:
        allocated = rows[rows["Category"] == "allocated"] if not rows.empty else rows
        frame = spend_by(allocated, "Feature")
        colours = figures.colour_map(ctx.features())  # one colour per feature: a team has several
        fig = figures.stacked_over_time(frame, "Day", "Feature", "Cost", "USD per day", colours, unit="$")
        return panel_body(PAGE, "trend", fig, env, frame=frame)

    def table_panel() -> list[Any]:
        shown = table.rename(
            columns={
                "CostCenter": "Cost center",
                "ActiveCallers": "Active callers",
                "CostPerRequest": "$ / request",
                "CostPerCaller": "$ / caller",
            }
        )
        content = frame_table(
            shown,
            {
                "Cost": "${:,.2f}",
                "Requests": "{:,.0f}",
                "Tokens": "{:,.0f}",
                "$ / request": "${:,.4f}",
                "$ / caller": "${:,.2f}",
            },
            empty="No allocated cost in this range" + (f" for team {f.team}" if f.team else ""),
        )
        return panel_body(PAGE, "table", content, env, frame=table)

    builders = {"cost": cost, "unit": unit, "trend": trend, "table": table_panel}
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return page_answer(PAGE, data, lambda ctx: render(Filters.from_store(data), ctx))
