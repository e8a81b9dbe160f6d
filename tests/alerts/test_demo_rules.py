"""Every rule of the demo configuration evaluated at once on the demo workspace: each (rule, subject)
keeps its own state, and a second evaluation of the same data changes nothing (no rule resolves or
re-fires another's alert on a shared deployment)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from fakes.doubles import FakeClock

from alerts.data import LensData
from alerts.evaluate import Evaluator
from alerts.notify import Notifier
from alerts.store import Store
from queries.config import Settings
from queries.demo.seed import Seeder
from queries.lens import Lens


def test_all_demo_rules_at_once_keep_their_own_states(
    demo_settings: Settings, demo_end: datetime, tmp_path: Path
) -> None:
    settings = demo_settings.model_copy(update={"data_dir": tmp_path})
    rules = settings.alerts.rules
    kinds = {r.kind for r in rules}
    assert {"rate_429", "rate_5xx", "quota_headroom", "caller_spend", "budget_pace"} <= kinds
    store = Store(settings.state_path)
    # five minutes after the planted RPM flood on chat-gpt4o-mini: it throttles, its 5xx rate and quota do not
    flood = demo_end - timedelta(hours=Seeder.RPM_BURST_HOURS_BEFORE_END)
    clock = FakeClock((flood + timedelta(minutes=5)).timestamp())
    data = LensData(Lens.from_settings(settings).with_fresh_cache())
    first = Evaluator(settings, store, data, Notifier([]), clock=clock).evaluate()
    judged = {r.name for r in rules} - set(first.skipped)
    assert judged >= {"throttling", "server-errors", "quota-headroom", "caller-spend", "budget-pace", "no-data"}, (
        first.skipped
    )

    # several rules judge the same deployments
    per_subject = Counter(f.subject for found in first.findings.values() for f in found)
    assert per_subject["chat-gpt4o-mini"] >= 3
    on_mini = {
        rule: f.firing for rule, found in first.findings.items() for f in found if f.subject == "chat-gpt4o-mini"
    }
    assert on_mini["throttling"] and not on_mini["server-errors"] and not on_mini["quota-headroom"]

    states = store.current_states()
    keys = list(zip(states["rule"], states["subject"], strict=True))
    assert len(keys) == len(set(keys))
    expected = {(rule, f.subject): f for rule, found in first.findings.items() for f in found}
    assert set(keys) == set(expected)  # every judged subject is stored, OK ones included
    for row in states.itertuples():
        f = expected[(row.rule, row.subject)]
        assert row.state == ("firing" if f.firing else "ok"), (row.rule, row.subject)
        assert row.value == f.value or (row.value != row.value and f.value is None)  # its own rule's value
    assert sum(1 for t in first.transitions if t.new == "firing") == sum(f.firing for f in expected.values())

    clock.advance(60)
    again = Evaluator(settings, store, data, Notifier([]), clock=clock).evaluate()
    assert again.transitions == [], [(t.rule, t.subject, t.old, t.new) for t in again.transitions]
    judged_again = {(rule, f.subject) for rule, found in again.findings.items() for f in found}
    latest = store.current_states()
    assert {(r.rule, r.subject) for r in latest.itertuples() if r.evaluated == clock()} == judged_again
