"""`serve --workers 2` (gunicorn) with a Redis cache and the scheduler as its own process: the workers
run no scheduler (each probe runs once, not three times), and a query one worker ran is a cache hit in
the other. Debian's redis-server, started here on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from hardening_server import CLI, call, clean_env, free_port, page_callbacks, serving

from queries.config import Settings


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    exe = shutil.which("redis-server")
    if exe is None:
        message = "redis-server is not installed: `make chromium` (or apt-get install redis-server) installs it"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def _cache_header(r: requests.Response) -> tuple[int, int, int]:
    backend, hits, misses = r.headers["X-Aoai-Lens-Cache"].split()
    assert backend == "redis"
    return int(r.headers["X-Aoai-Lens-Worker"]), int(hits.split("=")[1]), int(misses.split("=")[1])


def test_two_workers_share_the_cache_and_run_no_scheduler(
    tmp_path: Path, demo_settings: Settings, redis_url: str
) -> None:
    from alerts.store import Store

    workspace = tmp_path / "demo.duckdb"  # the scheduler's ingestion writes to it: a copy of the session's
    shutil.copy(demo_settings.demo_path, workspace)
    data = tmp_path / "data"
    env = {
        "AOAI_LENS_DATA_DIR": str(data),
        "AOAI_LENS_DEMO__PATH": str(workspace),
        "AOAI_LENS_CACHE__BACKEND": "redis",
        "AOAI_LENS_CACHE__REDIS_URL": redis_url,
    }
    with serving(["--workers", "2"], env, tmp_path, free_port()) as srv:
        url = srv["url"]
        assert requests.get(url + "/healthz", timeout=30).json()["checks"]["scheduler"]["mode"] == "external"

        # cache hits across workers: one worker runs the Overview's queries, the other answers from Redis
        s = requests.Session()
        overview = next(d for d in page_callbacks(s, url) if d["inputs"][0]["id"] == "ov-filters")
        first = call(s, url, overview)
        assert first.status_code == 200
        pid_a, _hits, misses = _cache_header(first)
        assert misses > 0
        other = None
        with ThreadPoolExecutor(4) as pool:
            for _ in range(10):  # concurrent requests: a busy worker leaves the next one to the other
                for r in pool.map(lambda _: call(requests.Session(), url, overview), range(4)):
                    assert r.status_code == 200, r.text[:500]
                    pid, hits, _m = _cache_header(r)
                    if pid != pid_a:
                        other = (pid, hits)
                if other:
                    break
        assert other is not None, "every request was answered by the same worker"
        assert other[1] > 0, "the other worker missed the cache the first one filled"

        # the scheduler, once, as its own process
        sched = subprocess.Popen(
            [*CLI, "scheduler"], env=clean_env(env), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 90
            want = {
                "probe:chat-gpt4o:chat",
                "probe:chat-gpt4o-mini:chat",
                "probe:rag-gpt41:chat",
                "probe:embed-small:embedding",
            }
            while True:
                counts = Store(data / "state.sqlite").job_counts() if (data / "state.sqlite").exists() else {}
                if want | {"alerts:evaluate"} <= set(counts):
                    break
                assert sched.poll() is None, sched.communicate()[0][-3000:]
                assert time.monotonic() < deadline, f"the scheduler ran only {sorted(counts)}"
                time.sleep(0.5)
            # both workers have served requests for a while; a scheduler in either would have run its jobs at start
            for r in [requests.get(url + "/healthz", timeout=30) for _ in range(4)]:
                assert r.json()["checks"]["scheduler"]["mode"] == "external"
        finally:
            sched.terminate()
            sched.wait(timeout=30)
        store = Store(data / "state.sqlite")
        counts = store.job_counts()
        for job in want | {"alerts:evaluate"}:
            assert sum(counts[job].values()) == 1, (job, counts[job])
        probes = store.probes()
        assert sorted(probes.groupby("deployment").size().to_dict().values()) == [1, 1, 1, 1]
        delivered = store.deliveries()
        per_transition = {}
        for d in delivered:
            per_transition[(d["transition_id"], d["channel"])] = (
                per_transition.get((d["transition_id"], d["channel"]), 0) + 1
            )
        assert all(n == 1 for n in per_transition.values())
