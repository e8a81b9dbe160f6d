"""Bad input: each is counted or named, nothing crashes, nothing hostile runs.

- Diagnostic records (the importer): not JSON, missing fields, times in the future are skipped and
  counted by reason; malformed properties_s, unknown operation names are loaded and counted as flagged.
- Queries over rows with broken properties_s, unknown models and hostile names: every catalogue query
  answers, and the pages that show those names carry them as text only (no executable markup).
- Configuration: an invalid value in every settings section is named by its location; exit code 2.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import shutil
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from hardening_server import (
    ROOT,
    csv_downloads,
    everything_served,
    figures,
    free_port,
    page_callbacks,
    post_callback,
    route,
    serving,
)
from test_faults import rendered, the_app

from dashboard.cli import main as cli_main
from queries import catalogue
from queries.config import Settings
from queries.demo import world
from queries.ingest import ingest
from queries.lens import Lens

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
LONG = "d" * 10_000
LINK = '<a href="https://evil.example/phish">open</a>'  # a clickable link, were Plotly to render it
# cells a spreadsheet would run: a link, DDE command lines, and a formula hidden behind a tab or CR
HYPERLINK = '=HYPERLINK("https://evil.example/phish","open")'
FORMULAS = (
    HYPERLINK,
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
HOSTILE = (SCRIPT, IMG, LONG, LINK, *FORMULAS)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def record(when: datetime, deployment: str, *, object_id: str = "", **over: Any) -> list[dict[str, Any]]:
    """A RequestResponse record and its usage record, as diagnostic settings archive them."""
    res = world.RESOURCES[0]
    common = {
        "time": iso(when),
        "resourceId": res.arm_id,
        "operationName": "ChatCompletions_Create",
        "correlationId": f"corr-{abs(hash((when, deployment, object_id)))}",
        "location": res.location,
    }
    props = {
        "apiName": "Azure OpenAI API version 2024-10-21",
        "objectId": object_id,
        "streamType": "Non-Streaming",
        "modelDeploymentName": deployment,
        "modelName": "gpt-4o",
        "modelVersion": "2024-11-20",
    }
    rr = {
        **common,
        "category": "RequestResponse",
        "durationMs": 850,
        "resultSignature": "200",
        "callerIpAddress": "10.1.2.***",
        "properties": props,
        **over,
    }
    usage = {
        **common,
        "category": "AzureOpenAIRequestUsage",
        "properties": {
            "modelDeploymentName": deployment,
            "modelName": props["modelName"],
            "modelVersion": props["modelVersion"],
            "promptTokens": [120],
            "cachedTokens": [0],
            "generatedTokens": [30],
        },
    }
    return [rr, usage]


@pytest.fixture(scope="module")
def hostile_workspace(demo_workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A copy of the demo workspace with bad and hostile records ingested; the importer's report."""
    tmp = tmp_path_factory.mktemp("hostile")
    ws = tmp / "demo.duckdb"
    shutil.copy(demo_workspace, ws)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    t = now - timedelta(minutes=20)
    lines: list[str] = []
    good: list[dict[str, Any]] = []
    for i, name in enumerate(HOSTILE):
        good += record(t + timedelta(seconds=i), name, object_id=name)  # hostile deployment and caller ids
    good += record(t, "chat-gpt4o", modelName="gpt-99")  # an unknown model (override ignored: in props below)
    good[-2]["properties"]["modelName"], good[-2]["properties"]["modelVersion"] = "gpt-99", "2099-01-01"
    good[-1]["properties"]["modelName"], good[-1]["properties"]["modelVersion"] = "gpt-99", "2099-01-01"
    broken = record(t, "chat-gpt4o")[0]
    broken["properties"] = '{"modelDeploymentName": "chat-gpt4o", "objectId": '  # cut off: not JSON
    unknown_op = record(t, "chat-gpt4o")[0]
    unknown_op["operationName"] = "Frobnicate_Create"
    lines += [json.dumps(r) for r in [*good, broken, unknown_op]]
    missing = record(t, "chat-gpt4o")[0]
    del missing["resourceId"]
    future = record(now + timedelta(days=2), "chat-gpt4o")[0]
    lines += [json.dumps(missing), json.dumps(future), "this is not json {", json.dumps([1, 2, 3])]
    archive = tmp / "diagnostics" / "bad.jsonl"
    archive.parent.mkdir()
    archive.write_text("\n".join(lines) + "\n")
    report = ingest(archive.parent, ws, tmp / "offsets.json", clock=lambda: now.timestamp())
    HOSTILE_AT.append(t)
    return ws, report


