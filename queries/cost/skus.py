"""Azure OpenAI deployment SKUs and how the price list names them, and the MMDD version tag meter names
carry. A leaf: the price book, the override file and the PTU model read it."""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION_TAG = re.compile(r"(?<!\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)")


@dataclass(frozen=True)
class Sku:
    name: str  # Azure's spelling of the deployment sku.name
    scope: str  # global | data_zone | regional
    mode: str  # standard | batch | provisioned | developer
    label: str  # what the price list calls it


SKUS: dict[str, Sku] = {
    s.name.lower(): s
    for s in (
        Sku("GlobalStandard", "global", "standard", "Global"),
        Sku("DataZoneStandard", "data_zone", "standard", "Data Zone"),
        Sku("Standard", "regional", "standard", "Regional"),
        Sku("GlobalBatch", "global", "batch", "Batch Global"),
        Sku("DataZoneBatch", "data_zone", "batch", "Batch Data Zone"),
        Sku("GlobalProvisionedManaged", "global", "provisioned", "PTU Global"),
        Sku("DataZoneProvisionedManaged", "data_zone", "provisioned", "PTU Data Zone"),
        Sku("ProvisionedManaged", "regional", "provisioned", "PTU Regional"),
        Sku("DeveloperTier", "global", "developer", "Developer"),
    )
}
PAYG_EQUIVALENT = {
    "GlobalProvisionedManaged": "GlobalStandard",
    "DataZoneProvisionedManaged": "DataZoneStandard",
    "ProvisionedManaged": "Standard",
}
BATCH_SHARE = 0.5  # Global/Data Zone Batch cost half of standard (Microsoft's deployment-types page)


def version_tag(version: str | None) -> str | None:
    """The MMDD tag meter names carry for a model version: "2024-11-20" → "1120"; "1" → None."""
    v = (version or "").strip()
    m = re.fullmatch(r"\d{4}-(\d{2})-(\d{2})", v)
    if m:
        return m.group(1) + m.group(2)
    return v if VERSION_TAG.fullmatch(v) else None
