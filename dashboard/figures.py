"""Pure frame → plotly Figure builders, one per chart the pages draw.

Every function takes tidy frames (the catalogue's columns, or the cost model's) and returns a Figure with
readable axis titles and units ($, tokens, ms, %). None of them reads data or knows about Dash, so each is
unit-tested with a frame of a few rows. An empty frame gives an empty chart that says "No data" rather
than an axis-only box.

Names from the logs are text, never markup: Plotly draws a subset of HTML in legends, hover labels,
tick labels, annotations and titles (an `<a href>` becomes a link), so every figure leaves through
`as_text`, which escapes `<`, `>` and `&` in every string Plotly would render. Plotly turns the entities
back into characters when it draws them, so a deployment named `<a href=...>` reads exactly so.

Colours are stable: `colour_map(names)` assigns a fixed palette in sorted-name order, and pages pass it
the full list of deployments (from the management plane) or teams (from the settings), so a deployment
has the same colour on every page whatever the filter.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

# Colour-blind-friendly qualitative palette (Okabe-Ito first, then Tableau's), enough for a mid-size estate.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#7F3C8D",
    "#332288",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
    "#4E79A7",
    "#F28E2B",
    "#59A14F",
    "#B07AA1",
    "#9C755F",
    "#76B7B2",
)
OTHER = "#9E9E9E"
STATUS_COLOURS = {"2xx": "#2E7D32", "429": "#F9A825", "4xx": "#EF6C00", "5xx": "#C62828", "other": OTHER}
STATE_COLOURS = {"firing": "#C62828", "ok": "#2E7D32", "resolved": "#2E7D32", "pending": "#F9A825"}
PROBE_CLASS_COLOURS = {
    "ok": "#2E7D32",
    "rate_limited": "#F9A825",
    "content_filter": "#8E24AA",
    "auth": "#6D4C41",
    "timeout": "#EF6C00",
    "http_5xx": "#C62828",
    "error": "#455A64",
}
# Cost lines that are not a team or feature keep one colour everywhere.
SPECIAL_COLOURS = {
    "": OTHER,
    "(none)": OTHER,
    "unallocated": OTHER,
    "other": OTHER,
    "ptu idle": "#D0D0D0",
    "probes": "#7E57C2",
}
PERCENTILE_DASH = {"P50": "dot", "P95": "solid", "P99": "dash"}

Colours = Mapping[str, str]

# trace properties whose strings Plotly renders as (a subset of) HTML: legend entries, hover labels,
# bar texts, category tick labels (x, y) and whatever a hover template pulls from customdata or meta
TRACE_TEXT = ("name", "text", "hovertext", "x", "y", "customdata", "labels", "meta")


def _escaped(value: Any) -> Any:
    """`value` with `<`, `>` and `&` escaped in every string it holds (lists and arrays element-wise)."""
    if isinstance(value, str):
        return html.escape(value, quote=False) if any(c in value for c in "<>&") else value
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "OUS":
            return value
        out = np.array([_escaped(v) for v in value.ravel().tolist()], dtype=object)
        return out.reshape(value.shape)
    if isinstance(value, list | tuple):
        return type(value)(_escaped(v) for v in value)
    return value


def as_text(fig: go.Figure) -> go.Figure:
    """Escape what Plotly would render as HTML: trace names, texts, category values and custom data,
    titles, axis titles, tick texts and annotations. Hover templates are this module's own markup
    (`<br>`, `<extra>`) and stay as they are; the values they substitute are escaped here."""
    for trace in fig.data:
        for prop in TRACE_TEXT:
            try:
                value = trace[prop]
            except (KeyError, ValueError, AttributeError):  # not a property of this trace type
                continue
            if value is not None:
                new = _escaped(value)
                if new is not value:
                    trace[prop] = new
    layout = fig.layout
    if layout.title.text:
        layout.title.text = _escaped(layout.title.text)
    if layout.legend.title.text:
        layout.legend.title.text = _escaped(layout.legend.title.text)
    for axis in [*fig.select_xaxes(), *fig.select_yaxes()]:
        if axis.title.text:
            axis.title.text = _escaped(axis.title.text)
        if axis.ticktext is not None:
            axis.ticktext = _escaped(axis.ticktext)
    for note in layout.annotations:
        if note.text:
            note.text = _escaped(note.text)
    return fig


def colour_map(names: Iterable[str]) -> dict[str, str]:
    """A fixed colour per name, by sorted order; "" and "unallocated" are grey."""
    out: dict[str, str] = {}
    i = 0
    for name in sorted({str(n) for n in names}):
        if name in SPECIAL_COLOURS:
            out[name] = SPECIAL_COLOURS[name]
            continue
        out[name] = PALETTE[i % len(PALETTE)]
        i += 1
    return out


def _colours_for(values: Iterable[str], colours: Colours | None) -> dict[str, str]:
    values = [str(v) for v in values]
    base = dict(colours or {})
    missing = [v for v in values if v not in base]
    if missing:
        extra = colour_map(missing)
        used = set(base.values())
        spare = [c for c in PALETTE if c not in used] or list(PALETTE)
        for j, name in enumerate(sorted(set(missing))):
            base[name] = extra[name] if name in SPECIAL_COLOURS else spare[j % len(spare)]
    return base


def _layout(
    fig: go.Figure, *, y: str, x: str | None = None, height: int = 320, legend: bool = True, time: bool = True
) -> go.Figure:
    """Shared look: white template, legend above the plot (it pushes the margin, never overlaps ticks),
    y axis from zero with its unit in the title. Time axes carry no title: their ticks are UTC dates."""
    fig.update_layout(
        template="plotly_white",
        height=height,
        margin={"l": 60, "r": 16, "t": 8, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 11}},
        showlegend=legend,
        hovermode="x unified" if time else "closest",
        font={"size": 12},
    )
    fig.update_yaxes(title_text=y, rangemode="tozero", automargin=True)
    fig.update_xaxes(title_text=x, automargin=True)
    return as_text(fig)


def empty_figure(message: str = "No data for this range", height: int = 320) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, font={"size": 14, "color": "#6c757d"}, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    fig.update_layout(template="plotly_white", height=height, margin={"l": 16, "r": 16, "t": 16, "b": 16})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return as_text(fig)


def _is_empty(frame: pd.DataFrame | None, *cols: str) -> bool:
    return frame is None or frame.empty or any(c not in frame.columns for c in cols)


# ---- reliability ------------------------------------------------------------------------------
def status_over_time(frame: pd.DataFrame) -> go.Figure:
    """Stacked areas of requests per status class (requests_by_status)."""
    if _is_empty(frame, "TimeGenerated", "StatusClass", "Requests"):
        return empty_figure()
    g = frame.groupby(["TimeGenerated", "StatusClass"], as_index=False)["Requests"].sum()
    wide = g.pivot(index="TimeGenerated", columns="StatusClass", values="Requests").fillna(0).sort_index()
    fig = go.Figure()
    for cls in [c for c in STATUS_COLOURS if c in wide.columns]:
        fig.add_trace(
            go.Scatter(
                x=wide.index,
                y=wide[cls].astype(float),
                name=cls,
                stackgroup="status",
                mode="lines",
                line={"width": 0.5, "color": STATUS_COLOURS[cls]},
                hovertemplate="%{y:,.0f} requests",
            )
        )
    return _layout(fig, y="Requests per bin")


def error_rates_by_deployment(summary: pd.DataFrame) -> go.Figure:
    """Grouped bars: 429 and 5xx as a share of each deployment's requests (summary_by_deployment)."""
    if _is_empty(summary, "Deployment", "Requests", "Throttled", "ServerErrors"):
        return empty_figure()
    s = summary[summary["Requests"].fillna(0) > 0].copy()
    if s.empty:
        return empty_figure()
    req = s["Requests"].astype(float)
    s["429 %"] = 100 * s["Throttled"].astype(float) / req
    s["5xx %"] = 100 * s["ServerErrors"].astype(float) / req
    s = s.sort_values("429 %", ascending=False)
    fig = go.Figure()
    for col, colour in (("429 %", STATUS_COLOURS["429"]), ("5xx %", STATUS_COLOURS["5xx"])):
        fig.add_trace(
            go.Bar(
                x=s["Deployment"],
                y=s[col],
                name=col.replace(" %", " rate"),
                marker_color=colour,
                customdata=s["Requests"],
                hovertemplate="%{x}: %{y:.2f}% of %{customdata:,} requests<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, y="Share of requests (%)", x="Deployment", time=False)


def latency_over_time(frame: pd.DataFrame, colours: Colours | None = None, percentile: str = "P95") -> go.Figure:
    """One line per deployment of a latency percentile (latency_by_deployment), in ms."""
    if _is_empty(frame, "TimeGenerated", "Deployment", percentile):
        return empty_figure()
    cmap = _colours_for(frame["Deployment"].unique(), colours)
    fig = go.Figure()
    for dep, g in frame.sort_values("TimeGenerated").groupby("Deployment", sort=True):
        fig.add_trace(
            go.Scatter(
                x=g["TimeGenerated"],
                y=g[percentile],
                name=str(dep),
                mode="lines",
                line={"color": cmap[str(dep)], "width": 1.6},
                hovertemplate="%{y:,.0f} ms",
            )
        )
    fig = _layout(fig, y=f"{percentile.lower()} latency (ms, log scale)")
    fig.update_yaxes(type="log", rangemode="normal", dtick=1)
    return fig


def latency_percentiles(frame: pd.DataFrame) -> go.Figure:
    """p50/p95/p99 per deployment and stream type (latency_by_stream_type), as grouped bars in ms."""
    if _is_empty(frame, "Deployment", "StreamType", "P50", "P95", "P99"):
        return empty_figure()
    f = frame.copy()
    short = {"Streaming": "stream", "Non-Streaming": "non-stream"}
    f["label"] = f["Deployment"].astype(str) + " · " + f["StreamType"].astype(str).map(lambda v: short.get(v, v))
    f = f.sort_values(["Deployment", "StreamType"])
    fig = go.Figure()
    for p, colour in (("P50", "#90CAF9"), ("P95", "#1E88E5"), ("P99", "#0D47A1")):
        fig.add_trace(
            go.Bar(x=f["label"], y=f[p], name=p.lower(), marker_color=colour, hovertemplate="%{x}: %{y:,.0f} ms")
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickangle=-30)
    return _layout(fig, y="Latency (ms)", x=None, time=False, height=340)


def metric_tokens(frame: pd.DataFrame) -> go.Figure:
    """Stacked bars of prompt and generated tokens per deployment from the metrics API
    (queries.agreement.tokens_per_deployment: Deployment, PromptTokens, GeneratedTokens, TotalTokens)."""
    if _is_empty(frame, "Deployment", "PromptTokens", "GeneratedTokens"):
        return empty_figure("No token metrics for this range")
    fig = go.Figure()
    for col, name, colour in (("PromptTokens", "prompt", "#1E88E5"), ("GeneratedTokens", "generated", "#FFA000")):
        fig.add_trace(
            go.Bar(
                x=frame["Deployment"],
                y=frame[col].astype(float),
                name=name,
                marker_color=colour,
                hovertemplate="%{x}: %{y:,.0f} " + name + " tokens<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, y="Tokens", x="Deployment", time=False)


def quota_headroom(deployments: pd.DataFrame, peaks: pd.DataFrame) -> go.Figure:
    """Peak tokens per minute as a share of each deployment's TPM limit (capacity), with the 100% line."""
    if _is_empty(deployments, "Deployment", "TpmLimit") or _is_empty(peaks, "Deployment", "PeakTPM"):
        return empty_figure()
    f = headroom_frame(deployments, peaks)
    if f.empty:
        return empty_figure()
    colours = ["#C62828" if u >= 100 else "#F9A825" if u >= 80 else "#2E7D32" for u in f["UsedPct"]]
    fig = go.Figure(
        go.Bar(
            x=f["Deployment"],
            y=f["UsedPct"],
            marker_color=colours,
            customdata=f[["PeakTPM", "TpmLimit"]].to_numpy(),
            hovertemplate="%{x}: peak %{customdata[0]:,} of %{customdata[1]:,} tokens/min (%{y:.0f}%)<extra></extra>",
            name="peak TPM",
        )
    )
    fig.add_hline(
        y=100, line_dash="dash", line_color="#C62828", annotation_text="limit", annotation_position="top right"
    )
    return _layout(fig, y="Peak TPM, % of limit", x="Deployment", time=False, legend=False)


def headroom_frame(deployments: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    d = deployments[["Deployment", "TpmLimit"]].drop_duplicates("Deployment")
    f = d.merge(peaks[["Deployment", "PeakTPM"]], on="Deployment", how="inner")
    f = f[f["TpmLimit"].fillna(0).astype(float) > 0].copy()
    f["PeakTPM"] = f["PeakTPM"].fillna(0).astype("int64")
    f["TpmLimit"] = f["TpmLimit"].astype("int64")
    f["UsedPct"] = 100.0 * f["PeakTPM"] / f["TpmLimit"]
    f["HeadroomTPM"] = f["TpmLimit"] - f["PeakTPM"]
    return f.sort_values("UsedPct", ascending=False).reset_index(drop=True)


def regional_quota(usages: pd.DataFrame) -> go.Figure:
    """Horizontal bars: regional quota used (Current of Limit, thousands of TPM) per region and quota name."""
    if _is_empty(usages, "Location", "Name", "Current", "Limit"):
        return empty_figure()
    u = usages[usages["Limit"].fillna(0).astype(float) > 0].copy()
    if u.empty:
        return empty_figure("No quota with a limit")
    u["UsedPct"] = 100.0 * u["Current"].astype(float) / u["Limit"].astype(float)
    u = u.sort_values("UsedPct").tail(15)
    u["label"] = u["Location"].astype(str) + " · " + u["Name"].astype(str)
    colours = ["#C62828" if p >= 90 else "#F9A825" if p >= 70 else "#1E88E5" for p in u["UsedPct"]]
    fig = go.Figure(
        go.Bar(
            y=u["label"],
            x=u["UsedPct"],
            orientation="h",
            marker_color=colours,
            customdata=u[["Current", "Limit"]].to_numpy(),
            hovertemplate="%{y}: %{customdata[0]:,}K of %{customdata[1]:,}K TPM (%{x:.0f}%)<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, max(100.0, float(u["UsedPct"].max()) * 1.05)])
    return _layout(fig, y="", x="Quota used (% of regional TPM limit)", time=False, legend=False)


def ttft_over_time(probes: pd.DataFrame, colours: Colours | None = None, column: str = "ttft_ms") -> go.Figure:
    """Probe time to first token (or total latency) per deployment over time, in ms; failures as crosses."""
    if _is_empty(probes, "ts", "deployment", column):
        return empty_figure("No probe results in this range")
    p = probes.copy()
    p["time"] = pd.to_datetime(p["ts"], unit="s", utc=True)
    cmap = _colours_for(p["deployment"].unique(), colours)
    fig = go.Figure()
    for dep, g in p.sort_values("time").groupby("deployment", sort=True):
        ok = g[g[column].notna()]
        if ok.empty:
            continue
        fig.add_trace(
            go.Scatter(
                x=ok["time"],
                y=ok[column],
                name=str(dep),
                mode="lines+markers",
                marker={"size": 4},
                line={"color": cmap[str(dep)], "width": 1.4},
                hovertemplate="%{y:,.0f} ms",
            )
        )
    if not fig.data:
        return empty_figure("No successful probe in this range")
    label = "Time to first token (ms)" if column == "ttft_ms" else "Probe latency (ms)"
    return _layout(fig, y=label)


def probe_failures(probes: pd.DataFrame) -> go.Figure:
    """Probe failures per deployment, stacked by failure class."""
    if _is_empty(probes, "deployment", "class"):
        return empty_figure("No probe results in this range")
    bad = probes[probes["class"] != "ok"]
    if bad.empty:
        return empty_figure("No probe failures in this range")
    g = bad.groupby(["deployment", "class"], as_index=False).size()
    fig = go.Figure()
    for cls, sub in g.groupby("class", sort=True):
        fig.add_trace(
            go.Bar(
                x=sub["deployment"], y=sub["size"], name=str(cls), marker_color=PROBE_CLASS_COLOURS.get(str(cls), OTHER)
            )
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, y="Failed probes", x="Deployment", time=False)


# ---- tokens and cost -------------------------------------------------------------------------
def tokens_over_time(frame: pd.DataFrame, colours: Colours | None = None) -> go.Figure:
    """Stacked tokens (prompt + completion) per deployment over time (tokens_by_deployment)."""
    if _is_empty(frame, "TimeGenerated", "Deployment", "PromptTokens", "CompletionTokens"):
        return empty_figure()
    f = frame.copy()
    f["Tokens"] = f["PromptTokens"].fillna(0).astype(float) + f["CompletionTokens"].fillna(0).astype(float)
    g = f.groupby(["TimeGenerated", "Deployment"], as_index=False)["Tokens"].sum()
    return stacked_over_time(g, "TimeGenerated", "Deployment", "Tokens", "Tokens per bin", colours, unit="tokens")


def stacked_over_time(
    frame: pd.DataFrame,
    time_col: str,
    group_col: str,
    value_col: str,
    y_title: str,
    colours: Colours | None = None,
    *,
    unit: str = "",
    bars: bool = False,
) -> go.Figure:
    """A stacked area (or bar) chart of `value_col` per `group_col` over `time_col`."""
    if _is_empty(frame, time_col, group_col, value_col):
        return empty_figure()
    f = frame.groupby([time_col, group_col], as_index=False)[value_col].sum()
    cmap = _colours_for(f[group_col].astype(str).unique(), colours)
    # biggest groups at the bottom of the stack
    order = f.groupby(group_col)[value_col].sum().sort_values(ascending=False).index
    money = unit == "$"
    hover = "%{y:$,.2f}" if money else "%{y:,.0f} " + unit
    fig = go.Figure()
    for name in order:
        g = f[f[group_col] == name].sort_values(time_col)
        if bars:
            fig.add_trace(
                go.Bar(x=g[time_col], y=g[value_col], name=str(name), marker_color=cmap[str(name)], hovertemplate=hover)
            )
        else:
            fig.add_trace(
                go.Scatter(
                    x=g[time_col],
                    y=g[value_col],
                    name=str(name),
                    stackgroup="one",
                    mode="lines",
                    line={"width": 0.5, "color": cmap[str(name)]},
                    hovertemplate=hover,
                )
            )
    if bars:
        fig.update_layout(barmode="stack")
    fig = _layout(fig, y=y_title)
    if money:
        fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return fig


def budget_vs_actual(frame: pd.DataFrame) -> go.Figure:
    """Per budget: spent month to date, forecast to month end, and the budget line.

    frame: Scope, Name, BudgetUSD, ActualUSD, ForecastUSD.
    """
    if _is_empty(frame, "Name", "BudgetUSD", "ActualUSD", "ForecastUSD"):
        return empty_figure("No budgets configured")
    f = frame.copy()
    f["label"] = (f["Scope"].astype(str) + ": " if "Scope" in f.columns else "") + f["Name"].astype(str)
    over = f["ForecastUSD"].astype(float) > f["BudgetUSD"].astype(float)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=f["label"],
            y=f["ActualUSD"],
            name="spent MTD",
            marker_color="#1E88E5",
            hovertemplate="%{x}: %{y:$,.2f} spent",
        )
    )
    fig.add_trace(
        go.Bar(
            x=f["label"],
            y=f["ForecastUSD"],
            name="forecast",
            marker_color=["#EF9A9A" if o else "#BBDEFB" for o in over],
            hovertemplate="%{x}: %{y:$,.2f} forecast",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["label"],
            y=f["BudgetUSD"],
            name="budget",
            mode="markers",
            marker={"symbol": "line-ew-open", "size": 36, "color": "#212121", "line": {"width": 3, "color": "#212121"}},
            hovertemplate="%{x}: %{y:$,.0f} budget",
        )
    )
    fig.update_layout(barmode="group")
    fig = _layout(fig, y="USD", x=None, time=False)
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return fig


def shares_bar(
    frame: pd.DataFrame,
    label_col: str,
    value_col: str,
    *,
    unit: str = "$",
    colours: Colours | None = None,
    height: int = 320,
    x_title: str = "",
    with_share: bool = False,
) -> go.Figure:
    """Horizontal bars sorted by value, labelled with the value (and its share of the total), for 'by team', 'by feature', 'unallocated vs allocated' charts."""
    if _is_empty(frame, label_col, value_col):
        return empty_figure()
    f = frame.groupby(label_col, as_index=False)[value_col].sum().sort_values(value_col)
    cmap = _colours_for(f[label_col].astype(str), colours)
    money = unit == "$"
    total = float(f[value_col].sum())
    labels = [
        (f"${v:,.2f}" if money else f"{v:,.2f}") + (f" ({100 * v / total:.1f}%)" if with_share and total else "")
        for v in f[value_col]
    ]
    fig = go.Figure(
        go.Bar(
            text=labels,
            textposition="auto",
            cliponaxis=False,
            y=f[label_col].astype(str),
            x=f[value_col],
            orientation="h",
            marker_color=[cmap[str(v)] for v in f[label_col]],
            hovertemplate="%{y}: " + ("%{x:$,.2f}" if money else "%{x:,.2f} " + unit) + "<extra></extra>",
        )
    )
    fig = _layout(fig, y="", x=x_title or ("USD" if money else unit), legend=False, height=height, time=False)
    if money:
        fig.update_xaxes(tickprefix="$", tickformat=",.0f")
    return fig


def ptu_vs_payg(frame: pd.DataFrame) -> go.Figure:
    """Per PTU deployment: the fixed PTU cost split into used and idle, next to the pay-as-you-go
    equivalent of the same tokens. frame: Deployment, PtuCostUSD, IdleCostUSD, PaygEquivalentUSD."""
    if _is_empty(frame, "Deployment", "PtuCostUSD", "IdleCostUSD", "PaygEquivalentUSD"):
        return empty_figure("No provisioned (PTU) deployments")
    f = frame.copy()
    used = f["PtuCostUSD"].astype(float) - f["IdleCostUSD"].astype(float)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=f["Deployment"],
            y=used,
            name="PTU used",
            marker_color="#1E88E5",
            offsetgroup="ptu",
            hovertemplate="%{x}: %{y:$,.2f} used",
        )
    )
    fig.add_trace(
        go.Bar(
            x=f["Deployment"],
            y=f["IdleCostUSD"],
            name="PTU idle",
            marker_color="#BDBDBD",
            offsetgroup="ptu",
            base=used,
            hovertemplate="%{x}: %{y:$,.2f} idle",
        )
    )
    fig.add_trace(
        go.Bar(
            x=f["Deployment"],
            y=f["PaygEquivalentUSD"],
            name="same tokens pay-as-you-go",
            text=[f"${v:,.0f}" for v in f["PaygEquivalentUSD"].astype(float)],
            textposition="outside",
            marker_color="#E69F00",
            offsetgroup="payg",
            hovertemplate="%{x}: %{y:$,.2f} PAYG",
        )
    )
    fig.update_layout(barmode="group")
    fig = _layout(fig, y="USD", x="Deployment", time=False)
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return fig


# ---- overview --------------------------------------------------------------------------------
def sparkline(x: pd.Series, y: pd.Series, colour: str = "#1E88E5", *, unit: str = "", step: bool = False) -> go.Figure:
    """A tiny trend line for a KPI card: no axes, hover shows the value."""
    fig = go.Figure()
    if len(x):
        fig.add_trace(
            go.Scatter(
                x=list(x),
                y=list(y),
                mode="lines",
                line={"color": colour, "width": 1.8, "shape": "hv" if step else "linear"},
                fill="tozeroy",
                fillcolor="rgba(30,136,229,0.10)",
                hovertemplate="%{x|%b %d %H:%M}: "
                + ("%{y:$,.2f}" if unit == "$" else "%{y:,.2f}" + unit)
                + "<extra></extra>",
            )
        )
    fig.update_layout(
        template="plotly_white",
        height=60,
        margin={"l": 0, "r": 0, "t": 4, "b": 0},
        showlegend=False,
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, rangemode="tozero")
    return as_text(fig)


# ---- data health and alerts ------------------------------------------------------------------
def activity_by_resource(frame: pd.DataFrame, colours: Colours | None = None) -> go.Figure:
    """Requests per resource over time (activity_by_resource): a flat line at zero is a quiet resource."""
    if _is_empty(frame, "TimeGenerated", "Resource", "Requests"):
        return empty_figure()
    cmap = _colours_for(frame["Resource"].astype(str).unique(), colours)
    fig = go.Figure()
    for res, g in frame.sort_values("TimeGenerated").groupby("Resource", sort=True):
        fig.add_trace(
            go.Scatter(
                x=g["TimeGenerated"],
                y=g["Requests"],
                name=str(res),
                mode="lines",
                line={"color": cmap[str(res)], "width": 1.6},
                hovertemplate="%{y:,.0f} requests",
            )
        )
    return _layout(fig, y="Requests per bin")


def ingestion_lag(frame: pd.DataFrame) -> go.Figure:
    """Ingestion lag p50/p95 per resource and category (data_health), in seconds."""
    if _is_empty(frame, "Resource", "Category", "LagP50Sec", "LagP95Sec"):
        return empty_figure()
    f = frame.copy()
    f["label"] = f["Resource"].astype(str) + " · " + f["Category"].astype(str)
    f = f.sort_values("label")
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=f["label"],
            x=f["LagP50Sec"],
            name="p50",
            orientation="h",
            marker_color="#90CAF9",
            hovertemplate="%{y}: %{x:,.0f} s",
        )
    )
    fig.add_trace(
        go.Bar(
            y=f["label"],
            x=f["LagP95Sec"],
            name="p95",
            orientation="h",
            marker_color="#1565C0",
            hovertemplate="%{y}: %{x:,.0f} s",
        )
    )
    fig.update_layout(barmode="group")
    return _layout(fig, y="", x="Ingestion lag (seconds)", time=False)


def transitions_timeline(frame: pd.DataFrame) -> go.Figure:
    """Alert transitions as points: one row per rule · subject, coloured by the new state."""
    if _is_empty(frame, "ts", "rule", "subject", "new"):
        return empty_figure("No alert transitions yet")
    f = frame.copy()
    f["time"] = pd.to_datetime(f["ts"], unit="s", utc=True)
    f["label"] = f["rule"].astype(str) + " · " + f["subject"].astype(str)
    fig = go.Figure()
    for state, g in f.groupby("new", sort=True):
        fig.add_trace(
            go.Scatter(
                x=g["time"],
                y=g["label"],
                mode="markers",
                name=f"→ {state}",
                marker={
                    "size": 10,
                    "color": STATE_COLOURS.get(str(state), OTHER),
                    "symbol": "triangle-up" if state == "firing" else "circle",
                },
                customdata=g[["reason"]].fillna("").to_numpy() if "reason" in g.columns else None,
                hovertemplate="%{y}<br>%{x|%b %d %H:%M}<br>%{customdata[0]}<extra></extra>",
            )
        )
    fig = _layout(fig, y="", height=max(260, 40 + 28 * f["label"].nunique()))
    fig.update_layout(hovermode="closest")
    return fig


# ---- inventory ----------------------------------------------------------------------------------
def days_to_retirement(deployments: pd.DataFrame, threshold: float) -> go.Figure:
    """Horizontal bars: days until each deployment's model version retires (the inventory's
    DaysToRetirement), red within `threshold` days, with the threshold as a dashed line."""
    if _is_empty(deployments, "Account", "Deployment", "DaysToRetirement"):
        return empty_figure("No deployment with a known retirement date")
    f = deployments.dropna(subset=["DaysToRetirement"]).sort_values("DaysToRetirement", ascending=False)
    if f.empty:
        return empty_figure("No deployment with a known retirement date")
    labels = f["Account"].astype(str) + " / " + f["Deployment"].astype(str)
    days = f["DaysToRetirement"].astype(float)
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=days,
            orientation="h",
            marker_color=["#C62828" if d <= threshold else "#1E88E5" for d in days],
            text=[f"{d:,.0f} d" for d in days],
            textposition="auto",
            customdata=f[["Model", "Version"]].astype(str).to_numpy(),
            hovertemplate="%{y}: %{customdata[0]} %{customdata[1]} retires in %{x:,.0f} days<extra></extra>",
        )
    )
    fig.add_vline(
        x=threshold,
        line_dash="dash",
        line_color="#C62828",
        annotation_text=f"{threshold:g} days",
        annotation_position="top",
    )
    fig = _layout(
        fig, y="", x="Days until the model version retires", legend=False, time=False, height=max(320, 28 * len(f))
    )
    fig.update_layout(margin={"t": 28})  # room for the threshold's label above the bars
    return fig


