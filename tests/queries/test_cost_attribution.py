"""Attribution by hand: the three methods (per-request tokens, metric tokens shared by bytes, whole
deployment), rule order and matchers, probes kept out, unallocated and unpriced usage."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from cost_fakes import FakeBook, deployments, metrics, usage

from queries.config import AttributionRule
from queries.cost import attribution
from queries.cost.report import allocate_frames, statement

A = "aaaaaaaa-0000-4000-8000-000000000001"
PROBE = "bbbbbbbb-0000-4000-8000-000000000002"
STRANGER = "cccccccc-0000-4000-8000-000000000003"
START = datetime(2026, 3, 2, 10, tzinfo=UTC)
END = datetime(2026, 3, 2, 13, tzinfo=UTC)

RULES = [
    AttributionRule(object_id=A, display_name="mi-a", feature="feat-a", team="team-x", cost_center="CC-1"),
    AttributionRule(ip_range="10.0.2.0/24", feature="feat-b", team="team-y", cost_center="CC-2"),
    AttributionRule(deployment_pattern="batch-*", feature="feat-c", team="team-z", cost_center="CC-3"),
]

DEPS = deployments(
    ("chat", "m1", "GlobalStandard", 100, 100_000),
    ("batch-x", "m1", "GlobalBatch", 100, 100_000),
    ("orphan", "m1", "GlobalStandard", 100, 100_000),
    ("mystery", "gpt-unknown", "GlobalStandard", 10, 10_000),
)


def _one(rows: pd.DataFrame, **where: object) -> pd.Series:
    mask = pd.Series(True, index=rows.index)
    for k, v in where.items():
        mask &= rows[k] == v
    assert mask.sum() == 1, f"{mask.sum()} rows match {where}"
    return rows[mask].iloc[0]


def test_caller_ip_reads_the_masked_octet_as_zero() -> None:
    assert str(attribution.caller_ip("10.0.2.***")) == "10.0.2.0"
    assert attribution.caller_ip("") is None
    assert attribution.caller_ip("not an ip") is None


def test_rules_first_match_wins_and_every_set_matcher_must_match() -> None:
    both = AttributionRule(object_id=A, ip_range="192.168.0.0/16", feature="f0", team="t0")
    rules = [both, *RULES]
    # rule 1 needs both object id and network: the object id alone falls through to rule 2
    assert attribution.match_rule(rules, A, "10.9.9.***", "chat")[0] == 1  # type: ignore[index]
    assert attribution.match_rule(rules, A, "192.168.4.***", "chat")[0] == 0  # type: ignore[index]
    # object ids compare case-insensitively; IP rule; glob on deployment names
    assert attribution.match_rule(rules, A.upper(), "", "chat")[0] == 1  # type: ignore[index]
    assert attribution.match_rule(rules, "", "10.0.2.***", "chat")[0] == 2  # type: ignore[index]
    assert attribution.match_rule(rules, "", "10.0.3.***", "batch-nightly")[0] == 3  # type: ignore[index]
    assert attribution.match_rule(rules, STRANGER, "10.0.3.***", "chat") is None
    assert attribution.rule_id(0, RULES[0]) == "1:mi-a" and attribution.rule_id(2, RULES[2]) == "3:batch-*"


def test_method_request_prices_each_callers_own_tokens() -> None:
    u = usage(
        # time, deployment, model, object id, ip, requests, usage rows, prompt, cached, completion, bytes in/out
        ("2026-03-02T10:00Z", "chat", "m1", A, "10.0.1.***", 2, 2, 1_000_000, 200_000, 500_000, 10, 10),
        ("2026-03-02T10:00Z", "chat", "m1", "", "10.0.2.***", 1, 1, 3_000_000, 0, 0, 10, 10),
        ("2026-03-02T10:00Z", "chat", "m1", PROBE, "10.9.0.***", 1, 1, 100_000, 0, 0, 10, 10),
    )
    # metrics that agree with the usage rows add nothing
    m = metrics(("2026-03-02T10:00Z", "chat", 4_100_000, 500_000))
    r = allocate_frames(u, m, DEPS, RULES, FakeBook(), START, END, probe_object_id=PROBE)
    rows = r.rows
    a = _one(rows, Feature="feat-a")
    # 800k uncached x $2 + 200k cached x $1 + 500k output x $10, per 1M
    assert a["Cost"] == pytest.approx(1.6 + 0.2 + 5.0)
    assert (a["Method"], a["Rule"], a["Team"], a["CostCenter"]) == ("request", "1:mi-a", "team-x", "CC-1")
    b = _one(rows, Feature="feat-b")
    assert b["Cost"] == pytest.approx(6.0) and b["Rule"] == "2:10.0.2.0/24"
    probe = _one(rows, Category="probes")
    assert probe["Cost"] == pytest.approx(0.2) and probe["Team"] == ""
    assert r.total == pytest.approx(6.8 + 6.0 + 0.2)
    st = statement(r, "team").set_index("Team")
    assert st.loc["team-x", "Cost"] == pytest.approx(6.8)
    assert st.loc["probes", "Cost"] == pytest.approx(0.2)
    assert st.loc["total", "Cost"] == pytest.approx(13.0)


def test_method_bytes_shares_metric_tokens_by_request_and_response_bytes() -> None:
    u = usage(
        # no usage rows this hour: A sent/received 400 bytes, the 10.0.2 caller 600
        ("2026-03-02T11:00Z", "chat", "m1", A, "10.0.1.***", 3, 0, 0, 0, 0, 300, 100),
        ("2026-03-02T11:00Z", "chat", "m1", "", "10.0.2.***", 2, 0, 0, 0, 0, 100, 500),
    )
    m = metrics(("2026-03-02T11:00Z", "chat", 1_000_000, 200_000))
    r = allocate_frames(u, m, DEPS, RULES, FakeBook(), START, END)
    a = _one(r.rows, Feature="feat-a")
    b = _one(r.rows, Feature="feat-b")
    assert (a["PromptTokens"], a["CompletionTokens"]) == pytest.approx((400_000, 80_000))
    assert (b["PromptTokens"], b["CompletionTokens"]) == pytest.approx((600_000, 120_000))
    # 0.4M x $2 + 0.08M x $10 ; 0.6M x $2 + 0.12M x $10
    assert a["Cost"] == pytest.approx(1.6) and b["Cost"] == pytest.approx(2.4)
    assert set(r.rows["Method"]) == {"bytes"}
    assert a["Requests"] == 3
    assert any("bytes" in n for n in r.notices)


def test_method_deployment_for_metric_only_hours_and_pattern_rules() -> None:
    u = usage(
        # a pattern rule claims per-request rows too: the caller is not what allocated them
        ("2026-03-02T10:00Z", "batch-x", "m1", STRANGER, "10.7.0.***", 1, 1, 1_000_000, 0, 0, 1, 1),
    )
    m = metrics(
        ("2026-03-02T12:00Z", "batch-x", 2_000_000, 1_000_000),  # no request logs at all this hour
        ("2026-03-02T12:00Z", "orphan", 500_000, 0),  # no rule for this deployment
    )
    r = allocate_frames(u, m, DEPS, RULES, FakeBook(), START, END)
    rows = r.rows
    claimed = rows[rows["Feature"] == "feat-c"]
    assert set(claimed["Method"]) == {"deployment"} and set(claimed["Rule"]) == {"3:batch-*"}
    # batch prices: 1M x $1 at 10:00; 2M x $1 + 1M x $5 at 12:00
    assert claimed["Cost"].sum() == pytest.approx(1.0 + 7.0)
    orphan = _one(rows, Deployment="orphan")
    assert (orphan["Category"], orphan["Method"], orphan["ObjectId"]) == ("unallocated", "deployment", "")
    assert orphan["Cost"] == pytest.approx(1.0)
    st = statement(r, "feature").set_index("Feature")
    assert st.loc["unallocated", "Cost"] == pytest.approx(1.0)
    assert st.loc["unallocated", "Share"] == pytest.approx(1.0 / 9.0)


def test_an_hour_where_every_call_failed_has_no_tokens_unless_the_metrics_show_some() -> None:
    u = usage(("2026-03-02T10:00Z", "chat", "m1", A, "10.0.1.***", 7, 0, 0, 0, 0, 500, 500))
    u["Succeeded"] = 0  # all throttled: no tokens to record
    r = allocate_frames(u, metrics(), DEPS, RULES, FakeBook(), START, END)
    row = _one(r.rows, Feature="feat-a")
    assert (row["Method"], row["Requests"], row["PromptTokens"], row["Cost"]) == ("request", 7, 0, 0.0)
    # tokens the metrics show that no usage row claims are not dropped: shared by bytes, labelled
    m = metrics(("2026-03-02T10:00Z", "chat", 1_000, 1_000))
    r = allocate_frames(u, m, DEPS, RULES, FakeBook(), START, END)
    row = _one(r.rows, Feature="feat-a")
    assert (row["Method"], row["Requests"], row["PromptTokens"], row["CompletionTokens"]) == ("bytes", 7, 1_000, 1_000)
    assert row["Cost"] == pytest.approx((1_000 * 2.0 + 1_000 * 10.0) / 1e6)


def test_unknown_model_is_unpriced_with_its_tokens_not_zero_and_not_a_crash() -> None:
    u = usage(
        ("2026-03-02T10:00Z", "mystery", "gpt-unknown", A, "10.0.1.***", 5, 5, 70_000, 0, 30_000, 1, 1),
        ("2026-03-02T10:00Z", "chat", "m1", A, "10.0.1.***", 1, 1, 1_000_000, 0, 0, 1, 1),
    )
    r = allocate_frames(u, pd.DataFrame(), DEPS, RULES, FakeBook(), START, END)
    mystery = _one(r.rows, Deployment="mystery")
    assert not mystery["Priced"] and pd.isna(mystery["Cost"])
    assert mystery["Feature"] == "feat-a"  # still attributed: only the price is missing
    st = statement(r, "team").set_index("Team")
    assert st.loc["unpriced", "PromptTokens"] == 70_000 and st.loc["unpriced", "CompletionTokens"] == 30_000
    assert pd.isna(st.loc["unpriced", "Cost"])
    assert st.loc["team-x", "Cost"] == pytest.approx(2.0)  # the priced part only
    assert st.loc["total", "Cost"] == pytest.approx(r.total) == pytest.approx(2.0)
    assert any("no price" in n for n in r.notices)


def test_usage_of_a_deployment_the_management_plane_does_not_know_is_unpriced() -> None:
    u = usage(("2026-03-02T10:00Z", "gone", "m1", A, "10.0.1.***", 1, 1, 1_000, 0, 0, 1, 1))
    r = allocate_frames(u, pd.DataFrame(), DEPS, RULES, FakeBook(), START, END)
    assert not r.rows["Priced"].any() and r.total == 0.0
    assert any("gone" in n for n in r.notices)


def test_empty_period_gives_an_empty_statement_with_zero_total() -> None:
    r = allocate_frames(usage(), pd.DataFrame(), DEPS, RULES, FakeBook(), START, END)
    st = statement(r, "deployment")
    assert list(st["Deployment"]) == ["unallocated", "probes", "ptu idle", "unpriced", "total"]
    assert st.iloc[-1]["Cost"] == 0.0
