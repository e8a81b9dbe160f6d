"""PTU by hand: the hourly cost shared by consumed share (output weighted x4, cached deducted), idle
capacity as its own line, proration of a partial hour, and the pay-as-you-go comparison."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from cost_fakes import FakeBook, FakePrice, deployments, usage

from queries.config import AttributionRule
from queries.cost import ptu
from queries.cost.report import allocate_frames, statement

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "dddddddd-0000-4000-8000-000000000004"
RULES = [
    AttributionRule(object_id=A, feature="feat-a", team="team-x"),
    AttributionRule(object_id=B, feature="feat-b", team="team-y"),
]
# 10 PTU at $2/PTU-hour = $20 an hour; 10,000 input TPM = 600,000 input-equivalent tokens an hour
DEPS = deployments(("ptu", "m1", "ProvisionedManaged", 10, 10_000))
USAGE = usage(
    # hour 10: A uses 150k uncached + 50k cached input + 25k output = 150k + 4 x 25k = 250k; B 50k
    ("2026-03-02T10:00Z", "ptu", "m1", A, "10.0.1.***", 4, 4, 200_000, 50_000, 25_000, 1, 1),
    ("2026-03-02T10:00Z", "ptu", "m1", B, "10.0.2.***", 1, 1, 50_000, 0, 0, 1, 1),
    # hour 11: nobody
)


def test_hour_grid_prorates_partial_hours() -> None:
    g = ptu.hour_grid(datetime(2026, 3, 2, 10, 30, tzinfo=UTC), datetime(2026, 3, 2, 12, 15, tzinfo=UTC))
    assert list(g["Fraction"]) == [0.5, 1.0, 0.25]


def test_consumption_weights_output_and_deducts_cached() -> None:
    f = pd.DataFrame(
        {
            "Model": ["m1", "gpt-5-mini"],
            "PromptTokens": [100, 100],
            "CachedTokens": [40, 0],
            "CompletionTokens": [10, 10],
        }
    )
    assert list(ptu.consumed(f)) == [60 + 4 * 10, 100 + 8 * 10]


def test_ptu_cost_shared_by_consumption_with_idle_line() -> None:
    # statement lines are cents (rounded once, by largest remainder): hence abs=0.005 on the thirds
    start, end = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    book = FakeBook({**FakeBook().prices, ("m1", "Standard"): FakePrice(2.2, 1.1, 11.0, None, "m1 regional")})
    r = allocate_frames(USAGE, pd.DataFrame(), DEPS, RULES, book, start, end)
    st = statement(r, "feature").set_index("Feature")
    # hour 10: 300k of 600k used -> $10 used (A 250/300, B 50/300), $10 idle; hour 11: $20 idle
    assert st.loc["feat-a", "Cost"] == pytest.approx(10 * 250 / 300, abs=0.005)
    assert st.loc["feat-b", "Cost"] == pytest.approx(10 * 50 / 300, abs=0.005)
    assert st.loc["ptu idle", "Cost"] == pytest.approx(30.0)
    assert st.loc["total", "Cost"] == pytest.approx(40.0) == pytest.approx(r.total)
    s = r.ptu.iloc[0]
    assert (s["Cost"], s["UsedCost"], s["IdleCost"]) == pytest.approx((40.0, 10.0, 30.0))
    assert s["Utilisation"] == pytest.approx(300_000 / 1_200_000)
    assert s["Tokens"] == 275_000
    assert s["EffectivePer1M"] == pytest.approx(40.0 / 0.275)
    # a Regional provisioned deployment is compared with Regional Standard (not GlobalStandard, $2/$1/$10):
    # 200k uncached x $2.2 + 50k cached x $1.1 + 25k output x $11, per 1M
    assert s["PaygSku"] == "Standard"
    assert s["PaygCost"] == pytest.approx(0.44 + 0.055 + 0.275)
    assert s["BreakEvenUtilisation"] == pytest.approx(0.25 * 40.0 / 0.77)
    assert "pay-as-you-go stays cheaper" in s["Hint"]


def test_partial_first_hour_is_prorated_and_caps_utilisation_at_full() -> None:
    start, end = datetime(2026, 3, 2, 10, 30, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    r = allocate_frames(USAGE, pd.DataFrame(), DEPS, RULES, FakeBook(), start, end)
    st = statement(r, "team").set_index("Team")
    # hour 10 is half in the period: $10 and 300k capacity, fully used by 300k; hour 11: $20 idle
    assert st.loc["team-x", "Cost"] == pytest.approx(10 * 250 / 300, abs=0.005)
    assert st.loc["team-y", "Cost"] == pytest.approx(10 * 50 / 300, abs=0.005)
    assert st.loc["ptu idle", "Cost"] == pytest.approx(20.0)
    assert r.total == pytest.approx(30.0)


def test_ptu_without_an_hourly_price_is_unpriced_not_free() -> None:
    book = FakeBook({k: v for k, v in FakeBook().prices.items() if k[1] != "ProvisionedManaged"})
    start, end = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    r = allocate_frames(USAGE, pd.DataFrame(), DEPS, RULES, book, start, end)
    assert not r.rows["Priced"].any() and r.total == 0.0
    st = statement(r, "team").set_index("Team")
    assert st.loc["unpriced", "PromptTokens"] == 250_000
    assert "no PTU price" in r.ptu.iloc[0]["Hint"]


def test_break_even_hint_says_which_side_of_it_the_deployment_is() -> None:
    assert "PTU is paying off" in ptu.break_even_hint(0.6, 0.4, 100.0, 150.0)
    assert "would have been cheaper" in ptu.break_even_hint(0.3, 0.4, 100.0, 75.0)
    assert "above 40% utilisation" in ptu.break_even_hint(0.3, 0.4, 100.0, 75.0)


def test_capacity_costs_only_from_the_deployments_creation() -> None:
    # created at 10:30: the 10:00 hour is half billable, 11:00 whole; hour 10's usage shares the half hour
    start, end = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 12, tzinfo=UTC)
    deps = DEPS.copy()
    deps["Created"] = pd.Timestamp("2026-03-02T10:30Z")
    r = allocate_frames(USAGE, pd.DataFrame(), deps, RULES, FakeBook(), start, end)
    st = statement(r, "feature").set_index("Feature")
    # hour 10: $10 for half an hour of 300k-token capacity, all of it used (utilisation capped at 100%)
    assert st.loc["feat-a", "Cost"] + st.loc["feat-b", "Cost"] == pytest.approx(10.0)
    assert st.loc["ptu idle", "Cost"] == pytest.approx(20.0)
    assert r.total == pytest.approx(30.0)
    assert r.ptu.iloc[0]["Hours"] == pytest.approx(1.5)
    # created after the period: no PTU cost at all
    deps["Created"] = pd.Timestamp("2026-03-03T00:00Z")
    later = allocate_frames(pd.DataFrame(columns=USAGE.columns), pd.DataFrame(), deps, RULES, FakeBook(), start, end)
    assert later.total == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("sku", "payg"),
    [
        ("GlobalProvisionedManaged", "GlobalStandard"),
        ("DataZoneProvisionedManaged", "DataZoneStandard"),
        ("ProvisionedManaged", "Standard"),
    ],
)
def test_each_provisioned_type_is_compared_with_its_own_pay_as_you_go_type(sku: str, payg: str) -> None:
    prices = {
        ("m1", sku): FakePrice(None, None, None, 2.0, "ptu"),
        ("m1", "GlobalStandard"): FakePrice(1.0, 1.0, 1.0, None, "global"),
        ("m1", "DataZoneStandard"): FakePrice(3.0, 3.0, 3.0, None, "data zone"),
        ("m1", "Standard"): FakePrice(5.0, 5.0, 5.0, None, "regional"),
    }
    per_1m = {"GlobalStandard": 1.0, "DataZoneStandard": 3.0, "Standard": 5.0}[payg]
    start, end = datetime(2026, 3, 2, 10, tzinfo=UTC), datetime(2026, 3, 2, 11, tzinfo=UTC)
    deps = deployments(("ptu", "m1", sku, 10, 10_000))
    r = allocate_frames(USAGE, pd.DataFrame(), deps, RULES, FakeBook(prices), start, end)
    s = r.ptu.iloc[0]
    assert s["PaygSku"] == payg
    assert s["PaygCost"] == pytest.approx(275_000 * per_1m / 1e6)  # every token kind at the same price
