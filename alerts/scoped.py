"""The alerts store as a team-scoped user sees it, failing closed like `queries.scope.ScopedLens`.

A finding's subject is parsed into (kind, name) (`alerts.rules.parse_subject`), never compared as a
string: a team subject is visible when the team is in the scope, a feature subject when its team is (an
unknown feature is hidden), a caller subject when an attribution rule of the scope's teams names it (a
caller no rule claims is hidden), an infrastructure subject (a deployment, a resource, a probe target) to
every signed-in user. A rule pinned to another team or its feature (`team = ...`, `feature = ...`) is
hidden whole. Probe results and job counts are per deployment and per job: shared.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from alerts.rules import parse_subject
from alerts.store import Store, Transition
from queries.config import Settings
from queries.scope import Scope, alert_rule_visible, features_of, rule_label
from queries.scoped import ScopeError


class StoreView(Protocol):
    """What the dashboard reads from the alerts store (a `Store`, or a `ScopedStore` for a team)."""

    def current_states(self) -> pd.DataFrame: ...
    def transitions(self) -> list[Transition]: ...
    def states(self) -> dict[tuple[str, str], str]: ...
    def deliveries(self) -> list[dict[str, Any]]: ...
    def probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame: ...
    def ab_probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame: ...
    def last_probes(self, n: int) -> pd.DataFrame: ...
    def job_counts(self) -> dict[str, dict[str, int]]: ...


class ScopedStore:
    """Offers exactly SCOPED and SHARED; every other name of `Store` raises `ScopeError`."""

    SCOPED = frozenset({"current_states", "transitions", "states", "deliveries"})
    SHARED = frozenset({"probes", "ab_probes", "last_probes", "job_counts"})
    REFUSED = frozenset(
        {
            "path",
            "connect",
            "add_probe",
            "apply",
            "record_evaluation",
            "add_delivery",
            "add_job_run",
            "backfill_key",
            "replace_backfill",
        }
    )

    def __init__(self, store: Store, scope: Scope, settings: Settings) -> None:
        if scope.is_everything:
            raise ValueError("a ScopedStore needs a team scope")
        self._inner = store
        self._teams = frozenset(scope.teams or ())
        self._features = features_of(self._teams, settings.attribution)
        self._callers = frozenset(rule_label(r) for r in settings.attribution if r.team in self._teams)
        self._hidden_rules = {
            r.name for r in settings.alerts.rules if not alert_rule_visible(scope, r, settings.attribution)
        }

    def __getattr__(self, name: str) -> Any:
        raise ScopeError(f"{name!r} is not offered to a team-scoped view of the alerts")

    def _visible(self, rule: str, subject: str) -> bool:
        if rule in self._hidden_rules:
            return False
        kind, name = parse_subject(subject)
        if kind == "team":
            return name in self._teams
        if kind == "feature":
            return name in self._features
        if kind == "caller":  # a caller the scope's teams own; unknown callers are hidden
            return name in self._callers
        return True

    # ---- scoped ----
    def current_states(self) -> pd.DataFrame:
        f = self._inner.current_states()
        keep = [self._visible(str(r), str(s)) for r, s in zip(f["rule"], f["subject"], strict=True)]
        return f[keep].reset_index(drop=True)

    def transitions(self) -> list[Transition]:
        return [t for t in self._inner.transitions() if self._visible(t.rule, t.subject)]

    def states(self) -> dict[tuple[str, str], str]:
        return {k: v for k, v in self._inner.states().items() if self._visible(*k)}

    def deliveries(self) -> list[dict[str, Any]]:
        visible = {t.id for t in self.transitions()}
        return [d for d in self._inner.deliveries() if d.get("transition_id") in visible]

    # ---- shared ----
    def probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        return self._inner.probes(since=since, until=until)

    def ab_probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        return self._inner.ab_probes(since=since, until=until)

    def last_probes(self, n: int) -> pd.DataFrame:
        return self._inner.last_probes(n)

    def job_counts(self) -> dict[str, dict[str, int]]:
        return self._inner.job_counts()
