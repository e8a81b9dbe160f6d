"""Page callbacks with small frames (a fake Lens), and one failing query that must not break a page."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dash
import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from dashboard.data import Context
from dashboard.filters import Filters
from queries.config import Settings, load_settings
from queries.names import CallerNames
from queries.results import QueryResult
from queries.sources.base import LogsAnswer, LogsRequest


def page_module(app: dash.Dash, path: str) -> Any:
    """The page module Dash imported for `path` (Dash imports page files under its own module names)."""
    for page in dash.page_registry.values():
        if page["path"] == path:
            return sys.modules[page["module"]]
    raise KeyError(path)


NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T = [pd.Timestamp("2026-11-20T10:00Z"), pd.Timestamp("2026-11-20T11:00Z")]

FRAMES: dict[str, pd.DataFrame] = {
    "requests_by_status": pd.DataFrame(
        {
            "TimeGenerated": [T[0], T[0], T[1]],
            "Deployment": ["chat", "chat", "chat"],
            "StatusClass": ["2xx", "429", "2xx"],
            "Requests": [90, 10, 100],
        }
    ),
    "summary_by_deployment": pd.DataFrame(
        {
            "Deployment": ["chat"],
            "Model": ["gpt-4o"],
            "Requests": [200],
            "Succeeded": [190],
            "Throttled": [10],
            "ClientErrors": [0],
            "ServerErrors": [0],
            "P95": [900.0],
            "PromptTokens": [5000],
            "CompletionTokens": [700],
        }
    ),
    "latency_by_deployment": pd.DataFrame(
        {
            "TimeGenerated": T,
            "Deployment": ["chat", "chat"],
            "Requests": [90, 100],
            "P50": [300.0, 320.0],
            "P95": [900.0, 950.0],
            "P99": [1500.0, 1600.0],
        }
    ),
    "latency_by_stream_type": pd.DataFrame(
        {
            "Deployment": ["chat"],
            "StreamType": ["Streaming"],
            "Requests": [190],
            "P50": [300.0],
            "P95": [900.0],
            "P99": [1500.0],
        }
    ),
    "peak_load_by_deployment": pd.DataFrame(
        {"Deployment": ["chat"], "PeakTPM": [12000], "PeakRPM": [40], "PeakMinute": [T[1]]}
    ),
    "top_callers_before_429": pd.DataFrame(
        {
            "BurstStart": [T[0]] * 2,
            "Deployment": ["chat"] * 2,
            "ObjectId": ["", "0b0b0b0b-0000-4000-8000-000000000000"],
            "CallerIP": ["10.0.0.***", "10.0.1.***"],
            "Requests": [7, 3],
            "Tokens": [7000, 900],
        }
    ),
    "throttle_bursts": pd.DataFrame(
        {
            "Deployment": ["chat"],
            "BurstStart": [T[0]],
            "BurstEnd": [T[0] + pd.Timedelta(minutes=3)],
            "FirstThrottled": [T[0] + pd.Timedelta(seconds=20)],
            "Throttled": [40],
            "Requests": [300],
            "PeakTokensPerMinute": [96_000],  # 96% of chat's 100K TPM
            "PeakRequestsPerMinute": [110],
            "PeakRequestsPer10s": [25],
            "PeakRequestsPer1s": [4],
        }
    ),
    "throttle_burst_callers": pd.DataFrame(
        {
            "BurstStart": [T[0]],
            "Deployment": ["chat"],
            "FirstThrottled": [T[0] + pd.Timedelta(seconds=20)],
            "ObjectId": [""],
            "CallerIP": ["10.0.0.***"],
            "Requests": [70],
            "Tokens": [90_000],
        }
    ),
    "tokens_by_deployment": pd.DataFrame(
        {
            "TimeGenerated": T,
            "Deployment": ["chat", "chat"],
            "Model": ["gpt-4o"] * 2,
            "Requests": [90, 100],
            "PromptTokens": [2000, 3000],
            "CachedTokens": [0, 0],
            "CompletionTokens": [300, 400],
        }
    ),
    "data_health": pd.DataFrame(
        {
            "ResourceId": ["/x/east"],
            "Resource": ["east"],
            "Category": ["RequestResponse"],
            "Records": [200],
            "LastRecord": [T[1]],
            "LagP50Sec": [120.0],
            "LagP95Sec": [300.0],
        }
    ),
    "activity_by_resource": pd.DataFrame({"TimeGenerated": T, "Resource": ["east", "east"], "Requests": [100, 100]}),
    "daily_peak_load": pd.DataFrame(
        {"Day": T, "Deployment": ["chat", "chat"], "PeakTPM": [12000, 13000], "PeakRPM": [40, 41]}
    ),
    "client_errors_by_kind": pd.DataFrame(
        {
            "TimeGenerated": [T[0], T[1]],
            "Deployment": ["chat", "chat"],
            "Kind": ["content filter", "other 400"],
            "Reason": ["content_filter", "unsupported_parameter"],
            "Requests": [3, 2],
        }
    ),
}
DEPLOYMENTS = pd.DataFrame(
    {
        "Resource": ["east", "west"],
        "ResourceId": ["/x/east", "/x/west"],
        "Location": ["eastus", "westus"],
        "Deployment": ["chat", "rag"],
        "Sku": ["GlobalStandard", "Standard"],
        "Capacity": [100, 10],
        "Model": ["gpt-4o", "gpt-4.1"],
        "Version": ["2024-11-20", "2025-04-14"],
        "TpmLimit": [100000, 10000],
        "RpmLimit": [600, 60],
    }
)
USAGES = pd.DataFrame(
    {
        "Location": ["eastus"],
        "Name": ["OpenAI.GlobalStandard.gpt-4o"],
        "Sku": ["GlobalStandard"],
        "Model": ["gpt-4o"],
        "Current": [100.0],
        "Limit": [450.0],
    }
)


class FakeLens:
    """Answers catalogue queries from FRAMES; a name it does not know raises, like an unknown catalogue file."""

    scope_resource_id = "/x/east"

    def __init__(self, frames: Mapping[str, pd.DataFrame], fail: Iterable[str] = ()) -> None:
        self.frames = dict(frames)
        self.fail = set(fail)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, name: str, **kwargs: Any) -> QueryResult:
        self.calls.append((name, kwargs))
        if name not in self.frames:
            raise KeyError(f"no catalogue query {name!r}")
        if name in self.fail:
            return QueryResult(
                name=name, frame=pd.DataFrame(), status="failed", notice="injected failure", kql=f"// {name}"
            )
        return QueryResult(name=name, frame=self.frames[name], kql=f"{name} | take 10", portal_url="https://portal/x")

    def run_many(self, requests: Iterable[tuple[str, Mapping[str, Any]]]) -> list[QueryResult]:
        return [self.run(n, **dict(k)) for n, k in requests]

    def render(self, name: str, **kwargs: Any) -> Any:
        raise KeyError(name)

    def deployments(self) -> QueryResult:
        return QueryResult(name="deployments", frame=DEPLOYMENTS)

    def usages(self) -> QueryResult:
        return QueryResult(name="usages", frame=USAGES)

    def metrics(self, *a: Any, **k: Any) -> QueryResult:
        return QueryResult(name="metrics", frame=pd.DataFrame())

    def caller_names(self, callers: pd.DataFrame) -> CallerNames:
        return CallerNames({"0b0b0b0b-0000-4000-8000-000000000000": "mi-named-by-graph"})


@pytest.fixture
def bare_settings(tmp_path: Path) -> Settings:
    """Demo configuration with an empty data directory: no alerts store yet."""
    return load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})


def _text(children: Any) -> str:
    return json.dumps(children, cls=PlotlyJSONEncoder)


def _ctx(settings: Settings, lens: Any) -> Context:
    return Context(settings, lens, now=lambda: NOW)


def test_reliability_panels_from_small_frames(dash_app: dash.Dash, bare_settings: Settings) -> None:
    page = page_module(dash_app, "/reliability")
    lens = FakeLens(FRAMES)
    bodies = page.render(Filters.from_query({"range": "24h", "deployment": "chat"}), _ctx(bare_settings, lens))
    assert len(bodies) == len(page.PANELS)
    by = dict(zip(page.PANELS, map(_text, bodies), strict=True))
    assert all("panel-failed" not in t for t in by.values())
    assert '"name": "2xx"' in by["status"] and '"name": "429"' in by["status"]
    assert "(API key)" in by["callers"]  # an empty object id is an API-key caller
    assert "mi-named-by-graph" in by["callers"]  # the directory's name shown for an object id
    assert "TPM (tokens per minute)" in by["explain"] and "96,000 tokens in the busiest minute" in by["explain"]
    assert "(API key) 10.0.0.***" in by["explain"] and "1 TPM" in by["explain"]  # the note counts causes
    assert "No probe results yet" in by["ttft"]
    assert '"name": "content filter"' in by["errors"] and '"name": "other 400"' in by["errors"]
    assert "requests_by_status | take 10" in by["status"]  # the KQL is in the panel
    # the deployment filter reached every query
    assert all(k["params"]["deployments"] == ["chat"] for _, k in lens.calls)


def test_a_missing_query_fails_only_its_panel(dash_app: dash.Dash, bare_settings: Settings) -> None:
    page = page_module(dash_app, "/reliability")
    frames = {k: v for k, v in FRAMES.items() if k != "latency_by_stream_type"}
    by = dict(zip(page.PANELS, map(_text, page.render(Filters(), _ctx(bare_settings, FakeLens(frames)))), strict=True))
    assert "panel-failed" in by["percentiles"] and "latency_by_stream_type" in by["percentiles"]
    assert [k for k, t in by.items() if "panel-failed" in t] == ["percentiles"]


def test_overview_kpis_survive_a_failed_query_and_no_cost_model(dash_app: dash.Dash, bare_settings: Settings) -> None:
    page = page_module(dash_app, "/")
    bodies = page.render(Filters(), _ctx(bare_settings, FakeLens(FRAMES, fail={"tokens_by_deployment"})))
    kpis, *panels = map(_text, bodies)
    assert "query failed: injected failure" in kpis
    assert "cost model failed" in kpis  # FakeLens has no cost_usage_by_caller
    by = dict(zip(page.PANELS, panels, strict=True))
    assert "panel-failed" in by["tokens"] and "panel-failed" in by["spend"]
    assert "panel-failed" not in by["status"] and "panel-failed" not in by["summary"]


def test_capacity_panels_from_the_embedded_metrics_source(
    dash_app: dash.Dash, demo_settings: Settings, demo_end: datetime
) -> None:
    """Utilisation V2, spillover, limits and time to limit, from the demo's metrics store and ARM bodies."""
    from queries.lens import Lens

    page = page_module(dash_app, "/reliability")
    ctx = Context(demo_settings, Lens.from_settings(demo_settings), now=lambda: demo_end)
    by = dict(zip(page.PANELS, map(_text, page.render(Filters(range="24h"), ctx)), strict=True))
    assert [k for k in ("ptu", "spill", "limits", "forecast") if "panel-failed" in by[k]] == []
    # Azure's metric and the token estimate, side by side, for the provisioned deployment
    assert "utilisation V2 max" in by["ptu"] and "support-gpt4o-ptu" in by["ptu"]
    assert "token estimate" in by["ptu"] and "reached 100%" in by["ptu"]
    # the planted PTU burst spilled over to chat-gpt4o, priced at its standard rates, not added
    assert "chat-gpt4o: spilled" in by["spill"]
    assert "at the spillover deployment's standard rates (already in its cost, not added)" in by["spill"]
    # RPM is a limit too, and the Global pools are the subscription's
    assert "GlobalStandard " in by["limits"] and "subscription " in by["limits"] and "RPM" in by["limits"]
    assert "first: deployment agent-o4-mini (RPM), crosses in" in by["forecast"]


