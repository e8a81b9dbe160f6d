"""Each rule kind on frames small enough to check by hand, and the state machine around them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fakes.doubles import FakeClock, Receiver

from alerts import rules
from alerts.data import DataUnavailable
from alerts.evaluate import Evaluator
from alerts.notify import Notifier
from alerts.store import ProbeResult, Store
from queries.config import AlertChannel, AlertRule, Budget, Settings

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)  # half-way through a 30-day month


def rule(kind: str, threshold: float, **kw: object) -> AlertRule:
    return AlertRule(name=f"r-{kind}", kind=kind, threshold=threshold, **kw)  # type: ignore[arg-type]


def by_subject(found: list[rules.Finding]) -> dict[str, tuple[bool, float | None]]:
    return {f.subject: (f.firing, f.value) for f in found}


def test_rate_rules() -> None:
    frame = pd.DataFrame(
        {"Deployment": ["a", "b", "c"], "Requests": [100, 10, 2], "Throttled": [6, 0, 2], "ServerErrors": [0, 1, 0]}
    )
    assert by_subject(rules.rate(rule("rate_429", 5, min_count=3), frame, "Throttled", "429")) == {
        "a": (True, 6.0),
        "b": (False, 0.0),
    }  # c has too few requests to judge
    assert by_subject(rules.rate(rule("rate_5xx", 5, deployment="b"), frame, "ServerErrors", "5xx")) == {
        "b": (True, 10.0)
    }


def test_latency_and_quota() -> None:
    lat = pd.DataFrame({"Deployment": ["a", "b"], "P95Ms": [900.0, 3100.0], "Requests": [50, 50]})
    assert by_subject(rules.latency_p95(rule("latency_p95", 3000), lat)) == {"a": (False, 900.0), "b": (True, 3100.0)}
    q = pd.DataFrame(
        {"Deployment": ["a", "b", "idle"], "PeakTpm": [95_000, 50_000, 0], "TpmLimit": [100_000, 100_000, 10_000]}
    )
    assert by_subject(rules.quota_headroom(rule("quota_headroom", 10), q)) == {
        "a": (True, 5.0),
        "b": (False, 50.0),
        "idle": (False, 100.0),
    }


def test_quota_headroom_judges_rpm_too() -> None:
    q = pd.DataFrame(
        {
            "Deployment": ["agent", "chat"],
            "PeakTpm": [6_000, 50_000],
            "TpmLimit": [60_000, 100_000],
            "PeakRpm": [57, 10],
            "RpmLimit": [60, 600],
        }
    )
    found = {f.subject: f for f in rules.quota_headroom(rule("quota_headroom", 10), q)}
    assert (found["agent"].firing, found["agent"].value) == (True, 5.0)  # 57 of 60 RPM, though TPM is at 10%
    assert "57.0 of 60.0 RPM" in found["agent"].reason
    assert (found["chat"].firing, found["chat"].value) == (False, 50.0)


def test_quota_forecast() -> None:
    from queries import quota

    rows = []
    for i in range(5):
        day = pd.Timestamp("2026-11-10T00:00Z") + pd.Timedelta(days=i)
        rows += [(day, "agent", 6_000, 40 + 2 * i), (day, "chat", 20_000, 30 - i)]
    daily = pd.DataFrame(rows, columns=["Day", "Deployment", "PeakTPM", "PeakRPM"])
    deps = pd.DataFrame(
        {
            "Deployment": ["agent", "chat"],
            "Location": ["eastus", "eastus"],
            "Sku": ["GlobalStandard", "GlobalStandard"],
            "Model": ["o4-mini", "gpt-4o"],
            "TpmLimit": [60_000, 100_000],
            "RpmLimit": [60, 600],
        }
    )
    usages = pd.DataFrame(
        {
            "Location": ["eastus"],
            "Name": ["x"],
            "Sku": ["GlobalStandard"],
            "Model": ["gpt-4o"],
            "Current": [100.0],
            "Limit": [110.0],
        }
    )
    frame = quota.forecast(daily, deps, usages).assign(Deployments="")
    frame.loc[frame["Kind"] == "pool", "Deployments"] = "chat"
    # agent's RPM: 48 now, +2/day, reaches 60 in 6 days; the gpt-4o pool (chat's flat 20K of 110K) never
    found = {f.subject: f for f in rules.quota_forecast(rule("quota_forecast", 7), frame)}
    assert (found["agent"].firing, found["agent"].value) == (True, 6.0)
    assert "daily peak 48.0 of 60.0 RPM, +2.0/day over 5 day(s): crosses in 6 days" in found["agent"].reason
    assert (found["chat"].firing, found["chat"].value) == (False, None) and "not growing" in found["chat"].reason
    pool = "subscription · GlobalStandard · gpt-4o"
    assert found[pool].firing is False
    assert {f.subject for f in rules.quota_forecast(rule("quota_forecast", 5), frame)} == {"agent", "chat", pool}
    assert not rules.quota_forecast(rule("quota_forecast", 5), frame)[0].firing  # 6 days is beyond 5
    only = rules.quota_forecast(rule("quota_forecast", 7, deployment="chat"), frame)
    assert {f.subject for f in only} == {"chat", pool}  # the deployment and the pools it draws on


def test_probe_rules() -> None:
    last = pd.DataFrame(
        {
            "deployment": ["a"] * 4 + ["b"] * 2,
            "kind": ["chat"] * 6,
            "class": ["timeout", "rate_limited", "http_5xx", "ok", "auth", "ok"],
            "ts": [4, 3, 2, 1, 2, 1],
        }
    )
    assert by_subject(rules.probe_failures(rule("probe_failures", 3), last)) == {
        "a/chat": (True, 3.0),
        "b/chat": (False, 1.0),
    }
    probes = pd.DataFrame(
        {
            "deployment": ["a"] * 5,
            "kind": ["chat"] * 5,
            "class": ["ok"] * 4 + ["timeout"],
            "ttft_ms": [100.0, 200.0, 300.0, 2500.0, None],
        }
    )
    (f,) = rules.probe_ttft(rule("probe_ttft", 1000), probes)
    assert f.firing and f.value == pytest.approx(pd.Series([100.0, 200, 300, 2500]).quantile(0.95))


def cost(rows: list[tuple[datetime, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["TimeGenerated", "Team", "Feature", "CostUsd"])


def test_budget_pace() -> None:
    budgets = [
        Budget(scope="team", name="support", monthly_usd=300),
        Budget(scope="team", name="search", monthly_usd=300),
    ]
    frame = cost(
        [(NOW - timedelta(days=d), "support", "chat", 12.0) for d in range(1, 15)]  # $168, 14 days
        + [(NOW - timedelta(days=d), "search", "rag", 5.0) for d in range(1, 15)]
    )  # $70
    found = by_subject(rules.budget_pace(rule("budget_pace", 100), frame, budgets, NOW))
    # $168 month to date; run rate: Nov 8-14 (the 7 complete days before today) at $12 a day; 15.5 days
    # left: forecast = 168 + 12 * 15.5 = $354 = 118% of $300 (search: 70 + 5 * 15.5 = $147.50, 49%)
    assert found["team:support"] == (True, pytest.approx(118.0, abs=0.01))
    assert found["team:search"] == (False, pytest.approx(49.17, abs=0.01))
    assert found["team:search"][0] is False
    assert set(by_subject(rules.budget_pace(rule("budget_pace", 100, team="search"), frame, budgets, NOW))) == {
        "team:search"
    }


def test_the_alert_and_the_budgets_panel_forecast_the_same_budget() -> None:
    """One forecast (queries.cost.forecast): the budget_pace alert and the Cost page's budgets agree."""
    from queries.cost.budgets import budget_status

    budgets = [Budget(scope="team", name="support", monthly_usd=300)]
    hours = [(NOW - timedelta(hours=h), "support", "chat", 0.5 + (h % 7) / 10) for h in range(1, 20 * 24)]
    frame = cost(hours)
    alert = by_subject(rules.budget_pace(rule("budget_pace", 100), frame, budgets, NOW))["team:support"][1]
    daily = frame.assign(Day=pd.to_datetime(frame["TimeGenerated"], utc=True).dt.floor("D"), Scope="team")
    daily = daily.groupby(["Day", "Scope", "Team"], as_index=False)["CostUsd"].sum()
    daily = daily.rename(columns={"Team": "Name", "CostUsd": "Cost"})
    page = budget_status(daily, budgets, NOW)
    assert alert == pytest.approx(100 * float(page["ForecastPct"].iloc[0]), abs=0.01)


