"""Data health: is the telemetry the rest of the dashboard relies on arriving, complete and priced?"""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.costs import allocation, ledger_facts
from dashboard.data import Context, deployments_frame, fetch, named_callers, page_answer
from dashboard.filters import Filters
from dashboard.layout import filters_id, page_shell, row
from dashboard.panels import body_id, frame_table, panel, panel_body, safe
from queries.agreement import TOLERANCE, logs_vs_metrics, metric_tokens, tokens_per_deployment

dash.register_page(__name__, path="/data-health", name="Data health", order=6, title="Data health · aoai-lens")

PAGE = "dh"
PANELS = ("categories", "lag", "activity", "ledger", "metric_tokens", "agreement", "unpriced", "unallocated")


def layout(**query: Any) -> Any:
    return page_shell(
        PAGE,
        "Data health",
        "For whoever runs aoai-lens: which resources send which log categories, how late, and what the cost "
        "model cannot price or allocate.",
        query,
        [
            row(
                (
                    panel(
                        PAGE,
                        "categories",
                        "Diagnostic categories per resource",
                        "Records, last record and ingestion lag (TimeGenerated → _TimeReceived)",
                        height=140,
                    ),
                    12,
                )
            ),
            row(
                (panel(PAGE, "lag", "Ingestion lag", "p50 and p95 per resource and category"), 6),
                (panel(PAGE, "activity", "Requests per resource", "A flat line at zero is a quiet resource"), 6),
            ),
            row(
                (
                    panel(
                        PAGE,
                        "ledger",
                        "Cost ledger",
                        "Hours closed and open, the last build, late records, usage the ledger could not read",
                        height=140,
                    ),
                    12,
                )
            ),
            row(
                (
                    panel(
                        PAGE,
                        "metric_tokens",
                        "Tokens from the metrics API",
                        "Prompt and generated tokens per deployment (ProcessedPromptTokens, GeneratedTokens)",
                    ),
                    6,
                ),
                (
                    panel(
                        PAGE,
                        "agreement",
                        "Logs against metrics",
                        "Tokens per deployment and closed hour: usage logs against TokenTransaction; "
                        "disagreements first",
                    ),
                    6,
                ),
            ),
            row(
                (panel(PAGE, "unpriced", "Unpriced usage", "Models no price covers: shown as unpriced, never $0"), 6),
                (panel(PAGE, "unallocated", "Unallocated callers", "Callers no attribution rule claims"), 6),
            ),
        ],
        show=("range", "resource"),
    )