HOSTILE_AT: list[datetime] = []  # when the hostile records were made (set by the fixture above)


def test_the_importer_counts_what_it_skipped_and_flagged(hostile_workspace: tuple[Path, Any]) -> None:
    _ws, report = hostile_workspace
    assert report.loaded == 2 * len(HOSTILE) + 2 + 2  # hostile pairs, unknown model pair, broken, unknown op
    assert report.bad == 4
    assert dict(report.skipped) == {"missing fields": 1, "time in the future": 1, "not JSON": 2}
    assert dict(report.flagged) == {"properties not a JSON object": 1, "unknown operationName": 1}
    text = str(report)
    assert "4 bad line(s) skipped (1 missing fields, 2 not JSON, 1 time in the future)" in text
    assert "1 properties not a JSON object" in text and "1 unknown operationName" in text
    assert any("after its arrival" in p for p in report.problems)
    assert any("missing resourceId" in p for p in report.problems)


@pytest.fixture(scope="module")
def hostile_settings(demo_settings: Settings, hostile_workspace: tuple[Path, Any], tmp_path_factory: Any) -> Settings:
    ws, _ = hostile_workspace
    return demo_settings.model_copy(
        update={
            "data_dir": tmp_path_factory.mktemp("hostile-data"),
            "demo": demo_settings.demo.model_copy(update={"path": ws}),
        }
    )


def test_every_query_answers_over_broken_rows(hostile_settings: Settings) -> None:
    lens = Lens.from_settings(hostile_settings)
    names = sorted(catalogue.load_catalogue())
    results = lens.run_many([(n, {"since": timedelta(days=1)}) for n in names])
    assert {r.name: r.status for r in results} == dict.fromkeys(names, "ok")
    summary = next(r for r in results if r.name == "summary_by_deployment").frame
    assert set(HOSTILE) <= set(summary["Deployment"])  # the names are data, shown as they are


