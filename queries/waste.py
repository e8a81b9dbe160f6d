"""Waste findings: money spent where it bought nothing, each with its $ per month and the KQL that found it.

Six kinds, each a pure function over small frames (the catalogue answers and the cost ledger's rows), so
a test can build a world by hand and check the dollars:

- ``streams_without_usage``: successful streamed calls with no usage row (`waste_streams_without_usage`).
  A client that streams without ``stream_options.include_usage`` sees no token counts, and where Azure
  writes no usage row for such a call either, the ledger can only share the metrics' tokens by bytes.
  $: the ledger's ``bytes`` rows of that caller and hour (the tokens the metrics counted for the calls
  without a usage row). Hours where the deployment's non-streamed calls lack usage rows too are an
  ingestion gap (Data health), not a client option, and are left out.
- ``completion_cap``: responses cut at the token limit. The logs carry no ``finish_reason``; a cap shows
  as many of one caller's responses ending at exactly the same length (`waste_completion_cap`).
  $: those calls' tokens at the deployment's effective prices in the ledger (likely retried or unused).
- ``short_calls``: a large model on short calls (`waste_short_calls`). $: their tokens at the large
  model's ledger prices minus the same tokens at the same family's mini model (``<model>-mini``, same
  deployment type and region) from the price book.
- ``ptu_idle``: provisioned capacity nobody used: the ledger's ``ptu idle`` rows.
- ``prompt_cache``: cached ÷ prompt tokens per deployment (`prompt_cache_by_caller`). $: what reaching
  the target hit rate on cacheable prompts (≥ 1,024 tokens) would save: (target × cacheable prompt
  tokens − cached tokens) × (input − cached input price), from the ledger's prices.
- ``embedding_spikes``: embedding hours far above the same caller's usual for that hour of day (a
  re-index). $: the ledger's embedding cost of the tokens above that usual.

Every $ is for the window first and then monthly-ised: × 730 / the window's hours from its first hour of
data (an average month has 730 hours), stated on each finding. Provisioned deployments' token rows cost $0 in the ledger (their
money is PTU-hours), so token findings on them are $0 and say so.

Scope: the catalogue answers come through the view's Lens (a team-scoped view keeps its teams' callers
only) and the ledger through `queries.cost.service.allocation` (narrowed to the teams' allocated rows), so
a team-scoped user sees their own callers' findings. PTU idle capacity and the probes are nobody's team:
a scoped user does not see them (`queries.scope`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from queries.cost.attribution import PTU_IDLE
from queries.cost.ledger import METER_CACHED, METER_EMBEDDINGS, METER_INPUT, METER_OUTPUT, METER_PTU
from queries.reader import LensLike
from queries.results import QueryResult
from queries.scope import caller_label, describe_callers

MONTH_HOURS = 730.0
CACHE_TARGET = 0.5  # the hit rate on cacheable prompts the prompt-cache finding prices the gap to
SPIKE_FACTOR = 3.0  # an embedding hour this many times the caller's usual for that hour of day is a spike
SPIKE_MIN_TOKENS = 100_000  # ... and at least this many tokens above it
QUERIES = (
    "waste_streams_without_usage",
    "waste_completion_cap",
    "waste_short_calls",
    "prompt_cache_by_caller",
)
LEDGER_QUERY = "cost_usage_by_caller"
KEY = ["Resource", "Deployment"]
CALLER = ["Resource", "Deployment", "ObjectId", "CallerIP"]


@dataclass(frozen=True)
class Finding:
    key: str
    title: str
    what: str
    evidence: pd.DataFrame
    usd: float  # in the window (NaN: could not be priced)
    usd_per_month: float
    method: str  # how the $ was computed, monthly-ising included
    kql: str
    todo: str
    result: QueryResult | None = None  # the query behind it (status, notice, portal link)
    notes: tuple[str, ...] = ()


@dataclass
class WasteReport:
    start: datetime
    end: datetime
    findings: list[Finding] = field(default_factory=list)
    data_start: datetime | None = None  # the first hour the ledger has, when later than `start`

    @property
    def hours(self) -> float:
        """The hours the $ were counted over: the range, from its first hour of data."""
        return covered_hours(self.start, self.end, self.data_start)

    def summary(self) -> pd.DataFrame:
        """One row per finding: Finding, Items (evidence rows), USD, USDPerMonth, Method, ToDo."""
        return pd.DataFrame(
            [
                {
                    "Finding": f.title,
                    "Items": len(f.evidence),
                    "USD": f.usd,
                    "USDPerMonth": f.usd_per_month,
                    "Method": f.method,
                    "ToDo": f.todo,
                }
                for f in self.findings
            ],
            columns=["Finding", "Items", "USD", "USDPerMonth", "Method", "ToDo"],
        )


def window_hours(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() / 3600.0, 1e-9)


def covered_hours(start: datetime, end: datetime, data_start: datetime | None) -> float:
    """The range's hours from its first hour of data: a 30-day range over a workspace a week old is a
    week of waste, not a month's."""
    if data_start is not None and pd.Timestamp(data_start) > pd.Timestamp(start):
        start = pd.Timestamp(data_start).to_pydatetime()
    return window_hours(start, end)