def test_data_health_lists_silent_resources(dash_app: dash.Dash, bare_settings: Settings) -> None:
    page = page_module(dash_app, "/data-health")
    frame = page.categories_frame(FRAMES["data_health"], DEPLOYMENTS, pd.Timestamp(NOW))
    assert list(frame["Resource"]) == ["east", "west"]
    assert frame.loc[1, "Category"] == "(no records)"
    assert frame.loc[0, "AgeMin"] == pytest.approx(60.0)


def test_feature_table_unit_costs(dash_app: dash.Dash) -> None:
    page = page_module(dash_app, "/features")
    rows = pd.DataFrame(
        {
            "Feature": ["f", "f", "f", "", "g"],
            "Team": ["t", "t", "t", "", "u"],
            "CostCenter": ["c"] * 5,
            "Category": ["allocated", "allocated", "allocated", "unallocated", "allocated"],
            "Priced": [True, True, True, True, False],
            "ObjectId": ["o1", "o2", "", "", "o3"],
            "CallerIP": ["1", "2", "10.0.0.***", "3", "4"],
            "Requests": [10, 10, 20, 5, 3],
            "PromptTokens": [100, 100, 100, 1, 1],
            "CompletionTokens": [0, 0, 0, 0, 0],
            "Cost": [1.0, 1.0, 2.0, 9.0, float("nan")],
        }
    )
    t = page.feature_table(rows)
    assert list(t["Feature"]) == ["f"]  # unallocated and unpriced rows are not a feature's cost
    row = t.iloc[0]
    assert row["Cost"] == 4.0 and row["Requests"] == 40 and row["ActiveCallers"] == 3
    assert row["CostPerRequest"] == pytest.approx(0.1) and row["CostPerCaller"] == pytest.approx(4 / 3)


