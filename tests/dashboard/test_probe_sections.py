"""The Probes page's A/B comparison and SLO sections, and the Alerts page's backfilled history, rendered
from the session's seeded store (the browser test checks they are drawn)."""

from __future__ import annotations

import json
from typing import Any

import dash
from plotly.utils import PlotlyJSONEncoder

from dashboard.data import Context
from dashboard.filters import Filters
from queries.config import Settings


def _module(path: str) -> Any:
    import sys

    for page in dash.page_registry.values():
        if page["path"] == path:
            return sys.modules[page["module"]]
    raise KeyError(path)


def _text(body: Any) -> str:
    return json.dumps(body, cls=PlotlyJSONEncoder)


def test_probes_page_compares_ab_sides_and_shows_slos(
    dash_app: dash.Dash, dash_settings: Settings, seeded_store: Any
) -> None:
    from queries.lens import Lens

    page = _module("/probes")
    bodies = dict(
        zip(
            page.PANELS,
            map(_text, page.render(Filters(range="24h"), Context(dash_settings, Lens.from_settings(dash_settings)))),
            strict=True,
        )
    )
    assert not [k for k, t in bodies.items() if "panel-failed" in t]
    # A: 400-411 ms (p50 405.5), B: 800-811 ms (p50 805.5)
    assert "mini: A is faster (p50 406 ms vs 806 ms, 1.99x); errors A 0.0%, B 0.0%" in bodies["ab_table"]
    assert '"type": "bar"' in bodies["ab_chart"] and '"name": "B"' in bodies["ab_chart"]
    # the demo configuration's default SLO judges every probed deployment
    for dep in ("chat-gpt4o", "chat-gpt4o-mini", "embed-small"):
        assert dep in bodies["slo_table"]
    assert "burning or exhausted" in bodies["slo_table"] and '"orientation": "h"' in bodies["slo_chart"]
    assert seeded_store.probes()["ab"].isna().all()  # A/B results stay out of the regular probe panels


def test_alerts_page_marks_backfilled_transitions(
    dash_app: dash.Dash, dash_settings: Settings, seeded_store: Any
) -> None:
    page = _module("/alerts")
    bodies = dict(
        zip(page.PANELS, map(_text, page.render(Filters(range="7d"), Context(dash_settings, None))), strict=True)
    )
    assert "2 backfilled from the seeded month, not notified" in bodies["transitions"]
    assert "backfilled" in bodies["transitions"] and "live" in bodies["transitions"]
