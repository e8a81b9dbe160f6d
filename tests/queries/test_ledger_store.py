"""The ledger on disk: closed hours are immutable files that later records do not change, late records
are counted with the rebuild hint, a rebuild is deliberate and recorded, one writer at a time, and a
price override after an hour closed does not reprice it (the hour keeps the price in force then)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cost_fakes import FakeBook, FakePrice, deployments
from test_ledger import CALLERS, PROBE, RULES, START, Request, expected_total, metrics_frame, usage_frame

from queries.config import LedgerSettings, Settings, load_settings
from queries.cost import ledger_store
from queries.cost.report import allocate, statement
from queries.filestore import WriterBusy
from queries.results import QueryResult, TimeRange
from queries.scope import Scope

T0 = START  # the worlds of test_ledger start at 10:00
DEPS = deployments(("std", "m1", "GlobalStandard", 100, 100_000), ("ptu", "m1", "ProvisionedManaged", 10, 1_000))


@dataclass(frozen=True)
class Arrived(Request):
    received: datetime = T0


@dataclass
class WorldLens:
    """A Lens over a world whose records arrive at `received`: the workspace as of `now` holds only the
    records that have arrived by then (what late arrival looks like to the ledger)."""

    settings: Settings
    records: list[Arrived] = field(default_factory=list)
    at: datetime = T0

    scope_resource_id = ""

    @property
    def scope(self) -> Scope:
        return Scope.everything()

    def now(self) -> datetime:
        return self.at

    def _visible(self, start: datetime, end: datetime) -> list[Request]:
        return [r for r in self.records if r.received <= self.at and start <= T0 + timedelta(hours=r.hour) < end]

    def run(self, name: str, **kw: Any) -> QueryResult:
        start, end = kw.get("start"), kw.get("end")
        if name == "ingestion_lag":
            return QueryResult(
                name, pd.DataFrame({"Records": [1], "LagP50Min": [1.0], "LagP99Min": [5.0], "LagMaxMin": [9.0]})
            )
        if name == "requests_per_hour":
            rows = self._visible(start, end)
            f = pd.DataFrame({"TimeGenerated": [T0 + timedelta(hours=r.hour) for r in rows]})
            f = (
                f.groupby("TimeGenerated").size().rename("Requests").reset_index()
                if not f.empty
                else pd.DataFrame(columns=["TimeGenerated", "Requests"])
            )
            return QueryResult(name, f)
        assert name == "cost_usage_by_caller", name
        return QueryResult(name, usage_frame(self._visible(start, end)))

    def metrics(self, names: list[str], **kw: Any) -> QueryResult:
        return QueryResult("metrics", metrics_frame(self._visible(kw["start"], kw["end"])))

    def deployments(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return QueryResult("deployments", DEPS)

    def usages(self, ttl: timedelta = timedelta(minutes=10)) -> QueryResult:
        return QueryResult("usages", pd.DataFrame())

    def time_range(self, **kw: Any) -> TimeRange:
        return TimeRange(T0, self.at)

    def memo(self, key: str, ttl: timedelta, compute: Any) -> Any:
        return compute()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})
    return s.model_copy(
        update={
            "attribution": RULES,
            "ledger": LedgerSettings(late_window_minutes=120),
            "probes": s.probes.model_copy(update={"object_id": PROBE}),
        }
    )


def world(hours: int) -> list[Arrived]:
    """Two requests an hour on the standard deployment, arriving a few minutes after their hour."""
    out = []
    for h in range(hours):
        for caller, prompt in (("a", 100_000), ("b", 50_000)):
            out.append(
                Arrived(
                    h, "std", caller, prompt, 0, 10_000, True, True, 100, received=T0 + timedelta(hours=h, minutes=70)
                )
            )
    return out


def test_closed_hours_do_not_change_when_late_records_arrive(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("queries.cost.prices.PriceBook.load", classmethod(lambda cls, s: FakeBook()))
    lens = WorldLens(settings, world(6), at=T0 + timedelta(hours=6, minutes=30))
    report = ledger_store.build(lens, settings, since=timedelta(hours=6))  # type: ignore[arg-type]
    # the window is 120 min: at +6:30 the first 4 hours are closed (the 5th ended at +5:00, too recent)
    assert report.hours_built == 4 and report.horizon == T0 + timedelta(hours=4)
    ledger = ledger_store.Ledger.for_settings(settings)
    before = ledger.read_closed(T0, T0 + timedelta(hours=4))
    # a record for the second hour arrives at +7:00 (long after its hour closed); and time moves on
    lens.records.append(Arrived(1, "std", "stranger", 999_000, 0, 0, True, True, 10, received=T0 + timedelta(hours=7)))
    lens.at = T0 + timedelta(hours=8, minutes=5)
    again = ledger_store.build(lens, settings, since=timedelta(hours=8))  # type: ignore[arg-type]
    assert again.hours_built == 2  # the 5th and 6th hours only
    after = ledger.read_closed(T0, T0 + timedelta(hours=4))
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    late = ledger_store.late_records(lens, settings)  # type: ignore[arg-type]
    assert late[["Closed", "Now", "Late"]].values.tolist() == [[2, 3, 1]]
    assert late["Hour"].iloc[0] == T0 + timedelta(hours=1)
    # reading the closed hours: the ledger's answer, not the workspace's (the late record is not in it)
    r = allocate(lens, settings, T0, T0 + timedelta(hours=4), book=FakeBook())  # type: ignore[arg-type]
    assert r.closed_hours == 4 and r.open_hours == 0
    assert r.total == pytest.approx(expected_total(world(4)))
    # a rebuild is deliberate and recorded; it picks the late record up
    rb = ledger_store.build(lens, settings, rebuild=(T0, T0 + timedelta(hours=4)), reason="late records")  # type: ignore[arg-type]
    assert rb.hours_built == 4
    m = ledger.manifest()
    assert m["rebuilds"][-1]["reason"] == "late records" and m["rebuilds"][-1]["hours"] == 4
    assert ledger_store.late_records(lens, settings).empty  # type: ignore[arg-type]
    assert ledger.read_closed(T0, T0 + timedelta(hours=4))["Quantity"].sum() > after["Quantity"].sum()


def test_an_open_hour_is_computed_on_read_and_counts_what_has_arrived(settings: Settings) -> None:
    lens = WorldLens(settings, world(3), at=T0 + timedelta(hours=3, minutes=30))
    ledger_store.build(lens, settings, since=timedelta(hours=3), book=FakeBook())  # type: ignore[arg-type]
    r = allocate(lens, settings, T0, lens.at, book=FakeBook())  # type: ignore[arg-type]
    assert r.closed_hours == 1 and r.open_hours == 3  # the first hour closed; two more and the current one open
    s = statement(r, "team").set_index("Team")
    # PTU: 3 whole hours and half of the current one, at 10 PTU x $2
    assert s.loc["ptu idle", "Cost"] == pytest.approx(3.5 * 20.0, abs=0.01)


def test_a_price_override_after_an_hour_closed_does_not_reprice_it(settings: Settings) -> None:
    lens = WorldLens(settings, world(4), at=T0 + timedelta(hours=4, minutes=10))
    ledger_store.build(lens, settings, since=timedelta(hours=4), book=FakeBook())  # type: ignore[arg-type]
    closed = ledger_store.Ledger.for_settings(settings).closed_hours()
    assert sorted(closed) == ["2026-03-02T10", "2026-03-02T11"]
    dearer = FakeBook(
        {**FakeBook().prices, ("m1", "GlobalStandard"): FakePrice(4.0, 2.0, 20.0, None, "m1 override", "override")}
    )
    r = allocate(lens, settings, T0, T0 + timedelta(hours=4), book=dearer)  # type: ignore[arg-type]
    led = r.ledger[r.ledger["Deployment"] == "std"]
    per_hour = led.groupby((led["Hour"] - pd.Timestamp(T0)) // pd.Timedelta(hours=1))["EffectiveCost"].sum()
    # 150k input + 20k output an hour: $0.50 at the old prices, $1.00 at the override's
    assert per_hour.loc[0] == pytest.approx(0.5) and per_hour.loc[1] == pytest.approx(0.5)
    assert per_hour.loc[2] == pytest.approx(1.0) and per_hour.loc[3] == pytest.approx(1.0)
    assert set(led.loc[led["Hour"] >= pd.Timestamp(T0 + timedelta(hours=2)), "PriceSource"]) == {"override"}
    versions = {v["build"] for v in closed.values()}
    assert len(versions) == 1


def test_one_writer_the_second_is_told_who_holds_the_lock(settings: Settings) -> None:
    lens = WorldLens(settings, world(3), at=T0 + timedelta(hours=5))
    ledger = ledger_store.Ledger.for_settings(settings)
    with ledger.writer_lock("cost ledger build (the scheduler)"):
        with pytest.raises(WriterBusy, match="the scheduler"):
            ledger_store.build(lens, settings, book=FakeBook())  # type: ignore[arg-type]
        # readers never wait for it
        r = allocate(lens, settings, T0, T0 + timedelta(hours=3), book=FakeBook())  # type: ignore[arg-type]
        assert r.open_hours == 3
    assert ledger_store.build(lens, settings, since=timedelta(hours=5), book=FakeBook()).hours_built == 3  # type: ignore[arg-type]


def test_status_reads_the_manifest_alone(settings: Settings) -> None:
    lens = WorldLens(settings, world(3), at=T0 + timedelta(hours=5))
    ledger_store.build(lens, settings, since=timedelta(hours=5), book=FakeBook())  # type: ignore[arg-type]
    st = ledger_store.status(settings)
    assert st["closed_hours"] == 3 and st["first_hour"] == "2026-03-02T10" and st["writer"] is None
    assert st["last_build"]["hours"] == 3
    json.dumps(st)  # what `cost ledger status --format json` prints
    assert CALLERS  # the world's callers come from test_ledger