def test_alert_rules_joined_with_state(dash_app: dash.Dash, demo_settings: Settings) -> None:
    page = page_module(dash_app, "/alerts")
    rules = list(demo_settings.alerts.rules)
    states = pd.DataFrame(
        {
            "rule": [rules[0].name] if rules else ["orphan"],
            "subject": ["chat"],
            "state": ["firing"],
            "since": [1.7e9],
            "value": [9.0],
            "reason": ["429 rate high"],
        }
    )
    frame = page.rules_frame(rules, states)
    assert frame.iloc[0]["state"] == "firing"  # firing first
    assert set(frame["state"]) <= {"firing", "not evaluated", "ok"}


# ---- a real Lens on the demo workspace, with one query failing at the source --------------------------
class FailOne:
    """Wraps a logs source and fails every query whose text contains `needle`."""

    def __init__(self, inner: Any, needle: str) -> None:
        self.inner, self.needle, self.name = inner, needle, inner.name + "+failing"

    def _one(self, r: LogsRequest, answer: LogsAnswer) -> LogsAnswer:
        if self.needle in r.kql:
            return LogsAnswer(pd.DataFrame(), "failed", "injected: the workspace refused this query")
        return answer

    def run(self, request: LogsRequest) -> LogsAnswer:
        return self._one(request, self.inner.run(request))

    def run_batch(self, requests: list[LogsRequest]) -> list[LogsAnswer]:
        return [self._one(r, a) for r, a in zip(requests, self.inner.run_batch(requests), strict=True)]


