"""The Dash application: pages from `dashboard/pages`, Bootstrap served by the app itself (no CDN).

`create_app(settings)` builds it; `aoai-lens serve` serves `app.server` with waitress (one process) or
gunicorn (`--workers N`, through `server_factory`). Every request but `/healthz` is authenticated
(dashboard/auth.py) and its data scoped to the user's teams (dashboard/data.py). Each response says
which worker answered and how many cache hits and misses it had (`X-Aoai-Lens-Worker`,
`X-Aoai-Lens-Cache`), so a hit on a cache shared between workers can be seen. The navigation is
built from the page registry and keeps the current query string, so the global filters (which live in
the URL, see dashboard/filters.py) follow you from page to page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.io.json
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from flask import Flask
from flask_bootstrap import Bootstrap5

from dashboard import panels
from dashboard.filters import from_controls
from queries.config import Settings

BOOTSTRAP_CSS = "/bootstrap/static/css/bootstrap.min.css"
HERE = Path(__file__).parent


def _pages() -> list[dict[str, Any]]:
    return sorted(dash.page_registry.values(), key=lambda p: (p.get("order") or 0, p["name"]))


def _nav_id(page: dict[str, Any]) -> str:
    return "nav-" + page["module"].rsplit(".", 1)[-1].replace("_", "-")


def _navbar() -> dbc.Navbar:
    links = [
        dbc.NavItem(
            dbc.NavLink(
                page["name"],
                href=page["relative_path"],
                active="partial" if page["path"] != "/" else "exact",
                id=_nav_id(page),
            )
        )
        for page in _pages()
    ]
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("aoai-lens", href="/"), dbc.Nav(links, navbar=True)], fluid=True),
        color="dark",
        dark=True,
        className="mb-3",
    )


def create_app(settings: Settings, *, scheduler: Any = None) -> Dash:
    """The app. `scheduler`: the in-process scheduler `serve` started (None: it runs elsewhere), which
    /healthz checks; tests may also set `server.config["aoai_lens_scheduler"]`."""
    from dashboard import auth
    from dashboard.callbacks import install as install_callback_guard
    from dashboard.health import install as install_health

    server = Flask(__name__)
    server.config["aoai_lens_settings"] = settings
    server.config["aoai_lens_scheduler"] = scheduler
    Bootstrap5(server)  # serves Bootstrap 5 from the installed package: no CDN
    auth.install(server)

    install_health(server)

    # Answers are JSON of figures: orjson writes it several times faster than the standard library, and
    # responses are compressed (gzip/brotli, as the browser asks) so a page's answer travels small.
    plotly.io.json.config.default_engine = "orjson"
    app = Dash(
        __name__,
        server=server,  # type: ignore[arg-type]
        use_pages=True,
        compress=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        external_stylesheets=[BOOTSTRAP_CSS],
        serve_locally=True,
        suppress_callback_exceptions=True,
        title="aoai-lens",
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            _navbar(),
            dbc.Container(dash.page_container, fluid=True, className="pb-4"),
        ]
    )
    _register_callbacks(app)
    install_callback_guard(server, app)  # after Dash's own setup hook: the callback map is complete then
    return app


def _register_callbacks(app: Dash) -> None:
    panels.register_callbacks(app)
    pages = _pages()

    @app.callback([Output(_nav_id(p), "href") for p in pages], Input("url", "search"))
    def _nav_hrefs(search: object) -> list[str]:
        """Nav links carry the query string along, so the filters follow you from page to page."""
        return [p["relative_path"] + (search if isinstance(search, str) else "") for p in pages]

    app.callback(
        Output("url", "search"),
        Input({"type": "filter", "name": ALL}, "value"),
        Input({"type": "filter-dates", "name": ALL}, "start_date"),
        Input({"type": "filter-dates", "name": ALL}, "end_date"),
        State("url", "search"),
        prevent_initial_call=True,
    )(filters_to_url)


def filters_to_url(values: list[Any], starts: list[Any], ends: list[Any], search: str | None) -> Any:
    """Any filter change rewrites the query string; the page re-renders from it. The values come from
    the browser: what cannot be read as filters leaves the address as it is."""
    try:
        names = [item["id"]["name"] for item in ctx.inputs_list[0]]
        new = search_from_controls(dict(zip(names, values, strict=False)), list(starts or []), list(ends or []))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return no_update
    return no_update if new == (search or "") else new


def search_from_controls(v: dict[str, Any], starts: list[Any], ends: list[Any]) -> str:
    """The query string for the filter bar's values (a custom range without a start shows the date picker)."""
    f = from_controls(
        v.get("range"),
        starts[0] if starts else None,
        ends[0] if ends else None,
        v.get("resource"),
        v.get("deployment") or [],
        v.get("team"),
    )
    return f.to_search()


def server_factory() -> Flask:
    """For gunicorn (`serve --workers N`): each worker builds the app from the process's settings. No
    scheduler here: with several workers it runs once, as `aoai-lens scheduler`."""
    from queries.config import get_settings

    return create_app(get_settings()).server  # type: ignore[return-value]
