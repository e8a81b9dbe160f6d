"""The scoped views fail closed: every public name of the Lens and of the alerts store is decided
(scoped, shared or refused), every scoped answer holds no row of another team, and a name nobody decided
is refused. Adding a method to `Lens` or `Store` fails `test_every_public_name_is_decided` until it is
put on one of the view's lists."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from alerts.rules import parse_subject
from alerts.scoped import ScopedStore
from alerts.store import ProbeResult, Store, Transition
from queries import catalogue
from queries.config import AlertRule, Settings
from queries.lens import Lens
from queries.scope import Scope
from queries.scoped import ScopedLens, ScopeError, whole

SUPPORT = Scope.of(["support"])
SUPPORT_FEATURES = {"support-chat", "ticket-triage"}
OTHER_TEAMS = {"search", "growth"}


def public_names(cls: type) -> set[str]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")}
    return names


def store_public_names(store: Store) -> set[str]:
    return public_names(Store) | {n for n in vars(store) if not n.startswith("_")}


def test_every_public_name_is_decided() -> None:
    lens_names = public_names(Lens)
    decided = ScopedLens.SCOPED | ScopedLens.SHARED | ScopedLens.REFUSED
    assert lens_names - decided == set(), "decide the scope of these Lens names in queries/scoped.py"
    assert not ScopedLens.SCOPED & ScopedLens.REFUSED and not ScopedLens.SHARED & ScopedLens.REFUSED


def test_every_store_name_is_decided(tmp_path: Path) -> None:
    names = store_public_names(Store(tmp_path / "s.sqlite"))
    decided = ScopedStore.SCOPED | ScopedStore.SHARED | ScopedStore.REFUSED
    assert names - decided == set(), "decide the scope of these Store names in alerts/scoped.py"


@pytest.fixture(scope="module")
def lens(demo_settings: Settings) -> Lens:
    return Lens.from_settings(demo_settings)


@pytest.fixture(scope="module")
def scoped(lens: Lens, demo_settings: Settings) -> ScopedLens:
    return ScopedLens(lens, SUPPORT, demo_settings.attribution)


def _other_teams_rows(frame: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Rows that belong to another team: by Team, by Feature, or by a caller another team's rule claims."""
    bad = pd.Series(False, index=frame.index)
    if "Team" in frame.columns:
        bad |= ~frame["Team"].astype(str).isin(SUPPORT.teams or ())
    if "Feature" in frame.columns:
        bad |= frame["Feature"].astype(str).isin({r.feature for r in settings.attribution} - SUPPORT_FEATURES)
    if "ObjectId" in frame.columns or "CallerIP" in frame.columns:
        bad |= ~Scope.everything().caller_teams(frame, settings.attribution).isin(SUPPORT.teams or ())
    return frame[bad]


def test_refused_names_raise(scoped: ScopedLens) -> None:
    for name in [*sorted(ScopedLens.REFUSED), "not_a_method", "unscoped"]:
        with pytest.raises(ScopeError):
            getattr(scoped, name)


def test_scoped_names_hold_no_other_team(scoped: ScopedLens, lens: Lens, demo_settings: Settings) -> None:
    # every catalogue query through the view: no row of another team
    names = sorted(catalogue.load_catalogue())
    results = scoped.run_many([(n, {"since": timedelta(days=7)}) for n in names])
    unscoped = {r.name: r for r in lens.run_many([(n, {"since": timedelta(days=7)}) for n in names])}
    hid_something = False
    for r in results:
        assert r.status != "failed", (r.name, r.notice)
        leaked = _other_teams_rows(r.frame, demo_settings)
        assert leaked.empty, (r.name, leaked.head())
        hid_something |= len(r.frame) < len(unscoped[r.name].frame)
    assert hid_something  # the check above ran on data another team has, not on empty answers
    one = scoped.run("caller_usage_hourly", since=timedelta(days=2))
    assert not one.frame.empty and _other_teams_rows(one.frame, demo_settings).empty
    # settings: the scope's budgets and rules only
    s = scoped.settings
    assert {b.name for b in s.budgets} <= SUPPORT_FEATURES | {"support"} and s.budgets
    assert {r.team for r in s.attribution} == {"support"}


