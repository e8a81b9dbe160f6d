"""Who used the tokens: the three measurement methods and the attribution rules.

Pure functions over frames; `queries.cost.report.allocate` wires them to the query layer.

Methods, best first (each row says which made it, in `Method`):

- ``request``: per-request tokens. Every RequestResponse row joined to its AzureOpenAIRequestUsage row
  on CorrelationId (catalogue query `cost_usage_by_caller`), summed per hour and caller.
- ``bytes``: for a (deployment, hour) whose requests have no usage rows at all, the deployment's tokens
  from the metrics API (ProcessedPromptTokens, GeneratedTokens per ModelDeploymentName at PT1H) shared
  out by each caller's request + response bytes in that hour. Metrics do not split cached tokens, so
  these tokens are all priced as uncached input.
- ``deployment``: the whole deployment as one caller. Either the matched rule is a deployment-name
  pattern (no caller identity used), or the metrics show tokens for an hour with no request logs at all.

Attribution rules (settings ``[[attribution]]``) are tried in their order and the first match wins. A
rule matches when every matcher it sets matches: ``object_id`` (the caller's Entra object id),
``ip_range`` (a CIDR; Azure masks the caller IP's last octet as ``***``, read as 0) and
``deployment_pattern`` (a glob over the deployment name). Rows no rule claims are ``unallocated``; rows
from the probes' object id are ``probes`` and never charged back.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence

import numpy as np
import pandas as pd

from queries.config import AttributionRule

METHOD_REQUEST = "request"
METHOD_BYTES = "bytes"
METHOD_DEPLOYMENT = "deployment"

ALLOCATED, UNALLOCATED, PROBES, PTU_IDLE = "allocated", "unallocated", "probes", "ptu idle"

TIME_DTYPE = "datetime64[ns, UTC]"
TOKEN_COLUMNS = ["PromptTokens", "CachedTokens", "CompletionTokens"]
KEY = ["TimeGenerated", "Resource", "Deployment"]
ROW_COLUMNS = [
    "TimeGenerated",
    "Resource",
    "Deployment",
    "Model",
    "Version",
    "ObjectId",
    "CallerIP",
    "Requests",
    "PromptTokens",
    "CachedTokens",
    "CompletionTokens",
    "Method",
]


def caller_ip(masked: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The caller address Azure logs (`10.20.2.***`), masked octet read as 0; None when unreadable."""
    text = (masked or "").strip().replace("***", "0")
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _metric_tokens(metrics: pd.DataFrame) -> pd.DataFrame:
    """Metrics API rows -> TimeGenerated, Resource, Deployment, MetricPrompt, MetricCompletion."""
    out_cols = [*KEY, "MetricPrompt", "MetricCompletion"]
    if metrics is None or metrics.empty:
        return pd.DataFrame(
            {
                "TimeGenerated": pd.Series(dtype=TIME_DTYPE),
                "Resource": pd.Series(dtype=object),
                "Deployment": pd.Series(dtype=object),
                "MetricPrompt": pd.Series(dtype="float64"),
                "MetricCompletion": pd.Series(dtype="float64"),
            }
        )
    # the Azure metrics API lower-cases dimension names; the embedded store keeps them as asked
    dep_col = next(c for c in metrics.columns if c.lower() == "modeldeploymentname")
    m = pd.DataFrame(
        {
            "TimeGenerated": pd.to_datetime(metrics["TimeStamp"], utc=True).dt.floor("h").astype(TIME_DTYPE),
            "Resource": metrics["ResourceId"].astype(str).str.rsplit("/", n=1).str[-1].str.lower(),
            "Deployment": metrics[dep_col].astype(str),
            "MetricName": metrics["MetricName"].astype(str),
            "Value": pd.to_numeric(metrics["Value"], errors="coerce").fillna(0.0),
        }
    )
    wide = m.pivot_table(index=KEY, columns="MetricName", values="Value", aggfunc="sum", fill_value=0.0)
    wide = wide.reindex(columns=["ProcessedPromptTokens", "GeneratedTokens"], fill_value=0.0)
    wide = wide.rename(columns={"ProcessedPromptTokens": "MetricPrompt", "GeneratedTokens": "MetricCompletion"})
    wide.columns.name = None
    return wide.reset_index()[out_cols]


