"""The Overview's KPI cards, from small frames."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.kpis import compute_kpis

T = [pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T01:00Z")]
STATUS = pd.DataFrame(
    {
        "TimeGenerated": [T[0], T[0], T[1], T[1], T[1]],
        "Deployment": ["a"] * 5,
        "StatusClass": ["2xx", "429", "2xx", "5xx", "4xx"],
        "Requests": [90, 10, 96, 2, 2],
    }
)
TOKENS = pd.DataFrame(
    {"TimeGenerated": T, "Deployment": ["a", "a"], "PromptTokens": [1000, 2000], "CompletionTokens": [10, 20]}
)
LATENCY = pd.DataFrame({"TimeGenerated": T, "Deployment": ["a", "a"], "Requests": [1, 3], "P95": [100.0, 200.0]})


def _by_key(**kw: object) -> dict:  # type: ignore[type-arg]
    args = {
        "status": STATUS,
        "tokens": TOKENS,
        "latency": LATENCY,
        "spend_daily": None,
        "forecast": None,
        "probes_last": None,
        "alert_states": None,
        "transitions": None,
        **kw,
    }
    return {k.key: k for k in compute_kpis(**args)}  # type: ignore[arg-type]


def test_rates_and_totals() -> None:
    k = _by_key()
    assert k["requests"].value == "200"
    assert k["throttled"].value == "5.00%"  # 10 of 200
    assert k["errors"].value == "2.00%"  # 4xx + 5xx, 4 of 200
    assert k["throttled"].y == [pytest.approx(10.0), pytest.approx(0.0)]
    assert k["tokens"].value == "3,030"
    assert k["latency"].value == "175 ms"  # request-weighted: (100 + 600) / 4
    assert k["throttled"].tone == "danger" and k["errors"].tone == "warning"


def test_missing_sources_show_a_dash_not_zero() -> None:
    k = _by_key(status=STATUS.iloc[0:0], tokens=TOKENS.iloc[0:0], latency=LATENCY.iloc[0:0])
    assert {k[x].value for x in ("requests", "tokens", "latency", "spend", "probes", "alerts")} == {"—"}


def test_spend_probes_and_alerts() -> None:
    spend = pd.DataFrame({"Day": T, "Cost": [10.0, 5.0]})
    probes = pd.DataFrame(
        {
            "ts": [1.7e9, 1.7e9 + 60, 1.7e9],
            "deployment": ["a", "a", "b"],
            "kind": ["chat"] * 3,
            "class": ["ok", "timeout", "ok"],
        }
    )
    states = pd.DataFrame({"rule": ["r", "s"], "subject": ["a", "b"], "state": ["firing", "ok"]})
    trans = pd.DataFrame(
        {
            "ts": [1.7e9, 1.7e9 + 10, 1.7e9 + 20],
            "rule": ["r", "s", "r"],
            "subject": ["a", "b", "a"],
            "new": ["firing", "firing", "ok"],
        }
    )
    k = _by_key(spend_daily=spend, forecast=42.0, probes_last=probes, alert_states=states, transitions=trans)
    assert k["spend"].value == "$15" and "42" in k["spend"].sub
    assert k["spend"].y == [10.0, 15.0]  # cumulative
    assert k["probes"].value == "1/2 ok" and k["probes"].tone == "danger"
    assert k["alerts"].value == "1" and k["alerts"].y == [1.0, 2.0, 1.0]
