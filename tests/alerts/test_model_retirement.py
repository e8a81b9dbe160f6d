"""The model_retirement rule: days before a deployment's model version retires, judged on the inventory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fakes.doubles import FakeClock

from alerts import rules
from alerts.data import DataUnavailable, LensData
from alerts.evaluate import Evaluator
from alerts.store import Store
from queries.config import AlertRule, Settings
from queries.lens import Lens

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def frame(*rows: tuple[str, str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Account": [a for a, _, _ in rows],
            "Deployment": [d for _, d, _ in rows],
            "Model": ["gpt-4o-mini"] * len(rows),
            "Version": ["2024-07-18"] * len(rows),
            "RetirementDate": pd.to_datetime(
                [NOW + timedelta(days=x) if x is not None else None for _, _, x in rows], utc=True
            ),
            "DaysToRetirement": [float("nan") if x is None else x for _, _, x in rows],
        }
    )


def test_threshold_defaults_to_90_days_and_fires_at_or_below() -> None:
    rule = AlertRule(name="retiring", kind="model_retirement")
    assert rule.threshold == 90
    found = rules.model_retirement(rule, frame(("a", "x", 90.0), ("a", "y", 90.5), ("b", "x", -2.0), ("b", "z", None)))
    assert [(f.subject, f.firing, f.value) for f in found] == [
        ("a/x", True, 90.0),
        ("a/y", False, 90.5),
        ("b/x", True, -2.0),
    ]
    assert found[0].reason.startswith("a/x: gpt-4o-mini 2024-07-18 retires on 2027-03-01, in 90 days")
    assert "retired on 2026-11-29" in found[2].reason
    narrowed = rules.model_retirement(
        AlertRule(name="r", kind="model_retirement", threshold=30, deployment="y"),
        frame(("a", "y", 20.0), ("a", "x", 1.0)),
    )
    assert [(f.subject, f.firing) for f in narrowed] == [("a/y", True)]


def test_other_kinds_still_need_a_threshold() -> None:
    with pytest.raises(ValueError, match="threshold"):
        AlertRule(name="r", kind="rate_429")  # type: ignore[call-arg]


def test_the_rule_on_the_demo_fires_for_the_retiring_model(
    tmp_path: Path, demo_settings: Settings, demo_end: datetime
) -> None:
    settings = demo_settings.model_copy(
        update={
            "data_dir": tmp_path,
            "alerts": demo_settings.alerts.model_copy(
                update={"rules": [AlertRule(name="retiring", kind="model_retirement")]}
            ),
        }
    )
    lens = Lens.from_settings(settings)
    lens.now = lambda: demo_end
    store = Store(settings.state_path)
    clock = FakeClock(demo_end.timestamp())
    report = Evaluator(settings, store, LensData(lens), clock=clock, cost_every_s=3600).evaluate()
    firing = sorted(t.subject for t in report.transitions if t.new == "firing")
    assert firing == ["contoso-oai-eastus/chat-gpt4o-mini", "contoso-oai-swedencentral/legacy-gpt4o-mini"]
    judged = {f.subject for f in report.findings["retiring"]}
    assert "contoso-ai-foundry/foundry-gpt41-mini" in judged  # the estate, not only the configured accounts
    clock.advance(60)  # judged again only after cost_every_s
    assert Evaluator(
        settings, store, LensData(lens), clock=clock, cost_every_s=3600, last_judged={"retiring": demo_end.timestamp()}
    ).evaluate().skipped == {"retiring": "model_retirement rules are judged every 3600 s"}


def test_an_unreadable_inventory_keeps_the_state(demo_settings: Settings) -> None:
    class Refusing:
        name = "refusing"

        def accounts(self) -> list[dict]:
            raise PermissionError("AuthorizationFailed")

    lens = Lens(demo_settings, None, None, None, estate=Refusing())  # type: ignore[arg-type]
    with pytest.raises(DataUnavailable, match="AuthorizationFailed"):
        LensData(lens).retirements()
