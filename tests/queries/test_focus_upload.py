"""The FOCUS export uploaded with the real azure-storage-blob client to Azurite, in the layout FinOps hubs
ingest: upload, list, download, the same rows; a re-export replaces the month; the connection string
comes from the environment and is never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient
from fakes.azurite import Azurite

from queries import lens as api
from queries.config import Settings
from queries.cost import focus_export, hub_upload
from queries.cost.report import allocate, month_period
from queries.lens import Lens


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="module")
def lens(demo_settings: Settings, demo_end: datetime) -> Iterator[Lens]:
    lens = Lens.from_settings(demo_settings)
    lens.now = lambda: demo_end
    yield lens


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, demo_settings: Settings, lens: Lens, azurite: Azurite) -> None:
    monkeypatch.setenv("AOAI_LENS_DATA_DIR", str(demo_settings.data_dir))
    monkeypatch.setenv("AOAI_LENS_DEMO__PATH", str(demo_settings.demo_path))
    monkeypatch.setenv("AOAI_LENS_BILLING__STORAGE_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setattr(api, "get_lens", lambda settings=None: lens)


def test_target_urls() -> None:
    t = hub_upload.parse_target("https://hubstore.blob.core.windows.net")
    assert (t.account_url, t.container, t.prefix) == ("https://hubstore.blob.core.windows.net", "ingestion", "Costs")
    assert t.folder("2026-11", "aoai-lens") == "Costs/2026/11/aoai-lens/"
    t = hub_upload.parse_target("https://hubstore.blob.core.windows.net/other/finops/costs")
    assert (t.container, t.prefix) == ("other", "finops/costs")
    t = hub_upload.parse_target("http://127.0.0.1:10000/devaccount/ingestion")
    assert (t.account_url, t.container, t.prefix) == ("http://127.0.0.1:10000/devaccount", "ingestion", "Costs")
    with pytest.raises(hub_upload.UploadError, match="SAS"):
        hub_upload.parse_target("https://hubstore.blob.core.windows.net/ingestion?sv=2024&sig=abc")


def test_upload_to_azurite_then_a_re_export_replaces_the_month(
    cli_env: None,
    azurite: Azurite,
    lens: Lens,
    demo_settings: Settings,
    demo_end: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dashboard.cli import main

    month = f"{demo_end:%Y-%m}" if demo_end.day > 4 else f"{demo_end.replace(day=1) - timedelta(days=1):%Y-%m}"
    folder = f"Costs/{month[:4]}/{month[5:]}/aoai-lens/"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("ingestion")

    to = f"{azurite.url}/ingestion"
    assert main(["cost", "export", "--month", month, "--format", "focus-parquet", "--to", to]) == 0
    out = capsys.readouterr()
    assert azurite.key not in out.out + out.err
    names = sorted(b.name for b in container.list_blobs(name_starts_with="Costs/"))
    data_blob = folder + f"aoai-lens-focus-{month}.parquet"
    assert names == [data_blob, folder + "manifest.json"]

    # the downloaded file has the rows the export computes from the ledger
    got = focus_export.read_export(container.download_blob(data_blob).readall(), "focus-parquet")
    start, end, month_end = month_period(month, demo_end)
    result = allocate(lens, demo_settings, start, end)
    want = focus_export.focus_frame(
        result.ledger,
        focus_export.context_from(
            demo_settings, lens.deployments().frame, start, month_end, lens.caller_names(result.ledger).names
        ),
    )
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert focus_export.conformance_problems(got) == []
    manifest = json.loads(container.download_blob(folder + "manifest.json").readall())
    assert manifest["blobs"] == [
        {"blobName": data_blob, "byteCount": len(focus_export.encode(want, "focus-parquet")), "rows": len(want)}
    ]

    # a stale file in the month's folder (an earlier CSV export, a renamed file) goes on re-export;
    # another month's folder is left alone
    container.upload_blob(folder + "stale-export.parquet", b"old", overwrite=True)
    other = "Costs/2001/01/aoai-lens/aoai-lens-focus-2001-01.parquet"
    container.upload_blob(other, b"keep", overwrite=True)
    assert main(["cost", "export", "--month", month, "--format", "focus-parquet", "--to", to]) == 0
    assert "replaced 1 earlier blob" in capsys.readouterr().out
    names = sorted(b.name for b in container.list_blobs(name_starts_with="Costs/"))
    assert names == [other, data_blob, folder + "manifest.json"]
    again = focus_export.read_export(container.download_blob(data_blob).readall(), "focus-parquet")
    pd.testing.assert_frame_equal(again, got)


def test_upload_with_a_wrong_key_fails_with_the_role_and_no_secret(
    cli_env: None,
    azurite: Azurite,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    demo_end: datetime,
) -> None:
    from dashboard.cli import main

    wrong = azurite.connection_string.replace(azurite.key, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
    monkeypatch.setenv("AOAI_LENS_BILLING__STORAGE_CONNECTION_STRING", wrong)
    assert main(["cost", "export", "--month", f"{demo_end:%Y-%m}", "--to", f"{azurite.url}/ingestion"]) == 1
    err = capsys.readouterr().err
    assert "Storage Blob Data Contributor" in err and "403" in err
    assert "d3Jvbmcta2V5" not in err and azurite.key not in err
