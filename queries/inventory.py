"""The estate inventory: every Azure OpenAI and AI Services account across the configured
subscriptions, its deployments (with the model's retirement date), its diagnostic settings, and the
flags a platform owner acts on.

Pure functions over the management plane's JSON bodies, so the Azure source (Resource Graph, ARM,
diagnostic settings) and the demo's embedded one answer through the same code:

    inv = collect(source, now=now, destinations=[...], retirement_days=90)
    inv.accounts, inv.deployments, inv.diagnostics, inv.flags      # frames
    inv.status, inv.notice, inv.problems                           # what could not be read, per account

A flag names the account (and deployment), says what is wrong in words, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

# The two categories aoai-lens needs from every account: RequestResponse (calls, callers, latency,
# status) and AzureOpenAIRequestUsage (tokens per call). The `allLogs` category group includes both.
NEEDED_CATEGORIES = ("RequestResponse", "AzureOpenAIRequestUsage")
ALL_LOGS = "alllogs"
KINDS = ("OpenAI", "AIServices")

ACCOUNT_COLUMNS = [
    "Account",
    "Kind",
    "Location",
    "Sku",
    "PublicNetworkAccess",
    "NetworkDefaultAction",
    "PrivateEndpoints",
    "KeyAuth",
    "Subscription",
    "ResourceGroup",
    "ResourceId",
]
DEPLOYMENT_COLUMNS = [
    "Account",
    "Deployment",
    "Type",
    "Capacity",
    "Model",
    "Version",
    "Spillover",
    "RetirementDate",
    "DaysToRetirement",
    "ResourceId",
]
DIAGNOSTIC_COLUMNS = ["Account", "Setting", "Categories", "Workspace", "Storage", "EventHub", "ResourceId"]
FLAG_COLUMNS = ["Account", "Deployment", "Flag", "Detail", "Action", "ResourceId"]

# flag name -> what it means (the docs and the page's legend read this)
FLAGS = {
    "diagnostics_incomplete": "the account does not send both RequestResponse and AzureOpenAIRequestUsage "
    "to a configured workspace or storage account",
    "public_network_access": "the account accepts calls from the public internet",
    "key_auth_enabled": "local (API key) authentication is on",
    "model_retiring": "a deployment's model version retires within the threshold (or already has)",
}


class EstateSource(Protocol):
    """What the inventory reads; the Azure source and the embedded demo source both answer it."""

    name: str

    def accounts(self) -> list[dict[str, Any]]:
        """Resource Graph rows of every Microsoft.CognitiveServices/accounts of kind OpenAI or AIServices."""
        ...

    def deployments(self, account_id: str) -> list[dict[str, Any]]:
        """ARM deployment bodies of one account."""
        ...

    def diagnostic_settings(self, account_id: str) -> list[dict[str, Any]]:
        """Diagnostic settings of one account, in the REST shape (properties.logs, workspaceId, ...)."""
        ...

    def models(self, subscription: str, location: str) -> list[dict[str, Any]]:
        """The region's models list (each entry: kind, model{name, version, deprecation, skus})."""
        ...


@dataclass(frozen=True)
class Inventory:
    accounts: pd.DataFrame
    deployments: pd.DataFrame
    diagnostics: pd.DataFrame
    flags: pd.DataFrame
    taken_at: datetime
    source: str = ""
    status: str = "ok"  # ok, partial (some account could not be read), failed (no account list)
    notice: str | None = None
    problems: list[str] = field(default_factory=list)


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _parts(resource_id: str) -> tuple[str, str]:
    """(subscription, resource group) of an ARM id."""
    segs = resource_id.strip("/").split("/")
    low = [s.lower() for s in segs]
    sub = (
        segs[low.index("subscriptions") + 1]
        if "subscriptions" in low and low.index("subscriptions") + 1 < len(segs)
        else ""
    )
    rg = (
        segs[low.index("resourcegroups") + 1]
        if "resourcegroups" in low and low.index("resourcegroups") + 1 < len(segs)
        else ""
    )
    return sub, rg


def _date(text: object) -> pd.Timestamp:
    if not text:
        return pd.NaT
    return pd.to_datetime(str(text), utc=True, errors="coerce")


