"""Who may see what: auth modes, and a team-scoped user's data scoped in the data layer on every page."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from hardening_server import ROOT, everything_served, free_port, run_cli, serving

from dashboard.auth import Denied, authenticate
from queries.config import Settings, load_settings
from queries.scope import Scope, describe_callers
from queries.scoped import ScopedLens, whole

SUPPORT_GROUP = "11111111-2222-3333-4444-555555555555"
ADMIN_GROUP = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OTHER_GROUP = "99999999-8888-7777-6666-555555555555"
# what the support team must never see: the other teams, their features, their callers
OTHER_TEAMS = ["growth"]
OTHER_FEATURES = [
    "semantic-search",
    "doc-indexer",
    "rag-answers",
    "marketing-copy",
    "reasoning-agent",
    "insights-batch",
]
OTHER_CALLERS = [
    "3d8b2c74-ae5f-4093-94cb-7f2a9b5eac38",
    "4e9c3d85-bf60-41a4-a5dc-803bac6fbd49",
    "5fad4e96-c071-42b5-b6ed-914cbd70ce5a",
    "60be5fa7-d182-43c6-87fe-a25dde81df6b",
    "71cf60b8-e293-44d7-98bf-b36eef92e07c",
    "mi-semantic-search",
    "mi-marketing-copy",
]

APPSERVICE_TOML = f"""
[dashboard]
auth = "appservice"
admin_groups = ["{ADMIN_GROUP}"]

