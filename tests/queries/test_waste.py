"""Waste findings on small worlds built by hand, each $ computed here from the numbers in the test; then
the whole report on the demo workspace, where each planted kind of waste is found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from cost_fakes import FakeBook, FakePrice

from queries import waste
from queries.config import Settings
from queries.lens import Lens

H1, H2, H3 = (pd.Timestamp(f"2026-11-20T{h:02d}:00Z") for h in (10, 11, 12))
A, B = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002"
IP_A, IP_B = "10.0.1.***", "10.0.2.***"
# per token: input $2, cached $1, output $10 per 1M (FakeBook's m1 GlobalStandard)
IN, CA, OUT = 2e-6, 1e-6, 10e-6


def led(*rows: dict[str, Any]) -> pd.DataFrame:
    """Ledger rows: each dict sets what differs from a priced request row of caller A on chat (m1)."""
    base = {
        "Hour": H1,
        "Resource": "res1",
        "Deployment": "chat",
        "Model": "m1",
        "Version": "1",
        "Sku": "GlobalStandard",
        "Region": "eastus",
        "Meter": "input",
        "ObjectId": A,
        "CallerIP": IP_A,
        "Method": "request",
        "Category": "allocated",
        "Unit": "tokens",
        "Quantity": 0.0,
        "EffectiveCost": 0.0,
        "Priced": True,
        "IsProbe": False,
    }
    return pd.DataFrame([{**base, **r} for r in rows])


def priced(meter: str, qty: float, rate: float, **kw: Any) -> dict[str, Any]:
    return {"Meter": meter, "Quantity": qty, "EffectiveCost": qty * rate, **kw}


PRICES_LEDGER = led(priced("input", 1_000_000, IN), priced("cached_input", 100_000, CA), priced("output", 50_000, OUT))


def test_ledger_prices_are_cost_over_quantity_and_fill_a_missing_cached_price_from_the_book() -> None:
    p = waste.ledger_prices(PRICES_LEDGER)
    row = p.iloc[0]
    assert (row["In"], row["Ca"], row["Out"]) == pytest.approx((IN, CA, OUT))
    no_cache = led(priced("input", 1000, IN), priced("output", 10, OUT))
    assert waste.ledger_prices(no_cache).iloc[0]["Ca"] == pytest.approx(IN)  # as the ledger would price it
    book = FakeBook({("m1", "GlobalStandard"): FakePrice(2.0, 0.5, 10.0, None)})
    assert waste.ledger_prices(no_cache, book).iloc[0]["Ca"] == pytest.approx(0.5e-6)


def test_streams_without_usage_cost_the_ledgers_bytes_rows_of_their_hours() -> None:
    frame = pd.DataFrame(
        [
            # H1, H2: caller A's streams have no usage row, its other calls do
            (H1, "RES1", "chat", A.upper(), IP_A, 5, 2, 0),
            (H2, "res1", "chat", A, IP_A, 3, 1, 0),
            # H3: caller B's non-streamed calls lack usage rows too: an ingestion gap, not a client option
            (H3, "res1", "chat", A, IP_A, 4, 3, 0),
            (H3, "res1", "chat", B, IP_B, 0, 0, 4),
        ],
        columns=[
            "TimeGenerated",
            "Resource",
            "Deployment",
            "ObjectId",
            "CallerIP",
            "Streamed",
            "StreamedNoUsage",
            "OtherNoUsage",
        ],
    )
    ledger = led(
        priced("input", 100_000, IN, Hour=H1, Method="bytes"),  # $0.20
        priced("output", 20_000, OUT, Hour=H1, Method="bytes"),  # $0.20
        priced("input", 50_000, IN, Hour=H2, Method="bytes"),  # $0.10
        priced("input", 900_000, IN, Hour=H1),  # request rows: measured, not this finding's
        priced("input", 1_000_000, IN, Hour=H3, Method="bytes"),  # the gap hour's
    )
    ev, usd = waste.streams_without_usage(frame, ledger)
    assert usd == pytest.approx(0.20 + 0.20 + 0.10)
    assert ev.to_dict("records") == [
        {
            "Deployment": "chat",
            "ObjectId": A,
            "CallerIP": IP_A,
            "Hours": 2,
            "StreamedNoUsage": 3,
            "USD": pytest.approx(0.5),
        }
    ]


def test_capped_responses_cost_their_tokens_at_the_ledgers_prices() -> None:
    frame = pd.DataFrame(
        [("res1", "chat", "m1", A, IP_A, 400, 512, 30, 0.075, 30_000, 10_000, 30 * 512)],
        columns=[
            "Resource",
            "Deployment",
            "Model",
            "ObjectId",
            "CallerIP",
            "Calls",
            "CapTokens",
            "AtCap",
            "AtCapShare",
            "PromptTokens",
            "CachedTokens",
            "CompletionTokens",
        ],
    )
    ev, usd = waste.completion_cap(frame, waste.ledger_prices(PRICES_LEDGER))
    # 20,000 uncached x $2/1M + 10,000 cached x $1/1M + 15,360 generated x $10/1M
    assert usd == pytest.approx(0.04 + 0.01 + 0.1536)
    assert ev.iloc[0]["CapTokens"] == 512 and ev.iloc[0]["USD"] == pytest.approx(usd)


def test_short_calls_cost_the_difference_to_the_mini_model() -> None:
    cols = [
        "Resource",
        "Deployment",
        "Model",
        "ObjectId",
        "CallerIP",
        "Calls",
        "ShortCalls",
        "PromptTokens",
        "CachedTokens",
        "CompletionTokens",
    ]
    frame = pd.DataFrame(
        [
            ("res1", "chat", "m1", A, IP_A, 300, 100, 20_000, 0, 5_000),
            ("res1", "small", "m1-mini", B, IP_B, 50, 50, 1_000, 0, 100),  # already the mini
            ("res1", "ptu", "m1", B, IP_B, 10, 10, 1_000, 0, 100),  # provisioned: tokens cost $0
            ("res1", "other", "m2", A, IP_A, 10, 10, 1_000, 0, 100),  # no mini price
        ],
        columns=cols,
    )
    ledger = pd.concat(
        [
            PRICES_LEDGER,
            led(priced("input", 1000, 0.0, Deployment="ptu", Sku="ProvisionedManaged")),
            led(priced("input", 1000, 3e-6, Deployment="other", Model="m2")),
        ],
        ignore_index=True,
    )
    book = FakeBook({("m1-mini", "GlobalStandard"): FakePrice(0.2, 0.1, 1.0, None)})
    ev, usd, notes = waste.short_calls(frame, waste.ledger_prices(ledger), book)
    large = 20_000 * IN + 5_000 * OUT  # $0.09
    mini = 20_000 * 0.2e-6 + 5_000 * 1.0e-6  # $0.009
    assert usd == pytest.approx(large - mini)
    assert ev[["Deployment", "Mini"]].values.tolist() == [["chat", "m1-mini"]]
    assert ev.iloc[0]["USDLarge"] == pytest.approx(large) and ev.iloc[0]["USDMini"] == pytest.approx(mini)
    assert any("ptu: provisioned" in n for n in notes) and any("no price for m2-mini" in n for n in notes)


def test_idle_ptu_hours_are_the_ledgers_idle_rows() -> None:
    ptu = {"Deployment": "ptu", "Sku": "GlobalProvisionedManaged", "Meter": "ptu_hour", "Unit": "PTU-hours"}
    ledger = led(
        {**ptu, **priced("ptu_hour", 9.0, 1.0), "Hour": H1},  # 60% of 15 PTUs used by caller A
        {
            **ptu,
            **priced("ptu_hour", 6.0, 1.0),
            "Hour": H1,
            "Category": "ptu idle",
            "Method": "ptu idle",
            "ObjectId": "",
        },
        {
            **ptu,
            **priced("ptu_hour", 15.0, 1.0),
            "Hour": H2,
            "Category": "ptu idle",
            "Method": "ptu idle",
            "ObjectId": "",
        },
        priced("input", 1000, IN),  # a token row: not PTU
    )
    ev, usd = waste.ptu_idle(ledger)
    assert usd == pytest.approx(21.0)
    assert ev.to_dict("records") == [
        {
            "Deployment": "ptu",
            "Sku": "GlobalProvisionedManaged",
            "PtuHours": 30.0,
            "IdlePtuHours": 21.0,
            "IdleShare": 0.7,
            "USD": 21.0,
        }
    ]


def test_prompt_cache_hit_rate_per_deployment_and_the_saving_to_the_target() -> None:
    cols = [
        "Resource",
        "Deployment",
        "Model",
        "ObjectId",
        "CallerIP",
        "Calls",
        "PromptTokens",
        "CachedTokens",
        "EligibleCalls",
        "EligiblePromptTokens",
        "EligibleCachedTokens",
    ]
    frame = pd.DataFrame(
        [
            ("res1", "chat", "m1", A, IP_A, 40, 100_000, 10_000, 30, 80_000, 10_000),
            ("res1", "chat", "m1", B, IP_B, 60, 20_000, 0, 0, 0, 0),
            ("res1", "warm", "m1", A, IP_A, 10, 50_000, 30_000, 10, 50_000, 30_000),  # 60%: above the target
        ],
        columns=cols,
    )
    ledger = pd.concat([PRICES_LEDGER, PRICES_LEDGER.assign(Deployment="warm")], ignore_index=True)
    ev, usd = waste.prompt_cache(frame, waste.ledger_prices(ledger), target=0.5)
    chat = ev[ev["Deployment"] == "chat"].iloc[0]
    assert chat["HitRate"] == pytest.approx(10_000 / 120_000) and chat["EligibleHitRate"] == pytest.approx(0.125)
    # (50% x 80,000 - 10,000) tokens x ($2 - $1) per 1M
    assert chat["USD"] == pytest.approx(30_000 * (IN - CA)) and usd == pytest.approx(0.03)
    assert ev[ev["Deployment"] == "warm"].iloc[0]["USD"] == 0.0


def test_embedding_spikes_against_the_callers_usual_for_that_hour() -> None:
    emb = {
        "Deployment": "emb",
        "Model": "text-embedding-3-large",
        "Meter": "embeddings",
        "ObjectId": B,
        "CallerIP": IP_B,
    }
    rate = 0.13e-6
    day = timedelta(days=1)
    ledger = led(
        {**emb, **priced("embeddings", 1_000, rate), "Hour": H1 - 2 * day},
        {**emb, **priced("embeddings", 200_000, rate), "Hour": H1 - day},  # 200x its usual 1,000
        {**emb, **priced("embeddings", 1_000, rate), "Hour": H1},
        {**emb, **priced("embeddings", 500_000, rate), "Hour": H2},  # the 11:00 hour is usually empty
        {**emb, **priced("embeddings", 90_000, rate), "Hour": H3},  # above its usual 0, but under 100,000
        {**emb, **priced("embeddings", 900_000, rate), "Hour": H3 - day, "IsProbe": True},  # probes: not a caller
    )
    ev, usd = waste.embedding_spikes(ledger, factor=3.0, min_tokens=100_000)
    assert list(ev["Hour"]) == [H1 - day, H2]
    assert ev["UsualTokens"].tolist() == [1_000.0, 0.0]
    assert usd == pytest.approx(199_000 * rate + 500_000 * rate)


def test_monthly_is_730_hours_over_the_window() -> None:
    assert waste.monthly(7.0, 168.0) == pytest.approx(7.0 * 730 / 168)
    assert "730 h / 168 h" in waste.monthly_method(168.0)
    start, end = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert waste.covered_hours(start, end, None) == 720.0
    assert waste.covered_hours(start, end, datetime(2026, 11, 24, tzinfo=UTC)) == 168.0  # a week of data
    assert waste.covered_hours(start, end, datetime(2026, 10, 1, tzinfo=UTC)) == 720.0


def test_the_demo_shows_every_finding(demo_settings: Settings, demo_end: datetime) -> None:
    lens = Lens.from_settings(demo_settings)
    report = waste.report(lens, demo_end - timedelta(days=7), demo_end)
    found = {f.key: f for f in report.findings}
    assert list(found) == list(waste.TITLES)
    for f in report.findings:
        assert f.usd > 0 and f.usd_per_month == pytest.approx(f.usd * 730 / report.hours), f.key
        assert not f.evidence.empty and f.kql and "AzureDiagnostics" in f.kql, f.key
        assert f.result is None or f.result.status == "ok", (f.key, f.result.notice)
    # each planted kind is found where it was planted, named by its caller
    assert set(found["streams_without_usage"].evidence["Feature"]) == {"rag-answers"}
    cap = found["completion_cap"].evidence
    assert cap[["Deployment", "Feature", "CapTokens"]].values.tolist() == [["chat-gpt4o", "marketing-copy", 512]]
    short = found["short_calls"].evidence
    assert short.iloc[0][["Deployment", "Feature", "Mini"]].tolist() == ["chat-gpt4o", "marketing-copy", "gpt-4o-mini"]
    assert set(found["ptu_idle"].evidence["Deployment"]) == {"support-gpt4o-ptu"}
    assert set(found["embedding_spikes"].evidence["Feature"]) == {"doc-indexer"}
    assert "rag-gpt41" in set(found["prompt_cache"].evidence["Deployment"])
    assert "probes" not in " ".join(str(v) for f in report.findings for v in f.evidence.get("Caller", []))
    # callers no attribution rule claims are named by the directory (Graph's names; the demo's own here)
    callers = {str(v) for f in report.findings for v in f.evidence.get("Caller", [])}
    assert "sp-finance-forecast-notebook" in callers and not [c for c in callers if c.startswith("(no rule)")]


def test_without_the_ledger_the_findings_say_so_and_carry_no_dollars(
    demo_settings: Settings, demo_end: datetime
) -> None:
    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("usage query failed")

    lens = Lens.from_settings(demo_settings)
    report = waste.report(lens, demo_end - timedelta(days=1), demo_end, allocation=broken)
    for f in report.findings:
        assert pd.isna(f.usd) and pd.isna(f.usd_per_month), f.key
        assert any("cost ledger could not be read" in n and "usage query failed" in n for n in f.notes), f.key
    found = {f.key: f for f in report.findings}
    assert not found["completion_cap"].evidence.empty  # what the queries found is still listed
