"""The reusable panel: status alert, KQL block, portal link, CSV data."""

from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
from plotly.utils import PlotlyJSONEncoder

from dashboard.panels import combine, frame_table, panel_body, safe
from queries.results import QueryResult

FRAME = pd.DataFrame({"Deployment": ["a", "b"], "Requests": [3, 4]})


def _json(children: object) -> str:
    return json.dumps(children, cls=PlotlyJSONEncoder)


def _ids(children: list) -> list[str]:  # type: ignore[type-arg]
    return [c.id["type"] for c in children if isinstance(getattr(c, "id", None), dict)]


def test_ok_panel_has_graph_kql_portal_and_csv() -> None:
    r = QueryResult(name="q", frame=FRAME, kql="AzureDiagnostics | take 1", portal_url="https://portal.example/q")
    body = panel_body("pg", "k", go.Figure(), [r])
    text = _json(body)
    assert "panel-failed" not in text and "panel-partial" not in text
    assert "AzureDiagnostics | take 1" in text
    assert "https://portal.example/q" in text
    store = next(c for c in body if getattr(c, "id", None) == {"type": "panel-data", "page": "pg", "key": "k"})
    assert store.data == "csv:" + FRAME.to_csv(
        index=False, lineterminator="\r\n"
    )  # outside a request: the CSV itself (queries.safecsv: RFC 4180)
    assert "panel-kql" in _ids(body) and "panel-download" in _ids(body)


def test_failed_result_says_so_and_keeps_its_kql() -> None:
    r = QueryResult(name="q", frame=pd.DataFrame(), status="failed", notice="HttpResponseError: 400", kql="bad | kql")
    text = _json(panel_body("pg", "k", go.Figure(), [r]))
    assert "panel-failed" in text and "HttpResponseError: 400" in text
    assert "bad | kql" in text


def test_combine_worst_status() -> None:
    ok = QueryResult(name="a", frame=FRAME)
    part = QueryResult(name="b", frame=FRAME, status="partial", notice="cut at 500k rows")
    bad = QueryResult(name="c", frame=pd.DataFrame(), status="failed", notice="boom")
    assert combine([ok, part])[0] == "partial"
    assert combine([ok, bad])[0] == "partial"  # some data is still shown
    assert combine([bad])[0] == "failed"
    assert combine([ok, part])[1] == ["b: cut at 500k rows"]


def test_safe_turns_an_exception_into_a_failed_panel() -> None:
    def boom() -> list:  # type: ignore[type-arg]
        raise KeyError("P95")

    assert "panel-failed" in _json(safe("pg", "k", boom))


def test_frame_table_formats_and_truncates() -> None:
    big = pd.DataFrame({"n": range(30), "t": pd.date_range("2026-11-01", periods=30, freq="h", tz="UTC")})
    text = _json(frame_table(big, {"n": "{:,}"}, max_rows=5))
    assert "25 more rows" in text
    assert "2026-11-01 04:00" in text
    assert "panel-empty" in _json(frame_table(pd.DataFrame()))
