"""Credentials: no empty or short dashboard password starts, failed sign-ins are throttled, and App
Service mode on a reachable address says which restriction must protect it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests
from hardening_server import ROOT, free_port, run_cli, serving

from dashboard.auth import LoginThrottle
from dashboard.serve import appservice_warning
from queries.config import MIN_PASSWORD_LENGTH, ConfigError, load_settings, user_password_problems


def config_with(tmp: Path, extra: str) -> Path:
    path = tmp / "aoai-lens.toml"
    path.write_text((ROOT / "queries" / "demo" / "demo.toml").read_text() + extra)
    return path


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("password", "problem"),
    [("", "the password is empty"), ("   ", "the password is empty"), ("short-pw", "too short (8 characters")],
)
def test_an_empty_or_short_basic_password_refuses_to_load(tmp_path: Path, password: str, problem: str) -> None:
    config = config_with(tmp_path, '\n[dashboard]\nauth = "basic"\nbasic_user = "admin"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(config, environ={"AOAI_LENS_DASHBOARD__BASIC_PASSWORD": password})
    line = next(x for x in e.value.problems if "basic_password" in x)
    assert problem in line and "env AOAI_LENS_DASHBOARD__BASIC_PASSWORD" in line
    if password.strip():
        assert password not in line  # the password itself is never printed
    (tmp_path / "pw").write_text("\n")  # an empty _FILE is the same as an empty variable
    with pytest.raises(ConfigError, match="the password is empty"):
        load_settings(config, environ={"AOAI_LENS_DASHBOARD__BASIC_PASSWORD_FILE": str(tmp_path / "pw")})
    ok = load_settings(config, environ={"AOAI_LENS_DASHBOARD__BASIC_PASSWORD": "x" * MIN_PASSWORD_LENGTH})
    assert ok.dashboard.basic_password is not None


def test_check_config_names_the_user_whose_password_is_empty_or_short(tmp_path: Path) -> None:
    pw_file = tmp_path / "lee.pw"
    pw_file.write_text("tiny\n")
    config_with(
        tmp_path,
        '\n[dashboard]\nauth = "basic"\n'
        '[[dashboard.users]]\nname = "sam"\nteams = ["support"]\npassword_env = "SAM_PW"\n'
        f'[[dashboard.users]]\nname = "lee"\npassword_file = "{pw_file}"\n'
        '[[dashboard.users]]\nname = "kim"\npassword_env = "KIM_PW"\n',
    )
    env = {"SAM_PW": "", "KIM_PW": "a-long-enough-password", "AOAI_LENS_DATA_DIR": str(tmp_path / "d")}
    r = run_cli(["check-config"], env, tmp_path)
    assert r.returncode == 2
    assert "dashboard.users[0] (sam): the password is empty in env SAM_PW" in r.stdout
    assert (
        f"dashboard.users[1] (lee): the password is too short (4 characters; at least 12) in file {pw_file}" in r.stdout
    )
    assert "kim" not in r.stdout and "tiny" not in r.stdout + r.stderr
    settings = load_settings(tmp_path / "aoai-lens.toml", environ={})
    assert len(user_password_problems(settings, env)) == 2
    r = run_cli(["serve", "--port", "1"], env, tmp_path)
    assert r.returncode == 2 and "(sam): the password is empty" in r.stderr


def test_the_throttle_counts_failures_per_client_in_a_sliding_window() -> None:
    now = [1000.0]
    t = LoginThrottle(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert t.retry_after("10.0.0.1") is None
        t.failed("10.0.0.1")
        now[0] += 10
    assert t.retry_after("10.0.0.1") == 30  # the first failure (t=1000) leaves the window at t=1060; now 1030
    assert t.retry_after("10.0.0.2") is None  # another client is not affected
    now[0] = 1060.5
    assert t.retry_after("10.0.0.1") is None
    t.failed("10.0.0.1")
    assert t.retry_after("10.0.0.1") == 10  # failures at 1010, 1020 and 1060.5: the first leaves at 1070
    t.succeeded("10.0.0.1")
    assert t.retry_after("10.0.0.1") is None


def test_a_served_dashboard_throttles_failed_sign_ins(tmp_path: Path, demo_settings) -> None:  # type: ignore[no-untyped-def]
    config_with(tmp_path, '\n[dashboard]\nauth = "basic"\nbasic_user = "admin"\n')
    env = {
        "AOAI_LENS_DATA_DIR": str(tmp_path / "data"),
        "AOAI_LENS_DEMO__PATH": str(demo_settings.demo_path),
        "AOAI_LENS_SCHEDULER__ENABLED": "false",
        "AOAI_LENS_DASHBOARD__BASIC_PASSWORD": "the-right-password",
    }
    with serving([], env, tmp_path, free_port()) as srv:
        url = srv["url"] + "/_dash-layout"
        assert requests.get(url, timeout=30).status_code == 401  # no credentials: not a guess
        assert requests.get(url, headers=basic("admin", ""), timeout=30).status_code == 401  # the empty password
        codes = [requests.get(url, headers=basic("admin", f"guess-{i}"), timeout=30).status_code for i in range(12)]
        assert codes[:9] == [401] * 9 and codes[9:] == [429] * 3  # 10 failures in the window, then refused
        r = requests.get(url, headers=basic("admin", "the-right-password"), timeout=30)
        assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 60  # even the right one waits
        assert requests.get(srv["url"] + "/healthz", timeout=30).status_code in (200, 503)  # health is not throttled


def test_appservice_on_a_reachable_address_warns_with_the_restriction_to_set(tmp_path: Path) -> None:
    toml = '\n[dashboard]\nauth = "appservice"\nadmin_groups = ["aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"]\n'
    s = load_settings(config_with(tmp_path, toml), environ={})
    warning = appservice_warning(s, "0.0.0.0", 8050)
    assert warning is not None and "access restrictions" in warning and "X-MS-CLIENT-PRINCIPAL" in warning
    assert appservice_warning(s, "127.0.0.1", 8050) is None
    basic_settings = load_settings(
        config_with(tmp_path, '\n[dashboard]\nauth = "basic"\nbasic_user = "a"\n'),
        environ={"AOAI_LENS_DASHBOARD__BASIC_PASSWORD": "a-long-enough-password"},
    )
    assert appservice_warning(basic_settings, "0.0.0.0", 8050) is None
