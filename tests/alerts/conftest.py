"""Fixtures for the alerts tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alerts_helpers import FakeClock, Receiver, empty_workspace


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return empty_workspace(tmp_path / "ws.duckdb")