def test_shared_names_are_infrastructure(scoped: ScopedLens) -> None:
    """What every signed-in user sees is per deployment or region: no team, feature or caller column."""
    answers = [
        scoped.deployments().frame,
        scoped.usages().frame,
        scoped.metrics(["ProcessedPromptTokens"], since=timedelta(days=1), split_by=["ModelDeploymentName"]).frame,
    ]
    for frame in answers:
        assert not {"Team", "Feature", "ObjectId", "CallerIP", "CostCenter"} & set(frame.columns)
    assert not answers[0].empty
    _spec, tr, kql = scoped.render("requests_by_status", since=timedelta(hours=1))
    assert "AzureDiagnostics" in kql and tr.span == timedelta(hours=1)
    assert scoped.scope == SUPPORT and isinstance(scoped.now(), type(scoped.time_range().end))
    assert scoped.scope_resource_id


def test_a_forged_team_or_feature_parameter_is_refused(scoped: ScopedLens) -> None:
    for params in ({"team": "growth"}, {"features": ["support-chat", "marketing-copy"]}):
        with pytest.raises(ScopeError, match="outside your teams"):
            scoped.run("caller_usage_hourly", since=timedelta(days=1), params=params)


def test_the_bill_is_whole_estate_money_refused_to_a_team(scoped: ScopedLens, lens: Lens) -> None:
    """Azure bills accounts, not teams: no team's share of a bill line can be cut, so a team-scoped view
    refuses the bill and the reconciliation built on it, while the whole Lens answers."""
    from queries.billing import reconciliation

    end = lens.now()
    with pytest.raises(ScopeError, match="'bill' is not offered"):
        scoped.bill(end - timedelta(days=7), end)
    with pytest.raises(ScopeError):
        reconciliation(scoped.settings, scoped, end - timedelta(days=7), end)
    answer = lens.bill(end - timedelta(days=7), end)
    assert not answer.empty and list(answer.columns) == ["Day", "ResourceId", "MeterName", "Cost"]


def test_whole_is_the_cost_models_way_through(scoped: ScopedLens, lens: Lens) -> None:
    assert whole(scoped) is lens and whole(lens) is lens
    assert not any(n == "whole" or n == "_whole" for n in public_names(ScopedLens) if not n.isupper())


# ---- the alerts store ---------------------------------------------------------------------------------


@pytest.fixture
def populated(tmp_path: Path, demo_settings: Settings) -> tuple[Store, Settings]:
    settings = demo_settings.model_copy(
        update={
            "alerts": demo_settings.alerts.model_copy(
                update={
                    "rules": [
                        AlertRule(name="pace", kind="budget_pace", threshold=100),
                        AlertRule(name="growth-burn", kind="burn_rate", threshold=2, team="growth"),
                        AlertRule(name="throttle", kind="rate_429", threshold=5),
                        AlertRule(name="bill", kind="billing_drift", threshold=5),  # whole-estate money
                    ]
                }
            )
        }
    )
    store = Store(tmp_path / "state.sqlite")
    now = time.time()
    subjects = [
        ("pace", "team:support"),
        ("pace", "team:growth"),
        ("pace", "feature:marketing-copy"),
        ("pace", "feature:support-chat"),
        ("pace", "feature:no-such-feature"),
        ("pace", "growth"),  # a bare name is infrastructure to the parser: it must not hide or reveal by string
        ("growth-burn", "team:growth"),
        ("throttle", "chat-gpt4o"),
        ("bill", "contoso-oai-eastus/gpt-4o/cached_input"),  # infrastructure to the parser, hidden by its rule
    ]
    for i, (rule, subject) in enumerate(subjects):
        t = store.apply(Transition(rule, subject, "ok", "firing", now + i, f"{subject} over", 1.0))
        store.add_delivery(t.id, "ops", now + i, True, None)
    store.add_probe(
        ProbeResult(ts=now, deployment="chat-gpt4o", kind="chat", auth="entra", klass="ok", latency_ms=100.0)
    )
    return store, settings


