"""Turn rule findings into state transitions (ok → firing → resolved) and notify on transitions only.

State lives in the SQLite store, so a restart neither forgets a firing alert nor notifies it again.
A rule whose data cannot be fetched keeps its state (missing data is not "resolved"); the no_data rule
is the one that speaks about silence.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from alerts import rules
from alerts.data import DataUnavailable, RuleData, lookback
from alerts.notify import Delivery, Notifier
from alerts.store import Store, Transition
from queries.config import AlertRule, Settings
from queries.cost.forecast import history_start

log = logging.getLogger("aoai_lens.alerts")
COST_KINDS = frozenset({"budget_pace", "burn_rate", "spend_anomaly", "caller_spend", "billing_drift"})
# judged at most every `cost_every_s` too: a retirement date moves in days, and reading the estate is many ARM calls
SLOW_KINDS = COST_KINDS | {"model_retirement"}


@dataclass
class EvaluationReport:
    transitions: list[Transition] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # rule -> why it was not judged
    findings: dict[str, list[rules.Finding]] = field(default_factory=dict)


class Evaluator:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        data: RuleData | None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        cost_every_s: float = 0.0,
        last_judged: dict[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.data = data
        self.notifier = notifier or Notifier(settings.alerts.channels)
        self.clock = clock
        # Cost rules allocate a month of spend: judge them at most every `cost_every_s` (spend moves
        # slowly); `last_judged` outlives one evaluation (the scheduler's runtime keeps it).
        self.cost_every_s = cost_every_s
        self.last_judged = last_judged if last_judged is not None else {}

    def findings(self, rule: AlertRule, now: datetime) -> list[rules.Finding]:
        window = timedelta(minutes=rule.window_minutes)
        start = now - window
        kind = rule.kind
        if kind == "probe_failures":
            return rules.probe_failures(rule, self.store.last_probes(max(1, int(rule.threshold))))
        if kind == "probe_ttft":
            return rules.probe_ttft(rule, self.store.probes(since=start.timestamp(), until=now.timestamp()))
        if kind == "slo_burn":
            window_probes = self.store.probes(since=start.timestamp(), until=now.timestamp())
            return rules.slo_burn(rule, window_probes, self.settings.probes, now)
        if self.data is None:
            raise DataUnavailable("no data source")
        if kind in ("rate_429", "rate_5xx"):
            frame = self.data.requests(start, now)
            if kind == "rate_429":
                return rules.rate(rule, frame, "Throttled", "throttled (429)")
            return rules.rate(rule, frame, "ServerErrors", "server errors (5xx)")
        if kind == "latency_p95":
            return rules.latency_p95(rule, self.data.latency(start, now))
        if kind == "quota_headroom":
            return rules.quota_headroom(rule, self.data.peak_tpm(start, now))
        if kind == "quota_forecast":
            return rules.quota_forecast(rule, self.data.quota_forecast(now))
        if kind == "no_data" and rule.deployment:  # one deployment gone quiet, on a resource still busy
            since = now - lookback(rule.window_minutes, rule.threshold)
            last = self.data.deployment_last_seen(rule.deployment, since, now)  # type: ignore[attr-defined]
            return rules.no_data(rule, {rule.deployment: last}, now)
        if kind == "no_data":
            seen = self.data.last_seen(now - lookback(rule.window_minutes, rule.threshold), now)
            return rules.no_data(rule, seen, now)
        if kind == "cache_hit_rate":
            return rules.cache_hit_rate(rule, self.data.prompt_cache(start, now))
        budgets = self.settings.budgets
        if kind == "budget_pace":
            min_days = self.settings.alerts.budget_min_history_days
            return rules.budget_pace(rule, self.data.cost(history_start(now), now), budgets, now, min_days)
        if kind == "burn_rate":
            return rules.burn_rate(rule, self.data.cost(start, now), budgets, now)
        if kind == "spend_anomaly":
            return rules.spend_anomaly(rule, self.data.cost(now - window * 8, now), now)
        if kind == "caller_spend":
            return rules.caller_spend(rule, self.data.caller_cost(start, now), now)
        if kind == "model_retirement":
            return rules.model_retirement(rule, self.data.retirements())
        if kind == "billing_drift":
            return self._billing_drift(rule, now)
        raise ValueError(f"unknown rule kind {kind!r}")

    def _billing_drift(self, rule: AlertRule, now: datetime) -> list[rules.Finding]:
        """The settled days (older than `billing.lag_days`) in the rule's window before the pending ones:
        window_minutes rounded up to whole days, at least the newest settled day."""
        assert self.data is not None
        b = self.settings.billing
        today = now.astimezone(UTC).date()
        settled_to = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=b.lag_days)
        days = max(1, math.ceil(rule.window_minutes / (24 * 60)))
        rec = self.data.billing(settled_to - timedelta(days=days), settled_to, today)
        min_usd = rule.min_usd if rule.min_usd is not None else b.drift_min_usd
        return rules.billing_drift(rule, rec, today, lag_days=b.lag_days, min_usd=min_usd)

    def evaluate(self) -> EvaluationReport:
        report = EvaluationReport()
        now = datetime.fromtimestamp(self.clock(), UTC)
        for rule in self.settings.alerts.rules:
            if rule.kind in SLOW_KINDS and self.cost_every_s > 0:
                last = self.last_judged.get(rule.name)
                if last is not None and self.clock() - last < self.cost_every_s:
                    what = "cost rules are" if rule.kind in COST_KINDS else f"{rule.kind} rules are"
                    report.skipped[rule.name] = f"{what} judged every {self.cost_every_s:.0f} s"
                    continue
                self.last_judged[rule.name] = self.clock()
            try:
                found = self.findings(rule, now)
            except DataUnavailable as e:
                report.skipped[rule.name] = str(e)
                log.info("rule %s not evaluated: %s", rule.name, e)
                continue
            except Exception as e:  # one broken rule must not stop the others
                report.skipped[rule.name] = f"{type(e).__name__}: {e}"
                log.exception("rule %s failed", rule.name)
                continue
            report.findings[rule.name] = found
            for t in self._transitions(rule, found, now):
                applied = self.store.apply(t)
                report.transitions.append(applied)
                log.info("alert %s [%s]: %s -> %s (%s)", rule.name, t.subject, t.old, t.new, t.reason)
                report.deliveries.extend(self.notify(rule, applied))
            # every judged subject keeps its latest value, so /alerts shows an OK state as OK, not "not evaluated"
            self.store.record_evaluation(rule.name, [(f.subject, f.value, f.reason) for f in found], now.timestamp())
        return report

    def _transitions(self, rule: AlertRule, found: list[rules.Finding], now: datetime) -> list[Transition]:
        states = {s: st for (r, s), st in self.store.states().items() if r == rule.name}
        ts = now.timestamp()
        out = []
        seen = set()
        for f in found:
            seen.add(f.subject)
            old = states.get(f.subject, "ok")
            if f.firing and old != "firing":
                out.append(Transition(rule.name, f.subject, old, "firing", ts, f.reason, f.value))
            elif not f.firing and old == "firing":
                out.append(Transition(rule.name, f.subject, "firing", "resolved", ts, f.reason, f.value))
        for subject, old in sorted(states.items()):
            if old == "firing" and subject not in seen:
                out.append(
                    Transition(
                        rule.name,
                        subject,
                        "firing",
                        "resolved",
                        ts,
                        f"{subject}: no longer observed in the last {rule.window_minutes} min",
                        None,
                    )
                )
        return out

    def notify(self, rule: AlertRule, t: Transition) -> list[Delivery]:
        title = f"[{t.new.upper()}] {rule.name} ({rule.kind}) {t.subject}"
        when = datetime.fromtimestamp(t.ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        value = "" if t.value is None else f"\nvalue: {t.value:g}"
        body = f"{t.reason}\n{t.old} -> {t.new} at {when}{value}"
        out = []
        for name in rule.channels:
            d = self.notifier.send(name, title, body, failure=t.new == "firing")
            self.store.add_delivery(t.id, name, self.clock(), d.ok, d.error)
            out.append(d)
        return out
