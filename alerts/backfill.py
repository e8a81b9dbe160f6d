"""The demo's month, told on first open: probe history and alert history backfilled from the seeded logs.

A freshly seeded demo workspace holds a month of traffic, probe calls included, but the probe store and
the alert history start empty until the scheduler has run for a while. `backfill` writes both:

- **probe history**: every probe call the seeded logs hold (the probe identity's records) becomes a probe
  result with its status class, latency, an estimated time to first token, tokens, price and request id,
  so the Probes page and the probe SLOs agree with the logs;
- **alert history**: every configured rule is evaluated over the month by the real `Evaluator` on a
  moving clock (each rule every min(window, 1 h), so no window of the month goes unjudged), reading frames
  fetched once through the Lens and sliced per window, into an in-memory store. No notification is sent;
  the transitions are stored marked as backfilled, with the states they leave.

Everything is written in one SQLite transaction (`Store.replace_backfill`): a reader sees the old history
or the new one. The workspace's identity and the rules' configuration key it, so a second run is a no-op
and a reseed (or changed rules) replaces the backfilled rows instead of adding to them.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from alerts import probes as probes_mod
from alerts.evaluate import Evaluator
from alerts.notify import Notifier
from alerts.store import ProbeResult, Store, Transition
from queries.config import AlertRule, Settings
from queries.cost.forecast import history_start

log = logging.getLogger("aoai_lens.backfill")

COST_STEP = timedelta(hours=1)
BIN = timedelta(minutes=5)  # the request-count frames' resolution


@dataclass
class BackfillReport:
    key: str = ""
    skipped: str | None = None  # why nothing was written
    probes: int = 0
    transitions: int = 0
    evaluations: int = 0
    seconds: float = 0.0
    rules_skipped: dict[str, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds per step (probes, frames, each rule)

    def __str__(self) -> str:
        if self.skipped:
            return f"backfill skipped: {self.skipped}"
        return (
            f"backfilled {self.probes:,} probe results and {self.transitions:,} alert transitions "
            f"({self.evaluations:,} rule evaluations) in {self.seconds:.1f} s"
        )


def workspace_key(settings: Settings) -> str:
    """The seeded workspace and the configuration the history depends on (rules, SLOs, probe identity)."""
    from queries.demo import workspace_info

    info = workspace_info(settings.demo_path)
    basis = {
        "workspace": {k: info.get(k) for k in ("seed", "days", "requests_per_day", "end", "requests")},
        "rules": [r.model_dump(mode="json", exclude={"channels"}) for r in settings.alerts.rules],
        "budgets": [b.model_dump(mode="json") for b in settings.budgets],
        "slos": [s.model_dump(mode="json") for s in settings.probes.slos],
        "min_history": settings.alerts.budget_min_history_days,
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:24]


# ---- probe history ---------------------------------------------------------------------------------


def klass_of(status: int) -> str:
    if status == 200:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status in (401, 403):
        return "auth"
    if status >= 500:
        return "http_5xx"
    if status == 400:
        return "content_filter"
    return "error"


def _int(v: Any) -> int:
    return 0 if v is None or pd.isna(v) else int(v)


def probe_history(settings: Settings, cost: Any = None) -> list[ProbeResult]:
    """The seeded workspace's probe calls as probe results (see the module docstring)."""
    from queries.demo import world
    from queries.demo.history import probe_calls

    calls = probe_calls(settings.demo_path, settings.probe_object_id or world.PROBE_OBJECT_ID)
    speed = {d.name: d.ms_per_token for d in world.DEPLOYMENTS}
    rates: dict[str, tuple[float, float, float] | None] = {}

    def price(dep: str, prompt: int, cached: int, completion: int) -> float | None:
        """The cost function's price, asked once per deployment (it is linear in the tokens)."""
        if dep not in rates:
            unit = [cost(dep, 1_000_000, 0, 0), cost(dep, 1_000_000, 1_000_000, 0), cost(dep, 0, 0, 1_000_000)]
            rates[dep] = None if unit[0] is None or unit[1] is None else (unit[0], unit[1], unit[2] or 0.0)
            if unit[2] is None:
                rates[dep] = None if rates[dep] is None else (*rates[dep][:2], float("nan"))  # type: ignore[index]
        r = rates[dep]
        if r is None or (completion and r[2] != r[2]):
            return None
        return ((prompt - cached) * r[0] + cached * r[1] + completion * (r[2] if completion else 0.0)) / 1e6

    kinds = {d.name: d.kind for d in world.DEPLOYMENTS}
    out = []
    for c in calls.itertuples(index=False):
        dep = str(c.deployment)
        status = int(c.status)
        ok = status == 200
        r = ProbeResult(
            ts=float(c.ts),
            deployment=dep,
            kind=kinds.get(dep, "chat"),
            auth=settings.probes.auth,
            klass=klass_of(status),
            status_code=status,
            latency_ms=float(c.duration_ms),
            request_id=str(c.request_id),
            backfilled=True,
        )
        if ok:
            r.prompt_tokens = _int(c.prompt_tokens)
            r.cached_tokens = _int(c.cached_tokens)
            r.completion_tokens = _int(c.completion_tokens)
            r.total_tokens = r.prompt_tokens + r.completion_tokens
            if bool(c.stream) and r.completion_tokens:
                # the first token comes after the wait; the rest at the deployment's speed (the simulator's model)
                gen = (r.completion_tokens - 1) * speed.get(dep, 10.0)
                r.ttft_ms = max(1.0, float(c.duration_ms) - gen)
                r.tokens_per_s = r.completion_tokens / (gen / 1000) if gen > 0 else None
            if cost is not None:
                r.cost_usd = price(dep, r.prompt_tokens, r.cached_tokens, r.completion_tokens)
        else:
            r.error = f"HTTP {status} (from the seeded logs)"
        out.append(r)
    return out


