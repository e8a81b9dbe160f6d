"""The Overview's KPI cards, computed from small frames (pure functions, unit-tested)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Kpi:
    key: str
    label: str
    value: str
    sub: str = ""
    x: list[Any] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    unit: str = ""
    tone: str = "secondary"  # bootstrap colour of the value: success / warning / danger / secondary
    problem: str | None = None
    step: bool = False  # a count that changes in steps (firing alerts), not a rate


def _rate(frame: pd.DataFrame, classes: tuple[str, ...]) -> tuple[float | None, pd.Series]:
    if frame.empty:
        return None, pd.Series(dtype=float)
    per_bin = frame.pivot_table(index="TimeGenerated", columns="StatusClass", values="Requests", aggfunc="sum").fillna(
        0
    )
    total = per_bin.sum(axis=1)
    bad = per_bin[[c for c in classes if c in per_bin.columns]].sum(axis=1)
    rate = (100 * bad / total.where(total > 0)).fillna(0)
    overall = 100 * float(bad.sum()) / float(total.sum()) if total.sum() else None
    return overall, rate


def _tone(v: float | None, warn: float, bad: float) -> str:
    if v is None:
        return "secondary"
    return "danger" if v >= bad else "warning" if v >= warn else "success"


def compute_kpis(
    status: pd.DataFrame,
    tokens: pd.DataFrame,
    latency: pd.DataFrame,
    spend_daily: pd.DataFrame | None,
    forecast: float | None,
    probes_last: pd.DataFrame | None,
    alert_states: pd.DataFrame | None,
    transitions: pd.DataFrame | None,
) -> list[Kpi]:
    """The eight KPI cards from small frames (pure; unit-tested)."""
    out: list[Kpi] = []
    if spend_daily is not None and not spend_daily.empty:
        out.append(
            Kpi(
                "spend",
                "Spend this month",
                f"${spend_daily['Cost'].sum():,.0f}",
                f"forecast ${forecast:,.0f} (7-day run rate)" if forecast is not None else "",
                list(spend_daily["Day"]),
                list(spend_daily["Cost"].cumsum()),
                "$",
            )
        )
    else:
        out.append(
            Kpi("spend", "Spend this month", "—", "cost model unavailable" if spend_daily is None else "no usage")
        )
    if not status.empty:
        per_bin = status.groupby("TimeGenerated")["Requests"].sum().sort_index()
        out.append(
            Kpi(
                "requests",
                "Requests",
                f"{int(per_bin.sum()):,}",
                f"peak {int(per_bin.max()):,} per bin",
                list(per_bin.index),
                list(per_bin.astype(float)),
            )
        )
    else:
        out.append(Kpi("requests", "Requests", "—", "no requests"))
    if not tokens.empty:
        t = tokens.assign(T=tokens["PromptTokens"].fillna(0) + tokens["CompletionTokens"].fillna(0))
        per_bin = t.groupby("TimeGenerated")["T"].sum().sort_index().astype(float)
        total = per_bin.sum()
        value = f"{total / 1e6:,.1f}M" if total >= 1e6 else f"{total:,.0f}"
        out.append(Kpi("tokens", "Tokens", value, "prompt + completion", list(per_bin.index), list(per_bin)))
    else:
        out.append(Kpi("tokens", "Tokens", "—", "no usage records"))
    err, err_series = _rate(status, ("4xx", "5xx"))
    out.append(
        Kpi(
            "errors",
            "Error rate",
            f"{err:.2f}%" if err is not None else "—",
            "4xx + 5xx (not 429)",
            list(err_series.index),
            list(err_series),
            "%",
            _tone(err, 1, 5),
        )
    )
    thr, thr_series = _rate(status, ("429",))
    out.append(
        Kpi(
            "throttled",
            "429 rate",
            f"{thr:.2f}%" if thr is not None else "—",
            "throttled requests",
            list(thr_series.index),
            list(thr_series),
            "%",
            _tone(thr, 1, 5),
        )
    )
    if not latency.empty:
        lat = latency.dropna(subset=["P95"])
        w = lat.assign(W=lat["P95"] * lat["Requests"].astype(float))
        g = w.groupby("TimeGenerated")[["W", "Requests"]].sum()
        series = (g["W"] / g["Requests"].astype(float)).sort_index()
        overall = float(w["W"].sum() / float(w["Requests"].sum())) if float(w["Requests"].sum()) else None
        out.append(
            Kpi(
                "latency",
                "p95 latency",
                f"{overall:,.0f} ms" if overall is not None else "—",
                "request-weighted",
                list(series.index),
                list(series),
                " ms",
            )
        )
    else:
        out.append(Kpi("latency", "p95 latency", "—", "no successful calls"))
    if probes_last is not None and not probes_last.empty:
        latest = probes_last.sort_values("ts").groupby(["deployment", "kind"]).tail(1)
        failing = int((latest["class"] != "ok").sum())
        p = probes_last.assign(t=pd.to_datetime(probes_last["ts"], unit="s", utc=True).dt.floor("h"))
        ok_rate = p.groupby("t")["class"].apply(lambda s: 100.0 * float((s == "ok").mean())).sort_index()
        out.append(
            Kpi(
                "probes",
                "Probes",
                f"{len(latest) - failing}/{len(latest)} ok",
                f"{failing} failing" if failing else "all targets healthy",
                list(ok_rate.index),
                list(ok_rate),
                "%",
                "danger" if failing else "success",
            )
        )
    else:
        out.append(Kpi("probes", "Probes", "—", "no probe results yet"))
    if alert_states is not None:
        firing = int((alert_states["state"] == "firing").sum()) if not alert_states.empty else 0
        x: list[Any] = []
        y: list[float] = []
        if transitions is not None and not transitions.empty:
            x, y = firing_over_time(transitions)
        out.append(
            Kpi(
                "alerts",
                "Firing alerts",
                str(firing),
                "firing now",
                x,
                y,
                "",
                "danger" if firing else "success",
                step=True,
            )
        )
    else:
        out.append(Kpi("alerts", "Firing alerts", "—", "no alert state yet"))
    return out


def firing_over_time(transitions: pd.DataFrame) -> tuple[list[Any], list[float]]:
    """How many (rule, subject) pairs were firing after each transition: a step series."""
    t = transitions.sort_values("ts")
    firing: set[tuple[str, str]] = set()
    x: list[Any] = []
    y: list[float] = []
    for rec in t.itertuples(index=False):
        key = (str(getattr(rec, "rule", "")), str(getattr(rec, "subject", "")))
        if rec.new == "firing":
            firing.add(key)
        else:
            firing.discard(key)
        x.append(pd.Timestamp(rec.ts, unit="s", tz="UTC"))
        y.append(float(len(firing)))
    return x, y
