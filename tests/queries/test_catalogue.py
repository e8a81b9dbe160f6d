"""Every catalogue query (cost_* included): its header parses, it runs on the demo workspace and returns
exactly its declared columns and types, and Microsoft's Kusto parser and binder find no error in it as
it would be sent to Log Analytics (the let prefix included).

The queries run twice: on the embedded workspace, and through the Azure Data Explorer source (the real
azure-kusto-data KustoClient) against a local Kusto endpoint serving the same workspace."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from fakes.adx_server import AdxServer
from fakes.azure_env import adx_settings
from fakes.credential import FakeCredential
from kusto import KustoCheckerUnavailable, check_kql, format_diagnostics, node_executable

from queries import catalogue
from queries.catalogue import CatalogueError, parse_file
from queries.config import Settings
from queries.demo import world
from queries.lens import Lens
from queries.schemas import TABLES
from queries.sources.adx import AdxLogs
from queries.sources.embedded import EmbeddedManagement, EmbeddedMetrics, EmbeddedWorkspace

NAMES = sorted(catalogue.load_catalogue())
# Queries the demo workspace may legitimately leave empty (none today: every question has demo data).
EMPTY_OK: set[str] = set()

PANDAS_KINDS = {
    "datetime": lambda s: isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) == "UTC",
    "long": lambda s: str(s.dtype) == "Int64",
    "int": lambda s: str(s.dtype) == "Int64",
    "real": lambda s: str(s.dtype) == "float64",
    "string": lambda s: pd.api.types.is_string_dtype(s.dtype),
    "bool": lambda s: pd.api.types.is_bool_dtype(s.dtype),
}


@pytest.fixture(scope="module", params=["embedded", "adx"])
def lens(
    request: pytest.FixtureRequest,
    demo_settings: Settings,
    demo_workspace: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Lens]:
    if request.param == "embedded":
        yield Lens.from_settings(demo_settings)
        return
    with AdxServer(demo_workspace) as server:
        settings = adx_settings(tmp_path_factory.mktemp("adx"), server.url)
        src = settings.source
        logs = AdxLogs(
            cluster_url=src.adx_cluster_url or "", database=src.adx_database or "", credential=FakeCredential()
        )
        ws = EmbeddedWorkspace(demo_workspace)
        yield Lens(
            settings, logs, EmbeddedMetrics(ws), EmbeddedManagement(ws), scope_resource_id=world.RESOURCES[0].arm_id
        )


@pytest.fixture(scope="module")
def demo_results(lens: Lens, demo_end: datetime) -> dict[str, object]:
    """Every query once over the whole demo week (one range for all, so their answers can be compared),
    as one page would ask for them (run_many)."""
    week = {"start": demo_end - timedelta(days=7), "end": demo_end + timedelta(minutes=1)}
    results = lens.run_many([(n, week) for n in NAMES])
    return dict(zip(NAMES, results, strict=True))


def test_the_contract_queries_exist() -> None:
    contract = {
        "requests_by_status",
        "throttling_by_deployment",
        "latency_by_deployment",
        "latency_by_stream_type",
        "tokens_by_deployment",
        "caller_usage_hourly",
        "top_callers_before_429",
        "content_filter_blocks",
        "volume_by_api_version",
        "data_health",
        "summary_by_deployment",
        "peak_load_by_deployment",
        "activity_by_resource",
    }
    assert contract <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_header_is_complete(name: str) -> None:
    spec = catalogue.get(name)
    assert spec.title and spec.description, "title and description are shown in the dashboard and the docs"
    assert spec.tables and set(spec.tables) <= set(TABLES), f"{name} reads tables without a declared schema"
    assert spec.cache > timedelta(0) and spec.range > timedelta(0)
    assert len(set(spec.columns)) == len(spec.columns)
    lets = {p.name for p in spec.params}
    assert not lets & {c.lstrip("_") for c in spec.columns if c.startswith("_")}


@pytest.mark.parametrize("name", NAMES)
def test_runs_on_the_demo_with_declared_columns(name: str, demo_results: dict) -> None:
    result = demo_results[name]
    spec = catalogue.get(name)
    assert result.status == "ok", result.notice
    assert list(result.frame.columns) == spec.columns
    assert result.rows_transferred == len(result.frame)
    if name not in EMPTY_OK:
        assert len(result.frame) > 0, f"{name} returned no rows on the demo workspace"
    for column, kusto in spec.returns:
        check = PANDAS_KINDS.get(kusto)
        if check is not None:
            assert check(result.frame[column]), f"{name}.{column}: {result.frame[column].dtype} for {kusto}"
    assert result.kql.startswith("let _start = datetime(")
    assert result.portal_url
    if result.source == "adx":  # a UI deep link on the cluster that opens this very query
        link = urlparse(result.portal_url)
        packed = parse_qs(link.query)["query"][0]
        assert link.path == "/AOAILogs" and gzip.decompress(base64.b64decode(packed)).decode() == result.kql
    else:
        assert result.portal_url.startswith("https://portal.azure.com/")


def test_answers_are_consistent_across_queries(demo_results: dict) -> None:
    """The same requests counted by different questions agree (a query that drops or duplicates rows would not)."""
    summary = demo_results["summary_by_deployment"].frame.set_index("Deployment")
    throttling = demo_results["throttling_by_deployment"].frame.groupby("Deployment")[["Requests", "Throttled"]].sum()
    by_status = demo_results["requests_by_status"].frame.groupby("Deployment")["Requests"].sum()
    # a deployment with no usage records (the retired one, every call refused) has no tokens row: 0 tokens
    tokens = (
        demo_results["tokens_by_deployment"]
        .frame.groupby("Deployment")[["PromptTokens", "CompletionTokens"]]
        .sum()
        .reindex(summary.index, fill_value=0)
    )
    callers = demo_results["caller_usage_hourly"].frame.groupby("Deployment")[["Requests", "PromptTokens"]].sum()
    for dep, row in summary.iterrows():
        assert row.Requests == throttling.loc[dep, "Requests"] == by_status.loc[dep] == callers.loc[dep, "Requests"]
        assert row.Throttled == throttling.loc[dep, "Throttled"]
        assert row.Requests == row.Succeeded + row.Throttled + row.ClientErrors + row.ServerErrors
        assert row.PromptTokens == tokens.loc[dep, "PromptTokens"] == callers.loc[dep, "PromptTokens"]
    # the demo's story: chat-gpt4o and embed-large burst past their TPM, chat-gpt4o-mini gets a flood of
    # small calls (RPM), the provisioned pilot saturates; rag-gpt41 had a 5xx incident
    assert summary.loc["chat-gpt4o", "Throttled"] > 0 and summary.loc["embed-large", "Throttled"] > 0
    assert summary.loc["rag-gpt41", "ServerErrors"] > 0
    # a deployment retired ten days ago, no longer listed by the management plane, still called: every
    # call a 404 (counted as a client error), no tokens
    retired = summary.loc[world.RETIRED_DEPLOYMENT[0]]
    assert retired.Requests > 0 and retired.ClientErrors == retired.Requests and retired.PromptTokens == 0
    throttled = {"chat-gpt4o", "embed-large", "chat-gpt4o-mini", "support-gpt4o-ptu"}
    bursts = demo_results["top_callers_before_429"].frame
    assert set(bursts.Deployment) <= throttled and len(bursts) > 0
    explained = demo_results["throttle_bursts"].frame
    assert set(explained.Deployment) == throttled
    by_burst = explained.set_index(["Deployment", "BurstStart"])
    callers = demo_results["throttle_burst_callers"].frame.groupby(["Deployment", "BurstStart"])["Requests"].sum()
    assert set(callers.index) == set(by_burst.index)  # every burst has its callers of the minute before
    assert (explained.PeakRequestsPer1s <= explained.PeakRequestsPer10s).all()
    assert (explained.PeakRequestsPer10s <= explained.PeakRequestsPerMinute).all()
    assert (explained.Throttled <= explained.Requests).all()
    peak = demo_results["peak_load_by_deployment"].frame.set_index("Deployment")
    assert (peak.PeakRPM > 0).all()
    assert (peak.drop(index=world.RETIRED_DEPLOYMENT[0]).PeakTPM > 0).all()  # the retired one used no tokens
    assert peak.loc[world.RETIRED_DEPLOYMENT[0], "PeakTPM"] == 0


def test_deployments_parameter_filters(lens: Lens) -> None:
    everything = lens.run("summary_by_deployment", since=timedelta(days=7)).frame
    one = lens.run("summary_by_deployment", since=timedelta(days=7), params={"deployments": ["rag-gpt41"]}).frame
    assert list(one.Deployment) == ["rag-gpt41"]
    assert one.Requests.iloc[0] == everything.set_index("Deployment").loc["rag-gpt41", "Requests"]


# ---- Microsoft's Kusto parser and binder ---------------------------------------------------------------


@pytest.fixture(scope="module")
def checker() -> None:
    try:
        node_executable()
    except KustoCheckerUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


def test_every_query_passes_the_kusto_parser(checker: None, lens: Lens) -> None:
    texts = {n: lens.render(n)[2] for n in NAMES}
    schemas = {t: TABLES[t] for n in NAMES for t in catalogue.get(n).tables}
    results = check_kql(texts, schemas)
    failures = [format_diagnostics(n, texts[n], d) for n, d in results.items() if d]
    assert not failures, "\n".join(failures)
    assert set(results) == set(NAMES)


def test_a_broken_query_is_caught(checker: None, lens: Lens) -> None:
    good = lens.render("throttling_by_deployment")[2]
    broken = {
        "typo_column": good.replace("ResultSignature", "ResultSignatur"),
        "percentiles": good.replace("summarize Requests = count()", "summarize Requests = count(), P = percentiles()"),
        "undeclared_let": good.replace("let _deployments", "let _deploymentz"),
    }
    schemas = {"AzureDiagnostics": TABLES["AzureDiagnostics"]}
    results = check_kql(broken, schemas)
    assert all(results[n] for n in broken), {n: [str(d) for d in results[n]] for n in broken}


# ---- the header parser ------------------------------------------------------------------------------------


def test_header_errors_name_the_file(tmp_path: Path) -> None:
    body = "AzureDiagnostics\n| where Resource in (_names)\n| count"
    f = tmp_path / "bad.kql"
    f.write_text("// title: t\n// tables: AzureDiagnostics\n// returns: Count:long\n// cache: 5m\n" + body)
    with pytest.raises(CatalogueError, match=r"bad.kql: body uses undeclared parameter\(s\) \['names'\]"):
        parse_file(f)
    f.write_text("// title: t\n// tables: AzureDiagnostics\n// returns: Count:integer\n// cache: 5m\nX")
    with pytest.raises(CatalogueError, match="bad returned column"):
        parse_file(f)
    f.write_text("// title: t\n// tables: AzureDiagnostics\n// returns: Count:long\n// cache: 5m\n// colour: red\nX")
    with pytest.raises(CatalogueError, match="unknown header field 'colour'"):
        parse_file(f)
