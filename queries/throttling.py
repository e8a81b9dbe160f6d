"""The 429 explainer: for each burst of 429s, which limit it hit, the evidence, who called, what to do.

Azure answers 429 for several different limits and the answer rarely says which. The logs and metrics
hold enough evidence to tell them apart:

- **TPM**: the deployment's tokens per minute (capacity x 1,000). Azure counts prompt tokens plus
  `max_tokens` when it admits a call, so the tokens the admitted calls really used reach *near* the
  limit, not always the limit: a minute at `NEAR_LIMIT` (90%) of it or more counts as hit.
- **RPM**: enforced over short windows, not per minute: RPM / 6 per 10 seconds, and RPM / 60 per second
  on some deployments. The evidence is the most calls (throttled ones included, since each was judged)
  in any 10-second or 1-second window. Windows are fixed bins, so a flood straddling two bins is
  undercounted, never overcounted.
- **PTU**: a provisioned deployment throttles when its utilisation (the metric
  `AzureOpenAIProvisionedManagedUtilizationV2`) reaches 100%.
- **Quota pools**: deployments of one model and deployment type share the quota of their region and,
  from 2026 for Global and Data Zone types, of the subscription (one pool across regions). The evidence
  is the tokens per minute of all the pool's deployments together against the pool's limit from the
  management plane's usages. Where a subscription pool is reported, each region's usage row is assumed
  to carry the pool's limit (not verified against Azure: shown as "assumed").

The checks run in this order, and the first one hit names the cause: PTU (provisioned only), RPM over
10 s, TPM, RPM over 1 s (the noisiest evidence, last), the regional pool, the subscription pool. When none
is hit the cause is "unknown", with every check and its numbers, so the reader sees what was ruled out.

The heavy lifting stays in the engine: `throttle_bursts.kql` aggregates per minute, per 10 s and per
second there and returns one row per burst; `throttle_burst_callers.kql` one row per caller and burst;
`tokens_by_deployment` at one-minute bins over each burst's window for the pools.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from queries.config import AttributionRule, Settings
from queries.limits import is_provisioned
from queries.names import CallerNames
from queries.reader import LensLike
from queries.results import QueryResult
from queries.scope import caller_label, describe_callers

log = logging.getLogger(__name__)

NEAR_LIMIT = 0.9  # admitted tokens at 90% of TPM or more: the TPM limit was hit (Azure counts max_tokens too)
PTU_SATURATED = 100.0  # provisioned utilisation (%) at which Azure answers 429
PTU_METRIC = "AzureOpenAIProvisionedManagedUtilizationV2"
SUBSCRIPTION_POOL_SKUS = ("Global", "DataZone")  # deployment types whose quota may be one subscription pool

CAUSES = {
    "ptu": "PTU utilisation (provisioned capacity saturated)",
    "rpm_10s": "RPM (requests per 10-second window)",
    "tpm": "TPM (tokens per minute)",
    "rpm_1s": "RPM (requests per 1-second window)",
    "quota_region": "regional quota pool",
    "quota_subscription": "subscription quota pool",
    "unknown": "unknown",
}

ACTIONS = {
    "ptu": (
        "Honour retry-after-ms and back off; with a standard spillover deployment (ARM spilloverDeploymentName) "
        "these calls are served there at pay-as-you-go rates (Reliability's Spillover panel counts them), so add "
        "one if there is none; buy more PTUs if saturation recurs at the same hours."
    ),
    "rpm_10s": (
        "Smooth the flood: honour retry-after and pace the client to RPM/6 per 10 s (a queue or token bucket); "
        "batch small calls (embeddings take arrays of inputs); RPM grows with capacity, so raising TPM also helps."
    ),
    "tpm": (
        "Honour retry-after; lower max_tokens to what responses need (Azure counts it when admitting); raise the "
        "deployment's capacity if quota allows (Global and Data Zone Standard have the larger quotas), or add a "
        "spillover deployment."
    ),
    "rpm_1s": (
        "Spread the calls within each second (client-side pacing or jitter); honour retry-after; raise capacity "
        "if sustained load needs it."
    ),
    "quota_region": (
        "The region's quota for this model and deployment type is used up by its deployments together: request "
        "a quota increase, rebalance capacity between them, or move one to Global or Data Zone Standard."
    ),
    "quota_subscription": (
        "The subscription's pool for this model and deployment type is used up across regions: request a quota "
        "increase for the pool or move traffic to another deployment type."
    ),
    "unknown": (
        "No limit the logs and metrics show was reached: check a gateway's policies (APIM rate-limit-by-key, "
        "token limits), the 429 body and retry-after on the client, and whether the deployment's limits changed."
    ),
}


@dataclass(frozen=True)
class Check:
    """One limit checked against its evidence."""

    cause: str  # a key of CAUSES
    observed: float | None  # None: could not be measured (the note says why)
    allowed: float | None
    hit: bool
    note: str

    def text(self) -> str:
        return self.note


@dataclass(frozen=True)
class Caller:
    name: str
    feature: str
    requests: int
    tokens: int


@dataclass(frozen=True)
class Burst:
    deployment: str
    start: datetime  # the first minute with at least min_429 throttled calls
    end: datetime  # the end of the last such minute
    first_throttled: datetime
    throttled: int
    requests: int
    cause: str
    checks: tuple[Check, ...]
    callers: tuple[Caller, ...]

    @property
    def limit(self) -> str:
        return CAUSES[self.cause]

    @property
    def evidence(self) -> str:
        if self.cause == "unknown":
            return "nothing reached its limit; checked: " + "; ".join(c.note for c in self.checks)
        return next(c.note for c in self.checks if c.cause == self.cause)

    @property
    def action(self) -> str:
        return ACTIONS[self.cause]


@dataclass
class Explanation:
    bursts: list[Burst]
    results: list[QueryResult] = field(default_factory=list)  # every query and call behind it (for panels)

    def frame(self) -> pd.DataFrame:
        """One row per burst, as the Reliability page shows it."""
        rows = [
            {
                "BurstStart": b.start,
                "Deployment": b.deployment,
                "Throttled": b.throttled,
                "LimitHit": b.limit,
                "Evidence": b.evidence,
                "CallersBefore": ", ".join(f"{c.name} ({c.requests:,} req, {c.tokens:,} tok)" for c in b.callers[:3])
                or "(none)",
                "SuggestedAction": b.action,
            }
            for b in self.bursts
        ]
        return pd.DataFrame(
            rows,
            columns=[
                "BurstStart",
                "Deployment",
                "Throttled",
                "LimitHit",
                "Evidence",
                "CallersBefore",
                "SuggestedAction",
            ],
        )


def _fmt(v: float) -> str:
    return f"{v:,.0f}"


def _pct(observed: float, allowed: float) -> str:
    return f"{100.0 * observed / allowed:.0f}%" if allowed else "n/a"


def _ts(v: object) -> datetime:
    t = pd.Timestamp(v)  # type: ignore[arg-type]
    return (t if t.tzinfo else t.tz_localize("UTC")).to_pydatetime()


def classify(
    burst: pd.Series,
    deployment: pd.Series | None,
    *,
    ptu_max: float | None = None,
    pools: Sequence[Check] = (),
) -> tuple[str, tuple[Check, ...]]:
    """The cause of one burst and every check with its numbers. `burst` is a row of `throttle_bursts`;
    `deployment` its row of the management plane's deployments (None: unknown to it); `ptu_max` the
    highest provisioned utilisation over the burst (None: not measured); `pools` the quota-pool checks."""
    checks: list[Check] = []
    if deployment is None:
        checks.append(Check("tpm", None, None, False, "the management plane does not list this deployment"))
        checks.extend(pools)
        return next((c.cause for c in checks if c.hit), "unknown"), tuple(checks)
    sku = str(deployment["Sku"])
    tpm = float(deployment["TpmLimit"] or 0)
    rpm = float(deployment["RpmLimit"] or 0)
    if is_provisioned(sku):
        if ptu_max is None:
            checks.append(Check("ptu", None, PTU_SATURATED, False, f"{PTU_METRIC} not available for this burst"))
        else:
            checks.append(
                Check(
                    "ptu",
                    ptu_max,
                    PTU_SATURATED,
                    ptu_max >= PTU_SATURATED,
                    f"provisioned utilisation peaked at {ptu_max:.0f}% (429s at {PTU_SATURATED:.0f}%)",
                )
            )
    per10 = float(burst["PeakRequestsPer10s"])
    allowed10 = rpm / 6
    checks.append(
        Check(
            "rpm_10s",
            per10,
            allowed10,
            rpm > 0 and per10 > allowed10,
            f"{_fmt(per10)} requests in 10 s against {allowed10:,.0f} (RPM {_fmt(rpm)} / 6)",
        )
    )
    tokens = float(burst["PeakTokensPerMinute"])
    checks.append(
        Check(
            "tpm",
            tokens,
            tpm,
            tpm > 0 and not is_provisioned(sku) and tokens >= NEAR_LIMIT * tpm,
            f"{_fmt(tokens)} tokens in the busiest minute against {_fmt(tpm)} TPM ({_pct(tokens, tpm)})"
            + (" (a provisioned deployment's throughput estimate)" if is_provisioned(sku) else ""),
        )
    )
    per1 = float(burst["PeakRequestsPer1s"])
    allowed1 = rpm / 60
    checks.append(
        Check(
            "rpm_1s",
            per1,
            allowed1,
            rpm > 0 and per1 > allowed1,
            f"{_fmt(per1)} requests in 1 s against {allowed1:,.1f} (RPM {_fmt(rpm)} / 60)",
        )
    )
    checks.extend(pools)
    return next((c.cause for c in checks if c.hit), "unknown"), tuple(checks)


def pool_members(dep: str, deployments: pd.DataFrame) -> list[str]:
    """The deployments sharing `dep`'s quota pools (same deployment type and model, any region); [] for a
    provisioned or unknown deployment."""
    if deployments.empty or "Sku" not in deployments.columns:
        return []
    me = deployments[deployments["Deployment"] == dep]
    if me.empty or is_provisioned(str(me["Sku"].iloc[0])):
        return []
    sku, model = me["Sku"].iloc[0], me["Model"].iloc[0]
    same = deployments[(deployments["Sku"] == sku) & (deployments["Model"] == model)]
    return sorted(str(d) for d in same["Deployment"])


def pool_checks(dep: str, deployments: pd.DataFrame, usages: pd.DataFrame, minute_tokens: pd.DataFrame) -> list[Check]:
    """The quota pools `dep` draws from, each with the busiest minute's tokens of all its deployments.
    minute_tokens: TimeGenerated (minute), Deployment, PromptTokens, CompletionTokens over the burst."""
    me = deployments[deployments["Deployment"] == dep]
    if me.empty or is_provisioned(str(me["Sku"].iloc[0])):
        return []  # provisioned capacity is bought in PTUs, not drawn from a token quota at run time
    sku, model, loc = str(me["Sku"].iloc[0]), str(me["Model"].iloc[0]), str(me["Location"].iloc[0])
    tokens = minute_tokens.assign(Used=minute_tokens["PromptTokens"].fillna(0) + minute_tokens["CompletionTokens"])

    def busiest(members: pd.Series) -> float:
        mine = tokens[tokens["Deployment"].isin(set(members))]
        return float(mine.groupby("TimeGenerated")["Used"].sum().max()) if not mine.empty else 0.0

    out = []
    same = deployments[(deployments["Sku"] == sku) & (deployments["Model"] == model)]
    region_rows = usages[(usages["Location"] == loc) & (usages["Sku"] == sku) & (usages["Model"] == model)]
    pool = f"{loc} {sku} {model}"
    if region_rows.empty:
        out.append(Check("quota_region", None, None, False, f"no usage row for the {pool} quota"))
    else:
        limit = float(region_rows["Limit"].max()) * 1000
        used = busiest(same[same["Location"] == loc]["Deployment"])
        out.append(
            Check(
                "quota_region",
                used,
                limit,
                limit > 0 and used >= NEAR_LIMIT * limit,
                f"the {pool} quota: {_fmt(used)} tokens in the busiest minute across its deployments against "
                f"{_fmt(limit)} ({_pct(used, limit)})",
            )
        )
    if sku.startswith(SUBSCRIPTION_POOL_SKUS):
        rows = usages[(usages["Sku"] == sku) & (usages["Model"] == model)]
        if not rows.empty:
            limit = float(rows["Limit"].max()) * 1000
            used = busiest(same["Deployment"])
            out.append(
                Check(
                    "quota_subscription",
                    used,
                    limit,
                    limit > 0 and used >= NEAR_LIMIT * limit,
                    f"the subscription's {sku} {model} pool (assumed: the regions' limit is the pool's): "
                    f"{_fmt(used)} tokens in the busiest minute across regions against {_fmt(limit)} "
                    f"({_pct(used, limit)})",
                )
            )
    return out


def name_callers(
    frame: pd.DataFrame,
    rules: Sequence[AttributionRule],
    probe_object_id: str | None,
    directory: CallerNames | None = None,
) -> list[Caller]:
    """Callers of one burst, busiest first, by name: the directory's (Graph), else the attribution rule's."""
    if frame.empty:
        return []
    named = describe_callers(frame, rules, directory)
    out = []
    for _, r in named.sort_values(["Requests", "Tokens"], ascending=False).iterrows():
        name = caller_label(str(r["Caller"]), str(r["ObjectId"] or ""), str(r["CallerIP"] or ""), probe_object_id)
        out.append(Caller(name, str(r.get("Feature") or ""), int(r["Requests"]), int(r["Tokens"] or 0)))
    return out


def burst_queries(
    *,
    since: timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    deployments: Sequence[str] = (),
    min_429: int = 10,
) -> list[tuple[str, dict[str, object]]]:
    """The two catalogue queries behind an explanation, for a page to send with its own batch."""
    t: dict[str, object] = {"since": since, "start": start, "end": end}
    params = {"deployments": list(deployments), "min_429": min_429}
    return [("throttle_bursts", {**t, "params": params}), ("throttle_burst_callers", {**t, "params": params})]


def explain_429(
    lens: LensLike,
    *,
    since: timedelta | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    deployments: Sequence[str] = (),
    min_429: int = 10,
) -> Explanation:
    """Every 429 burst in the range (newest first), explained. Raises nothing for missing evidence: a
    check that could not be made says so, and a failed query leaves its result's notice in `results`."""
    bursts_r, callers_r = lens.run_many(
        burst_queries(since=since, start=start, end=end, deployments=deployments, min_429=min_429)
    )
    return explain_results(lens, bursts_r, callers_r)


