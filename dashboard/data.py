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

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import pandas as pd
from flask import current_app, has_app_context
from plotly.utils import PlotlyJSONEncoder

from alerts.scoped import ScopedStore, StoreView
from alerts.store import Transition
from queries.config import Settings
from queries.names import CallerNames
from queries.reader import LensLike
from queries.results import QueryResult
from queries.scope import Scope, name_callers_frame
from queries.scoped import scoped_lens, whole

log = logging.getLogger(__name__)

Request = tuple[str, Mapping[str, object]]


@dataclass
class Context:
    settings: Settings
    lens: LensLike  # a queries.lens.Lens, or a queries.scope.ScopedLens for a team-scoped user
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _store: StoreView | None = None
    scope: Scope = field(default_factory=Scope.everything)

    def store(self) -> StoreView | None:
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
    if ctx is None or whole(ctx.lens) is not lens:
        ctx = Context(
            scope.settings(settings),
            scoped_lens(lens, scope, settings.attribution),
            now=cfg.get("aoai_lens_now") or (lambda: datetime.now(UTC)),
            scope=scope,
        )
        scoped[scope.key] = ctx
    return ctx


PAGE_TTL = timedelta(seconds=60)


def _has_problem(answer: Any) -> bool:
    """Whether a page answer holds a failed or partial panel (those are never kept: the next view asks again)."""
    text = json.dumps(answer, cls=PlotlyJSONEncoder) if not isinstance(answer, str) else answer
    return "panel-failed" in text or "panel-partial" in text


def page_answer(page: str, inputs: object, build: Callable[[Context], list[Any]]) -> list[Any]:
    """A page callback's answer, computed once per page, inputs, team scope and minute, and shared by
    every user with that scope (and, with Redis, every worker): a page opened by many people at once is
    drawn once. Answers with a failed or partial panel are not kept."""
    ctx = context()
    minute = int(ctx.now().timestamp() // PAGE_TTL.total_seconds())
    key = f"page:{page}:{ctx.scope.key}:{minute}:{json.dumps(inputs, sort_keys=True, default=str)}"
    return whole(ctx.lens).memo(key, PAGE_TTL, lambda: build(ctx), keep=lambda a: not _has_problem(a))


def failed(name: str, notice: str, kql: str = "") -> QueryResult:
    return QueryResult(name=name, frame=pd.DataFrame(), status="failed", notice=notice, kql=kql)


def fetch(lens: LensLike, requests: Mapping[str, Request]) -> dict[str, QueryResult]:
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

    def _fail(self) -> NoReturn:
        raise RuntimeError(f"the state store cannot be read: {type(self.error).__name__}: {self.error}")

    def current_states(self) -> pd.DataFrame:
        self._fail()

    def transitions(self) -> list[Transition]:
        self._fail()

    def states(self) -> dict[tuple[str, str], str]:
        self._fail()

    def deliveries(self) -> list[dict[str, Any]]:
        self._fail()

    def probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        self._fail()

    def ab_probes(self, since: float | None = None, until: float | None = None) -> pd.DataFrame:
        self._fail()

    def last_probes(self, n: int) -> pd.DataFrame:
        self._fail()

    def job_counts(self) -> dict[str, dict[str, int]]:
        self._fail()


def store_result(name: str, call: Callable[[], pd.DataFrame]) -> QueryResult:
    """Read from the alerts store as a QueryResult, so a store panel looks like any other."""
    try:
        frame = call()
        return QueryResult(name=name, frame=frame, source="alerts store")
    except Exception as e:
        return failed(name, f"alerts store: {type(e).__name__}: {e}")


def named_callers(ctx: Context, frame: pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    """`frame` with a `Caller` column naming each caller (directory name → rule name → id), through the
    context's Lens (a scoped view names only its own callers), and a notice when names could not be had."""
    if frame is None or frame.empty or "ObjectId" not in frame.columns:
        return frame, None
    directory: CallerNames | None = None
    try:
        directory = ctx.lens.caller_names(frame)
        notice = directory.notice
    except Exception as e:  # names are a nicety: a page never fails for them
        notice = f"callers shown by attribution rule or id: {type(e).__name__}"
    return name_callers_frame(frame, ctx.settings.attribution, directory, ctx.settings.probe_object_id), notice
