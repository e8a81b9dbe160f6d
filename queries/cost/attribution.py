"""Who used the tokens: the three measurement methods and the attribution rules.

Pure functions over frames; `queries.cost.report.allocate` wires them to the query layer.

Methods, best first (each row says which made it, in `Method`):

- ``request``: per-request tokens. Every RequestResponse row joined to its AzureOpenAIRequestUsage row
  on CorrelationId (catalogue query `cost_usage_by_caller`), summed per hour and caller.
- ``bytes``: decided per (deployment, hour): the tokens the metrics API shows for it
  (ProcessedPromptTokens, GeneratedTokens per ModelDeploymentName at PT1H) beyond what its usage rows
  claim, shared among the callers whose successful requests had no readable usage row, by those
  requests' request + response bytes. Metrics do not split cached tokens, so these tokens are priced
  as uncached input.
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from queries.config import AttributionRule

METHOD_REQUEST = "request"
METHOD_BYTES = "bytes"
METHOD_DEPLOYMENT = "deployment"

ALLOCATED, UNALLOCATED, PROBES, PTU_IDLE = "allocated", "unallocated", "probes", "ptu idle"

TIME_DTYPE = "datetime64[ns, UTC]"
TOKEN_COLUMNS = ["PromptTokens", "CachedTokens", "CompletionTokens", "ReasoningTokens"]
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
    "ReasoningTokens",
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


@dataclass
class TokenHealth:
    """What the token measurement could not do cleanly, for Data health and the ledger's status."""

    unreadable_usage: int = 0  # usage rows whose token fields could not be read (never priced at $0)
    unmatched_requests: int = 0  # successful requests without a readable usage row
    unfilled_requests: int = 0  # ... of which no metric tokens could fill (their tokens are unknown)
    bytes_tokens: float = 0.0  # tokens the metrics showed beyond the usage rows, shared by bytes
    metrics_below_usage: list[str] = field(default_factory=list)  # (deployment, hour) where metrics < usage