def categories_frame(health: pd.DataFrame, deployments: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """data_health rows (one per workspace, resource and category) with the age of the last record, plus
    a 'no records' row for every resource the management plane knows that sent nothing."""
    cols = ["Resource", "Category", "WorkspaceId", "Records", "LastRecord", "AgeMin", "LagP50Sec", "LagP95Sec"]
    f = health.copy()
    if not f.empty:
        f["AgeMin"] = (now - pd.to_datetime(f["LastRecord"], utc=True)).dt.total_seconds() / 60.0
    else:
        f = pd.DataFrame(columns=cols)
    if deployments is not None and not deployments.empty and "Resource" in deployments.columns:
        seen = {str(r).lower() for r in f["Resource"]} if not f.empty else set()
        silent = sorted(
            {str(r) for r in deployments["Resource"]} - {r for r in deployments["Resource"] if str(r).lower() in seen}
        )
        if silent:
            extra = pd.DataFrame({"Resource": silent, "Category": "(no records)", "Records": 0})
            f = pd.concat([f, extra], ignore_index=True)
    return f[[c for c in cols if c in f.columns]].sort_values(["Resource", "Category"]).reset_index(drop=True)


def render(f: Filters, ctx: Context) -> list[Any]:
    deps = deployments_frame(ctx)
    t = f.time_kwargs()
    resources = [f.resource] if f.resource and not deps.empty and f.resource in set(deps["Resource"]) else []
    r = fetch(
        ctx.lens,
        {
            "health": ("data_health", dict(t)),
            "activity": ("activity_by_resource", {**t, "params": {"resources": resources}}),
            "bad": ("bad_records", dict(t)),
        },
    )
    now = ctx.now()
    start, end = f.window(now)
    alloc = allocation(ctx, start, end)

    def scoped(frame: pd.DataFrame) -> pd.DataFrame:
        if f.resource and "Resource" in frame.columns and not frame.empty:
            return frame[frame["Resource"].astype(str).str.lower() == f.resource.lower()]
        return frame

    def categories() -> list[Any]:
        scoped_deps = deps[deps["Resource"] == f.resource] if f.resource and not deps.empty else deps
        frame = categories_frame(scoped(r["health"].frame), scoped_deps, pd.Timestamp(now))
        table = frame_table(
            frame.rename(
                columns={"AgeMin": "Last record age (min)", "LagP50Sec": "Lag p50 (s)", "LagP95Sec": "Lag p95 (s)"}
            ),
            {"Records": "{:,}", "Last record age (min)": "{:,.0f}", "Lag p50 (s)": "{:,.0f}", "Lag p95 (s)": "{:,.0f}"},
            empty="No diagnostic records in this range",
        )
        bad = scoped(r["bad"].frame)
        n_bad = int(bad["BadRecords"].sum()) if r["bad"].status != "failed" and not bad.empty else 0
        if n_bad:  # rows every query reads as empty fields: say how many, rather than drop them silently
            note = html.Div(
                f"{n_bad:,} record(s) in this range have properties_s that is not JSON or names no deployment",
                className="text-warning small mb-1 bad-records",
            )
            table = html.Div([note, table])
        return panel_body(PAGE, "categories", table, [r["health"], r["bad"]], frame=frame)

    def lag() -> list[Any]:
        frame = scoped(r["health"].frame)
        return panel_body(PAGE, "lag", figures.ingestion_lag(frame), [r["health"]], frame=frame)

    def activity() -> list[Any]:
        return panel_body(PAGE, "activity", figures.activity_by_resource(r["activity"].frame), [r["activity"]])

    def in_scope(frame: pd.DataFrame, col: str) -> pd.DataFrame:
        mine = set(deps.loc[deps["Resource"] == f.resource, "Deployment"]) if f.resource and not deps.empty else None
        return frame[frame[col].isin(mine)] if mine is not None and col in frame.columns else frame

    def metric_tokens_panel() -> list[Any]:
        m = metric_tokens(ctx.lens, start, end)
        frame = in_scope(tokens_per_deployment(m.frame) if m.status != "failed" else pd.DataFrame(), "Deployment")
        return panel_body(PAGE, "metric_tokens", figures.metric_tokens(frame), [m], frame=frame)

    def agreement() -> list[Any]:
        frame, results = logs_vs_metrics(ctx.lens, start, end)
        frame = in_scope(frame, "Deployment")
        bad = frame[~frame["Agrees"].astype(bool)] if not frame.empty else frame
        shown = bad.drop(columns=["Agrees"]) if not bad.empty else bad
        table = frame_table(
            shown,
            {"LogTokens": "{:,.0f}", "MetricTokens": "{:,.0f}", "Difference": "{:+,.0f}", "DifferencePct": "{:.1f}%"},
            empty=f"Logs and metrics agree within {TOLERANCE:.0%} in every closed hour of this range",
        )
        note = f"{len(bad):,} of {len(frame):,} deployment-hours disagree" if len(frame) else None
        return panel_body(PAGE, "agreement", table, results, frame=frame, note=note)

    def unpriced() -> list[Any]:
        rows = scoped(alloc.rows)
        frame = pd.DataFrame(
            columns=["Model", "Version", "Sku", "Region", "Requests", "PromptTokens", "CompletionTokens"]
        )
        if alloc.ok and not rows.empty:
            u = rows[~rows["Priced"].astype(bool)]
            if not u.empty:
                frame = (
                    u.groupby(["Model", "Version", "Sku", "Region"], as_index=False, dropna=False)[
                        ["Requests", "PromptTokens", "CompletionTokens"]
                    ]
                    .sum()
                    .sort_values("PromptTokens", ascending=False)
                )
        table = frame_table(
            frame,
            {"Requests": "{:,.0f}", "PromptTokens": "{:,.0f}", "CompletionTokens": "{:,.0f}"},
            empty="Every model in this range has a price",
        )
        return panel_body(PAGE, "unpriced", table, [alloc.envelope], frame=frame)

    def unallocated() -> list[Any]:
        rows = scoped(alloc.rows)
        frame = pd.DataFrame(columns=["Deployment", "ObjectId", "CallerIP", "Requests", "Cost"])
        if alloc.ok and not rows.empty:
            u = rows[rows["Category"] == "unallocated"]
            if not u.empty:
                frame = (
                    u.groupby(["Deployment", "ObjectId", "CallerIP"], as_index=False)[["Requests", "Cost"]]
                    .sum()
                    .sort_values("Cost", ascending=False)
                )
        frame, names_note = named_callers(ctx, frame)  # names shown, full ids kept in the CSV
        shown = frame.drop(columns=["ObjectId"]) if "Caller" in frame.columns else frame
        table = frame_table(
            shown, {"Requests": "{:,.0f}", "Cost": "${:,.2f}"}, empty="Every caller in this range is claimed by a rule"
        )
        return panel_body(PAGE, "unallocated", table, [alloc.envelope], frame=frame, note=names_note)

    def ledger() -> list[Any]:
        frame, hint = ledger_facts(ctx, alloc)
        table = frame_table(frame, {}, empty="")
        return panel_body(PAGE, "ledger", table, [alloc.envelope], frame=frame, note=hint)

    builders = {
        "ledger": ledger,
        "categories": categories,
        "lag": lag,
        "activity": activity,
        "metric_tokens": metric_tokens_panel,
        "agreement": agreement,
        "unpriced": unpriced,
        "unallocated": unallocated,
    }
    return [safe(PAGE, k, builders[k]) for k in PANELS]


@callback([Output(body_id(PAGE, k), "children") for k in PANELS], Input(filters_id(PAGE), "data"))
def fill(data: dict[str, Any] | None) -> list[Any]:
    return page_answer(PAGE, data, lambda ctx: render(Filters.from_store(data), ctx))
