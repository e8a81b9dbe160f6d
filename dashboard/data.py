"""Where pages get their data: the Lens (query layer), the alerts store, the settings.

Pages never build KQL and never open DuckDB: they ask `fetch` for catalogue queries (one `run_many` per
page), and the alerts store and cost model for the rest. `fetch` turns anything that goes wrong while
preparing a query (an unknown catalogue name, a name the allow-list refuses) into a failed result for
that one panel, so one bad query never breaks a page.

The app keeps its settings in `server.config["aoai_lens_settings"]`; tests may put their own Lens (with
a failing source, say) in `server.config["aoai_lens_lens"]`.

Each request's Context is derived from the signed-in user (`dashboard.auth`, on `flask.g`): a
team-scoped user's Context holds a `queries.scope.ScopedLens`, settings with only their budgets, and an
alerts store that hides rules about other teams. Pages cannot see past it: the scoping happens here and
in the cost model, not in the page code. One Context per scope is kept, so per-lens memos stay apart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from flask import current_app, has_app_context

from queries.config import Settings
from queries.results import QueryResult
from queries.scope import Scope, alert_rule_visible, scoped_lens

log = logging.getLogger(__name__)

Request = tuple[str, Mapping[str, object]]


@dataclass
class Context:
    settings: Settings
    lens: Any  # queries.lens.Lens, or a test double with the same methods
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _store: Any = None
    scope: Scope = field(default_factory=Scope.everything)

    def store(self) -> Any:
        """The alerts store (probe results, alert states, transitions, deliveries), or None when the
        scheduler has not created it yet. Scoped users get a view without other teams' rules."""
        if self._store is None:
            path = self.settings.state_path
            if not path.exists():
                return None
            from alerts.store import Store

            try:
                store = Store(path)
            except Exception as e:  # a corrupt or unreadable state file: its panels say so, the page goes on
                log.warning("alerts store %s cannot be opened: %s", path.name, e)
                return UnreadableStore(e)
            self._store = store if self.scope.is_everything else ScopedStore(store, self.scope, self.settings)
        return self._store

    def teams(self) -> list[str]:
        s = self.settings
        every = {r.team for r in s.attribution} | {b.name for b in s.budgets if b.scope == "team"}
        return sorted(t for t in every if self.scope.allows(t))

    def features(self, team: str = "") -> list[str]:
        return sorted(
            {r.feature for r in self.settings.attribution if (not team or r.team == team) and self.scope.allows(r.team)}
        )


class ScopedStore:
    """The alerts store as a team-scoped user sees it: states, transitions and deliveries of alert rules
    about another team or its features, and of any rule's subject that is another team or feature (a
    budget rule judges every budget), are left out; probe results (per deployment) stay."""

    def __init__(self, store: Any, scope: Scope, settings: Settings) -> None:
        self.inner = store
        by_name = {r.name: r for r in settings.alerts.rules}
        self._hidden = {name for name, r in by_name.items() if not alert_rule_visible(scope, r, settings.attribution)}
        others = {r.team for r in settings.attribution if not scope.allows(r.team)}
        others |= {r.feature for r in settings.attribution if not scope.allows(r.team)}
        others |= {b.name for b in settings.budgets if b.scope == "team" and not scope.allows(b.name)}
        self._hidden_subjects = others

    def _visible(self, rule: str, subject: str) -> bool:
        return rule not in self._hidden and subject not in self._hidden_subjects

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def current_states(self) -> pd.DataFrame:
        f = self.inner.current_states()
        keep = [self._visible(r, s) for r, s in zip(f["rule"], f["subject"], strict=True)]
        return f[keep].reset_index(drop=True)

    def transitions(self) -> list[Any]:
        return [t for t in self.inner.transitions() if self._visible(t.rule, t.subject)]

    def states(self) -> dict[tuple[str, str], str]:
        return {k: v for k, v in self.inner.states().items() if self._visible(*k)}

    def deliveries(self) -> list[dict[str, Any]]:
        visible = {t.id for t in self.transitions()}
        return [d for d in self.inner.deliveries() if d.get("transition_id") in visible]


def context() -> Context:
    """The request's context, from the Flask app the Dash app runs on."""
    if not has_app_context():
        raise RuntimeError("dashboard.data.context() needs the Dash app's Flask context")
    cfg = current_app.config
    settings: Settings = cfg["aoai_lens_settings"]
    lens = cfg.get("aoai_lens_lens")
    if lens is None:
        from queries.lens import get_lens

        lens = get_lens(settings)
    from dashboard.auth import current_user

    scope = current_user().scope
    if scope.is_everything:
        ctx = cfg.get("aoai_lens_context")
        if ctx is None or ctx.lens is not lens:
            ctx = Context(settings, lens, now=cfg.get("aoai_lens_now") or (lambda: datetime.now(UTC)))
            cfg["aoai_lens_context"] = ctx
        return ctx
    scoped: dict[str, Context] = cfg.setdefault("aoai_lens_scoped_contexts", {})
    ctx = scoped.get(scope.key)
    if ctx is None or ctx.lens.unscoped is not lens:
        ctx = Context(
            scope.settings(settings),
            scoped_lens(lens, scope, settings.attribution),
            now=cfg.get("aoai_lens_now") or (lambda: datetime.now(UTC)),
            scope=scope,
        )
        scoped[scope.key] = ctx
    return ctx


def failed(name: str, notice: str, kql: str = "") -> QueryResult:
    return QueryResult(name=name, frame=pd.DataFrame(), status="failed", notice=notice, kql=kql)


def fetch(lens: Any, requests: Mapping[str, Request]) -> dict[str, QueryResult]:
    """Run a page's catalogue queries together (`Lens.run_many`); key → result. A request that cannot
    even be rendered fails alone, with the reason as its notice."""
    keys = list(requests)
    try:
        results = lens.run_many([requests[k] for k in keys])
        return dict(zip(keys, results, strict=True))
    except Exception as e:  # something could not be rendered: retry one by one to isolate it
        log.info("run_many failed (%s); running the page's queries one by one", e)
    out: dict[str, QueryResult] = {}
    for k in keys:
        name, kwargs = requests[k]
        try:
            out[k] = lens.run(name, **kwargs)
        except Exception as e:
            out[k] = failed(name, f"{type(e).__name__}: {e}")
    return out


def guarded(name: str, call: Callable[[], QueryResult]) -> QueryResult:
    """A management-plane or metrics call that must not raise into the page."""
    try:
        return call()
    except Exception as e:
        return failed(name, f"{type(e).__name__}: {e}")


def deployments_frame(ctx: Context) -> pd.DataFrame:
    r = guarded("deployments", ctx.lens.deployments)
    return r.frame if r.status != "failed" else pd.DataFrame(columns=["Resource", "Deployment"])


class UnreadableStore:
    """Stands in for a state store that cannot be opened: every read raises the reason, which
    `store_result` turns into a failed panel."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError(f"the state store cannot be read: {type(self.error).__name__}: {self.error}")

        return fail


def store_result(name: str, call: Callable[[], pd.DataFrame]) -> QueryResult:
    """Read from the alerts store as a QueryResult, so a store panel looks like any other."""
    try:
        frame = call()
        return QueryResult(name=name, frame=frame, source="alerts store")
    except Exception as e:
        return failed(name, f"alerts store: {type(e).__name__}: {e}")
