"""A real `aoai-lens serve` (or `aoai-lens ...`) in a subprocess, and a client that fetches every page's
HTML and every page callback's JSON the way the browser does (Dash's /_dash-update-component).

Served apps run in their own processes: Dash keeps page callbacks in process-wide registries, so a
second app inside the test process would take them from the session's dashboard app."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dashboard.cli"]
PAGES = ["/", "/cost", "/features", "/reliability", "/probes", "/alerts", "/data-health"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AOAI_LENS_")}
    # the demo month's backfilled history is tested on its own (tests/alerts/test_backfill.py); these
    # servers and commands skip it unless a test asks for it
    env["AOAI_LENS_DEMO__BACKFILL"] = "false"
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=clean_env(env), cwd=cwd, capture_output=True, text=True, timeout=timeout)


@contextmanager
def serving(args: list[str], env: Mapping[str, str], cwd: Path, port: int) -> Iterator[dict[str, Any]]:
    """Start `aoai-lens serve ...`, wait for /healthz to answer with its first checks done (not
    "starting"), yield {"url", "proc", "first_healthz": (status, seconds, body) of the first answer};
    on exit stop it (SIGTERM) and put its stderr in ["stderr"]."""
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *args],
        env=clean_env(env),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    info: dict[str, Any] = {"url": url, "proc": proc, "stderr": ""}
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"serve exited with {proc.returncode}:\n{err[-3000:]}")
            try:
                started = time.monotonic()
                answer = requests.get(url + "/healthz", timeout=5)
                took = time.monotonic() - started
                body = answer.json() if answer.headers.get("Content-Type", "").startswith("application/json") else None
                info.setdefault("first_healthz", (answer.status_code, took, body))
                if not _starting(answer):
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or a worker still starting
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer /healthz within 90 s") from None
            time.sleep(0.2)
        yield info
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        info["stderr"] = (out or "") + (err or "")


def _starting(r: requests.Response) -> bool:
    try:
        return r.status_code in (429, 503) and r.json().get("status") in ("starting", None)
    except ValueError:  # not JSON: a 429 page
        return True


def page_callbacks(session: requests.Session, url: str) -> list[dict[str, Any]]:
    """The page-filling callbacks: those whose inputs are plain ids (no pattern-matching)."""
    deps = session.get(url + "/_dash-dependencies", timeout=30).json()
    out = []
    for d in deps:
        ids = [i["id"] for i in d["inputs"]] + [s["id"] for s in d.get("state", [])]
        if any(i.startswith("{") for i in ids):
            continue
        if not any(i["property"] == "data" and i["id"].endswith("-filters") for i in d["inputs"]):
            continue
        out.append(d)
    return out


def _one_output(part: str) -> dict[str, Any]:
    cid, prop = part.rsplit(".", 1)
    return {"id": json.loads(cid) if cid.startswith("{") else cid, "property": prop}


def _outputs(output: str) -> Any:
    if output.startswith(".."):
        return [_one_output(p) for p in output[2:-2].split("...")]
    return _one_output(output)


def call(session: requests.Session, url: str, dep: dict[str, Any]) -> requests.Response:
    body = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": [{"id": i["id"], "property": i["property"], "value": None} for i in dep["inputs"]],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]],
        "state": [{"id": s["id"], "property": s["property"], "value": None} for s in dep.get("state", [])],
    }
    return session.post(
        url + "/_dash-update-component",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def _stores(node: Any) -> Iterator[tuple[dict[str, str], str]]:
    """Every panel's CSV reference in a callback answer: (its id, its data)."""
    if isinstance(node, dict):
        props = node.get("props")
        if isinstance(props, dict):
            pid = props.get("id")
            if isinstance(pid, dict) and pid.get("type") == "panel-data" and props.get("data"):
                yield pid, str(props["data"])
        for v in node.values():
            yield from _stores(v)
    elif isinstance(node, list):
        for v in node:
            yield from _stores(v)


