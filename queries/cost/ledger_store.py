"""The hourly cost ledger on disk: closed hours as day-partitioned Parquet, open hours computed on read.

Layout under `ledger.path` (default `<data_dir>/ledger`, which may be a share every process mounts)::

    day=2026-11-30.parquet   the closed hours of that day (`queries.cost.ledger.LEDGER_COLUMNS`)
    manifest.json            which hours are closed, with the request count and build version of each,
                             what each day's build could not do cleanly, and the build and rebuild log
    .writer.lock             who is writing, while a build runs

Files, not locks (`queries.filestore`): a build writes a day file under a temporary name and renames
it, then the manifest the same way; readers (web workers, the CLI, the scheduler) read the manifest and
the day files with no lock. One writer: the scheduler's ledger job, or `aoai-lens cost ledger build`
when no scheduler runs; a second writer is told who holds the lock.

An hour closes once it is older than the late-arrival window (the workspace's measured p99 ingestion
lag plus a margin, at least two hours; or `ledger.late_window_minutes`). Closed hours never change:
a build adds hours and leaves the ones there alone. Rebuilding closed hours is deliberate (`cost ledger
rebuild --month`, after a price override or a rule change) and recorded. Records that arrive after their
hour closed are counted (`late_records`) and shown with the rebuild hint.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from queries.config import Settings
from queries.cost import ptu
from queries.cost.ledger import (
    LEDGER_COLUMNS,
    METER_CACHED,
    METER_EMBEDDINGS,
    METER_INPUT,
    METER_OUTPUT,
    BuildHealth,
    build_rows,
    build_version,
    empty_ledger,
)
from queries.filestore import WriterLock, atomic_write, atomic_write_text, command_line
from queries.reader import LensLike, WholeLens

log = logging.getLogger("aoai_lens.ledger")
HOUR = timedelta(hours=1)
COST_METRICS = ["ProcessedPromptTokens", "GeneratedTokens"]


class CostDataError(RuntimeError):
    """The usage, metrics or deployments could not be read, so no cost is computed; the message says why."""


def floor_hour(t: datetime) -> datetime:
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def ceil_hour(t: datetime) -> datetime:
    f = floor_hour(t)
    return f if f == (t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)) else f + HOUR


def hour_key(t: datetime | pd.Timestamp) -> str:
    return (
        pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%dT%H")
        if pd.Timestamp(t).tzinfo
        else pd.Timestamp(t).strftime("%Y-%m-%dT%H")
    )


def parse_hour(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)


@dataclass
class Inputs:
    usage: pd.DataFrame
    metrics: pd.DataFrame
    deployments: pd.DataFrame
    notices: list[str] = field(default_factory=list)
    metrics_ok: bool = True


def fetch_inputs(lens: WholeLens, start: datetime, end: datetime) -> Inputs:
    """What a build of [start, end) reads through the Lens: one cost query, hourly metric tokens, the
    deployments. Usage or deployments that cannot be read stop the build (money is not estimated from
    half the data); metrics that cannot be read are a notice (`metrics_ok` false)."""
    usage = lens.run("cost_usage_by_caller", start=start, end=end, bin=HOUR)
    deps = lens.deployments()
    notices = []
    for what, r in (("cost_usage_by_caller", usage), ("deployments", deps)):
        if r.status == "failed":
            raise CostDataError(f"cannot compute costs: {what} failed: {r.notice}")
        if r.status != "ok":
            notices.append(f"{what}: {r.status}: {r.notice}")
    m = lens.metrics(
        COST_METRICS, start=start, end=end, interval=HOUR, aggregation="Total", split_by=["ModelDeploymentName"]
    )
    metrics_ok = m.status == "ok"
    if not metrics_ok:
        notices.append(f"metrics: {m.status}: {m.notice}")
    deployments = deps.frame
    if deployments.empty:
        from queries.sources.arm_shapes import DEPLOYMENT_COLUMNS

        deployments = pd.DataFrame(columns=DEPLOYMENT_COLUMNS)
    return Inputs(usage.frame, m.frame if metrics_ok else pd.DataFrame(), deployments, notices, metrics_ok)


@dataclass
class Computed:
    rows: pd.DataFrame
    health: BuildHealth
    notices: list[str]
    deployments: pd.DataFrame


def compute(lens: WholeLens, settings: Settings, book: Any, start: datetime, end: datetime) -> Computed:
    """Ledger rows for [start, end) computed now, from the workspace (what open hours are)."""
    inputs = fetch_inputs(lens, start, end)
    version = build_version(list(settings.attribution), book)
    rows, health = build_rows(
        inputs.usage,
        inputs.metrics,
        inputs.deployments,
        list(settings.attribution),
        book,
        start,
        end,
        probe_object_id=settings.probe_object_id,
        version=version,
    )
    return Computed(rows, health, inputs.notices, inputs.deployments)


# ---- the files ---------------------------------------------------------------------------------------


class Ledger:
    MANIFEST = "manifest.json"
    LOG_KEEP = 200

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def for_settings(cls, settings: Settings) -> Ledger:
        return cls(settings.ledger_path)

    # ---- reading (any process, no lock) ----
    def manifest(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / self.MANIFEST).read_text())
            if isinstance(data, dict):
                return data
        except (OSError, ValueError):
            pass
        return {"hours": {}, "health": {}, "builds": [], "rebuilds": []}

    def closed_hours(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest().get("hours", {}))

    def day_path(self, day: str) -> Path:
        return self.root / f"day={day}.parquet"

    def read_closed(self, start: datetime, end: datetime, hours: Iterable[str] | None = None) -> pd.DataFrame:
        """The closed rows of [start, end), from the day files (no lock, no query)."""
        days = sorted({h[:10] for h in (hours if hours is not None else self.closed_hours())})
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        frames = []
        for day in days:
            d0 = pd.Timestamp(day, tz="UTC")
            if d0 + pd.Timedelta(days=1) <= lo or d0 >= hi:
                continue
            path = self.day_path(day)
            if not path.exists():
                continue
            t = pq.read_table(path, filters=[("Hour", ">=", lo.to_pydatetime()), ("Hour", "<", hi.to_pydatetime())])
            if t.num_rows:
                frames.append(t.to_pandas())
        if not frames:
            return empty_ledger()
        out = pd.concat(frames, ignore_index=True)
        out["Hour"] = pd.to_datetime(out["Hour"], utc=True)
        return out[LEDGER_COLUMNS]

    def health(self, start: datetime, end: datetime) -> BuildHealth:
        total = BuildHealth()
        for day, h in self.manifest().get("health", {}).items():
            d0 = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
            if d0 + timedelta(days=1) > start and d0 < end:
                total.merge(BuildHealth.from_dict(h))
        return total

    # ---- writing (the one writer) ----
    def writer_lock(self, command: str) -> WriterLock:
        return WriterLock(self.root / ".writer.lock", command)

    def _write_day(self, day: str, rows: pd.DataFrame, replace_hours: set[str]) -> None:
        """The day file with `rows` for `replace_hours`, keeping every other closed hour as it was."""
        path = self.day_path(day)
        keep = pd.DataFrame()
        if path.exists():
            old = pq.read_table(path).to_pandas()
            old["Hour"] = pd.to_datetime(old["Hour"], utc=True)
            keep = old[~old["Hour"].map(hour_key).isin(replace_hours)]
        parts = [p for p in (keep, rows) if not p.empty]
        merged = pd.concat(parts, ignore_index=True) if parts else empty_ledger()
        merged = merged[LEDGER_COLUMNS].sort_values(["Hour", "Deployment", "Meter"], kind="stable")
        merged["Hour"] = pd.to_datetime(merged["Hour"], utc=True).astype("datetime64[us, UTC]")
        table = pa.Table.from_pandas(merged, preserve_index=False)
        atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))

    def _save_manifest(self, m: dict[str, Any]) -> None:
        m["builds"] = m.get("builds", [])[-self.LOG_KEEP :]
        atomic_write_text(self.root / self.MANIFEST, json.dumps(m, indent=1, sort_keys=True))


# ---- the window --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    minutes: float
    how: str  # "configured" or the measurement it came from


def late_window(lens: WholeLens, settings: Settings) -> Window:
    cfg = settings.ledger
    if cfg.late_window_minutes is not None:
        return Window(float(cfg.late_window_minutes), "configured (ledger.late_window_minutes)")
    r = lens.run("ingestion_lag", since=timedelta(days=1))
    p99 = float(r.frame["LagP99Min"].iloc[0]) if r.status != "failed" and not r.frame.empty else float("nan")
    if not np.isfinite(p99):
        return Window(float(cfg.min_window_minutes), "the minimum (no ingestion lag measured in the last day)")
    minutes = max(float(cfg.min_window_minutes), p99 + cfg.margin_minutes)
    return Window(
        minutes,
        f"p99 ingestion lag {p99:.1f} min + {cfg.margin_minutes} min margin, at least {cfg.min_window_minutes} min",
    )


def close_horizon(lens: WholeLens, settings: Settings, now: datetime) -> tuple[datetime, Window]:
    """Hours starting before the returned time may close: all of such an hour is older than the window."""
    w = late_window(lens, settings)
    return floor_hour(now - timedelta(minutes=w.minutes)), w


# ---- building ----------------------------------------------------------------------------------------


@dataclass
class BuildReport:
    hours_built: int = 0
    days_written: int = 0
    seconds: float = 0.0
    window: Window | None = None
    horizon: datetime | None = None
    notices: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"ledger: {self.hours_built} hour(s) closed over {self.days_written} day(s) in {self.seconds:.1f} s"
        if self.horizon is not None:
            text += f"; closed up to {self.horizon:%Y-%m-%d %H:00} UTC"
        if self.window is not None:
            text += f" (late-arrival window {self.window.minutes:.0f} min: {self.window.how})"
        return text


def build(
    lens: WholeLens,
    settings: Settings,
    *,
    since: timedelta | None = None,
    now: datetime | None = None,
    book: Any = None,
    rebuild: tuple[datetime, datetime] | None = None,
    reason: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> BuildReport:
    """Close every hour that is due and not closed yet, back to `since` (default: `ledger.backfill_days`);
    with `rebuild=(start, end)`, build the closed hours of that range again (recorded, with `reason`).
    Takes the writer lock for the whole build; raises `queries.filestore.WriterBusy` if someone has it."""
    from queries.cost.prices import PriceBook

    started = time.perf_counter()
    now = now or lens.now()
    ledger = Ledger.for_settings(settings)
    book = book if book is not None else PriceBook.load(settings)
    report = BuildReport()
    horizon, window = close_horizon(lens, settings, now)
    report.window, report.horizon = window, horizon
    with ledger.writer_lock(f"cost ledger build ({command_line()})"):
        m = ledger.manifest()
        hours: dict[str, Any] = m.setdefault("hours", {})
        if rebuild is not None:
            lo, hi = floor_hour(rebuild[0]), min(floor_hour(rebuild[1]), horizon)
            todo_hours = [h for h in _hour_range(lo, hi)]
        else:
            lo = floor_hour(now - (since or timedelta(days=settings.ledger.backfill_days)))
            todo_hours = [h for h in _hour_range(lo, horizon) if hour_key(h) not in hours]
        if not todo_hours:
            report.seconds = time.perf_counter() - started
            return report
        chunks = _chunks(todo_hours, CHUNK)
        days_total = len({h.strftime("%Y-%m-%d") for h in todo_hours})
        version = build_version(list(settings.attribution), book)
        for start, end in chunks:
            c = compute(lens, settings, book, start, end)
            inputs_notice = [n for n in c.notices if n.startswith("metrics")]
            if inputs_notice:
                raise CostDataError(f"not closing {start:%Y-%m-%d %H}h-{end:%Y-%m-%d %H}h: {inputs_notice[0]}")
            day_of = c.rows["Hour"].dt.strftime("%Y-%m-%d") if not c.rows.empty else pd.Series(dtype=str)
            for day, (d0, d1) in _split_days(start, end):
                keys = {hour_key(h) for h in _hour_range(d0, d1)}
                rows = c.rows[day_of == day] if not c.rows.empty else c.rows
                if not rows.empty or ledger.day_path(day).exists():
                    ledger._write_day(day, rows, keys)
                per_hour = rows[rows["Requests"] > 0].groupby(rows["Hour"].map(hour_key))["Requests"].sum()
                stamp = time.time()
                for k in keys:
                    hours[k] = {"requests": round(float(per_hour.get(k, 0.0))), "build": version, "at": stamp}
                health = m.setdefault("health", {})
                merged = BuildHealth.from_dict(health.get(day, {})) if rebuild is None else BuildHealth()
                merged.merge(_day_health(c.health, day, d0 == start))
                health[day] = merged.as_dict()
                report.hours_built += len(keys)
                report.days_written += 1
                ledger._save_manifest(m)  # after each day: a crash keeps what was built
                if progress:
                    progress(report.days_written, days_total)
        entry = {
            "at": time.time(),
            "hours": report.hours_built,
            "by": command_line(),
            "seconds": round(time.perf_counter() - started, 2),
        }
        m.setdefault("builds", []).append(entry)
        if rebuild is not None:
            m.setdefault("rebuilds", []).append(
                {**entry, "from": f"{rebuild[0]:%Y-%m-%dT%H}", "to": f"{rebuild[1]:%Y-%m-%dT%H}", "reason": reason}
            )
        ledger._save_manifest(m)
    report.seconds = time.perf_counter() - started
    log.info("%s", report)
    return report


def _hour_range(start: datetime, end: datetime) -> list[datetime]:
    out, t = [], floor_hour(start)
    while t < end:
        out.append(t)
        t += HOUR
    return out


CHUNK = timedelta(days=7)  # one cost query per week of hours: the engine scans once, not once a day


def _chunks(hours: list[datetime], most: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) runs of consecutive hours, none longer than `most`."""
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(hours):
        if out and out[-1][1] == h and h + HOUR - out[-1][0] <= most:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


