"""The cost ledger's money, checked against totals computed independently from the raw requests and the
price book (never from the parts): small worlds by hand for the three lines that once went unguarded,
and random worlds (hypothesis) for conservation in every grouping."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from cost_fakes import FakeBook, deployments, metrics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queries.config import AttributionRule
from queries.cost.ledger import METER_CACHED, METER_INPUT, METER_OUTPUT, METER_PTU
from queries.cost.report import allocate_frames, largest_remainder, statement

A = "aaaaaaaa-0000-4000-8000-000000000001"
B_IP = "10.0.2.***"
PROBE = "99999999-0000-4000-8000-000000000009"
STRANGER = "cccccccc-0000-4000-8000-000000000003"
RULES = [
    AttributionRule(object_id=A, display_name="mi-a", feature="feat-a", team="team-x", cost_center="CC-1"),
    AttributionRule(ip_range="10.0.2.0/24", feature="feat-b", team="team-y", cost_center="CC-2"),
]
START = datetime(2026, 3, 2, 10, tzinfo=UTC)
HOURS = 4
END = START + timedelta(hours=HOURS)
# m1 GlobalStandard: $2 input, $1 cached, $10 output per 1M; PTU: $2 per PTU-hour (cost_fakes.PRICES)
IN, CA, OUT, PTU_PRICE = 2.0 / 1e6, 1.0 / 1e6, 10.0 / 1e6, 2.0
PTU_CAPACITY, PTU_TPM = 10, 1_000  # 60,000 input-equivalent tokens an hour
DEPS = deployments(
    ("std", "m1", "GlobalStandard", 100, 100_000),
    ("ptu", "m1", "ProvisionedManaged", PTU_CAPACITY, PTU_TPM),
    ("dark", "gpt-unknown", "GlobalStandard", 10, 10_000),
)
CALLERS = {  # name -> (object id, caller ip)
    "a": (A, "10.0.1.***"),
    "b": ("", B_IP),
    "stranger": (STRANGER, "10.7.0.***"),
    "api-key": ("", "10.9.9.***"),
    "probe": (PROBE, "10.0.9.***"),
}


@dataclass(frozen=True)
class Request:
    hour: int
    deployment: str
    caller: str
    prompt: int
    cached: int
    completion: int
    ok: bool
    has_usage: bool
    size: int  # request + response bytes


def usage_frame(requests: list[Request]) -> pd.DataFrame:
    """What `cost_usage_by_caller` answers for these requests at a 1h bin."""
    rows: dict[tuple, dict[str, float]] = {}
    for r in requests:
        oid, ip = CALLERS[r.caller]
        key = (
            START + timedelta(hours=r.hour),
            r.deployment,
            "m1" if r.deployment != "dark" else "gpt-unknown",
            oid,
            ip,
        )
        d = rows.setdefault(key, dict.fromkeys(
            ["Requests", "Succeeded", "UsageRows", "UnreadableUsage", "PromptTokens", "CachedTokens",
             "CompletionTokens", "ReasoningTokens", "RequestBytes", "ResponseBytes", "UnmatchedRequests",
             "UnmatchedBytes"], 0.0))  # fmt: skip
        d["Requests"] += 1
        d["RequestBytes"] += r.size / 2
        d["ResponseBytes"] += r.size / 2
        if not r.ok:
            continue
        d["Succeeded"] += 1
        if r.has_usage:
            d["UsageRows"] += 1
            d["PromptTokens"] += r.prompt
            d["CachedTokens"] += r.cached
            d["CompletionTokens"] += r.completion
        else:
            d["UnmatchedRequests"] += 1
            d["UnmatchedBytes"] += r.size
    out = [
        {"TimeGenerated": t, "Resource": "res1", "Deployment": dep, "Model": model, "ModelVersion": "1",
         "ObjectId": oid, "CallerIP": ip, **vals}
        for (t, dep, model, oid, ip), vals in rows.items()
    ]  # fmt: skip
    frame = pd.DataFrame(out)
    if frame.empty:
        frame = pd.DataFrame(
            columns=["TimeGenerated", "Resource", "Deployment", "Model", "ModelVersion", "ObjectId", "CallerIP"]
        )
    return frame


def metrics_frame(requests: list[Request]) -> pd.DataFrame:
    """What the metrics API answers: every successful request's tokens, usage row or not."""
    totals: dict[tuple[int, str], list[float]] = {}
    for r in requests:
        if r.ok:
            t = totals.setdefault((r.hour, r.deployment), [0.0, 0.0])
            t[0] += r.prompt
            t[1] += r.completion
    return metrics(
        *[(pd.Timestamp(START + timedelta(hours=h)), dep, p, c) for (h, dep), (p, c) in sorted(totals.items())]
    )


