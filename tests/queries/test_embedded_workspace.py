"""The embedded workspace under concurrent use: queries keep answering while the ingestion job loads."""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from queries.sources.base import LogsRequest
from queries.sources.embedded import EmbeddedLogs, EmbeddedWorkspace

COUNT = "AzureDiagnostics | where Category == 'RequestResponse' | summarize N = count()"


def test_loads_wait_for_running_queries_and_queries_see_the_loaded_rows(demo_workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "ws.duckdb"
    shutil.copy(demo_workspace, path)
    ws = EmbeddedWorkspace(path)
    logs = EmbeddedLogs(ws)
    now = datetime.now(UTC)
    req = LogsRequest(COUNT, now - timedelta(days=30), now)
    before = int(logs.run(req).frame["N"].iloc[0])
    errors: list[BaseException] = []
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                seen.append(int(logs.run(req).frame["N"].iloc[0]))
            except BaseException as e:  # any failure is the bug this test is about
                errors.append(e)
                return

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            with ws.writer() as con:
                con.execute(
                    """INSERT INTO AzureDiagnostics SELECT * FROM AzureDiagnostics
                       WHERE Category = 'RequestResponse' LIMIT 10"""
                )
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert seen and min(seen) >= before
    assert int(logs.run(req).frame["N"].iloc[0]) == before + 50
    ws.close()
