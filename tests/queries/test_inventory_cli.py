"""`aoai-lens inventory` on the demo: the flags in table, CSV and JSON; an old workspace says what to do."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fakes.doubles import empty_workspace

from dashboard.cli import main
from queries.demo import world


@pytest.fixture
def demo_env(clean_env: Path, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_workspace))
    return clean_env


def test_inventory_json_csv_and_table(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "ok" and doc["source"] == "embedded"
    assert {a["Account"] for a in doc["accounts"]} == {a.name for a in world.ACCOUNTS}
    assert {(f["Account"], f["Deployment"], f["Flag"]) for f in doc["flags"]} >= {
        ("contoso-oai-batch", "", "diagnostics_incomplete"),
        ("contoso-oai-swedencentral", "", "public_network_access"),
        ("contoso-oai-swedencentral", "legacy-gpt4o-mini", "model_retiring"),
    }
    assert all(f["Action"] for f in doc["flags"])
    assert len(doc["diagnostic_settings"]) == 5  # one per account, and the eastus archive to storage

    assert main(["inventory", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    by = {(r["Account"], r["Deployment"]): r for r in rows}
    assert len(rows) == len(world.DEPLOYMENTS) + len(world.ESTATE_DEPLOYMENTS)
    assert by[("contoso-oai-swedencentral", "legacy-gpt4o-mini")]["Flags"] == (
        "public_network_access key_auth_enabled model_retiring"
    )
    assert by[("contoso-oai-batch", "batch-gpt4o")]["Flags"] == "diagnostics_incomplete"
    assert by[("contoso-ai-foundry", "foundry-gpt41-mini")]["Flags"] == ""
    assert by[("contoso-ai-foundry", "foundry-gpt41-mini")]["Kind"] == "AIServices"

    assert main(["inventory"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("Flags (6)\n") and "Diagnostic settings (5)" in table


def test_inventory_on_an_old_workspace_says_to_seed_again(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(empty_workspace(clean_env / "old.duckdb")))
    assert main(["inventory"]) == 1
    err = capsys.readouterr().err
    assert "has no MgmtAccounts" in err and "aoai-lens demo seed" in err