def expected_total(requests: list[Request]) -> float:
    """The money, from the raw requests and the price book: token rows priced per request (cached
    tokens of a request without a usage row are unknown, so priced as uncached input), the unpriced
    model left out, and every provisioned hour at capacity x price whatever the usage."""
    total = 0.0
    for r in requests:
        if not r.ok or r.deployment != "std":
            continue
        cached = r.cached if r.has_usage else 0
        total += (r.prompt - cached) * IN + cached * CA + r.completion * OUT
    return total + HOURS * PTU_CAPACITY * PTU_PRICE


def expected_unpriced_tokens(requests: list[Request]) -> float:
    return float(sum(r.prompt + r.completion for r in requests if r.ok and r.deployment == "dark"))


def allocate(requests: list[Request]):  # type: ignore[no-untyped-def]
    return allocate_frames(
        usage_frame(requests), metrics_frame(requests), DEPS, RULES, FakeBook(), START, END, probe_object_id=PROBE
    )


def assert_conserved(requests: list[Request]) -> None:
    r = allocate(requests)
    want = expected_total(requests)
    assert r.total == pytest.approx(want, rel=1e-9, abs=1e-9)
    for by in ("team", "feature", "deployment", "cost-center"):
        s = statement(r, by)  # type: ignore[arg-type]
        lines = s[~s["Kind"].isin(["total", "unpriced"])]
        cents = round(float(lines["Cost"].sum()) * 100)
        assert cents == round(want * 100), (by, s)
        assert float(s.loc[s["Kind"] == "total", "Cost"].iloc[0]) == pytest.approx(round(want, 2))
        unpriced = s[s["Kind"] == "unpriced"].iloc[0]
        assert unpriced["PromptTokens"] + unpriced["CompletionTokens"] == pytest.approx(
            expected_unpriced_tokens(requests), abs=2
        )
        assert s["Requests"].dtype == np.int64 and s["PromptTokens"].dtype == np.int64
        assert int(lines["Requests"].sum() + unpriced["Requests"]) == len(requests)
    # nothing priced at $0 that had tokens: an unpriced row's cost is NaN
    unpriced_rows = r.ledger[~r.ledger["Priced"]]
    assert unpriced_rows["EffectiveCost"].isna().all()
    # the probes' own calls are never charged back
    alloc = r.rows[r.rows["Category"] == "allocated"]
    assert PROBE not in set(alloc["ObjectId"])


# ---- the three lines that once went unguarded ---------------------------------------------------------


def _req(
    hour: int,
    dep: str,
    caller: str,
    prompt: int,
    completion: int,
    *,
    usage: bool = True,
    size: int = 100,
    cached: int = 0,
) -> Request:
    return Request(hour, dep, caller, prompt, cached, completion, True, usage, size)


