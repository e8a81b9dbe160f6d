"""The demo month's probe and alert history, backfilled from the seeded workspace: consistent with the
probe traffic in its logs, told by the real evaluator (the planted 429 flood, the 5xx incident), never
notified, written once per workspace and rules, and replacing (never adding to) an earlier backfill."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from alerts.backfill import BackfillReport, WindowData, backfill, ticks
from alerts.data import LensData
from alerts.store import ProbeResult, Store, Transition
from queries.config import AlertRule, Settings
from queries.demo import world
from queries.demo.seed import Seeder
from queries.lens import Lens


@pytest.fixture(scope="module")
def filled(
    demo_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Store, BackfillReport]]:
    settings = demo_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("backfill")})
    store = Store(settings.state_path)
    # live history written before the backfill must survive it
    store.add_probe(ProbeResult(ts=1.0, deployment="chat-gpt4o", kind="chat", auth="key", klass="ok", latency_ms=5.0))
    store.apply(Transition("throttling", "live-subject", "ok", "firing", 2.0, "live", 9.0))
    report = backfill(settings, store)
    yield settings, store, report


def test_probe_history_is_the_probe_traffic_in_the_logs(filled: tuple[Settings, Store, BackfillReport]) -> None:
    settings, store, report = filled
    assert report.skipped is None and report.probes > 0
    con = duckdb.connect(str(settings.demo_path), read_only=True)
    try:
        total, failed = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE ResultSignature <> '200') FROM AzureDiagnostics "
            "WHERE Category = 'RequestResponse' AND properties_s LIKE ?",
            [f'%"objectId":"{world.PROBE_OBJECT_ID}"%'],
        ).fetchone()
    finally:
        con.close()
    probes = store.probes()
    backfilled = probes[probes["backfilled"] == 1]
    assert len(backfilled) == total == report.probes
    assert int((backfilled["class"] != "ok").sum()) == failed
    ok = backfilled[backfilled["class"] == "ok"]
    chat = ok[ok["kind"] == "chat"]
    answered = chat[chat["completion_tokens"] > 0]  # (the workspace's planted usage gap has no tokens)
    assert len(answered) > 0.9 * len(chat) and answered["ttft_ms"].notna().all()
    assert (answered["ttft_ms"] <= answered["latency_ms"]).all()
    priced = ok[ok["prompt_tokens"] > 0]
    assert priced["cost_usd"].notna().all() and (priced["cost_usd"] > 0).all()  # priced like a live probe
    assert set(backfilled["request_id"].str.len()) == {36}  # the logs' CorrelationId
    assert (probes["backfilled"] == 0).sum() == 1  # the live probe is still there


def test_the_month_is_told_by_the_evaluator_and_nobody_is_notified(
    filled: tuple[Settings, Store, BackfillReport], demo_end: datetime
) -> None:
    _, store, report = filled
    history = [t for t in store.transitions() if t.backfilled]
    assert len(history) == report.transitions > 0 and store.deliveries() == []
    assert not report.rules_skipped, report.rules_skipped
    when: dict[tuple[str, str, str], datetime] = {}  # the first time each subject went firing / resolved
    for t in sorted(history, key=lambda t: t.ts):
        when.setdefault((t.rule, t.subject, t.new), datetime.fromtimestamp(t.ts, UTC))

    # the planted RPM flood on chat-gpt4o-mini: the 429 rule fires in the window that holds it, then resolves
    flood = demo_end - timedelta(hours=Seeder.RPM_BURST_HOURS_BEFORE_END)
    fired = when[("throttling", "chat-gpt4o-mini", "firing")]
    assert flood <= fired <= flood + timedelta(minutes=15)
    assert fired < when[("throttling", "chat-gpt4o-mini", "resolved")] <= fired + timedelta(minutes=30)

    # the 5xx incident on rag-gpt41 (three days before the end, 14:20 for 45 minutes) fails some of its
    # probes (each call fails with 42%): two failures within the hour burn 2/12 of the probes against a 1%
    # budget (16.7x > 14.4x), so the SLO alert fires within 5 minutes of the second, and resolves
    start = (demo_end - timedelta(days=3)).replace(hour=14, minute=20, second=0, microsecond=0)
    probes = store.probes()
    failed = probes[(probes["deployment"] == "rag-gpt41") & (probes["class"] == "http_5xx")]["ts"]
    failed = [datetime.fromtimestamp(t, UTC) for t in failed if start.timestamp() <= t < start.timestamp() + 2700]
    if len(failed) >= 2 and failed[1] - failed[0] < timedelta(minutes=55):
        fired = when[("probe-slo-burn", "rag-gpt41/success", "firing")]
        assert failed[1] <= fired <= failed[1] + timedelta(minutes=5)
        assert fired < when[("probe-slo-burn", "rag-gpt41/success", "resolved")] <= start + timedelta(hours=2)

    # the quiet deployment: legacy-gpt4o-mini's callers left four days before the end; twelve hours later
    # (judged every three hours) its own no-data rule fires, and stays firing
    quiet = demo_end - timedelta(days=world.deployment("legacy-gpt4o-mini").quiet_after_days or 0)
    fired = when[("quiet-deployment", "legacy-gpt4o-mini", "firing")]
    assert quiet + timedelta(hours=12) <= fired <= quiet + timedelta(hours=15, minutes=5)
    assert ("quiet-deployment", "legacy-gpt4o-mini", "resolved") not in when

    # every subject's transitions alternate firing -> resolved, starting with firing
    by_subject: dict[tuple[str, str], list[str]] = {}
    for t in sorted(history, key=lambda t: t.ts):
        by_subject.setdefault((t.rule, t.subject), []).append(t.new)
    for key, seq in by_subject.items():
        assert seq[::2] == ["firing"] * len(seq[::2]) and set(seq[1::2]) <= {"resolved"}, key

    states = store.current_states().set_index(["rule", "subject"])
    assert states.loc[("throttling", "live-subject"), "state"] == "firing"  # live state untouched
    assert (states.loc["throttling", "state"] != "not evaluated").all()


def test_the_backfill_reads_the_same_windows_the_live_rules_read(
    filled: tuple[Settings, Store, BackfillReport], demo_end: datetime
) -> None:
    settings, _, _ = filled
    lens = Lens.from_settings(settings).with_fresh_cache()
    start = demo_end - timedelta(days=7)
    data = WindowData(lens, settings, start, demo_end)
    live = LensData(lens)
    flood = demo_end - timedelta(hours=Seeder.RPM_BURST_HOURS_BEFORE_END)
    a = flood.replace(minute=flood.minute - flood.minute % 15, second=0, microsecond=0)
    for lo, hi in ((a, a + timedelta(minutes=15)), (a - timedelta(hours=2), a + timedelta(hours=1))):
        mine = data.requests(lo, hi).set_index("Deployment").sort_index()
        theirs = live.requests(lo, hi - timedelta(microseconds=1)).set_index("Deployment").sort_index()
        assert mine.astype(int).to_dict() == theirs.astype(int).to_dict()
    for dep in ("legacy-gpt4o-mini", "rag-gpt41"):
        lo = demo_end - timedelta(days=5)
        assert data.deployment_last_seen(dep, lo, demo_end) == live.deployment_last_seen(dep, lo, demo_end)
    quiet = demo_end - timedelta(days=world.deployment("legacy-gpt4o-mini").quiet_after_days or 0)
    last = live.deployment_last_seen("legacy-gpt4o-mini", demo_end - timedelta(days=5), demo_end)
    assert last is not None and quiet - timedelta(hours=3) <= last <= quiet + timedelta(minutes=5)  # a small caller


def test_once_per_workspace_and_rules_and_replaced_not_added(filled: tuple[Settings, Store, BackfillReport]) -> None:
    settings, store, report = filled
    before = (len(store.probes()), len(store.transitions()))
    again = backfill(settings, store)
    assert again.skipped and "already" in again.skipped
    assert (len(store.probes()), len(store.transitions())) == before

    # other rules (as after a reseed): the backfilled history is replaced, the live rows kept
    one = AlertRule(name="throttling", kind="rate_429", threshold=5, window_minutes=15, min_count=20)
    other = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"rules": [one]})})
    replaced = backfill(other, store)
    assert replaced.skipped is None and replaced.key != report.key
    transitions = store.transitions()
    assert {t.rule for t in transitions if t.backfilled} == {"throttling"}
    assert len([t for t in transitions if not t.backfilled]) == 1
    assert len(store.probes()) == before[0]
    assert store.backfill_key() == replaced.key


def test_ticks_cover_every_window_of_the_month() -> None:
    end = datetime(2026, 11, 30, 12, 7, tzinfo=UTC)
    start = end - timedelta(days=2)
    rate = AlertRule(name="r", kind="rate_429", threshold=5, window_minutes=15)
    t = ticks(rate, start, end)
    gaps = {b - a for a, b in itertools.pairwise(t[:-1])}
    assert gaps == {timedelta(minutes=15)} and t[-1] == end and t[0] - start <= timedelta(minutes=30)
    assert ticks(AlertRule(name="x", kind="budget_pace", threshold=100), start, end)[-1] == end
    assert ticks(AlertRule(name="other", kind="no_data", threshold=60), start, end)[-1] == end


def test_a_version_1_state_file_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    con = sqlite3.connect(path)
    con.executescript(
        "CREATE TABLE probe_results (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, deployment TEXT NOT NULL, "
        "kind TEXT NOT NULL, auth TEXT NOT NULL, class TEXT NOT NULL, status_code INTEGER, latency_ms REAL, "
        "ttft_ms REAL, tokens_per_s REAL, prompt_tokens INTEGER, completion_tokens INTEGER, cached_tokens INTEGER, "
        "total_tokens INTEGER, cost_usd REAL, request_id TEXT, ratelimit TEXT, error TEXT);"
        "INSERT INTO probe_results (ts, deployment, kind, auth, class) VALUES (1, 'a', 'chat', 'key', 'ok');"
        "CREATE TABLE transitions (id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, subject TEXT NOT NULL, "
        "old TEXT NOT NULL, new TEXT NOT NULL, ts REAL NOT NULL, reason TEXT, value REAL);"
        "PRAGMA user_version = 1;"
    )
    con.close()
    store = Store(path)
    assert len(store.probes()) == 1 and store.ab_probes().empty
    store.add_probe(ProbeResult(ts=2, deployment="a", kind="chat", auth="key", klass="ok", ab="x", arm="A"))
    assert list(store.ab_probes()["arm"]) == ["A"] and len(store.probes()) == 1


def test_demo_seed_backfills_and_a_reseed_replaces(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dashboard.cli import main

    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    store = Store(clean_env / "data" / "state.sqlite")
    counts = []
    for end in ("2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z"):
        assert main(["demo", "seed", "--days", "2", "--requests-per-day", "200", "--end", end]) == 0
        out = capsys.readouterr().out
        assert "backfilled" in out and "probe results" in out, out
        counts.append(int((store.probes()["backfilled"] == 1).sum()))
    # two days of probes every five minutes on four targets, once: the reseed replaced the first history
    assert counts == [2 * 288 * 4, 2 * 288 * 4]
    assert main(["demo", "seed", "--days", "1", "--requests-per-day", "50", "--path", str(clean_env / "o.duckdb")]) == 0
    assert "probe results" not in capsys.readouterr().out  # another file than the configured workspace
