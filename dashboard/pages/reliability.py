"""Reliability (SREs): is anything throttling, failing or slow right now, and how close to quota are we?"""

from __future__ import annotations

from collections import Counter
from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback

from dashboard import capacity, figures
from dashboard.data import Context, deployments_frame, fetch, guarded, named_callers, page_answer, store_result
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries.throttling import burst_queries, explain_results

dash.register_page(__name__, path="/reliability", name="Reliability", order=3, title="Reliability · aoai-lens")

PAGE = "rel"
PANELS: tuple[str, ...] = (
    "status",
    "explain",
    "rates",
    "latency",
    "percentiles",
    "ttft",
    "headroom",
    "quota",
    "callers",
    "errors",
)
PANELS += ("ptu", "spill", "limits", "forecast")  # capacity: dashboard/capacity.py


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Reliability",
        "For SREs: status classes, 429 and 5xx rates, latency, probe time to first token, quota headroom.",
        query,
        [
            row(
                (panel(PAGE, "status", "Requests by status class", "All calls per time bin, stacked by HTTP class"), 12)
            ),
            row(
                (
                    panel(
                        PAGE,
                        "explain",
                        "Why each 429 burst happened",
                        "The limit each burst hit (TPM, RPM over 10 s or 1 s, PTU utilisation, quota pools) with its "
                        "evidence, who called in the minute before, and what to do",
                        height=140,
                    ),
                    12,
                )
            ),
            row(
                (panel(PAGE, "rates", "429 and 5xx rate by deployment", "Share of each deployment's requests"), 6),
                (
                    panel(PAGE, "headroom", "Quota headroom", "Peak tokens per minute against each deployment's limit"),
                    6,
                ),
            ),
            row(
                (panel(PAGE, "latency", "p95 latency by deployment", "Successful calls, DurationMs"), 6),
                (panel(PAGE, "percentiles", "Latency p50 / p95 / p99", "Per deployment and stream type"), 6),
            ),
            row(
                (panel(PAGE, "ttft", "Probe time to first token", "Synthetic streamed chat calls"), 6),
                (panel(PAGE, "quota", "Regional quota used", "Management plane usages, per region and model"), 6),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "errors",
                        "Client errors by kind",
                        "4xx besides 429, per deployment: content filter, other 400s, not found (a retired "
                        "deployment still called), access",
                    ),
                    12,
                )
            ),
            row(
                (
                    panel(
                        PAGE,
                        "callers",
                        "Top callers before each 429 burst",
                        "Who sent the most requests in the minutes before a minute with many 429s",
                        height=140,
                    ),
                    12,
                )
            ),
            row(
                (
                    panel(
                        PAGE,
                        "ptu",
                        "Provisioned utilisation: Azure's metric and the token estimate",
                        "Utilisation V2 per hour (max, average) from the metrics API, beside the usage logs' estimate",
                    ),
                    6,
                ),
                (
                    panel(
                        PAGE,
                        "spill",
                        "Spillover",
                        "Requests each PTU deployment handed to its spillover deployment, and their standard-rate cost",
                    ),
                    6,
                ),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "limits",
                        "Quota headroom: TPM, RPM and quota pools",
                        "Busiest minute against each deployment's TPM and RPM and each regional or subscription pool",
                    ),
                    6,
                ),
                (
                    panel(
                        PAGE,
                        "forecast",
                        "Time to limit",
                        "Daily peaks of the last 14 complete days, their trend, and the day each reaches its limit",
                    ),
                    6,
                ),
            ),
        ],
        show=("range", "resource", "deployment"),
    )


