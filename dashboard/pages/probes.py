"""Probes: the synthetic calls the scheduler makes to every target, latest result first."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback

from dashboard import figures
from dashboard.data import Context, context, deployments_frame, store_result
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe

dash.register_page(__name__, path="/probes", name="Probes", order=4, title="Probes · aoai-lens")

PAGE = "probe"
PANELS = ("latest", "latency", "ttft", "classes", "failures")
NO_STORE = "No probe results yet: the scheduler (aoai-lens serve, or aoai-lens scheduler) writes them"


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Probes",
        "Synthetic chat and embedding calls per deployment: status, latency, time to first token, failures.",
        query,
        [
            row(
                (
                    panel(
                        PAGE, "latest", "Latest result per target", "Newest probe per deployment and kind", height=140
                    ),
                    12,
                )
            ),
            row(
                (panel(PAGE, "latency", "Probe latency", "Whole call, successful probes"), 6),
                (panel(PAGE, "ttft", "Time to first token", "Streamed chat probes"), 6),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "classes",
                        "Failures by class",
                        "rate_limited, timeout, http_5xx, auth, content_filter, error",
                    ),
                    6,
                ),
                (panel(PAGE, "failures", "Recent failures", "Newest first, with the error the probe recorded"), 6),
            ),
        ],
        show=("range", "resource", "deployment"),
    )


def _when(frame: pd.DataFrame) -> pd.DataFrame:
    f = frame.copy()
    if "ts" in f.columns:
        f.insert(0, "Time", pd.to_datetime(f["ts"], unit="s", utc=True))
    return f


def latest_per_target(probes: pd.DataFrame) -> pd.DataFrame:
    cols = ["Time", "deployment", "kind", "class", "status_code", "latency_ms", "ttft_ms", "request_id", "error"]
    if probes.empty:
        return pd.DataFrame(columns=cols)
    latest = (
        probes.sort_values(["ts", "id"] if "id" in probes.columns else ["ts"]).groupby(["deployment", "kind"]).tail(1)
    )
    return _when(latest)[cols].sort_values(["deployment", "kind"]).reset_index(drop=True)


def render(f: Filters, ctx: Context) -> list[Any]:
    store = ctx.store()
    if store is None:
        return [
            panel_body(PAGE, k, figures.empty_figure(NO_STORE))
            if k not in ("latest", "failures")
            else panel_body(PAGE, k, frame_table(pd.DataFrame(), empty=NO_STORE))
            for k in PANELS
        ]
    deps = deployments_frame(ctx)
    scope = f.scoped_deployments(deps)
    colours = figures.colour_map(deps["Deployment"].astype(str)) if not deps.empty else {}
    start, end = f.window(ctx.now())
    res = store_result("probes", lambda: store.probes(since=start.timestamp(), until=end.timestamp()))
    probes = res.frame
    if scope and not probes.empty:
        probes = probes[probes["deployment"].isin(scope)]

    def latest() -> list[Any]:
        frame = latest_per_target(probes)
        table = frame_table(
            frame,
            {"latency_ms": "{:,.0f}", "ttft_ms": "{:,.0f}", "status_code": "{:.0f}"},
            empty="No probe results in this range",
        )
        return panel_body(PAGE, "latest", table, [res], frame=frame)

    def latency() -> list[Any]:
        return panel_body(
            PAGE, "latency", figures.ttft_over_time(probes, colours, column="latency_ms"), [res], frame=probes
        )

    def ttft() -> list[Any]:
        chat = probes[probes["kind"] == "chat"] if not probes.empty else probes
        return panel_body(PAGE, "ttft", figures.ttft_over_time(chat, colours), [res], frame=chat)

    def classes() -> list[Any]:
        return panel_body(
            PAGE,
            "classes",
            figures.probe_failures(probes),
            [res],
            frame=probes[probes["class"] != "ok"] if not probes.empty else probes,
        )

    def failures() -> list[Any]:
        bad = probes[probes["class"] != "ok"] if not probes.empty else probes
        frame = _when(bad.sort_values("ts", ascending=False))
        keep = [
            c
            for c in ["Time", "deployment", "kind", "class", "status_code", "error", "request_id"]
            if c in frame.columns
        ]
        frame = frame[keep] if not frame.empty else pd.DataFrame(columns=keep)
        table = frame_table(frame, {"status_code": "{:.0f}"}, max_rows=12, empty="No probe failures in this range")
        return panel_body(PAGE, "failures", table, [res], frame=frame)

    builders = {"latest": latest, "latency": latency, "ttft": ttft, "classes": classes, "failures": failures}
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return render(Filters.from_store(data), context())