def test_failing_source_breaks_one_panel_not_the_page(dash_app: dash.Dash, demo_settings: Settings) -> None:
    from queries.lens import Lens

    real = Lens.from_settings(demo_settings)
    lens = replace(real, logs=FailOne(real.logs, "StatusClass = case("))
    page = page_module(dash_app, "/reliability")
    bodies = dict(
        zip(page.PANELS, map(_text, page.render(Filters(range="7d"), Context(demo_settings, lens))), strict=True)
    )
    failed = [k for k, t in bodies.items() if "panel-failed" in t]
    assert failed == ["status"]
    assert "injected: the workspace refused this query" in bodies["status"]
    assert "StatusClass = case(" in bodies["status"]  # the failed query's KQL is kept for the portal
    assert '"type": "bar"' in bodies["rates"] and "scatter" in bodies["latency"]


def test_team_filter_scopes_the_features_page(dash_app: dash.Dash, dash_settings: Settings) -> None:
    from queries.lens import Lens

    page = page_module(dash_app, "/features")
    ctx = Context(dash_settings, Lens.from_settings(dash_settings))
    bodies = dict(zip(page.PANELS, map(_text, page.render(Filters(range="7d", team="search"), ctx)), strict=True))
    assert all("panel-failed" not in t for t in bodies.values())
    search = {r.feature for r in dash_settings.attribution if r.team == "search"}
    others = {r.feature for r in dash_settings.attribution if r.team != "search"}
    assert search and all(f in bodies["table"] for f in search)
    assert not any(f'"{f}"' in bodies["table"] for f in others)