def token_rows(usage: pd.DataFrame, metrics: pd.DataFrame, deployments: pd.DataFrame) -> pd.DataFrame:
    """Hourly tokens per caller, each row made by the best method its (deployment, hour) allows.

    `usage` has the columns of `cost_usage_by_caller` at a 1h bin; `metrics` those of
    `lens.metrics(["ProcessedPromptTokens", "GeneratedTokens"], split_by=["ModelDeploymentName"])` at PT1H
    (may be empty); `deployments` those of `lens.deployments().frame` (for models of metric-only rows).
    Token columns are floats: method ``bytes`` shares tokens in proportion, not whole tokens.
    """
    u = usage.copy()
    if u.empty:
        u = pd.DataFrame(columns=[*ROW_COLUMNS, "Succeeded", "UsageRows", "RequestBytes", "ResponseBytes"])
    u["TimeGenerated"] = pd.to_datetime(u["TimeGenerated"], utc=True).astype(TIME_DTYPE)
    u["Resource"] = u["Resource"].astype(str).str.lower()
    if "ModelVersion" in u.columns:
        u = u.rename(columns={"ModelVersion": "Version"})
    if "Succeeded" not in u.columns:
        u["Succeeded"] = u["Requests"]
    for c in ["Requests", "Succeeded", "UsageRows", "RequestBytes", "ResponseBytes", *TOKEN_COLUMNS]:
        u[c] = pd.to_numeric(u[c], errors="coerce").fillna(0).astype("float64")
    for c in ["Model", "Version", "ObjectId", "CallerIP"]:
        u[c] = u[c].fillna("").astype(str)
    u["ObjectId"] = u["ObjectId"].str.lower()

    # a (deployment, hour) lacks usage when calls succeeded there but no usage row was found; an hour
    # where every call failed (429s, 5xx) had no tokens to record and keeps the request method
    usage_in_group = u.groupby(KEY)["UsageRows"].transform("sum")
    succeeded = u.groupby(KEY)["Succeeded"].transform("sum")
    missing = (usage_in_group <= 0) & (succeeded > 0)
    measured = u[~missing].copy()
    measured["Method"] = METHOD_REQUEST

    mt = _metric_tokens(metrics)
    logged_only = u[missing].copy()
    shared = logged_only.merge(mt, on=KEY, how="left")
    shared[["MetricPrompt", "MetricCompletion"]] = shared[["MetricPrompt", "MetricCompletion"]].fillna(0.0)
    weight = shared["RequestBytes"] + shared["ResponseBytes"]
    group_weight = weight.groupby([shared[k] for k in KEY]).transform("sum")
    # no bytes recorded at all: share by requests instead
    requests_total = shared.groupby(KEY)["Requests"].transform("sum")
    share = np.where(
        group_weight > 0,
        weight / group_weight.where(group_weight > 0, 1.0),
        shared["Requests"] / requests_total.where(requests_total > 0, 1.0),
    )
    shared["PromptTokens"] = shared["MetricPrompt"] * share
    shared["CachedTokens"] = 0.0
    shared["CompletionTokens"] = shared["MetricCompletion"] * share
    shared["Method"] = METHOD_BYTES

    logged_keys = u[KEY].drop_duplicates()
    orphan = mt.merge(logged_keys, on=KEY, how="left", indicator=True)
    orphan = orphan[(orphan["_merge"] == "left_only") & ((orphan["MetricPrompt"] + orphan["MetricCompletion"]) > 0)]
    dep_models = deployments[["Resource", "Deployment", "Model", "Version"]].copy()
    dep_models["Resource"] = dep_models["Resource"].astype(str).str.lower()
    whole = orphan.drop(columns="_merge").merge(dep_models, on=["Resource", "Deployment"], how="left")
    whole = whole.assign(
        Model=whole["Model"].fillna("").astype(str),
        Version=whole["Version"].fillna("").astype(str),
        ObjectId="",
        CallerIP="",
        Requests=0.0,
        PromptTokens=whole["MetricPrompt"].astype("float64"),
        CachedTokens=0.0,
        CompletionTokens=whole["MetricCompletion"].astype("float64"),
        Method=METHOD_DEPLOYMENT,
    )
    parts = [p[ROW_COLUMNS] for p in (measured, shared, whole) if not p.empty]
    if not parts:
        dtypes = {"TimeGenerated": TIME_DTYPE, "Requests": "float64", **dict.fromkeys(TOKEN_COLUMNS, "float64")}
        return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in ROW_COLUMNS})
    rows = pd.concat(parts, ignore_index=True)
    return rows


def _label(rule: AttributionRule) -> str:
    return rule.display_name or rule.object_id or rule.ip_range or rule.deployment_pattern or rule.feature


def rule_id(index: int, rule: AttributionRule) -> str:
    """`3:mi-semantic-search`: the rule's position in the settings (1-based) and what it names."""
    return f"{index + 1}:{_label(rule)}"


def match_rule(
    rules: Sequence[AttributionRule], object_id: str, ip: str, deployment: str
) -> tuple[int, AttributionRule] | None:
    """The first rule (in order) whose every set matcher matches this caller, with its index."""
    addr = caller_ip(ip)
    oid = (object_id or "").lower()
    for i, r in enumerate(rules):
        if r.object_id is not None and r.object_id != oid:
            continue
        if r.ip_range is not None and (addr is None or addr not in ipaddress.ip_network(r.ip_range, strict=False)):
            continue
        if r.deployment_pattern is not None and not fnmatch.fnmatchcase(deployment, r.deployment_pattern):
            continue
        return i, r
    return None


def _pattern_only(rule: AttributionRule) -> bool:
    return rule.deployment_pattern is not None and rule.object_id is None and rule.ip_range is None


def attribute(rows: pd.DataFrame, rules: Sequence[AttributionRule], probe_object_id: str | None) -> pd.DataFrame:
    """Add Feature, Team, CostCenter, Rule and Category (allocated / unallocated / probes) to token rows.

    A row claimed by a deployment-pattern-only rule gets Method ``deployment``: its caller was not used.
    """
    out = rows.copy()
    probe = (probe_object_id or "").lower()
    callers = out[["ObjectId", "CallerIP", "Deployment"]].drop_duplicates()
    found = []
    for oid, ip, dep in callers.itertuples(index=False):
        if probe and str(oid).lower() == probe:
            found.append((oid, ip, dep, "probes", "", "", "probes", PROBES, False))
            continue
        hit = match_rule(rules, str(oid), str(ip), str(dep))
        if hit is None:
            found.append((oid, ip, dep, "", "", "", "", UNALLOCATED, False))
        else:
            i, r = hit
            found.append((oid, ip, dep, r.feature, r.team, r.cost_center, rule_id(i, r), ALLOCATED, _pattern_only(r)))
    table = pd.DataFrame(
        found,
        columns=["ObjectId", "CallerIP", "Deployment", "Feature", "Team", "CostCenter", "Rule", "Category", "Whole"],
    )
    out = out.merge(table, on=["ObjectId", "CallerIP", "Deployment"], how="left")
    out.loc[out["Whole"].astype(bool), "Method"] = METHOD_DEPLOYMENT
    return out.drop(columns="Whole")
