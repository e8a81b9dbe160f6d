"""Upload a month's FOCUS export to Azure Blob Storage where a FinOps hub ingests it.

FinOps hubs (microsoft/finops-toolkit) ingest FOCUS Parquet from their storage account's ``ingestion``
container: datasets that are not Cost Management exports go to ``Costs/<yyyy>/<mm>/<scope-path>/``,
one folder per scope, and a ``manifest.json`` written last in that folder triggers the ingestion into
Data Explorer / Fabric. aoai-lens writes::

    ingestion/Costs/2026/11/aoai-lens/aoai-lens-focus-2026-11.parquet
    ingestion/Costs/2026/11/aoai-lens/manifest.json

(`billing.hub_scope` names the scope folder; a `--to` URL may name another container and prefix.)

Idempotent per month: the new file is written first, then every other blob in the month's folder is
deleted, then the manifest; a re-export replaces the month and the folder is never empty in between.

Credentials: a connection string from the environment (`AOAI_LENS_BILLING__STORAGE_CONNECTION_STRING`
or its `*_FILE`; never from the configuration file), else `DefaultAzureCredential` (managed identity,
Azure CLI, ...) with the role Storage Blob Data Contributor on the container. Neither is ever logged.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

DEFAULT_CONTAINER = "ingestion"
DEFAULT_PREFIX = "Costs"


class UploadError(RuntimeError):
    """The upload could not be done; the message says why (never the credential)."""


@dataclass(frozen=True)
class Target:
    account_url: str  # https://ACCOUNT.blob.core.windows.net, or http://127.0.0.1:N/ACCOUNT (Azurite)
    container: str
    prefix: str

    def folder(self, month: str, scope: str) -> str:
        yyyy, mm = month.split("-")
        return "/".join(p for p in (self.prefix.strip("/"), yyyy, mm, scope.strip("/")) if p) + "/"


def is_blob_url(text: str) -> bool:
    return bool(re.match(r"^https?://", text or ""))


def parse_target(url: str) -> Target:
    """`https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX` (or Azurite's path-style
    `http://127.0.0.1:N/ACCOUNT/CONTAINER/PREFIX`) -> Target. The container defaults to ``ingestion``
    and the prefix to ``Costs``."""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.netloc:
        raise UploadError(f"{url!r} is not a blob URL (https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX)")
    if u.query:
        raise UploadError("the URL carries a query string (a SAS token?): give credentials through the environment")
    parts = [p for p in u.path.split("/") if p]
    host = u.hostname or ""
    path_style = host in ("127.0.0.1", "localhost", "::1") or re.fullmatch(r"[\d.]+", host) is not None
    base = f"{u.scheme}://{u.netloc}"
    if path_style:
        if not parts:
            raise UploadError(f"{url!r}: a path-style URL names the account first (http://HOST:PORT/ACCOUNT/CONTAINER)")
        base, parts = f"{base}/{parts[0]}", parts[1:]
    container = parts[0] if parts else DEFAULT_CONTAINER
    prefix = "/".join(parts[1:]) if len(parts) > 1 else DEFAULT_PREFIX
    return Target(base, container, prefix)


def service_client(target: Target, connection_string: str | None, credential: Any = None) -> Any:
    from azure.storage.blob import BlobServiceClient

    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string)
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    return BlobServiceClient(account_url=target.account_url, credential=credential)


@dataclass
class Uploaded:
    container: str
    blob: str
    manifest: str
    replaced: list[str]
    bytes: int

    def __str__(self) -> str:
        gone = f"; replaced {len(self.replaced)} earlier blob(s)" if self.replaced else ""
        return f"uploaded {self.bytes:,} bytes to {self.container}/{self.blob}{gone}"


def upload_month(
    data: bytes,
    file_name: str,
    month: str,
    target: Target,
    *,
    scope: str,
    rows: int,
    connection_string: str | None = None,
    credential: Any = None,
) -> Uploaded:
    """Write the month's export and its manifest, replacing whatever the month's folder held."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ResourceExistsError

    folder = target.folder(month, scope)
    blob_name = folder + file_name
    try:
        service = service_client(target, connection_string, credential)
        container = service.get_container_client(target.container)
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        container.upload_blob(blob_name, data, overwrite=True)
        replaced = [
            b.name
            for b in container.list_blobs(name_starts_with=folder)
            if b.name not in (blob_name, folder + "manifest.json")
        ]
        for name in replaced:
            container.delete_blob(name)
        manifest = {
            "dataset": "Costs",
            "focusVersion": "1.2",
            "producer": "aoai-lens",
            "billingPeriod": month,
            "blobs": [{"blobName": blob_name, "byteCount": len(data), "rows": rows}],
        }
        container.upload_blob(folder + "manifest.json", json.dumps(manifest, indent=1).encode(), overwrite=True)
    except ClientAuthenticationError as e:
        raise UploadError(
            f"not authorised on {target.account_url}/{target.container}: the identity needs Storage Blob Data "
            f"Contributor on the container ({type(e).__name__})"
        ) from None
    except HttpResponseError as e:
        code = getattr(e, "status_code", None)
        hint = " (the identity needs Storage Blob Data Contributor)" if code in (401, 403) else ""
        raise UploadError(f"{target.account_url}/{target.container} answered {code}: {e.reason}{hint}") from None
    except (AzureError, ValueError) as e:
        raise UploadError(f"{target.account_url}/{target.container}: {type(e).__name__}: {e}") from None
    return Uploaded(target.container, blob_name, folder + "manifest.json", replaced, len(data))
