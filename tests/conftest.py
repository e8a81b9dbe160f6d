"""Session fixtures shared by every layer's tests.

`demo_workspace` is a small demo workspace (7 days, about 3,000 requests a day, seed 7) built once per
test session and ending at the current minute, so queries with `ago()` find data. `demo_settings` are
settings pointing at it, with every file the program writes kept in a temporary data directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

# Hermetic: the settings of whoever runs the tests (AOAI_LENS_DATA_DIR, AOAI_LENS_CONFIG, a password...)
# change no result. Removed before anything reads them; tests set what they need themselves.
for _name in [n for n in os.environ if n.startswith("AOAI_LENS_")]:
    del os.environ[_name]

from fakes.doubles import FakeClock, Receiver, empty_workspace  # noqa: E402

from queries.config import Settings, load_settings  # noqa: E402
from queries.demo.seed import seed  # noqa: E402

DEMO_DAYS = 7
DEMO_RPD = 3000
DEMO_SEED = 7


@pytest.fixture(scope="session")
def demo_end() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory, demo_end: datetime) -> Path:
    path = tmp_path_factory.mktemp("workspace") / "demo.duckdb"
    seed(path, days=DEMO_DAYS, requests_per_day=DEMO_RPD, seed=DEMO_SEED, end=demo_end)
    return path


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory, demo_workspace: Path) -> Settings:
    data_dir = tmp_path_factory.mktemp("data")
    return load_settings(
        environ={
            "AOAI_LENS_DATA_DIR": str(data_dir),
            "AOAI_LENS_DEMO__PATH": str(demo_workspace),
        }
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No AOAI_LENS_* variables and an empty working directory (so no aoai-lens.toml is found)."""
    import os

    for k in list(os.environ):
        if k.startswith("AOAI_LENS_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local webhook receiver the notification channels deliver to."""
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty demo workspace (the tables, no rows)."""
    return empty_workspace(tmp_path / "ws.duckdb")
