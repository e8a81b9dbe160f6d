"""Run one measured task in a fresh Python process, so each peak memory is that task's alone.

The parent calls `run_child("bench.seeding:build", {...})`; the child imports the function, calls it with
the arguments, and prints one JSON line: the function's answer, its wall time and the child's own peak
resident memory (`getrusage(RUSAGE_SELF).ru_maxrss`, kB on Linux). Children never share a peak, which
`RUSAGE_CHILDREN` (the maximum over every child ever waited for) would not guarantee.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MARK = "BENCH-CHILD-RESULT "
ROOT = Path(__file__).resolve().parent.parent


def run_child(target: str, kwargs: dict[str, Any], *, timeout_s: float = 3600) -> dict[str, Any]:
    """Run `module:function(**kwargs)` in a child process; its answer plus wall_s and peak_rss_mb."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.child", target, json.dumps(kwargs)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=None,  # progress goes straight to the terminal
        text=True,
        timeout=timeout_s,
        check=False,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench child {target} failed (exit {proc.returncode})")
    out: dict[str, Any] = json.loads(lines[-1][len(MARK) :])
    return out


def main(argv: list[str]) -> int:
    target, raw = argv
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    t0 = time.perf_counter()
    answer = fn(**json.loads(raw))
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.write(
        MARK + json.dumps({"answer": answer, "wall_s": wall, "peak_rss_mb": peak_kb / 1024}, default=str) + "\n"
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