# ---- the state store the evaluator writes to, in memory ----------------------------------------------


class MemoryStore(Store):
    """What `Evaluator` reads and writes of a `Store`, in memory: probe results up to `now`, states,
    transitions (marked backfilled). No file, no notification deliveries."""

    def __init__(self, probes: list[ProbeResult]) -> None:  # no super().__init__: there is no file
        rows = [
            {
                "ts": p.ts,
                "deployment": p.deployment,
                "kind": p.kind,
                "class": p.klass,
                "latency_ms": p.latency_ms,
                "ttft_ms": p.ttft_ms,
            }
            for p in probes
        ]
        cols = ["ts", "deployment", "kind", "class", "latency_ms", "ttft_ms"]
        self.frame = pd.DataFrame(rows, columns=cols).sort_values("ts", kind="stable").reset_index(drop=True)
        self._ts = self.frame["ts"].to_numpy(dtype=float)
        self._targets = {
            key: g.reset_index(drop=True) for key, g in self.frame.groupby(["deployment", "kind"], sort=True)
        }
        self.now = 0.0
        self.state: dict[tuple[str, str], list[Any]] = {}  # -> [state, since, value, reason, evaluated]
        self.history: list[Transition] = []

    def probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        lo = np.searchsorted(self._ts, since if since is not None else -np.inf, side="left")
        hi = np.searchsorted(self._ts, until if until is not None else np.inf, side="right")
        return self.frame.iloc[lo:hi]

    def last_probes(self, n: int) -> pd.DataFrame:
        parts = []
        for g in self._targets.values():
            hi = int(np.searchsorted(g["ts"].to_numpy(dtype=float), self.now, side="right"))
            parts.append(g.iloc[max(0, hi - n) : hi].iloc[::-1])
        return pd.concat(parts, ignore_index=True) if parts else self.frame.iloc[0:0]

    def states(self) -> dict[tuple[str, str], str]:
        return {k: v[0] for k, v in self.state.items()}

    def firing(self, rule: str) -> bool:
        return any(k[0] == rule and v[0] == "firing" for k, v in self.state.items())

    def latest_failed(self, at: float) -> bool:
        """Whether any target's newest probe at `at` failed (else no failure streak can be running)."""
        for g in self._targets.values():
            hi = int(np.searchsorted(g["ts"].to_numpy(dtype=float), at, side="right"))
            if hi and g["class"].iloc[hi - 1] != "ok":
                return True
        return False

    def any_probe(self, mask: np.ndarray, start: float, end: float) -> bool:
        """Whether any probe in (start, end] has `mask` set (mask: one flag per probe, in time order)."""
        lo = np.searchsorted(self._ts, start, side="right")
        hi = np.searchsorted(self._ts, end, side="right")
        return bool(mask[lo:hi].any())

    def apply(self, t: Transition) -> Transition:
        t = replace(t, backfilled=True)
        self.history.append(t)
        self.state[(t.rule, t.subject)] = [t.new, t.ts, t.value, t.reason, t.ts]
        return t

    def record_evaluation(self, rule: str, findings: list[tuple[str, float | None, str]], ts: float) -> None:
        for subject, value, reason in findings:
            s = self.state.setdefault((rule, subject), ["ok", ts, value, reason, ts])
            s[2], s[3], s[4] = value, reason, ts

    def add_delivery(self, transition_id: int | None, channel: str, ts: float, ok: bool, error: str | None) -> None:
        return None