def monthly(usd: float, hours: float) -> float:
    """$ in a window of `hours` as $ per average month (730 hours)."""
    return usd * MONTH_HOURS / hours


def monthly_method(hours: float) -> str:
    return f"× 730 h / {hours:,.0f} h of data in the range (an average month)"


# ---- prices from the ledger --------------------------------------------------------------------------


def ledger_prices(ledger: pd.DataFrame, book: Any = None) -> pd.DataFrame:
    """Effective $ per token per deployment, from the ledger's priced rows: Resource, Deployment, Model,
    Version, Sku, Region, In, Ca, Out, Emb. A meter the ledger has no row of (no cached token was ever
    billed there, say) comes from the price book's public `lookup` when one is given; cached input falls
    back to the input price, as the ledger prices it."""
    cols = ["Resource", "Deployment", "Model", "Version", "Sku", "Region", "In", "Ca", "Out", "Emb"]
    if ledger is None or ledger.empty:
        return pd.DataFrame(columns=cols)
    led = ledger[ledger["Priced"].astype(bool) & (ledger["Unit"] == "tokens") & (ledger["Quantity"] > 0)]
    if led.empty:
        return pd.DataFrame(columns=cols)
    sums = led.groupby([*KEY, "Meter"], sort=True)[["EffectiveCost", "Quantity"]].sum()
    rate = (sums["EffectiveCost"] / sums["Quantity"]).unstack("Meter")
    rate = rate.reindex(columns=[METER_INPUT, METER_CACHED, METER_OUTPUT, METER_EMBEDDINGS])
    rate.columns = ["In", "Ca", "Out", "Emb"]
    info = led.groupby(KEY, sort=True)[["Model", "Version", "Sku", "Region"]].first()
    out = info.join(rate).reset_index()
    if book is not None:
        for i, r in out.iterrows():
            if (pd.notna(r["Ca"]) and pd.notna(r["Out"])) or pd.isna(r["In"]) or r["In"] <= 0:
                continue  # complete, an embedding deployment, or provisioned (tokens cost $0)
            p = book.lookup(str(r["Model"]), str(r["Version"]) or None, str(r["Sku"]), str(r["Region"]))
            if p is None or p.ptu_per_hour is not None:
                continue
            if pd.isna(r["Ca"]) and p.cached_input_per_1m is not None:
                out.at[i, "Ca"] = p.cached_input_per_1m / 1e6
            if pd.isna(r["Out"]) and p.output_per_1m is not None:
                out.at[i, "Out"] = p.output_per_1m / 1e6
    out["Ca"] = out["Ca"].fillna(out["In"])
    return out[cols]


def _token_usd(frame: pd.DataFrame, prices: pd.DataFrame, prefix: str = "") -> pd.Series:
    """Cost of PromptTokens (of which CachedTokens) and CompletionTokens at per-token rates In/Ca/Out."""
    prompt = frame["PromptTokens"].astype("float64")
    cached = np.minimum(frame["CachedTokens"].astype("float64"), prompt)
    return (
        (prompt - cached) * prices[prefix + "In"]
        + cached * prices[prefix + "Ca"]
        + frame["CompletionTokens"].astype("float64") * prices[prefix + "Out"]
    )


