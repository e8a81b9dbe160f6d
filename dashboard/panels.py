"""The panel: one chart (or table) in a card, with its provenance and its data.

Every panel offers "Show KQL" (the query that ran, in a collapsible code block), "Open in portal" (the
Log Analytics deep link) and "CSV" (the frame the chart was drawn from). A failed or partial result says
so inside the panel (a red or amber alert with the notice) and the other panels are unaffected.

A page lays out `panel(page, key, title)` shells (they render at once, with a loading spinner), and its
data callback fills each one with `panel_body(...)` through `body_id(page, key)`. The KQL toggle and CSV
download are pattern-matching callbacks defined once here, for every panel on every page.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import MATCH, Input, Output, State, dcc, html, no_update

from dashboard.messages import shown
from queries.results import QueryResult
from queries.safecsv import to_csv

log = logging.getLogger(__name__)

GRAPH_CONFIG: Any = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def body_id(page: str, key: str) -> dict[str, str]:
    return {"type": "panel-body", "page": page, "key": key}


def _pid(kind: str, page: str, key: str) -> dict[str, str]:
    return {"type": kind, "page": page, "key": key}


def panel(page: str, key: str, title: str, description: str = "", *, height: int = 320) -> dbc.Card:
    """An empty panel shell; the page's callback fills its body."""
    header: list[Any] = [html.Span(title, className="fw-semibold")]
    if description:
        header.append(html.Div(description, className="text-muted small"))
    return dbc.Card(
        [
            dbc.CardHeader(header, className="py-2"),
            dbc.CardBody(
                dcc.Loading(
                    html.Div(id=body_id(page, key), style={"minHeight": f"{height}px"}),
                    type="default",
                    delay_show=150,
                ),
                className="p-2",
            ),
        ],
        className="panel mb-3 h-100",
        id=f"{page}-{key}-panel",
    )


def combine(results: Sequence[QueryResult]) -> tuple[str, list[str], str, str | None]:
    """The worst status, the notices, the KQL of every query and the first portal link."""
    status = "ok"
    if any(r.status == "failed" for r in results):
        status = "failed" if all(r.status == "failed" for r in results) else "partial"
    elif any(r.status == "partial" for r in results):
        status = "partial"
    notices = [f"{r.name}: {r.notice}" for r in results if r.notice]
    kql = "\n\n".join(f"// {r.name}\n{r.kql}" for r in results if r.kql)
    portal = next((r.portal_url for r in results if r.portal_url), None)
    return status, notices, kql, portal


def status_alert(status: str, notices: list[str]) -> list[Any]:
    if status == "ok":
        return []
    colour, cls, lead = (
        ("danger", "panel-failed", "This panel's query failed")
        if status == "failed"
        else ("warning", "panel-partial", "Partial data")
    )
    text = shown("; ".join(notices)) if notices else "no detail given"
    return [dbc.Alert([html.Strong(lead + ": "), text], color=colour, className=f"{cls} py-2 small mb-2")]


