"""The benchmark's machinery on the small session workspace: our path and the naive baseline give the
same page numbers, the comparison notices when they do not, and a run writes results and the README
table. No timing is asserted here: speed belongs to `make bench`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from bench import run
from bench.child import run_child

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def overview(demo_workspace: Path, demo_end: datetime, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    data_dir = str(tmp_path_factory.mktemp("bench-data"))
    args = {
        "path": str(demo_workspace),
        "data_dir": data_dir,
        "page": "overview",
        "rng": "7d",
        "now": demo_end.isoformat(),
    }
    ours = run_child("bench.pages:measure", {**args, "runs": 1})
    naive = run_child("bench.naive:page_capped", args)
    return ours, naive


def test_our_path_and_the_naive_baseline_agree_on_the_overview(overview: tuple[dict, dict]) -> None:
    ours, naive = overview
    agg = ours["answer"]["aggregates"]
    check = run.compare(agg, naive["answer"])
    assert check["equal"], check
    assert set(check["compared"]) >= {"status_classes", "tokens_by_deployment", "summary_by_deployment", "cost_total"}
    # the numbers are real, not two empty answers agreeing
    assert sum(agg["status_classes"].values()) > 1000
    assert agg["cost_total"] > 0 and agg["cost_mtd_total"] > 0
    # every deployment that answered has a latency (the retired one only ever answered 404)
    assert all("P95" in v for d, v in agg["summary_by_deployment"].items() if d != "chat-gpt35")
    assert naive["answer"]["rows_pulled"] > sum(agg["status_classes"].values())  # it pulled raw rows


def test_the_comparison_notices_a_difference(overview: tuple[dict, dict]) -> None:
    ours, naive = overview
    agg = json.loads(json.dumps(ours["answer"]["aggregates"]))
    dep = next(iter(agg["summary_by_deployment"]))
    agg["summary_by_deployment"][dep]["P95"] += 1.0
    check = run.compare(agg, naive["answer"])
    assert not check["equal"] and check["differ"] == ["summary_by_deployment"]


def test_a_page_view_counts_queries_rows_and_both_timings(overview: tuple[dict, dict]) -> None:
    ours, _ = overview
    a = ours["answer"]
    assert a["cold_s"] > 0 and len(a["warm_s"]) == 1  # a first view in a new process, then one warm
    assert 0 <= a["cold_figures_s"] <= a["cold_s"] and a["imports_s"] > 0
    assert a["queries_per_view"] >= 5  # four catalogue queries, the cost usage query, the deployments list
    assert a["rows_transferred_per_view"] == sum(a["answers"].values()) > 0
    assert ours["peak_rss_mb"] > 0


def test_a_small_run_writes_results_and_the_readme_table(tmp_path: Path, demo_workspace: Path) -> None:
    out, readme = tmp_path / "results.json", tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nkept text\n")
    code = run.main(
        [
            "--sizes", "2000", "--days", "2", "--runs", "1", "--naive-runs", "1", "--pages", "features,alerts",
            "--no-server", "--data-dir", str(tmp_path / "ws"), "--out", str(out), "--readme", str(readme),
        ]
    )  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    page = results["sizes"]["2000"]["pages"]["features"]
    assert page["baseline"]["same_numbers"]["equal"]
    assert "baseline" not in results["sizes"]["2000"]["pages"]["alerts"]  # the alerts store only: no baseline
    assert results["sizes"]["2000"]["workspace"]["seed_requests_per_s"] > 0
    ledger = results["sizes"]["2000"]["ledger"]
    assert ledger["hours"] > 24 and ledger["rows"] > 0 and ledger["catch_up_hours"] == 1
    assert results["sizes"]["2000"]["measured"]["commit"] and results["commit"]
    text = readme.read_text()
    assert "kept text" in text and "| 2,000 | features |" in text and "<!-- results:end -->" in text
