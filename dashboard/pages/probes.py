"""Probes: the synthetic calls the scheduler makes to every target, latest result first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
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
PANELS = ("latest", "latency", "ttft", "classes", "failures", "ab_chart", "ab_table", "slo_chart", "slo_table")
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
            *ab_and_slo_rows(),
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
            if k not in ("latest", "failures", "ab_table", "slo_table")
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
    builders.update(ab_and_slo_builders(store, ctx, start, end, scope))
    return [safe(PAGE, k, builders[k]) for k in PANELS]


def ab_and_slo_rows() -> list[Any]:
    return [
        row(
            (panel(PAGE, "ab_chart", "A/B probes", "One probe against two targets: p50 bars, whiskers to p95"), 6),
            (panel(PAGE, "ab_table", "A/B comparison", "Latency, first token, errors and cost per probe, per side"), 6),
        ),
        row(
            (panel(PAGE, "slo_chart", "Probe SLO error budgets", "Budget left over each SLO's window"), 5),
            (
                panel(
                    PAGE,
                    "slo_table",
                    "Probe SLOs",
                    "Objective, compliance, budget left and burn rates (1 h / 5 min fast, 6 h / 30 min slow)",
                ),
                7,
            ),
        ),
    ]


def ab_and_slo_builders(
    store: Any, ctx: Context, start: Any, end: Any, scope: list[str] | None
) -> dict[str, Callable[[], list[Any]]]:
    """The A/B comparison over the page's range and the SLOs over their own windows (ending now)."""
    from alerts import ab, slo

    ab_res = store_result("A/B probes", lambda: store.ab_probes(since=start.timestamp(), until=end.timestamp()))
    now = ctx.now()
    days = max((s.window_days for s in ctx.settings.probes.slos), default=30)
    slo_res = store_result("probes (SLO window)", lambda: store.probes(since=(now - timedelta(days=days)).timestamp()))

    def summary() -> pd.DataFrame:
        return ab.summary(ab_res.frame)

    def slo_status() -> pd.DataFrame:
        probes = slo_res.frame
        if scope and not probes.empty:
            probes = probes[probes["deployment"].isin(scope)]
        return slo.status(probes, ctx.settings.probes, now)

    def ab_chart() -> list[Any]:
        s = summary()
        return panel_body(PAGE, "ab_chart", figures.ab_comparison(s), [ab_res], frame=s)

    def ab_table() -> list[Any]:
        s = summary()
        fmt = {c: "{:,.0f}" for c in s.columns if c.endswith("_ms")}
        fmt.update({"error_pct": "{:.1f}", "cost_per_probe_usd": "{:.6f}"})
        table = frame_table(s.drop(columns=["ab"]) if s["ab"].nunique() <= 1 else s, fmt, empty="No A/B probe results")
        notes = list(ab.verdict(s).values())
        return panel_body(PAGE, "ab_table", table, [ab_res], frame=s, note=" · ".join(notes) or None)

    def slo_chart() -> list[Any]:
        st = slo_status()
        return panel_body(PAGE, "slo_chart", figures.slo_budgets(st), [slo_res], frame=st)

    def slo_table() -> list[Any]:
        st = slo_status()
        fmt = {c: "{:.1f}" for c in ("good_pct", "budget_remaining_pct", "burn_1h", "burn_5m", "burn_6h", "burn_30m")}
        fmt.update({"objective_pct": "{:g}", "threshold_ms": "{:,.0f}"})
        burning = int(st["status"].str.contains("burn|exhausted").sum()) if not st.empty else 0
        table = frame_table(st, fmt, max_rows=30, empty="No probe SLO defined ([[probes.slos]])")
        return panel_body(PAGE, "slo_table", table, [slo_res], frame=st, note=f"{burning} burning or exhausted")

    return {"ab_chart": ab_chart, "ab_table": ab_table, "slo_chart": slo_chart, "slo_table": slo_table}


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return render(Filters.from_store(data), context())