def test_a_months_first_hours_are_not_extrapolated_over_the_month() -> None:
    """On the 1st at 06:00 a few hours of spend are not extrapolated over the month: the forecast rests on
    the last 7 complete days (last month's), and says how many it had."""
    first = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    budgets = [Budget(scope="team", name="support", monthly_usd=300)]
    frame = cost(
        [(first - timedelta(days=d, hours=3), "support", "chat", 10.0) for d in range(1, 8)]  # $10/day last week
        + [(first - timedelta(hours=h), "support", "chat", 5.0) for h in range(1, 6)]  # $25 this morning
    )
    found = rules.budget_pace(rule("budget_pace", 100), frame, budgets, first)
    # 25 + 10/day x 30.75 days left = $332.50 = 110.8%; a linear forecast would say 25 / (6/744) = $3,100
    assert found[0].value == pytest.approx(100 * (25 + 10 * 30.75) / 300, abs=0.01)
    assert "over 7 complete day(s)" in found[0].reason


def test_burn_rate_needs_both_windows() -> None:
    budgets = [Budget(scope="feature", name="chat", monthly_usd=720)]  # even pace: $1 an hour (30-day month)
    hourly = [(NOW - timedelta(hours=h), "support", "chat", 10.0) for h in range(1, 7)]  # 10x for 6 hours
    r = rule("burn_rate", 6, window_minutes=360)  # 6 h and 30 min
    recent = cost([*hourly, (NOW - timedelta(minutes=10), "support", "chat", 10.0)])
    (f,) = rules.burn_rate(r, recent, budgets, NOW)
    assert f.firing
    stopped = cost(hourly)  # nothing in the last 30 minutes: the short window is calm
    (g,) = rules.burn_rate(r, stopped, budgets, NOW)
    assert not g.firing and g.value == 0.0


