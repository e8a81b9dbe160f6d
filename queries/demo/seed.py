"""The workload simulator: a realistic period of Azure OpenAI telemetry in Log Analytics' shapes.

It writes a DuckDB file holding `AzureDiagnostics` (RequestResponse and AzureOpenAIRequestUsage rows),
`AzureMetrics` (per resource per minute, no dimensions, as diagnostic settings export it), and the
stores behind the embedded metrics API (`MetricsApi`, one row per minute and dimension combination)
and management plane (`MgmtDeployments`, `MgmtUsages`, ARM JSON bodies).

Generation is vectorised with numpy, one day at a time; the text columns (JSON, GUIDs, ids) are built
by DuckDB from small dimension tables, which is what makes a million requests take seconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from queries import schemas
from queries.demo import estate, world
from queries.sources.embedded import append_log

STATUS_OK, STATUS_FILTER, STATUS_THROTTLED = 200, 400, 429
BACKGROUND_5XX = 0.0005  # share of calls the service fails outside any incident


@dataclass(frozen=True)
class Stream:
    """One caller's traffic: a feature, an unknown caller or the probes."""

    object_id: str
    ip_prefix: str
    deployments: tuple[str, ...]
    share: float
    prompt: tuple[float, float]
    completion: tuple[float, float]
    cached_share: float
    streaming: float
    rhythm: str
    bursts: tuple[int, ...]
    content_filter: float = 0.0
    probe: bool = False


def _streams() -> list[Stream]:
    out = [
        Stream(
            f.object_id,
            f.ip_prefix,
            f.deployments,
            f.share,
            f.prompt_tokens,
            f.completion_tokens,
            f.cached_share,
            f.streaming,
            f.rhythm,
            f.bursts,
            content_filter=0.006 if f.name in ("support-chat", "marketing-copy") else 0.0,
        )
        for f in world.FEATURES
    ]
    for oid, ip, deps, share in world.UNKNOWN_CALLERS:
        out.append(Stream(oid, ip, deps, share, (500, 0.6), (150, 0.6), 0.0, 0.0, "office", ()))
    return out


def _rhythm(kind: str, hours: np.ndarray) -> np.ndarray:
    """Relative traffic per hour: office hours on weekdays, nightly jobs, or flat."""
    ts = pd.DatetimeIndex(hours.astype("datetime64[h]"))
    hod = ts.hour.to_numpy()
    dow = ts.day_of_week.to_numpy()
    weekend = dow >= 5
    if kind == "office":
        daily = 0.15 + np.exp(-0.5 * ((hod - 14.0) / 3.2) ** 2)
        return daily * np.where(weekend, 0.3, 1.0)
    if kind == "nightly":
        daily = 0.05 + np.exp(-0.5 * ((hod - 2.0) / 1.3) ** 2)
        return daily * np.where(weekend, 0.6, 1.0)
    return np.ones(len(hours))


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


