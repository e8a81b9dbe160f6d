"""Waste (FinOps): money that bought nothing, each finding with its $ per month and the KQL that found it."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.data import Context, deployments_frame, page_answer
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries import waste
from queries.results import QueryResult

dash.register_page(__name__, path="/waste", name="Waste", order=1.5, title="Waste · aoai-lens")

PAGE = "waste"
FINDINGS = tuple(waste.TITLES)
PANELS = ("summary", *FINDINGS)
FORMATS = {
    "USD": "${:,.2f}",
    "USDLarge": "${:,.2f}",
    "USDMini": "${:,.2f}",
    "HitRate": "{:.1%}",
    "EligibleHitRate": "{:.1%}",
    "AtCapShare": "{:.1%}",
    "IdleShare": "{:.1%}",
    "Tokens": "{:,.0f}",
    "UsualTokens": "{:,.0f}",
    "ExcessTokens": "{:,.0f}",
    "PromptTokens": "{:,.0f}",
    "CachedTokens": "{:,.0f}",
    "EligiblePromptTokens": "{:,.0f}",
    "MissedTokens": "{:,.0f}",
    "PtuHours": "{:,.1f}",
    "IdlePtuHours": "{:,.1f}",
}
HIDDEN = ["ObjectId", "CallerIP"]  # in the CSV; the table shows the caller's name


def layout(**query: Any) -> Any:
    query = {"range": "30d", **query}
    finding_panels = [row((panel(PAGE, key, waste.TITLES[key], waste.WHAT[key], height=120), 12)) for key in FINDINGS]
    return page_shell(
        PAGE,
        "Waste",
        "For FinOps and team leads: what bought nothing, in $ per month, with the query that found it.",
        query,
        [
            row((panel(PAGE, "summary", "Waste by finding", "$ per month, monthly-ised from the range shown"), 12)),
            *finding_panels,
        ],
        show=("range", "resource", "deployment", "team"),
    )


def _filtered(frame: pd.DataFrame, f: Filters, deps: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """The deployment and resource filters narrow every table; the team filter the per-caller ones."""
    if frame.empty:
        return frame
    scope = f.scoped_deployments(deps)
    if scope and "Deployment" in frame.columns:
        frame = frame[frame["Deployment"].isin(scope)]
    if f.team and "Feature" in frame.columns:
        features = {r.feature for r in ctx.settings.attribution if r.team == f.team}
        frame = frame[frame["Feature"].isin(features)]
    return frame.reset_index(drop=True)


def _envelope(finding: waste.Finding, ctx: Context) -> QueryResult:
    r = finding.result
    if r is not None:
        return r.with_frame(finding.evidence)
    return QueryResult(name="cost ledger", frame=finding.evidence, kql=finding.kql, source="cost model")


def narrowed(report: waste.WasteReport, f: Filters, deps: pd.DataFrame, ctx: Context) -> list[waste.Finding]:
    """The findings as the page's filters narrow them: each evidence table filtered, and its $ the sum of
    the rows left when a filter removed some (the report itself is already the user's scope)."""
    out = []
    for x in report.findings:
        shown = _filtered(x.evidence, f, deps, ctx)
        if len(shown) != len(x.evidence) and "USD" in shown.columns:
            usd = float(shown["USD"].sum())
            x = replace(x, evidence=shown, usd=usd, usd_per_month=waste.monthly(usd, report.hours))
        out.append(x)
    return out


def render(f: Filters, ctx: Context) -> list[Any]:
    start, end = f.window(ctx.now())
    report = waste.report(ctx.lens, start, end)
    report = replace(report, findings=narrowed(report, f, deployments_frame(ctx), ctx))
    by_key = {x.key: x for x in report.findings}

    def summary() -> list[Any]:
        frame = report.summary()
        fig = figures.shares_bar(
            frame.dropna(subset=["USDPerMonth"]), "Finding", "USDPerMonth", x_title="USD per month"
        )
        table = frame_table(
            frame.drop(columns=["Method"]),
            {"USD": "${:,.2f}", "USDPerMonth": "${:,.2f}"},
            class_name="waste-summary",
        )
        note = f"{report.hours:,.0f} h range · {waste.monthly_method(report.hours)}"
        return panel_body(PAGE, "summary", html.Div([figures_graph(fig), table]), [], frame=frame, note=note)

    def one(key: str) -> list[Any]:
        x = by_key[key]
        shown = x.evidence
        table = frame_table(shown.drop(columns=[c for c in HIDDEN if c in shown.columns]), FORMATS)
        lines = [
            html.Div(
                [
                    html.Strong(f"${x.usd_per_month:,.2f} per month" if pd.notna(x.usd_per_month) else "not priced"),
                    html.Span(f" (${x.usd:,.2f} in the range)" if pd.notna(x.usd) else "", className="text-muted"),
                ],
                className="waste-usd",
            ),
            html.Div(f"How: {x.method}", className="small text-muted"),
            html.Div(f"What to do: {x.todo}", className="small mb-2"),
            *[html.Div(n, className="small text-warning-emphasis") for n in x.notes],
            table,
        ]
        return panel_body(PAGE, key, html.Div(lines), [_envelope(x, ctx)], frame=shown)

    return [safe(PAGE, "summary", summary), *[safe(PAGE, k, partial(one, k)) for k in FINDINGS]]


def figures_graph(fig: Any) -> Any:
    """The summary's chart as a graph inside the panel body (the table goes under it)."""
    from dash import dcc

    from dashboard.panels import GRAPH_CONFIG, compact

    compact(fig)
    fig.update_layout(height=300)
    return dcc.Graph(figure=fig, config=GRAPH_CONFIG, id={"type": "panel-graph", "page": PAGE, "key": "summary"})


@callback(
    [Output(body_id(PAGE, k), "children") for k in PANELS],
    Input(filters_id(PAGE), "data"),
)
def fill(data: dict[str, Any] | None) -> list[Any]:
    return page_answer(PAGE, {"filters": data}, lambda ctx: render(Filters.from_store(data), ctx))
