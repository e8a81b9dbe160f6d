"""Bench workspaces: built once per size (in a child process, timed, peak memory measured) and reused.

A workspace is reused when its WorkspaceInfo matches the size, days and seed asked for and it is not
older than `max_age`; the seeding numbers measured when it was built are kept next to it
(`<file>.seed.json`), so a reused workspace still reports how fast it was seeded, and when.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.child import run_child

SEED = 7


def workspace_path(data_dir: Path, requests: int, days: int) -> Path:
    return data_dir / f"demo-{requests}-{days}d.duckdb"


def build(path: str, days: int, requests_per_day: int, seed: int, end: str) -> dict[str, Any]:
    """Runs in the child: seed the workspace, printing progress to stderr."""
    from queries.demo.seed import seed as do_seed

    def progress(done: int, total: int) -> None:
        print(f"    seeding {Path(path).name}: {done}/{total} steps", file=sys.stderr, flush=True)

    return do_seed(
        Path(path),
        days=days,
        requests_per_day=requests_per_day,
        seed=seed,
        end=datetime.fromisoformat(end),
        progress=progress,
    )


def _info(path: Path) -> dict[str, str]:
    from queries.demo import workspace_info

    try:
        return workspace_info(path)
    except Exception:
        return {}


def ensure(data_dir: Path, requests: int, days: int, *, max_age: timedelta, now: datetime) -> dict[str, Any]:
    """The workspace for `requests` over `days`: its path, end time and seeding measurement."""
    path = workspace_path(data_dir, requests, days)
    meta_path = path.with_name(path.name + ".seed.json")
    rpd = requests // days
    info = _info(path) if path.exists() else {}
    fresh = False
    if info and meta_path.exists():
        end = datetime.fromisoformat(info["end"].replace("Z", "+00:00"))
        fresh = (
            info.get("seed") == str(SEED)
            and info.get("days") == str(days)
            and info.get("requests_per_day") == str(rpd)
            and now - end <= max_age
        )
    if fresh:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        meta["reused"] = True
        print(f"  reusing {path} (seeded {meta['seeded_at']})", flush=True)
        return meta
    end_at = now.replace(minute=0, second=0, microsecond=0)
    print(f"  seeding {requests:,} requests over {days} days into {path} ...", flush=True)
    out = run_child(
        "bench.seeding:build",
        {"path": str(path), "days": days, "requests_per_day": rpd, "seed": SEED, "end": end_at.isoformat()},
    )
    ans = out["answer"]
    meta = {
        "path": str(path),
        "requests": int(ans["requests"]),
        "rows": int(ans["rows"]),
        "days": days,
        "seed": SEED,
        "end": end_at.isoformat(),
        "seeded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed_wall_s": round(out["wall_s"], 2),
        "seed_requests_per_s": round(int(ans["requests"]) / out["wall_s"]),
        "seed_peak_rss_mb": round(out["peak_rss_mb"], 1),
        "file_mb": round(path.stat().st_size / 2**20, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    meta["reused"] = False
    print(
        f"  seeded {meta['requests']:,} requests in {meta['seed_wall_s']} s "
        f"({meta['seed_requests_per_s']:,}/s, peak {meta['seed_peak_rss_mb']} MB)",
        flush=True,
    )
    return meta
