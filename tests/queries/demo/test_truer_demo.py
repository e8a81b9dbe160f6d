"""A truer demo: besides the one incident, a background rate of 5xx, a retired deployment still being
called (404 DeploymentNotFound), content-filter 400s told apart from other 400s as Azure records the
reason, and Responses API calls, in a 3-day demo, as the catalogue queries and the cost model see them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queries.config import load_settings
from queries.cost.report import allocate
from queries.demo import world
from queries.demo.seed import seed
from queries.lens import Lens

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lens(tmp_path_factory: pytest.TempPathFactory) -> Lens:
    d = tmp_path_factory.mktemp("three-days")
    path = d / "demo.duckdb"
    seed(path, days=3, requests_per_day=2000, seed=11, end=END.replace(tzinfo=None))
    settings = load_settings(environ={"AOAI_LENS_DATA_DIR": str(d / "data"), "AOAI_LENS_DEMO__PATH": str(path)})
    return Lens.from_settings(settings)


def test_a_three_day_demo_has_404s_for_a_retired_deployment(lens: Lens) -> None:
    frame = lens.run("summary_by_deployment", start=END - timedelta(days=3), end=END).frame.set_index("Deployment")
    retired, _replacement = world.RETIRED_DEPLOYMENT
    assert retired not in {d.name for d in world.DEPLOYMENTS}  # the management plane no longer has it
    row = frame.loc[retired]
    assert row["Requests"] > 0 and row["ClientErrors"] == row["Requests"] and row["Succeeded"] == 0
    assert row["PromptTokens"] == 0 and row["CompletionTokens"] == 0  # nothing to bill


def test_the_failed_requests_panels_count_the_404s(lens: Lens) -> None:
    """Insights-style "failed requests": the status classes and the client errors by kind count them."""
    retired = world.RETIRED_DEPLOYMENT[0]
    window = {"start": END - timedelta(days=3), "end": END}
    status = lens.run("requests_by_status", **window).frame
    mine = status[status.Deployment == retired]
    assert set(mine.StatusClass) == {"4xx"} and mine.Requests.sum() > 0
    kinds = lens.run("client_errors_by_kind", **window).frame
    nf = kinds[kinds.Kind == "not found (404)"]
    assert set(nf.Deployment) == {retired} and set(nf.Reason) == {"DeploymentNotFound"}
    assert nf.Requests.sum() == mine.Requests.sum()


def test_content_filter_400s_are_told_apart_from_other_400s(lens: Lens) -> None:
    window = {"start": END - timedelta(days=3), "end": END}
    kinds = lens.run("client_errors_by_kind", **window).frame
    by_kind = kinds.groupby("Kind")["Requests"].sum()
    assert by_kind["content filter"] > 0 and by_kind["other 400"] > 0
    assert "400, reason not logged" not in by_kind  # the demo logs every reason
    other = kinds[kinds.Kind == "other 400"]
    assert set(other.Reason) == {"unsupported_parameter", "context_length_exceeded"}
    assert set(other[other.Reason == "unsupported_parameter"].Deployment) == {"agent-o4-mini"}
    blocks = lens.run("content_filter_blocks", **window).frame
    assert blocks.Blocks.sum() == by_kind["content filter"]  # the other 400s are not blocks
    summary = lens.run("summary_by_deployment", **window).frame
    assert summary.ClientErrors.sum() == by_kind.sum()


def test_responses_api_calls_are_counted_and_costed(lens: Lens) -> None:
    window = {"start": END - timedelta(days=3), "end": END}
    ops = lens.run("throttling_by_deployment", **window).frame.set_index(["Deployment", "OperationName"])
    assert ops.loc[("agent-o4-mini", "Responses_Create"), "Requests"] > 0
    assert ops.loc[("agent-o4-mini", "ChatCompletions_Create"), "Requests"] > 0
    tokens = lens.run("tokens_by_deployment", **window).frame
    want = tokens[tokens.Deployment == "agent-o4-mini"][["PromptTokens", "CompletionTokens"]].sum()
    result = allocate(lens, lens.settings, window["start"], window["end"])
    mine = result.rows[result.rows.Deployment == "agent-o4-mini"]
    assert mine.Priced.all() and mine.Cost.sum() > 0
    # every token of the agent's calls, Responses API ones included, is in the cost model
    assert mine.PromptTokens.sum() == want.PromptTokens and mine.CompletionTokens.sum() == want.CompletionTokens


def test_a_three_day_demo_has_5xx_besides_the_incident(lens: Lens) -> None:
    frame = lens.run("summary_by_deployment", start=END - timedelta(days=3), end=END).frame.set_index("Deployment")
    assert frame["ServerErrors"].sum() > 0
    elsewhere = frame.drop(index="rag-gpt41")["ServerErrors"]  # rag-gpt41 has the incident
    assert elsewhere.sum() > 0, "5xx only on the incident's deployment: no background rate"
