"""The scheduler's memory: probe results, alert state and transitions, deliveries, job outcomes.

One SQLite file (settings.state_path) in WAL mode with a busy timeout, so the web process, the scheduler
and a CLI command can read and write it at the same time. A short-lived connection per operation keeps
it safe across the scheduler's worker threads. Times are epoch seconds (UTC).

The file heals itself: every connection checks the schema version in the file's header (one read of a
page SQLite has in memory anyway). A file deleted under a running process (which would otherwise come
back as an empty database without tables) or one that is not a database at all is recreated with its
schema on the next use, so what is written from then on lands. A file that is not a database is moved
aside to `state.sqlite.corrupt-<epoch>` first, for whoever wants to look at it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger("aoai_lens.store")

# PRAGMA user_version of a store with every table below; 0 is a new, empty (or emptied) file
SCHEMA_VERSION = 2  # 2: A/B probe columns, backfilled history
# SQLite's result codes for a file that is not a database, or a damaged one
_NOT_A_DATABASE = (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)

SCHEMA = """
CREATE TABLE IF NOT EXISTS probe_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL,
  deployment TEXT NOT NULL,
  kind TEXT NOT NULL,
  auth TEXT NOT NULL,
  class TEXT NOT NULL,
  status_code INTEGER,
  latency_ms REAL,
  ttft_ms REAL,
  tokens_per_s REAL,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  cached_tokens INTEGER,
  total_tokens INTEGER,
  cost_usd REAL,
  request_id TEXT,
  ratelimit TEXT,
  error TEXT,
  ab TEXT,
  arm TEXT,
  backfilled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS probe_results_dep_ts ON probe_results (deployment, kind, ts);
