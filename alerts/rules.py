"""Alert rules as pure functions: a small frame in, one finding per subject out.

A subject is what the rule judges separately: a deployment, a probe target, a team or feature's
budget, a resource. Fetching the frames lives in alerts/data.py; turning findings into state
transitions lives in alerts/evaluate.py. Every threshold's meaning is in `THRESHOLDS`.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from queries.config import AlertRule, Budget, ProbeSettings
from queries.cost.forecast import daily, month_end_forecast

THRESHOLDS = {
    "rate_429": "percent of requests answered 429 in the window, per deployment (fires above)",
    "rate_5xx": "percent of requests answered 5xx in the window, per deployment (fires above)",
    "latency_p95": "95th percentile DurationMs of successful requests in the window, in ms, per deployment (fires above)",
    "quota_headroom": "percent of the deployment's TPM or RPM limit left at the busiest minute of the window, whichever is less (fires below)",
    "quota_forecast": "days until a deployment's or quota pool's daily peak, on its trend over the last 14 complete days, reaches the limit (fires at or below)",
    "probe_failures": "number of consecutive failed probes per target (fires at or above)",
    "probe_ttft": "95th percentile time to first token of successful streamed probes in the window, in ms (fires above)",
    "budget_pace": "month-end forecast (month to date + the last 7 complete days' mean × days left) as percent of the budget (fires above)",
    "burn_rate": "spend rate as a multiple of the budget's even pace, over the window and over a twelfth of it (fires when both are above)",
    "spend_anomaly": "spend in the latest window as a multiple of the mean of up to 7 windows before it that the data fully covers, at least 3 (fires above)",
    "caller_spend": "dollars one caller (a managed identity, app or API-key IP, allocated or not) spent in the hours starting in the window (fires above)",
    "no_data": "minutes since a resource's last diagnostic record (fires above)",
    "model_retirement": "days until a deployment's model version retires, from the models list (fires at or below; default 90)",
    "billing_drift": "percent by which the bill differs from the ledger's estimate on one settled day, per account and meter (fires above, when the difference is above min_usd dollars too)",
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
    """frame: Deployment, PeakTpm, TpmLimit, and optionally PeakRpm, RpmLimit (deployments with no traffic
    have peaks of 0). The headroom is what is left of the tighter of the two limits."""
    out = []
    for _, row in frame.iterrows():
        dep = str(row["Deployment"])
        limit = float(row["TpmLimit"] or 0)
        if (rule.deployment and dep != rule.deployment) or limit <= 0:
            continue
        peak = float(row["PeakTpm"] or 0)
        headroom = 100.0 * (1 - peak / limit)
        what = f"{_fmt(peak)} of {_fmt(limit)} TPM"
        rpm_limit = float(row.get("RpmLimit", 0) or 0) if "RpmLimit" in row.index else 0.0
        if rpm_limit > 0:
            rpm = float(row.get("PeakRpm", 0) or 0)
            rpm_headroom = 100.0 * (1 - rpm / rpm_limit)
            if rpm_headroom < headroom:
                headroom, what = rpm_headroom, f"{_fmt(rpm)} of {_fmt(rpm_limit)} RPM"
        out.append(
            Finding(
                dep,
                headroom < rule.threshold,
                round(headroom, 2),
                f"{dep}: busiest minute used {what} ({_fmt(100 - headroom)}%), "
                f"{_fmt(headroom)}% headroom; threshold {_fmt(rule.threshold)}%",
            )
        )
    return out


def quota_forecast(rule: AlertRule, frame: pd.DataFrame) -> list[Finding]:
    """frame: `queries.quota.forecast` (Kind, Name, Limit, LimitValue, Latest, SlopePerDay, HistoryDays,
    DaysToLimit, Verdict). One finding per deployment or pool: its soonest limit. Narrowed by the rule's
    deployment (that deployment and the pools it draws on)."""
    out: list[Finding] = []
    if frame.empty:
        return out
    rows = frame
    if rule.deployment:
        dep = rule.deployment
        mine = (rows["Kind"] == "deployment") & (rows["Name"] == dep)
        pools = (rows["Kind"] == "pool") & rows.get("Deployments", pd.Series("", index=rows.index)).astype(
            str
        ).str.split(", ").map(lambda ms: dep in ms)
        rows = rows[mine | pools]
    for (kind, name), g in rows.groupby(["Kind", "Name"], sort=True):
        days = pd.to_numeric(g["DaysToLimit"], errors="coerce")
        first = g.loc[days.idxmin()] if days.notna().any() else g.iloc[0]
        d = float(first["DaysToLimit"]) if pd.notna(first["DaysToLimit"]) else None
        latest, limit, slope = float(first["Latest"]), float(first["LimitValue"]), float(first["SlopePerDay"])
        trend = (
            f"daily peak {_fmt(latest)} of {_fmt(limit)} {first['Limit']}, {slope:+,.1f}/day over "
            f"{int(first['HistoryDays'])} day(s)"
            if pd.notna(first["Latest"])
            else f"{int(first['HistoryDays'])} day(s) of history"
        )
        out.append(
            Finding(
                str(name),
                d is not None and d <= rule.threshold,
                None if d is None else round(d, 1),
                f"{kind} {name}: {trend}: {first['Verdict']}; threshold {_fmt(rule.threshold)} days",
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


def model_retirement(rule: AlertRule, deployments: pd.DataFrame) -> list[Finding]:
    """deployments: the inventory's Account, Deployment, Model, Version, RetirementDate, DaysToRetirement.
    Subject "account/deployment" (deployment names repeat across accounts); a deployment whose model the
    models list does not date is not judged."""
    out = []
    for _, row in deployments.sort_values(["Account", "Deployment"]).iterrows():
        dep, days = str(row["Deployment"]), row["DaysToRetirement"]
        if (rule.deployment and dep != rule.deployment) or pd.isna(days):
            continue
        when = pd.Timestamp(row["RetirementDate"]).strftime("%Y-%m-%d")
        state = f"retired on {when}" if float(days) <= 0 else f"retires on {when}, in {float(days):.0f} days"
        out.append(
            Finding(
                f"{row['Account']}/{dep}",
                float(days) <= rule.threshold,
                round(float(days), 1),
                f"{row['Account']}/{dep}: {row['Model']} {row['Version']} {state}; threshold {_fmt(rule.threshold)} days",
            )
        )
    return out


def billing_drift(rule: AlertRule, rec: pd.DataFrame, today: date, *, lag_days: int, min_usd: float) -> list[Finding]:
    """Per account × model × meter: whether the bill drifted from the estimate on a settled day.

    rec: Day (UTC midnight), Account, Model, Meter, Estimate, Billed (NaN: no line) and, optionally,
    Status (the reconciliation's; `unpriced` lines have no estimate to compare and are not judged). Days
    within `lag_days` of `today` are pending (the bill lags) and are not judged either. A day drifts when
    billed - estimate is more than `min_usd` dollars and more than `threshold` percent of the estimate (a
    line billed but never estimated, or estimated but never billed, is infinitely far off). The value is
    the worst day's percent (None for a line the estimate lacks)."""
    out: list[Finding] = []
    if rec.empty:
        return out
    r = rec.copy()
    r["Day"] = pd.to_datetime(r["Day"], utc=True)
    settled = r["Day"] < pd.Timestamp(today, tz="UTC") - pd.Timedelta(days=lag_days)
    if "Status" in r.columns:
        settled &= r["Status"] != "unpriced"
    r = r[settled]
    est = r["Estimate"].astype("float64")
    e = est.fillna(0.0)
    diff = r["Billed"].astype("float64").fillna(0.0) - e
    r["Diff"] = diff
    r["Pct"] = np.where(e > 0, 100.0 * diff / e.where(e > 0, 1.0), np.sign(diff) * np.inf)
    r["Pct"] = r["Pct"].fillna(0.0)  # nothing estimated, nothing billed
    r["Drifts"] = (diff.abs() > min_usd) & (r["Pct"].abs() > rule.threshold)
    r["Model"] = r["Model"].fillna("").astype(str)
    for (account, model, meter), g in r.groupby(["Account", "Model", "Meter"], sort=True):
        drifting = g[g["Drifts"]]
        firing = not drifting.empty
        pick = drifting if firing else g
        worst = pick.iloc[int(pick["Pct"].abs().to_numpy().argmax())]
        pct = float(worst["Pct"])
        finite = pct not in (float("inf"), float("-inf"))
        name = f"{account}/{model}/{meter}" if model else f"{account}/{meter}"
        estimate = (
            "no estimate (never seen in the logs)"
            if pd.isna(worst["Estimate"])
            else f"estimated ${worst['Estimate']:,.2f}"
        )
        billed = "not billed" if pd.isna(worst["Billed"]) else f"billed ${worst['Billed']:,.2f}"
        how = f"{pct:+.1f}%" if finite else "no estimate to compare" if pd.isna(worst["Estimate"]) else "all of it"
        drifted = int(g["Drifts"].sum())
        out.append(
            Finding(
                name,
                firing,
                round(pct, 2) if finite else None,
                f"{name}: {billed} vs {estimate} on {worst['Day']:%Y-%m-%d} ({how}, ${worst['Diff']:+,.2f}); "
                f"{drifted} of {len(g)} settled day(s) drifted; threshold {_fmt(rule.threshold)}% and ${min_usd:,.2f}",
            )
        )
    return out


THRESHOLDS["cache_hit_rate"] = (
    "percent of the prompt tokens of cacheable prompts (1,024 tokens or more) served from the prompt cache in "
    "the window, per deployment with at least min_prompt_tokens of them (fires below)"
)


def cache_hit_rate(rule: AlertRule, frame: pd.DataFrame) -> list[Finding]:
    """The prompt cache's hit rate per deployment. frame: Deployment, PromptTokens, CachedTokens (of the
    cacheable prompts in the window); a deployment with fewer than `rule.min_prompt_tokens` is not judged."""
    out = []
    for _, row in frame.iterrows():
        dep = str(row["Deployment"])
        if rule.deployment and dep != rule.deployment:
            continue
        prompt = float(row["PromptTokens"] or 0)
        if prompt <= 0 or prompt < rule.min_prompt_tokens:
            continue
        cached = min(float(row["CachedTokens"] or 0), prompt)
        pct = 100.0 * cached / prompt
        out.append(
            Finding(
                dep,
                pct < rule.threshold,
                round(pct, 2),
                f"{dep}: {_fmt(cached)} of {_fmt(prompt)} prompt tokens of cacheable prompts came from the prompt "
                f"cache ({_fmt(pct)}%) in the last {rule.window_minutes} min; threshold {_fmt(rule.threshold)}%",
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
