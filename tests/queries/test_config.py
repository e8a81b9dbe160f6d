"""Settings: one typed object, environment overrides, secrets only from the environment, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from queries.config import DEMO_CONFIG, ConfigError, load_settings

GOOD_AZURE = """
[source]
kind = "azure"
workspace_id = "11111111-2222-3333-4444-555555555555"
subscription_id = "3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28"
metrics_region = "eastus"
resource_ids = ["/subscriptions/3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "aoai-lens.toml"
    p.write_text(text)
    return p


def test_no_file_means_demo_mode(clean_env: Path) -> None:
    s = load_settings(environ={})
    assert s.is_demo
    assert s.demo_path == Path(".aoai-lens/demo.duckdb")
    assert len(s.attribution) >= 6 and s.probes.targets  # the bundled demo config


def test_a_local_file_is_read_and_the_environment_overrides_it(clean_env: Path) -> None:
    write(clean_env, GOOD_AZURE)
    s = load_settings(environ={})
    assert s.source.kind == "azure" and s.source.metrics_region == "eastus"
    s2 = load_settings(
        environ={"AOAI_LENS_SOURCE__METRICS_REGION": "swedencentral", "AOAI_LENS_DASHBOARD__PORT": "9000"}
    )
    assert s2.source.metrics_region == "swedencentral" and s2.dashboard.port == 9000


def test_config_env_var_names_the_file(clean_env: Path) -> None:
    other = clean_env / "elsewhere.toml"
    other.write_text("[dashboard]\nport = 8123\n")
    assert load_settings(environ={"AOAI_LENS_CONFIG": str(other)}).dashboard.port == 8123
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"AOAI_LENS_CONFIG": str(clean_env / "missing.toml")})
    assert "missing.toml" in str(e.value)


def test_every_problem_is_one_location_line(clean_env: Path) -> None:
    write(clean_env, '[source]\nkind = "dmeo"\ncolour = "blue"\n\n[dashboard]\nport = 70000\n')
    path = "aoai-lens.toml"
    with pytest.raises(ConfigError) as e:
        load_settings(environ={})
    lines = e.value.problems
    assert f"{path}:2 source.kind: Input should be 'demo', 'azure' or 'adx' (got 'dmeo')" in lines
    assert f"{path}:3 source.colour: unknown setting" in lines
    assert any(line.startswith(f"{path}:6 dashboard.port:") for line in lines)
    assert len(lines) == 3


def test_azure_mode_says_what_it_needs(clean_env: Path) -> None:
    write(clean_env, '[source]\nkind = "azure"\nworkspace_id = "not-a-guid"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(environ={})
    text = str(e.value)
    assert "source.workspace_id: must be a GUID" in text


def test_secrets_are_refused_in_the_file_and_read_from_env_or_file(clean_env: Path) -> None:
    write(clean_env, '[probes]\napi_key = "planted-secret-value-123"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(environ={})
    assert "probes.api_key: secrets are not read from the file" in str(e.value)
    assert "planted-secret-value-123" not in str(e.value)
    write(clean_env, "")
    s = load_settings(environ={"AOAI_LENS_PROBES__API_KEY": "k-from-env"})
    assert s.probes.api_key is not None and s.probes.api_key.get_secret_value() == "k-from-env"
    secret_file = clean_env / "key.txt"
    secret_file.write_text("k-from-file\n")
    s = load_settings(environ={"AOAI_LENS_PROBES__API_KEY_FILE": str(secret_file)})
    assert s.probes.api_key is not None and s.probes.api_key.get_secret_value() == "k-from-file"
    assert "k-from-file" not in repr(s)


def test_the_bundled_demo_config_and_the_example_are_valid(clean_env: Path) -> None:
    load_settings(DEMO_CONFIG, environ={})
    example = Path(__file__).parents[2] / "aoai-lens.example.toml"
    s = load_settings(example, environ={})
    assert s.source.kind == "azure"


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashboard.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AOAI_LENS_")}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])
    env.update(extra or {})
    return env


def test_check_config_exits_2_naming_the_location(tmp_path: Path) -> None:
    write(tmp_path, '[alerts]\nevaluate_interval_s = 1\n\n[[attribution]]\nfeature = "f"\nteam = "t"\n')
    r = run_cli("check-config", env=_env(), cwd=tmp_path)
    assert r.returncode == 2
    assert "aoai-lens.toml:2 alerts.evaluate_interval_s: Input should be greater than or equal to 10" in r.stdout
    assert (
        "aoai-lens.toml:4 attribution[0]: a rule needs at least one of object_id, ip_range, deployment_pattern"
        in r.stdout
    )


def test_check_config_ok_in_demo_mode(tmp_path: Path) -> None:
    r = run_cli("check-config", env=_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout and "source: demo" in r.stdout


def test_every_subcommand_has_help(tmp_path: Path) -> None:
    from dashboard.cli import build_parser

    parser = build_parser()
    commands = [
        ["serve"],
        ["demo", "seed"],
        ["query"],
        ["kql"],
        ["cost", "report"],
        ["prices", "refresh"],
        ["prices", "show"],
        ["probe", "run"],
        ["alerts", "evaluate"],
        ["alerts", "test"],
        ["scheduler"],
        ["simulator"],
        ["check-config"],
    ]
    for cmd in commands:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([*cmd, "--help"])
        assert e.value.code == 0


def test_serve_refuses_a_public_address_without_auth(tmp_path: Path) -> None:
    r = run_cli("serve", "--host", "0.0.0.0", env=_env(), cwd=tmp_path)
    assert r.returncode == 2
    assert "refusing to bind 0.0.0.0" in r.stderr


def test_inventory_settings_are_checked_with_their_line(clean_env: Path) -> None:
    write(
        clean_env,
        '[inventory]\nsubscriptions = ["not-a-guid"]\n'
        'destinations = ["/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/app"]\n'
        "retirement_days = 0\n",
    )
    with pytest.raises(ConfigError) as e:
        load_settings(environ={})
    lines = e.value.problems
    assert any(x.startswith("aoai-lens.toml:2 inventory.subscriptions: subscriptions must be GUIDs") for x in lines)
    assert any(
        x.startswith("aoai-lens.toml:3 inventory.destinations:") and "not the resource id of a Log Analytics" in x
        for x in lines
    )
    assert any(x.startswith("aoai-lens.toml:4 inventory.retirement_days:") for x in lines)
    write(clean_env, '[[alerts.rules]]\nname = "retiring"\nkind = "model_retirement"\n')
    assert load_settings(environ={}).alerts.rules[0].threshold == 90
