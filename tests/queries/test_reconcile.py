"""Reconciliation with the bill: meter names read as the bill spells them, statuses computed by hand, the
demo's two planted faults found and nothing else outside pending days, and the real Cost Management
client against a local Query API (paging, throttling headers, 403 naming the role)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from azure.mgmt.costmanagement import CostManagementClient
from fakes import FakeCredential
from fakes.costmanagement_server import CostManagementServer

from queries import billing
from queries import lens as api
from queries.cache import MemoryCache
from queries.config import Settings
from queries.cost import bill
from queries.cost.report import allocate
from queries.demo import bill as demo_bill
from queries.lens import Lens


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("gpt 4o 0806 cached Inp glbl Tokens", ("gpt-4o", "cached_input")),
        ("gpt-4o-mini-0718-Inp-glbl Tokens", ("gpt-4o-mini", "input")),
        ("gpt 4o 1120 Outp Data Zone Tokens", ("gpt-4o", "output")),
        ("gpt 4o mini 0718 cached Inp Data Zone Tokens", ("gpt-4o-mini", "cached_input")),
        ("GPT 5 Inpt Glbl", ("gpt-5", "input")),
        ("gpt 4.1 Inp glbl Tokens", ("gpt-4.1", "input")),
        ("text-embedding-3-small-glbl Tokens", ("text-embedding-3-small", "embeddings")),
        ("Provisioned Managed Global Unit", ("", "ptu_hour")),
        ("Standard Data Stored", ("", "")),
    ],
)
def test_meter_names_read_as_the_bill_spells_them(name: str, want: tuple[str, str]) -> None:
    assert bill.parse_meter(name) == want


def test_statuses_by_hand() -> None:
    day = pd.Timestamp("2026-11-10", tz="UTC")
    late = pd.Timestamp("2026-11-29", tz="UTC")
    est = pd.DataFrame(
        [
            [day, "/a", "gpt-4o-2024-11-20", "input", 10.0, 0.0],  # billed 10.004: match
            [day, "/a", "gpt-4o", "output", 10.0, 0.0],  # billed 11: drift (+10%)
            [day, "/a", "gpt-4o-mini", "input", 0.004, 0.0],  # billed 0: under a cent, match
            [day, "/a", "gpt-5", "input", 0.0, 1000.0],  # unpriced
            [late, "/a", "gpt-4o", "input", 5.0, 0.0],  # within the lag: pending
            [day, "/a", "o3", "output", 3.0, 0.0],  # never billed: drift
        ],
        columns=[*bill.KEY, "Estimate", "UnpricedQuantity"],
    )
    billed = pd.DataFrame(
        [
            [day, "/a", "gpt-4o", "input", 10.004],
            [day, "/a", "gpt-4o", "output", 11.0],
            [day, "/a", "gpt-4.1-mini", "input", 2.37],  # bill-only
            [late, "/a", "gpt-4o", "input", 1.0],
        ],
        columns=[*bill.KEY, "Billed"],
    )
    rec = bill.reconcile(est, billed, today=date(2026, 12, 1), lag_days=3, drift_pct=5, drift_min_usd=0.01)
    got = {(r.Model, r.Meter, r.Day.day): r.Status for r in rec.itertuples()}
    assert got == {
        ("gpt-4o", "input", 10): "match",
        ("gpt-4o", "output", 10): "drift",
        ("gpt-4o-mini", "input", 10): "match",
        ("gpt-5", "input", 10): "unpriced",
        ("gpt-4o", "input", 29): "pending",
        ("o3", "output", 10): "drift",
        ("gpt-4.1-mini", "input", 10): "bill-only",
    }
    row = rec[(rec["Model"] == "gpt-4o") & (rec["Meter"] == "output")].iloc[0]
    assert row["Difference"] == pytest.approx(1.0) and row["DifferencePct"] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def lens(demo_settings: Settings, demo_end: datetime) -> Iterator[Lens]:
    lens = Lens.from_settings(demo_settings)
    lens.now = lambda: demo_end
    yield lens


@pytest.fixture(scope="module")
def window(demo_end: datetime) -> tuple[datetime, datetime]:
    # the demo's last 7 days, whole days: the month boundary does not matter to reconciliation
    end = demo_end.replace(hour=0, minute=0) + timedelta(days=1)
    return end - timedelta(days=7), demo_end


def test_demo_reconciliation_flags_exactly_the_two_planted_faults(
    lens: Lens, demo_settings: Settings, demo_end: datetime, window: tuple[datetime, datetime]
) -> None:
    rec = billing.reconciliation(demo_settings, lens, *window)
    pending_from = pd.Timestamp(demo_end.date(), tz="UTC") - pd.Timedelta(days=demo_settings.billing.lag_days)
    settled = rec[rec["Day"] < pending_from]
    assert (rec.loc[rec["Day"] >= pending_from, "Status"].isin(["pending", "bill-only"])).all()
    flagged = bill.flagged(settled)
    fault_day = pd.Timestamp(demo_end.date() - timedelta(days=demo_bill.FAULT_DAYS_AGO), tz="UTC")
    got = {(r.Day, r.ResourceId.rsplit("/", 1)[-1], r.Model, r.Meter, r.Status) for r in flagged.itertuples()}
    assert got == {
        (fault_day, "contoso-oai-eastus", "gpt-4o", "cached_input", "drift"),
        (fault_day, "contoso-oai-eastus", "gpt-4.1-mini", "input", "bill-only"),
    }
    assert set(settled["Status"]) - {"drift", "bill-only"} == {"match"}
    drift = flagged[flagged["Status"] == "drift"].iloc[0]
    # cached input at the full input price: gpt-4o's cached rate is half its input rate, so twice the estimate
    assert drift["Billed"] == pytest.approx(2 * drift["Estimate"], abs=0.006)
    phantom = flagged[flagged["Status"] == "bill-only"].iloc[0]
    assert phantom["Billed"] == demo_bill.PHANTOM_COST and pd.isna(phantom["Estimate"])


def test_real_client_pages_waits_as_told_and_names_the_role(
    lens: Lens, demo_settings: Settings, demo_end: datetime, window: tuple[datetime, datetime]
) -> None:
    result = allocate(lens, demo_settings, *window)
    deployments = lens.deployments().frame
    the_bill = demo_bill.demo_bill(result.ledger, deployments, demo_end.date())
    with CostManagementServer(the_bill, page_size=25) as server:
        client = CostManagementClient(FakeCredential(), base_url=server.url, retry_total=0, enforce_https=False)
        waits: list[float] = []
        scope = "/subscriptions/3d9b6f1e-2c47-4a8b-b5e0-9f1a7c6d4e28"
        source = bill.CostManagementBill(client, scope, sleep=waits.append, request_kwargs={"enforce_https": False})
        server.throttle(qpu_retry_after=7)
        got = source.daily(*window)
        assert waits == [7.0]  # the longest of Cost Management's retry-after headers, never slept for real
        posts = [r for r in server.requests if r.method == "POST"]
        assert len(posts) == 2 + (len(the_bill) - 1) // 25  # the throttled call, then every page
        assert posts[-1].query["$skiptoken"] == str(25 * ((len(the_bill) - 1) // 25))
        body = posts[0].body
        assert body["type"] == "ActualCost" and body["dataset"]["granularity"] == "Daily"
        assert [g["name"] for g in body["dataset"]["grouping"]] == ["ResourceId", "Meter"]
        assert len(got) == len(the_bill)
        assert round(got["Cost"].sum(), 2) == round(the_bill["Cost"].sum(), 2)
        # the same reconciliation with the bill read through the real client as the Lens's bill
        through = dataclasses.replace(lens, management=BillFrom(lens.management, source))
        through.cache = MemoryCache()
        rec = billing.reconciliation(demo_settings, through, *window)
        direct = billing.reconciliation(demo_settings, lens, *window)
        pd.testing.assert_frame_equal(rec, direct)

        server.forbid()
        with pytest.raises(bill.BillError, match="Cost Management Reader") as e:
            source.daily(*window)
        assert "403" in str(e.value)


class BillFrom:
    """A management source whose deployments are the demo's and whose bill is read by `client`."""

    name = "costmanagement"

    def __init__(self, inner: object, client: bill.CostManagementBill) -> None:
        self.inner, self.client = inner, client

    def deployments(self) -> pd.DataFrame:
        return self.inner.deployments()  # type: ignore[attr-defined, no-any-return]

    def usages(self) -> pd.DataFrame:
        return self.inner.usages()  # type: ignore[attr-defined, no-any-return]

    def bill(self, start: datetime, end: datetime, cost_type: str = bill.ACTUAL) -> pd.DataFrame:
        return self.client.daily(start, end, cost_type)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, demo_settings: Settings, lens: Lens) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(demo_settings.data_dir))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_settings.demo_path))
    monkeypatch.setattr(api, "get_lens", lambda settings=None: lens)