def _split_days(start: datetime, end: datetime) -> list[tuple[str, tuple[datetime, datetime]]]:
    out = []
    t = start
    while t < end:
        nxt = min((t + timedelta(days=1)).replace(hour=0), end)
        out.append((t.strftime("%Y-%m-%d"), (t, nxt)))
        t = nxt
    return out


def _day_health(h: BuildHealth, day: str, first: bool) -> BuildHealth:
    """A chunk's health is counted once, on its first day (the counts are not kept per hour)."""
    return h if first else BuildHealth()


# ---- reading: closed plus open -------------------------------------------------------------------------


@dataclass
class LedgerRead:
    rows: pd.DataFrame
    closed_hours: int
    open_hours: int
    health: BuildHealth
    notices: list[str]
    deployments: pd.DataFrame


def read(lens: WholeLens, settings: Settings, start: datetime, end: datetime, *, book: Any = None) -> LedgerRead:
    """The ledger rows of [start, end) by whole hours (the last one may be partial: up to `end`): closed
    hours from the files, the rest computed now (a provisioned deployment's current hour counts the part
    of it that has passed)."""
    from queries.cost.prices import PriceBook

    start = floor_hour(start)
    end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)
    ledger = Ledger.for_settings(settings)
    closed = ledger.closed_hours()
    wanted = _hour_range(start, end)
    have = [h for h in wanted if hour_key(h) in closed and h + HOUR <= end]
    missing = [h for h in wanted if h not in set(have)]
    parts = [ledger.read_closed(start, end, [hour_key(h) for h in have])] if have else []
    health = ledger.health(start, end) if have else BuildHealth()
    notices: list[str] = []
    deployments = pd.DataFrame()
    if missing:
        book = book if book is not None else PriceBook.load(settings)
        for lo, hi in _runs(missing):
            c = compute(lens, settings, book, lo, min(hi, end))
            parts.append(c.rows)
            health.merge(c.health)
            notices += c.notices
            deployments = c.deployments
    if deployments.empty:
        deps = lens.deployments()
        deployments = deps.frame if deps.status != "failed" else pd.DataFrame()
    kept = [p for p in parts if not p.empty]
    rows = pd.concat(kept, ignore_index=True) if kept else empty_ledger()
    return LedgerRead(rows, len(have), len(missing), health, notices, deployments)