def download(session: requests.Session, url: str, pid: dict[str, str], data: str) -> requests.Response:
    """Click a panel's CSV button the way the browser does (the pattern-matching download callback)."""

    def wild(kind: str) -> str:
        return json.dumps({"key": ["MATCH"], "page": ["MATCH"], "type": kind}, separators=(",", ":"))

    def concrete(kind: str) -> dict[str, str]:
        return {"key": pid["key"], "page": pid["page"], "type": kind}

    body = {
        "output": f"{wild('panel-download')}.data",
        "outputs": {"id": concrete("panel-download"), "property": "data"},
        "inputs": [{"id": concrete("panel-csv"), "property": "n_clicks", "value": 1}],
        "changedPropIds": [json.dumps(concrete("panel-csv"), separators=(",", ":")) + ".n_clicks"],
        "state": [
            {"id": concrete("panel-data"), "property": "data", "value": data},
            {"id": concrete("panel-csv"), "property": "id", "value": concrete("panel-csv")},
        ],
    }
    return session.post(
        url + "/_dash-update-component",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def everything_served(session: requests.Session, url: str) -> dict[str, str]:
    """Every page's HTML, every page callback's JSON answer, and every panel's CSV download."""
    seen: dict[str, str] = {}
    for p in PAGES:
        r = session.get(url + p, timeout=30)
        assert r.status_code == 200, (p, r.status_code)
        seen[f"GET {p}"] = r.text
    seen["layout"] = session.get(url + "/_dash-layout", timeout=30).text
    deps = page_callbacks(session, url)
    assert len(deps) >= len(PAGES), [d["output"][:60] for d in deps]
    for d in deps:
        r = call(session, url, d)
        assert r.status_code in (200, 204), (d["output"][:80], r.status_code, r.text[:500])
        seen[f"callback {d['output'][:60]}"] = r.text
        if r.status_code == 200:
            for pid, data in _stores(r.json()):
                got = download(session, url, pid, data)
                assert got.status_code in (200, 204), (pid, got.status_code, got.text[:300])
                seen[f"csv {pid['page']}/{pid['key']}"] = got.text
    assert any(k.startswith("csv ") for k in seen), "no panel offered a CSV download"
    return seen


def route(session: requests.Session, url: str, path: str, search: str) -> requests.Response:
    """Dash's page router, as the browser calls it for an address: the page's layout for `path` with
    the query string `search` (what a link with hostile or odd values would make the server render)."""
    deps = session.get(url + "/_dash-dependencies", timeout=30).json()
    router = next(d for d in deps if d["output"].startswith(".._pages_content"))
    body = {
        "output": router["output"],
        "outputs": _outputs(router["output"]),
        "inputs": [
            {"id": "_pages_location", "property": "pathname", "value": path},
            {"id": "_pages_location", "property": "search", "value": search},
        ],
        "changedPropIds": ["_pages_location.pathname"],
        "state": [],
    }
    return session.post(
        url + "/_dash-update-component",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def post_callback(
    session: requests.Session, url: str, dep: dict[str, Any], values: Mapping[str, Any]
) -> requests.Response:
    """One page callback with chosen input values (`id.property` → value; the others None)."""
    body = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": [
            {"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
            for i in dep["inputs"]
        ],
        "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]],
        "state": [{"id": s["id"], "property": s["property"], "value": None} for s in dep.get("state", [])],
    }
    return session.post(
        url + "/_dash-update-component",
        data=json.dumps(body),
        headers={"Content-Type": "application/json"},
        timeout=120,
    )


def components(node: Any) -> Iterator[dict[str, Any]]:
    """Every Dash component (a dict with "type" and "props") in a decoded callback answer or layout."""
    if isinstance(node, dict):
        if "type" in node and isinstance(node.get("props"), dict):
            yield node
        for v in node.values():
            yield from components(v)
    elif isinstance(node, list):
        for v in node:
            yield from components(v)


def csv_downloads(answer: Any) -> list[str]:
    """The CSV text behind each panel's CSV button in a decoded callback answer."""
    out = []
    for c in components(answer):
        cid = c["props"].get("id")
        if isinstance(cid, dict) and cid.get("type") == "panel-data" and c["props"].get("data"):
            out.append(c["props"]["data"])
    return out


def figures(answer: Any) -> list[dict[str, Any]]:
    """Every chart's figure in a decoded callback answer."""
    return [c["props"]["figure"] for c in components(answer) if c["type"] == "Graph" and c["props"].get("figure")]