# ---- the frames the rules judge, fetched once and sliced per window -------------------------------------


def _utc_index(frame: pd.DataFrame, column: str = "TimeGenerated") -> np.ndarray:
    if not len(frame):
        return np.array([])
    return pd.to_datetime(frame[column], utc=True).dt.as_unit("ns").astype("int64").to_numpy() / 1e9


class WindowData:
    """`alerts.data.RuleData` over frames of the whole period, fetched once through the Lens: request
    counts per 5 minutes, latency percentiles per rule window, tokens per minute, allocated cost per hour."""

    def __init__(self, lens: Any, settings: Settings, start: datetime, end: datetime) -> None:
        from alerts.data import LensData

        self.lens, self.settings, self.start, self.end = lens, settings, start, end
        self._live = LensData(lens)
        r = lens.run("requests_by_status", start=start, end=end, bin=BIN)
        f = self._live._result_frame(r)
        f = f.assign(
            Throttled=f["Requests"].where(f["StatusClass"] == "429", 0),
            ServerErrors=f["Requests"].where(f["StatusClass"] == "5xx", 0),
        )
        self.req = f.groupby(["TimeGenerated", "Deployment"], as_index=False)[
            ["Requests", "Throttled", "ServerErrors"]
        ].sum()
        self.req = self.req.sort_values("TimeGenerated", kind="stable").reset_index(drop=True)
        self._req_t = _utc_index(self.req)
        self.deps = self._live._result_frame(lens.deployments())
        self._latency: dict[float, tuple[pd.DataFrame, np.ndarray]] = {}
        self._tokens: tuple[pd.DataFrame, np.ndarray] | None = None
        self._cost: tuple[pd.DataFrame, np.ndarray] | None = None
        self._caller: tuple[pd.DataFrame, np.ndarray] | None = None

    def __getattr__(self, name: str) -> Any:  # a rule kind this module does not know: the live frames
        return getattr(self._live, name)

    def _cum(self, column: str) -> np.ndarray:
        key = f"_cum_{column}"
        if key not in self.__dict__:
            self.__dict__[key] = np.concatenate([[0.0], np.cumsum(self.req[column].to_numpy(dtype=float))])
        return np.asarray(self.__dict__[key])

    def total(self, column: str, start: datetime, end: datetime) -> float:
        """Requests (or Throttled, ServerErrors) of every deployment in [start, end), from cumulative sums."""
        lo = np.searchsorted(self._req_t, start.timestamp(), side="left")
        hi = np.searchsorted(self._req_t, end.timestamp(), side="left")
        c = self._cum(column)
        return float(c[hi] - c[lo])

    def max_p95(self, start: datetime, end: datetime) -> float:
        w = self._slice(*self._latency_bins(start, end), start, end)
        return float(w["P95"].max()) if len(w) else 0.0

    def max_load(self, start: datetime, end: datetime) -> float:
        """The busiest minute's tokens as a share of its deployment's TPM limit, in [start, end)."""
        self.peak_tpm(start, end)
        assert self._tokens is not None
        f, t = self._tokens
        if "Load" not in f.columns:
            limits = self.deps.set_index("Deployment")["TpmLimit"].astype(float)
            f["Load"] = f["Tokens"].astype(float) / f["Deployment"].map(limits).fillna(np.inf).to_numpy(dtype=float)
        w = self._slice(f, t, start, end)
        return float(w["Load"].max()) if len(w) else 0.0

    def spend(self, start: datetime, end: datetime) -> float:
        """Allocated spend of every team in [start, end), from cumulative sums over the hourly cost."""
        self.cost(start, end)
        assert self._cost is not None
        f, t = self._cost
        if "_cum" not in self.__dict__:
            self.__dict__["_cum"] = np.concatenate([[0.0], np.cumsum(f["CostUsd"].to_numpy(dtype=float))])
        c = self.__dict__["_cum"]
        lo = np.searchsorted(t, start.timestamp(), side="left")
        hi = np.searchsorted(t, end.timestamp(), side="left")
        return float(c[hi] - c[lo])

    @staticmethod
    def _slice(frame: pd.DataFrame, t: np.ndarray, start: datetime, end: datetime) -> pd.DataFrame:
        lo = np.searchsorted(t, start.timestamp(), side="left")
        hi = np.searchsorted(t, end.timestamp(), side="left")
        return frame.iloc[lo:hi]

    def requests(self, start: datetime, end: datetime) -> pd.DataFrame:
        w = self._slice(self.req, self._req_t, start, end)
        cols = ["Deployment", "Requests", "Throttled", "ServerErrors"]
        return w.groupby("Deployment", as_index=False)[cols[1:]].sum()[cols] if len(w) else pd.DataFrame(columns=cols)

    def _latency_bins(self, start: datetime, end: datetime) -> tuple[pd.DataFrame, np.ndarray]:
        """latency_by_deployment over the whole period in bins of the window's width, fetched once per width."""
        width = (end - start).total_seconds()
        if width not in self._latency:
            r = self.lens.run("latency_by_deployment", start=self.start, end=self.end, bin=end - start)
            f = self._live._result_frame(r).sort_values("TimeGenerated", kind="stable").reset_index(drop=True)
            self._latency[width] = (f, _utc_index(f))
        return self._latency[width]

    def latency(self, start: datetime, end: datetime) -> pd.DataFrame:
        w = self._slice(*self._latency_bins(start, end), start, end)
        cols = ["Deployment", "P95Ms", "Requests"]
        if w.empty:
            return pd.DataFrame(columns=cols)
        if w["Deployment"].is_unique:  # the window is one bin (ticks are aligned to the window)
            return w.rename(columns={"P95": "P95Ms"})[cols]
        g = w.groupby("Deployment", as_index=False).agg(P95Ms=("P95", "max"), Requests=("Requests", "sum"))
        return g[cols]

    def peak_tpm(self, start: datetime, end: datetime) -> pd.DataFrame:
        if self._tokens is None:
            r = self.lens.run("tokens_by_deployment", start=self.start, end=self.end, bin=timedelta(minutes=1))
            f = self._live._result_frame(r)
            f = f.assign(Tokens=f["PromptTokens"] + f["CompletionTokens"])
            f = f.groupby(["TimeGenerated", "Deployment"], as_index=False)["Tokens"].sum()
            f = f.sort_values("TimeGenerated", kind="stable").reset_index(drop=True)
            self._tokens = (f, _utc_index(f))
        w = self._slice(*self._tokens, start, end)
        peaks = w.groupby("Deployment", as_index=False)["Tokens"].max().rename(columns={"Tokens": "PeakTpm"})
        frame = self.deps[["Deployment", "TpmLimit"]].merge(peaks, on="Deployment", how="left")
        frame["PeakTpm"] = frame["PeakTpm"].fillna(0)
        return frame[["Deployment", "PeakTpm", "TpmLimit"]]

    def last_seen(self, start: datetime, end: datetime) -> dict[str, datetime | None]:
        resources = self.deps.assign(Resource=self.deps["Resource"].astype(str).str.upper())
        out: dict[str, datetime | None] = {r: None for r in sorted(set(resources["Resource"]))}
        w = self._slice(self.req, self._req_t, start, end)
        if len(w):
            last = w.groupby("Deployment")["TimeGenerated"].max()
            for dep, res in zip(resources["Deployment"], resources["Resource"], strict=True):
                if dep in last.index:
                    seen = min(pd.Timestamp(last[dep]).tz_convert(UTC) + BIN, pd.Timestamp(end))
                    if out[res] is None or seen.to_pydatetime() > out[res]:  # type: ignore[operator]
                        out[res] = seen.to_pydatetime()
        return out

    def deployment_last_seen(self, deployment: str, start: datetime, end: datetime) -> datetime | None:
        w = self._slice(self.req, self._req_t, start, end)
        mine = w[w["Deployment"] == deployment]["TimeGenerated"]
        if mine.empty:
            return None
        return min(pd.Timestamp(mine.max()).tz_convert(UTC) + BIN, pd.Timestamp(end)).to_pydatetime()

    def cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        if self._cost is None:
            f = self._live.cost(history_start(self.start), self.end)
            f = f.sort_values("TimeGenerated", kind="stable").reset_index(drop=True)
            self._cost = (f, _utc_index(f))
        return self._slice(*self._cost, start, end)

    def caller_cost(self, start: datetime, end: datetime) -> pd.DataFrame:
        if self._caller is None:
            f = self._live.caller_cost(self.start - timedelta(days=1), self.end)
            f = f.sort_values("TimeGenerated", kind="stable").reset_index(drop=True)
            self._caller = (f, _utc_index(f))
        return self._slice(*self._caller, start, end)