[dashboard.group_teams]
"{SUPPORT_GROUP}" = ["support"]
"""


def principal(groups: list[str], name: str = "ada@contoso.example") -> str:
    claims = [{"typ": "groups", "val": g} for g in groups] + [{"typ": "name", "val": name}]
    body = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(body).encode()).decode()


def config_with(tmp: Path, extra: str) -> Path:
    path = tmp / "aoai-lens.toml"
    path.write_text((ROOT / "queries" / "demo" / "demo.toml").read_text() + extra)
    return path


@pytest.fixture
def appservice_settings(tmp_path: Path, demo_settings: Settings) -> Settings:
    return load_settings(config_with(tmp_path, APPSERVICE_TOML), environ={})


# ---- authentication ---------------------------------------------------------------------------------


def test_appservice_maps_groups_to_teams_and_admins_see_everything(appservice_settings: Settings) -> None:
    user = authenticate(appservice_settings, {"X-MS-CLIENT-PRINCIPAL": principal([SUPPORT_GROUP.upper(), OTHER_GROUP])})
    assert user.scope == Scope.of(["support"]) and user.name == "ada@contoso.example"
    admin = authenticate(
        appservice_settings,
        {"X-MS-CLIENT-PRINCIPAL": principal([ADMIN_GROUP]), "X-MS-CLIENT-PRINCIPAL-NAME": "root@contoso.example"},
    )
    assert admin.scope.is_everything and admin.name == "root@contoso.example"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # not signed in
        ({"X-MS-CLIENT-PRINCIPAL": "%%% not base64 %%%"}, 401),
        ({"X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1, 2]").decode()}, 401),
        ({"X-MS-CLIENT-PRINCIPAL": principal([OTHER_GROUP])}, 403),  # signed in, in no mapped group
        ({"X-MS-CLIENT-PRINCIPAL-NAME": "ada@contoso.example"}, 401),  # a name alone proves nothing
    ],
)
def test_appservice_refuses(appservice_settings: Settings, headers: dict[str, str], status: int) -> None:
    with pytest.raises(Denied) as e:
        authenticate(appservice_settings, headers)
    assert e.value.status == status


def test_principal_header_is_not_trusted_unless_appservice_is_configured(tmp_path: Path) -> None:
    toml = '\n[dashboard]\nauth = "basic"\nbasic_user = "ops"\n'
    s = load_settings(config_with(tmp_path, toml), environ={"AOAI_LENS_DASHBOARD__BASIC_PASSWORD": "pw-for-test-only"})
    with pytest.raises(Denied) as e:
        authenticate(s, {"X-MS-CLIENT-PRINCIPAL": principal([ADMIN_GROUP])})
    assert e.value.status == 401
    ok = authenticate(s, {"Authorization": "Basic " + base64.b64encode(b"ops:pw-for-test-only").decode()})
    assert ok.name == "ops" and ok.scope.is_everything
    with pytest.raises(Denied):
        authenticate(s, {"Authorization": "Basic " + base64.b64encode(b"ops:wrong").decode()})


def test_basic_users_have_their_teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pw_file = tmp_path / "lead.pw"
    pw_file.write_text("lead-password-1\n")
    monkeypatch.setenv("SUPPORT_LEAD_PW", "support-password")
    toml = (
        '\n[dashboard]\nauth = "basic"\n'
        '[[dashboard.users]]\nname = "sam"\nteams = ["support"]\npassword_env = "SUPPORT_LEAD_PW"\n'
        f'[[dashboard.users]]\nname = "lee"\npassword_file = "{pw_file}"\n'
    )
    s = load_settings(config_with(tmp_path, toml), environ={})
    sam = authenticate(s, {"Authorization": "Basic " + base64.b64encode(b"sam:support-password").decode()})
    assert sam.scope == Scope.of(["support"])
    lee = authenticate(s, {"Authorization": "Basic " + base64.b64encode(b"lee:lead-password-1").decode()})
    assert lee.scope.is_everything
    with pytest.raises(Denied):  # sam's name with lee's password
        authenticate(s, {"Authorization": "Basic " + base64.b64encode(b"sam:lead-password-1").decode()})


def test_serve_refuses_a_public_bind_without_auth(tmp_path: Path, demo_settings: Settings) -> None:
    env = {"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(demo_settings.demo_path)}
    r = run_cli(["serve", "--host", "0.0.0.0", "--port", "1"], env, tmp_path)
    assert r.returncode == 2
    assert "refusing to bind 0.0.0.0" in r.stderr and "--no-auth" in r.stderr


def test_serve_refuses_basic_users_without_passwords(tmp_path: Path, demo_settings: Settings) -> None:
    config_with(
        tmp_path, '\n[dashboard]\nauth = "basic"\n[[dashboard.users]]\nname = "sam"\npassword_env = "NOPE_PW"\n'
    )
    env = {"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(demo_settings.demo_path)}
    r = run_cli(["serve", "--port", "1"], env, tmp_path)
    assert r.returncode == 2 and "no password in env NOPE_PW" in r.stderr


# ---- the data layer ---------------------------------------------------------------------------------


def test_allocation_is_scoped_in_the_cost_model(demo_settings: Settings) -> None:
    from queries.cost.report import allocate, statement
    from queries.lens import Lens

    lens = Lens.from_settings(demo_settings)
    end = lens.now().replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=3)
    whole = allocate(lens, demo_settings, start, end)
    support = Scope.of(["support"])
    mine = allocate(lens, demo_settings, start, end, scope=support)
    via_lens = allocate(ScopedLens(lens, support, demo_settings.attribution), demo_settings, start, end)
    assert set(mine.rows["Team"]) == {"support"} and set(mine.rows["Category"]) == {"allocated"}
    # the meter rows too
    assert set(mine.ledger["Team"]) == {"support"} and set(mine.ledger["Category"]) == {"allocated"}
    assert mine.ptu.empty
    assert mine.total == pytest.approx(float(mine.rows.loc[mine.rows["Priced"], "Cost"].sum()))
    expected = whole.rows[(whole.rows["Team"] == "support") & (whole.rows["Category"] == "allocated")]
    assert mine.total == pytest.approx(float(expected.loc[expected["Priced"], "Cost"].sum()))
    assert 0 < mine.total < whole.total
    assert via_lens.total == pytest.approx(mine.total)
    st = statement(mine, "feature")
    assert set(st["Feature"]) - {"unallocated", "probes", "ptu idle", "unpriced", "total"} <= {
        "support-chat",
        "ticket-triage",
    }


def test_caller_level_catalogue_results_keep_the_scopes_callers(demo_settings: Settings) -> None:
    from queries.lens import Lens

    lens = ScopedLens(Lens.from_settings(demo_settings), Scope.of(["support"]), demo_settings.attribution)
    r = lens.run("caller_usage_hourly", since=timedelta(days=2))
    assert r.status == "ok" and not r.frame.empty
    teams = Scope.of(["support"]).caller_teams(r.frame, demo_settings.attribution)
    assert set(teams) == {"support"}
    assert not set(r.frame["ObjectId"]) & set(OTHER_CALLERS)
    unscoped = whole(lens).run("caller_usage_hourly", since=timedelta(days=2))
    assert len(unscoped.frame) > len(r.frame)


def test_object_ids_come_with_the_rules_display_name_and_feature(demo_settings: Settings) -> None:
    import pandas as pd

    f = pd.DataFrame(
        {
            "Deployment": ["chat-gpt4o", "chat-gpt4o", "chat-gpt4o"],
            "ObjectId": ["1b6f0a52-8c3d-4e71-b2a9-5d0e7f3c8a16", "", "0000aaaa-0000-0000-0000-000000000000"],
            "CallerIP": ["10.0.0.***", "10.20.2.***", "10.9.9.***"],
        }
    )
    out = describe_callers(f, demo_settings.attribution)
    assert list(out.columns) == ["Deployment", "ObjectId", "Caller", "Feature", "CallerIP"]
    assert list(out["Caller"]) == ["mi-support-chat", "triage-worker (API key)", "(no rule)"]
    assert list(out["Feature"]) == ["support-chat", "ticket-triage", ""]


# ---- end to end: a served dashboard behind App Service authentication ------------------------------------


def plant_alerts_about_every_team(path: Path) -> None:
    """Alert history naming other teams (budget and burn-rate findings, as the demo's rules produce), so
    the Alerts page and its callbacks have something to leak."""
    import time

    from alerts.store import Store, Transition

    store = Store(path)
    now = time.time() - 600
    for i, (rule, subject, reason) in enumerate(
        [
            ("budget-pace", "team:support", "team support: $10.00 month to date"),
            ("budget-pace", "team:growth", "team growth: $29.64 month to date, forecast $1,078.74"),
            ("budget-pace", "feature:marketing-copy", "feature marketing-copy: over pace"),
            ("spend-anomaly", "feature:semantic-search", "feature semantic-search: 4.0x"),
        ]
    ):
        t = store.apply(Transition(rule, subject, "ok", "firing", now + i, reason, 1.0))
        store.add_delivery(t.id, "ops", now + i, True, None)


def test_served_pages_and_downloads_are_scoped_to_the_users_teams(tmp_path: Path, demo_settings: Settings) -> None:
    config_with(tmp_path, APPSERVICE_TOML)
    env = {
        "AOAI_LENS_DATA_DIR": str(tmp_path / "data"),
        "AOAI_LENS_DEMO__PATH": str(demo_settings.demo_path),
        "AOAI_LENS_SCHEDULER__ENABLED": "false",
    }
    plant_alerts_about_every_team(tmp_path / "data" / "state.sqlite")
    with serving([], env, tmp_path, free_port()) as srv:
        url = srv["url"]
        assert requests.get(url + "/", timeout=30).status_code == 401
        assert requests.get(url + "/_dash-layout", timeout=30).status_code == 401
        hz = requests.get(url + "/healthz", timeout=30)
        assert hz.status_code == 200 and hz.json()["status"] == "ok"
        forged = requests.get(url + "/", headers={"X-MS-CLIENT-PRINCIPAL": principal([OTHER_GROUP])}, timeout=30)
        assert forged.status_code == 403

        support = requests.Session()
        support.headers["X-MS-CLIENT-PRINCIPAL"] = principal([SUPPORT_GROUP])
        seen = everything_served(support, url)
        text = "\n".join(seen.values())
        assert "support-chat" in text  # their own feature is there ...
        leaked = [w for w in OTHER_FEATURES + OTHER_CALLERS + OTHER_TEAMS if re.search(rf"\b{re.escape(w)}\b", text)]
        assert not leaked, f"a support user was shown: {leaked}"  # ... nobody else's

        admin = requests.Session()
        admin.headers["X-MS-CLIENT-PRINCIPAL"] = principal([ADMIN_GROUP])
        text = "\n".join(everything_served(admin, url).values())
        assert all(w in text for w in ("marketing-copy", "semantic-search", "growth"))