def _runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for h in sorted(hours):
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


# ---- status and late records -----------------------------------------------------------------------------


def late_records(lens: LensLike, settings: Settings, since: timedelta = timedelta(days=7)) -> pd.DataFrame:
    """Hour, Closed (requests the ledger counted when it closed the hour), Now (what the workspace holds
    now), Late (the difference): the closed hours where records arrived after closing."""
    closed = Ledger.for_settings(settings).closed_hours()
    if not closed:
        return pd.DataFrame(columns=["Hour", "Closed", "Now", "Late"])
    end = max(parse_hour(k) for k in closed) + HOUR
    start = max(min(parse_hour(k) for k in closed), end - since)
    r = lens.run("requests_per_hour", start=start, end=end)
    if r.status == "failed":
        raise CostDataError(f"cannot count late records: {r.notice}")
    now = {hour_key(t): int(n) for t, n in zip(r.frame["TimeGenerated"], r.frame["Requests"], strict=True)}
    rows = []
    for k, info in sorted(closed.items()):
        if parse_hour(k) < start:
            continue
        later = now.get(k, 0)
        if later != int(info.get("requests", 0)):
            rows.append(
                {
                    "Hour": parse_hour(k),
                    "Closed": int(info.get("requests", 0)),
                    "Now": later,
                    "Late": later - int(info.get("requests", 0)),
                }
            )
    return pd.DataFrame(rows, columns=["Hour", "Closed", "Now", "Late"])