def test_spend_anomaly() -> None:
    days = [(NOW - timedelta(days=d, hours=1), "growth", "copy", 10.0) for d in range(1, 8)]
    spike = cost([*days, (NOW - timedelta(hours=1), "growth", "copy", 45.0)])
    (f,) = rules.spend_anomaly(rule("spend_anomaly", 3, window_minutes=1440), spike, NOW)
    assert f.subject == "team:growth" and f.firing and f.value == 4.5
    calm = cost([*days, (NOW - timedelta(hours=1), "growth", "copy", 12.0)])
    assert not rules.spend_anomaly(rule("spend_anomaly", 3, window_minutes=1440), calm, NOW)[0].firing


def test_no_data() -> None:
    seen = {"A": NOW - timedelta(minutes=5), "B": NOW - timedelta(minutes=90), "C": None}
    assert by_subject(rules.no_data(rule("no_data", 60), seen, NOW)) == {
        "A": (False, 5.0),
        "B": (True, 90.0),
        "C": (True, None),
    }


def test_billing_drift_by_hand() -> None:
    today = NOW.date()  # 2026-11-15; lag 3: the 12th on is pending
    d = lambda n: pd.Timestamp(f"2026-11-{n:02d}", tz="UTC")  # noqa: E731
    nan = float("nan")
    rec = pd.DataFrame(
        [
            [d(10), "acct", "gpt-4o", "input", 10.0, 10.004, "match"],  # within a cent: ok
            [d(11), "acct", "gpt-4o", "input", 10.0, 10.40, "match"],  # +4%: under 5%
            [d(10), "acct", "gpt-4o", "cached_input", 2.0, 4.0, "drift"],  # +100%, $2: fires
            [d(11), "acct", "gpt-4o", "cached_input", 2.0, 2.0, "match"],
            [d(10), "acct", "gpt-4o", "output", 0.2, 0.3, "drift"],  # +50% but $0.10: under min_usd
            [d(10), "acct", "gpt-4.1-mini", "input", nan, 2.37, "bill-only"],  # never in the logs: fires
            [d(10), "acct", "gpt-5", "input", 0.0, nan, "unpriced"],  # no estimate to compare: not judged
            [d(13), "acct", "o3", "output", 5.0, nan, "pending"],  # the bill lags: not judged
            [d(10), "acct", "", "ptu_hour", 48.0, nan, "drift"],  # estimated, never billed: fires at -100%
        ],
        columns=["Day", "Account", "Model", "Meter", "Estimate", "Billed", "Status"],
    )
    found = rules.billing_drift(rule("billing_drift", 5), rec, today, lag_days=3, min_usd=0.5)
    assert by_subject(found) == {
        "acct/gpt-4o/input": (False, 4.0),
        "acct/gpt-4o/cached_input": (True, 100.0),
        "acct/gpt-4o/output": (False, 50.0),
        "acct/gpt-4.1-mini/input": (True, None),
        "acct/ptu_hour": (True, -100.0),
    }
    reason = next(f.reason for f in found if f.subject == "acct/gpt-4o/cached_input")
    assert "billed $4.00 vs estimated $2.00 on 2026-11-10 (+100.0%, $+2.00)" in reason and "1 of 2" in reason
    assert "never seen in the logs" in next(f.reason for f in found if f.value is None)
    # a smaller minimum lets the output line fire; a higher threshold quietens the cached line
    assert by_subject(rules.billing_drift(rule("billing_drift", 5), rec, today, lag_days=3, min_usd=0.05))[
        "acct/gpt-4o/output"
    ] == (True, 50.0)
    assert not by_subject(rules.billing_drift(rule("billing_drift", 150), rec, today, lag_days=3, min_usd=0.5))[
        "acct/gpt-4o/cached_input"
    ][0]


