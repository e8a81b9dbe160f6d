"""Secrets never appear in output, logs, pages, exports or stores: plant three and scan everything."""

from __future__ import annotations

import base64
import shutil
import sqlite3
from pathlib import Path

import requests
from hardening_server import ROOT, everything_served, free_port, run_cli, serving

from queries.config import Settings

API_KEY = "sk-PLANTED-probe-key-7f3a9c"
PASSWORD = "PLANTED-basic-pw-41b2e8"
TOKEN = "PLANTEDchanneltoken93d1"
SECRETS = (API_KEY, PASSWORD, TOKEN)

EXTRA = """
[dashboard]
auth = "basic"
basic_user = "ops"

[[alerts.channels]]
name = "ops-hook"
url_env = "OPS_HOOK_URL"
"""


def _leaks(where: str, text: str) -> list[str]:
    return [f"{where}: {s[:12]}..." for s in SECRETS if s in text]


def test_planted_secrets_appear_nowhere(tmp_path: Path, demo_settings: Settings) -> None:
    (tmp_path / "aoai-lens.toml").write_text((ROOT / "queries" / "demo" / "demo.toml").read_text() + EXTRA)
    workspace = tmp_path / "demo.duckdb"
    shutil.copy(demo_settings.demo_path, workspace)
    data = tmp_path / "data"
    env = {
        "AOAI_LENS_DATA_DIR": str(data),
        "AOAI_LENS_DEMO__PATH": str(workspace),
        "AOAI_LENS_PROBES__AUTH": "key",
        "AOAI_LENS_PROBES__API_KEY": API_KEY,
        "AOAI_LENS_DASHBOARD__BASIC_PASSWORD": PASSWORD,
        # a channel nobody listens on, its token in the URL
        "OPS_HOOK_URL": f"json://127.0.0.1:1/hook?token={TOKEN}",
    }
    leaks: list[str] = []
    for args in (
        ["check-config"],
        ["-v", "probe", "run", "--once"],
        ["-v", "alerts", "test", "ops-hook"],
        ["cost", "report", "--format", "csv"],
        ["cost", "report", "--format", "focus"],
    ):
        r = run_cli(args, env, tmp_path)
        leaks += _leaks(" ".join(args), r.stdout + r.stderr)
        if args[-1] == "ops-hook":
            assert r.returncode == 1, r.stderr[-2000:]  # the channel is down: said, without its token
    with serving([], {**env, "AOAI_LENS_SCHEDULER__ENABLED": "false"}, tmp_path, free_port()) as srv:
        url = srv["url"]
        assert requests.get(url + "/", timeout=30).status_code == 401
        s = requests.Session()
        s.headers["Authorization"] = "Basic " + base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
        for where, text in everything_served(s, url).items():
            leaks += _leaks(where, text)
        bad = requests.get(url + "/", headers={"Authorization": "Basic b3BzOndyb25n"}, timeout=30)
        assert bad.status_code == 401
        leaks += _leaks("401 answer", bad.text + str(bad.headers))
        leaks += _leaks("healthz", requests.get(url + "/healthz", timeout=30).text)
    leaks += _leaks("serve output", srv["stderr"])
    for db in data.glob("*.sqlite"):
        con = sqlite3.connect(db)
        try:
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for t in tables:
                for row in con.execute(f'SELECT * FROM "{t}"'):
                    leaks += _leaks(f"{db.name}:{t}", " ".join(map(str, row)))
        finally:
            con.close()
    for f in data.rglob("*"):
        if f.is_file() and f.suffix not in (".sqlite", ".duckdb"):
            leaks += _leaks(str(f.relative_to(data)), f.read_text(errors="replace"))
    assert (data / "state.sqlite").exists(), "the probe run wrote nothing to scan"
    assert not leaks, leaks
