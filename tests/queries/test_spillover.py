"""Spillover: the requests a provisioned deployment hands to its standard deployment, read from the metrics'
IsSpillover dimension and ARM's spilloverDeploymentName, and their standard-rate share of the spillover
deployment's ledger cost (already in the ledger: never added, never counted twice)."""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queries import provisioned
from queries.config import Settings
from queries.cost.spillover import spillover_cost, target_hours
from queries.demo import world
from queries.lens import Lens

H = [pd.Timestamp("2026-12-01T10:00Z") + pd.Timedelta(hours=i) for i in range(3)]
PTU = pd.DataFrame({"Deployment": ["ptu"], "Model": ["gpt-4o"], "TpmLimit": [37_500], "Spillover": ["std"]})


def ledger(rows: list[tuple[pd.Timestamp, str, float, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["Hour", "Deployment", "Requests", "EffectiveCost", "Priced"])


def test_spillover_cost_by_hand_with_an_independent_total() -> None:
    led = ledger(
        [
            # hour 0: the standard deployment served 100 requests for $5 (input and output rows); 20 spilled
            (H[0], "std", 100, 3.0, True),
            (H[0], "std", 0, 2.0, True),
            # hour 1: it served only the 10 spilled requests ($2: a dedicated spillover deployment)
            (H[1], "std", 10, 2.0, True),
            # another deployment's money is not the spillover's
            (H[0], "other", 50, 9.0, True),
        ]
    )
    spilled = pd.DataFrame({"Hour": H, "Deployment": "ptu", "Target": "std", "Spilled": [20.0, 10.0, 5.0]})
    out = spillover_cost(spilled, target_hours(led, ["std"]))
    assert list(out["Share"][:2]) == [pytest.approx(0.2), pytest.approx(1.0)]
    assert list(out["SpilloverCost"][:2]) == [pytest.approx(1.0), pytest.approx(2.0)]
    # hour 2 has spilled requests but no ledger row yet: unknown, never $0
    assert math.isnan(out["SpilloverCost"].iloc[2])
    # the independent total: 20/100 of $5 + all of $2
    assert out["SpilloverCost"].sum() == pytest.approx(20 / 100 * 5.0 + 2.0)
    # a part of the standard deployment's cost, not added to it
    assert out["SpilloverCost"].sum() <= led.loc[led["Deployment"] == "std", "EffectiveCost"].sum()


def test_an_unpriced_hour_and_more_spilled_than_served() -> None:
    led = ledger([(H[0], "std", 10, 1.0, True), (H[0], "std", 0, float("nan"), False), (H[1], "std", 4, 1.0, True)])
    t = target_hours(led, ["std"]).set_index("Hour")
    assert math.isnan(t.loc[H[0], "TargetCost"]) and t.loc[H[1], "TargetCost"] == 1.0
    spilled = pd.DataFrame({"Hour": H[1:2], "Deployment": "ptu", "Target": "std", "Spilled": [8.0]})
    (share,) = spillover_cost(spilled, t.reset_index())["Share"]
    assert share == 1.0  # capped: the spilled requests cannot cost more than the hour did


def metric(rows: list[tuple[pd.Timestamp, str, str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["TimeStamp", "ModelDeploymentName", "StatusCode", "IsSpillover", "Value"])


def test_spill_frame_reads_either_side_of_the_mark() -> None:
    # as Azure documents it: the provisioned deployment answers 429, the target serves with IsSpillover true
    documented = metric(
        [
            (H[0], "ptu", "429", "False", 12.0),
            (H[0], "ptu", "200", "False", 300.0),
            (H[0], "std", "200", "True", 11.0),
            (H[0], "std", "429", "true", 1.0),  # the target failed it too: x-ms-spillover-error
            (H[0], "std", "200", "False", 40.0),
        ]
    )
    (row,) = provisioned.spill_frame(documented, PTU).itertuples()
    assert (row.Spilled, row.SpillFailed, row.PtuTurnedAway, row.Target) == (11.0, 1.0, 12.0, "std")
    # marked on the provisioned side instead (dimension values in another case): counted once
    other = metric([(H[0], "ptu", "429", "TRUE", 12.0), (H[0], "std", "200", "False", 52.0)])
    (row,) = provisioned.spill_frame(other, PTU).itertuples()
    assert (row.Spilled, row.PtuTurnedAway) == (12.0, 12.0)
    # marked on both: the larger count, not the sum
    both = metric([(H[0], "ptu", "429", "True", 12.0), (H[0], "std", "200", "True", 12.0)])
    assert provisioned.spill_frame(both, PTU)["Spilled"].tolist() == [12.0]
    assert provisioned.spill_frame(documented, PTU.assign(Spillover="")).empty  # no target, no spillover


def test_estimated_utilisation_by_hand() -> None:
    tokens = pd.DataFrame(
        {
            "TimeGenerated": [H[0]],
            "Deployment": ["ptu"],
            "Model": ["gpt-4o"],
            "PromptTokens": [600_000],
            "CachedTokens": [150_000],
            "CompletionTokens": [50_000],
        }
    )
    (pct,) = provisioned.estimated_utilisation(tokens, PTU)["EstimatedPct"]
    # (600K - 150K + 4 x 50K) / (37,500 x 60) = 650K / 2.25M
    assert pct == pytest.approx(100 * 650_000 / 2_250_000)


def test_the_demo_spills_the_ptus_turned_away_calls(demo_settings: Settings, demo_end: datetime) -> None:
    lens = Lens.from_settings(demo_settings)
    deps = lens.deployments().frame
    ptu = provisioned.provisioned(deps)
    assert ptu.set_index("Deployment").loc["support-gpt4o-ptu", "Spillover"] == "chat-gpt4o"  # ARM's property
    start = demo_end - timedelta(days=2)
    req = provisioned.spill_metrics(lens, ["support-gpt4o-ptu", "chat-gpt4o"], start, demo_end)
    spill = provisioned.spill_frame(req.frame, ptu)
    # every call the PTU turned away (429 or 5xx) was sent on; the planted PTU burst is the largest part
    assert spill["Spilled"].sum() + spill["SpillFailed"].sum() == pytest.approx(spill["PtuTurnedAway"].sum(), abs=3)
    assert spill["Spilled"].max() >= 50
    # the logs carry no mark: the spilled calls are ordinary 200s of chat-gpt4o, priced at its standard rate
    with duckdb.connect(str(demo_settings.demo_path), read_only=True) as con:
        (body,) = con.execute("SELECT Body FROM MgmtDeployments WHERE Body LIKE '%support-gpt4o-ptu%'").fetchone()  # type: ignore[misc]
        assert json.loads(body)["properties"]["spilloverDeploymentName"] == "chat-gpt4o"
        assert con.execute("SELECT count(*) FROM AzureDiagnostics WHERE properties_s LIKE '%pillover%'").fetchone() == (
            0,
        )
    assert world.deployment("support-gpt4o-ptu").spillover == "chat-gpt4o"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 1e4), st.floats(0, 1e3), st.booleans()), min_size=1, max_size=12
    ),
    st.lists(st.floats(0, 1e4), min_size=3, max_size=3),
)
def test_spillover_is_a_part_of_its_deployments_cost(rows: list, spilled: list[float]) -> None:
    """Whatever the ledger and the counts, the spilled share never exceeds the spillover deployment's own
    priced cost: it is a part of that cost, never money added."""
    led = ledger([(H[h], "std", req, cost, priced) for h, req, cost, priced in rows])
    out = spillover_cost(
        pd.DataFrame({"Hour": H, "Deployment": "ptu", "Target": "std", "Spilled": spilled}), target_hours(led, ["std"])
    )
    priced_hours = led.groupby("Hour").filter(lambda g: bool(g["Priced"].all()))
    assert out["SpilloverCost"].sum() <= priced_hours["EffectiveCost"].sum() + 1e-6
    assert ((out["Share"].dropna() >= 0) & (out["Share"].dropna() <= 1)).all()


def test_a_workspace_seeded_before_isspillover_answers_it_empty(
    demo_settings: Settings, demo_end: datetime, tmp_path: Path
) -> None:
    """An older demo workspace has no IsSpillover column: the dimension comes back empty (as Azure answers a
    dimension no series sets) and the panel shows no spilled requests instead of failing."""
    old = tmp_path / "old.duckdb"
    shutil.copy(demo_settings.demo_path, old)
    with duckdb.connect(str(old)) as con:
        con.execute("ALTER TABLE MetricsApi DROP COLUMN IsSpillover")
    lens = Lens.from_settings(
        demo_settings.model_copy(update={"demo": demo_settings.demo.model_copy(update={"path": old})})
    )
    r = provisioned.spill_metrics(lens, ["support-gpt4o-ptu", "chat-gpt4o"], demo_end - timedelta(days=2), demo_end)
    assert r.status == "ok" and r.frame["IsSpillover"].isna().all()
    spill = provisioned.spill_frame(r.frame, provisioned.provisioned(lens.deployments().frame))
    assert spill["Spilled"].sum() == 0 and spill["PtuTurnedAway"].sum() > 0
