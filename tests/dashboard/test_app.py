"""The app shell: health check, assets served locally, navigation from the registry, filters → URL."""

from __future__ import annotations

import re

import dash

from dashboard.app import search_from_controls


def test_healthz_and_bootstrap_served_by_the_app(dash_app: dash.Dash) -> None:
    client = dash_app.server.test_client()
    assert client.get("/healthz").get_json()["status"] == "ok"
    css = client.get("/bootstrap/static/css/bootstrap.min.css")
    assert css.status_code == 200 and b"Bootstrap" in css.data[:400]


def test_index_loads_nothing_from_another_host(dash_app: dash.Dash) -> None:
    html = dash_app.server.test_client().get("/").get_data(as_text=True)
    refs = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert refs and all(not r.startswith(("http:", "https:", "//")) for r in refs), refs


def test_every_page_is_in_the_nav_in_order(dash_app: dash.Dash) -> None:
    names = [p["name"] for p in sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)]
    assert names == [
        "Overview",
        "Cost",
        "Waste",
        "Features & teams",
        "Reliability",
        "Probes",
        "Alerts",
        "Data health",
        "Inventory",
    ]
    layout = dash_app.server.test_client().get("/_dash-layout").get_json()
    links = {}

    def walk(node: object) -> None:
        if isinstance(node, dict):
            props = node.get("props", {})
            if node.get("type") == "NavLink":
                links[props["children"]] = props["href"]
            for v in props.values() if isinstance(props, dict) else ():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(layout)
    assert links == {
        "Overview": "/",
        "Cost": "/cost",
        "Waste": "/waste",
        "Features & teams": "/features",
        "Reliability": "/reliability",
        "Probes": "/probes",
        "Alerts": "/alerts",
        "Data health": "/data-health",
        "Inventory": "/inventory",
    }


def test_filter_bar_values_become_the_query_string() -> None:
    v = {"range": "7d", "resource": "contoso-oai-eastus", "deployment": ["chat-gpt4o", "rag-gpt41"], "team": None}
    assert search_from_controls(v, [None], [None]) == (
        "?range=7d&resource=contoso-oai-eastus&deployment=chat-gpt4o,rag-gpt41"
    )
    # a custom range opens the date picker, then carries both dates
    assert search_from_controls({"range": "custom"}, [None], [None]) == "?range=custom"
    assert search_from_controls({"range": "custom"}, ["2026-11-01"], ["2026-11-03"]) == (
        "?range=custom&start=2026-11-01&end=2026-11-03"
    )