def test_an_unreadable_state_store_fails_its_panels_not_the_page(tmp_path) -> None:
    from dashboard.data import Context, store_result
    from queries.config import load_settings

    settings = load_settings(environ={"AOAI_LENS_DATA_DIR": str(tmp_path)})
    settings.state_path.mkdir(parents=True)  # a path SQLite cannot open at all (as root, modes do not stop it)
    ctx = Context(settings, lens=None)
    store = ctx.store()
    assert store is not None
    r = store_result("probes", lambda: store.probes(since=0, until=1))
    assert r.status == "failed" and "state store cannot be read" in (r.notice or "")

    # bytes that are no database are not "unreadable": the store moves them aside and starts afresh
    settings.state_path.rmdir()
    settings.state_path.write_bytes(b"this is not a SQLite database, just bytes" * 100)
    store = Context(settings, lens=None).store()
    assert store is not None
    r = store_result("probes", lambda: store.probes(since=0, until=1))
    assert r.status == "ok" and r.frame.empty
    assert len(list(tmp_path.glob("state.sqlite.corrupt-*"))) == 1


def test_the_team_filter_narrows_the_chargeback_statement(dash_app: dash.Dash, dash_settings: Settings) -> None:
    from queries.lens import Lens

    page = page_module(dash_app, "/cost")
    ctx = Context(dash_settings, Lens.from_settings(dash_settings))
    whole = dict(zip(page.PANELS, map(_text, page.render(Filters(range="7d"), "team", None, ctx)), strict=True))
    mine = dict(
        zip(page.PANELS, map(_text, page.render(Filters(range="7d", team="search"), "team", None, ctx)), strict=True)
    )
    assert "growth" in whole["statement"] and "support" in whole["statement"]
    assert "search" in mine["statement"] and "team search" in mine["statement"]
    assert "growth" not in mine["statement"] and "support" not in mine["statement"]
    assert "7 complete days" in mine["budgets"]  # the forecast method is named where the forecast is shown


def test_the_inventory_page_names_each_finding_and_what_to_do(dash_app: dash.Dash, dash_settings: Settings) -> None:
    from queries.lens import Lens

    page = page_module(dash_app, "/inventory")
    ctx = Context(dash_settings, Lens.from_settings(dash_settings))
    bodies = dict(zip(page.PANELS, map(_text, page.render(ctx)), strict=True))
    assert all("panel-failed" not in t and "panel-error" not in t for t in bodies.values()), bodies
    flags = bodies["flags"]
    for words in ("Logs not exported", "Public network access", "API keys enabled", "Model retiring"):
        assert words in flags
    assert "contoso-oai-batch" in flags and "AzureOpenAIRequestUsage" in flags and "What to do" in flags
    assert '"type": "bar"' in bodies["retirement"] and "legacy-gpt4o-mini" in bodies["retirement"]
    assert "AIServices" in bodies["accounts"] and "foundry-gpt41-mini" in bodies["deployments"]
    assert "stcontosoailogs" in bodies["diagnostics"]