def executable_markup(node: Any, path: str = "") -> list[str]:
    """Places in a Dash component tree (as JSON) where markup would be interpreted rather than shown."""
    found: list[str] = []
    if isinstance(node, dict):
        props = node.get("props") if isinstance(node.get("props"), dict) else {}
        if node.get("type") == "Markdown" and props.get("dangerously_allow_html"):
            found.append(f"{path}: Markdown with raw HTML")
        if node.get("type") in ("Iframe", "Script") or "srcDoc" in props:
            found.append(f"{path}: {node.get('type')}")
        for key in ("href", "src"):
            value = str(props.get(key) or "")
            if value.lower().startswith(("javascript:", "data:text/html")) or any(h in value for h in HOSTILE):
                found.append(f"{path}.{key}: {value[:60]}")
        for k, v in node.items():
            found += executable_markup(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += executable_markup(v, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("path", ["/", "/reliability", "/features", "/data-health"])
def test_hostile_names_reach_pages_as_text_only(path: str, hostile_settings: Settings, demo_settings: Settings) -> None:
    lens = Lens.from_settings(hostile_settings)
    bodies = rendered(the_app(demo_settings), path, hostile_settings, lens, {"range": "24h"})
    for key, text in bodies.items():
        assert "panel-failed" not in text, (path, key)
        assert executable_markup(json.loads(text)) == [], (path, key)
    if path == "/data-health":  # the malformed properties_s row is counted where data health is judged
        assert "1 record(s) in this range have properties_s that is not JSON" in bodies["categories"]
    if path == "/reliability":
        both = bodies["status"] + bodies["rates"]
        # shown as text: escaped where plotly would render HTML (the CSV behind each panel holds them as data)
        for name in (SCRIPT, IMG):
            assert json.dumps(html.escape(name, quote=False))[1:-1] in both, name


def test_the_index_page_does_not_echo_a_hostile_query_string(demo_settings: Settings) -> None:
    app = the_app(demo_settings)
    client = app.server.test_client()
    html = client.get("/reliability?deployment=%3Cscript%3Ealert(1)%3C%2Fscript%3E").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html


# ---- the served dashboard: basic auth, an admin (ops) and a user scoped to the support team (supp) -----
OPS = ("ops", "ops-password-for-the-hardening-tests")
SUPP = ("supp", "supp-password-for-the-hardening-tests")
BASIC_TOML = """
[dashboard]
auth = "basic"
basic_user = "ops"

[[dashboard.users]]
name = "supp"
teams = ["support"]
password_env = "SUPP_TEST_PASSWORD"
"""


def served_env(tmp: Path, workspace: Path, extra_toml: str = BASIC_TOML) -> dict[str, str]:
    (tmp / "aoai-lens.toml").write_text((ROOT / "queries" / "demo" / "demo.toml").read_text() + extra_toml)
    return {
        "AOAI_LENS_DATA_DIR": str(tmp / "data"),
        "AOAI_LENS_DEMO__PATH": str(workspace),
        "AOAI_LENS_DASHBOARD__BASIC_PASSWORD": OPS[1],
        "SUPP_TEST_PASSWORD": SUPP[1],
        "AOAI_LENS_SCHEDULER__ENABLED": "false",
    }


@pytest.fixture(scope="module")
def served(hostile_workspace: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`aoai-lens serve` with basic auth over the workspace holding the hostile names."""
    tmp = tmp_path_factory.mktemp("served-hostile")
    with serving([], served_env(tmp, hostile_workspace[0]), tmp, free_port()) as srv:
        yield {**srv, "data": tmp / "data"}


def session(who: tuple[str, str]) -> requests.Session:
    s = requests.Session()
    s.auth = who
    return s


def all_cells(text: str) -> set[str]:
    return {cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row}


def formula_cells(text: str) -> list[str]:
    """Cells of a CSV a spreadsheet would run as a formula: starting with = + - @ tab or CR and not a
    number."""
    out = []
    for row in csv.reader(io.StringIO(text, newline="")):
        for cell in row:
            if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                try:
                    float(cell.replace(",", ""))
                except ValueError:
                    out.append(cell)
    return out


def downloaded(answer: Any) -> list[str]:
    """The CSV files a download callback's answer hands the browser (`dcc.Download` data content)."""
    out: list[str] = []
    if isinstance(answer, dict):
        if isinstance(answer.get("content"), str) and answer.get("type") == "text/csv":
            out.append(answer["content"])
        for v in answer.values():
            out += downloaded(v)
    elif isinstance(answer, list):
        for v in answer:
            out += downloaded(v)
    return out


@pytest.mark.parametrize("who", [OPS, SUPP], ids=["admin", "team-scoped"])
def test_served_downloads_defuse_formulas_and_charts_show_names_as_text(served: dict[str, Any], who: Any) -> None:
    seen = everything_served(session(who), served["url"])
    downloads: list[str] = []
    charts: list[dict[str, Any]] = []
    for key, text in seen.items():
        if key.startswith("callback"):
            answer = json.loads(text)
            downloads += csv_downloads(answer)
            charts += figures(answer)
        if key.startswith("csv "):  # a panel's CSV button, clicked: the file the browser saves
            downloads += downloaded(json.loads(text))
    assert downloads and charts
    for text in downloads:
        assert formula_cells(text) == [], text[:300]
    cells = set().union(*(all_cells(text) for text in downloads))
    assert {"'" + HYPERLINK, "'\t=1+1", "'\r=1+1"} <= cells  # the names are there, as text
    for fig in charts:
        shown = json.dumps(fig)  # decoded from Dash's JSON, so `<` is `<` here
        for raw in ("<a href", "<script", "<img"):
            assert raw not in shown, shown[:300]
    assert any("&lt;a href=" in json.dumps(fig) for fig in charts)  # the link's name, escaped, is drawn


def test_cli_csv_exports_defuse_formulas(
    hostile_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clean_env: Path
) -> None:
    # callers no demo rule claims are attributed to a feature, team and cost center with formula names
    rule = {"feature": HYPERLINK, "team": FORMULAS[3], "cost_center": FORMULAS[2], "deployment_pattern": "*"}
    (clean_env / "aoai-lens.toml").write_text(
        (ROOT / "queries" / "demo" / "demo.toml").read_text()
        + "\n[[attribution]]\n"
        + "".join(f"{k} = {json.dumps(v)}\n" for k, v in rule.items())
    )
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(hostile_settings.data_dir))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(hostile_settings.demo_path))
    month = HOSTILE_AT[0].strftime("%Y-%m")
    outputs = {}
    for args in (
        ["query", "summary_by_deployment", "--since", "1d", "--format", "csv"],
        ["cost", "report", "--month", month, "--by", "feature", "--format", "csv"],
        ["cost", "report", "--month", month, "--format", "focus"],
    ):
        assert cli_main(args) == 0, args
        outputs[" ".join(args)] = text = capsys.readouterr().out
        assert formula_cells(text) == [], (args, text[:300])
    for args, text in outputs.items():
        assert "'" + HYPERLINK in all_cells(text), args  # the names are there, as text


# ---- odd addresses and callback inputs: a page with a notice, or a 400; never a 500 ---------------------
PAGE_PREFIX = {"/": "ov", "/cost": "cost", "/features": "feat", "/reliability": "rel", "/data-health": "dh"}
q = urllib.parse.quote
BAD_ADDRESSES = [
    "?range=custom&start=9999-01-01",
    "?range=custom&start=-5000-01-01",
    "?range=custom&start=2026-01-01&end=9999-12-31",
    "?range=custom&start=0001-01-01&end=0001-01-02",
    "?range=custom&start=abc&end=-1",
    "?range=custom&start=2026-01-01T00:00:00%2B99:00",
    "?range=%00%FF" + "x" * 5000,
    "?range=7d&month=9999-12&start=9999-01-01&end=-5000-01-01",
    f"?deployment={q(LINK)},{q(HYPERLINK)}&team={q(SCRIPT)}&resource={q(IMG)}",
]


def layout_store(answer: Any, page: str) -> Any:
    from hardening_server import components

    return next(c["props"]["data"] for c in components(answer) if c["props"].get("id") == f"{page}-filters")


@pytest.mark.parametrize("search", BAD_ADDRESSES)
def test_odd_addresses_give_the_page_with_a_notice(served: dict[str, Any], search: str) -> None:
    """Each page's layout for the address; then the data callback of one page (a different one for
    each address) with the filters the layout stored, as the browser does next."""
    s, url = session(SUPP), served["url"]
    deps = {d["inputs"][0]["id"]: d for d in page_callbacks(s, url)}
    fill = list(PAGE_PREFIX.values())[BAD_ADDRESSES.index(search) % len(PAGE_PREFIX)]
    for path, page in PAGE_PREFIX.items():
        r = route(s, url, path, search)
        assert r.status_code == 200, (path, search, r.status_code, r.text[:300])
        answer = r.json()
        store = layout_store(answer, page)
        problems = [c for c in components_of(answer) if "filter-problem" in str(c["props"].get("className"))]
        if "range=custom" in search or "%00" in search:
            assert problems, (path, search)  # the notice above the page
            assert store["range"] == "24h" or store["start"] is None, store  # showing the last 24h
        if page == fill:
            data = post_callback(s, url, deps[f"{page}-filters"], {f"{page}-filters.data": store})
            assert data.status_code == 200, (path, search, data.text[:300])


def components_of(answer: Any) -> list[dict[str, Any]]:
    from hardening_server import components

    return list(components(answer))


ODD_VALUES: list[Any] = [
    None,
    "",
    "9999-12",
    "-5000-01-01",
    "2026-13",
    12,
    -1,
    1e308,
    True,
    [],
    ["x"],
    {"a": 1},
    "x" * 5000,
    [[[]]],
    {"range": "custom", "start": "-5000"},
    {"range": "custom", "start": "9999-01-01T00:00:00+00:00"},
    {"range": 5, "deployments": 5, "problems": {"a": 1}},
]


def _concrete(dep_id: str) -> tuple[Any, bool]:
    """A real component id for a (maybe pattern-matching) dependency id, and whether it is an ALL list."""
    if not dep_id.startswith("{"):
        return dep_id, False
    pattern = json.loads(dep_id)
    many = any(v in (["ALL"], ["ALLSMALLER"]) for v in pattern.values())
    return {k: ("range" if k == "name" else "x") if isinstance(v, list) else v for k, v in pattern.items()}, many


def _odd_request(dep: dict[str, Any], value: Any) -> dict[str, Any]:
    def entries(deps: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = []
        for d in deps:
            cid, many = _concrete(d["id"])
            entry = {"id": cid, "property": d["property"], "value": value}
            out.append([entry] if many else entry)
        return out

    parts = dep["output"][2:-2].split("...") if dep["output"].startswith("..") else [dep["output"]]
    outputs = []
    for part in parts:
        cid, prop = part.rsplit(".", 1)
        concrete, many = _concrete(cid)
        outputs.append([{"id": concrete, "property": prop}] if many else {"id": concrete, "property": prop})
    return {
        "output": dep["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": entries(dep["inputs"]),
        "changedPropIds": [],
        "state": entries(dep.get("state", [])),
    }


# what a page's filter store may hold instead of filters (Filters.from_store reads every one leniently;
# each page's data callback gets a few, as rendering a page is not free)
ODD_STORES: list[Any] = ["x", [1], ODD_VALUES[-3], ODD_VALUES[-2], ODD_VALUES[-1]]


def test_odd_callback_inputs_never_500(served: dict[str, Any]) -> None:
    """Every callback of the app, every input set to each odd value: the answer is 200, 204 or 400."""
    s, url = session(SUPP), served["url"]
    deps = s.get(url + "/_dash-dependencies", timeout=30).json()
    assert len(deps) > 10
    seen: dict[int, int] = {}
    for dep in deps:
        renders_a_page = any(i["id"].endswith("-filters") for i in dep["inputs"])
        for value in ODD_STORES if renders_a_page else ODD_VALUES:
            body = _odd_request(dep, value)
            r = s.post(url + "/_dash-update-component", json=body, timeout=120)
            assert r.status_code in (200, 204, 400), (dep["output"][:80], value, r.status_code, r.text[:300])
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
    assert seen.get(200, 0) > len(deps)  # most odd values still give a page


@pytest.mark.parametrize("month", ["9999-12", "-5000-01", "2026-13", "0000-01", 12, ["2026-01"], {"a": 1}])
def test_an_odd_statement_month_gives_this_month_with_a_note(served: dict[str, Any], month: Any) -> None:
    s, url = session(OPS), served["url"]
    cost = next(d for d in page_callbacks(s, url) if d["inputs"][0]["id"] == "cost-filters")
    r = post_callback(s, url, cost, {"cost-month.value": month, "cost-by.value": ["team"], "cost-idle.value": "yes"})
    assert r.status_code == 200, r.text[:300]
    assert "no month" in r.text and "statement " in r.text


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        "{}",
        json.dumps({"output": 5}),
        json.dumps({"output": "url.search", "outputs": {"id": "url", "property": "search"}, "inputs": 5}),
        json.dumps({"output": "url.search", "outputs": {"id": "url", "property": "search"}, "inputs": [5]}),
        json.dumps({"output": "no-such.children", "outputs": {}, "inputs": [], "changedPropIds": []}),
    ],
)
def test_a_malformed_callback_request_is_a_400(served: dict[str, Any], body: str) -> None:
    r = session(SUPP).post(
        served["url"] + "/_dash-update-component", data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert r.status_code == 400, r.text[:300]


# ---- odd credentials: 401, never 500 ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "authorization",
    [
        b"Basic \xc3\xa4\xc3\xa4\xc3\xa4",  # non-ASCII bytes where base64 should be
        b"Basic \xff\xfe",
        "Basic " + base64.b64encode("supp:pässwörd".encode("latin-1")).decode(),  # not UTF-8 inside
        "Basic " + "A" * 20_000,
        "Bearer x",
    ],
)
def test_odd_basic_credentials_are_a_401(served: dict[str, Any], authorization: str | bytes) -> None:
    r = requests.get(served["url"] + "/", headers={"Authorization": authorization}, timeout=30)
    assert r.status_code == 401


def nested(depth: int, inside: str = "[") -> str:
    return inside * depth + {"[": "]", "{": "}"}[inside] * depth


@pytest.fixture(scope="module")
def served_appservice(hostile_workspace: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("served-appservice")
    toml = '\n[dashboard]\nauth = "appservice"\n[dashboard.group_teams]\n"11111111-2222-3333-4444-555555555555" = ["support"]\n'
    with serving([], served_env(tmp, hostile_workspace[0], toml), tmp, free_port()) as srv:
        yield srv["url"]


@pytest.mark.parametrize(
    "principal",
    [
        nested(50_000),  # a JSON array nested 50,000 deep
        '{"claims": ' + nested(50_000) + "}",
        '{"claims": [' + ",".join(['{"typ": "groups", "val": ' + nested(3000, "{") + "}"] * 3) + "]}",
        '{"claims": "not a list", "name_typ": []}',
        '{"claims": [1, "two", null]}',
        "\udcff not even UTF-8",
    ],
    ids=[
        "array-50000-deep",
        "claims-50000-deep",
        "claim-values-deep",
        "claims-a-string",
        "claims-not-objects",
        "bad-utf8",
    ],
)
def test_an_odd_client_principal_is_a_401(served_appservice: str, principal: str) -> None:
    header = base64.b64encode(principal.encode("utf-8", "surrogateescape")).decode()
    r = requests.get(served_appservice + "/", headers={"X-MS-CLIENT-PRINCIPAL": header}, timeout=30)
    assert r.status_code == 401, r.text[:200]
    r = requests.get(served_appservice + "/", headers={"X-MS-CLIENT-PRINCIPAL": "ä%%%" * 10}, timeout=30)
    assert r.status_code == 401


# ---- an unreadable workspace: its panels say so, naming the file, not where it is ----------------------
@pytest.fixture(scope="module")
def served_unreadable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A served dashboard whose demo workspace is a file of garbage (an unreadable or damaged file)."""
    tmp = tmp_path_factory.mktemp("served-unreadable")
    workspace = tmp / "deep" / "server" / "layout" / "demo.duckdb"
    workspace.parent.mkdir(parents=True)
    workspace.write_bytes(b"\x00not a duckdb file\xff" * 4096)
    with serving([], served_env(tmp, workspace), tmp, free_port()) as srv:
        yield {**srv, "tmp": tmp, "workspace": workspace}


def test_messages_name_the_file_never_the_server_path(served_unreadable: dict[str, Any]) -> None:
    seen = everything_served(session(OPS), served_unreadable["url"])
    text = "\n".join(json.dumps(json.loads(t)) if k.startswith("callback") else t for k, t in seen.items())
    assert "demo.duckdb" in text  # the panels say which file
    for where in (str(served_unreadable["tmp"]), "/deep/server/layout"):
        assert where not in text
        assert where.replace("/", "\\u002f") not in text  # nor in Dash's escaped JSON


# ---- /healthz over an unreadable workspace: 503 at once, details only for an operator --------------------
def test_healthz_answers_503_at_once_when_the_workspace_is_unreadable(served_unreadable: dict[str, Any]) -> None:
    status, took, body = served_unreadable["first_healthz"]  # the process's first call: its checks ran then
    assert status == 503 and took < 1.5, (status, took)  # a guard on the behaviour (it was 7.9 s), not a benchmark
    assert body in ({"status": "fail"}, {"status": "starting"})  # what a load balancer needs, nothing more
    url = served_unreadable["url"] + "/healthz"
    assert requests.get(url, timeout=30).json() == {"status": "fail"}  # the checks have finished by now
    detail = requests.get(url, auth=OPS, timeout=30).json()
    assert detail["checks"]["data"] == {"status": "fail", "reason": "WorkspaceError"}
    assert requests.get(url, auth=SUPP, timeout=30).json() == {"status": "fail"}  # a team lead is no operator
    burst = [requests.get(url, timeout=30) for _ in range(30)]
    assert {r.status_code for r in burst} <= {503, 429} and any(r.status_code == 429 for r in burst)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in burst if r.status_code == 429)


def test_healthz_shows_load_balancers_the_status_and_operators_the_checks(served: dict[str, Any]) -> None:
    url = served["url"] + "/healthz"
    anonymous = requests.get(url, timeout=30)
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ok"}
    body = requests.get(url, auth=OPS, timeout=30).json()
    assert body["status"] == "ok" and set(body["checks"]) == {"data", "scheduler", "store"}
    assert body["checks"]["scheduler"] == {"status": "ok", "mode": "external"} and "cache" in body


# ---- configuration ------------------------------------------------------------------------------------
INVALID = {
    "source": ("[source]\nkind = 'nowhere'\n", "source.kind"),
    "demo": ("[demo]\ndays = 0\n", "demo.days"),
    "cache": ("[cache]\nbackend = 'disk'\n", "cache.backend"),
    "probes": ("[probes]\ntimeout_s = -1\n", "probes.timeout_s"),
    "attribution": ("[[attribution]]\nfeature = ''\nteam = 'search'\n", "attribution[0].feature"),
    "budgets": ("[[budgets]]\nscope = 'team'\nname = 'search'\nmonthly_usd = -5\n", "budgets[0].monthly_usd"),
    "prices": ("[prices]\ndiscount_pct = 150\n", "prices.discount_pct"),
    "alerts": ("[alerts]\nevaluate_interval_s = 1\n", "alerts.evaluate_interval_s"),
    "dashboard": ("[dashboard]\nport = 70000\n", "dashboard.port"),
    "scheduler": ("[scheduler]\nmisfire_grace_s = 0\n", "scheduler.misfire_grace_s"),
}


@pytest.mark.parametrize("section", sorted(INVALID))
def test_check_config_names_an_invalid_value_in_every_section(
    section: str, clean_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text, location = INVALID[section]
    path = clean_env / "aoai-lens.toml"
    path.write_text("# a configuration with one mistake\n\n" + text)
    monkeypatch.setenv("AOAI_LENS_CONFIG", str(path))
    assert cli_main(["check-config"]) == 2
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if location in line]
    assert lines, out.out
    assert lines[0].startswith(f"{path}:") and f" {location}: " in lines[0]  # file:line location: problem
    assert "1 problem(s)" in out.err