def status(settings: Settings) -> dict[str, Any]:
    """What `cost ledger status` and Data health show, from the manifest alone (no query)."""
    ledger = Ledger.for_settings(settings)
    m = ledger.manifest()
    hours = sorted(m.get("hours", {}))
    builds = m.get("builds", [])
    last = builds[-1] if builds else None
    lock = ledger.writer_lock("status").holder()
    return {
        "path": str(ledger.root),
        "closed_hours": len(hours),
        "first_hour": hours[0] if hours else None,
        "last_hour": hours[-1] if hours else None,
        "versions": sorted({str(v.get("build", "")) for v in m.get("hours", {}).values()}),
        "last_build": last,
        "rebuilds": m.get("rebuilds", [])[-10:],
        "writer": lock.describe() if lock else None,
        "health": ledger.health(datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC)).as_dict(),
    }


# ---- what pages and statements read ----------------------------------------------------------------------

TOKEN_QUANTITY_METERS = (METER_INPUT, METER_CACHED, METER_EMBEDDINGS)


def caller_rows(rows: pd.DataFrame, *, grain: str = "D") -> pd.DataFrame:
    """Ledger rows folded back into one row per period × caller line (the shape pages and statements
    use): Requests, PromptTokens (input + cached + embeddings), CachedTokens, CompletionTokens,
    ReasoningTokens, Cost (effective; NaN when unpriced), ListCost, Priced."""
    keys = [
        "Resource",
        "Deployment",
        "Model",
        "Version",
        "Sku",
        "Region",
        "ObjectId",
        "CallerIP",
        "Feature",
        "Team",
        "CostCenter",
        "Category",
        "Method",
        "Rule",
        "Priced",
    ]
    if rows.empty:
        numbers = [
            "Requests",
            "PromptTokens",
            "CachedTokens",
            "CompletionTokens",
            "ReasoningTokens",
            "Cost",
            "ListCost",
        ]
        dtypes: dict[str, Any] = {"Day": "datetime64[us, UTC]", "Hour": "datetime64[us, UTC]", "Priced": bool}
        dtypes |= dict.fromkeys(numbers, "float64")
        cols = ["Day", "Hour", *keys, *numbers, "PriceKey"]
        return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in cols})
    r = rows.copy()
    r["Hour"] = pd.to_datetime(r["Hour"], utc=True)
    r["Day"] = r["Hour"].dt.floor("D")
    meter = r["Meter"]
    r["PromptTokens"] = np.where(meter.isin(TOKEN_QUANTITY_METERS), r["Quantity"], 0.0)
    r["CachedTokens"] = np.where(meter == METER_CACHED, r["Quantity"], 0.0)
    r["CompletionTokens"] = np.where(meter == METER_OUTPUT, r["Quantity"], 0.0)
    r["Cost"] = r["EffectiveCost"]
    period = ["Day"] if grain == "D" else ["Hour", "Day"]
    sums = ["Requests", "PromptTokens", "CachedTokens", "CompletionTokens", "ReasoningTokens", "Cost", "ListCost"]
    g = r.groupby([*period, *keys], dropna=False, sort=True)
    out = g[sums].sum(min_count=1).reset_index()
    out["PriceKey"] = g["PriceKey"].first().to_numpy()
    for c in sums[:5]:
        out[c] = out[c].fillna(0.0)
    out.loc[~out["Priced"].astype(bool), ["Cost", "ListCost"]] = np.nan
    return out


def ptu_summary(read_: LedgerRead, book: Any, start: datetime, end: datetime) -> pd.DataFrame:
    deps = ptu.ptu_deployments_frame(read_.deployments, book) if not read_.deployments.empty else pd.DataFrame()
    if deps.empty:
        return pd.DataFrame()
    rows = caller_rows(read_.rows)
    return ptu.ptu_summary(rows, deps, book, start, end)