# ---- the run -------------------------------------------------------------------------------------------


# Rule kinds the backfill judges over the whole month; another kind is judged once, at the month's end.
KNOWN_KINDS = frozenset(
    {
        "rate_429",
        "rate_5xx",
        "latency_p95",
        "quota_headroom",
        "probe_failures",
        "probe_ttft",
        "slo_burn",
        "no_data",
        "budget_pace",
        "burn_rate",
        "spend_anomaly",
        "caller_spend",
    }
)


def step_of(rule: AlertRule) -> timedelta:
    """How often the backfill judges a rule: its window (at most an hour), so no window of the month goes
    unjudged; month-scale rules less often (budget pace every 6 h, daily windows every quarter day)."""
    if rule.kind == "budget_pace":
        return timedelta(hours=6)
    if rule.kind == "no_data":
        return timedelta(minutes=max(60.0, rule.threshold / 4))
    if rule.kind in ("burn_rate", "spend_anomaly", "caller_spend"):
        return max(COST_STEP, timedelta(minutes=rule.window_minutes / 4))
    if rule.kind == "slo_burn":  # its short window is a twelfth of the long one: judged that often
        return timedelta(minutes=max(1.0, rule.window_minutes / 12))
    return timedelta(minutes=min(rule.window_minutes, 60))