def explain_results(
    lens: LensLike, bursts_r: QueryResult, callers_r: QueryResult, settings: Settings | None = None
) -> Explanation:
    """The explanation of `throttle_bursts` and `throttle_burst_callers` answers, with the management
    plane's limits and quotas, the provisioned utilisation metric and each burst's per-minute load.
    Callers are named by `settings`' attribution rules (default: the Lens's)."""
    settings = settings or lens.settings
    results = [bursts_r, callers_r]
    deps_r = lens.deployments()
    usages_r = lens.usages()
    results += [deps_r, usages_r]
    bursts = bursts_r.frame
    deps = deps_r.frame if deps_r.status != "failed" else pd.DataFrame(columns=["Deployment"])
    usages = usages_r.frame if usages_r.status != "failed" else pd.DataFrame(columns=["Location", "Sku", "Model"])
    if bursts.empty:
        return Explanation([], results)
    directory = None
    try:  # names are a nicety: without them callers are named by rule or id, and the explanation goes on
        directory = lens.caller_names(callers_r.frame) if not callers_r.frame.empty else None
    except Exception as e:
        log.warning("callers' names unavailable: %s", type(e).__name__)

    # the pools' load: tokens per minute of the deployments sharing each burst's quota pools (same model
    # and deployment type), over the burst (one batch of small queries)
    windows = [(_ts(b.BurstStart) - timedelta(minutes=1), _ts(b.BurstEnd)) for b in bursts.itertuples()]
    members = [pool_members(str(b.Deployment), deps) for b in bursts.itertuples()]
    wanted = [i for i, m in enumerate(members) if m and not usages.empty]
    load_results = lens.run_many(
        [
            (
                "tokens_by_deployment",
                {
                    "start": windows[i][0],
                    "end": windows[i][1],
                    "bin": timedelta(minutes=1),
                    "params": {"deployments": members[i]},
                },
            )
            for i in wanted
        ]
    )
    loads = dict(zip(wanted, load_results, strict=True))
    results += load_results[:1]
    rules = settings.attribution
    probe_oid = settings.probe_object_id
    out = []
    for i, b in enumerate(bursts.itertuples(index=False)):
        row = pd.Series(b._asdict())
        dep = str(b.Deployment)
        mine = deps[deps["Deployment"] == dep] if "Deployment" in deps.columns else deps.iloc[0:0]
        drow = mine.iloc[0] if not mine.empty else None
        ptu_max = None
        if drow is not None and is_provisioned(str(drow["Sku"])):
            m = lens.metrics(
                [PTU_METRIC],
                start=windows[i][0],
                end=windows[i][1],
                interval=timedelta(minutes=1),
                aggregation="Maximum",
                split_by=["ModelDeploymentName"],
                filters={"ModelDeploymentName": [dep]},
            )
            results.append(m)
            if m.status != "failed" and not m.frame.empty:
                ptu_max = float(pd.to_numeric(m.frame["Value"], errors="coerce").max())
        load = loads[i].frame if i in loads and loads[i].status != "failed" else pd.DataFrame()
        pools = pool_checks(dep, deps, usages, load) if not load.empty else []
        cause, checks = classify(row, drow, ptu_max=ptu_max, pools=pools)
        callers = callers_r.frame
        mine_callers = callers[(callers["Deployment"] == dep) & (callers["BurstStart"] == b.BurstStart)]
        out.append(
            Burst(
                deployment=dep,
                start=_ts(b.BurstStart),
                end=_ts(b.BurstEnd),
                first_throttled=_ts(b.FirstThrottled),
                throttled=int(b.Throttled),
                requests=int(b.Requests),
                cause=cause,
                checks=checks,
                callers=tuple(name_callers(mine_callers, rules, probe_oid, directory)),
            )
        )
    return Explanation(out, results)


def report(explanation: Explanation) -> str:
    """The explanation as text, for `aoai-lens explain-429`."""
    if not explanation.bursts:
        return "No 429 bursts in this range.\n"
    lines = []
    for b in explanation.bursts:
        lines.append(
            f"{b.deployment}: {b.throttled:,} x 429 of {b.requests:,} calls, "
            f"{b.start:%Y-%m-%d %H:%M}-{b.end:%H:%M} UTC (first 429 at {b.first_throttled:%H:%M:%S})"
        )
        lines.append(f"  limit hit: {b.limit}")
        lines.append(f"  evidence:  {b.evidence}")
        others = [c.note for c in b.checks if c.cause != b.cause]
        if b.cause != "unknown" and others:
            lines.append("  also checked: " + "; ".join(others))
        if b.callers:
            lines.append("  callers in the minute before the first 429:")
            for c in b.callers[:5]:
                feature = f" [{c.feature}]" if c.feature else ""
                calls = "call" if c.requests == 1 else "calls"
                lines.append(f"    {c.name}{feature}: {c.requests:,} {calls}, {c.tokens:,} tokens")
        else:
            lines.append("  callers in the minute before the first 429: none")
        lines.append(f"  suggested: {b.action}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