def token_rows(
    usage: pd.DataFrame, metrics: pd.DataFrame, deployments: pd.DataFrame, *, health: TokenHealth | None = None
) -> pd.DataFrame:
    """Hourly tokens per caller, the method decided per (deployment, hour).

    `usage` has the columns of `cost_usage_by_caller` at a 1h bin; `metrics` those of
    `lens.metrics(["ProcessedPromptTokens", "GeneratedTokens"], split_by=["ModelDeploymentName"])` at PT1H
    (may be empty: then nothing can be filled); `deployments` those of `lens.deployments().frame` (for
    models of metric-only rows). Per (deployment, hour):

    - every caller's readable usage rows give ``request`` rows;
    - the tokens the metrics show beyond what the usage rows claim (the gap) are shared among the
      callers whose successful requests had no readable usage row, by those requests' bytes (by their
      count when no bytes were logged; by every request's bytes when no request lacks a usage row):
      ``bytes`` rows, priced as uncached input (metrics do not split cached tokens);
    - an hour the metrics show and the request logs do not is one ``deployment`` row.
    Token columns are floats: shared tokens are proportions, not whole tokens.
    """
    health = health if health is not None else TokenHealth()
    u = usage.copy()
    extra = [
        "Succeeded",
        "UsageRows",
        "UnreadableUsage",
        "RequestBytes",
        "ResponseBytes",
        "UnmatchedRequests",
        "UnmatchedBytes",
    ]
    if u.empty:
        u = pd.DataFrame(columns=[*ROW_COLUMNS, *extra])
    u["TimeGenerated"] = pd.to_datetime(u["TimeGenerated"], utc=True).astype(TIME_DTYPE)
    u["Resource"] = u["Resource"].astype(str).str.lower()
    if "ModelVersion" in u.columns:
        u = u.rename(columns={"ModelVersion": "Version"})
    if "Succeeded" not in u.columns:
        u["Succeeded"] = u["Requests"]
    if "UnmatchedRequests" not in u.columns:  # an older answer shape: a caller row without usage is unmatched
        no_usage = pd.to_numeric(u.get("UsageRows", 0), errors="coerce").fillna(0) <= 0
        u["UnmatchedRequests"] = pd.to_numeric(u["Succeeded"], errors="coerce").fillna(0).where(no_usage, 0)
        u["UnmatchedBytes"] = (
            pd.to_numeric(u["RequestBytes"], errors="coerce").fillna(0)
            + pd.to_numeric(u["ResponseBytes"], errors="coerce").fillna(0)
        ).where(no_usage, 0)
    for c in [*extra, "Requests", "ReasoningTokens", *TOKEN_COLUMNS]:
        if c not in u.columns:
            u[c] = 0
        u[c] = pd.to_numeric(u[c], errors="coerce").fillna(0).astype("float64")
    for c in ["Model", "Version", "ObjectId", "CallerIP"]:
        u[c] = u[c].fillna("").astype(str)
    u["ObjectId"] = u["ObjectId"].str.lower()
    health.unreadable_usage += int(u["UnreadableUsage"].sum())
    health.unmatched_requests += int(u["UnmatchedRequests"].sum())

    measured = u.copy()
    measured["Method"] = METHOD_REQUEST

    mt = _metric_tokens(metrics)
    groups = u.groupby(KEY, as_index=False).agg(
        UsagePrompt=("PromptTokens", "sum"),
        UsageCompletion=("CompletionTokens", "sum"),
        Unmatched=("UnmatchedRequests", "sum"),
    )
    g = groups.merge(mt, on=KEY, how="left")
    has_metrics = g["MetricPrompt"].notna()
    g[["MetricPrompt", "MetricCompletion"]] = g[["MetricPrompt", "MetricCompletion"]].fillna(0.0)
    g["GapPrompt"] = (g["MetricPrompt"] - g["UsagePrompt"]).clip(lower=0.0).where(has_metrics, 0.0)
    g["GapCompletion"] = (g["MetricCompletion"] - g["UsageCompletion"]).clip(lower=0.0).where(has_metrics, 0.0)
    below = g[
        has_metrics
        & ((g["MetricPrompt"] < g["UsagePrompt"] - 0.5) | (g["MetricCompletion"] < g["UsageCompletion"] - 0.5))
    ]
    health.metrics_below_usage += [
        f"{r.Deployment} {r.TimeGenerated:%Y-%m-%d %H:00}" for r in below.itertuples(index=False)
    ]
    unfilled = g[(g["Unmatched"] > 0) & (g["GapPrompt"] + g["GapCompletion"] <= 0)]
    health.unfilled_requests += int(unfilled["Unmatched"].sum())

    gaps = g[(g["GapPrompt"] + g["GapCompletion"]) > 0][[*KEY, "GapPrompt", "GapCompletion"]]
    shared = u.merge(gaps, on=KEY, how="inner")
    if not shared.empty:
        by = [shared[k] for k in KEY]
        unmatched_bytes = shared.groupby(by)["UnmatchedBytes"].transform("sum")
        unmatched_reqs = shared.groupby(by)["UnmatchedRequests"].transform("sum")
        all_bytes = shared["RequestBytes"] + shared["ResponseBytes"]
        total_bytes = all_bytes.groupby(by).transform("sum")
        total_reqs = shared.groupby(by)["Requests"].transform("sum")
        share = np.select(
            [unmatched_bytes > 0, unmatched_reqs > 0, total_bytes > 0],
            [
                shared["UnmatchedBytes"] / unmatched_bytes.where(unmatched_bytes > 0, 1.0),
                shared["UnmatchedRequests"] / unmatched_reqs.where(unmatched_reqs > 0, 1.0),
                all_bytes / total_bytes.where(total_bytes > 0, 1.0),
            ],
            default=shared["Requests"] / total_reqs.where(total_reqs > 0, 1.0),
        )
        shared = shared.assign(
            PromptTokens=shared["GapPrompt"] * share,
            CachedTokens=0.0,
            CompletionTokens=shared["GapCompletion"] * share,
            ReasoningTokens=0.0,
            Requests=0.0,  # the requests are counted once, on their request rows
            Method=METHOD_BYTES,
        )
        shared = shared[(shared["PromptTokens"] + shared["CompletionTokens"]) > 0]
        health.bytes_tokens += float(shared["PromptTokens"].sum() + shared["CompletionTokens"].sum())
        # a caller with no readable usage at all this hour is one line: its requests move to its bytes row
        caller = [*KEY, "Model", "Version", "ObjectId", "CallerIP"]
        empty = measured[
            (measured[["PromptTokens", "CompletionTokens"]].sum(axis=1) <= 0) & (measured["UsageRows"] <= 0)
        ]
        moved = empty[[*caller, "Requests"]].merge(shared[caller].drop_duplicates(), on=caller, how="inner")
        if not moved.empty:
            requests = shared[caller].merge(moved, on=caller, how="left")["Requests"].fillna(0.0).to_numpy()
            shared["Requests"] = requests
            drop = measured[caller].merge(moved[caller], on=caller, how="left", indicator=True)["_merge"] == "both"
            measured = measured[~drop.to_numpy()]

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
        ReasoningTokens=0.0,
        Method=METHOD_DEPLOYMENT,
    )
    parts = [p[ROW_COLUMNS] for p in (measured, shared, whole) if not p.empty]
    if not parts:
        dtypes = {"TimeGenerated": TIME_DTYPE, "Requests": "float64", **dict.fromkeys(TOKEN_COLUMNS, "float64")}
        return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, object)) for c in ROW_COLUMNS})
    return pd.concat(parts, ignore_index=True)


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


def rule_names(rules: Sequence[AttributionRule]) -> dict[str, str]:
    """A ledger row's `Rule` (`rule_id`) -> that rule's display name, for rules that have one."""
    return {rule_id(i, r): r.display_name for i, r in enumerate(rules) if r.display_name}


def caller_names_column(rows: pd.DataFrame, directory: Mapping[str, str], by_rule: Mapping[str, str]) -> pd.Series:
    """Each ledger row's caller name for an export: the directory's (Graph, by lower-cased ObjectId),
    else its attribution rule's display name, else "" (the export's id column has the id)."""
    names = {str(k).lower(): v for k, v in directory.items()}
    return pd.Series(
        [
            names.get(str(o).lower()) or by_rule.get(str(r), "")
            for o, r in zip(rows["ObjectId"].fillna(""), rows["Rule"].fillna(""), strict=True)
        ],
        index=rows.index,
        dtype=object,
    )