def test_lost_usage_rows_are_decided_per_deployment_hour_and_never_double_counted() -> None:
    """One hour, two callers: a's second request lost its usage row; b's are all there. The metrics
    show every token. a's lost tokens (300k in, 30k out) come back from the metrics, shared among the
    requests that lack usage (only a's), labelled `bytes`; b's own tokens are not shared again."""
    world = [
        _req(0, "std", "a", 100_000, 10_000),
        _req(0, "std", "a", 300_000, 30_000, usage=False, size=400),
        _req(0, "std", "b", 600_000, 60_000, size=600),
    ]
    r = allocate(world)
    rows = r.rows
    a = rows[rows["Team"] == "team-x"]
    b = rows[rows["Team"] == "team-y"]
    assert sorted(a["Method"]) == ["bytes", "request"]
    assert a.loc[a["Method"] == "bytes", ["PromptTokens", "CompletionTokens"]].iloc[0].tolist() == [300_000, 30_000]
    assert a["PromptTokens"].sum() == 400_000 and b["PromptTokens"].sum() == 600_000  # nothing twice
    assert set(b["Method"]) == {"request"}
    assert rows["PromptTokens"].sum() == 1_000_000 and rows["CompletionTokens"].sum() == 100_000  # nothing lost
    assert r.health.tokens.bytes_tokens == pytest.approx(330_000)
    assert r.total == pytest.approx(expected_total(world))


def test_without_metrics_lost_tokens_are_reported_not_dropped_silently() -> None:
    world = [_req(0, "std", "a", 100_000, 10_000), _req(0, "std", "a", 300_000, 30_000, usage=False)]
    r = allocate_frames(usage_frame(world), pd.DataFrame(), DEPS, RULES, FakeBook(), START, END)
    assert r.health.tokens.unmatched_requests == 1 and r.health.tokens.unfilled_requests == 1
    assert any("no usage row and no metric tokens" in n for n in r.notices)


def test_an_over_capacity_ptu_hour_costs_its_capacity_and_no_more() -> None:
    """Hour 0 consumes twice the capacity (120,000 of 60,000 input-equivalent tokens): the callers share
    exactly one hour of capacity ($20), there is no negative idle line, and the excess is reported."""
    world = [_req(0, "ptu", "a", 80_000, 0), _req(0, "ptu", "b", 40_000, 0)]
    end = START + timedelta(hours=1)
    r = allocate_frames(usage_frame(world), metrics_frame(world), DEPS, RULES, FakeBook(), START, end)
    s = statement(r, "team").set_index("Team")
    assert (s.loc["team-x", "Cost"], s.loc["team-y", "Cost"]) == (13.33, 6.67)  # 20 x 80/120 and 20 x 40/120, in cents
    assert s.loc["ptu idle", "Cost"] == 0.0 and s.loc["total", "Cost"] == pytest.approx(20.0)
    assert r.total == pytest.approx(20.0)
    assert (r.ledger["Quantity"] >= 0).all()
    assert r.health.over_capacity_tokens == pytest.approx(60_000)
    assert any("beyond provisioned capacity" in n for n in r.notices)


# ---- meters ------------------------------------------------------------------------------------------


def test_meter_rows_carry_quantity_unit_price_and_cost() -> None:
    world = [_req(0, "std", "a", 1_000_000, 500_000, cached=200_000)]
    led = allocate(world).ledger
    std = led[(led["Deployment"] == "std")].set_index("Meter")
    assert std.loc[METER_INPUT, "Quantity"] == 800_000 and std.loc[METER_INPUT, "UnitPrice"] == pytest.approx(IN)
    assert std.loc[METER_CACHED, "Quantity"] == 200_000 and std.loc[METER_CACHED, "EffectiveCost"] == pytest.approx(0.2)
    assert std.loc[METER_OUTPUT, "EffectiveCost"] == pytest.approx(5.0)
    assert std.loc[METER_INPUT, "Requests"] == 1 and std.loc[METER_OUTPUT, "Requests"] == 0
    assert set(std["Unit"]) == {"tokens"} and set(std["Team"]) == {"team-x"}
    ptu = led[led["Meter"] == METER_PTU]
    assert set(ptu["Unit"]) == {"PTU-hours"} and ptu["Quantity"].sum() == pytest.approx(HOURS * PTU_CAPACITY)