def _sum(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce")
    if v.empty:
        return 0.0
    return float(v.sum()) if v.notna().all() else float("nan")


def _hour(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


def _norm_callers(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["Resource"] = out["Resource"].fillna("").astype(str).str.lower()
    out["ObjectId"] = out["ObjectId"].fillna("").astype(str).str.lower()
    out["CallerIP"] = out["CallerIP"].fillna("").astype(str)
    out["Deployment"] = out["Deployment"].fillna("").astype(str)
    return out


# ---- the findings as pure functions ------------------------------------------------------------------


def streams_without_usage(frame: pd.DataFrame, ledger: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """frame: `waste_streams_without_usage`; ledger: the window's ledger rows. Evidence per caller and
    deployment: Hours, StreamedNoUsage, USD; and the window's $."""
    cols = ["Deployment", "ObjectId", "CallerIP", "Hours", "StreamedNoUsage", "USD"]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols), 0.0
    f = _norm_callers(frame)
    f["Hour"] = _hour(f["TimeGenerated"])
    gap = f.groupby(["Hour", *KEY])["OtherNoUsage"].transform("sum") > 0
    f = f[~gap & (f["StreamedNoUsage"] > 0)]
    if f.empty:
        return pd.DataFrame(columns=cols), 0.0
    led = ledger[(ledger["Method"] == "bytes") & (ledger["Unit"] == "tokens")] if not ledger.empty else ledger
    if led.empty:
        cost = pd.DataFrame(
            {"Hour": pd.Series(dtype="datetime64[ns, UTC]"), **{c: pd.Series(dtype=object) for c in CALLER}}
        ).assign(BytesCost=pd.Series(dtype="float64"))
    else:
        led = _norm_callers(led)
        led["Hour"] = _hour(led["Hour"])
        cost = led.groupby(["Hour", *CALLER], as_index=False).agg(BytesCost=("EffectiveCost", lambda s: _sum(s)))
    f = f.merge(cost, on=["Hour", *CALLER], how="left")
    f["USD"] = f["BytesCost"].fillna(0.0)  # no bytes rows: the metrics had nothing to fill them with
    out = f.groupby(["Deployment", "ObjectId", "CallerIP"], as_index=False, sort=True).agg(
        Hours=("Hour", "nunique"), StreamedNoUsage=("StreamedNoUsage", "sum"), USD=("USD", lambda s: _sum(s))
    )
    return out.sort_values("USD", ascending=False, kind="stable").reset_index(drop=True)[cols], _sum(f["USD"])


def completion_cap(frame: pd.DataFrame, prices: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """frame: `waste_completion_cap`; prices: `ledger_prices`. Evidence per caller, deployment and cap."""
    cols = ["Deployment", "Model", "ObjectId", "CallerIP", "CapTokens", "AtCap", "Calls", "AtCapShare", "USD"]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols), 0.0
    f = _norm_callers(frame).merge(prices[[*KEY, "In", "Ca", "Out"]], on=KEY, how="left")
    f["USD"] = _token_usd(f, f)
    out = f.sort_values("USD", ascending=False, kind="stable").reset_index(drop=True)
    return out[cols], _sum(out["USD"])


def mini_of(model: str) -> str | None:
    """The same family's mini model, or None when `model` is already small or an embedding model."""
    m = (model or "").strip().lower()
    if not m or "mini" in m or "nano" in m or "embedding" in m:
        return None
    return f"{m}-mini"


def short_calls(frame: pd.DataFrame, prices: pd.DataFrame, book: Any) -> tuple[pd.DataFrame, float, list[str]]:
    """frame: `waste_short_calls`; prices: `ledger_prices`; book: a PriceBook (its public `lookup`).
    Evidence per caller and deployment: the short calls' $ at the large model and at its mini."""
    cols = ["Deployment", "Model", "Mini", "ObjectId", "CallerIP", "ShortCalls", "Calls", "USDLarge", "USDMini", "USD"]
    notes: list[str] = []
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols), 0.0, notes
    f = _norm_callers(frame).merge(prices[[*KEY, "Sku", "Region", "In", "Ca", "Out"]], on=KEY, how="left")
    f["Mini"] = f["Model"].map(mini_of)
    f = f[f["Mini"].notna()]
    minis: dict[tuple[str, str, str], tuple[float, float, float] | None] = {}
    rows = []
    for r in f.itertuples(index=False):
        if not (pd.notna(r.In) and r.In > 0):
            if pd.notna(r.In):
                notes.append(f"{r.Deployment}: provisioned (PTU-hours, not tokens): no per-token saving")
            continue
        key = (str(r.Mini), str(r.Sku), str(r.Region))
        if key not in minis:
            p = book.lookup(key[0], None, key[1], key[2]) if book is not None else None
            if p is None or p.input_per_1m is None or p.output_per_1m is None:
                minis[key] = None
                notes.append(f"{r.Deployment}: no price for {key[0]} ({key[1]}, {key[2]}): not priced")
            else:
                ca = p.cached_input_per_1m if p.cached_input_per_1m is not None else p.input_per_1m
                minis[key] = (p.input_per_1m / 1e6, ca / 1e6, p.output_per_1m / 1e6)
        mini = minis[key]
        if mini is None:
            continue
        rows.append({**r._asdict(), "MIn": mini[0], "MCa": mini[1], "MOut": mini[2]})
    if not rows:
        return pd.DataFrame(columns=cols), 0.0, sorted(set(notes))
    g = pd.DataFrame(rows)
    g["USDLarge"] = _token_usd(g, g)
    g["USDMini"] = _token_usd(g, g, prefix="M")
    g["USD"] = (g["USDLarge"] - g["USDMini"]).clip(lower=0.0)
    g = g.sort_values("USD", ascending=False, kind="stable").reset_index(drop=True)
    return g[cols], _sum(g["USD"]), sorted(set(notes))


def ptu_idle(ledger: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """Per provisioned deployment: PtuHours, IdlePtuHours, IdleShare, USD (the idle cost), from the ledger."""
    cols = ["Deployment", "Sku", "PtuHours", "IdlePtuHours", "IdleShare", "USD"]
    if ledger is None or ledger.empty:
        return pd.DataFrame(columns=cols), 0.0
    ptu = ledger[ledger["Meter"] == METER_PTU]
    if ptu.empty:
        return pd.DataFrame(columns=cols), 0.0
    idle = ptu["Category"] == PTU_IDLE
    g = ptu.assign(Idle=ptu["Quantity"].where(idle, 0.0), IdleCost=ptu["EffectiveCost"].where(idle, 0.0))
    out = g.groupby(["Deployment", "Sku"], as_index=False, sort=True).agg(
        PtuHours=("Quantity", "sum"), IdlePtuHours=("Idle", "sum"), USD=("IdleCost", "sum")
    )
    out["IdleShare"] = out["IdlePtuHours"] / out["PtuHours"].where(out["PtuHours"] > 0, np.nan)
    out = out[out["IdlePtuHours"] > 0].sort_values("USD", ascending=False, kind="stable").reset_index(drop=True)
    return out[cols], float(out["USD"].sum())


def cache_by_deployment(frame: pd.DataFrame) -> pd.DataFrame:
    """`prompt_cache_by_caller` summed per deployment: Resource, Deployment, Model, Calls, PromptTokens,
    CachedTokens, HitRate, EligiblePromptTokens, EligibleCachedTokens, EligibleHitRate."""
    cols = [
        "Resource",
        "Deployment",
        "Model",
        "Calls",
        "PromptTokens",
        "CachedTokens",
        "HitRate",
        "EligiblePromptTokens",
        "EligibleCachedTokens",
        "EligibleHitRate",
    ]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols)
    f = frame.copy()
    f["Resource"] = f["Resource"].fillna("").astype(str).str.lower()
    nums = ["Calls", "PromptTokens", "CachedTokens", "EligiblePromptTokens", "EligibleCachedTokens"]
    for c in nums:
        f[c] = pd.to_numeric(f[c], errors="coerce").fillna(0).astype("float64")
    g = f.groupby([*KEY, "Model"], as_index=False, sort=True)[nums].sum()
    g["HitRate"] = g["CachedTokens"] / g["PromptTokens"].where(g["PromptTokens"] > 0, np.nan)
    g["EligibleHitRate"] = g["EligibleCachedTokens"] / g["EligiblePromptTokens"].where(
        g["EligiblePromptTokens"] > 0, np.nan
    )
    return g[cols]


def prompt_cache(frame: pd.DataFrame, prices: pd.DataFrame, target: float = CACHE_TARGET) -> tuple[pd.DataFrame, float]:
    """Per deployment: the hit rate (cached ÷ prompt tokens), the cacheable prompts' hit rate, and the $
    that reaching `target` on the cacheable prompts would save at the ledger's input − cached price."""
    cols = [
        "Deployment",
        "Model",
        "PromptTokens",
        "CachedTokens",
        "HitRate",
        "EligiblePromptTokens",
        "EligibleHitRate",
        "MissedTokens",
        "USD",
    ]
    d = cache_by_deployment(frame)
    if d.empty:
        return pd.DataFrame(columns=cols), 0.0
    d = d.merge(prices[[*KEY, "In", "Ca"]], on=KEY, how="left")
    d["MissedTokens"] = (target * d["EligiblePromptTokens"] - d["EligibleCachedTokens"]).clip(lower=0.0)
    d["USD"] = d["MissedTokens"] * (d["In"] - d["Ca"]).clip(lower=0.0)
    d.loc[d["MissedTokens"] <= 0, "USD"] = 0.0
    d = d.sort_values(["USD", "PromptTokens"], ascending=False, kind="stable").reset_index(drop=True)
    return d[cols], _sum(d["USD"])


def embedding_spikes(
    ledger: pd.DataFrame, factor: float = SPIKE_FACTOR, min_tokens: float = SPIKE_MIN_TOKENS
) -> tuple[pd.DataFrame, float]:
    """Embedding hours of one caller far above its usual for that hour of day (the median over the window's
    days, hours without traffic counted as 0): Tokens > factor × Usual and Tokens − Usual ≥ min_tokens.
    $: the hour's ledger embedding cost × (Tokens − Usual) / Tokens."""
    cols = ["Deployment", "ObjectId", "CallerIP", "Hour", "Tokens", "UsualTokens", "ExcessTokens", "USD"]
    if ledger is None or ledger.empty:
        return pd.DataFrame(columns=cols), 0.0
    emb = ledger[(ledger["Meter"] == METER_EMBEDDINGS) & ledger["Priced"].astype(bool) & ~ledger["IsProbe"]]
    if emb.empty:
        return pd.DataFrame(columns=cols), 0.0
    emb = _norm_callers(emb)
    emb["Hour"] = _hour(emb["Hour"])
    h = emb.groupby([*CALLER, "Hour"], as_index=False, sort=True).agg(
        Tokens=("Quantity", "sum"), Cost=("EffectiveCost", "sum")
    )
    first, last = h["Hour"].min().floor("D"), h["Hour"].max().floor("D")
    days = max(1, int((last - first) / pd.Timedelta(days=1)) + 1)
    parts = []
    for _, g in h.groupby(CALLER, sort=True):
        hod = g["Hour"].dt.hour
        usual = {}
        for hour, s in g.groupby(hod)["Tokens"]:
            vals = np.concatenate([s.to_numpy(dtype="float64"), np.zeros(max(0, days - len(s)))])
            usual[hour] = float(np.median(vals))
        u = hod.map(usual).astype("float64")
        hit = (g["Tokens"] > factor * u) & (g["Tokens"] - u >= min_tokens)
        if hit.any():
            parts.append(g[hit].assign(UsualTokens=u[hit]))
    if not parts:
        return pd.DataFrame(columns=cols), 0.0
    out = pd.concat(parts, ignore_index=True)
    out["ExcessTokens"] = out["Tokens"] - out["UsualTokens"]
    out["USD"] = out["Cost"] * out["ExcessTokens"] / out["Tokens"]
    out = out.sort_values("Hour", kind="stable").reset_index(drop=True)
    return out[cols], _sum(out["USD"])


# ---- the report through a Lens -------------------------------------------------------------------------

TITLES = {
    "streams_without_usage": "Streams without include_usage (no usage rows)",
    "completion_cap": "Responses cut at the token limit",
    "short_calls": "A large model on short calls (its mini would do)",
    "ptu_idle": "Idle PTU hours",
    "prompt_cache": "Prompt cache misses",
    "embedding_spikes": "Embedding re-index spikes",
}
WHAT = {
    "streams_without_usage": "Successful streamed calls with no usage row: the client streams without "
    "stream_options.include_usage, so it never sees what a call cost, and the ledger can only share the "
    "metrics' tokens among those calls by their bytes.",
    "completion_cap": "Many of one caller's responses end at exactly the same length: the max_tokens "
    "(max_completion_tokens) cap. A cut answer is usually retried or thrown away; its tokens bought nothing.",
    "short_calls": "Calls with short prompts and short answers on a large model; the same family's mini "
    "model answers such calls for a fraction of the price.",
    "ptu_idle": "Provisioned throughput paid by the hour whether used or not: the unused share of each hour.",
    "prompt_cache": "Cached ÷ prompt tokens per deployment. Prompts of 1,024 tokens or more can hit the "
    "prompt cache when they start with the same prefix; a low hit rate on long prompts pays full input price.",
    "embedding_spikes": "Hours where one caller's embedding tokens ran far above its usual for that hour of "
    "day: a re-index, often of documents that had not changed.",
}
WHAT_TO_DO = {  # per finding: what a person does about it
    "streams_without_usage": "Send stream_options={'include_usage': true} on streamed chat calls (api-version "
    "2024-09-01-preview or later, GA 2024-10-21) and read the final chunk's usage.",
    "completion_cap": "Raise max_tokens for this caller, or ask for shorter answers in the prompt; check "
    "whether cut answers are retried.",
    "short_calls": "Route these calls to a mini deployment (or try it on a sample and compare answers).",
    "ptu_idle": "Lower the PTU count, move steady traffic onto it (spillover), or move it to Global Standard.",
    "prompt_cache": "Put the fixed part of the prompt (system prompt, tools, examples) first and the "
    "changing part last, and keep it byte-identical between calls.",
    "embedding_spikes": "Re-embed only changed documents (hash the text, keep the vectors), and schedule "
    "full re-indexes on purpose.",
}


def _method(key: str, hours: float, target: float) -> str:
    base = {
        "streams_without_usage": "the ledger's cost shared by bytes (metric tokens with no usage row) for "
        "that caller and hour",
        "completion_cap": "the capped calls' prompt, cached and generated tokens × the deployment's effective "
        "prices in the ledger",
        "short_calls": "the short calls' tokens × (the ledger's price of the model − the price book's price of "
        "its mini, same deployment type and region)",
        "ptu_idle": "the ledger's ptu idle rows (PTU-hours × price, unused share of each hour)",
        "prompt_cache": f"(a {target:.0%} hit rate × cacheable prompt tokens − cached tokens) × (input − "
        "cached input price in the ledger; the price book's cached price where the ledger billed none)",
        "embedding_spikes": "the ledger's embedding cost of the hour × the tokens above the caller's usual for "
        "that hour of day ÷ the hour's tokens",
    }[key]
    return f"{base}; {monthly_method(hours)}"


def first_hour(alloc: Any) -> datetime | None:
    """The first hour the allocation's ledger (the view's) has any row."""
    ledger = getattr(alloc, "ledger", None)
    if ledger is None or ledger.empty or "Hour" not in ledger.columns:
        return None
    first = pd.to_datetime(ledger["Hour"], utc=True).min()
    return None if pd.isna(first) else first.to_pydatetime()


def _names(frame: pd.DataFrame, rules: Any, probe_object_id: str | None, lens: Any = None) -> pd.DataFrame:
    """ObjectId / CallerIP → a Caller name (and Feature) for people: the directory's name (Graph), else
    the attribution rule's, else a short id; the ids stay in the CSV."""
    if frame.empty or "ObjectId" not in frame.columns:
        return frame
    try:
        directory = lens.caller_names(frame) if lens is not None else None
    except Exception:  # names are a courtesy: the rule's name, else the id
        directory = None
    named = describe_callers(frame, rules, directory)
    named["Caller"] = [
        caller_label(str(n), str(o), str(ip), probe_object_id)
        for n, o, ip in zip(named["Caller"], named["ObjectId"], named["CallerIP"], strict=True)
    ]
    return named


def _no_probes(frame: pd.DataFrame, probe_object_id: str | None) -> pd.DataFrame:
    if frame is None or frame.empty or not probe_object_id or "ObjectId" not in frame.columns:
        return frame
    return frame[frame["ObjectId"].fillna("").astype(str).str.lower() != probe_object_id.lower()]


def report(
    lens: LensLike,
    start: datetime,
    end: datetime,
    *,
    allocation: Callable[..., Any] | None = None,
    book: Any = None,
    cache_target: float = CACHE_TARGET,
) -> WasteReport:
    """Every finding over [start, end) for the view's scope. `allocation` (default
    `queries.cost.service.allocation`, shared by every page) gives the ledger; `book` (default: the
    settings' price book) the mini models' prices."""
    from queries.cost import service

    alloc_fn = allocation or service.allocation
    settings = lens.settings
    probe = settings.probe_object_id
    if book is None:
        from queries.cost.prices import PriceBook

        book = PriceBook.load(settings)
    try:
        alloc: Any = alloc_fn(lens, start, end)  # the shared allocation (narrowed to the view's scope)
        no_ledger = None
    except Exception as e:  # every $ comes from the ledger: the findings still list what they found
        alloc, no_ledger = None, f"no $: the cost ledger could not be read ({type(e).__name__}: {e})"
    ledger = alloc.ledger if alloc is not None and alloc.ledger is not None else pd.DataFrame()
    ledger = ledger[~ledger["IsProbe"].astype(bool)] if not ledger.empty else ledger
    prices = ledger_prices(ledger, book)
    results = dict(zip(QUERIES, lens.run_many([(q, {"start": start, "end": end}) for q in QUERIES]), strict=True))
    try:
        _spec, _tr, ledger_kql = lens.render(LEDGER_QUERY, start=start, end=end, bin=timedelta(hours=1))
    except Exception:  # the KQL is shown as a courtesy
        ledger_kql = ""
    first = first_hour(alloc)
    hours = covered_hours(start, end, first)
    rules = settings.attribution
    scoped = not lens.scope.is_everything

    def frame_of(q: str) -> pd.DataFrame:
        r = results[q]
        return _no_probes(r.frame, probe) if r.status != "failed" else pd.DataFrame()

    def make(
        key: str, evidence: pd.DataFrame, usd: float, kql: str, result: QueryResult | None, notes: list[str]
    ) -> Finding:
        if result is not None and result.status == "failed":
            notes = [f"{result.name} failed: {result.notice}", *notes]
            usd = float("nan")
        if no_ledger:
            notes = [no_ledger, *notes]
            usd = float("nan")
        return Finding(
            key=key,
            title=TITLES[key],
            what=WHAT[key],
            evidence=_names(evidence, rules, probe, lens),
            usd=usd,
            usd_per_month=monthly(usd, hours),
            method=_method(key, hours, cache_target),
            kql=kql,
            todo=WHAT_TO_DO[key],
            result=result,
            notes=tuple(notes),
        )

    out = WasteReport(start, end, data_start=first)
    r = results["waste_streams_without_usage"]
    ev, usd = streams_without_usage(frame_of("waste_streams_without_usage"), ledger)
    out.findings.append(make("streams_without_usage", ev, usd, r.kql, r, []))
    r = results["waste_completion_cap"]
    ev, usd = completion_cap(frame_of("waste_completion_cap"), prices)
    out.findings.append(make("completion_cap", ev, usd, r.kql, r, []))
    r = results["waste_short_calls"]
    ev, usd, notes = short_calls(frame_of("waste_short_calls"), prices, book)
    out.findings.append(make("short_calls", ev, usd, r.kql, r, notes))
    ev, usd = ptu_idle(ledger)
    notes = ["provisioned capacity is shared by every team: not shown to a team-scoped view"] if scoped else []
    out.findings.append(make("ptu_idle", ev, usd, ledger_kql, None, notes))
    r = results["prompt_cache_by_caller"]
    ev, usd = prompt_cache(frame_of("prompt_cache_by_caller"), prices, cache_target)
    out.findings.append(make("prompt_cache", ev, usd, r.kql, r, []))
    ev, usd = embedding_spikes(ledger)
    out.findings.append(make("embedding_spikes", ev, usd, ledger_kql, None, []))
    return out