CREATE TABLE IF NOT EXISTS alert_state (
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  state TEXT NOT NULL,
  since REAL NOT NULL,
  value REAL,
  reason TEXT,
  evaluated REAL,
  PRIMARY KEY (rule, subject)
);
CREATE TABLE IF NOT EXISTS transitions (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  rule TEXT NOT NULL,
  subject TEXT NOT NULL,
  old TEXT NOT NULL,
  new TEXT NOT NULL,
  ts REAL NOT NULL,
  reason TEXT,
  value REAL,
  backfilled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS backfills (
  key TEXT PRIMARY KEY,
  ts REAL NOT NULL,
  probes INTEGER NOT NULL,
  transitions INTEGER NOT NULL,
  seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  transition_id INTEGER,
  channel TEXT NOT NULL,
  ts REAL NOT NULL,
  ok INTEGER NOT NULL,
  error TEXT
);
CREATE TABLE IF NOT EXISTS job_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job TEXT NOT NULL,
  ts REAL NOT NULL,
  ok INTEGER NOT NULL,
  duration_ms REAL,
  error TEXT
);
"""


@dataclass
class ProbeResult:
    ts: float
    deployment: str
    kind: str
    auth: str
    klass: str  # ok, rate_limited, content_filter, auth, timeout, http_5xx, error
    status_code: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None
    request_id: str | None = None
    ratelimit: dict[str, str] | None = None
    error: str | None = None
    ab: str | None = None  # the A/B probe's name (None: a regular probe)
    arm: str | None = None  # which side of it: the target's label
    backfilled: bool = False  # written from the demo's seeded history, not called


@dataclass(frozen=True)
class Transition:
    rule: str
    subject: str
    old: str
    new: str
    ts: float
    reason: str
    value: float | None
    id: int | None = None
    backfilled: bool = False  # judged over the demo's seeded history: nobody was notified


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._healing = threading.Lock()
        with self.connect():  # creates the file and its schema when there is none
            pass

    def _create_schema(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(SCHEMA)
        columns = {r[1] for r in con.execute("PRAGMA table_info(alert_state)").fetchall()}
        if "evaluated" not in columns:  # a state file written before evaluations were recorded
            con.execute("ALTER TABLE alert_state ADD COLUMN evaluated REAL")
        added = {  # a version-1 file: the columns A/B probes and the backfill added
            "probe_results": ("ab TEXT", "arm TEXT", "backfilled INTEGER NOT NULL DEFAULT 0"),
            "transitions": ("backfilled INTEGER NOT NULL DEFAULT 0",),
        }
        for table, defs in added.items():
            have = {r[1] for r in con.execute(f"PRAGMA table_info({table})").fetchall()}
            for d in defs:
                if d.split()[0] not in have:
                    con.execute(f"ALTER TABLE {table} ADD COLUMN {d}")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _move_aside(self, error: sqlite3.DatabaseError) -> None:
        """A file that is not a database: keep it under another name, so a new one can take its place."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        log.warning("state store %s is not a usable database (%s): moved to %s", self.path.name, error, aside.name)
        with contextlib.suppress(FileNotFoundError):  # another process may have moved it already
            os.replace(self.path, aside)
        self._remove_journal()

    def _remove_journal(self) -> None:
        """The WAL and its index of a file that is gone: SQLite would replay them into the new file."""
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{self.path}{suffix}")

    def _open(self) -> sqlite3.Connection:
        """A connection to a file with the schema: recreated when the file was deleted or is no database."""
        for attempt in (1, 2):
            if not self.path.exists():  # new, or deleted: a journal left behind belongs to the old file
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._remove_journal()
            con = sqlite3.connect(self.path, timeout=10.0)
            try:
                con.execute("PRAGMA busy_timeout = 10000")
                if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    with self._healing:  # one thread of this process creates it; other processes: IF NOT EXISTS
                        self._create_schema(con)
                con.row_factory = sqlite3.Row
                return con
            except sqlite3.DatabaseError as e:
                con.close()
                if attempt == 2 or getattr(e, "sqlite_errorcode", None) not in _NOT_A_DATABASE:
                    raise
                with self._healing:
                    self._move_aside(e)
        raise AssertionError("unreachable")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = self._open()
        try:
            with con:
                yield con
        finally:
            con.close()

    # ---- probes --------------------------------------------------------------------------------
    def add_probe(self, r: ProbeResult) -> int:
        """Insert one result; return its id once committed."""
        row = asdict(r)
        row["class"] = row.pop("klass")
        row["ratelimit"] = json.dumps(r.ratelimit) if r.ratelimit is not None else None
        row["backfilled"] = int(r.backfilled)
        cols = ", ".join(f'"{k}"' for k in row)
        marks = ", ".join("?" for _ in row)
        with self.connect() as con:
            cur = con.execute(f"INSERT INTO probe_results ({cols}) VALUES ({marks})", list(row.values()))
        return int(cur.lastrowid or 0)

    def probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        """Results of the regular probes (not the A/B ones) in [since, until]."""
        return self._probe_frame("ab IS NULL", since, until)

    def ab_probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        """Results of the A/B probes in [since, until], with their `ab` name and `arm` label."""
        return self._probe_frame("ab IS NOT NULL", since, until)

    def _probe_frame(self, which: str, since: float | None, until: float | None) -> pd.DataFrame:
        sql = f"SELECT * FROM probe_results WHERE {which} AND ts >= ? AND ts <= ? ORDER BY ts, id"
        with self.connect() as con:
            rows = con.execute(
                sql, [since if since is not None else 0.0, until if until is not None else 1e18]
            ).fetchall()
        cols = [
            "id",
            "ts",
            "deployment",
            "kind",
            "auth",
            "class",
            "status_code",
            "latency_ms",
            "ttft_ms",
            "tokens_per_s",
            "prompt_tokens",
            "completion_tokens",
            "cached_tokens",
            "total_tokens",
            "cost_usd",
            "request_id",
            "ratelimit",
            "error",
            "ab",
            "arm",
            "backfilled",
        ]
        return pd.DataFrame([dict(r) for r in rows], columns=cols)

    def last_probes(self, n: int) -> pd.DataFrame:
        """The newest `n` results per (deployment, kind), newest first."""
        sql = """
          SELECT * FROM (
            SELECT *, row_number() OVER (PARTITION BY deployment, kind ORDER BY ts DESC, id DESC) AS rn
            FROM probe_results WHERE ab IS NULL)
          WHERE rn <= ? ORDER BY deployment, kind, rn
        """
        with self.connect() as con:
            rows = con.execute(sql, [n]).fetchall()
        return pd.DataFrame([dict(r) for r in rows])

    # ---- alert state ---------------------------------------------------------------------------
    def states(self) -> dict[tuple[str, str], str]:
        with self.connect() as con:
            rows = con.execute("SELECT rule, subject, state FROM alert_state").fetchall()
        return {(r["rule"], r["subject"]): r["state"] for r in rows}

    def apply(self, t: Transition) -> Transition:
        """Record a transition and the new state together; return it with its id."""
        with self.connect() as con:
            cur = con.execute(
                "INSERT INTO transitions (rule, subject, old, new, ts, reason, value, backfilled) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [t.rule, t.subject, t.old, t.new, t.ts, t.reason, t.value, int(t.backfilled)],
            )
            con.execute(
                "INSERT INTO alert_state (rule, subject, state, since, value, reason, evaluated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state, since = excluded.since, "
                "value = excluded.value, reason = excluded.reason, evaluated = excluded.evaluated",
                [t.rule, t.subject, t.new, t.ts, t.value, t.reason, t.ts],
            )
            tid = cur.lastrowid
        return Transition(t.rule, t.subject, t.old, t.new, t.ts, t.reason, t.value, id=tid, backfilled=t.backfilled)

    def record_evaluation(self, rule: str, findings: list[tuple[str, float | None, str]], ts: float) -> None:
        """Each judged subject's latest value and reason, state unchanged (transitions change it); a
        subject judged for the first time starts as "ok". Keyed on (rule, subject): one rule's findings
        never touch another rule's states on the same subject."""
        with self.connect() as con:
            con.executemany(
                "INSERT INTO alert_state (rule, subject, state, since, value, reason, evaluated) "
                "VALUES (?, ?, 'ok', ?, ?, ?, ?) "
                "ON CONFLICT (rule, subject) DO UPDATE SET value = excluded.value, reason = excluded.reason, "
                "evaluated = excluded.evaluated",
                [[rule, subject, ts, value, reason, ts] for subject, value, reason in findings],
            )

    def transitions(self) -> list[Transition]:
        with self.connect() as con:
            rows = con.execute("SELECT * FROM transitions ORDER BY id").fetchall()
        return [
            Transition(
                r["rule"],
                r["subject"],
                r["old"],
                r["new"],
                r["ts"],
                r["reason"],
                r["value"],
                r["id"],
                bool(r["backfilled"]),
            )
            for r in rows
        ]

    def current_states(self) -> pd.DataFrame:
        with self.connect() as con:
            rows = con.execute("SELECT * FROM alert_state ORDER BY rule, subject").fetchall()
        return pd.DataFrame(
            [dict(r) for r in rows], columns=["rule", "subject", "state", "since", "value", "reason", "evaluated"]
        )

    # ---- deliveries and jobs -------------------------------------------------------------------
    def add_delivery(self, transition_id: int | None, channel: str, ts: float, ok: bool, error: str | None) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO deliveries (transition_id, channel, ts, ok, error) VALUES (?, ?, ?, ?, ?)",
                [transition_id, channel, ts, int(ok), error],
            )

    def deliveries(self) -> list[dict[str, Any]]:
        with self.connect() as con:
            return [dict(r) for r in con.execute("SELECT * FROM deliveries ORDER BY id").fetchall()]

    def add_job_run(self, job: str, ts: float, ok: bool, duration_ms: float, error: str | None) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO job_runs (job, ts, ok, duration_ms, error) VALUES (?, ?, ?, ?, ?)",
                [job, ts, int(ok), duration_ms, error],
            )

    def job_counts(self) -> dict[str, dict[str, int]]:
        """Per job: how many runs succeeded and failed."""
        with self.connect() as con:
            rows = con.execute("SELECT job, ok, count(*) AS n FROM job_runs GROUP BY job, ok").fetchall()
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["job"], {"ok": 0, "failed": 0})["ok" if r["ok"] else "failed"] = r["n"]
        return out

    # ---- the demo's backfilled history -------------------------------------------------------------
    def backfill_key(self) -> str | None:
        """The workspace the backfilled history was written from (None: none was)."""
        with self.connect() as con:
            row = con.execute("SELECT key FROM backfills ORDER BY ts DESC LIMIT 1").fetchone()
        return str(row["key"]) if row else None

    def replace_backfill(
        self,
        key: str,
        probes: list[ProbeResult],
        transitions: list[Transition],
        states: list[tuple[str, str, str, float, float | None, str, float]],
        seconds: float,
        now: float,
    ) -> None:
        """Swap the backfilled history for another in one transaction (readers see the old or the new):
        backfilled probes and transitions go, and with them the states no live evaluation has touched
        since; `states` (rule, subject, state, since, value, reason, evaluated) are written where no
        live evaluation is newer."""
        rows = []
        for r in probes:
            row = asdict(r)
            row["class"] = row.pop("klass")
            row["ratelimit"] = json.dumps(r.ratelimit) if r.ratelimit is not None else None
            row["backfilled"] = 1
            rows.append(row)
        with self.connect() as con:
            old_end = con.execute("SELECT max(ts) FROM transitions WHERE backfilled = 1").fetchone()[0]
            con.execute("DELETE FROM probe_results WHERE backfilled = 1")
            con.execute("DELETE FROM transitions WHERE backfilled = 1")
            con.execute("DELETE FROM backfills")
            if old_end is not None:  # states the previous backfill left and nothing live has judged since
                con.execute("DELETE FROM alert_state WHERE coalesce(evaluated, since) <= ?", [float(old_end) + 1])
            if rows:
                cols = list(rows[0])
                con.executemany(
                    f"INSERT INTO probe_results ({', '.join(chr(34) + c + chr(34) for c in cols)}) "
                    f"VALUES ({', '.join('?' for _ in cols)})",
                    [list(r.values()) for r in rows],
                )
            con.executemany(
                "INSERT INTO transitions (rule, subject, old, new, ts, reason, value, backfilled) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                [[t.rule, t.subject, t.old, t.new, t.ts, t.reason, t.value] for t in transitions],
            )
            con.executemany(
                "INSERT INTO alert_state (rule, subject, state, since, value, reason, evaluated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state, since = excluded.since, "
                "value = excluded.value, reason = excluded.reason, evaluated = excluded.evaluated "
                "WHERE coalesce(alert_state.evaluated, alert_state.since) < excluded.evaluated",
                states,
            )
            con.execute(
                "INSERT INTO backfills (key, ts, probes, transitions, seconds) VALUES (?, ?, ?, ?, ?)",
                [key, now, len(rows), len(transitions), seconds],
            )