def test_scoped_store_shows_only_the_scopes_subjects(populated: tuple[Store, Settings]) -> None:
    store, settings = populated
    view = ScopedStore(store, SUPPORT, SUPPORT.settings(settings))
    seen = {(t.rule, t.subject) for t in view.transitions()}
    assert seen == {
        ("pace", "team:support"),
        ("pace", "feature:support-chat"),
        ("pace", "growth"),
        ("throttle", "chat-gpt4o"),
    }
    assert set(view.states()) == seen
    assert set(zip(view.current_states()["rule"], view.current_states()["subject"], strict=True)) == seen
    visible_ids = {t.id for t in view.transitions()}
    assert {d["transition_id"] for d in view.deliveries()} == visible_ids
    for kind_name in seen:
        kind, name = parse_subject(kind_name[1])
        assert kind == "infra" or name in {"support", *SUPPORT_FEATURES}
    # shared: per deployment and per job
    assert len(view.probes()) == len(store.probes()) == 1
    assert view.last_probes(5).equals(store.last_probes(5))
    assert view.job_counts() == store.job_counts()
    for name in [*sorted(ScopedStore.REFUSED), "something_new"]:
        with pytest.raises(ScopeError):
            getattr(view, name)


def test_subjects_are_parsed_not_matched_as_strings() -> None:
    assert parse_subject("team:growth") == ("team", "growth")
    assert parse_subject("feature:copy:v2") == ("feature", "copy:v2")
    assert parse_subject("deployment-with:colon") == ("infra", "deployment-with:colon")
    assert parse_subject("growth") == ("infra", "growth")


def test_the_estate_inventory_is_refused_to_a_team(scoped: ScopedLens, lens: Lens) -> None:
    """Every account across the subscriptions, its network exposure and key auth: an estate owner's view."""
    for name in ("inventory", "estate"):
        with pytest.raises(ScopeError, match=name):
            getattr(scoped, name)
    assert whole(scoped).inventory().status == "ok"  # the whole Lens behind the view still has it


def test_waste_findings_hold_only_the_scopes_callers(scoped: ScopedLens, lens: Lens, demo_settings: Settings) -> None:
    """Waste findings with callers are the scope's own (the catalogue answers through the view, the ledger
    narrowed); idle PTU capacity is nobody's team and not shown; the $ is the scope's part of the whole."""
    from queries import waste

    end = lens.now()
    mine = {f.key: f for f in waste.report(scoped, end - timedelta(days=7), end).findings}
    every = {f.key: f for f in waste.report(lens, end - timedelta(days=7), end).findings}
    for key, f in mine.items():
        assert _other_teams_rows(f.evidence, demo_settings).empty, (key, f.evidence.head())
        assert f.usd <= every[key].usd + 1e-9, key
    assert mine["ptu_idle"].evidence.empty and mine["ptu_idle"].usd == 0 and every["ptu_idle"].usd > 0
    assert any("not shown to a team-scoped view" in n for n in mine["ptu_idle"].notes)
    # support-chat's short calls on gpt-4o are theirs to see; search's streams and growth's capped copy are not
    assert set(mine["short_calls"].evidence["Feature"]) == {"support-chat"} and mine["short_calls"].usd > 0
    assert mine["streams_without_usage"].evidence.empty and not every["streams_without_usage"].evidence.empty
    assert mine["completion_cap"].evidence.empty and not every["completion_cap"].evidence.empty
    assert mine["embedding_spikes"].evidence.empty and not every["embedding_spikes"].evidence.empty