def test_billing_drift_rules_are_whole_estate() -> None:
    with pytest.raises(ValueError, match="whole bill"):
        rule("billing_drift", 5, team="growth")
    with pytest.raises(ValueError, match="billing_drift rules only"):
        rule("budget_pace", 100, min_usd=1)
    assert rule("billing_drift", 5, min_usd=1).min_usd == 1


class FrameData:
    """RuleData answering from fixed frames (and failing where told)."""

    def __init__(self) -> None:
        self.frame = pd.DataFrame({"Deployment": ["a"], "Requests": [10], "Throttled": [5], "ServerErrors": [0]})
        self.fail = False

    def requests(self, start: datetime, end: datetime) -> pd.DataFrame:
        if self.fail:
            raise DataUnavailable("workspace locked")
        return self.frame

    def cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        raise DataUnavailable("no cost model yet")


def test_state_machine_notifies_only_on_transitions(tmp_path: Path, clock: FakeClock, receiver: Receiver) -> None:
    settings = Settings(
        data_dir=tmp_path,
        alerts={
            "rules": [
                {"name": "t", "kind": "rate_429", "threshold": 10, "channels": ["hook", "broken"]},
                {"name": "pace", "kind": "budget_pace", "threshold": 100},
            ],
            "channels": [{"name": "hook", "url_env": "HOOK"}, {"name": "broken", "url_env": "UNSET_HOOK"}],
        },
    )
    store = Store(settings.state_path)
    data = FrameData()
    notifier = Notifier(settings.alerts.channels, environ={"HOOK": receiver.url})
    ev = Evaluator(settings, store, data, notifier, clock=clock)  # type: ignore[arg-type]
    r1 = ev.evaluate()
    assert [(t.subject, t.old, t.new) for t in r1.transitions] == [("a", "ok", "firing")]
    assert r1.skipped == {"pace": "no cost model yet"}
    assert len(receiver.posts) == 1
    d = store.deliveries()
    assert [(x["channel"], x["ok"]) for x in d] == [("hook", 1), ("broken", 0)]
    assert "UNSET_HOOK is not set" in d[1]["error"]
    clock.advance(60)
    assert ev.evaluate().transitions == [] and len(receiver.posts) == 1
    data.fail = True  # missing data keeps the state: not resolved, not re-fired
    clock.advance(60)
    assert ev.evaluate().transitions == []
    data.fail = False
    data.frame = data.frame.assign(Throttled=[0])
    clock.advance(60)
    (t,) = ev.evaluate().transitions
    assert (t.old, t.new, t.value) == ("firing", "resolved", 0.0)
    data.frame = data.frame.assign(Throttled=[9])
    (t,) = ev.evaluate().transitions
    assert (t.old, t.new) == ("resolved", "firing")
    data.frame = data.frame.iloc[0:0]  # the deployment went quiet: resolved as no longer observed
    (t,) = ev.evaluate().transitions
    assert t.new == "resolved" and "no longer observed" in t.reason
    assert len(receiver.posts) == 4


