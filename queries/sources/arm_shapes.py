"""ARM's JSON bodies (deployments, quota usages) as frames: what the management plane answers, shared
by the real ARM source and the embedded one, which stores the same bodies."""

from __future__ import annotations

import pandas as pd

from queries import limits

# The columns of every deployments frame (`ManagementSource.deployments()`); `Created` is ARM's
# systemData.createdAt: provisioned capacity costs from then on.
DEPLOYMENT_COLUMNS = [
    "Resource",
    "ResourceId",
    "Location",
    "Deployment",
    "Sku",
    "Capacity",
    "Model",
    "Version",
    "TpmLimit",
    "RpmLimit",
    "Created",
    "Spillover",
]


def deployments_frame(items: list[tuple[str, dict]], locations: dict[str, str] | None = None) -> pd.DataFrame:
    """ARM deployment bodies (per account resource id) -> one row per deployment."""
    rows = []
    for rid, body in items:
        for dep in body.get("value", [body]):
            sku = dep.get("sku") or {}
            model = (dep.get("properties") or {}).get("model") or {}
            name, sku_name = dep.get("name", ""), sku.get("name", "")
            capacity = int(sku.get("capacity") or 0)
            model_name = model.get("name", "")
            rate = {r.get("key"): r for r in (dep.get("properties") or {}).get("rateLimits") or []}
            tpm = (
                int(rate["token"]["count"])
                if "token" in rate and rate["token"].get("count")
                else limits.tpm_limit(sku_name, capacity, model_name)
            )
            rpm = limits.rpm_limit(sku_name, capacity, model_name)
            created = (dep.get("systemData") or {}).get("createdAt")
            # a provisioned deployment's standard spillover target ("" when none is set)
            spillover = str((dep.get("properties") or {}).get("spilloverDeploymentName") or "")
            rows.append(
                {
                    "Created": pd.to_datetime(created, utc=True, errors="coerce") if created else pd.NaT,
                    "Resource": rid.rsplit("/", 1)[-1],
                    "ResourceId": rid,
                    "Location": (locations or {}).get(rid.lower(), ""),
                    "Deployment": name,
                    "Sku": sku_name,
                    "Capacity": capacity,
                    "Model": model_name,
                    "Version": model.get("version", ""),
                    "TpmLimit": tpm,
                    "RpmLimit": rpm,
                    "Spillover": spillover,
                }
            )
    frame = pd.DataFrame(rows, columns=DEPLOYMENT_COLUMNS)
    frame["Created"] = pd.to_datetime(frame["Created"], utc=True)
    return frame


def usages_frame(items: list[tuple[str, dict]]) -> pd.DataFrame:
    """ARM usages bodies (per location) -> Location, Name, Sku, Model, Current, Limit."""
    rows = []
    for loc, body in items:
        for u in body.get("value", []):
            name = (u.get("name") or {}).get("value", "")
            parts = name.split(".", 2)
            rows.append(
                {
                    "Location": loc,
                    "Name": name,
                    "Sku": parts[1] if len(parts) == 3 else "",
                    "Model": parts[2] if len(parts) == 3 else "",
                    "Current": float(u.get("currentValue") or 0),
                    "Limit": float(u.get("limit") or 0),
                }
            )
    return pd.DataFrame(rows, columns=["Location", "Name", "Sku", "Model", "Current", "Limit"])
