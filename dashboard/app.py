"""The Dash application: pages from `dashboard/pages`, Bootstrap served by the app itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Dash, dcc, html
from flask import Flask, jsonify
from flask_bootstrap import Bootstrap5

from queries.settings import Settings

BOOTSTRAP_CSS = "/bootstrap/static/css/bootstrap.min.css"
HERE = Path(__file__).parent


def _navbar() -> dbc.Navbar:
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("aoai-lens", href="/"), dbc.Nav(links, navbar=True)], fluid=True),
        color="dark",
        dark=True,
        className="mb-3",
    )


def create_app(settings: Settings) -> Dash:
    server = Flask(__name__)
    server.config["aoai_lens_settings"] = settings
    Bootstrap5(server)  # serves Bootstrap 5 from the installed package: no CDN

    @server.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok"})

    app = Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        external_stylesheets=[BOOTSTRAP_CSS],
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="aoai-lens",
    )
    app.layout = html.Div([dcc.Location(id="url"), _navbar(), dbc.Container(dash.page_container, fluid=True)])
    return app
