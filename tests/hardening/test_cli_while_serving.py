"""Files, not locks: every documented CLI command works while `serve` (with its scheduler: ingestion,
ledger, probes, alerts) runs on the same data directory, and a `cost report` during a ledger rebuild
answers the same money without a lock error."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import requests
from fakes.azurite_archive import Azurite
from fakes.retail_server import RetailServer
from hardening_server import CLI, clean_env, free_port, run_cli, serving

from dashboard.cli import build_parser
from queries.config import Settings

# long-running commands (they are the processes the others run beside) and what each leaf command
# is run with here; a new command must be added here (the test below fails until it is)
LONG_RUNNING = {"serve", "scheduler", "simulator"}
ARGS: dict[str, list[str]] = {
    "demo seed": ["--days", "1", "--requests-per-day", "50", "--path", "{tmp}/other.duckdb"],
    "query": ["requests_by_status", "--since", "1d", "--format", "csv"],
    "kql": ["cost_usage_by_caller"],
    "cost report": ["--format", "csv"],
    "cost export": ["--month", "{month}", "--format", "focus-parquet", "--to", "{tmp}/exports"],
    "cost reconcile": ["--format", "csv"],
    "cost ledger status": [],
    "cost ledger build": ["--since", "2d"],
    "cost ledger rebuild": ["--month", "{month}", "--reason", "test"],
    "prices refresh": ["--endpoint", "{retail}"],
    "prices show": ["gpt-4o"],
    "probe run": ["--once"],
    "alerts evaluate": ["--once"],
    "alerts test": ["ops"],
    "check-config": [],
    "explain-429": ["--since", "24h"],
    "inventory": ["--format", "json"],
    "import archive": ["--account-url", "{azurite}", "--since", "2d"],
}
LOCK_WORDS = re.compile(r"Conflicting lock|could not set lock|database is locked|IO Error", re.I)


def leaf_commands() -> list[str]:
    out: list[str] = []

    def walk(parser: object, prefix: str) -> None:
        for action in getattr(parser, "_actions", []):
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                for name, sub in choices.items():
                    full = f"{prefix} {name}".strip()
                    if any(isinstance(getattr(a, "choices", None), dict) for a in sub._actions):
                        walk(sub, full)
                    else:
                        out.append(full)

    walk(build_parser(), "")
    return out


def test_every_leaf_command_is_decided_here() -> None:
    assert set(leaf_commands()) == set(ARGS) | LONG_RUNNING


def test_every_documented_command_works_while_serve_runs(tmp_path: Path, demo_settings: Settings) -> None:
    workspace = tmp_path / "demo.duckdb"
    shutil.copy(demo_settings.demo_path, workspace)
    (tmp_path / "hook.url").write_text("json://127.0.0.1:9/hook\n")  # a channel that refuses: `alerts test` says so
    (tmp_path / "aoai-lens.toml").write_text(
        (Path(__file__).resolve().parents[2] / "queries" / "demo" / "demo.toml").read_text()
        + f'\n[[alerts.channels]]\nname = "ops"\nurl_file = "{tmp_path / "hook.url"}"\n'
    )
    env = {"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(workspace)}
    month = datetime.now(UTC).strftime("%Y-%m")
    with (
        RetailServer() as retail,
        Azurite(tmp_path / "azurite") as azurite,
        serving([], env, tmp_path, free_port()) as srv,
    ):
        archived_blob(azurite)
        (tmp_path / "cs.txt").write_text(azurite.connection_string)
        cli_env = {**env, "AOAI_LENS_ARCHIVE__CONNECTION_STRING_FILE": str(tmp_path / "cs.txt")}
        # the scheduler has started its jobs (ingestion, ledger, probes) in the served process
        deadline = time.monotonic() + 60
        while not (tmp_path / "data" / "state.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        failures = []
        for command, args in ARGS.items():
            argv = [
                *command.split(),
                *(a.format(tmp=tmp_path, month=month, retail=retail.url, azurite=azurite.account_url) for a in args),
            ]
            r = run_cli(argv, cli_env if command == "import archive" else env, tmp_path, timeout=300)
            text = r.stdout + r.stderr
            ok_codes = {0, 1} if command == "alerts test" else {0}  # the refused channel is a delivery failure
            if r.returncode not in ok_codes or LOCK_WORDS.search(text) or "Traceback" in text:
                failures.append(f"{' '.join(argv)} -> exit {r.returncode}: {text[-800:]}")
        assert not failures, "\n\n".join(failures)
        assert requests.get(srv["url"] + "/healthz", timeout=30).status_code in (200, 503)
    assert "Traceback" not in srv["stderr"], srv["stderr"][-3000:]


def archived_blob(azurite: Azurite) -> None:
    """One hour of one account's RequestResponse archive, as a diagnostic setting writes it."""
    import json

    from azure.storage.blob import BlobServiceClient

    from queries.archive_layout import blob_name, container_for
    from queries.demo import world

    now = datetime.now(UTC)
    res = world.RESOURCES[0]
    record = {
        "time": now.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "resourceId": res.resource_id.upper(),
        "category": "RequestResponse",
        "operationName": "ChatCompletions_Create",
        "resultSignature": "200",
        "durationMs": 100,
        "properties": {"modelDeploymentName": "chat-gpt4o"},
    }
    cc = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        container_for("RequestResponse")
    )
    cc.create_container()
    blob = cc.get_blob_client(blob_name(res.resource_id, now))
    blob.create_append_blob()
    blob.append_block(json.dumps(record).encode() + b"\n")


def _report_total(env: dict[str, str], cwd: Path) -> float:
    r = run_cli(["cost", "report", "--month", "2026-11", "--format", "csv"], env, cwd, timeout=300)
    assert r.returncode == 0 and not LOCK_WORDS.search(r.stderr), r.stderr[-2000:]
    st = pd.read_csv(io.StringIO(r.stdout))
    return float(st.loc[st["Kind"] == "total", "Cost"].iloc[0])


@pytest.mark.slow
def test_a_cost_report_during_a_rebuild_answers_the_same_money(tmp_path: Path) -> None:
    """A month wholly in the past (a workspace seeded to end on 2026-11-20), so its hours are all closed
    and every answer must be the same, to the cent, whether it is read before or during a rebuild."""
    env = {"AOAI_LENS_DATA_DIR": str(tmp_path / "data"), "AOAI_LENS_DEMO__PATH": str(tmp_path / "past.duckdb")}
    seeded = run_cli(
        ["demo", "seed", "--days", "3", "--requests-per-day", "400", "--end", "2026-11-20T00:00:00Z"], env, tmp_path
    )
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    assert run_cli(["cost", "ledger", "build", "--since", "30d"], env, tmp_path, timeout=300).returncode == 0
    before = _report_total(env, tmp_path)
    assert before > 0
    rebuild = subprocess.Popen(
        [*CLI, "cost", "ledger", "rebuild", "--month", "2026-11", "--reason", "test"],
        env=clean_env(env),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    totals = []
    try:
        while rebuild.poll() is None and len(totals) < 6:
            totals.append(_report_total(env, tmp_path))
    finally:
        _out, err = rebuild.communicate(timeout=300)
    assert rebuild.returncode == 0, err[-2000:]
    assert totals and all(t == before for t in totals), (before, totals)
    assert _report_total(env, tmp_path) == before
