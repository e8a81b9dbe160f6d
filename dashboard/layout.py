"""The shape every page shares: a title, the filter bar (from the URL), and a store of the filters that
the page's data callback listens to, so the shell renders at once and the charts follow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.data import context, deployments_frame
from dashboard.filters import Filters, filter_bar


def filters_id(page: str) -> str:
    return f"{page}-filters"


def page_shell(
    page: str,
    title: str,
    audience: str,
    query: Mapping[str, Any],
    body: list[Any],
    *,
    show: tuple[str, ...] = ("range", "resource", "deployment", "team"),
    note: str = "",
) -> html.Div:
    f = Filters.from_query(query)
    resources: list[str] = []
    deployments: list[str] = []
    teams: list[str] = []
    try:
        ctx = context()
        deps = deployments_frame(ctx)
        if not deps.empty:
            resources = sorted(set(deps["Resource"].astype(str)))
            in_scope = deps if not f.resource else deps[deps["Resource"].astype(str) == f.resource]
            deployments = sorted(set(in_scope["Deployment"].astype(str)))
        teams = ctx.teams()
    except Exception:  # the filter bar still renders, with free options
        pass
    header = dbc.Row(
        [
            dbc.Col(
                [
                    html.H3(title, className="mb-0", id=f"{page}-title"),
                    html.Div(audience, className="text-muted small"),
                ],
                md=4,
            ),
            dbc.Col(filter_bar(f, resources=resources, deployments=deployments, teams=teams, show=show), md=8),
        ],
        className="align-items-start mb-2",
    )
    scope = html.Div(
        [
            html.Span("Showing: ", className="fw-semibold"),
            f.describe(),
            html.Span(" · times in UTC"),
            html.Span(" · " + note if note else ""),
        ],
        className="text-muted small mb-3",
        id=f"{page}-scope",
    )
    return html.Div([dcc.Store(id=filters_id(page), data=f.to_store()), header, scope, *body], id=f"{page}-page")


def row(*cols: tuple[Any, int]) -> dbc.Row:
    return dbc.Row([dbc.Col(c, lg=w) for c, w in cols], className="g-3 mb-1")
