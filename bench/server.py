"""The server under load: `aoai-lens serve` on a loopback port over a bench workspace.

Every page's data is fetched the way the browser does it: a POST to `/_dash-update-component` for the
page's data callback (found in `/_dash-dependencies`: the callback whose input is `<page>-filters`).
`load` runs N bounded user threads for a fixed time, each walking the pages in turn; the server's peak
resident memory is read from /proc/<pid>/status (VmHWM).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

PAGE_PREFIX = {"overview": "ov", "cost": "cost", "features": "feat", "reliability": "rel", "data_health": "dh"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _prop(spec: str) -> dict[str, Any]:
    """'ov-kpis.children' or '{"key":...}.children' → Dash's {id, property} (pattern ids are JSON)."""
    ident, prop = spec.rsplit(".", 1)
    return {"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop}


class Server:
    def __init__(self, workspace: Path, data_dir: Path, *, workers: int = 1, redis_url: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, AOAI_LENS_DATA_DIR=str(data_dir), AOAI_LENS_DEMO__PATH=str(workspace))
        if redis_url:
            env.update(AOAI_LENS_CACHE__BACKEND="redis", AOAI_LENS_CACHE__REDIS_URL=redis_url)
        self.workers = workers
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "aoai-lens"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-scheduler",
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"aoai-lens serve exited with {self.proc.returncode}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.5)
        else:
            self.stop()
            raise RuntimeError("aoai-lens serve did not answer /healthz within 120 s")
        self.deps = requests.get(self.base + "/_dash-dependencies", timeout=30).json()

    def payload(self, page_id: str, rng: str) -> dict[str, Any]:
        """The data callback's request body for one page: the filters store, plus the cost page's controls."""
        for dep in self.deps:
            ids = [i["id"] for i in dep["inputs"]]
            if f"{page_id}-filters" in ids:
                values: dict[str, Any] = {f"{page_id}-filters": {"range": rng, "deployments": [], "problems": []}}
                values.update({f"{page_id}-by": "team", f"{page_id}-month": None, f"{page_id}-idle": False})
                return {
                    "output": dep["output"],
                    "outputs": [_prop(o) for o in dep["output"].strip(".").split("...")],
                    "inputs": [
                        {"id": i["id"], "property": i["property"], "value": values.get(i["id"])} for i in dep["inputs"]
                    ],
                    "changedPropIds": [f"{page_id}-filters.data"],
                    "state": [],
                }
        raise KeyError(page_id)

    def page_ids(self) -> list[str]:
        return sorted(
            {
                i["id"][: -len("-filters")]
                for dep in self.deps
                for i in dep["inputs"]
                if str(i["id"]).endswith("-filters")
            }
        )

    def fetch(self, session: requests.Session, body: dict[str, Any]) -> tuple[float, bool]:
        t0 = time.perf_counter()
        try:
            r = session.post(self.base + "/_dash-update-component", json=body, timeout=60)
            # a panel that failed inside an HTTP 200 is an error too (panels.py marks it "panel-failed")
            ok = r.status_code == 200 and "response" in r.json() and "panel-failed" not in r.text
        except (requests.RequestException, ValueError):
            ok = False
        return time.perf_counter() - t0, ok

    def stop(self) -> float:
        """Stop the server; its peak resident memory (MB): with gunicorn, the largest worker's, or all of
        them together? The largest one's here (each worker is a process with its own memory)."""
        peak = 0.0
        if self.proc.poll() is None:
            pids = [self.proc.pid]
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
                pids += [int(c) for c in children]
            except OSError:
                pass
            peak = max(vm_hwm_mb(p) for p in pids)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return peak


def start_redis(dir_: Path) -> tuple[subprocess.Popen[bytes] | None, str | None]:
    """Debian's redis-server on a free loopback port (the workers' shared cache), or none if missing."""
    import shutil

    exe = shutil.which("redis-server")
    if exe is None:
        return None, None
    port = free_port()
    dir_.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(dir_)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def sizes(server: Server, bodies: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Each page's answer: its JSON bytes, and the bytes on the wire when the browser accepts gzip."""
    out = {}
    with requests.Session() as s:
        for p, body in bodies.items():
            r = s.post(
                server.base + "/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip, br"}, timeout=120
            )
            raw = s.post(
                server.base + "/_dash-update-component", json=body, headers={"Accept-Encoding": "identity"}, timeout=120
            )
            out[p] = {
                "json_bytes": len(raw.content),
                "wire_bytes": int(r.headers.get("Content-Length", len(r.content))),
            }
    return out


def warm_times(server: Server, bodies: dict[str, dict[str, Any]], n: int = 5) -> dict[str, float]:
    """Median time of a page's answer once it is cached (one user, sequential): the server's warm time."""
    out = {}
    with requests.Session() as s:
        for p, body in bodies.items():
            times = [server.fetch(s, body)[0] for _ in range(n)]
            out[p] = round(statistics.median(times), 4)
    return out


def serve_and_load(
    workspace: Path,
    data_dir: Path,
    *,
    users: int,
    seconds: float,
    rng: str,
    max_per_user: int,
    workers: int = 2,
) -> dict[str, Any]:
    # the production shape: the scheduler keeps the cost ledger built; here it is built once before serving
    from bench.child import run_child

    info = json.loads(
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import duckdb, json; c = duckdb.connect({str(workspace)!r}, read_only=True); "
                "print(json.dumps(dict(c.execute('SELECT Key, Value FROM WorkspaceInfo').fetchall())))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    run_child(
        "bench.ledger:first_build",
        {"path": str(workspace), "data_dir": str(data_dir), "now": info["end"], "days": int(info["days"])},
    )
    redis_proc, redis_url = start_redis(data_dir / "redis") if workers > 1 else (None, None)
    server = Server(workspace, data_dir, workers=workers, redis_url=redis_url)
    try:
        pages = server.page_ids()
        bodies = {p: server.payload(p, rng) for p in pages}
        # every page once, cold, in turn: the server's first view of each
        first: dict[str, float] = {}
        first_ok = True
        with requests.Session() as s:
            for p in pages:
                dt, ok = server.fetch(s, bodies[p])
                first[p] = round(dt, 3)
                first_ok &= ok
        rss_after_pages = vm_hwm_mb(server.proc.pid)
        answer_sizes = sizes(server, bodies)
        warm = warm_times(server, bodies)
        lat: list[float] = []
        per_page: dict[str, list[float]] = {p: [] for p in pages}
        errors = 0
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def user(k: int) -> None:
            nonlocal errors
            with requests.Session() as s:
                i = k
                for _ in range(max_per_user):
                    if time.monotonic() >= stop_at:
                        return
                    p = pages[i % len(pages)]
                    i += 1
                    dt, ok = server.fetch(s, bodies[p])
                    with lock:
                        lat.append(dt)
                        per_page[p].append(dt)
                        errors += 0 if ok else 1

        threads = [threading.Thread(target=user, args=(k,), daemon=True) for k in range(users)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        wall = time.monotonic() - t0
    finally:
        peak = server.stop()
        if redis_proc is not None:
            redis_proc.terminate()

    def q(xs: list[float], p: float) -> float:
        return round(statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1], 4) if len(xs) > 1 else 0.0

    return {
        "pages": pages,
        "range": rng,
        "workers": workers,
        "cache": "redis" if redis_url else "memory",
        "answer_sizes": answer_sizes,
        "warm_server_s": warm,
        "first_view_s": first,
        "first_views_ok": first_ok,
        "peak_rss_mb_after_every_page": round(rss_after_pages, 1),
        "peak_rss_mb": round(peak, 1),
        "load": {
            "users": users,
            "seconds": round(wall, 1),
            "requests": len(lat),
            "errors": errors,
            "requests_per_s": round(len(lat) / wall, 1) if wall else 0.0,
            "p50_s": q(lat, 50),
            "p95_s": q(lat, 95),
            "max_s": round(max(lat), 4) if lat else 0.0,
            "p95_s_by_page": {p: q(v, 95) for p, v in per_page.items()},
        },
    }


__all__ = ["PAGE_PREFIX", "json", "serve_and_load"]
