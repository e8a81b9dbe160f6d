"""Figures for capacity: provisioned utilisation (Azure's metric beside the token estimate), spillover,
and quota time to limit. Pure frame -> Figure, like `dashboard.figures` (whose look they share)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import Colours, _colours_for, _is_empty, _layout, empty_figure

LIMIT_RED = "#C62828"


def ptu_utilisation(frame: pd.DataFrame, colours: Colours | None = None) -> go.Figure:
    """Per provisioned deployment and hour: utilisation V2's maximum (solid) and average (dotted) from the
    metrics API, and the estimate from the usage logs (dashed), with the 100% line where Azure throttles
    or spills over. frame: `queries.provisioned.utilisation_frame`."""
    if _is_empty(frame, "TimeGenerated", "Deployment"):
        return empty_figure("No provisioned (PTU) deployment in this range")
    f = frame.sort_values("TimeGenerated")
    cmap = _colours_for(f["Deployment"].astype(str).unique(), colours)
    fig = go.Figure()
    styles = (
        ("MetricMaxPct", "utilisation V2 max", "solid"),
        ("MetricAvgPct", "utilisation V2 avg", "dot"),
        ("EstimatedPct", "token estimate", "dash"),
    )
    for dep, g in f.groupby("Deployment", sort=True):
        for col, label, dash in styles:
            if col not in g.columns or g[col].isna().all():
                continue
            fig.add_trace(
                go.Scatter(
                    x=g["TimeGenerated"],
                    y=g[col],
                    mode="lines",
                    name=f"{dep} · {label}",
                    line={"color": cmap[str(dep)], "dash": dash, "width": 2 if col == "MetricMaxPct" else 1.5},
                    hovertemplate=f"{label}: %{{y:.0f}}%<extra>{dep}</extra>",
                )
            )
    fig.add_hline(y=100, line_dash="dash", line_color=LIMIT_RED, annotation_text="100%: 429 or spillover")
    fig = _layout(fig, y="Utilisation, % of PTU capacity")
    return fig


def spillover(frame: pd.DataFrame, *, show_cost: bool = True) -> go.Figure:
    """Spilled requests per hour (bars, per provisioned deployment) and their standard-rate cost (line,
    right axis). frame: `queries.cost.spillover.spillover_cost` joined with SpillFailed."""
    if _is_empty(frame, "Hour", "Deployment", "Spilled") or float(frame["Spilled"].sum()) <= 0:
        return empty_figure("No request spilled over in this range")
    f = frame.sort_values("Hour")
    fig = go.Figure()
    for dep, g in f.groupby("Deployment", sort=True):
        target = str(g["Target"].iloc[0]) if "Target" in g.columns else ""
        fig.add_trace(
            go.Bar(
                x=g["Hour"],
                y=g["Spilled"],
                name=f"{dep} → {target}: spilled",
                marker_color="#E69F00",
                hovertemplate="%{y:,.0f} spilled requests<extra></extra>",
            )
        )
        if "SpillFailed" in g.columns and float(g["SpillFailed"].sum()) > 0:
            fig.add_trace(
                go.Bar(
                    x=g["Hour"],
                    y=g["SpillFailed"],
                    name=f"{dep} → {target}: failed there too",
                    marker_color=LIMIT_RED,
                    hovertemplate="%{y:,.0f} failed on the spillover deployment<extra></extra>",
                )
            )
        if show_cost and "SpilloverCost" in g.columns and g["SpilloverCost"].notna().any():
            fig.add_trace(
                go.Scatter(
                    x=g["Hour"],
                    y=g["SpilloverCost"],
                    name="standard-rate cost",
                    mode="lines+markers",
                    yaxis="y2",
                    line={"color": "#1E88E5"},
                    hovertemplate="%{y:$,.2f} at standard rates<extra></extra>",
                )
            )
    fig.update_layout(barmode="stack")
    fig = _layout(fig, y="Spilled requests per hour")
    if show_cost:
        fig.update_layout(
            yaxis2={
                "title": {"text": "USD"},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "tickprefix": "$",
            }
        )
        fig.update_layout(margin={"r": 60})
    return fig


def time_to_limit(series: pd.DataFrame, forecast: pd.DataFrame, *, horizon_days: int = 90) -> go.Figure:
    """Daily peaks as a percent of their limit (markers) with the fitted trend carried on to where it
    meets 100%, for the series `forecast` says cross within the horizon (else the three nearest their
    limit). series: Day, Name, Limit, Value (`queries.quota.daily_series`); forecast: `queries.quota.forecast`."""
    if _is_empty(series, "Day", "Name", "Limit", "Value") or _is_empty(forecast, "Name", "Limit", "LimitValue"):
        return empty_figure("No daily peaks in the last complete days")
    crossing = forecast[forecast["DaysToLimit"].notna()]
    shown = (
        crossing
        if not crossing.empty
        else forecast.assign(Pct=forecast["Latest"] / forecast["LimitValue"])
        .sort_values("Pct", ascending=False)
        .head(3)
    )
    shown = shown.head(4)
    cmap = _colours_for([f"{n} {lim}" for n, lim in zip(shown["Name"], shown["Limit"], strict=True)], None)
    fig = go.Figure()
    for row in shown.itertuples(index=False):
        key = f"{row.Name} {row.Limit}"
        s = series[(series["Name"] == row.Name) & (series["Limit"] == row.Limit)].sort_values("Day")
        if s.empty or not row.LimitValue:
            continue
        pct = 100.0 * s["Value"].astype(float) / float(row.LimitValue)
        fig.add_trace(
            go.Scatter(
                x=s["Day"],
                y=pct,
                mode="markers",
                name=f"{key} daily peak",
                marker={"color": cmap[key]},
                hovertemplate="%{y:.0f}% of the limit<extra>" + key + "</extra>",
            )
        )
        if pd.notna(row.SlopePerDay) and pd.notna(row.Latest):
            last = pd.Timestamp(s["Day"].max())
            ahead = float(row.DaysToLimit) if pd.notna(row.DaysToLimit) else 0.0
            first = pd.Timestamp(s["Day"].min())
            span = (last - first) / pd.Timedelta(days=1)
            xs = [first, last + pd.Timedelta(days=min(max(ahead, 0.0), horizon_days))]
            ys = [
                float(row.Latest) - float(row.SlopePerDay) * span,
                float(row.Latest) + float(row.SlopePerDay) * min(max(ahead, 0.0), horizon_days),
            ]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[100.0 * y / float(row.LimitValue) for y in ys],
                    mode="lines",
                    name=f"{key} trend",
                    line={"color": cmap[key], "dash": "dash"},
                    hovertemplate="trend %{y:.0f}%<extra>" + key + "</extra>",
                )
            )
    fig.add_hline(y=100, line_dash="dash", line_color=LIMIT_RED, annotation_text="limit")
    return _layout(fig, y="Daily peak, % of the limit")


__all__ = ["ptu_utilisation", "spillover", "time_to_limit"]
