"""Probe SLOs on hand-built probe frames: error budget, burn rates, the multi-window slo_burn rule; and the
budget alert that waits for enough history on a month's (and a workspace's) first day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from alerts import rules, slo
from alerts.evaluate import Evaluator
from alerts.notify import Notifier
from alerts.store import ProbeResult, Store
from queries.config import AlertRule, Budget, ProbeSettings, ProbeSLO, Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def probes(rows: list[tuple[float, str, str, float | None, float | None]]) -> pd.DataFrame:
    """rows: (minutes before NOW, deployment, class, latency_ms, ttft_ms)."""
    return pd.DataFrame(
        [
            {"ts": (NOW - timedelta(minutes=m)).timestamp(), "deployment": d, "kind": "chat", "class": c}
            | {"latency_ms": lat, "ttft_ms": ttft}
            for m, d, c, lat, ttft in rows
        ]
    )


def every_5_minutes(dep: str, hours: float, bad_at: set[int], **kw: float) -> list[tuple]:
    """Probes every 5 minutes for `hours`, newest first (index 0 = now); failing at the given indexes."""
    lat, ttft = kw.get("lat", 300.0), kw.get("ttft", 100.0)
    return [
        (5 * i, dep, "http_5xx" if i in bad_at else "ok", None if i in bad_at else lat, None if i in bad_at else ttft)
        for i in range(int(hours * 12))
    ]


SETTINGS = ProbeSettings(
    slos=[ProbeSLO(deployment="*", success_pct=99.0, latency_ms=1000, latency_pct=95.0, ttft_ms=500, ttft_pct=90.0)]
)


def test_error_budget_and_burn_rates_by_hand() -> None:
    # 30 days of probes every 5 minutes = 8,640; 43 failures = 0.4977% bad of a 1% budget
    rows = every_5_minutes("a", 24 * 30, bad_at=set(range(100, 143)))
    st = slo.status(probes(rows), SETTINGS, NOW).set_index("indicator")
    success = st.loc["success"]
    assert success["probes"] == 8640
    assert success["budget_remaining_pct"] == pytest.approx(100 * (1 - (43 / 8640) / 0.01))
    assert success["good_pct"] == pytest.approx(100 * (1 - 43 / 8640))
    # the failures were 100-142 probes ago (8.3-11.8 h): outside the 1 h and 6 h windows, so nothing burns
    assert success["burn_1h"] == 0 and success["burn_6h"] == 0 and success["status"] == "ok"
    # latency and ttft count successful probes only: all under their thresholds
    assert st.loc["latency", "probes"] == 8640 - 43 and st.loc["latency", "budget_remaining_pct"] == 100.0


def test_fast_burn_needs_both_windows() -> None:
    # two failures in the last hour, the newest probe failed: 2/12 / 1% = 16.7x (1 h) and 100x (5 min)
    both = slo.status(probes(every_5_minutes("a", 2, bad_at={0, 6})), SETTINGS, NOW).set_index("indicator")
    assert both.loc["success", "burn_1h"] == pytest.approx(100 * 2 / 12)
    assert both.loc["success", "burn_5m"] == pytest.approx(100.0)
    assert both.loc["success", "status"] == "fast burn"
    # the same two failures, but the newest probe succeeded: the short window has recovered
    recovered = slo.status(probes(every_5_minutes("a", 2, bad_at={1, 6})), SETTINGS, NOW).set_index("indicator")
    assert recovered.loc["success", "burn_1h"] > 14.4 and recovered.loc["success", "burn_5m"] == 0
    assert recovered.loc["success", "status"] != "fast burn"


def test_slo_burn_rule_fires_only_when_both_windows_exceed() -> None:
    rule = AlertRule(name="slo", kind="slo_burn", threshold=14.4, window_minutes=60, min_count=6)
    frame = probes(
        every_5_minutes("both", 1, bad_at={0, 6})  # 16.7x and 100x
        + every_5_minutes("long-only", 1, bad_at={1, 6})  # 16.7x, then 0x over the last 5 min
        + every_5_minutes("short-only", 1, bad_at={0})  # 8.3x over the hour, 100x now
        + every_5_minutes("slow", 1, bad_at=set(), lat=1500)  # every probe over the latency threshold
    )
    found = {f.subject: f for f in rules.slo_burn(rule, frame, SETTINGS, NOW)}
    assert found["both/success"].firing and found["both/success"].value == pytest.approx(100 * 2 / 12, abs=1e-3)
    assert not found["long-only/success"].firing and not found["short-only/success"].firing
    assert found["slow/latency"].firing and not found["slow/success"].firing
    assert "objective 95%" in found["slow/latency"].reason and "60 min" in found["slow/latency"].reason
    assert not rules.slo_burn(rule, frame.iloc[:3], SETTINGS, NOW)  # fewer probes than min_count: not judged
    # no SLO for a deployment: not judged
    only = ProbeSettings(slos=[ProbeSLO(deployment="both")])
    assert {f.subject.split("/")[0] for f in rules.slo_burn(rule, frame, only, NOW)} == {"both"}


def test_slo_burn_through_the_evaluator_and_the_store(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        probes={"slos": [{"deployment": "*", "success_pct": 99.0}]},
        alerts={"rules": [{"name": "slo", "kind": "slo_burn", "threshold": 14.4, "window_minutes": 60}]},
    )
    store = Store(settings.state_path)
    for m, dep, klass, lat, ttft in every_5_minutes("a", 1, bad_at={0, 6}):
        store.add_probe(
            ProbeResult(
                ts=(NOW - timedelta(minutes=m)).timestamp(),
                deployment=dep,
                kind="chat",
                auth="key",
                klass=klass,
                latency_ms=lat,
                ttft_ms=ttft,
            )
        )
    report = Evaluator(settings, store, None, Notifier([]), clock=lambda: NOW.timestamp()).evaluate()
    assert [(t.subject, t.new) for t in report.transitions] == [("a/success", "firing")]


# ---- the budget alert on a young workspace's first day ------------------------------------------------


def cost(rows: list[tuple[datetime, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [(t, team, "f", usd) for t, team, usd in rows], columns=["TimeGenerated", "Team", "Feature", "CostUsd"]
    )


FIRST = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # five hours into the month
BUDGETS = [Budget(scope="team", name="support", monthly_usd=300)]
PACE = AlertRule(name="pace", kind="budget_pace", threshold=100)


def test_a_few_hours_of_spend_on_the_first_do_not_fire_the_budget_alert() -> None:
    # the workspace started yesterday at 18:00: $24 yesterday evening, $12 this morning
    frame = cost(
        [(FIRST - timedelta(hours=h), "support", 4.0) for h in range(6, 12)]  # Nov 30 18:00-23:00
        + [(FIRST - timedelta(hours=h), "support", 2.4) for h in range(0, 5)]  # Dec 1 00:00-04:00
    )
    (f,) = rules.budget_pace(PACE, frame, BUDGETS, FIRST, min_history_days=3)
    # the forecast rests on one complete day: 12 + 24 x 30.79 days left = $751 = 250% of $300; not judged
    left = 31 - 5 / 24
    assert f.value == pytest.approx(100 * (12 + 24 * left) / 300, abs=0.01)
    assert not f.firing
    assert "needs 3 complete day(s) of history and has 1 (11 h of data)" in f.reason
    # without the minimum the same forecast fires
    (unguarded,) = rules.budget_pace(PACE, frame, BUDGETS, FIRST, min_history_days=0)
    assert unguarded.firing and "not judged" not in unguarded.reason


def test_enough_history_or_spend_already_over_budget_still_fires() -> None:
    week = [(FIRST - timedelta(days=d, hours=3), "support", 15.0) for d in range(1, 8)]  # $15/day last week
    (f,) = rules.budget_pace(PACE, cost(week), BUDGETS, FIRST, min_history_days=3)
    assert f.firing and f.value == pytest.approx(100 * 15 * (31 - 5 / 24) / 300, abs=0.01)
    over = cost([(FIRST - timedelta(hours=h), "support", 80.0) for h in range(0, 5)])  # $400 in five hours
    (g,) = rules.budget_pace(PACE, over, BUDGETS, FIRST, min_history_days=3)
    assert g.firing  # already over the budget: a fact, not a forecast


def test_the_evaluator_passes_the_minimum_history_setting(tmp_path: Path) -> None:
    class Young:
        def cost(self, start: datetime, end: datetime) -> pd.DataFrame:
            return cost([(FIRST - timedelta(hours=h), "support", 4.0) for h in range(0, 30)])

    settings = Settings(data_dir=tmp_path, budgets=BUDGETS, alerts={"rules": [PACE.model_dump()]})
    assert settings.alerts.budget_min_history_days == 3
    store = Store(settings.state_path)
    report = Evaluator(settings, store, Young(), Notifier([]), clock=lambda: FIRST.timestamp()).evaluate()  # type: ignore[arg-type]
    (f,) = report.findings["pace"]
    assert not f.firing and "not judged" in f.reason and not report.transitions