def test_cli_reconcile_table_and_csv(cli_env: None, capsys: pytest.CaptureFixture[str], demo_end: datetime) -> None:
    from dashboard.cli import main

    month = f"{demo_end:%Y-%m}"
    assert main(["cost", "reconcile", "--month", month]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:4] == ["day", "account", "model", "meter"]
    assert "pending" in table
    assert main(["cost", "reconcile", "--month", month, "--format", "csv"]) == 0
    csv = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert list(csv.columns) == [
        "Day",
        "ResourceId",
        "Account",
        "Model",
        "Meter",
        "Estimate",
        "Billed",
        "Difference",
        "DifferencePct",
        "Status",
    ]
    assert set(csv["Status"]) <= set(bill.STATUSES)
    assert main(["cost", "reconcile", "--month", "1999-1"]) == 2


def test_the_azure_management_source_reads_the_bill_amortised_when_asked(
    tmp_path: object, demo_end: datetime, window: tuple[datetime, datetime]
) -> None:
    """The Azure configuration's management source reads Cost Management with the real SDK: the query type
    follows `cost_type`, the Lens reads a period once an hour, and a 401 names the role."""
    from fakes.azure_env import azure_settings
    from fakes.credential import FakeCredential as Cred

    day = pd.Timestamp(window[0])
    rid = "/subscriptions/s/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/a"
    actual = pd.DataFrame(
        {"Day": [day], "ResourceId": [rid], "MeterName": ["Provisioned Managed Global Unit"], "Cost": [0.0]}
    )
    amortized = actual.assign(Cost=[24.5])  # a reservation's cost spread over its days
    with CostManagementServer(actual, amortized=amortized) as server:
        settings = azure_settings(tmp_path, server.url, server.url, server.url)  # type: ignore[arg-type]
        from queries.sources.azure import azure_sources

        cred = Cred()
        logs, metrics, mgmt = azure_sources(settings, credential=cred, sleep=lambda _s: None)
        lens = Lens(settings, logs, metrics, mgmt, now=lambda: demo_end)
        got_actual = lens.bill(*window)
        got_amortised = lens.bill(*window, "AmortizedCost")
        again = lens.bill(*window, "AmortizedCost")  # cached: no third query
        posts = [r for r in server.requests if r.method == "POST"]
        assert [p.body["type"] for p in posts] == ["ActualCost", "AmortizedCost"]
        assert posts[0].path.lower().startswith(f"/subscriptions/{settings.source.subscription_id}/providers/")
        assert list(got_actual["Cost"]) == [0.0] and list(got_amortised["Cost"]) == [24.5]
        pd.testing.assert_frame_equal(again, got_amortised)
        assert all(p.authorized for p in posts) and ("https://management.azure.com/.default",) in cred.scopes

        server.unauthorised()
        with pytest.raises(bill.BillError, match=r"401.*Cost Management Reader"):
            mgmt.bill(*window)
        with pytest.raises(bill.BillError, match="unknown cost type"):
            mgmt.bill(*window, "Usage2")