def test_probe_rule_reads_the_store(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(data_dir=tmp_path, alerts={"rules": [{"name": "p", "kind": "probe_failures", "threshold": 2}]})
    store = Store(settings.state_path)
    ev = Evaluator(settings, store, None, Notifier([]), clock=clock)
    for klass in ("ok", "timeout", "timeout"):
        clock.advance(60)
        store.add_probe(ProbeResult(ts=clock(), deployment="a", kind="chat", auth="key", klass=klass))
    (t,) = ev.evaluate().transitions
    assert t.subject == "a/chat" and t.new == "firing" and t.value == 2.0
    # a fresh evaluator on the same file (a restart) remembers the state
    again = Evaluator(settings, Store(settings.state_path), None, Notifier([]), clock=clock)
    assert again.evaluate().transitions == []


def test_channel_url_from_file_and_scrubbed_errors(tmp_path: Path) -> None:
    secret_file = tmp_path / "hook.url"
    secret_file.write_text("json://127.0.0.1:9/very-secret-token-123\n")  # port 9: nothing listens
    n = Notifier([AlertChannel(name="f", url_file=secret_file)])
    d = n.send("f", "t", "b")
    assert not d.ok and d.error and "very-secret-token-123" not in d.error
    assert (
        not Notifier([AlertChannel(name="x", url_env="NOPE")], environ={"NOPE": "nosuchscheme://x"})
        .send("x", "t", "b")
        .ok
    )


def test_spend_anomaly_needs_history() -> None:
    young = cost([(NOW - timedelta(days=d, hours=1), "growth", "copy", 10.0) for d in range(0, 2)])
    assert rules.spend_anomaly(rule("spend_anomaly", 3, window_minutes=1440), young, NOW) == []


def test_cost_rules_are_judged_at_most_every_interval(tmp_path) -> None:
    from alerts.evaluate import Evaluator
    from alerts.store import Store
    from queries.config import AlertRule, Budget, load_settings

    settings = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})
    settings.alerts.rules = [AlertRule(name="pace", kind="budget_pace", threshold=100)]
    settings.budgets = [Budget(scope="team", name="t", monthly_usd=100)]
    calls = []

    class Data:
        def cost(self, start, end):
            calls.append((start, end))
            import pandas as pd

            return pd.DataFrame(columns=["TimeGenerated", "Team", "Feature", "CostUsd"])

    now = [1_800_000_000.0]
    memo: dict[str, float] = {}
    for step in (0, 60, 120, 601, 660):
        now[0] = 1_800_000_000.0 + step
        Evaluator(
            settings, Store(tmp_path / "s.sqlite"), Data(), clock=lambda: now[0], cost_every_s=600, last_judged=memo
        ).evaluate()
    assert len(calls) == 2  # at 0 s and at 601 s


# ---- state per (rule, subject) ------------------------------------------------------------------------


