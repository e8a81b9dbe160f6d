"""The embedded workspace under concurrent use: files, not locks. Queries keep answering while records
are appended, in this process and from another one, and nobody opens the workspace file for writing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from queries.filestore import AppendLog, WriterBusy
from queries.sources.base import LogsRequest
from queries.sources.embedded import EmbeddedLogs, EmbeddedWorkspace, append_log

COUNT = "AzureDiagnostics | where Category == 'RequestResponse' | summarize N = count()"
ROOT = Path(__file__).resolve().parents[2]


def _ten_rows(path: Path):  # type: ignore[no-untyped-def]
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT * FROM AzureDiagnostics WHERE Category = 'RequestResponse' LIMIT 10"
        ).to_arrow_table()
    finally:
        con.close()


def test_queries_see_appended_parts_and_never_wait(demo_workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "ws.duckdb"
    shutil.copy(demo_workspace, path)
    ws = EmbeddedWorkspace(path)
    logs = EmbeddedLogs(ws)
    now = datetime.now(UTC)
    req = LogsRequest(COUNT, now - timedelta(days=30), now)
    before = int(logs.run(req).frame["N"].iloc[0])
    mtime = path.stat().st_mtime_ns
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
    rows = _ten_rows(path)
    log = append_log(path)
    try:
        for _ in range(5):
            with log.writer_lock("test"):
                log.append(rows)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert errors == []
    assert seen and min(seen) >= before and max(seen) <= before + 50
    assert int(logs.run(req).frame["N"].iloc[0]) == before + 50
    assert path.stat().st_mtime_ns == mtime  # the workspace file itself was never written
    ws.close()


def test_another_process_appends_while_this_one_reads(demo_workspace: Path, tmp_path: Path) -> None:
    path = tmp_path / "ws.duckdb"
    shutil.copy(demo_workspace, path)
    ws = EmbeddedWorkspace(path)
    logs = EmbeddedLogs(ws)
    now = datetime.now(UTC)
    req = LogsRequest(COUNT, now - timedelta(days=30), now)
    before = int(logs.run(req).frame["N"].iloc[0])  # this process holds the workspace open for reading
    code = (
        "import duckdb, sys\n"
        "from queries.sources.embedded import append_log\n"
        f"con = duckdb.connect({str(path)!r}, read_only=True)\n"
        "rows = con.execute(\"SELECT * FROM AzureDiagnostics WHERE Category = 'RequestResponse' LIMIT 7\").to_arrow_table()\n"
        "con.close()\n"
        f"log = append_log(__import__('pathlib').Path({str(path)!r}))\n"
        "with log.writer_lock('other process'):\n"
        "    log.append(rows)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(logs.run(req).frame["N"].iloc[0]) == before + 7
    ws.close()


def test_one_writer_a_second_is_told_who_holds_it(tmp_path: Path) -> None:
    log = AppendLog(tmp_path / "x.appended", "AzureDiagnostics")
    with log.writer_lock("cost ledger build"):
        try:
            with log.writer_lock("another"):
                raise AssertionError("a second writer got the lock")
        except WriterBusy as e:
            assert "another writer is running" in str(e) and "cost ledger build" in str(e)
    with log.writer_lock("after"):  # released: the next writer gets it
        pass


def test_a_dead_writers_lock_is_taken_over(tmp_path: Path) -> None:
    log = AppendLog(tmp_path / "x.appended", "AzureDiagnostics")
    lock = log.writer_lock("crashed")
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(proc.stdout)
    import json
    import socket

    lock.path.write_text(json.dumps({"pid": dead_pid, "host": socket.gethostname(), "command": "x", "since": 0}))
    with log.writer_lock("alive"):
        assert log.writer_lock("x").holder() is not None


def test_compaction_keeps_every_row_and_old_readers_working(tmp_path: Path, demo_workspace: Path) -> None:
    log = AppendLog(tmp_path / "x.appended", "AzureDiagnostics")
    rows = _ten_rows(demo_workspace)
    with log.writer_lock("test"):
        for _ in range(AppendLog.COMPACT_AT - 1):
            log.append(rows)
        old = log.parts()
        log.append(rows)  # the 24th part: merged into one
    now = log.parts()
    assert len(old) == AppendLog.COMPACT_AT - 1 and len(now) == 1
    assert all(p.exists() for p in old)  # a reader of the previous manifest can still read its parts
    import pyarrow.parquet as pq

    assert pq.read_table(now[0]).num_rows == 10 * AppendLog.COMPACT_AT