def render(f: Filters, ctx: Context) -> list[Any]:
    """Every panel's body, in PANELS order. Pure over the context: unit-tested with a fake Lens."""
    deps = deployments_frame(ctx)
    scope = f.scoped_deployments(deps)
    params = {"deployments": scope}
    t = f.time_kwargs()
    (bursts_q, bursts_kw), (bcallers_q, bcallers_kw) = burst_queries(deployments=scope, **t)  # type: ignore[arg-type]
    r = fetch(
        ctx.lens,
        {
            "bursts": (bursts_q, bursts_kw),
            "bcallers": (bcallers_q, bcallers_kw),
            "status": ("requests_by_status", {**t, "params": params}),
            "summary": ("summary_by_deployment", {**t, "params": params}),
            "latency": ("latency_by_deployment", {**t, "params": params}),
            "percentiles": ("latency_by_stream_type", {**t, "params": params}),
            "peaks": ("peak_load_by_deployment", {**t, "params": params}),
            "callers": ("top_callers_before_429", {**t, "params": params}),
            "errors": ("client_errors_by_kind", {**t, "params": params}),
        },
    )
    colours = figures.colour_map(deps["Deployment"].astype(str)) if not deps.empty else {}
    dep_result = guarded("deployments", ctx.lens.deployments)
    usages = guarded("usages", ctx.lens.usages)
    start, end = f.window(ctx.now())
    store = ctx.store()
    probes = (
        store_result("probes", lambda: store.probes(since=start.timestamp(), until=end.timestamp()))
        if store is not None
        else None
    )

    def in_scope(frame: pd.DataFrame, col: str) -> pd.DataFrame:
        return frame[frame[col].isin(scope)] if scope and col in frame.columns else frame

    def status() -> list[Any]:
        return panel_body(PAGE, "status", figures.status_over_time(r["status"].frame), [r["status"]])

    def explain() -> list[Any]:
        explanation = explain_results(ctx.lens, r["bursts"], r["bcallers"], ctx.settings)
        frame = explanation.frame()
        table = frame_table(frame, {"Throttled": "{:,}"}, max_rows=20, empty="No 429 burst in this range")
        causes = Counter(b.limit.partition(" (")[0] for b in explanation.bursts)
        note = ", ".join(f"{n} {c}" for c, n in sorted(causes.items()))
        return panel_body(PAGE, "explain", table, explanation.results, frame=frame, note=note or None)

    def rates() -> list[Any]:
        s = r["summary"].frame
        return panel_body(PAGE, "rates", figures.error_rates_by_deployment(s), [r["summary"]])

    def latency() -> list[Any]:
        return panel_body(PAGE, "latency", figures.latency_over_time(r["latency"].frame, colours), [r["latency"]])

    def percentiles() -> list[Any]:
        return panel_body(PAGE, "percentiles", figures.latency_percentiles(r["percentiles"].frame), [r["percentiles"]])

    def ttft() -> list[Any]:
        if probes is None:
            return panel_body(PAGE, "ttft", figures.empty_figure("No probe results yet: the scheduler writes them"))
        frame = in_scope(probes.frame, "deployment")
        if "kind" in frame.columns:
            frame = frame[frame["kind"] == "chat"]
        return panel_body(PAGE, "ttft", figures.ttft_over_time(frame, colours), [probes], frame=frame)

    def headroom() -> list[Any]:
        d = in_scope(dep_result.frame, "Deployment")
        fig = figures.quota_headroom(d, r["peaks"].frame)
        frame = figures.headroom_frame(d, r["peaks"].frame) if not d.empty and not r["peaks"].frame.empty else None
        return panel_body(PAGE, "headroom", fig, [r["peaks"], dep_result], frame=frame)

    def quota() -> list[Any]:
        return panel_body(PAGE, "quota", figures.regional_quota(usages.frame), [usages])

    def callers() -> list[Any]:
        frame, names_note = named_callers(ctx, r["callers"].frame)  # names shown, full ids kept in the CSV
        shown = frame.drop(columns=["ObjectId"]) if "Caller" in frame.columns else frame
        table = frame_table(
            shown,
            {"Requests": "{:,}", "Tokens": "{:,}"},
            empty="No 429 burst in this range",
        )
        return panel_body(PAGE, "callers", table, [r["callers"]], frame=frame, note=names_note)

    def errors() -> list[Any]:
        frame = r["errors"].frame
        return panel_body(PAGE, "errors", figures.client_errors_by_kind(frame), [r["errors"]])

    builders = {
        "status": status,
        "explain": explain,
        "rates": rates,
        "latency": latency,
        "percentiles": percentiles,
        "ttft": ttft,
        "headroom": headroom,
        "quota": quota,
        "callers": callers,
        "ptu": lambda: capacity.ptu_utilisation(PAGE, ctx, dep_result.frame, scope, start, end, colours),
        "spill": lambda: capacity.spillover(PAGE, ctx, dep_result.frame, scope, start, end),
        "limits": lambda: capacity.limits(PAGE, dep_result, r["peaks"], usages, scope),
        "forecast": lambda: capacity.time_to_limit(PAGE, ctx, scope),
        "errors": errors,
    }
    return [safe(PAGE, key, builders[key]) for key in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return page_answer(PAGE, data, lambda ctx: render(Filters.from_store(data), ctx))