def test_rules_on_one_subject_never_touch_each_others_state(tmp_path: Path, clock: FakeClock) -> None:
    settings = Settings(
        data_dir=tmp_path,
        alerts={
            "rules": [
                {"name": "warn", "kind": "rate_429", "threshold": 5},
                {"name": "page", "kind": "rate_429", "threshold": 50},
                {"name": "errors", "kind": "rate_5xx", "threshold": 10},
            ]
        },
    )
    store = Store(settings.state_path)
    data = FrameData()
    ev = Evaluator(settings, store, data, Notifier([]), clock=clock)  # type: ignore[arg-type]

    def step(throttled: int, errors: int) -> list[tuple[str, str, str]]:
        clock.advance(60)
        data.frame = pd.DataFrame(
            {"Deployment": ["a"], "Requests": [100], "Throttled": [throttled], "ServerErrors": [errors]}
        )
        return [(t.rule, t.old, t.new) for t in ev.evaluate().transitions]

    def states() -> dict[str, tuple[str, float]]:
        f = store.current_states()
        return {r.rule: (r.state, r.value) for r in f.itertuples() if r.subject == "a"}

    assert step(10, 0) == [("warn", "ok", "firing")]
    # the rules that did not fire are stored as evaluated OK states with their own values
    assert states() == {"warn": ("firing", 10.0), "page": ("ok", 10.0), "errors": ("ok", 0.0)}
    assert step(60, 0) == [("page", "ok", "firing")]  # warn stays firing: no second notification
    assert step(60, 20) == [("errors", "ok", "firing")]
    assert step(60, 20) == []
    assert step(30, 20) == [("page", "firing", "resolved")]  # warn and errors untouched
    assert states() == {"warn": ("firing", 30.0), "page": ("resolved", 30.0), "errors": ("firing", 20.0)}
    assert sorted(step(1, 0)) == [("errors", "firing", "resolved"), ("warn", "firing", "resolved")]
    assert step(1, 0) == []
    fired = [(t.rule, t.new) for t in store.transitions()]
    assert fired.count(("warn", "firing")) == fired.count(("page", "firing")) == fired.count(("errors", "firing")) == 1
    evaluated = store.current_states()["evaluated"]
    assert (evaluated == clock()).all()  # every state says when it was last judged


def test_two_rules_may_not_share_a_name(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="two alert rules are named 'x'"):
        Settings(
            data_dir=tmp_path,
            alerts={
                "rules": [
                    {"name": "x", "kind": "rate_429", "threshold": 5},
                    {"name": "x", "kind": "rate_5xx", "threshold": 1},
                ]
            },
        )


def test_a_state_file_from_before_evaluations_were_recorded_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE alert_state (rule TEXT NOT NULL, subject TEXT NOT NULL, state TEXT NOT NULL, since REAL NOT NULL,"
        " value REAL, reason TEXT, PRIMARY KEY (rule, subject))"
    )
    con.execute("INSERT INTO alert_state VALUES ('r', 'a', 'firing', 1.0, 9.0, 'old')")
    con.commit()
    con.close()
    store = Store(path)
    store.record_evaluation("r", [("a", 3.0, "newer"), ("b", 0.0, "fine")], 5.0)
    f = store.current_states().set_index("subject")
    assert f.loc["a", "state"] == "firing" and f.loc["a", "since"] == 1.0 and f.loc["a", "value"] == 3.0
    assert f.loc["b", "state"] == "ok" and f.loc["b", "evaluated"] == 5.0


# ---- per-caller rolling-window spend -------------------------------------------------------------------


