"""The baseline: the page's numbers computed the way a notebook does it.

Pull every raw row of the page's time range into pandas (`SELECT * FROM AzureDiagnostics WHERE
TimeGenerated ...`), parse `properties_s` JSON row by row, and group in pandas. Costs go through the same
pure cost model (`queries.cost.report.allocate_frames`) fed from the pandas-built usage frame (and the
hourly metric tokens, for hours whose usage rows are missing), because the
point is how the data is reduced, not the price arithmetic. Runs in its own child process (bench.child).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

PROVIDER = "MICROSOFT.COGNITIVESERVICES"


def _first(v: Any) -> Any:
    """Kusto's coalesce(p.x[0], p.x): the first element of an array, else the value itself."""
    if isinstance(v, list):
        return v[0] if v else None
    return v


def raw_rows(path: str, start: datetime, end: datetime) -> pd.DataFrame:
    con = duckdb.connect(path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(
            "SELECT * FROM AzureDiagnostics WHERE TimeGenerated >= ? AND TimeGenerated <= ?", [start, end]
        ).df()
    finally:
        con.close()


def parse(df: pd.DataFrame) -> pd.DataFrame:
    df = df[df["ResourceProvider"] == PROVIDER].copy()
    t = pd.to_datetime(df["TimeGenerated"])
    df["TimeGenerated"] = t.dt.tz_localize("UTC") if t.dt.tz is None else t.dt.tz_convert("UTC")
    props = pd.DataFrame.from_records([json.loads(s) if s else {} for s in df["properties_s"]], index=df.index)
    for col in ("modelDeploymentName", "modelName", "modelVersion", "objectId", "requestLength", "responseLength"):
        df[col] = props[col] if col in props.columns else None
    for col in ("promptTokens", "cachedTokens", "generatedTokens"):
        df[col] = props[col].map(_first) if col in props.columns else None
    df["Deployment"] = df["modelDeploymentName"].fillna("").astype(str)
    return df


def status_class(sig: pd.Series) -> pd.Series:
    s = sig.fillna("").astype(str)
    return pd.Series(
        np.select(
            [s.str.startswith("2"), s == "429", s.str.startswith("4"), s.str.startswith("5")],
            ["2xx", "429", "4xx", "5xx"],
            "other",
        ),
        index=s.index,
    )


def p95(values: pd.Series) -> float:
    """The local engine's percentile is exact and discrete (DuckDB quantile_disc: the value at
    rank ceil(q*n), numpy's 'inverted_cdf'); Log Analytics would give a t-digest estimate."""
    return float(np.percentile(values.astype(float).to_numpy(), 95, method="inverted_cdf"))


def aggregates(df: pd.DataFrame) -> dict[str, Any]:
    rr = df[df["Category"] == "RequestResponse"]
    usage = df[df["Category"] == "AzureOpenAIRequestUsage"]
    by_class = status_class(rr["ResultSignature"]).value_counts()
    tokens = usage.groupby("Deployment")[["promptTokens", "cachedTokens", "generatedTokens"]].sum()
    ok = rr[rr["ResultSignature"].fillna("").astype(str).str.startswith("2")]
    summary: dict[str, dict[str, float]] = {
        str(dep): {
            "Requests": len(g),
            "Throttled": int((g["ResultSignature"] == "429").sum()),
            "ServerErrors": int(g["ResultSignature"].fillna("").astype(str).str.startswith("5").sum()),
        }
        for dep, g in rr.groupby("Deployment")
    }
    for dep, g in ok.groupby("Deployment"):
        summary[str(dep)]["P95"] = p95(g["DurationMs"])
    return {
        "status_classes": {str(k): int(v) for k, v in by_class.items()},
        "tokens_by_deployment": {
            str(d): [int(r.promptTokens), int(r.cachedTokens), int(r.generatedTokens)] for d, r in tokens.iterrows()
        },
        "summary_by_deployment": summary,
    }


def usage_frame(df: pd.DataFrame, start: datetime, end: datetime) -> pd.DataFrame:
    """`cost_usage_by_caller` at 1h, built in pandas: requests joined to their usage row by CorrelationId."""
    rr = df[(df["Category"] == "RequestResponse") & (df["TimeGenerated"] >= start) & (df["TimeGenerated"] <= end)]
    u = df[df["Category"] == "AzureOpenAIRequestUsage"][
        ["CorrelationId", "promptTokens", "cachedTokens", "generatedTokens"]
    ]
    u = u.rename(
        columns={"promptTokens": "UsagePrompt", "cachedTokens": "UsageCached", "generatedTokens": "UsageCompletion"}
    )
    j = rr.merge(u, on="CorrelationId", how="left")
    has = j["UsagePrompt"].notna()
    j = j.assign(
        TimeGenerated=j["TimeGenerated"].dt.floor("1h"),
        Resource=j["Resource"].str.lower(),
        Model=j["modelName"].fillna("").astype(str),
        ModelVersion=j["modelVersion"].fillna("").astype(str),
        ObjectId=j["objectId"].fillna("").astype(str).str.lower(),
        CallerIP=j["CallerIPAddress"].fillna("").astype(str),
        Succeeded=j["ResultSignature"].fillna("").astype(str).str.startswith("2").astype(int),
        UsageRows=has.astype(int),
        PromptTokens=j["UsagePrompt"].where(has, 0).astype("int64"),
        CachedTokens=j["UsageCached"].where(has, 0).fillna(0).astype("int64"),
        CompletionTokens=j["UsageCompletion"].where(has, 0).fillna(0).astype("int64"),
        RequestBytes=pd.to_numeric(j["requestLength"], errors="coerce"),
        ResponseBytes=pd.to_numeric(j["responseLength"], errors="coerce"),
        Requests=1,
    )
    # successful requests without a usage row: the ledger shares the metrics' tokens among them by bytes
    unmatched = (j["Succeeded"] == 1) & ~has
    j = j.assign(
        UnmatchedRequests=unmatched.astype(int),
        UnmatchedBytes=(j["RequestBytes"].fillna(0) + j["ResponseBytes"].fillna(0)).where(unmatched, 0).astype("int64"),
    )
    keys = ["TimeGenerated", "Resource", "Deployment", "Model", "ModelVersion", "ObjectId", "CallerIP"]
    vals = ["Requests", "Succeeded", "UsageRows", "PromptTokens", "CachedTokens", "CompletionTokens"]
    vals += ["RequestBytes", "ResponseBytes", "UnmatchedRequests", "UnmatchedBytes"]
    return j.groupby(keys, as_index=False)[vals].sum()


def metric_tokens(path: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Hourly prompt and generated tokens per deployment from the metrics store, pulled raw and summed in
    pandas: the cost model prices an hour whose usage rows are missing from them."""
    con = duckdb.connect(path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        raw = con.execute(
            "SELECT * FROM MetricsApi WHERE MetricName IN ('ProcessedPromptTokens', 'GeneratedTokens') "
            "AND TimeStamp >= ? AND TimeStamp < ?",
            [start.replace(tzinfo=None), end.replace(tzinfo=None)],
        ).df()
    finally:
        con.close()
    raw["TimeStamp"] = pd.to_datetime(raw["TimeStamp"]).dt.tz_localize("UTC").dt.floor("h")
    g = raw.groupby(["TimeStamp", "ResourceId", "MetricName", "ModelDeploymentName"], as_index=False)["Total"].sum()
    return g.rename(columns={"Total": "Value"})


def cost(
    df: pd.DataFrame, settings: Any, deployments: pd.DataFrame, start: datetime, end: datetime, path: str = ""
) -> pd.DataFrame:
    from queries.cost.prices import PriceBook
    from queries.cost.report import allocate_frames

    usage = usage_frame(df, start, end)
    result = allocate_frames(
        usage,
        metric_tokens(path, start, end) if path else pd.DataFrame(),
        deployments,
        list(settings.attribution),
        PriceBook.load(settings),
        start,
        end,
        probe_object_id=settings.probe_object_id,
        currency=settings.prices.currency,
    )
    rows: pd.DataFrame = result.rows
    return rows


def _limit_memory() -> None:
    """Cap the child's address space at 80% of the machine's memory: a baseline too big for the machine
    fails with MemoryError (recorded as such) instead of taking the machine down."""
    import resource

    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
        total = next(int(ln.split()[1]) * 1024 for ln in lines if ln.startswith("MemTotal:"))
    except (OSError, StopIteration):
        return
    resource.setrlimit(resource.RLIMIT_AS, (int(total * 0.8), int(total * 0.8)))


def page(path: str, data_dir: str, page: str, rng: str, now: str) -> dict[str, Any]:
    """Runs in the child: one page's numbers the naive way. Returns the aggregates to compare.

    Each aggregate uses the exact window the page's own query renders (the query layer rounds a relative
    range to the query's cache bucket), so both paths count the same rows."""
    from bench.pages import _lens, bench_settings, cost_aggregates
    from dashboard.filters import Filters
    from queries.sources.embedded import EmbeddedManagement, EmbeddedWorkspace

    settings = bench_settings(Path(path), Path(data_dir))
    at = datetime.fromisoformat(now)
    lens = _lens(settings, at)
    f = Filters(range=rng)

    def win(query: str) -> tuple[datetime, datetime]:
        _spec, tr, _kql = lens.render(query, **f.time_kwargs())  # type: ignore[arg-type]
        return tr.start, tr.end

    wins: dict[str, tuple[datetime, datetime]] = {}
    if page in ("overview", "reliability"):
        wins["status"] = win("requests_by_status")
        wins["summary"] = win("summary_by_deployment")
        if page == "overview":
            wins["tokens"] = win("tokens_by_deployment")
    if page == "data_health":
        wins["health"] = win("data_health")
    if page in ("overview", "cost", "features", "data_health"):
        from queries.cost.service import bucket  # the dashboard's cost views round to the same buckets

        c0, c1 = f.window(at)
        c0, c1 = bucket(c0), bucket(c1)
        wins["cost"] = (c0, c1 + timedelta(hours=1))
    if page in ("overview", "cost"):  # the month-to-date spend (Overview's spend panel, the Cost statement)
        from dashboard.costs import month_start
        from queries.cost.service import bucket

        wins["mtd"] = (month_start(at), bucket(at) + timedelta(hours=1))
    lo = min(w[0] for w in wins.values())
    hi = max(w[1] for w in wins.values())
    raw = raw_rows(path, lo, hi)  # the notebook's one big pull
    rows_pulled = len(raw)
    df = parse(raw)
    del raw

    def within(key: str) -> pd.DataFrame:
        a, b = wins[key]
        return df[(df["TimeGenerated"] >= a) & (df["TimeGenerated"] <= b)]

    out: dict[str, Any] = {"rows_pulled": rows_pulled}
    if "status" in wins:
        agg = aggregates(within("status"))
        out["status_classes"] = agg["status_classes"]
        out["summary_by_deployment"] = aggregates(within("summary"))["summary_by_deployment"]
        if "tokens" in wins:
            out["tokens_by_deployment"] = aggregates(within("tokens"))["tokens_by_deployment"]
    if "health" in wins:
        out["records_by_category"] = {str(k): int(v) for k, v in within("health")["Category"].value_counts().items()}
    if "cost" in wins:
        deps = EmbeddedManagement(EmbeddedWorkspace(Path(path))).deployments()
        c0, c1h = wins["cost"]
        out.update(cost_aggregates(cost(within("cost"), settings, deps, c0, c1h - timedelta(hours=1), path)))
        if "mtd" in wins:
            m0, m1h = wins["mtd"]
            out["cost_mtd_total"] = cost_aggregates(
                cost(within("mtd"), settings, deps, m0, m1h - timedelta(hours=1), path)
            )["cost_total"]
    return out


def page_capped(**kwargs: Any) -> dict[str, Any]:
    """`page` in a bench child, under the memory cap."""
    _limit_memory()
    return page(**kwargs)