def estimate_vs_billed(frame: pd.DataFrame) -> go.Figure:
    """Per day: what Azure billed (bars; pale on pending days, the bill lags) and the ledger's estimate
    (a line). frame: Day, Estimate, Billed, Pending."""
    if _is_empty(frame, "Day", "Estimate", "Billed"):
        return empty_figure("No estimate and no bill for this range")
    f = frame.sort_values("Day")
    pending = f["Pending"].astype(bool) if "Pending" in f.columns else pd.Series(False, index=f.index)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=f["Day"],
            y=f["Billed"].fillna(0.0),
            name="billed",
            marker_color=["#BBDEFB" if p else "#1E88E5" for p in pending],
            customdata=np.where(pending, " (pending: the bill lags)", ""),
            hovertemplate="%{y:$,.2f} billed%{customdata}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=f["Day"],
            y=f["Estimate"].fillna(0.0),
            name="estimate",
            mode="lines+markers",
            line={"color": "#212121", "width": 2},
            hovertemplate="%{y:$,.2f} estimated<extra></extra>",
        )
    )
    fig = _layout(fig, y="USD per day")
    fig.update_yaxes(tickprefix="$", tickformat=",.0f")
    return fig


CLIENT_ERROR_COLOURS = {
    "content filter": "#6A1B9A",
    "other 400": "#EF6C00",
    "400, reason not logged": "#FFB74D",
    "not found (404)": "#5D4037",
    "access (401/403)": "#1565C0",
    "other 4xx": OTHER,
}


