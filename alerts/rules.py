"""Alert rules as pure functions: a small frame in, one finding per subject out.

A subject is what the rule judges separately: a deployment, a probe target, a team or feature's
budget, a resource. Fetching the frames lives in alerts/data.py; turning findings into state
transitions lives in alerts/evaluate.py. Every threshold's meaning is in `THRESHOLDS`.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from queries.config import AlertRule, Budget, ProbeSettings
from queries.cost.forecast import daily, month_end_forecast

THRESHOLDS = {
    "rate_429": "percent of requests answered 429 in the window, per deployment (fires above)",
    "rate_5xx": "percent of requests answered 5xx in the window, per deployment (fires above)",
    "latency_p95": "95th percentile DurationMs of successful requests in the window, in ms, per deployment (fires above)",
    "quota_headroom": "percent of the deployment's TPM limit left at the busiest minute of the window (fires below)",
    "probe_failures": "number of consecutive failed probes per target (fires at or above)",
    "probe_ttft": "95th percentile time to first token of successful streamed probes in the window, in ms (fires above)",
    "budget_pace": "month-end forecast (month to date + the last 7 complete days' mean × days left) as percent of the budget (fires above)",
    "burn_rate": "spend rate as a multiple of the budget's even pace, over the window and over a twelfth of it (fires when both are above)",
    "spend_anomaly": "spend in the latest window as a multiple of the mean of up to 7 windows before it that the data fully covers, at least 3 (fires above)",
    "caller_spend": "dollars one caller (a managed identity, app or API-key IP, allocated or not) spent in the hours starting in the window (fires above)",
    "no_data": "minutes since a resource's last diagnostic record (fires above)",
    "slo_burn": "probe SLO burn rate (bad share / error budget share) per deployment and indicator, over the window and over a twelfth of it (fires when both are above)",
}


@dataclass(frozen=True)
class Finding:
    subject: str
    firing: bool
    value: float | None
    reason: str


SUBJECT_KINDS = ("team", "feature", "caller")  # prefixed subjects; any other subject is infrastructure


def parse_subject(subject: str) -> tuple[str, str]:
    """A finding's subject as (kind, name): "team:growth" -> ("team", "growth"), "feature:copy" ->
    ("feature", "copy"), "caller:mi-rag" -> ("caller", "mi-rag"); a deployment, resource or probe target
    -> ("infra", subject)."""
    kind, sep, name = subject.partition(":")
    if sep and kind in SUBJECT_KINDS:
        return kind, name
    return "infra", subject


def _fmt(v: float) -> str:
    return f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"


def rate(rule: AlertRule, frame: pd.DataFrame, column: str, label: str) -> list[Finding]:
    """Share of requests in `column` (e.g. Throttled) per deployment; frame: Deployment, Requests, <column>."""
    out = []
    for _, row in frame.iterrows():
        dep = str(row["Deployment"])
        if rule.deployment and dep != rule.deployment:
            continue
        total = int(row["Requests"])
        if total < rule.min_count:
            continue
        bad = int(row[column])
        pct = 100.0 * bad / total if total else 0.0
        firing = pct > rule.threshold
        out.append(
            Finding(
                dep,
                firing,
                round(pct, 3),
                f"{dep}: {bad} of {total} requests were {label} ({_fmt(pct)}%) in the last "
                f"{rule.window_minutes} min; threshold {_fmt(rule.threshold)}%",
            )
        )
    return out


def latency_p95(rule: AlertRule, frame: pd.DataFrame) -> list[Finding]:
    """frame: Deployment, P95Ms, Requests (successful requests only)."""
    out = []
    for _, row in frame.iterrows():
        dep = str(row["Deployment"])
        if (rule.deployment and dep != rule.deployment) or int(row["Requests"]) < rule.min_count:
            continue
        p95 = float(row["P95Ms"])
        out.append(
            Finding(
                dep,
                p95 > rule.threshold,
                round(p95, 1),
                f"{dep}: p95 latency {_fmt(p95)} ms over {int(row['Requests'])} requests in the last "
                f"{rule.window_minutes} min; threshold {_fmt(rule.threshold)} ms",
            )
        )
    return out


def quota_headroom(rule: AlertRule, frame: pd.DataFrame) -> list[Finding]:
    """frame: Deployment, PeakTpm, TpmLimit (deployments with no traffic have PeakTpm 0)."""
    out = []
    for _, row in frame.iterrows():
        dep = str(row["Deployment"])
        limit = float(row["TpmLimit"] or 0)
        if (rule.deployment and dep != rule.deployment) or limit <= 0:
            continue
        peak = float(row["PeakTpm"] or 0)
        headroom = 100.0 * (1 - peak / limit)
        out.append(
            Finding(
                dep,
                headroom < rule.threshold,
                round(headroom, 2),
                f"{dep}: busiest minute used {_fmt(peak)} of {_fmt(limit)} TPM ({_fmt(100 - headroom)}%), "
                f"{_fmt(headroom)}% headroom; threshold {_fmt(rule.threshold)}%",
            )
        )
    return out


def probe_failures(rule: AlertRule, last: pd.DataFrame) -> list[Finding]:
    """last: the newest probe results per target (deployment, kind, class, ts), newest first."""
    out: list[Finding] = []
    if last.empty:
        return out
    n = max(1, int(rule.threshold))
    for (dep, kind), g in last.sort_values("ts", ascending=False).groupby(["deployment", "kind"], sort=True):
        if rule.deployment and dep != rule.deployment:
            continue
        streak = 0
        for klass in g["class"]:
            if klass == "ok":
                break
            streak += 1
        latest = str(g["class"].iloc[0])
        out.append(
            Finding(
                f"{dep}/{kind}",
                streak >= n,
                float(streak),
                f"{dep} {kind} probe: {streak} failed in a row (latest: {latest}); threshold {n}",
            )
        )
    return out


def probe_ttft(rule: AlertRule, probes: pd.DataFrame) -> list[Finding]:
    """probes: probe results in the window (deployment, kind, class, ttft_ms)."""
    out: list[Finding] = []
    if probes.empty:
        return out
    ok = probes[(probes["class"] == "ok") & probes["ttft_ms"].notna()]
    for dep, g in ok.groupby("deployment", sort=True):
        if (rule.deployment and dep != rule.deployment) or len(g) < rule.min_count:
            continue
        p95 = float(g["ttft_ms"].quantile(0.95))
        out.append(
            Finding(
                str(dep),
                p95 > rule.threshold,
                round(p95, 1),
                f"{dep}: probe time to first token p95 {_fmt(p95)} ms over {len(g)} probes; "
                f"threshold {_fmt(rule.threshold)} ms",
            )
        )
    return out


def _budgets(rule: AlertRule, budgets: list[Budget]) -> list[Budget]:
    out = []
    for b in budgets:
        if rule.team and not (b.scope == "team" and b.name == rule.team):
            continue
        if rule.feature and not (b.scope == "feature" and b.name == rule.feature):
            continue
        out.append(b)
    return out


def _spend(cost: pd.DataFrame, b: Budget, start: datetime, end: datetime) -> float:
    """cost: TimeGenerated (period start, UTC), Team, Feature, CostUsd."""
    col = "Team" if b.scope == "team" else "Feature"
    t = pd.to_datetime(cost["TimeGenerated"], utc=True)
    mask = (cost[col] == b.name) & (t >= pd.Timestamp(start)) & (t < pd.Timestamp(end))
    return float(cost.loc[mask, "CostUsd"].sum())


def _month(now: datetime) -> tuple[datetime, timedelta]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, timedelta(days=days)


def budget_pace(
    rule: AlertRule, cost: pd.DataFrame, budgets: list[Budget], now: datetime, min_history_days: int = 0
) -> list[Finding]:
    """The month-end forecast (`queries.cost.forecast`, the one the pages show) as percent of each budget.
    `cost` should reach back to `forecast.history_start(now)` for the run rate. A forecast whose run rate
    rests on fewer than `min_history_days` complete days does not fire (a young workspace's first hours
    are no month); spend already over the budget fires whatever the history."""
    out = []
    data_start = pd.to_datetime(cost["TimeGenerated"], utc=True).min() if not cost.empty else None
    for b in _budgets(rule, budgets):
        col = "Team" if b.scope == "team" else "Feature"
        mine = cost[cost[col] == b.name]
        fc = month_end_forecast(
            daily(mine["CostUsd"], mine["TimeGenerated"]),
            now,
            data_start=None if data_start is None or pd.isna(data_start) else data_start.floor("D").to_pydatetime(),
        )
        pct = 100.0 * fc.forecast / b.monthly_usd
        young = fc.run_rate_days < min_history_days and fc.month_to_date <= b.monthly_usd
        hours = _history_hours(mine, data_start, now)
        note = (
            f"; not judged: the forecast needs {min_history_days} complete day(s) of history and has "
            f"{fc.run_rate_days} ({hours:,.0f} h of data)"
            if young
            else ""
        )
        out.append(
            Finding(
                f"{b.scope}:{b.name}",
                pct > rule.threshold and not young,
                round(pct, 2),
                f"{b.scope} {b.name}: ${fc.month_to_date:,.2f} month to date, forecast ${fc.forecast:,.2f} = "
                f"{_fmt(pct)}% of the ${b.monthly_usd:,.0f} budget (run rate ${fc.run_rate:,.2f}/day over "
                f"{fc.run_rate_days} complete day(s)); threshold {_fmt(rule.threshold)}%{note}",
            )
        )
    return out


def burn_rate(rule: AlertRule, cost: pd.DataFrame, budgets: list[Budget], now: datetime) -> list[Finding]:
    """Multi-window burn rate: the long window (the rule's) and a short one (a twelfth) must both burn fast,
    so a brief spike alone does not fire and an alert resolves soon after the spending stops."""
    out = []
    _, month = _month(now)
    long_w = timedelta(minutes=rule.window_minutes)
    short_w = long_w / 12
    for b in _budgets(rule, budgets):
        even = b.monthly_usd / month.total_seconds()  # dollars per second at an even pace
        long_rate = _spend(cost, b, now - long_w, now) / long_w.total_seconds() / even
        short_rate = _spend(cost, b, now - short_w, now) / short_w.total_seconds() / even
        firing = long_rate > rule.threshold and short_rate > rule.threshold
        out.append(
            Finding(
                f"{b.scope}:{b.name}",
                firing,
                round(min(long_rate, short_rate), 3),
                f"{b.scope} {b.name}: burning {long_rate:.1f}x the budget's pace over "
                f"{rule.window_minutes} min and {short_rate:.1f}x over the last {short_w.total_seconds() / 60:.0f} "
                f"min; threshold {_fmt(rule.threshold)}x",
            )
        )
    return out


def spend_anomaly(rule: AlertRule, cost: pd.DataFrame, now: datetime, baseline_windows: int = 7) -> list[Finding]:
    """Per team (or the rule's team / feature): latest window's spend against the mean of the ones before."""
    out = []
    window = timedelta(minutes=rule.window_minutes)
    if rule.feature:
        groups: list[tuple[str, str]] = [("Feature", rule.feature)]
    elif rule.team:
        groups = [("Team", rule.team)]
    else:
        groups = [("Team", str(t)) for t in sorted(cost["Team"].dropna().unique())] if not cost.empty else []
    t = pd.to_datetime(cost["TimeGenerated"], utc=True) if not cost.empty else pd.Series(dtype="datetime64[ns, UTC]")
    for col, name in groups:
        rows = cost[col] == name

        def spend(s: datetime, e: datetime, rows: pd.Series = rows) -> float:
            mask = rows & (t >= pd.Timestamp(s)) & (t < pd.Timestamp(e))
            return float(cost.loc[mask, "CostUsd"].sum())

        latest = spend(now - window, now)
        first = t[rows].min() if rows.any() else None
        # only windows the data fully covers: a young workspace must not look like a spike
        starts = [now - window * (i + 1) for i in range(1, baseline_windows + 1)]
        base = [spend(st, st + window) for st in starts if first is not None and pd.Timestamp(st) >= first]
        if len(base) < min(3, baseline_windows):
            continue  # not enough history to compare with
        mean = sum(base) / len(base)
        if mean <= 0:
            continue
        ratio = latest / mean
        subject = f"{col.lower()}:{name}"
        out.append(
            Finding(
                subject,
                ratio > rule.threshold,
                round(ratio, 3),
                f"{col.lower()} {name}: ${latest:,.2f} in the last {rule.window_minutes} min vs a "
                f"${mean:,.2f} average over the {len(base)} windows before ({ratio:.1f}x); "
                f"threshold {_fmt(rule.threshold)}x",
            )
        )
    return out


def caller_spend(rule: AlertRule, cost: pd.DataFrame, now: datetime) -> list[Finding]:
    """Rolling-window spend per caller. cost: TimeGenerated (hour start), Caller, Team, Feature, CostUsd;
    the hours starting in the last `window_minutes` count. Narrowed by the rule's team or feature."""
    out: list[Finding] = []
    if cost.empty:
        return out
    t = pd.to_datetime(cost["TimeGenerated"], utc=True)
    mine = cost[(t >= pd.Timestamp(now - timedelta(minutes=rule.window_minutes))) & (t < pd.Timestamp(now))]
    if rule.team:
        mine = mine[mine["Team"] == rule.team]
    if rule.feature:
        mine = mine[mine["Feature"] == rule.feature]
    hours = rule.window_minutes / 60
    for (caller, feature), g in mine.groupby(["Caller", "Feature"], sort=True, dropna=False):
        spent = float(g["CostUsd"].sum())
        what = f"caller {caller}" + (f" ({feature})" if feature else "")
        out.append(
            Finding(
                f"caller:{caller}",
                spent > rule.threshold,
                round(spent, 4),
                f"{what}: ${spent:,.2f} in the last {hours:g} h; threshold ${rule.threshold:,.2f}",
            )
        )
    return out


def no_data(rule: AlertRule, last_seen: Mapping[str, datetime | None], now: datetime) -> list[Finding]:
    """last_seen: resource name -> time of its newest record (None: none in the lookback)."""
    out = []
    for res, seen in sorted(last_seen.items()):
        if seen is None:
            out.append(
                Finding(
                    res,
                    True,
                    None,
                    f"{res}: no diagnostic records in the lookback window; threshold {_fmt(rule.threshold)} min",
                )
            )
            continue
        minutes = (now - seen).total_seconds() / 60
        out.append(
            Finding(
                res,
                minutes > rule.threshold,
                round(minutes, 1),
                f"{res}: last diagnostic record {_fmt(minutes)} min ago; threshold {_fmt(rule.threshold)} min",
            )
        )
    return out


def _history_hours(mine: pd.DataFrame, data_start: pd.Timestamp | None, now: datetime) -> float:
    """Hours between the first data the forecast could read and now."""
    first = data_start
    if first is None or pd.isna(first):
        t = pd.to_datetime(mine["TimeGenerated"], utc=True)
        first = t.min() if len(t) else None
    if first is None or pd.isna(first):
        return 0.0
    return max(0.0, (pd.Timestamp(now) - pd.Timestamp(first)).total_seconds() / 3600)


def slo_burn(rule: AlertRule, probes: pd.DataFrame, settings: ProbeSettings, now: datetime) -> list[Finding]:
    """Per probed deployment with an SLO and each of its indicators (`alerts.slo`): the burn rate over
    the rule's window and over a twelfth of it; fires when both exceed the threshold (e.g. 14.4 over
    60 min and 5 min). probes: regular probe results of the rule's window."""
    from alerts import slo as slo_mod

    out: list[Finding] = []
    if probes.empty:
        return out
    short_minutes = rule.window_minutes / 12
    ts = pd.to_numeric(probes["ts"], errors="coerce")
    long_p = probes[(ts > (now - timedelta(minutes=rule.window_minutes)).timestamp()) & (ts <= now.timestamp())]
    short_p = long_p[pd.to_numeric(long_p["ts"]) > (now - timedelta(minutes=short_minutes)).timestamp()]
    for dep, g in long_p.groupby("deployment", sort=True):
        slo = settings.slo_for(str(dep))
        if slo is None or (rule.deployment and dep != rule.deployment):
            continue
        s = short_p[short_p["deployment"] == dep]
        for indicator, objective, threshold in slo_mod.indicators(slo):
            long_rate, n = slo_mod.burn(g, indicator, threshold, objective)
            short_rate, _ = slo_mod.burn(s, indicator, threshold, objective)
            if n < rule.min_count or long_rate != long_rate:
                continue
            short_txt = "no probes" if short_rate != short_rate else f"{short_rate:.1f}x"
            firing = long_rate > rule.threshold and short_rate > rule.threshold
            what = "success" if indicator == "success" else f"{indicator} under {threshold:,.0f} ms"
            out.append(
                Finding(
                    f"{dep}/{indicator}",
                    bool(firing),
                    round(min(long_rate, short_rate) if short_rate == short_rate else long_rate, 3),
                    f"{dep} {what} (objective {objective:g}%): burning the error budget {long_rate:.1f}x over "
                    f"{rule.window_minutes} min ({n} probes) and {short_txt} over the last {short_minutes:g} min; "
                    f"threshold {_fmt(rule.threshold)}x",
                )
            )
    return out
