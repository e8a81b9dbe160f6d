"""Service level objectives on the probes, for deployments Azure publishes no latency figure for.

Azure reports time to response only for provisioned deployments; a Standard deployment's latency is
what the probes measure. Each `[[probes.slos]]` (one deployment, or `"*"` for every probed one) sets up
to three indicators over the probes of a deployment (A/B probes are not counted):

- ``success``: the share of probes that succeed (any failure class is bad, 429s included: a user sees them);
- ``latency``: the share of successful probes whose whole call took at most `latency_ms`;
- ``ttft``: the share of successful streamed probes whose first token came within `ttft_ms`.

The error budget is what the objective leaves (99% → 1% of probes may be bad over `window_days`);
``budget_remaining`` is the part not yet spent (negative: overspent). A burn rate is the bad share in a
window divided by the budget's share: 1x spends the budget exactly over the SLO window. Alerting follows
the multi-window pattern of Google's SRE workbook: a pair fires only when its long window and its short
window (a twelfth) both burn faster than its factor, so one bad probe alone does not page and the
alert resolves soon after the probes recover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from queries.config import ProbeSettings, ProbeSLO


@dataclass(frozen=True)
class BurnPair:
    name: str
    long_minutes: int
    short_minutes: int
    factor: float  # burn rate that fires (14.4x over 1 h spends 2% of a 30-day budget)


# The SRE workbook's page-worthy pairs for a 30-day budget: 2% of it in an hour, 5% in six hours.
PAIRS = (BurnPair("fast", 60, 5, 14.4), BurnPair("slow", 360, 30, 6.0))
INDICATORS = ("success", "latency", "ttft")
COLUMNS = [
    "deployment",
    "indicator",
    "objective_pct",
    "threshold_ms",
    "window_days",
    "probes",
    "good_pct",
    "budget_remaining_pct",
    "burn_1h",
    "burn_5m",
    "burn_6h",
    "burn_30m",
    "status",
]


def indicators(slo: ProbeSLO) -> list[tuple[str, float, float | None]]:
    """(indicator, objective percent, threshold ms) the SLO defines."""
    out: list[tuple[str, float, float | None]] = [("success", slo.success_pct, None)]
    if slo.latency_ms is not None:
        out.append(("latency", slo.latency_pct, slo.latency_ms))
    if slo.ttft_ms is not None:
        out.append(("ttft", slo.ttft_pct, slo.ttft_ms))
    return out


def good_and_total(probes: pd.DataFrame, indicator: str, threshold_ms: float | None) -> tuple[pd.Series, pd.Series]:
    """Per probe: whether it counts (total) and whether it was good, for one indicator."""
    ok = probes["class"] == "ok"
    if indicator == "success":
        return ok, pd.Series(True, index=probes.index)
    column = "latency_ms" if indicator == "latency" else "ttft_ms"
    value = pd.to_numeric(probes[column], errors="coerce")
    counted = ok & value.notna()
    return counted & (value <= float(threshold_ms or 0)), counted


def burn(probes: pd.DataFrame, indicator: str, threshold_ms: float | None, objective_pct: float) -> tuple[float, int]:
    """(burn rate, probes counted) over the frame given: the bad share over the budget's share (NaN: none counted)."""
    if probes.empty:
        return float("nan"), 0
    good, counted = good_and_total(probes, indicator, threshold_ms)
    n = int(counted.sum())
    if n == 0:
        return float("nan"), 0
    bad = n - int((good & counted).sum())
    return (bad / n) / (1 - objective_pct / 100.0), n


def _since(probes: pd.DataFrame, now: datetime, minutes: float) -> pd.DataFrame:
    ts = pd.to_numeric(probes["ts"], errors="coerce")
    return probes[(ts > (now - timedelta(minutes=minutes)).timestamp()) & (ts <= now.timestamp())]


def status(probes: pd.DataFrame, settings: ProbeSettings, now: datetime) -> pd.DataFrame:
    """One row per probed deployment with an SLO and indicator: compliance over the SLO window, error
    budget left, the burn rates of both pairs' windows, and a status (exhausted, fast burn, slow burn,
    ok, no data). `probes`: regular probe results reaching back at least the longest SLO window."""
    rows = []
    deployments = sorted(set(probes["deployment"].astype(str))) if not probes.empty else []
    deployments += sorted({s.deployment for s in settings.slos if s.deployment != "*"} - set(deployments))
    for dep in deployments:
        slo = settings.slo_for(dep)
        if slo is None:
            continue
        mine = probes[probes["deployment"] == dep] if not probes.empty else probes
        window = _since(mine, now, slo.window_days * 1440) if not mine.empty else mine
        streamed = not mine.empty and (mine["kind"] == "chat").any()
        for indicator, objective, threshold in indicators(slo):
            if indicator == "ttft" and not streamed and not mine.empty:
                continue  # an embedding deployment has no first token
            rate, n = burn(window, indicator, threshold, objective)
            burns = {}
            for pair in PAIRS:
                for minutes in (pair.long_minutes, pair.short_minutes):
                    sub = _since(mine, now, minutes) if not mine.empty else mine
                    burns[minutes] = burn(sub, indicator, threshold, objective)[0]
            spent = rate if n else float("nan")  # the budget's share spent = the window's burn rate
            remaining = 100.0 * (1 - spent) if n else float("nan")
            firing = [p.name for p in PAIRS if burns[p.long_minutes] > p.factor and burns[p.short_minutes] > p.factor]
            if not n:
                state = "no data"
            elif firing:
                state = f"{firing[0]} burn"
            elif remaining <= 0:
                state = "budget exhausted"
            else:
                state = "ok"
            rows.append(
                {
                    "deployment": dep,
                    "indicator": indicator,
                    "objective_pct": objective,
                    "threshold_ms": threshold if threshold is not None else np.nan,
                    "window_days": slo.window_days,
                    "probes": n,
                    "good_pct": 100.0 * (1 - rate * (1 - objective / 100.0)) if n else np.nan,
                    "budget_remaining_pct": remaining,
                    "burn_1h": burns[60],
                    "burn_5m": burns[5],
                    "burn_6h": burns[360],
                    "burn_30m": burns[30],
                    "status": state,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)
