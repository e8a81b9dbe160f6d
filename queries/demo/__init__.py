"""The embedded demo workspace: the fictional world and the workload simulator that fills it."""

from __future__ import annotations

from pathlib import Path

import duckdb


def workspace_info(path: Path) -> dict[str, str]:
    """What `demo seed` recorded about a workspace: seed, days, end time, request count."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(con.execute("SELECT Key, Value FROM WorkspaceInfo").fetchall())
    finally:
        con.close()


def ensure_workspace(path: Path, *, days: int, requests_per_day: int, seed: int) -> bool:
    """Build the demo workspace if it is missing, with a progress bar; True when it was built."""
    if path.exists():
        return False
    import sys

    from tqdm import tqdm

    from queries.demo.seed import seed as build

    print(f"no demo workspace at {path}: building {days} days x {requests_per_day:,} requests/day", file=sys.stderr)
    with tqdm(total=days + 1, desc="seeding", unit="day", file=sys.stderr) as bar:
        build(
            path,
            days=days,
            requests_per_day=requests_per_day,
            seed=seed,
            progress=lambda done, total: bar.update(done - bar.n),
        )
    return True