def test_the_inventory_page_is_not_shown_to_a_team(dash_app: dash.Dash, dash_settings: Settings) -> None:
    from queries.lens import Lens
    from queries.scope import Scope
    from queries.scoped import ScopedLens

    page = page_module(dash_app, "/inventory")
    scope = Scope.of(["support"])
    lens = ScopedLens(Lens.from_settings(dash_settings), scope, dash_settings.attribution)
    ctx = Context(scope.settings(dash_settings), lens, scope=scope)
    bodies = list(map(_text, page.render(ctx)))
    assert all("shown to users who see every team" in t for t in bodies)
    assert not any("contoso-oai" in t for t in bodies)


def test_estimate_vs_billed_names_the_planted_faults_and_is_whole_estate_only(
    dash_app: dash.Dash, dash_settings: Settings
) -> None:
    from dashboard.costs import WHOLE_ESTATE_ONLY
    from queries.lens import Lens
    from queries.scope import Scope
    from queries.scoped import ScopedLens

    page = page_module(dash_app, "/cost")
    lens = Lens.from_settings(dash_settings)
    bodies = dict(
        zip(page.PANELS, page.render(Filters(range="7d"), "team", None, Context(dash_settings, lens)), strict=True)
    )
    text = _text(bodies["bill"])
    assert "panel-failed" not in text and "scatter" in text and '"type": "bar"' in text
    table = _text([c for c in bodies["bill"] if "bill-lines" in _text(c)])
    # the two planted faults, by name (account, model, meter), and nothing else flagged
    assert table.count('"drift"') == 1 and table.count('"bill-only"') == 1
    assert "cached input" in table and "gpt-4.1-mini" in table and "contoso-oai-eastus" in table
    assert "/subscriptions/" not in table  # names, not ids
    assert "drift 1 \\u00b7 bill-only 1" in text

    scope = Scope.of(["search"])
    scoped = Context(scope.settings(dash_settings), ScopedLens(lens, scope, dash_settings.attribution), scope=scope)
    mine = _text(page.render(Filters(range="7d"), "team", None, scoped)[page.PANELS.index("bill")])
    assert WHOLE_ESTATE_ONLY in mine and "panel-failed" not in mine and "bill-only" not in mine


def test_waste_page_shows_each_finding_with_its_dollars_and_kql(dash_app: dash.Dash, demo_settings: Settings) -> None:
    from queries.lens import Lens

    page = page_module(dash_app, "/waste")
    ctx = Context(demo_settings, Lens.from_settings(demo_settings))
    bodies = dict(zip(page.PANELS, map(_text, page.render(Filters(range="7d"), ctx)), strict=True))
    assert not [k for k, t in bodies.items() if "panel-failed" in t or "panel-partial" in t]
    assert '"type": "bar"' in bodies["summary"] and "Idle PTU hours" in bodies["summary"]
    for key in page.FINDINGS:
        assert "per month" in bodies[key] and "Show KQL" in bodies[key] and "What to do" in bodies[key], key
        assert "AzureDiagnostics" in bodies[key], key  # the KQL that found it
    assert "mi-marketing-copy" in bodies["completion_cap"]  # callers by name
    assert "mi-doc-indexer" in bodies["embedding_spikes"]
    mine = dict(zip(page.PANELS, map(_text, page.render(Filters(range="7d", team="support"), ctx)), strict=True))
    assert "mi-support-chat" in mine["short_calls"] and "mi-marketing-copy" not in mine["short_calls"]
    assert "mi-marketing-copy" not in mine["completion_cap"] and "mi-rag-answers" in bodies["streams_without_usage"]
