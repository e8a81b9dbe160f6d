"""The cost ledger's builds, each in its own child process (wall time after imports, peak RSS):

- `first_build`: every hour of the workspace closed from nothing (what `cost ledger build` does on a new
  installation), with the late-arrival window the workspace's measured ingestion lag gives;
- `catch_up`: with the ledger built, one more hour becomes due (the scheduler's job every few minutes):
  the time to close it, in a new process too, so it includes opening the workspace.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.pages import bench_settings


def _lens(settings: Any, now: datetime) -> Any:
    from queries.lens import Lens

    lens = Lens.from_settings(settings)
    lens.now = lambda: now
    return lens


def first_build(path: str, data_dir: str, now: str, days: int) -> dict[str, Any]:
    """Runs in the child: remove the ledger and build every hour of the workspace."""
    from queries.cost import ledger_store

    settings = bench_settings(Path(path), Path(data_dir))
    shutil.rmtree(settings.ledger_path, ignore_errors=True)
    at = datetime.fromisoformat(now)
    lens = _lens(settings, at)
    t0 = time.perf_counter()
    report = ledger_store.build(lens, settings, since=timedelta(days=days + 1), now=at)
    took = time.perf_counter() - t0
    files = sorted(settings.ledger_path.glob("day=*.parquet"))
    return {
        "seconds": took,
        "hours": report.hours_built,
        "window_min": report.window.minutes if report.window else None,
        "horizon": str(report.horizon),
        "ledger_mb": round(sum(f.stat().st_size for f in files) / 2**20, 2),
        "rows": int(sum(__import__("pyarrow.parquet").parquet.ParquetFile(f).metadata.num_rows for f in files)),
    }


def catch_up(path: str, data_dir: str, now: str) -> dict[str, Any]:
    """Runs in the child: one hour later than the first build, close the hour that became due."""
    from queries.cost import ledger_store

    settings = bench_settings(Path(path), Path(data_dir))
    at = datetime.fromisoformat(now) + timedelta(hours=1)
    lens = _lens(settings, at)
    t0 = time.perf_counter()
    report = ledger_store.build(lens, settings, since=timedelta(days=2), now=at)
    return {"seconds": time.perf_counter() - t0, "hours": report.hours_built}