def accounts_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Resource Graph rows -> one row per account."""
    out = []
    for r in rows:
        props = r.get("properties") or {}
        rid = str(r.get("id") or "")
        sub, rg = _parts(rid)
        pes = props.get("privateEndpointConnections") or []
        out.append(
            {
                "Account": str(r.get("name") or _name(rid)),
                "Kind": str(r.get("kind") or ""),
                "Location": str(r.get("location") or "").replace(" ", "").lower(),
                "Sku": str((r.get("sku") or {}).get("name") or ""),
                # absent means the service default, which is Enabled
                "PublicNetworkAccess": str(props.get("publicNetworkAccess") or "Enabled"),
                "NetworkDefaultAction": str((props.get("networkAcls") or {}).get("defaultAction") or "Allow"),
                "PrivateEndpoints": len(pes) if isinstance(pes, list) else 0,
                "KeyAuth": props.get("disableLocalAuth") is not True,
                "Subscription": str(r.get("subscriptionId") or sub),
                "ResourceGroup": str(r.get("resourceGroup") or rg),
                "ResourceId": rid,
            }
        )
    frame = pd.DataFrame(out, columns=ACCOUNT_COLUMNS)
    return frame.sort_values(["Kind", "Account"], kind="stable").reset_index(drop=True)


def retirement(models: Sequence[dict[str, Any]], kind: str, name: str, version: str, sku: str) -> pd.Timestamp:
    """The earliest of the model version's inference deprecation and its deployment type's deprecation
    date, from the region's models list (the entry of the account's kind first, any kind otherwise)."""
    matches = [
        m
        for m in models
        if str((m.get("model") or {}).get("name", "")).lower() == name.lower()
        and str((m.get("model") or {}).get("version", "")).lower() == version.lower()
    ]
    same_kind = [m for m in matches if str(m.get("kind", "")).lower() == kind.lower()]
    dates: list[pd.Timestamp] = []
    for m in same_kind or matches:
        model = m.get("model") or {}
        dates.append(_date((model.get("deprecation") or {}).get("inference")))
        for s in model.get("skus") or []:
            if str(s.get("name", "")).lower() == sku.lower():
                dates.append(_date(s.get("deprecationDate")))
    dates = [d for d in dates if pd.notna(d)]
    return min(dates) if dates else pd.NaT


def deployments_rows(
    account: dict[str, Any], bodies: Iterable[dict[str, Any]], models: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    rows = []
    for d in bodies:
        props = d.get("properties") or {}
        model = props.get("model") or {}
        sku = d.get("sku") or {}
        retires = retirement(
            models, account["Kind"], str(model.get("name", "")), str(model.get("version", "")), str(sku.get("name", ""))
        )
        days = (retires - pd.Timestamp(now)).total_seconds() / 86400 if pd.notna(retires) else float("nan")
        rows.append(
            {
                "Account": account["Account"],
                "Deployment": str(d.get("name", "")),
                "Type": str(sku.get("name", "")),
                "Capacity": int(sku.get("capacity") or 0),
                "Model": str(model.get("name", "")),
                "Version": str(model.get("version", "")),
                "Spillover": str(props.get("spilloverDeploymentName") or ""),
                "RetirementDate": retires,
                "DaysToRetirement": round(days, 1) if days == days else float("nan"),
                "ResourceId": account["ResourceId"],
            }
        )
    return rows


def _enabled_categories(setting: dict[str, Any]) -> list[str]:
    out = []
    for log in (setting.get("properties") or {}).get("logs") or []:
        if log.get("enabled"):
            out.append(str(log.get("category") or log.get("categoryGroup") or ""))
    return [c for c in out if c]


def diagnostics_rows(account: dict[str, Any], settings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for s in settings:
        props = s.get("properties") or {}
        rows.append(
            {
                "Account": account["Account"],
                "Setting": str(s.get("name", "")),
                "Categories": ", ".join(_enabled_categories(s)),
                "Workspace": _name(str(props.get("workspaceId") or "")) if props.get("workspaceId") else "",
                "Storage": _name(str(props.get("storageAccountId") or "")) if props.get("storageAccountId") else "",
                "EventHub": str(
                    props.get("eventHubName") or ("yes" if props.get("eventHubAuthorizationRuleId") else "")
                ),
                "ResourceId": account["ResourceId"],
            }
        )
    return rows


def exported_categories(settings: Iterable[dict[str, Any]], destinations: Sequence[str]) -> set[str]:
    """The needed categories that reach a configured destination: a workspace or storage account listed
    in `destinations` (any workspace or storage account when the list is empty). Event Hubs do not count:
    aoai-lens cannot read them."""
    wanted = {d.lower().rstrip("/") for d in destinations}
    got: set[str] = set()
    for s in settings:
        props = s.get("properties") or {}
        targets = [str(props.get(k) or "").lower().rstrip("/") for k in ("workspaceId", "storageAccountId")]
        targets = [t for t in targets if t]
        if not targets or (wanted and not wanted.intersection(targets)):
            continue
        for c in _enabled_categories(s):
            if c.lower() == ALL_LOGS:
                got.update(NEEDED_CATEGORIES)
            elif c in NEEDED_CATEGORIES:
                got.add(c)
    return got


def flags(
    accounts: pd.DataFrame,
    deployments: pd.DataFrame,
    settings_by_account: dict[str, list[dict[str, Any]]],
    *,
    destinations: Sequence[str] = (),
    retirement_days: float = 90,
) -> pd.DataFrame:
    """One row per finding: Account, Deployment ("" for the account), Flag, Detail, Action."""
    out: list[dict[str, Any]] = []
    where = "a configured destination" if destinations else "a Log Analytics workspace or storage account"
    for _, a in accounts.iterrows():
        rid = str(a["ResourceId"])
        settings = settings_by_account.get(rid.lower())
        if settings is not None:
            missing = [c for c in NEEDED_CATEGORIES if c not in exported_categories(settings, destinations)]
            if missing:
                detail = (
                    f"no diagnostic setting sends {' or '.join(missing)} to {where}"
                    if settings
                    else "has no diagnostic setting: no request or usage logs are kept"
                )
                out.append(
                    _flag(
                        a,
                        "diagnostics_incomplete",
                        detail,
                        f"Add {', '.join(missing)} (or the allLogs category group) to a diagnostic setting that sends "
                        f"to {where}; without them this account's calls, tokens and cost are missing here.",
                    )
                )
        if str(a["PublicNetworkAccess"]).lower() != "disabled":
            restricted = str(a["NetworkDefaultAction"]).lower() == "deny"
            out.append(
                _flag(
                    a,
                    "public_network_access",
                    "public network access is Enabled"
                    + (" (limited to allowed networks and IPs)" if restricted else ", from any network")
                    + f"; {int(a['PrivateEndpoints'])} private endpoint(s)",
                    "Set public network access to Disabled and call it through a private endpoint, "
                    "or at least limit it to selected networks.",
                )
            )
        if bool(a["KeyAuth"]):
            out.append(
                _flag(
                    a,
                    "key_auth_enabled",
                    "local (API key) authentication is on: a caller with a key leaves no identity in the logs",
                    "Move callers to Microsoft Entra ID (managed identities), then set disableLocalAuth to true.",
                )
            )
    for _, d in deployments.iterrows():
        days = d["DaysToRetirement"]
        if pd.isna(days) or float(days) > retirement_days:
            continue
        when = pd.Timestamp(d["RetirementDate"]).strftime("%Y-%m-%d")
        state = f"retired on {when}" if float(days) <= 0 else f"retires on {when} (in {float(days):.0f} days)"
        out.append(
            {
                "Account": d["Account"],
                "Deployment": d["Deployment"],
                "Flag": "model_retiring",
                "Detail": f"{d['Model']} {d['Version']} {state}",
                "Action": "Deploy a newer model version and move this deployment's traffic before then "
                "(or let the version upgrade option move it automatically).",
                "ResourceId": d["ResourceId"],
            }
        )
    frame = pd.DataFrame(out, columns=FLAG_COLUMNS)
    order = {k: i for i, k in enumerate(FLAGS)}
    frame["_o"] = frame["Flag"].map(order)
    return frame.sort_values(["_o", "Account", "Deployment"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _flag(a: pd.Series, flag: str, detail: str, action: str) -> dict[str, Any]:
    return {
        "Account": a["Account"],
        "Deployment": "",
        "Flag": flag,
        "Detail": detail,
        "Action": action,
        "ResourceId": a["ResourceId"],
    }


def _describe(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return f"{type(e).__name__}: {text[:300]}"


def collect(
    source: EstateSource,
    *,
    now: datetime,
    destinations: Sequence[str] = (),
    retirement_days: float = 90,
) -> Inventory:
    """Read the estate through `source` and judge it. An account whose deployments or diagnostic
    settings cannot be read is kept (with what could be read), counted and named in `problems`."""
    try:
        rows = [r for r in source.accounts() if str(r.get("kind", "")).lower() in {k.lower() for k in KINDS}]
    except Exception as e:
        return Inventory(
            accounts=pd.DataFrame(columns=ACCOUNT_COLUMNS),
            deployments=pd.DataFrame(columns=DEPLOYMENT_COLUMNS),
            diagnostics=pd.DataFrame(columns=DIAGNOSTIC_COLUMNS),
            flags=pd.DataFrame(columns=FLAG_COLUMNS),
            taken_at=now,
            source=source.name,
            status="failed",
            notice=f"account list: {_describe(e)}",
        )
    accounts = accounts_frame(rows)
    problems: list[str] = []
    models: dict[tuple[str, str], list[dict[str, Any]]] = {}
    dep_rows: list[dict[str, Any]] = []
    diag_rows: list[dict[str, Any]] = []
    settings_by_account: dict[str, list[dict[str, Any]]] = {}
    for _, a in accounts.iterrows():
        acc = a.to_dict()
        rid = str(acc["ResourceId"])
        key = (str(acc["Subscription"]).lower(), str(acc["Location"]))
        if key not in models:
            try:
                models[key] = source.models(str(acc["Subscription"]), str(acc["Location"]))
            except Exception as e:
                models[key] = []
                problems.append(f"models list of {acc['Location']}: {_describe(e)} (retirement dates unknown there)")
        try:
            dep_rows.extend(deployments_rows(acc, source.deployments(rid), models[key], now))
        except Exception as e:
            problems.append(f"{acc['Account']} deployments: {_describe(e)}")
        try:
            settings = source.diagnostic_settings(rid)
            settings_by_account[rid.lower()] = settings
            diag_rows.extend(diagnostics_rows(acc, settings))
        except Exception as e:
            problems.append(f"{acc['Account']} diagnostic settings: {_describe(e)}")
    deployments = pd.DataFrame(dep_rows, columns=DEPLOYMENT_COLUMNS)
    deployments["RetirementDate"] = pd.to_datetime(deployments["RetirementDate"], utc=True)
    deployments["DaysToRetirement"] = pd.to_numeric(deployments["DaysToRetirement"]).astype("float64")
    deployments = deployments.sort_values(["Account", "Deployment"], kind="stable").reset_index(drop=True)
    diagnostics = pd.DataFrame(diag_rows, columns=DIAGNOSTIC_COLUMNS)
    found = flags(
        accounts, deployments, settings_by_account, destinations=destinations, retirement_days=retirement_days
    )
    return Inventory(
        accounts,
        deployments,
        diagnostics,
        found,
        taken_at=now,
        source=source.name,
        status="partial" if problems else "ok",
        notice=f"{len(problems)} part(s) could not be read: " + "; ".join(problems) if problems else None,
        problems=problems,
    )


def flat(result: Inventory) -> pd.DataFrame:
    """One row per account and deployment (an account without deployments once), with the account's
    posture and a `Flags` column naming every flag of the account or the deployment: the CSV a person
    opens in a spreadsheet."""
    acc = result.accounts.drop(columns=["Subscription", "ResourceGroup"])
    deps = result.deployments.drop(columns=["Account"])
    rows = acc.merge(deps, on="ResourceId", how="left").fillna({"Deployment": ""})
    per_account = result.flags[result.flags["Deployment"] == ""].groupby("ResourceId")["Flag"].agg(list)
    per_dep = result.flags[result.flags["Deployment"] != ""].groupby(["ResourceId", "Deployment"])["Flag"].agg(list)
    rows["Flags"] = [
        " ".join(per_account.get(rid, []) + per_dep.get((rid, dep), []))
        for rid, dep in zip(rows["ResourceId"], rows["Deployment"], strict=True)
    ]
    cols = [c for c in rows.columns if c != "ResourceId"] + ["ResourceId"]
    return rows[cols]
