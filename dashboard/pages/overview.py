"""Overview: the workspace this dashboard is reading."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html
from flask import current_app

from queries.demo import workspace_info

dash.register_page(__name__, path="/", name="Overview", order=0)


def layout(**_query: str) -> html.Div:
    settings = current_app.config["aoai_lens_settings"]
    if not settings.is_demo:
        return html.Div([html.H2("Overview"), html.P(f"Source: Azure workspace {settings.source.workspace_id}")])
    info = workspace_info(settings.demo_path)
    cards = [
        dbc.Col(dbc.Card(dbc.CardBody([html.Div(label, className="text-muted small"), html.H4(value)])), md=3)
        for label, value in (
            ("Source", "demo workspace"),
            ("Requests", f"{int(info.get('requests', 0)):,}"),
            ("Days", info.get("days", "?")),
            ("Data ends", info.get("end", "?")),
        )
    ]
    return html.Div([html.H2("Overview", id="overview-title"), dbc.Row(cards, className="g-3")])
