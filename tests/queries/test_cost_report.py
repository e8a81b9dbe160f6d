"""The cost model on the demo workspace: conservation to the cent, the same total whichever --by,
the KQL behind it, and `aoai-lens cost report` in csv and focus formats."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from queries import lens as api
from queries.config import Settings
from queries.cost import ptu
from queries.cost.focus import FOCUS_COLUMNS
from queries.cost.prices import PriceBook
from queries.cost.report import AllocationResult, allocate, month_period, statement
from queries.demo import world
from queries.lens import Lens


@pytest.fixture(scope="module")
def lens(demo_settings: Settings, demo_end: datetime) -> Iterator[Lens]:
    lens = Lens.from_settings(demo_settings)
    lens.now = lambda: demo_end  # a fixed clock: PTU hours are prorated to the minute
    yield lens


@pytest.fixture(scope="module")
def book(demo_settings: Settings) -> PriceBook:
    return PriceBook.load(demo_settings)


@pytest.fixture(scope="module")
def result(lens: Lens, demo_settings: Settings, demo_end: datetime, book: PriceBook) -> AllocationResult:
    return allocate(lens, demo_settings, demo_end - timedelta(days=7), demo_end, book=book)


def test_demo_conserves_money_to_the_cent(result: AllocationResult, lens: Lens, book: PriceBook) -> None:
    rows = result.rows
    assert rows["Priced"].all(), "every demo model has a price"
    parts = result.category_totals()
    assert set(parts) == {"allocated", "unallocated", "probes", "ptu idle"}
    assert all(v > 0 for v in parts.values())
    assert round(sum(parts.values()), 2) == round(result.total, 2)
    # the total again, straight from the KQL tokens and the PTU hours, without any allocation
    usage = lens.run("cost_usage_by_caller", start=result.start, end=result.end, bin=timedelta(hours=1)).frame
    deps = lens.deployments().frame
    info = deps.assign(Resource=deps["Resource"].str.lower())[["Resource", "Deployment", "Sku", "Location"]]
    tok = usage.merge(info, on=["Resource", "Deployment"])
    tok = tok[~tok["Sku"].map(ptu.is_ptu)]
    # hours with successful calls without a usage row (the demo's planted usage gap, and its planted streams
    # without include_usage) are priced from the metrics' tokens beyond the usage rows' (as uncached input)
    gaps = tok[tok["UnmatchedRequests"] > 0][["TimeGenerated", "Deployment"]].drop_duplicates()
    assert len(gaps) > 1 and set(gaps["Deployment"]) == {"rag-gpt41"}
    m = lens.metrics(
        ["ProcessedPromptTokens", "GeneratedTokens"],
        start=result.start,
        end=result.end,
        interval=timedelta(hours=1),
        split_by=["ModelDeploymentName"],
    ).frame
    m = m.pivot_table(index=["TimeStamp", "ModelDeploymentName"], columns="MetricName", values="Value").reset_index()
    m = m.rename(columns={"TimeStamp": "TimeGenerated", "ModelDeploymentName": "Deployment"})
    m["TimeGenerated"] = pd.to_datetime(m["TimeGenerated"], utc=True)
    logged = tok.groupby(["TimeGenerated", "Deployment"], as_index=False)[["PromptTokens", "CompletionTokens"]].sum()
    gap_tokens = gaps.merge(m, on=["TimeGenerated", "Deployment"]).merge(logged, on=["TimeGenerated", "Deployment"])
    gap_tokens["PromptTokens"] = (gap_tokens["ProcessedPromptTokens"] - gap_tokens["PromptTokens"]).clip(lower=0)
    gap_tokens["CompletionTokens"] = (gap_tokens["GeneratedTokens"] - gap_tokens["CompletionTokens"]).clip(lower=0)
    assert len(gap_tokens) == len(gaps) and (gap_tokens["PromptTokens"] > 0).all()
    first = tok.merge(gaps, on=["TimeGenerated", "Deployment"]).drop_duplicates(["TimeGenerated", "Deployment"])
    first = first.drop(columns=["PromptTokens", "CompletionTokens"]).merge(
        gap_tokens[["TimeGenerated", "Deployment", "PromptTokens", "CompletionTokens"]],
        on=["TimeGenerated", "Deployment"],
    )
    tok = pd.concat([tok, first.assign(CachedTokens=0)], ignore_index=True)
    priced = book.price_usage(
        pd.DataFrame(
            {
                "model": tok["Model"],
                "version": tok["ModelVersion"],
                "sku": tok["Sku"],
                "region": tok["Location"],
                "prompt_tokens": tok["PromptTokens"],
                "cached_tokens": tok["CachedTokens"],
                "completion_tokens": tok["CompletionTokens"],
            }
        )
    )
    hours = (result.end - result.start).total_seconds() / 3600
    ptu_cost = sum(
        book.lookup(d.model, d.version, d.sku, world.resource(d.resource).location).ptu_per_hour * d.capacity * hours  # type: ignore[union-attr]
        for d in world.DEPLOYMENTS
        if ptu.is_ptu(d.sku)
    )
    assert round(float(priced["cost"].sum()) + ptu_cost, 2) == round(result.total, 2)
    # tokens are conserved too: every token of the KQL answer (the gap's from the metrics) lands on one row
    all_tok = usage.merge(info, on=["Resource", "Deployment"])
    ptu_tok = all_tok[all_tok["Sku"].map(ptu.is_ptu)]
    for col in ("PromptTokens", "CachedTokens", "CompletionTokens"):
        assert rows[col].sum() == pytest.approx(float(tok[col].sum()) + float(ptu_tok[col].sum()))


def test_demo_statement_total_is_the_same_whichever_by(result: AllocationResult) -> None:
    totals = {}
    for by in ("team", "feature", "deployment", "cost-center"):
        st = statement(result, by)  # type: ignore[arg-type]
        lines = st[st["Kind"] != "total"]
        total = st[st["Kind"] == "total"].iloc[0]
        assert round(lines["Cost"].sum(), 2) == round(total["Cost"], 2)
        assert total["Requests"] == lines["Requests"].sum()
        totals[by] = round(total["Cost"], 2)
    assert len(set(totals.values())) == 1 and totals["team"] == round(result.total, 2)


def test_demo_attribution_matches_the_demo_world(result: AllocationResult) -> None:
    rows = result.rows
    alloc = rows[rows["Category"] == "allocated"]
    assert set(alloc["Team"]) == {f.team for f in world.FEATURES}
    assert set(alloc["Feature"]) == {f.name for f in world.FEATURES}
    assert set(rows.loc[rows["Category"] == "probes", "ObjectId"]) == {world.PROBE_OBJECT_ID}
    # the unknown callers (an API-key script, an unregistered identity) are unallocated
    unalloc = rows[rows["Category"] == "unallocated"]
    assert set(unalloc["CallerIP"]) == {"172.16.8.***", "192.168.77.***"}
    # tokens are per request, except in the demo's planted usage gap (one hour of rag-gpt41, whose metric
    # tokens are shared by bytes); the batch rule is a deployment pattern
    assert set(rows.loc[rows["Category"] != "ptu idle", "Method"]) == {"request", "deployment", "bytes"}
    assert set(rows.loc[rows["Method"] == "bytes", "Deployment"]) == {"rag-gpt41"}
    assert set(rows.loc[rows["Method"] == "deployment", "Feature"]) == {"insights-batch"}
    s = result.ptu.set_index("Deployment").loc["support-gpt4o-ptu"]
    assert 0 < s["Utilisation"] < 1 and s["IdleCost"] > 0 and s["PaygCost"] > 0


def test_month_period_is_the_month_so_far_or_a_whole_past_month() -> None:
    now = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    assert month_period(None, now)[:2] == (datetime(2026, 3, 1, tzinfo=UTC), now)
    assert month_period("2026-02", now)[:2] == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        month_period("2026-13", now)
    with pytest.raises(ValueError):
        month_period("2026-04", now)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, demo_settings: Settings, lens: Lens) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(demo_settings.data_dir))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_settings.demo_path))
    monkeypatch.delenv("AOAI_LENS_CONFIG", raising=False)
    monkeypatch.setattr(api, "get_lens", lambda settings=None: lens)


def _report(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    from dashboard.cli import main

    assert main(["cost", "report", *argv]) == 0
    return capsys.readouterr().out


def test_cli_csv_statement_adds_up_whichever_by(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    totals = set()
    for by in ("team", "feature", "deployment", "cost-center"):
        st = pd.read_csv(io.StringIO(_report(["--by", by, "--format", "csv"], capsys)))
        assert list(st["Kind"])[-5:] == ["unallocated", "probes", "ptu idle", "unpriced", "total"]
        lines, total = st.iloc[:-1], st.iloc[-1]
        assert round(lines["Cost"].sum(), 2) == round(total["Cost"], 2) > 0
        totals.add(round(total["Cost"], 2))
    assert len(totals) == 1
    team = pd.read_csv(io.StringIO(_report(["--format", "csv"], capsys)))
    assert {"support", "search", "growth"} <= set(team["Team"])


def test_cli_focus_rows_reconcile_with_the_statement(
    cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "focus.csv"
    _report(["--format", "focus", "-o", str(out)], capsys)
    focus = pd.read_csv(out)
    assert list(focus.columns) == FOCUS_COLUMNS
    for col, value in (
        ("ServiceName", "Azure OpenAI"),
        ("ServiceCategory", "AI and Machine Learning"),
        ("ChargeCategory", "Usage"),
        ("BillingCurrency", "USD"),
    ):
        assert set(focus[col]) == {value}
    assert (focus["BilledCost"] == focus["EffectiveCost"]).all() and (focus["ListCost"] == focus["BilledCost"]).all()
    assert focus["ResourceId"].str.contains("/providers/Microsoft.CognitiveServices/accounts/").all()
    assert pd.to_datetime(focus["ChargePeriodStart"]).lt(pd.to_datetime(focus["ChargePeriodEnd"])).all()
    alloc = focus[focus["x_AllocationCategory"] == "allocated"]
    assert alloc["x_Team"].ne("").all() and alloc["x_AllocationRule"].ne("").all()
    assert set(focus["x_AllocationMethod"]) >= {"request", "deployment", "ptu idle"}
    st = pd.read_csv(io.StringIO(_report(["--format", "csv"], capsys)))
    assert round(focus["BilledCost"].sum(), 2) == pytest.approx(round(st.iloc[-1]["Cost"], 2), abs=0.011)
    table = _report(["--by", "feature"], capsys)
    assert "total" in table and "support-chat" in table and "PTU support-gpt4o-ptu" in table


def test_cli_rejects_a_bad_month(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    from dashboard.cli import main

    assert main(["cost", "report", "--month", "2026-1"]) == 2
    assert "YYYY-MM" in capsys.readouterr().err
    # a month before the demo's data: an empty statement, not a crash
    st = pd.read_csv(io.StringIO(_report(["--month", "2020-01", "--format", "csv"], capsys)))
    assert list(st["Kind"]) == ["unallocated", "probes", "ptu idle", "unpriced", "total"]


def test_cost_kql_binds_in_microsofts_parser(lens: Lens) -> None:
    from kusto import KustoCheckerUnavailable, check_kql, format_diagnostics

    from queries.schemas import TABLES

    _, _, kql = lens.render(
        "cost_usage_by_caller", since=timedelta(days=1), bin=timedelta(hours=1), params={"deployments": ["chat-gpt4o"]}
    )
    try:
        found = check_kql({"cost_usage_by_caller": kql}, TABLES)
    except KustoCheckerUnavailable as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e))
    assert found["cost_usage_by_caller"] == [], format_diagnostics(
        "cost_usage_by_caller", kql, found["cost_usage_by_caller"]
    )