def caller_cost(rows: list[tuple[datetime, str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["TimeGenerated", "Caller", "Team", "Feature", "CostUsd"])


def test_caller_spend_over_a_rolling_window() -> None:
    h = timedelta(hours=1)
    frame = caller_cost(
        [
            (NOW - 1 * h, "mi-copy", "growth", "copy", 6.0),
            (NOW - 6 * h, "mi-copy", "growth", "copy", 5.0),  # the hour starting 6 h ago is in a 6 h window
            (NOW - 7 * h, "mi-copy", "growth", "copy", 100.0),  # before the window
            (NOW - 2 * h, "(API key) 172.16.8.***", "", "", 3.0),
            (NOW, "mi-copy", "growth", "copy", 50.0),  # the hour now starting is not over yet: not counted
        ]
    )
    found = rules.caller_spend(rule("caller_spend", 10, window_minutes=360), frame, NOW)
    assert by_subject(found) == {"caller:(API key) 172.16.8.***": (False, 3.0), "caller:mi-copy": (True, 11.0)}
    assert found[1].reason == "caller mi-copy (copy): $11.00 in the last 6 h; threshold $10.00"
    only = rules.caller_spend(rule("caller_spend", 10, window_minutes=360, team="growth"), frame, NOW)
    assert [f.subject for f in only] == ["caller:mi-copy"]
    assert rules.parse_subject("caller:mi-copy") == ("caller", "mi-copy")


def test_caller_subjects_are_scoped_to_the_callers_team(tmp_path: Path) -> None:
    from alerts.scoped import ScopedStore
    from alerts.store import Transition
    from queries.scope import Scope

    settings = Settings(
        data_dir=tmp_path,
        attribution=[
            {
                "object_id": "11111111-1111-4111-8111-111111111111",
                "display_name": "mi-copy",
                "feature": "copy",
                "team": "growth",
            },
            {"ip_range": "10.20.2.0/24", "display_name": "triage (API key)", "feature": "triage", "team": "support"},
        ],
        alerts={"rules": [{"name": "spend", "kind": "caller_spend", "threshold": 10}]},
    )
    store = Store(settings.state_path)
    for subject in ("caller:mi-copy", "caller:triage (API key)", "caller:(no rule) 0b0b"):
        store.apply(Transition("spend", subject, "ok", "firing", 1.0, "over", 11.0))
    growth = ScopedStore(store, Scope.of(["growth"]), settings)
    assert list(growth.current_states()["subject"]) == ["caller:mi-copy"]
    assert {s for _, s in ScopedStore(store, Scope.of(["support"]), settings).states()} == {"caller:triage (API key)"}


def test_cache_hit_rate_per_deployment_with_a_minimum_prompt_volume() -> None:
    frame = pd.DataFrame(
        {
            "Deployment": ["rag", "chat", "tiny", "cold"],
            "PromptTokens": [1_000_000, 400_000, 5_000, 0],
            "CachedTokens": [150_000, 200_000, 0, 0],
        }
    )
    r = rule("cache_hit_rate", 30, min_prompt_tokens=100_000)
    found = rules.cache_hit_rate(r, frame)
    # rag: 150,000 / 1,000,000 = 15% < 30%; chat: 50%; tiny and cold have too few prompt tokens to judge
    assert by_subject(found) == {"rag": (True, 15.0), "chat": (False, 50.0)}
    assert "150,000 of 1,000,000 prompt tokens" in found[0].reason and "threshold 30" in found[0].reason
    assert by_subject(rules.cache_hit_rate(rule("cache_hit_rate", 60, deployment="chat"), frame)) == {
        "chat": (True, 50.0)
    }


def test_a_cache_hit_rate_threshold_is_a_percent(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="cache_hit_rate threshold is a percent"):
        Settings(data_dir=tmp_path, alerts={"rules": [{"name": "c", "kind": "cache_hit_rate", "threshold": 150}]})
    with pytest.raises(ValidationError, match="min_prompt_tokens"):
        Settings(
            data_dir=tmp_path,
            alerts={"rules": [{"name": "c", "kind": "cache_hit_rate", "threshold": 30, "min_prompt_tokens": -1}]},
        )


def test_the_cache_rule_reads_the_cacheable_prompts_per_deployment(demo_settings: Settings, tmp_path: Path) -> None:
    from alerts.data import LensData
    from queries.lens import Lens

    settings = demo_settings.model_copy(
        update={
            "alerts": demo_settings.alerts.model_copy(
                update={"rules": [rule("cache_hit_rate", 30, window_minutes=7 * 24 * 60, min_prompt_tokens=1_000_000)]}
            )
        }
    )
    lens = Lens.from_settings(settings)
    data = LensData(lens)
    now = lens.now()
    frame = data.prompt_cache(now - timedelta(days=7), now)
    raw = lens.run("prompt_cache_by_caller", start=now - timedelta(days=7), end=now).frame
    rag = raw[raw["Deployment"] == "rag-gpt41"]
    row = frame.set_index("Deployment").loc["rag-gpt41"]
    assert (
        row["PromptTokens"] == rag["EligiblePromptTokens"].sum()
        and row["CachedTokens"] == rag["EligibleCachedTokens"].sum()
    )
    report = Evaluator(settings, Store(tmp_path / "s.sqlite"), data).evaluate()
    found = by_subject(report.findings["r-cache_hit_rate"])
    # rag-answers caches about a fifth of its long prompts; support-chat's PTU deployment about 45%
    assert found["rag-gpt41"][0] is True and found["support-gpt4o-ptu"][0] is False