def panel_body(
    page: str,
    key: str,
    content: go.Figure | Any,
    results: Sequence[QueryResult] = (),
    *,
    frame: pd.DataFrame | None = None,
    note: str | None = None,
    height: int | None = None,
) -> list[Any]:
    """What fills a panel: status alert, the chart or table, and its actions (KQL, portal, CSV)."""
    status, notices, kql, portal = combine(results)
    if frame is None:
        frame = next((r.frame for r in results if r.frame is not None), pd.DataFrame())
    if isinstance(content, go.Figure):
        if height:
            content.update_layout(height=height)
        compact(content)
        body: Any = dcc.Graph(figure=content, config=GRAPH_CONFIG, id=_pid("panel-graph", page, key))
    else:
        body = content
    actions: list[Any] = []
    if kql:
        actions.append(
            dbc.Button(
                "Show KQL",
                id=_pid("panel-kql-toggle", page, key),
                size="sm",
                color="secondary",
                outline=True,
                className="me-2",
                n_clicks=0,
            )
        )
    if portal:
        actions.append(
            html.A(
                "Open in portal",
                href=portal,
                target="_blank",
                rel="noopener noreferrer",
                className="btn btn-sm btn-outline-secondary panel-portal",
            )
        )
    actions.append(
        dbc.Button(
            f"CSV ({len(frame):,} rows)",
            id=_pid("panel-csv", page, key),
            size="sm",
            color="secondary",
            outline=True,
            n_clicks=0,
            disabled=frame.empty,
        )
    )
    cached = [r for r in results if r.cached]
    meta = []
    if cached and len(cached) == len(results):
        meta.append("cached")
    if note:
        meta.append(shown(note))
    out: list[Any] = [
        *status_alert(status, notices),
        body,
        html.Div(
            [*actions, html.Span(" · ".join(meta), className="text-muted small ms-1")],
            className="d-flex flex-wrap align-items-center gap-1 mt-2 panel-actions text-nowrap",
        ),
        dcc.Store(id=_pid("panel-data", page, key), data=csv_ref(frame) if not frame.empty else ""),
        dcc.Download(id=_pid("panel-download", page, key)),
    ]
    if kql:
        out.append(
            dbc.Collapse(
                html.Pre(
                    html.Code(kql),
                    className="small bg-light border rounded p-2 mt-2 mb-0 panel-kql-code",
                    style={"maxHeight": "320px", "overflow": "auto", "whiteSpace": "pre"},
                ),
                id=_pid("panel-kql", page, key),
                is_open=False,
            )
        )
    return out


CSV_TTL_S = 3600.0  # how long a page's CSV downloads stay on the server after it was drawn
CSV_REF, CSV_INLINE = "ref:", "csv:"


def csv_text(frame: pd.DataFrame) -> str:
    """The panel's rows as CSV a spreadsheet opens safely (`queries.safecsv`)."""
    return to_csv(frame)


def csv_ref(frame: pd.DataFrame) -> str:
    """What the page carries for a panel's CSV button: a reference to the CSV kept on the server (in the
    Lens's cache, under the user's team scope), not the CSV itself, so a page sends what it draws. Outside
    a request (a unit test drawing a panel) the CSV itself."""
    from dashboard.data import context
    from queries.scoped import whole

    text = csv_text(frame)
    try:
        ctx = context()
    except RuntimeError:
        return CSV_INLINE + text
    token = uuid.uuid4().hex
    whole(ctx.lens).cache.set(f"panel-csv:{ctx.scope.key}:{token}", text, CSV_TTL_S)
    return CSV_REF + token


def csv_for(data: str) -> str | None:
    """The CSV a panel's reference points to, for the signed-in user's scope (None when it has expired or
    was made for another scope)."""
    if data.startswith(CSV_INLINE):
        return data[len(CSV_INLINE) :]
    if not data.startswith(CSV_REF):
        return None
    from dashboard.data import context
    from queries.scoped import whole

    ctx = context()
    hit = whole(ctx.lens).cache.get(f"panel-csv:{ctx.scope.key}:{data[len(CSV_REF) :]}")
    return hit if isinstance(hit, str) else None


def _epoch_ms(values: Any) -> Any:
    """Times as milliseconds since the epoch (UTC), which a date axis draws as dates: a numeric array
    travels as a compact typed array instead of one ISO string per point. None: not times."""
    arr = np.asarray(values)
    if arr.dtype == object and len(arr) and isinstance(arr[0], pd.Timestamp | datetime):
        arr = pd.to_datetime(pd.Series(arr), utc=True).dt.tz_localize(None).to_numpy()
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ms]").astype("int64").astype("float64")
    return None