def test_largest_remainder_rounds_once_and_keeps_the_total() -> None:
    parts = np.array([0.333, 0.333, 0.334, 1.004, 2.0])
    got = largest_remainder(parts, parts.sum(), 0.01)
    assert round(got.sum(), 2) == round(parts.sum(), 2) == 4.0
    assert list(np.round(got, 2)) == [0.33, 0.33, 0.34, 1.0, 2.0]  # the tie goes to the earlier line


# ---- random worlds -------------------------------------------------------------------------------------

requests_st = st.lists(
    st.builds(
        lambda hour, dep, caller, prompt, cached_share, completion, ok, has_usage, size: Request(
            hour, dep, caller, prompt, int(prompt * cached_share), completion, ok, has_usage, size
        ),
        st.integers(0, HOURS - 1),
        st.sampled_from(["std", "ptu", "dark"]),
        st.sampled_from(sorted(CALLERS)),
        st.integers(0, 200_000),
        st.sampled_from([0.0, 0.25, 1.0]),
        st.integers(0, 50_000),
        st.booleans(),
        st.sampled_from([True, True, False]),
        st.integers(0, 5_000),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests_st)
def test_money_is_conserved_in_every_grouping_of_a_random_world(requests: list[Request]) -> None:
    """Missing usage rows, over-capacity and idle PTU hours, zero-traffic hours, an unpriced model, probes
    with an object id and callers without one: the lines of every statement add up to the total
    computed from the raw requests, to the cent."""
    assert_conserved(requests)


# ---- a deployment the management plane no longer lists (retired, still called) -------------------------


def _gone(requests: list[Request]) -> pd.DataFrame:
    """The usage frame, the retired deployment's rows logged as Azure logs a 404: its name, no model."""
    frame = usage_frame(requests)
    frame.loc[frame["Deployment"] == "gone", ["Model", "ModelVersion"]] = ""
    return frame


def test_a_retired_deployments_refused_calls_neither_crash_nor_cost() -> None:
    world = [_req(0, "std", "a", 100_000, 10_000)]
    refused = [Request(h, "gone", "a", 0, 0, 0, False, False, 300) for h in range(3)]
    r = allocate_frames(_gone(world + refused), metrics_frame(world), DEPS, RULES, FakeBook(), START, END)
    assert r.total == pytest.approx(expected_total(world))
    gone = r.ledger[r.ledger["Deployment"] == "gone"]
    assert gone["Requests"].sum() == 3 and gone["Quantity"].sum() == 0
    assert gone["Priced"].all() and (gone["EffectiveCost"] == 0).all()  # nothing used, nothing to price
    assert r.unpriced.empty and not r.health.no_deployment_record
    assert not any("no management-plane record" in n or "have no price" in n for n in r.notices)
    s = statement(r, "deployment").set_index("Deployment")
    assert s.loc["gone", "Requests"] == 3 and s.loc["gone", "Cost"] == 0.0
    assert s.loc["total", "Cost"] == pytest.approx(round(expected_total(world), 2))


def test_a_retired_deployments_tokens_are_unpriced_never_zero() -> None:
    world = [_req(0, "std", "a", 100_000, 10_000)]
    answered = [_req(1, "gone", "a", 40_000, 2_000)]  # it answered before the record disappeared
    r = allocate_frames(_gone(world + answered), metrics_frame(world), DEPS, RULES, FakeBook(), START, END)
    assert r.total == pytest.approx(expected_total(world))  # not a cent for tokens nothing prices
    gone = r.ledger[r.ledger["Deployment"] == "gone"]
    assert (~gone["Priced"]).all() and gone["EffectiveCost"].isna().all()
    assert gone["Quantity"].sum() == 42_000
    assert r.health.no_deployment_record == ["gone"]
    assert any("no management-plane record (SKU, region) for gone" in n for n in r.notices)
    unpriced = statement(r, "team").set_index("Kind").loc["unpriced"]
    assert unpriced["PromptTokens"] + unpriced["CompletionTokens"] == 42_000
