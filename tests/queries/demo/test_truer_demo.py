"""A truer demo: besides the one incident, a background rate of 5xx in a 3-day demo, as the catalogue
queries see it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queries.config import load_settings
from queries.demo.seed import seed
from queries.lens import Lens

END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def lens(tmp_path_factory: pytest.TempPathFactory) -> Lens:
    d = tmp_path_factory.mktemp("three-days")
    path = d / "demo.duckdb"
    seed(path, days=3, requests_per_day=2000, seed=11, end=END.replace(tzinfo=None))
    settings = load_settings(environ={"AOAI_LENS_DATA_DIR": str(d / "data"), "AOAI_LENS_DEMO__PATH": str(path)})
    return Lens.from_settings(settings)


def test_a_three_day_demo_has_5xx_besides_the_incident(lens: Lens) -> None:
    frame = lens.run("summary_by_deployment", start=END - timedelta(days=3), end=END).frame.set_index("Deployment")
    assert frame["ServerErrors"].sum() > 0
    elsewhere = frame.drop(index="rag-gpt41")["ServerErrors"]  # rag-gpt41 has the incident
    assert elsewhere.sum() > 0, "5xx only on the incident's deployment: no background rate"
