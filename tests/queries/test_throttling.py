"""The 429 explainer: each limit told apart on small hand-made bursts, the demo's planted bursts named
correctly (TPM, an RPM flood of small calls, PTU saturation), and `aoai-lens explain-429`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from dashboard.cli import main
from queries.config import Settings
from queries.lens import Lens
from queries.throttling import classify, explain_429, name_callers, pool_checks, pool_members

DEPLOYMENTS = pd.DataFrame(
    {
        "Deployment": ["a", "b", "c", "p"],
        "Location": ["eastus", "eastus", "swedencentral", "eastus"],
        "Sku": ["GlobalStandard", "GlobalStandard", "GlobalStandard", "GlobalProvisionedManaged"],
        "Model": ["gpt-4o"] * 4,
        "TpmLimit": [100_000, 100_000, 100_000, 37_500],
        "RpmLimit": [600, 600, 600, 222],
    }
)
USAGES = pd.DataFrame(
    {
        "Location": ["eastus", "swedencentral"],
        "Sku": ["GlobalStandard", "GlobalStandard"],
        "Model": ["gpt-4o", "gpt-4o"],
        "Current": [200.0, 100.0],
        "Limit": [200.0, 200.0],  # thousands of TPM: 200,000
    }
)


def burst(tokens: int, per10: int, per1: int) -> pd.Series:
    return pd.Series({"PeakTokensPerMinute": tokens, "PeakRequestsPer10s": per10, "PeakRequestsPer1s": per1})


def dep(name: str) -> pd.Series:
    return DEPLOYMENTS.set_index("Deployment").loc[name].rename(name)


@pytest.mark.parametrize(
    ("row", "cause"),
    [
        (burst(90_000, 30, 5), "tpm"),  # 90% of 100K TPM: Azure counted max_tokens too, so near is hit
        (burst(89_999, 30, 5), "unknown"),
        (burst(10_000, 101, 12), "rpm_10s"),  # 101 calls in 10 s against 600 / 6 = 100
        (burst(10_000, 100, 11), "rpm_1s"),  # 100 in 10 s is allowed; 11 in 1 s against 600 / 60 = 10 is not
        (burst(95_000, 101, 5), "rpm_10s"),  # both: the 10-second window is the stronger evidence
        (burst(95_000, 40, 11), "tpm"),  # both: one busy second is the weakest
    ],
)
def test_each_limit_is_told_apart(row: pd.Series, cause: str) -> None:
    found, checks = classify(row, dep("a"))
    assert found == cause
    assert [c.cause for c in checks] == ["rpm_10s", "tpm", "rpm_1s"]


def test_unknown_says_what_was_checked() -> None:
    found, checks = classify(burst(50_000, 40, 5), dep("a"))
    assert found == "unknown"
    notes = [c.note for c in checks]
    assert notes == [
        "40 requests in 10 s against 100 (RPM 600 / 6)",
        "50,000 tokens in the busiest minute against 100,000 TPM (50%)",
        "5 requests in 1 s against 10.0 (RPM 600 / 60)",
    ]


def test_provisioned_saturation_comes_from_the_utilisation_metric() -> None:
    # a provisioned deployment's TPM is an estimate: its tokens alone never name the cause
    assert classify(burst(45_000, 10, 2), dep("p"), ptu_max=100.0)[0] == "ptu"
    assert classify(burst(45_000, 10, 2), dep("p"), ptu_max=99.0)[0] == "unknown"
    found, checks = classify(burst(45_000, 10, 2), dep("p"), ptu_max=None)
    assert found == "unknown" and "not available" in checks[0].note


MINUTES = pd.to_datetime(["2026-11-20T10:00Z", "2026-11-20T10:01Z"])


def load(rows: list[tuple[int, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"TimeGenerated": MINUTES[m], "Deployment": d, "PromptTokens": t, "CompletionTokens": 0} for m, d, t in rows]
    )


def test_the_regional_pool_is_its_deployments_together() -> None:
    assert pool_members("a", DEPLOYMENTS) == ["a", "b", "c"] and pool_members("p", DEPLOYMENTS) == []
    # minute 0: a 85K + b 97K = 182K in eastus, >= 90% of the region's 200K; minute 1 is quiet
    pools = pool_checks("a", DEPLOYMENTS, USAGES, load([(0, "a", 85_000), (0, "b", 97_000), (1, "a", 50_000)]))
    by = {c.cause: c for c in pools}
    assert by["quota_region"].observed == 182_000 and by["quota_region"].allowed == 200_000 and by["quota_region"].hit
    assert classify(burst(85_000, 40, 5), dep("a"), pools=pools)[0] == "quota_region"  # a alone is at 85%


def test_the_subscription_pool_spans_regions() -> None:
    # eastus holds 85K (42%), but with swedencentral's 96K the GlobalStandard gpt-4o pool holds 181K
    pools = pool_checks("a", DEPLOYMENTS, USAGES, load([(0, "a", 85_000), (0, "c", 96_000)]))
    by = {c.cause: c for c in pools}
    assert not by["quota_region"].hit and by["quota_region"].observed == 85_000
    assert by["quota_subscription"].hit and by["quota_subscription"].observed == 181_000
    assert classify(burst(85_000, 40, 5), dep("a"), pools=pools)[0] == "quota_subscription"


def test_callers_are_named_by_their_rule(demo_settings: Settings) -> None:
    frame = pd.DataFrame(
        {
            "Deployment": ["chat-gpt4o-mini"] * 4,
            "ObjectId": ["", "", demo_settings.probe_object_id, "0b0b0b0b-0000-4000-8000-000000000000"],
            "CallerIP": ["10.20.2.***", "172.16.8.***", "10.99.0.***", "10.1.1.***"],
            "Requests": [194, 3, 1, 2],
            "Tokens": [7328, 90, 25, 40],
        }
    )
    names = [c.name for c in name_callers(frame, demo_settings.attribution, demo_settings.probe_object_id)]
    assert names == [
        "triage-worker (API key)",
        "(API key) 172.16.8.***",
        "(no rule) 0b0b0b0b…",
        "(probes)",
    ]


# ---- the demo world plants one burst of each kind ---------------------------------------------------


@pytest.fixture(scope="module")
def demo_bursts(demo_settings: Settings) -> list:
    return explain_429(Lens.from_settings(demo_settings), since=timedelta(days=8)).bursts


def test_the_demo_bursts_are_named_correctly(demo_bursts: list) -> None:
    by: dict[str, list] = {}
    for b in demo_bursts:
        by.setdefault(b.deployment, []).append(b)
    assert set(by) == {"chat-gpt4o", "embed-large", "chat-gpt4o-mini", "support-gpt4o-ptu"}

    (rpm,) = by["chat-gpt4o-mini"]  # 600 tiny calls in 20 s: over RPM / 6 per 10 s, far under TPM
    assert rpm.cause == "rpm_10s" and rpm.limit == "RPM (requests per 10-second window)"
    tpm_check = next(c for c in rpm.checks if c.cause == "tpm")
    assert tpm_check.observed is not None and tpm_check.observed < 0.2 * 200_000
    assert rpm.callers[0].name == "triage-worker (API key)" and rpm.callers[0].feature == "ticket-triage"
    assert "pace the client" in rpm.action

    (ptu,) = by["support-gpt4o-ptu"]
    assert ptu.cause == "ptu" and "utilisation peaked at 100%" in ptu.evidence
    assert ptu.callers[0].name == "mi-support-chat"
    assert "spillover" in ptu.action

    for b in by["chat-gpt4o"]:  # the marketing campaign runs over 150K TPM
        assert b.cause == "tpm" and b.callers[0].name == "mi-marketing-copy"
    for b in by["embed-large"]:  # the nightly re-index runs over 100K TPM
        assert b.cause == "tpm" and b.callers[0].name == "mi-doc-indexer"
    for b in demo_bursts:
        assert b.throttled >= 10 and b.first_throttled >= b.start
        assert all(c.requests > 0 for c in b.callers)


def test_the_command_explains_and_checks_its_arguments(
    clean_env: Path, demo_workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(clean_env / "data"))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_workspace))
    assert main(["explain-429", "--since", "8d", "--deployment", "chat-gpt4o-mini"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("chat-gpt4o-mini: ")
    assert "limit hit: RPM (requests per 10-second window)" in out
    assert "triage-worker (API key) [ticket-triage]:" in out and "suggested: " in out
    assert main(["explain-429", "--since", "8d", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["LimitHit"] for r in rows} >= {
        "TPM (tokens per minute)",
        "RPM (requests per 10-second window)",
        "PTU utilisation (provisioned capacity saturated)",
    }
    assert main(["explain-429", "--start", "2001-01-01T00:00Z", "--end", "2001-01-02T00:00Z"]) == 0
    assert capsys.readouterr().out == "No 429 bursts in this range.\n"
    assert main(["explain-429", "--deployment", "gpt-9"]) == 2
    assert "not one of the known values" in capsys.readouterr().err
    assert main(["explain-429", "--since", "1h", "--start", "2001-01-01T00:00Z"]) == 2
