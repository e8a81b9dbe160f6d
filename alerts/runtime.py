"""What the scheduled jobs share in one process: settings, the state store, the probe endpoint
(the in-process simulator in demo mode), the query layer's Lens and an injectable clock.

Jobs stored in the persistent job store refer to module-level functions with no arguments but a
target name, so no settings (and no secret) are ever pickled into the job store; the functions find
the process's Runtime here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai

from alerts import ab as ab_mod
from alerts import probes as probes_mod
from alerts.evaluate import EvaluationReport, Evaluator
from alerts.store import ProbeResult, Store
from queries.config import ABProbe, ABTarget, ProbeTarget, Settings
from queries.cost import ledger_store
from queries.cost.ledger_store import BuildReport
from queries.ingest import IngestReport, ingest
from queries.lens import Lens, get_lens

log = logging.getLogger("aoai_lens.runtime")
COST_RULES_EVERY_S = 600.0  # budget, burn-rate and anomaly rules: spend moves slowly, allocation is not free


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        lens: Lens | None = None,
        http_client: Any = None,
        simulator_options: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.state_path)
        self._lens = lens
        self.http_client = http_client
        self.simulator_options = simulator_options or {}
        self.simulator: Any = None
        self._client: openai.OpenAI | None = None
        self._lock = threading.Lock()
        self._last_judged: dict[str, float] = {}
        self._cost = probes_mod.probe_cost_function(settings, lambda: self.lens().management.deployments())
        self._ab_clients: dict[tuple[str, str], openai.OpenAI] = {}
        self.ab_simulators: list[Any] = []

    # ---- paths ---------------------------------------------------------------------------------
    @property
    def archive_dir(self) -> Path:
        """Where diagnostic records wait to be loaded (the simulator's, or a storage account's copy)."""
        return self.settings.data_dir / "diagnostics"

    @property
    def offsets_path(self) -> Path:
        return self.settings.data_dir / "ingest-offsets.json"

    # ---- probes --------------------------------------------------------------------------------
    def client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> openai.OpenAI:
        p = self.settings.probes
        key = p.api_key.get_secret_value() if p.api_key else None
        if p.endpoint:
            return probes_mod.make_client(p, p.endpoint, api_key=key, http_client=self.http_client)
        if not self.settings.is_demo:
            raise ValueError("probes.endpoint is not set (needed outside demo mode)")
        from queries.demo import simulator as sim

        token_provider = None
        if p.auth == "entra":
            token_provider = sim.local_token  # the simulator's stand-in for Entra ID (probe identity's oid)
        else:
            key = key or secrets.token_urlsafe(24)
        options = {
            "archive_dir": self.archive_dir,  # the storage layout diagnostic settings write
            "api_key": key,
            **self.simulator_options,
        }
        self.simulator = sim.start(sim.Simulator(**options))
        log.info("probes: no endpoint configured; local Azure OpenAI simulator on %s", self.simulator.url)
        return probes_mod.make_client(
            p, self.simulator.url, api_key=key, token_provider=token_provider, http_client=self.http_client
        )

    def target(self, deployment: str, kind: str) -> ProbeTarget:
        for t in self.settings.probes.targets:
            if t.deployment == deployment and t.kind == kind:
                return t
        raise KeyError(f"no probe target {deployment}/{kind}")

    def probe(self, target: ProbeTarget) -> ProbeResult:
        result = probes_mod.run_probe(
            self.client(),
            target,
            auth=self.settings.probes.auth,
            clock=self.clock,
            cost=self._cost,
            model=self.model_of(target.deployment),
        )
        self.store.add_probe(result)
        return result

    def model_of(self, deployment: str) -> str | None:
        """The deployment's model, from the management plane (None when it cannot be read)."""
        try:
            frame = self.lens().deployments().frame
            rows = frame[frame["Deployment"] == deployment]
            return str(rows["Model"].iloc[0]) if len(rows) else None
        except Exception as e:  # a probe still runs; it then sends max_tokens
            log.info("model of %s unknown: %s", deployment, e)
            return None

    def probe_all(self) -> list[ProbeResult]:
        return [self.probe(t) for t in self.settings.probes.targets]

    # ---- A/B probes ----------------------------------------------------------------------------
    def ab_client(self, ab: ABProbe, t: ABTarget) -> openai.OpenAI:
        """One side's client, made once: its remote endpoint with its key, or (demo mode, no endpoint) a
        local simulator of its own, slowed by the target's `demo_latency_scale`."""
        with self._lock:
            key_of = (ab.name, t.label)
            if key_of not in self._ab_clients:
                timeout = self.settings.probes.timeout_s
                if t.remote:
                    key = ab_mod.target_key(t)
                    self._ab_clients[key_of] = ab_mod.make_ab_client(
                        t, t.remote, key, timeout_s=timeout, http_client=self.http_client
                    )
                elif self.settings.is_demo:
                    from queries.demo import simulator as sim

                    key = secrets.token_urlsafe(24)
                    options = {"api_key": key, "latency_scale": t.demo_latency_scale, **self.simulator_options}
                    options.pop("archive_dir", None)  # another target's traffic is not this workspace's
                    running = sim.start(sim.Simulator(**options))
                    self.ab_simulators.append(running)
                    url = running.url if t.api == "azure" else f"{running.url}/openai/v1"
                    log.info("A/B probe %s: side %s on a local simulator at %s", ab.name, t.label, url)
                    self._ab_clients[key_of] = ab_mod.make_ab_client(
                        t, url, key, timeout_s=timeout, http_client=self.http_client
                    )
                else:
                    raise ValueError(f"A/B probe {ab.name}: side {t.label} has no endpoint (needed outside demo mode)")
            return self._ab_clients[key_of]

    def ab(self, name: str) -> ABProbe:
        for ab in self.settings.probes.ab:
            if ab.name == name:
                return ab
        raise KeyError(f"no A/B probe {name}")

    def probe_ab(self, name: str) -> list[ProbeResult]:
        """Both sides of one A/B probe, one after the other (the order alternates, so neither side always
        goes first), each result stored with the probe's name and the side's label."""
        ab = self.ab(name)
        sides = [ab.a, ab.b]
        if int(self.clock() // max(ab.interval_s, 1)) % 2:
            sides.reverse()
        out = []
        for t in sides:
            model = t.model if t.api == "openai" and t.model else self.model_of(t.name)
            try:
                client = self.ab_client(ab, t)
            except ab_mod.KeyMissing as e:  # recorded as an auth failure, the other side still runs
                result = ProbeResult(ts=self.clock(), deployment=t.name, kind=ab.kind, auth="key", klass="auth")
                result.error = str(e)
            else:
                result = probes_mod.run_probe(
                    client, ab_mod.probe_target(ab, t), auth="key", clock=self.clock, cost=self._cost, model=model
                )
            result.ab, result.arm = ab.name, t.label
            self.store.add_probe(result)
            out.append(result)
        return sorted(out, key=lambda r: r.arm != ab.a.label)

    # ---- ingestion and alerts ------------------------------------------------------------------
    def lens(self) -> Lens:
        if self._lens is None:
            self._lens = get_lens(self.settings)
        return self._lens

    def ingest(self) -> IngestReport:
        """Append new simulator (or archived) records to the demo workspace as an immutable part."""
        if not self.settings.is_demo:
            return IngestReport()
        return ingest(self.archive_dir, self.settings.demo_path, self.offsets_path, clock=self.clock)

    def import_archive(self) -> IngestReport:
        """Load what is new in the configured storage account's archive into the embedded workspace."""
        from datetime import timedelta

        from queries.archive import blob_service, import_archive

        a = self.settings.archive
        if not a.configured:
            return IngestReport()
        secret = a.connection_string.get_secret_value() if a.connection_string else None
        return import_archive(
            blob_service(a.account_url, secret),
            self.settings.demo_path,
            self.settings.archive_checkpoint_path,
            since=timedelta(days=a.since_days),
            containers=a.containers,
            clock=self.clock,
        )

    def build_ledger(self) -> BuildReport:
        """Close the cost ledger's due hours (this process is its one writer while it holds the lock)."""
        return ledger_store.build(self.lens(), self.settings, now=datetime.fromtimestamp(self.clock(), UTC))

    def evaluator(self) -> Evaluator:
        from alerts.data import LensData

        lens = self.lens().with_fresh_cache()
        return Evaluator(
            self.settings,
            self.store,
            LensData(lens),
            clock=self.clock,
            cost_every_s=COST_RULES_EVERY_S,
            last_judged=self._last_judged,
        )

    def evaluate(self) -> EvaluationReport:
        return self.evaluator().evaluate()

    def close(self) -> None:
        if self.simulator is not None:
            self.simulator.shutdown()
            self.simulator = None
        for running in self.ab_simulators:
            running.shutdown()
        self.ab_simulators = []
        self._ab_clients = {}
        self._client = None


_current: Runtime | None = None
_current_lock = threading.Lock()


def install(runtime: Runtime) -> Runtime:
    global _current
    with _current_lock:
        _current = runtime
    return runtime


def current() -> Runtime:
    global _current
    with _current_lock:
        if _current is None:
            from queries.config import get_settings

            _current = Runtime(get_settings())
        return _current
