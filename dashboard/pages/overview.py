"""Overview: the numbers everyone looks at first, each with its trend, and the main charts."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, callback, dcc, html

from dashboard import figures
from dashboard.costs import month_to_date, spend_forecast, this_month
from dashboard.data import Context, deployments_frame, fetch, page_answer, store_result
from dashboard.filters import Filters
from dashboard.kpis import Kpi, compute_kpis
from dashboard.layout import filters_id, page_shell, row
from dashboard.messages import shown
from dashboard.panels import GRAPH_CONFIG, body_id, compact, frame_table, panel, panel_body, safe

dash.register_page(__name__, path="/", name="Overview", order=0, title="Overview · aoai-lens")

PAGE = "ov"
PANELS = ("status", "tokens", "spend", "summary")


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Overview",
        "Spend, traffic, errors, latency, probes and alerts at a glance.",
        query,
        [
            dcc.Loading(html.Div(id=f"{PAGE}-kpis", style={"minHeight": "120px"}), type="default", delay_show=150),
            row(
                (panel(PAGE, "status", "Requests by status class"), 6),
                (panel(PAGE, "tokens", "Tokens by deployment", "Prompt + completion tokens per time bin"), 6),
            ),
            row(
                (panel(PAGE, "spend", "Spend this month by deployment", "Estimated cost per day, USD"), 6),
                (panel(PAGE, "summary", "Deployments", "Requests, errors and p95 latency over the range"), 6),
            ),
        ],
        show=("range", "resource", "deployment"),
    )


def kpi_cards(kpis: list[Kpi]) -> Any:
    cols = []
    for k in kpis:
        body: list[Any] = [
            html.Div(k.label, className="text-muted small"),
            html.Div(
                k.value,
                className=f"fs-4 fw-semibold text-{k.tone}" if k.tone != "secondary" else "fs-4 fw-semibold",
                id=f"{PAGE}-kpi-{k.key}",
            ),
            html.Div(k.sub, className="text-muted small text-truncate"),
        ]
        if k.problem:
            body.append(html.Div(shown(k.problem), className="small text-danger"))
        if k.x:
            body.append(
                dcc.Graph(
                    figure=compact(figures.sparkline(pd.Series(k.x), pd.Series(k.y), unit=k.unit, step=k.step)),
                    config={**GRAPH_CONFIG, "displayModeBar": False},  # type: ignore[arg-type]
                    style={"height": "60px"},
                )
            )
        else:
            body.append(html.Div(style={"height": "60px"}))
        cols.append(
            dbc.Col(
                dbc.Card(dbc.CardBody(body, className="p-2"), className="h-100 kpi"),
                xs=6,
                md=3,
                xl=True,
                style={"minWidth": 0},
            )
        )
    return dbc.Row(cols, className="g-2 mb-3")


def render(f: Filters, ctx: Context) -> list[Any]:
    deps = deployments_frame(ctx)
    scope = f.scoped_deployments(deps)
    params = {"deployments": scope}
    t = f.time_kwargs()
    r = fetch(
        ctx.lens,
        {
            "status": ("requests_by_status", {**t, "params": params}),
            "tokens": ("tokens_by_deployment", {**t, "params": params}),
            "latency": ("latency_by_deployment", {**t, "params": params}),
            "summary": ("summary_by_deployment", {**t, "params": params}),
        },
    )
    colours = figures.colour_map(deps["Deployment"].astype(str)) if not deps.empty else {}
    now = ctx.now()
    alloc = month_to_date(ctx, now)
    spend_daily = None
    forecast = None
    spend_by_dep = pd.DataFrame(columns=["Day", "Deployment", "Cost"])
    if alloc.ok:
        history = alloc.rows
        if scope:
            history = history[history["Deployment"].isin(scope)]
        fc = spend_forecast(history, now)
        forecast = fc.forecast if fc is not None else None
        rows = this_month(history, now)
        rows = rows[rows["Priced"].astype(bool)]
        rows = rows.assign(Day=pd.to_datetime(rows["Day"], utc=True))
        spend_by_dep = rows.groupby(["Day", "Deployment"], as_index=False)["Cost"].sum()
        spend_daily = rows.groupby("Day", as_index=False)["Cost"].sum().sort_values("Day")
    store = ctx.store()
    start, end = f.window(now)
    probes = (
        store_result("probes", lambda: store.probes(since=start.timestamp(), until=end.timestamp())) if store else None
    )
    states = store_result("alert states", store.current_states) if store else None
    transitions = (
        store_result("transitions", lambda: pd.DataFrame([t.__dict__ for t in store.transitions()])) if store else None
    )

    def kpis() -> list[Any]:
        ks = compute_kpis(
            r["status"].frame,
            r["tokens"].frame,
            r["latency"].frame,
            spend_daily,
            forecast,
            probes.frame if probes is not None and probes.ok else None,
            states.frame if states is not None and states.ok else None,
            transitions.frame if transitions is not None and transitions.ok else None,
        )
        for k in ks:
            src = {
                "requests": r["status"],
                "errors": r["status"],
                "throttled": r["status"],
                "tokens": r["tokens"],
                "latency": r["latency"],
            }.get(k.key)
            if src is not None and src.status == "failed":
                k.problem = f"query failed: {src.notice}"
            if k.key == "spend" and not alloc.ok:
                k.problem = f"cost model failed: {alloc.envelope.notice}"
        return [kpi_cards(ks)]

    def status() -> list[Any]:
        return panel_body(PAGE, "status", figures.status_over_time(r["status"].frame), [r["status"]])

    def tokens() -> list[Any]:
        return panel_body(PAGE, "tokens", figures.tokens_over_time(r["tokens"].frame, colours), [r["tokens"]])

    def spend() -> list[Any]:
        fig = figures.stacked_over_time(
            spend_by_dep, "Day", "Deployment", "Cost", "USD per day", colours, unit="$", bars=True
        )
        return panel_body(PAGE, "spend", fig, [alloc.envelope], frame=spend_by_dep)

    def summary() -> list[Any]:
        s = r["summary"].frame.copy()
        if not s.empty:
            req = s["Requests"].astype(float)
            s["429 %"] = 100 * s["Throttled"].astype(float) / req
            s["5xx %"] = 100 * s["ServerErrors"].astype(float) / req
            s = s[["Deployment", "Model", "Requests", "429 %", "5xx %", "P95", "PromptTokens", "CompletionTokens"]]
            s = s.rename(
                columns={"P95": "p95 ms", "PromptTokens": "Prompt tokens", "CompletionTokens": "Completion tokens"}
            )
        table = frame_table(
            s,
            {
                "Requests": "{:,}",
                "429 %": "{:.2f}",
                "5xx %": "{:.2f}",
                "p95 ms": "{:,.0f}",
                "Prompt tokens": "{:,}",
                "Completion tokens": "{:,}",
            },
        )
        return panel_body(PAGE, "summary", table, [r["summary"]])

    builders = {"status": status, "tokens": tokens, "spend": spend, "summary": summary}
    return [safe(PAGE, "kpis", kpis)] + [safe(PAGE, k, builders[k]) for k in PANELS]


@callback(
    [Output(f"{PAGE}-kpis", "children")] + [Output(body_id(PAGE, k), "children") for k in PANELS],
    Input(filters_id(PAGE), "data"),
)
def fill(data: dict[str, Any] | None) -> list[Any]:
    return page_answer(PAGE, data, lambda ctx: render(Filters.from_store(data), ctx))
