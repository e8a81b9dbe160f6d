"""Files, not locks: shared data as immutable files, one writer per kind, readers that never wait.

DuckDB admits one process holding a file read-write or many reading it, never both; a dashboard with
several workers, a scheduler and a person at the CLI are several processes. So what is shared is
written as files that never change once they are visible:

- `atomic_write(path, write)` writes through a temporary name in the same directory and renames it
  into place (a rename is atomic on one file system), so a reader sees the old file or the new one,
  never half of one.
- `WriterLock` is the one-writer rule: a lock file created exclusively, holding who has it (pid,
  host, command, since when). A second writer gets `WriterBusy` naming the holder; a holder that died
  on this host (its pid is gone) is taken over. Readers never look at it.
- `AppendLog` is a table's appended records (the demo workspace's records that arrive after seeding):
  Parquet parts plus a manifest (JSON) naming the parts that make up the table now. Appending writes
  a part, then a new manifest; compaction merges parts into one, writes the manifest without them, and
  deletes replaced parts only a grace period later, so a reader holding the previous manifest can
  still read them. A writer that reads its input incrementally (an importer's per-file offsets) keeps
  its checkpoint in the same manifest (`append(table, checkpoint=...)`): one rename makes the part
  visible and moves the checkpoint past it, so a crash between the two cannot load records twice or
  lose them. A part a crash left unlisted is never read, and deleted a grace period later.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` for a temporary path next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


class WriterBusy(RuntimeError):
    """Another process is the writer; the message names it."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    command: str
    since: float

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"pid {self.pid} on {self.host} ({self.command}), since {when}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WriterLock:
    """`with WriterLock(path, "cost ledger build"):` — the one writer of a kind of file."""

    def __init__(self, path: Path, command: str) -> None:
        self.path = path
        self.command = command
        self._held = False

    def holder(self) -> Holder | None:
        try:
            data = json.loads(self.path.read_text())
            return Holder(int(data["pid"]), str(data["host"]), str(data["command"]), float(data["since"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command, "since": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self.holder()
                if held is None:  # being written this instant, or garbage: look again
                    time.sleep(0.05)
                    held = self.holder()
                if held is not None and held.host == me["host"] and not _alive(held.pid):
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()  # its holder died: take over
                    continue
                if held is None:
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                raise WriterBusy(f"{self.path.parent.name}: another writer is running: {held.describe()}") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise WriterBusy(f"{self.path.parent.name}: could not take the writer lock {self.path}")

    def release(self) -> None:
        if self._held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._held = False

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def command_line() -> str:
    return " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv[:4])) or "python"


class AppendLog:
    """A table's appended records as Parquet parts listed by a manifest (see the module docstring)."""

    MANIFEST = "manifest.json"
    GRACE_S = 600.0  # replaced parts stay on disk this long for readers of an older manifest
    COMPACT_AT = 24  # parts before the writer merges them

    def __init__(self, root: Path, table: str) -> None:
        self.root = root
        self.table = table
        self.dir = root / table

    # ---- reading (any process, no lock) ----
    def manifest(self) -> dict[str, Any]:
        try:
            data = json.loads((self.dir / self.MANIFEST).read_text())
            return data if isinstance(data, dict) else {"version": 0, "parts": []}
        except (OSError, ValueError):
            return {"version": 0, "parts": []}

    def parts(self) -> list[Path]:
        """The parts that make up the table now (paths that exist)."""
        return [self.dir / name for name in self.manifest().get("parts", []) if (self.dir / name).exists()]

    def checkpoint(self, key: str) -> dict[str, Any] | None:
        """The checkpoint a writer committed with its last append under `key`, or None."""
        stored = self.manifest().get("checkpoints", {})
        value = stored.get(key) if isinstance(stored, dict) else None
        return value if isinstance(value, dict) else None

    def stamp(self) -> tuple[int, int]:
        """Changes whenever the set of parts changes (for readers that cache a view)."""
        m = self.manifest()
        return int(m.get("version", 0)), len(m.get("parts", []))

    # ---- writing (the one writer, under `writer_lock()`) ----
    def writer_lock(self, command: str) -> WriterLock:
        return WriterLock(self.root / ".writer.lock", command)

    def append(self, table: pa.Table | None, *, checkpoint: dict[str, dict[str, Any]] | None = None) -> Path | None:
        """Write one part and a manifest that includes it (and the writer's `checkpoint`, by key, in the
        same manifest: committed together or not at all); merge the parts when there are many. With no
        rows, only a given checkpoint is committed."""
        rows = table is not None and table.num_rows > 0
        if not rows and not checkpoint:
            return None
        m = self.manifest()
        parts = list(m.get("parts", []))
        name = None
        if rows:
            name = f"part-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.parquet"
            atomic_write(self.dir / name, lambda tmp: pq.write_table(table, tmp))
            parts.append(name)
        self._write_manifest(parts, m, checkpoints=checkpoint)
        if name is not None and len(parts) >= self.COMPACT_AT:
            self.compact()
        return self.dir / name if name is not None else None

    def compact(self) -> None:
        m = self.manifest()
        parts = list(m.get("parts", []))
        if len(parts) < 2:
            return
        merged = pa.concat_tables([pq.read_table(self.dir / p) for p in parts], promote_options="default")
        name = f"merged-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}.parquet"
        atomic_write(self.dir / name, lambda tmp: pq.write_table(merged, tmp))
        retired = dict(m.get("retired", {}))
        now = time.time()
        retired.update(dict.fromkeys(parts, now))
        self._write_manifest([name], m, retired)

    def _write_manifest(
        self,
        parts: list[str],
        old: dict[str, Any],
        retired: dict[str, float] | None = None,
        *,
        checkpoints: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        retired = dict(old.get("retired", {}) if retired is None else retired)
        now = time.time()
        for name, when in list(retired.items()):
            if now - float(when) > self.GRACE_S:
                with contextlib.suppress(FileNotFoundError):
                    (self.dir / name).unlink()
                del retired[name]
        self._sweep_orphans({*parts, *retired}, now)
        kept = old.get("checkpoints", {})
        body = {
            "version": int(old.get("version", 0)) + 1,
            "parts": parts,
            "retired": retired,
            "checkpoints": {**(kept if isinstance(kept, dict) else {}), **(checkpoints or {})},
        }
        atomic_write_text(self.dir / self.MANIFEST, json.dumps(body, indent=1))

    def _sweep_orphans(self, listed: set[str], now: float) -> None:
        """Delete parts no manifest ever listed (a writer died between writing one and its manifest) once
        they are older than the grace period (the one writer is the only one who could still list them)."""
        for f in [*self.dir.glob("part-*.parquet"), *self.dir.glob("merged-*.parquet")]:
            if f.name in listed:
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - f.stat().st_mtime > self.GRACE_S:
                    f.unlink()

    def clear(self) -> None:
        """Forget every part (the base it was appended to was rebuilt)."""
        m = self.manifest()
        retired = dict(m.get("retired", {}))
        retired.update(dict.fromkeys(m.get("parts", []), time.time()))
        self._write_manifest([], m, retired)