def test_cli_reconcile_amortised_on_the_demo(
    cli_env: None, capsys: pytest.CaptureFixture[str], demo_end: datetime
) -> None:
    """The demo has no reservations: its amortised bill is its actual bill, and the same two faults show."""
    from dashboard.cli import main

    month = f"{demo_end:%Y-%m}"
    assert main(["cost", "reconcile", "--month", month, "--cost-type", "amortized"]) == 0
    amortised = capsys.readouterr().out
    assert main(["cost", "reconcile", "--month", month]) == 0
    assert capsys.readouterr().out == amortised
    with pytest.raises(SystemExit):
        main(["cost", "reconcile", "--cost-type", "usage"])


def test_billing_drift_rule_on_the_demo_fires_for_the_two_planted_faults_only(
    demo_settings: Settings, demo_end: datetime, lens: Lens, tmp_path: object
) -> None:
    from fakes.doubles import FakeClock

    from alerts.data import LensData
    from alerts.evaluate import Evaluator
    from alerts.notify import Notifier
    from alerts.store import Store

    settings = demo_settings.model_copy(update={"data_dir": tmp_path})
    drift = [r for r in settings.alerts.rules if r.kind == "billing_drift"]
    assert len(drift) == 1  # the demo configuration ships one
    settings = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"rules": drift})})
    report = Evaluator(
        settings, Store(settings.state_path), LensData(lens), Notifier([]), clock=FakeClock(demo_end.timestamp())
    ).evaluate()
    assert not report.skipped, report.skipped
    found = report.findings[drift[0].name]
    assert len(found) > 10  # every settled account x meter is judged
    firing = {f.subject: f.value for f in found if f.firing}
    assert firing == {
        f"{demo_bill.PHANTOM_ACCOUNT}/gpt-4.1-mini/input": None,
        "contoso-oai-eastus/gpt-4o/cached_input": pytest.approx(100.0, abs=10.0),  # a few cents, rounded
    }
    assert {t.subject for t in report.transitions} == set(firing)