class Seeder:
    def __init__(self, *, days: int, requests_per_day: int, seed: int, end: datetime | None = None) -> None:
        self.days = days
        self.rpd = requests_per_day
        self.seed = seed
        end = end or datetime.now(UTC)
        self.end = (
            end.replace(second=0, microsecond=0, tzinfo=None) if end.tzinfo else end.replace(second=0, microsecond=0)
        )
        if end.tzinfo:
            self.end = end.astimezone(UTC).replace(tzinfo=None, second=0, microsecond=0)
        self.start = self.end - timedelta(days=days)
        self.streams = _streams()
        self.deployments = list(world.DEPLOYMENTS)
        self.dep_index = {d.name: i for i, d in enumerate(self.deployments)}

    # ---- dimension tables ------------------------------------------------------------------
    def _dimensions(self, con: duckdb.DuckDBPyConnection) -> None:
        deps = pd.DataFrame(
            {
                "dep": range(len(self.deployments)),
                "dep_name": [d.name for d in self.deployments],
                "model": [d.model for d in self.deployments],
                "version": [d.version for d in self.deployments],
                "res_upper": [world.resource(d.resource).resource_id for d in self.deployments],
                "res_lower": [world.resource(d.resource).resource_id.lower() for d in self.deployments],
                "res_name": [d.resource.upper() for d in self.deployments],
                "res_arm": [world.resource(d.resource).arm_id for d in self.deployments],
                "location": [world.resource(d.resource).location for d in self.deployments],
            }
        )
        callers = pd.DataFrame(
            {
                "caller": range(len(self.streams) + 1),
                "object_id": [s.object_id for s in self.streams] + [world.PROBE_OBJECT_ID],
                "ip": [s.ip_prefix + ".***" for s in self.streams] + ["10.99.0.***"],
            }
        )
        ops = pd.DataFrame({"op": [0, 1], "op_name": ["ChatCompletions_Create", "embeddings_create"]})
        apis = pd.DataFrame({"api": range(len(world.API_VERSIONS)), "api_version": list(world.API_VERSIONS)})
        con.register("dim_dep", deps)
        con.register("dim_caller", callers)
        con.register("dim_op", ops)
        con.register("dim_api", apis)
        con.execute("CREATE OR REPLACE TEMP TABLE d_dep AS SELECT * FROM dim_dep")
        con.execute("CREATE OR REPLACE TEMP TABLE d_caller AS SELECT * FROM dim_caller")
        con.execute("CREATE OR REPLACE TEMP TABLE d_op AS SELECT * FROM dim_op")
        con.execute("CREATE OR REPLACE TEMP TABLE d_api AS SELECT * FROM dim_api")

    # ---- one day of requests -----------------------------------------------------------------
    def _day(self, day: int) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, day])
        day_start = self.start + timedelta(days=day)
        day_end = min(day_start + timedelta(days=1), self.end)
        hours = np.arange(np.datetime64(day_start, "h"), np.datetime64(day_end, "h") + 1)
        hours = hours[(hours >= np.datetime64(day_start, "h"))]
        total_hours = self.days * 24
        frames: list[dict[str, np.ndarray]] = []
        for caller, s in enumerate(self.streams):
            weights = _rhythm(s.rhythm, hours)
            # mean weight of the rhythm over a week, so shares hold whatever the period
            week = np.arange(np.datetime64("2024-01-01T00", "h"), np.datetime64("2024-01-08T00", "h"))
            norm = _rhythm(s.rhythm, week).mean()
            pos = (hours - np.datetime64(self.start, "h")).astype(np.int64) / max(total_hours, 1)
            growth = 0.85 + 0.3 * pos  # traffic grows over the period
            lam = self.rpd / 24.0 * s.share * weights / norm * growth
            counts = rng.poisson(lam)
            n = int(counts.sum())
            base = np.repeat(hours.astype("datetime64[ms]").astype(np.int64), counts)
            t = base + rng.integers(0, 3_600_000, n)
            # bursts: a campaign or a re-index pushes far past the deployment's limits for ~12 minutes
            days_before = (self.end - day_start).total_seconds() / 86400.0
            extra = []
            for b in s.bursts:
                if days_before - 1 < b <= days_before:
                    hour = 2 if s.rhythm == "nightly" else 14
                    when = day_start.replace(hour=hour, minute=10, second=0, microsecond=0)
                    if when < day_start:
                        when += timedelta(days=1)
                    bstart = np.datetime64(when, "ms").astype(np.int64)
                    if bstart < np.datetime64(self.end, "ms").astype(np.int64):
                        m = self._burst_size(s)
                        extra.append(bstart + rng.integers(0, 12 * 60_000, m))
            if extra:
                t = np.concatenate([t, *extra])
                n = len(t)
            dep_names = s.deployments
            probs = (
                np.array([0.8] + [0.2 / (len(dep_names) - 1)] * (len(dep_names) - 1))
                if len(dep_names) > 1
                else np.array([1.0])
            )
            dep = np.array([self.dep_index[d] for d in dep_names])[rng.choice(len(dep_names), n, p=probs)]
            frames.append(self._requests(rng, s, caller, t, dep))
        frames.append(self._probes(rng, day_start, day_end))
        frames.extend(self._planted_429_bursts(day))
        cols = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
        df = pd.DataFrame(cols)
        df = df[
            (df.t >= np.datetime64(day_start, "ms").astype(np.int64))
            & (df.t < np.datetime64(day_end, "ms").astype(np.int64))
        ]
        df = self._quiet(df)
        df = df.sort_values(["t", "caller"], kind="stable").reset_index(drop=True)
        self._limits(df)
        self._incident(rng, df)
        self._background_errors(day, df)
        turned_away = self._turned_away(df)
        self._finish(rng, df)
        df["spill"] = False
        df = self._append(df, self._eval_suite(day, day_start, day_end), [self.seed, day, 31])
        df = self._append(df, self._spilled(df, turned_away), [self.seed, day, 32])
        df["no_usage"] = False
        df = self._planted_waste(day, df, day_start, day_end)
        df["spill"] = df["spill"].astype("boolean").fillna(False).astype(bool)  # the planted calls never spill
        return df

    def _burst_size(self, s: Stream) -> int:
        """Requests in a 12-minute burst: half again what the primary deployment admits per minute."""
        d = self.deployments[self.dep_index[s.deployments[0]]]
        mean_tokens = s.prompt[0] * np.exp(s.prompt[1] ** 2 / 2) + s.completion[0] * np.exp(s.completion[1] ** 2 / 2)
        per_minute = min(d.tpm_limit / max(mean_tokens, 1.0), d.rpm_limit)
        return int(1.5 * per_minute * 12)

    def _requests(
        self, rng: np.random.Generator, s: Stream, caller: int, t: np.ndarray, dep: np.ndarray
    ) -> dict[str, np.ndarray]:
        n = len(t)
        emb = np.array([self.deployments[i].kind == "embedding" for i in range(len(self.deployments))])[dep]
        prompt = np.maximum(1, rng.lognormal(np.log(s.prompt[0]), s.prompt[1], n)).astype(np.int64)
        if s.completion[0] > 0:
            completion = np.maximum(1, rng.lognormal(np.log(s.completion[0]), s.completion[1], n)).astype(np.int64)
        else:
            completion = np.zeros(n, dtype=np.int64)
        completion[emb] = 0
        cached = np.zeros(n, dtype=np.int64)
        if s.cached_share > 0:
            c = (prompt * s.cached_share * rng.uniform(0.4, 1.6, n)).astype(np.int64) // 128 * 128
            cached = np.where(prompt >= 1024, np.minimum(c, prompt - 128), 0).clip(0)
        stream = (rng.random(n) < s.streaming) & ~emb
        status = np.full(n, STATUS_OK, dtype=np.int64)
        if s.content_filter:
            status[rng.random(n) < s.content_filter] = STATUS_FILTER
        return {
            "t": t.astype(np.int64),
            "caller": np.full(n, caller, dtype=np.int64),
            "dep": dep.astype(np.int64),
            "prompt": prompt,
            "cached": cached,
            "completion": completion,
            "stream": stream,
            "status": status,
            "api": rng.choice(len(world.API_VERSIONS), n).astype(np.int64),
        }

    def _probes(self, rng: np.random.Generator, day_start: datetime, day_end: datetime) -> dict[str, np.ndarray]:
        """Historical probe traffic: four small calls every five minutes, tagged by their identity."""
        targets = ["chat-gpt4o", "chat-gpt4o-mini", "rag-gpt41", "embed-small"]
        slots = np.arange(np.datetime64(day_start, "ms"), np.datetime64(day_end, "ms"), np.timedelta64(5, "m")).astype(
            np.int64
        )
        t = np.concatenate([slots + 1000 * i for i in range(len(targets))])
        dep = np.concatenate([np.full(len(slots), self.dep_index[d]) for d in targets])
        n = len(t)
        emb = np.array([self.deployments[i].kind == "embedding" for i in range(len(self.deployments))])[dep]
        return {
            "t": t,
            "caller": np.full(n, len(self.streams), dtype=np.int64),
            "dep": dep.astype(np.int64),
            "prompt": rng.integers(18, 24, n).astype(np.int64),
            "cached": np.zeros(n, dtype=np.int64),
            "completion": np.where(emb, 0, rng.integers(4, 9, n)).astype(np.int64),
            "stream": ~emb,
            "status": np.full(n, STATUS_OK, dtype=np.int64),
            "api": np.zeros(n, dtype=np.int64),
        }

    def _quiet(self, df: pd.DataFrame) -> pd.DataFrame:
        """Deployments that did not exist yet send their traffic where it went before; quiet ones get none."""
        for d in self.deployments:
            if d.created_days_ago is not None and d.replaces:
                born = np.datetime64(self.end - timedelta(days=d.created_days_ago), "ms").astype(np.int64)
                before = ((df.dep == self.dep_index[d.name]) & (df.t < born)).to_numpy()
                dep = df.dep.to_numpy().copy()
                dep[before] = self.dep_index[d.replaces]
                df = df.assign(dep=dep)
        for d in self.deployments:
            if d.quiet_after_days is not None:
                cut = np.datetime64(self.end - timedelta(days=d.quiet_after_days), "ms").astype(np.int64)
                df = df[~((df.dep == self.dep_index[d.name]) & (df.t >= cut))]
        return df

    def _limits(self, df: pd.DataFrame) -> None:
        """429 whatever runs over the deployment's limits, first come first served: tokens per minute;
        requests per 10-second window (RPM / 6: Azure enforces RPM over short windows, not per minute);
        on provisioned deployments, utilisation instead of tokens: a call is admitted while the minute's
        load (prompt - cached + 4 x completion, as the utilisation metric counts it) is under 100%."""
        tpm = np.array([d.tpm_limit for d in self.deployments])
        per_10s = np.array([max(1, d.rpm_limit // 6) for d in self.deployments])
        batch = np.array([d.sku.endswith("Batch") for d in self.deployments])
        ptu = np.array([d.sku.endswith("ProvisionedManaged") for d in self.deployments])
        t = df.t.to_numpy()
        dep = df.dep.to_numpy()
        est = (df.prompt + df.completion).to_numpy()  # Azure estimates with prompt + max_tokens
        load = (df.prompt - df.cached + 4 * df.completion).to_numpy()
        by_minute = [pd.Series(dep), pd.Series(t // 60_000)]
        used_tokens = pd.Series(est).groupby(by_minute, sort=False).cumsum().to_numpy()
        load_before = pd.Series(load).groupby(by_minute, sort=False).cumsum().to_numpy() - load
        used_requests = pd.Series(dep).groupby([pd.Series(dep), pd.Series(t // 10_000)], sort=False).cumcount()
        over_requests = used_requests.to_numpy() + 1 > per_10s[dep]
        over = np.where(ptu[dep], load_before >= tpm[dep], used_tokens > tpm[dep]) | over_requests
        over &= ~batch[dep]
        status = df.status.to_numpy().copy()
        status[over & (status == STATUS_OK)] = STATUS_THROTTLED
        df["status"] = status

    # ---- planted 429 bursts: one of each kind the 429 explainer tells apart ------------------------
    # (the TPM kind needs no planting: the marketing-copy and doc-indexer bursts run over TPM)
    RPM_BURST_HOURS_BEFORE_END = 6  # ticket-triage floods chat-gpt4o-mini with small calls for 20 s
    PTU_BURST_HOURS_BEFORE_END = 10  # support-chat saturates the provisioned deployment for 10 min

    def _planted_429_bursts(self, day: int) -> list[dict[str, np.ndarray]]:
        """Requests of the planted bursts (the day filter keeps those that fall on this day)."""
        rng = np.random.default_rng([self.seed, day, 429])
        names = [f.name for f in world.FEATURES]
        out = []
        # RPM: 600 tiny calls in 20 s are 300 per 10 s against chat-gpt4o-mini's 200 (1,200 RPM / 6),
        # while the minute's 600 calls and ~25K tokens stay far under 1,200 RPM and 200K TPM.
        start = np.datetime64(self.end - timedelta(hours=self.RPM_BURST_HOURS_BEFORE_END), "ms").astype(np.int64)
        triage = names.index("ticket-triage")
        small = replace(self.streams[triage], prompt=(30, 0.3), completion=(5, 0.3), content_filter=0.0)
        t = np.sort(start + rng.integers(0, 20_000, 600))
        out.append(self._requests(rng, small, triage, t, np.full(len(t), self.dep_index["chat-gpt4o-mini"])))
        # PTU: support-chat at about twice the 15 PTUs' capacity for 10 minutes
        start = np.datetime64(self.end - timedelta(hours=self.PTU_BURST_HOURS_BEFORE_END), "ms").astype(np.int64)
        support = names.index("support-chat")
        t = np.sort(start + rng.integers(0, 10 * 60_000, 340))
        s = replace(self.streams[support], content_filter=0.0)
        out.append(self._requests(rng, s, support, t, np.full(len(t), self.dep_index["support-gpt4o-ptu"])))
        return out

    # ---- added after the day's rows are finished, each with its own random stream, so they leave the rest
    # of the day's data as it was ------------------------------------------------------------------
    EVAL_HOUR = 3  # reasoning-agent's nightly evaluation suite: one call per test case, in one minute
    EVAL_CASES_AT_END = 48  # test cases on the last day of the period ...
    EVAL_CASES_PER_DAY = 1  # ... and the suite grows by one a day: agent-o4-mini's peak RPM climbs to its 60

    def _eval_suite(self, day: int, day_start: datetime, day_end: datetime) -> pd.DataFrame:
        """The planted growth: the suite's calls on this day (spread evenly over one minute, so no 10-second
        window holds more than a sixth of them)."""
        when = day_start.replace(hour=self.EVAL_HOUR, minute=0, second=0, microsecond=0)
        if when < day_start:
            when += timedelta(days=1)
        if not (day_start <= when < day_end):
            return pd.DataFrame()
        days_before_end = (self.end - when).total_seconds() / 86400.0
        cases = int(self.EVAL_CASES_AT_END - self.EVAL_CASES_PER_DAY * np.floor(days_before_end))
        if cases <= 0:
            return pd.DataFrame()
        rng = np.random.default_rng([self.seed, day, 30])
        names = [f.name for f in world.FEATURES]
        agent = names.index("reasoning-agent")
        s = replace(self.streams[agent], prompt=(300, 0.2), completion=(150, 0.3), streaming=0.0)
        start = np.datetime64(when, "ms").astype(np.int64)
        t = start + (np.arange(cases) * 60_000) // cases
        dep = np.full(cases, self.dep_index["agent-o4-mini"])
        return pd.DataFrame(self._requests(rng, s, agent, t, dep))

    def _turned_away(self, df: pd.DataFrame) -> pd.DataFrame:
        """Calls a provisioned deployment with a spillover deployment turned away (429, or 500/503), with
        the tokens they asked for: Azure sends each again to the spillover deployment."""
        spill = {self.dep_index[d.name]: self.dep_index[d.spillover] for d in self.deployments if d.spillover}
        if not spill:
            return pd.DataFrame()
        hit = df.dep.isin(list(spill)) & df.status.isin([STATUS_THROTTLED, 500, 503])
        out = df[hit].copy()
        out["target"] = out.dep.map(spill)
        return out

    def _spilled(self, df: pd.DataFrame, turned_away: pd.DataFrame) -> pd.DataFrame:
        """The spilled calls on the spillover deployment, right after the provisioned one answered (the
        provisioned deployment still logs its 429; the metrics mark the spilled call IsSpillover)."""
        if turned_away.empty:
            return pd.DataFrame()
        answered = df.loc[turned_away.index]
        return pd.DataFrame(
            {
                "t": (answered.t + answered.duration).to_numpy(np.int64),
                "caller": turned_away.caller.to_numpy(np.int64),
                "dep": turned_away.target.to_numpy(np.int64),
                "prompt": turned_away.prompt.to_numpy(np.int64),
                "cached": turned_away.cached.to_numpy(np.int64),
                "completion": turned_away.completion.to_numpy(np.int64),
                "stream": turned_away.stream.to_numpy(bool),
                "status": np.full(len(turned_away), STATUS_OK, dtype=np.int64),
                "api": turned_away.api.to_numpy(np.int64),
                "spill": np.ones(len(turned_away), dtype=bool),
            }
        )

    def _append(self, df: pd.DataFrame, extra: pd.DataFrame, seed: list[int]) -> pd.DataFrame:
        """Add finished `extra` calls to the day: their deployments' limits judge them after the calls already
        there in the same minute (those keep their answers), and their own random stream finishes them."""
        if extra.empty:
            return df
        extra = extra.copy()
        if "spill" not in extra.columns:
            extra["spill"] = False
        extra["new"] = True
        extra = extra.reset_index(drop=True)
        deps = set(extra.dep.unique())
        same = df[df.dep.isin(deps)][["t", "dep", "prompt", "cached", "completion", "status"]].assign(new=False)
        both = pd.concat([same, extra[same.columns]], ignore_index=True).sort_values("t", kind="stable")
        self._limits(both)
        extra["status"] = both.loc[len(same) + extra.index, "status"].to_numpy()
        self._finish(np.random.default_rng(seed), extra)
        extra = extra.drop(columns=["new"])
        return pd.concat([df, extra[df.columns]], ignore_index=True)

    def _incident(self, rng: np.random.Generator, df: pd.DataFrame) -> None:
        """One 5xx incident: rag-gpt41 fails for 45 minutes in the afternoon three days before the end."""
        start = np.datetime64((self.end - timedelta(days=3)).replace(hour=14, minute=20), "ms").astype(np.int64)
        end = start + 45 * 60_000
        t = df.t.to_numpy()
        hit = (df.dep.to_numpy() == self.dep_index["rag-gpt41"]) & (t >= start) & (t < end)
        r = rng.random(len(df))
        status = df.status.to_numpy().copy()
        status[hit & (r < 0.35)] = 500
        status[hit & (r >= 0.35) & (r < 0.42)] = 503
        df["status"] = status

    def _background_errors(self, day: int, df: pd.DataFrame) -> None:
        """Besides the incident, the service fails a few calls every day: about 1 in 2,000 answers 500
        or 503 (its own random stream, so the rest of the day's data does not move)."""
        rng = np.random.default_rng([self.seed, day, 5])
        r = rng.random(len(df))
        status = df.status.to_numpy().copy()
        hit = (status == STATUS_OK) & (r < BACKGROUND_5XX)
        status[hit] = np.where(r[hit] < BACKGROUND_5XX * 0.7, 500, 503)
        df["status"] = status

    def _finish(self, rng: np.random.Generator, df: pd.DataFrame) -> None:
        """Latency, byte counts, ids and ingestion lag, consistent with tokens and status."""
        n = len(df)
        deps = self.deployments
        ms_tok = np.array([d.ms_per_token for d in deps])[df.dep]
        base = np.array([d.base_ms for d in deps])[df.dep]
        emb = np.array([d.kind == "embedding" for d in deps])[df.dep]
        dims = np.array([3072 if "large" in d.model else 1536 for d in deps])[df.dep]
        status = df.status.to_numpy()
        prompt, completion = df.prompt.to_numpy(), df.completion.to_numpy()
        stream = df.stream.to_numpy()
        dur = base * rng.lognormal(0.0, 0.25, n) + completion * ms_tok * rng.uniform(0.8, 1.3, n) + prompt * 0.02
        dur = np.where(emb, base * rng.lognormal(0.0, 0.2, n) + prompt * ms_tok, dur)
        dur = np.where(status == STATUS_THROTTLED, rng.uniform(8, 40, n), dur)
        dur = np.where(status == STATUS_FILTER, rng.uniform(90, 320, n), dur)
        dur = np.where(status >= 500, rng.uniform(1500, 12000, n), dur)
        df["duration"] = np.maximum(1, dur).astype(np.int64)
        req_len = prompt * 4 + 140 + rng.integers(0, 60, n)
        df["req_len"] = np.where(emb, prompt * 4 + 70, req_len).astype(np.int64)
        resp = np.where(stream, completion * 4 + completion * 165 + 420, completion * 4 + 520)
        resp = np.where(emb, dims * 4 * 4 // 3 + 160, resp)
        resp = np.where(status == STATUS_THROTTLED, 390, resp)
        resp = np.where(status == STATUS_FILTER, 1080, resp)
        resp = np.where(status >= 500, 160, resp)
        df["resp_len"] = (resp + rng.integers(0, 40, n)).astype(np.int64)
        ok = status == STATUS_OK
        df["prompt"] = np.where(ok, prompt, 0)
        df["completion"] = np.where(ok, completion, 0)
        df["cached"] = np.where(ok, df.cached.to_numpy(), 0)
        df["lag"] = np.clip(rng.lognormal(np.log(180_000), 0.45, n), 25_000, 900_000).astype(np.int64)
        df["u1"] = rng.integers(0, 2**63 - 1, n, dtype=np.int64)
        df["u2"] = rng.integers(0, 2**63 - 1, n, dtype=np.int64)

    # ---- writing -------------------------------------------------------------------------------
    def _insert(self, con: duckdb.DuckDBPyConnection, df: pd.DataFrame, end_ms: int) -> int:
        con.register("req", df)
        tid = world.TENANT_ID
        sub = world.SUBSCRIPTION_ID
        corr = """lower(format('{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}',
                (r.u1 >> 31) & 4294967295, (r.u1 >> 15) & 65535, r.u1 & 4095,
                ((r.u2 >> 48) & 16383) | 32768, r.u2 & 281474976710655))"""
        common = f"""
            '{tid}' AS TenantId,
            make_timestamp_ms(r.t + r.duration) AS TimeGenerated,
            d.res_upper AS ResourceId,
            '{world.RESOURCE_GROUP.upper()}' AS ResourceGroup,
            '{sub}' AS SubscriptionId,
            'MICROSOFT.COGNITIVESERVICES' AS ResourceProvider,
            d.res_name AS Resource,
            'ACCOUNTS' AS ResourceType,
            o.op_name AS OperationName,
            '' AS OperationVersion, '' AS ResultType, '' AS ResultDescription,
            {corr} AS CorrelationId,
            '' AS Level,
            d.location AS location_s,
            d.location AS Tenant_s,
            'Azure' AS SourceSystem,
            'AzureDiagnostics' AS Type,
            d.res_lower AS _ResourceId,
            '{sub}' AS _SubscriptionId,
            make_timestamp_ms(r.t + r.duration + r.lag) AS _TimeReceived,
            'True' AS _IsBillable
        """
        joins = "FROM req r JOIN d_dep d ON r.dep = d.dep JOIN d_caller c ON r.caller = c.caller JOIN d_api a ON r.api = a.api JOIN d_op o ON o.op = (CASE WHEN d.model LIKE 'text-embedding%' THEN 1 ELSE 0 END)"
        received = f"WHERE r.t + r.duration + r.lag <= {end_ms}"
        cols = ", ".join(f'"{c}"' for c in schemas.AZURE_DIAGNOSTICS)
        con.execute(
            f"""
            INSERT INTO AzureDiagnostics ({cols})
            SELECT {cols} FROM (
              SELECT {common},
                'RequestResponse' AS Category,
                CAST(r.status AS VARCHAR) AS ResultSignature,
                r.duration AS DurationMs,
                c.ip AS CallerIPAddress,
                '{{"apiName":"Azure OpenAI API version ' || a.api_version
                  || '","requestTime":' || CAST({schemas.DOTNET_EPOCH_TICKS} + r.t * 10000 AS VARCHAR)
                  || ',"requestLength":' || CAST(r.req_len AS VARCHAR)
                  || ',"responseTime":' || CAST({schemas.DOTNET_EPOCH_TICKS} + (r.t + r.duration) * 10000 AS VARCHAR)
                  || ',"responseLength":' || CAST(r.resp_len AS VARCHAR)
                  || ',"objectId":"' || c.object_id
                  || '","streamType":"' || (CASE WHEN r.stream THEN 'Streaming' ELSE 'Non-Streaming' END)
                  || '","modelDeploymentName":"' || d.dep_name
                  || '","modelName":"' || d.model
                  || '","modelVersion":"' || d.version || '"}}' AS properties_s,
                'ShoeboxCallResult' AS event_s,
                450.0 + r.req_len / 50 AS _BilledSize
              {joins} {received}
            )
            """
        )
        con.execute(
            f"""
            INSERT INTO AzureDiagnostics ({cols})
            SELECT {cols} FROM (
              SELECT {common},
                'AzureOpenAIRequestUsage' AS Category,
                '' AS ResultSignature,
                CAST(0 AS BIGINT) AS DurationMs,
                '' AS CallerIPAddress,
                '{{"modelDeploymentName":"' || d.dep_name
                  || '","modelName":"' || d.model
                  || '","modelVersion":"' || d.version
                  || '","promptTokens":[' || CAST(r.prompt AS VARCHAR)
                  || '],"cachedTokens":[' || CAST(r.cached AS VARCHAR)
                  || '],"generatedTokens":[' || CAST(r.completion AS VARCHAR) || ']}}' AS properties_s,
                'ShoeboxAzureOpenAIRequestUsage' AS event_s,
                380.0 AS _BilledSize
              {joins} {received} AND r.status = 200
            )
            """
        )
        # the spilled calls, for the metrics' IsSpillover dimension (the logs carry no such mark)
        con.execute(f"INSERT INTO spilled SELECT {corr} FROM req r {received} AND r.spill")
        con.execute(  # the planted streams without include_usage: their usage rows go after the metrics
            f"INSERT INTO planted_no_usage SELECT CorrelationId FROM (SELECT {common} {joins} {received} AND r.no_usage)"
        )
        kept = con.execute(f"SELECT count(*) FROM req r {received}").fetchall()[0][0]
        con.unregister("req")
        return int(kept)

    def _metrics(self, con: duckdb.DuckDBPyConnection) -> None:
        """AzureMetrics (flattened per resource) and the dimensioned MetricsApi store, from the requests."""
        con.execute(
            """
            CREATE TABLE MetricsApi (
              TimeStamp TIMESTAMP, ResourceId VARCHAR, MetricName VARCHAR,
              ModelDeploymentName VARCHAR, ModelName VARCHAR, ModelVersion VARCHAR, FeatureName VARCHAR,
              StatusCode VARCHAR, OperationName VARCHAR, StreamType VARCHAR, ApiName VARCHAR, Region VARCHAR,
              UsageChannel VARCHAR, Total DOUBLE, Count DOUBLE, Minimum DOUBLE, Maximum DOUBLE, Average DOUBLE,
              IsSpillover VARCHAR)
            """
        )
        con.execute(
            """
            CREATE TEMP VIEW rr AS
            SELECT date_trunc('minute', a.TimeGenerated) AS ts, d.res_arm AS rid, d.location AS region,
                   json_extract_string(a.properties_s, '$.modelDeploymentName') AS dep,
                   json_extract_string(a.properties_s, '$.modelName') AS model,
                   json_extract_string(a.properties_s, '$.modelVersion') AS version,
                   json_extract_string(a.properties_s, '$.streamType') AS stream,
                   json_extract_string(a.properties_s, '$.apiName') AS api,
                   a.OperationName AS op, a.ResultSignature AS status, a.DurationMs AS dur,
                   coalesce(u.p, 0) AS p, coalesce(u.c, 0) AS c, coalesce(u.g, 0) AS g,
                   date_trunc('minute', a.TimeGenerated - to_milliseconds(a.DurationMs)) AS started,
                   CASE WHEN a.CorrelationId IN (SELECT CorrelationId FROM spilled) THEN 'True' ELSE 'False' END AS spill
            FROM AzureDiagnostics a
            JOIN d_dep d ON d.res_upper = a.ResourceId AND d.dep_name = json_extract_string(a.properties_s, '$.modelDeploymentName')
            LEFT JOIN (SELECT CorrelationId,
                              CAST(json_extract(properties_s, '$.promptTokens[0]') AS BIGINT) AS p,
                              CAST(json_extract(properties_s, '$.cachedTokens[0]') AS BIGINT) AS c,
                              CAST(json_extract(properties_s, '$.generatedTokens[0]') AS BIGINT) AS g
                       FROM AzureDiagnostics WHERE Category = 'AzureOpenAIRequestUsage') u
              ON u.CorrelationId = a.CorrelationId
            WHERE a.Category = 'RequestResponse'
            """
        )
        con.execute("CREATE TEMP TABLE rr_m AS SELECT * FROM rr")
        con.execute(
            """
            INSERT INTO MetricsApi
            SELECT ts, rid, 'AzureOpenAIRequests', dep, model, version, NULL, status, op, stream, api, region, NULL,
                   count(*), count(*), 1, 1, 1, spill
            FROM rr_m GROUP BY ALL;
            INSERT INTO MetricsApi
            SELECT ts, rid, 'AzureOpenAITimeToResponse', dep, model, version, NULL, status, op, stream, api, region, NULL,
                   sum(dur), count(*), min(dur), max(dur), avg(dur), NULL
            FROM rr_m WHERE status = '200' GROUP BY ALL;
            INSERT INTO MetricsApi
            SELECT ts, rid, m.name, dep, NULL, version, model, NULL, NULL, NULL, 'OpenAI', region, 'Cloud',
                   sum(CASE m.name WHEN 'ProcessedPromptTokens' THEN p WHEN 'GeneratedTokens' THEN g ELSE p + g END),
                   count(*), NULL, NULL, NULL, NULL
            FROM rr_m, (VALUES ('ProcessedPromptTokens'), ('GeneratedTokens'), ('TokenTransaction')) m(name)
            WHERE status = '200' GROUP BY ALL;
            """
        )
        # Provisioned utilisation is the deployment's as a whole, per minute the calls started in (the
        # minute the admission control counted them in, see _limits): 100% in a minute that answered 429.
        ptu = [d for d in self.deployments if d.sku.endswith("ProvisionedManaged")]
        for d in ptu:
            con.execute(
                f"""
                INSERT INTO MetricsApi
                SELECT started, rid, 'AzureOpenAIProvisionedManagedUtilizationV2', dep, model, version, NULL, NULL, NULL,
                       NULL, NULL, region, NULL, NULL, 1,
                       least(100.0, 100.0 * sum(p - c + 4 * g) / {d.tpm_limit}),
                       least(100.0, 100.0 * sum(p - c + 4 * g) / {d.tpm_limit}),
                       least(100.0, 100.0 * sum(p - c + 4 * g) / {d.tpm_limit}), NULL
                FROM rr_m WHERE dep = '{d.name}' GROUP BY started, rid, dep, model, version, region
                """
            )
        cols = ", ".join(f'"{c}"' for c in schemas.AZURE_METRICS)
        con.execute(
            f"""
            INSERT INTO AzureMetrics ({cols})
            SELECT {cols} FROM (
              SELECT '{world.TENANT_ID}' AS TenantId, m.TimeStamp AS TimeGenerated, d.res_upper AS ResourceId,
                     d.res_name AS Resource, '{world.RESOURCE_GROUP.upper()}' AS ResourceGroup,
                     'MICROSOFT.COGNITIVESERVICES' AS ResourceProvider, '{world.SUBSCRIPTION_ID}' AS SubscriptionId,
                     m.MetricName, sum(m.Total) AS Total, sum(m.Count) AS Count, min(m.Minimum) AS Minimum,
                     max(m.Maximum) AS Maximum, sum(m.Total) / nullif(sum(m.Count), 0) AS Average,
                     'PT1M' AS TimeGrain,
                     CASE WHEN m.MetricName LIKE '%TimeToResponse' THEN 'MilliSeconds' ELSE 'Count' END AS UnitName,
                     'Azure' AS SourceSystem, 'AzureMetrics' AS Type, d.res_lower AS _ResourceId,
                     '{world.SUBSCRIPTION_ID}' AS _SubscriptionId,
                     m.TimeStamp + INTERVAL 4 MINUTE AS _TimeReceived, 'True' AS _IsBillable, 220.0 AS _BilledSize
              FROM MetricsApi m JOIN (SELECT DISTINCT res_arm, res_upper, res_lower, res_name FROM d_dep) d ON d.res_arm = m.ResourceId
              WHERE m.MetricName IN ('AzureOpenAIRequests', 'ProcessedPromptTokens', 'GeneratedTokens', 'TokenTransaction',
                                     'AzureOpenAITimeToResponse')
              GROUP BY ALL
            )
            """
        )

    # ---- a planted gap between logs and metrics -----------------------------------------------------
    USAGE_GAP_DEPLOYMENT = "rag-gpt41"

    def _planted_usage_gap(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """One hour's AzureOpenAIRequestUsage rows of rag-gpt41 never arrived (its busiest hour between 30 and
        2 hours before the end), while the metrics, written before, still count its tokens. Recorded in
        WorkspaceInfo as usage_gap_deployment / usage_gap_hour."""
        dep = self.USAGE_GAP_DEPLOYMENT
        rows = con.execute(
            """
            SELECT date_trunc('hour', TimeGenerated) AS h FROM AzureDiagnostics
            WHERE Category = 'AzureOpenAIRequestUsage' AND json_extract_string(properties_s, '$.modelDeploymentName') = ?
              AND TimeGenerated >= ? AND TimeGenerated < ?
            GROUP BY 1 ORDER BY count(*) DESC, 1 DESC LIMIT 1
            """,
            [dep, self.end - timedelta(hours=30), self.end - timedelta(hours=2)],
        ).fetchall()
        if not rows:
            return {}
        hour = rows[0][0]
        con.execute(
            """
            DELETE FROM AzureDiagnostics
            WHERE Category = 'AzureOpenAIRequestUsage' AND json_extract_string(properties_s, '$.modelDeploymentName') = ?
              AND TimeGenerated >= ? AND TimeGenerated < ?
            """,
            [dep, hour, hour + timedelta(hours=1)],
        )
        return {"usage_gap_deployment": dep, "usage_gap_hour": hour.isoformat() + "Z"}

    # ---- planted waste: one of each kind the Waste page finds ---------------------------------------
    # (idle PTU hours, the prompt cache and the doc-indexer's re-index spikes need no planting). Each is a
    # few calls an hour with their own random stream, added after the limits: the rest of the data does
    # not move, and no deployment-hour's tokens change by more than the logs-vs-metrics tolerance.
    NO_USAGE_FEATURE = "rag-answers"  # a new web widget streams on rag-gpt41 without include_usage
    CAPPED_FEATURE = "marketing-copy"  # a template sends max_tokens=512: long copy stops at 512 tokens
    CAP_TOKENS = 512
    SHORT_FEATURE = "marketing-copy"  # subject lines on gpt-4o: ~120-token prompts, ~25-token answers

    def _planted_waste(self, day: int, df: pd.DataFrame, day_start: datetime, day_end: datetime) -> pd.DataFrame:
        """The day's planted calls (one stream without usage, two capped, six short per hour), finished
        like the rest and merged in time order."""
        rng = np.random.default_rng([self.seed, day, 7])
        names = [f.name for f in world.FEATURES]
        first = np.datetime64(day_start, "h")
        hours = np.arange(first, np.datetime64(day_end, "h") + 1).astype("datetime64[ms]").astype(np.int64)
        parts = []
        plan = (  # feature, deployment, calls per hour, prompt, completion, streamed share, cap, no usage row
            (self.NO_USAGE_FEATURE, "rag-gpt41", 1, (200, 0.15), (150, 0.2), 1.0, None, True),
            (self.CAPPED_FEATURE, "chat-gpt4o", 2, (600, 0.4), (700, 0.5), 0.3, self.CAP_TOKENS, False),
            (self.SHORT_FEATURE, "chat-gpt4o", 6, (120, 0.3), (25, 0.3), 0.0, None, False),
        )
        for feature, deployment, per_hour, prompt, completion, streamed, cap, no_usage in plan:
            caller = names.index(feature)
            s = replace(
                self.streams[caller],
                prompt=prompt,
                completion=completion,
                cached_share=0.0,
                streaming=streamed,
                content_filter=0.0,
            )
            t = np.repeat(hours, per_hour) + rng.integers(0, 3_600_000, len(hours) * per_hour)
            part = self._requests(rng, s, caller, t, np.full(len(t), self.dep_index[deployment]))
            if cap is not None:
                part["completion"] = np.minimum(part["completion"], cap)
            if no_usage:  # at most 450 tokens a call, two in an hour at most: under the logs-vs-metrics
                part["prompt"] = np.minimum(part["prompt"], 250)  # check's 1,000-token floor
                part["completion"] = np.minimum(part["completion"], 200)
            frame = pd.DataFrame(part)
            frame = frame[
                (frame.t >= np.datetime64(day_start, "ms").astype(np.int64))
                & (frame.t < np.datetime64(day_end, "ms").astype(np.int64))
            ].reset_index(drop=True)
            self._finish(rng, frame)
            frame["no_usage"] = no_usage
            parts.append(frame)
        out = pd.concat([df, *parts], ignore_index=True)
        return out.sort_values(["t", "caller"], kind="stable").reset_index(drop=True)

    def _planted_streams_without_usage(self, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
        """The planted streams' usage rows never arrive (the metrics, written before, still count their
        tokens). Recorded in WorkspaceInfo as no_usage_feature / no_usage_calls."""
        con.execute(
            """
            DELETE FROM AzureDiagnostics
            WHERE Category = 'AzureOpenAIRequestUsage' AND CorrelationId IN (SELECT CorrelationId FROM planted_no_usage)
            """
        )
        n = con.execute("SELECT count(*) FROM planted_no_usage").fetchall()[0][0]
        return {"no_usage_feature": self.NO_USAGE_FEATURE, "no_usage_calls": str(n)}

    def _management(self, con: duckdb.DuckDBPyConnection) -> None:
        """Deployments and regional quota usages, as the ARM REST API returns them."""
        con.execute("CREATE TABLE MgmtDeployments (ResourceId VARCHAR, Body VARCHAR)")
        con.execute("CREATE TABLE MgmtUsages (Location VARCHAR, Body VARCHAR)")
        for d in self.deployments:
            res = world.resource(d.resource)
            created = (
                self.end - timedelta(days=d.created_days_ago) if d.created_days_ago else datetime(2025, 6, 2, 9, 30)
            )
            body = {
                "id": f"{res.arm_id}/deployments/{d.name}",
                "name": d.name,
                "type": "Microsoft.CognitiveServices/accounts/deployments",
                "sku": {"name": d.sku, "capacity": d.capacity},
                "systemData": {
                    "createdBy": "platform-team@contoso.example",
                    "createdByType": "User",
                    "createdAt": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "lastModifiedAt": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
                "properties": {
                    "model": {"format": "OpenAI", "name": d.model, "version": d.version},
                    "provisioningState": "Succeeded",
                    "versionUpgradeOption": "OnceNewDefaultVersionAvailable",
                    "currentCapacity": d.capacity,
                    "rateLimits": [
                        {"key": "request", "renewalPeriod": 10, "count": max(1, d.rpm_limit // 6)},
                        {"key": "token", "renewalPeriod": 60, "count": d.tpm_limit},
                    ],
                    "raiPolicyName": "Microsoft.DefaultV2",
                    **({"spilloverDeploymentName": d.spillover} if d.spillover else {}),
                },
            }
            con.execute("INSERT INTO MgmtDeployments VALUES (?, ?)", [res.arm_id, json.dumps(body)])
        limits = {
            ("GlobalStandard", "gpt-4o"): 450,
            ("GlobalStandard", "gpt-4o-mini"): 2000,
            ("GlobalStandard", "o4-mini"): 1000,
            ("GlobalStandard", "text-embedding-3-large"): 350,
            ("DataZoneStandard", "gpt-4.1"): 300,
            ("Standard", "text-embedding-3-small"): 350,
            ("Standard", "gpt-4o-mini"): 450,
            ("GlobalBatch", "gpt-4o"): 5000,
        }
        by_loc: dict[str, dict[tuple[str, str], int]] = {}
        for d in self.deployments:
            if d.sku.endswith("ProvisionedManaged"):
                continue
            loc = world.resource(d.resource).location
            key = (d.sku, d.model)
            by_loc.setdefault(loc, {}).setdefault(key, 0)
            by_loc[loc][key] += d.capacity
        # since 2026 Global deployment types draw on one subscription pool across regions: every region's
        # usages answer carries the pool's row (the same numbers in each)
        pooled: dict[tuple[str, str], int] = {}
        for usage in by_loc.values():
            for key, used in usage.items():
                if key[0].startswith("Global"):
                    pooled[key] = pooled.get(key, 0) + used
        for usage in by_loc.values():
            usage.update(pooled)
        for loc, usage in sorted(by_loc.items()):
            items = [
                {
                    "name": {
                        "value": f"OpenAI.{sku}.{model}",
                        "localizedValue": f"Tokens Per Minute (thousands) - {model}",
                    },
                    "currentValue": used,
                    "limit": limits.get((sku, model), 300),
                    "unit": "Count",
                }
                for (sku, model), used in sorted(usage.items())
            ]
            con.execute("INSERT INTO MgmtUsages VALUES (?, ?)", [loc, json.dumps({"value": items})])

    def _refused_copies(
        self,
        con: duckdb.DuckDBPyConnection,
        *,
        where: str,
        status: str,
        reason: str,
        tag: str,
        props: str = "properties_s",
    ) -> None:
        """Refused calls derived from a slice of successful RequestResponse rows (`where`, deterministic):
        answered at once with `status` and the error code Azure records in resultDescription (`reason`),
        a short duration with the .NET ticks and TimeGenerated agreeing with it, the small error body as
        the response length, a fresh CorrelationId, and no usage record. `props` is the SQL expression
        of the new properties_s (before the times and lengths are set)."""
        con.execute(
            f"""
            INSERT INTO AzureDiagnostics
            SELECT * EXCLUDE (h, dur, req_ticks) REPLACE (
                '{status}' AS ResultSignature,
                '{reason}' AS ResultDescription,
                dur AS DurationMs,
                TimeGenerated - to_milliseconds(DurationMs) + to_milliseconds(dur) AS TimeGenerated,
                regexp_replace(regexp_replace({props},
                    '"responseTime":[0-9]+', '"responseTime":' || CAST(req_ticks + dur * 10000 AS VARCHAR)),
                    '"responseLength":[0-9]+', '"responseLength":' || CAST(190 + dur AS VARCHAR)) AS properties_s,
                substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a'
                    || substr(h, 18, 3) || '-' || substr(h, 21, 12) AS CorrelationId
            )
            FROM (SELECT *, md5(CorrelationId || ':{tag}') AS h, 5 + DurationMs % 40 AS dur,
                         CAST(json_extract(properties_s, '$.requestTime') AS BIGINT) AS req_ticks
                  FROM AzureDiagnostics
                  WHERE Category = 'RequestResponse' AND ResultSignature = '200'
                    AND NOT contains(properties_s, '{world.PROBE_OBJECT_ID}') AND ({where}))
            """
        )

    def _retired_deployment_calls(self, con: duckdb.DuckDBPyConnection) -> None:
        """A deployment retired ten days ago (`world.RETIRED_DEPLOYMENT`) is still called by a client
        nobody updated: Azure answers 404 DeploymentNotFound and logs the call with the deployment name
        from the path and no model. Derived from a slice of the replacement's calls (deterministic)."""
        name, replacement = world.RETIRED_DEPLOYMENT
        d = world.deployment(replacement)
        since = self.end - timedelta(days=10)
        old = f'"modelDeploymentName":"{d.name}","modelName":"{d.model}","modelVersion":"{d.version}"'
        new = f'"modelDeploymentName":"{name}","modelName":"","modelVersion":""'
        self._refused_copies(
            con,
            where=f"TimeGenerated >= TIMESTAMP '{since:%Y-%m-%d %H:%M:%S}' AND contains(properties_s, '{old}') "
            "AND hash(CorrelationId) % 40 = 0",
            status="404",
            reason="DeploymentNotFound",
            tag="404",
            props=f"replace(properties_s, '{old}', '{new}')",
        )

    # 400s that are not the content filter: (deployment, error code, one call in N of its successful ones)
    OTHER_400 = (("agent-o4-mini", "unsupported_parameter", 30), ("rag-gpt41", "context_length_exceeded", 150))

    def _refused_call_reasons(self, con: duckdb.DuckDBPyConnection) -> None:
        """Why each 400 was refused, as Azure records it in the record's resultDescription (AzureDiagnostics
        `ResultDescription`): the content filter's say `content_filter`. Besides them, 400s for other
        reasons: the reasoning agent's client sometimes still sends `max_tokens` to o4-mini
        (`unsupported_parameter`), and rag-answers now and then overflows the context window
        (`context_length_exceeded`)."""
        con.execute(
            "UPDATE AzureDiagnostics SET ResultDescription = 'content_filter' "
            "WHERE Category = 'RequestResponse' AND ResultSignature = '400'"
        )
        for dep, code, every in self.OTHER_400:
            self._refused_copies(
                con,
                where=f"""OperationName = 'ChatCompletions_Create' AND contains(properties_s, '"modelDeploymentName":"{dep}"')
                          AND hash(CorrelationId || '{code}') % {every} = 0""",
                status="400",
                reason=code,
                tag=code,
            )

    # the reasoning agent calls through the Responses API this share of the time (one in N calls)
    RESPONSES_EVERY = 2

    def _responses_api_calls(self, con: duckdb.DuckDBPyConnection) -> None:
        """The reasoning agent calls o4-mini through the Responses API half of the time: those calls are
        logged as `Responses_Create` (RequestResponse and usage rows alike, api-version
        2025-04-01-preview), with usage like any other call, so they are costed the same way."""
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE responses_calls AS
            SELECT CorrelationId FROM AzureDiagnostics
            WHERE Category = 'RequestResponse' AND contains(properties_s, '"modelDeploymentName":"agent-o4-mini"')
              AND NOT contains(properties_s, '{world.PROBE_OBJECT_ID}') AND hash(CorrelationId) % {self.RESPONSES_EVERY} = 0
            """
        )
        con.execute(
            """
            UPDATE AzureDiagnostics SET OperationName = 'Responses_Create',
                properties_s = regexp_replace(properties_s, '"apiName":"[^"]*"',
                                              '"apiName":"Azure OpenAI API version 2025-04-01-preview"')
            WHERE CorrelationId IN (SELECT CorrelationId FROM responses_calls)
            """
        )

    def run(self, path: Path, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".building")
        for p in (tmp, Path(str(tmp) + ".wal")):
            if p.exists():
                p.unlink()
        con = duckdb.connect(str(tmp))
        con.execute("SET TimeZone = 'UTC'")
        # bounded memory whatever the size: DuckDB spills the big aggregations to disk instead
        con.execute("SET memory_limit = '3GB'")
        con.execute("SET preserve_insertion_order = false")
        try:
            con.execute(schemas.create_table_sql("AzureDiagnostics"))
            con.execute(schemas.create_table_sql("AzureMetrics"))
            con.execute("CREATE TABLE WorkspaceInfo (Key VARCHAR, Value VARCHAR)")
            con.execute("CREATE TEMP TABLE spilled (CorrelationId VARCHAR)")
            con.execute("CREATE TEMP TABLE planted_no_usage (CorrelationId VARCHAR)")
            self._dimensions(con)
            end_ms = int(np.datetime64(self.end, "ms").astype(np.int64))
            requests = 0
            for day in range(self.days):
                requests += self._insert(con, self._day(day), end_ms)
                if progress:
                    progress(day + 1, self.days + 1)
            self._responses_api_calls(con)
            self._metrics(con)
            gap = self._planted_usage_gap(con)
            gap |= self._planted_streams_without_usage(con)
            self._management(con)
            estate.write(con, self.end)
            self._retired_deployment_calls(con)
            self._refused_call_reasons(con)
            info = {
                "seed": str(self.seed),
                "days": str(self.days),
                "requests_per_day": str(self.rpd),
                "end": self.end.isoformat() + "Z",
                "requests": str(requests),
                **gap,
            }
            con.executemany("INSERT INTO WorkspaceInfo VALUES (?, ?)", list(info.items()))
            rows = con.execute("SELECT count(*) FROM AzureDiagnostics").fetchall()[0][0]
            con.execute("CHECKPOINT")
            if progress:
                progress(self.days + 1, self.days + 1)
        finally:
            con.close()
        os.replace(tmp, path)
        append_log(path).clear()  # records appended to the previous workspace belong to it, not this one
        return {"requests": requests, "rows": int(rows)}


def seed(
    path: Path,
    *,
    days: int = 30,
    requests_per_day: int = 10_000,
    seed: int = 42,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Build the demo workspace at `path` (atomically: readers never see a half-built file)."""
    return Seeder(days=days, requests_per_day=requests_per_day, seed=seed, end=end).run(path, progress)