def client_errors_by_kind(frame: pd.DataFrame) -> go.Figure:
    """Stacked horizontal bars: each deployment's client errors (4xx besides 429) by kind
    (client_errors_by_kind), so content-filter refusals stand apart from bad requests and from calls to
    a deployment that no longer exists."""
    if _is_empty(frame, "Deployment", "Kind", "Requests"):
        return empty_figure("No client errors in this range")
    g = frame.groupby(["Deployment", "Kind"], as_index=False)["Requests"].sum()
    order = g.groupby("Deployment")["Requests"].sum().sort_values().index.tolist()
    fig = go.Figure()
    kinds = [k for k in CLIENT_ERROR_COLOURS if k in set(g["Kind"])] + sorted(
        set(g["Kind"]) - set(CLIENT_ERROR_COLOURS)
    )
    for kind in kinds:
        part = g[g["Kind"] == kind].set_index("Deployment").reindex(order)
        fig.add_trace(
            go.Bar(
                y=order,
                x=part["Requests"].fillna(0),
                name=str(kind),
                orientation="h",
                marker_color=CLIENT_ERROR_COLOURS.get(str(kind), OTHER),
                customdata=[str(kind)] * len(order),
                hovertemplate="%{y}: %{x:,} %{customdata}<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, y="", x="Requests", height=max(260, 60 + 28 * len(order)), time=False)


# ---- A/B probes and probe SLOs -----------------------------------------------------------------
AB_COLOURS = ("#1E88E5", "#FB8C00")


def ab_comparison(summary: pd.DataFrame) -> go.Figure:
    """A/B probes side by side: latency and time to first token (p50 bars, p95 as the error bar's top),
    one group per measure and A/B probe, one colour per side."""
    if _is_empty(summary, "ab", "arm", "latency_p50_ms"):
        return empty_figure("No A/B probe results in this range ([[probes.ab]] in the configuration)")
    fig = go.Figure()
    for i, (arm, g) in enumerate(summary.groupby("arm", sort=False)):
        x, y, top = [], [], []
        for _, r in g.iterrows():
            for label, p50, p95 in (
                ("latency", r["latency_p50_ms"], r["latency_p95_ms"]),
                ("first token", r["ttft_p50_ms"], r["ttft_p95_ms"]),
            ):
                if pd.notna(p50):
                    x.append(f"{r['ab']} · {label}")
                    y.append(p50)
                    top.append((p95 - p50) if pd.notna(p95) else 0)
        fig.add_trace(
            go.Bar(
                x=x,
                y=y,
                name=str(arm),
                marker_color=AB_COLOURS[i % 2],
                error_y={"type": "data", "symmetric": False, "array": top, "arrayminus": [0] * len(top)},
                hovertemplate="p50 %{y:,.0f} ms<extra>%{fullData.name}</extra>",
            )
        )
    fig.update_layout(barmode="group")
    return _layout(fig, y="ms (p50, bar to p95)", time=False)


def slo_budgets(status: pd.DataFrame) -> go.Figure:
    """Error budget left per deployment and indicator (negative: overspent), coloured by status."""
    if _is_empty(status, "deployment", "indicator", "budget_remaining_pct"):
        return empty_figure("No probe SLO defined ([[probes.slos]] in the configuration)")
    s = status[status["budget_remaining_pct"].notna()]
    if s.empty:
        return empty_figure("No probe results in the SLO windows yet")
    colour = {"ok": "#2E7D32", "slow burn": "#F9A825", "fast burn": "#C62828", "budget exhausted": "#6A1B9A"}
    fig = go.Figure(
        go.Bar(
            x=s["budget_remaining_pct"],
            y=s["deployment"] + " · " + s["indicator"],
            orientation="h",
            marker_color=[colour.get(str(v), OTHER) for v in s["status"]],
            text=s["status"],
            hovertemplate="%{x:,.1f}% of the error budget left<extra>%{text}</extra>",
        )
    )
    fig = _layout(fig, y="", x="Error budget left (%)", legend=False, time=False)
    fig.update_xaxes(range=[min(-10.0, float(s["budget_remaining_pct"].min()) - 5), 100])
    fig.update_yaxes(rangemode="normal")
    return fig
