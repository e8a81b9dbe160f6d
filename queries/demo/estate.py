"""The demo estate as the management plane would answer it: Resource Graph rows of every account,
each account's deployments and diagnostic settings, and the models list of each region.

Written by the seeder into the workspace file (tables `MgmtAccounts`, `MgmtEstateDeployments`,
`MgmtDiagnosticSettings`, `MgmtModels`, each a key and an ARM JSON body), read back by the embedded
inventory source and by the local ARM server the tests run the real SDK clients against. Dates are
relative to the demo's end, so the model retiring "soon" retires soon whenever the demo was seeded.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import duckdb

from queries.demo import world

TABLES = ("MgmtAccounts", "MgmtEstateDeployments", "MgmtDiagnosticSettings", "MgmtModels")
TENANT = "5e2d8c41-7a3b-4f90-b6d1-2c8e9f0a7b35"  # the demo organisation's Entra tenant


def account_row(a: world.Account) -> dict[str, Any]:
    """One Resource Graph `resources` row (objectArray format) for an account."""
    pes = [
        {
            "id": f"{a.arm_id}/privateEndpointConnections/pe-{a.name}-{i}",
            "properties": {
                "privateEndpoint": {
                    "id": f"/subscriptions/{world.SUBSCRIPTION_ID}/resourceGroups/rg-contoso-network"
                    f"/providers/Microsoft.Network/privateEndpoints/pe-{a.name}-{i}"
                },
                "privateLinkServiceConnectionState": {"status": "Approved"},
            },
        }
        for i in range(a.private_endpoints)
    ]
    return {
        "id": a.arm_id,
        "name": a.name,
        "type": "microsoft.cognitiveservices/accounts",
        "kind": a.kind,
        "location": a.location,
        "resourceGroup": world.RESOURCE_GROUP,
        "subscriptionId": world.SUBSCRIPTION_ID,
        "tenantId": TENANT,
        "sku": {"name": "S0"},
        "tags": {"owner": "platform-team"},
        "properties": {
            "provisioningState": "Succeeded",
            "endpoint": f"https://{a.name}.openai.azure.com/",
            "customSubDomainName": a.name,
            "publicNetworkAccess": a.public_network_access,
            "disableLocalAuth": not a.key_auth,
            "networkAcls": {"defaultAction": "Allow" if a.public_network_access == "Enabled" else "Deny"},
            "privateEndpointConnections": pes,
        },
    }


def _log(category: str) -> dict[str, Any]:
    group = category in ("allLogs", "audit")
    return {
        "category": None if group else category,
        "categoryGroup": category if group else None,
        "enabled": True,
        "retentionPolicy": {"enabled": False, "days": 0},
    }


def diagnostic_settings(a: world.Account) -> dict[str, Any]:
    """`GET {account}/providers/Microsoft.Insights/diagnosticSettings` for an account."""
    base = f"{a.arm_id}/providers/microsoft.insights/diagnosticSettings"
    value = [
        {
            "id": f"{base}/to-law-contoso-ai",
            "name": "to-law-contoso-ai",
            "type": "Microsoft.Insights/diagnosticSettings",
            "properties": {
                "workspaceId": world.LOG_WORKSPACE_ARM_ID,
                "logs": [_log(c) for c in a.diagnostic_logs],
                "metrics": [
                    {"category": "AllMetrics", "enabled": True, "retentionPolicy": {"enabled": False, "days": 0}}
                ],
            },
        }
    ]
    if a.archive_too:
        value.append(
            {
                "id": f"{base}/archive",
                "name": "archive",
                "type": "Microsoft.Insights/diagnosticSettings",
                "properties": {
                    "storageAccountId": world.ARCHIVE_STORAGE_ARM_ID,
                    "logs": [_log("RequestResponse")],
                    "metrics": [],
                },
            }
        )
    return {"value": value}


def deployment_body(d: world.Deployment) -> dict[str, Any]:
    a = next(x for x in world.ACCOUNTS if x.name == d.resource)
    return {
        "id": f"{a.arm_id}/deployments/{d.name}",
        "name": d.name,
        "type": "Microsoft.CognitiveServices/accounts/deployments",
        "sku": {"name": d.sku, "capacity": d.capacity},
        "properties": {
            "model": {"format": "OpenAI", "name": d.model, "version": d.version},
            "provisioningState": "Succeeded",
            "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
        },
    }


def models_list(location: str, end: datetime) -> dict[str, Any]:
    """`GET /subscriptions/{sub}/providers/Microsoft.CognitiveServices/locations/{loc}/models`: every
    (model, version) deployed in the region, for both account kinds, with its retirement dates."""
    here = {a.name for a in world.ACCOUNTS if a.location == location}
    pairs = sorted(
        {(d.model, d.version) for d in (*world.DEPLOYMENTS, *world.ESTATE_DEPLOYMENTS) if d.resource in here}
    )
    value = []
    for model, version in pairs:
        retires = end + timedelta(days=world.RETIRES_IN_DAYS.get((model, version), 730))
        for kind in ("OpenAI", "AIServices"):
            value.append(
                {
                    "kind": kind,
                    "skuName": "S0",
                    "model": {
                        "format": "OpenAI",
                        "name": model,
                        "version": version,
                        "lifecycleStatus": "GenerallyAvailable",
                        "isDefaultVersion": True,
                        "deprecation": {
                            "fineTune": None,
                            "inference": retires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        },
                        "skus": [
                            {
                                "name": sku,
                                "usageName": f"OpenAI.{sku}.{model}",
                                "deprecationDate": retires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                "capacity": {"default": 10, "minimum": 1, "maximum": 1000, "step": 1},
                            }
                            for sku in (
                                "GlobalStandard",
                                "DataZoneStandard",
                                "Standard",
                                "GlobalProvisionedManaged",
                                "GlobalBatch",
                            )
                        ],
                    },
                }
            )
    return {"value": value}


def write(con: duckdb.DuckDBPyConnection, end: datetime) -> None:
    """The estate tables, for the demo ending at `end` (naive UTC)."""
    for t in TABLES:
        key = "Location" if t == "MgmtModels" else "ResourceId"
        con.execute(f"CREATE TABLE {t} ({key} VARCHAR, Body VARCHAR)")
    for a in world.ACCOUNTS:
        con.execute("INSERT INTO MgmtAccounts VALUES (?, ?)", [a.arm_id, json.dumps(account_row(a))])
        con.execute("INSERT INTO MgmtDiagnosticSettings VALUES (?, ?)", [a.arm_id, json.dumps(diagnostic_settings(a))])
    for d in world.ESTATE_DEPLOYMENTS:
        a = next(x for x in world.ACCOUNTS if x.name == d.resource)
        con.execute("INSERT INTO MgmtEstateDeployments VALUES (?, ?)", [a.arm_id, json.dumps(deployment_body(d))])
    for loc in sorted({a.location for a in world.ACCOUNTS}):
        con.execute("INSERT INTO MgmtModels VALUES (?, ?)", [loc, json.dumps(models_list(loc, end))])