def compact(fig: go.Figure) -> go.Figure:
    """Send what is drawn: time values as epoch milliseconds on date axes, and of the template only its
    layout (the look); its per-trace-type defaults (colour scales for contours, heatmaps, ...) are
    several KB a figure that no panel here draws."""
    template = fig.layout.template
    if template is not None and template.data is not None:
        fig.layout.template = go.layout.Template(layout=template.layout)
    dates = False
    for trace in fig.data:
        values = getattr(trace, "x", None)
        if values is not None and not isinstance(values, str) and len(values):
            ms = _epoch_ms(values)
            if ms is not None:
                trace.x = ms
                dates = True
        y = getattr(trace, "y", None)
        if isinstance(y, list | tuple) and y and all(isinstance(v, int | float) for v in y):
            trace.y = np.asarray(y, dtype="float64")  # a typed array, not a list of decimals
    if dates:
        fig.update_xaxes(type="date")
    return fig


def error_body(page: str, key: str, error: BaseException) -> list[Any]:
    """The body of a panel whose drawing code raised: says so, keeps the rest of the page alive."""
    log.exception("panel %s/%s failed", page, key, exc_info=error)
    return status_alert("failed", [f"{type(error).__name__}: {error}"])


def safe(page: str, key: str, build: Callable[[], list[Any]]) -> list[Any]:
    try:
        return build()
    except Exception as e:
        return error_body(page, key, e)


def frame_table(
    frame: pd.DataFrame,
    formats: dict[str, str] | None = None,
    *,
    max_rows: int = 25,
    empty: str = "No rows for this range",
    class_name: str = "",
) -> Any:
    """A compact Bootstrap table of a frame; `formats` maps a column to a format spec ("{:,.0f}")."""
    if frame is None or frame.empty:
        return html.Div(empty, className="text-muted small p-3 panel-empty")
    f = frame.head(max_rows).copy()
    for col, fmt in (formats or {}).items():
        if col in f.columns:
            f[col] = [fmt.format(v) if pd.notna(v) else "" for v in f[col]]
    for col in f.columns:
        if isinstance(f[col].dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(f[col]):
            f[col] = f[col].dt.strftime("%Y-%m-%d %H:%M")
    table = dbc.Table.from_dataframe(f, striped=True, hover=True, size="sm", className=f"mb-0 small {class_name}")
    more = len(frame) - len(f)
    return html.Div(
        [table, html.Div(f"… {more:,} more rows in the CSV", className="text-muted small") if more > 0 else None],
        style={"overflowX": "auto"},
    )


def register_callbacks(app: Any) -> None:
    """The KQL toggle and CSV download for every panel (pattern-matching ids)."""

    @app.callback(
        Output(_pid("panel-kql", MATCH, MATCH), "is_open"),  # type: ignore[arg-type]
        Input(_pid("panel-kql-toggle", MATCH, MATCH), "n_clicks"),  # type: ignore[arg-type]
        State(_pid("panel-kql", MATCH, MATCH), "is_open"),  # type: ignore[arg-type]
        prevent_initial_call=True,
    )
    def toggle_kql(n: int | None, is_open: bool | None) -> bool:
        return not is_open if n else bool(is_open)

    @app.callback(
        Output(_pid("panel-download", MATCH, MATCH), "data"),  # type: ignore[arg-type]
        Input(_pid("panel-csv", MATCH, MATCH), "n_clicks"),  # type: ignore[arg-type]
        State(_pid("panel-data", MATCH, MATCH), "data"),  # type: ignore[arg-type]
        State(_pid("panel-csv", MATCH, MATCH), "id"),  # type: ignore[arg-type]
        prevent_initial_call=True,
    )
    def download_csv(n: object, data: object, pid: object) -> Any:
        if not n or not data or not isinstance(data, str):  # the CSV the panel stored, or nothing
            return no_update
        text = csv_for(data)
        if text is None:  # kept an hour after the page was drawn: the page must be drawn again
            return no_update
        parts = [str(pid.get(k, "")) for k in ("page", "key")] if isinstance(pid, dict) else []
        name = "-".join(re.sub(r"[^A-Za-z0-9_]+", "", p) for p in parts if p) or "panel"
        return {"content": text, "filename": f"aoai-lens-{name}.csv", "type": "text/csv"}