def ticks(rule: AlertRule, start: datetime, end: datetime) -> list[datetime]:
    """When the backfill judges a rule: every `step_of(rule)`, aligned to it, from one window (at most a
    day) after the data starts, and at the data's end."""
    if rule.kind not in KNOWN_KINDS:
        return [end]
    s = step_of(rule).total_seconds()
    first = (start + timedelta(minutes=min(rule.window_minutes, 24 * 60))).timestamp()
    t = [datetime.fromtimestamp(float(x), UTC) for x in np.arange(np.ceil(first / s) * s, end.timestamp(), s)]
    return [*t, end]


class Gate:
    """Cheap necessary conditions for a rule to fire in a window, from the precomputed frames: a tick
    where the rule cannot fire and nothing of it is firing changes no state, so the evaluator is spared.
    (A kind without a condition here is always judged.)"""

    def __init__(self, settings: Settings, data: WindowData, memory: MemoryStore) -> None:
        self.settings, self.data, self.memory = settings, data, memory
        f = memory.frame
        self._failed = (f["class"] != "ok").to_numpy()
        self._ttft = pd.to_numeric(f["ttft_ms"], errors="coerce").fillna(-1).to_numpy()
        self._latency = pd.to_numeric(f["latency_ms"], errors="coerce").fillna(-1).to_numpy()

    def _slo_bad(self) -> np.ndarray:
        slos = self.settings.probes.slos
        lat = [s.latency_ms for s in slos if s.latency_ms is not None]
        ttft = [s.ttft_ms for s in slos if s.ttft_ms is not None]
        bad = self._failed.copy()
        if lat:
            bad |= self._latency > min(lat)
        if ttft:
            bad |= self._ttft > min(ttft)
        return bad

    def may_fire(self, rule: AlertRule, at: datetime) -> bool:
        start, kind = at - timedelta(minutes=rule.window_minutes), rule.kind
        if kind == "rate_429":
            return self.data.total("Throttled", start, at) > 0
        if kind == "rate_5xx":
            return self.data.total("ServerErrors", start, at) > 0
        if kind == "latency_p95":
            return self.data.max_p95(start, at) > rule.threshold
        if kind == "quota_headroom":
            return self.data.max_load(start, at) >= 1 - rule.threshold / 100
        if kind == "probe_failures":
            return self.memory.latest_failed(at.timestamp())
        if kind == "probe_ttft":
            return self.memory.any_probe(self._ttft > rule.threshold, start.timestamp(), at.timestamp())
        if kind == "slo_burn":  # the short window must hold a bad probe
            since = at - timedelta(minutes=rule.window_minutes / 12)
            return self.memory.any_probe(self._slo_bad(), since.timestamp(), at.timestamp())
        if kind == "burn_rate" and self.settings.budgets:
            # the short window (a twelfth) must burn faster than the threshold for some budget; all
            # teams' spend together is at least any one budget's
            short = timedelta(minutes=rule.window_minutes / 12)
            month = calendar.monthrange(at.year, at.month)[1] * 86400
            least = min(b.monthly_usd for b in self.settings.budgets) / month * short.total_seconds()
            return self.data.spend(at - short, at) > rule.threshold * least
        return True


