"""`aoai-lens query` and `aoai-lens kql` in demo mode, and the catalogue documentation kept honest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fakes import FakeCredential, LogAnalyticsServer, ManagementServer, MetricsServer

from dashboard.cli import main
from queries import catalogue
from queries.demo import world
from queries.sources import azure as azure_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_env(clean_env: Path, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_workspace))
    return clean_env


def test_query_without_a_name_lists_the_catalogue(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query"]) == 0
    out = capsys.readouterr().out
    for name, spec in catalogue.load_catalogue().items():
        assert re.search(rf"^{name}\s+{re.escape(spec.title)}$", out, re.MULTILINE)


def test_query_prints_table_csv_and_json(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "summary_by_deployment", "--since", "7d"]) == 0
    table = capsys.readouterr().out
    assert "Deployment" in table.splitlines()[0] and "chat-gpt4o" in table
    assert main(["query", "throttling_by_deployment", "--since", "7d", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Deployment,OperationName,Requests,Throttled,ThrottledPct" and len(lines) > 2
    args = ["query", "top_callers_before_429", "--since", "7d", "--param", "deployments=chat-gpt4o", "--format", "json"]
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and {r["Deployment"] for r in rows} == {"chat-gpt4o"}
    assert set(rows[0]) == set(catalogue.get("top_callers_before_429").columns)
    assert rows[0]["BurstStart"].endswith("Z")


def test_query_with_an_explicit_range(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "activity_by_resource", "--start", "2001-01-01T00:00Z", "--end", "2001-01-02T00:00Z"]) == 0
    assert capsys.readouterr().out.strip() == "(no rows)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "no_such_query"], "no query named 'no_such_query'"),
        (["query", "summary_by_deployment", "--param", "deployment=x"], "unknown parameter(s): deployment"),
        (["query", "summary_by_deployment", "--param", "deployments=x' or 1==1 or '"], "deployments:"),
        (["query", "summary_by_deployment", "--param", "deployments=gpt-9"], "not one of the known values"),
        (["query", "top_callers_before_429", "--param", "minutes=five"], "not a whole number"),
        (["query", "summary_by_deployment", "--since", "7 days"], "--since"),
        (["query", "summary_by_deployment", "--since", "1d", "--start", "2025-01-01"], "either --since"),
        (["query", "summary_by_deployment", "--start", "yesterday"], "ISO 8601"),
        (["kql", "no_such_query"], "no query named"),
        (["kql", "summary_by_deployment", "--param", "deployments=a|b"], "deployments:"),
    ],
)
def test_bad_usage_exits_2(demo_env: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_kql_prints_the_query_as_sent(demo_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kql", "latency_by_deployment", "--since", "6h", "--param", "deployments=chat-gpt4o, rag-gpt41"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("let _start = datetime(") and lines[2] == "let _bin = 1m;"
    assert lines[3] == "let _deployments = dynamic([@'chat-gpt4o', @'rag-gpt41']);"
    assert out.endswith(catalogue.get("latency_by_deployment").body + "\n")


def test_demo_mode_without_a_workspace_says_how_to_build_one(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "empty"))
    assert main(["query", "summary_by_deployment"]) == 1
    assert "aoai-lens demo seed" in capsys.readouterr().err


def test_failed_and_partial_queries_against_azure(
    clean_env: Path, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(azure_module, "default_credential", FakeCredential)
    with (
        LogAnalyticsServer(demo_workspace) as la,
        MetricsServer(demo_workspace) as ms,
        ManagementServer(demo_workspace) as arm,
    ):
        ids = ",".join(f'"{r.arm_id}"' for r in world.RESOURCES)
        for key, value in {
            "DATA_DIR": str(clean_env / "data"),
            "SOURCE__KIND": "azure",
            "SOURCE__WORKSPACE_ID": world.TENANT_ID,
            "SOURCE__SUBSCRIPTION_ID": world.SUBSCRIPTION_ID,
            "SOURCE__METRICS_REGION": "eastus",
            "SOURCE__RESOURCE_IDS": f"[{ids}]",
            "SOURCE__LOGS_ENDPOINT": la.url,
            "SOURCE__METRICS_ENDPOINT": ms.url,
            "SOURCE__MANAGEMENT_ENDPOINT": arm.url,
        }.items():
            monkeypatch.setenv(f"AOAI_LENS_{key}", value)
        la.bad_request("Failed to resolve table 'AzureDiagnostic'")
        assert main(["query", "volume_by_api_version", "--since", "7d"]) == 1
        captured = capsys.readouterr()
        assert "Failed to resolve table 'AzureDiagnostic'" in captured.err
        assert "let _start = datetime(" in captured.err and "portal.azure.com" in captured.err
        assert captured.out == ""
        la.partial_error("one shard timed out")
        assert main(["query", "volume_by_api_version", "--since", "7d", "--format", "csv"]) == 0
        captured = capsys.readouterr()
        assert captured.out.startswith("ApiVersion,OperationName,Requests,Errors") and "2024-10-21" in captured.out
        assert "partial answer" in captured.err and "one shard timed out" in captured.err