def backfill(
    settings: Settings, store: Store | None = None, *, lens: Any = None, force: bool = False
) -> BackfillReport:
    """Write the seeded demo month's probe and alert history into the state store (see the module
    docstring). Idempotent: nothing happens when the same workspace and rules were backfilled already."""
    from queries.demo import workspace_info

    started = time.perf_counter()
    report = BackfillReport()
    if not settings.is_demo:
        report.skipped = "not in demo mode"
        return report
    if not settings.demo_path.exists():
        report.skipped = f"no demo workspace at {settings.demo_path.name}"
        return report
    store = store or Store(settings.state_path)
    report.key = workspace_key(settings)
    if not force and store.backfill_key() == report.key:
        report.skipped = "this workspace's history is already backfilled"
        return report
    info = workspace_info(settings.demo_path)
    end = datetime.fromisoformat(info["end"].replace("Z", "+00:00"))
    start = end - timedelta(days=int(info["days"]))
    if lens is None:
        from queries.lens import Lens

        lens = Lens.from_settings(settings).with_fresh_cache()
    cost = probes_mod.probe_cost_function(settings, lambda: lens.management.deployments())
    probes = probe_history(settings, cost)
    memory = MemoryStore(probes)
    report.phases["probe history"] = time.perf_counter() - started
    data = WindowData(lens, settings, start, end)
    gate = Gate(settings, data, memory)
    quiet_log = logging.getLogger("aoai_lens.alerts")  # the past's transitions are counted, not logged one by one
    level = quiet_log.level
    quiet_log.setLevel(max(logging.WARNING, level))
    try:
        _judge_the_month(settings, memory, data, gate, start, end, report)
    finally:
        quiet_log.setLevel(level)
    transitions = sorted(memory.history, key=lambda t: t.ts)
    report.phases["request counts"] = time.perf_counter() - started - sum(report.phases.values())
    states = [(r, s, *v) for (r, s), v in sorted(memory.state.items())]
    report.probes, report.transitions = len(probes), len(transitions)
    report.seconds = time.perf_counter() - started
    store.replace_backfill(report.key, probes, transitions, states, report.seconds, time.time())  # type: ignore[arg-type]
    log.info("%s", report)
    return report


def _judge_the_month(
    settings: Settings,
    memory: MemoryStore,
    data: WindowData,
    gate: Gate,
    start: datetime,
    end: datetime,
    report: BackfillReport,
) -> None:
    """Every rule by the real evaluator, alone, on its ticks (see `ticks`, `Gate`)."""
    for rule in settings.alerts.rules:
        rule_started = time.perf_counter()
        quiet = rule.model_copy(update={"channels": []})  # nobody is notified of the past
        one = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"rules": [quiet]})})
        evaluator = Evaluator(one, memory, data, Notifier([]), clock=lambda: memory.now)
        judged = ticks(rule, start, end)
        for i, tick in enumerate(judged):
            memory.now = tick.timestamp()
            if 0 < i < len(judged) - 1 and not memory.firing(rule.name) and not gate.may_fire(rule, tick):
                continue
            result = evaluator.evaluate()
            report.evaluations += 1
            if rule.name in result.skipped:
                report.rules_skipped[rule.name] = result.skipped[rule.name]
                break
        report.phases[f"rule {rule.name}"] = time.perf_counter() - rule_started


def ensure_backfilled(settings: Settings) -> BackfillReport:
    """`backfill` for `serve` and `demo seed`: a failure is logged, never raised (the history is a
    courtesy; the scheduler writes the live one either way)."""
    if not settings.demo.backfill:
        return BackfillReport(skipped="demo.backfill is off")
    try:
        return backfill(settings)
    except Exception as e:
        log.warning("could not backfill the demo's probe and alert history: %s: %s", type(e).__name__, e)
        return BackfillReport(skipped=f"{type(e).__name__}: {e}")
