"""Who may see what: a user's team scope, enforced where the data is produced, not where it is drawn.

A `Scope` is a set of teams, or everything (``Scope.everything()``, teams None: admins, and every user
when the dashboard has no auth mode). Scoping rules, applied by the data layer for every page and every
download:

- Cost: `queries.cost.report.narrow(result, scope)` keeps only the **allocated** rows of the scope's
  teams. Unallocated, probe and PTU-idle lines, and the per-deployment PTU summary, cover every team's
  traffic, so a scoped user does not see them at all (not even aggregated: an "other teams" line would
  reveal what the others spend). A scoped allocation's `total` is the sum of its own rows.
- Callers: catalogue results with caller columns (ObjectId / CallerIP) keep only callers whose
  attribution rule maps them to one of the scope's teams; unattributed callers are dropped. Results
  with a Team column keep the scope's teams only.
- Budgets: only the scope's team budgets and the budgets of features its teams own.
- Deployment-level operations (request counts, status codes, latency, quota, probes) are shared
  infrastructure and stay visible to every signed-in user.

`queries.scoped.ScopedLens` wraps a `queries.lens.Lens` so that everything asked through it is scoped,
and refuses what it does not explicitly offer; the cost model reaches the whole data through
`queries.scoped.whole()` (allocation must see every caller to share PTU and metric tokens correctly)
and narrows the answer instead (`queries.cost.report.narrow`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from queries.config import AttributionRule, Settings
from queries.cost.attribution import ALLOCATED, match_rule
from queries.names import CallerNames, short_id

API_KEY_CALLER = "(API key)"
NO_RULE = "(no rule)"


@dataclass(frozen=True)
class Scope:
    teams: frozenset[str] | None = None  # None: everything

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def of(cls, teams: Iterable[str]) -> Scope:
        return cls(frozenset(t for t in teams if t))

    @property
    def is_everything(self) -> bool:
        return self.teams is None

    def allows(self, team: str | None) -> bool:
        return self.teams is None or (team or "") in self.teams

    @property
    def key(self) -> str:
        """A stable name for caches keyed per scope."""
        return "*" if self.teams is None else ",".join(sorted(self.teams))

    # ---- frames ----------------------------------------------------------------------------------
    def caller_teams(self, frame: pd.DataFrame, rules: Sequence[AttributionRule]) -> pd.Series:
        """The team each caller row is attributed to ("" when no rule claims it)."""
        if frame.empty:
            return pd.Series([], dtype=object, index=frame.index)
        oid = frame["ObjectId"].fillna("").astype(str) if "ObjectId" in frame.columns else pd.Series("", frame.index)
        ip = frame["CallerIP"].fillna("").astype(str) if "CallerIP" in frame.columns else pd.Series("", frame.index)
        dep = (
            frame["Deployment"].fillna("").astype(str) if "Deployment" in frame.columns else pd.Series("", frame.index)
        )
        memo: dict[tuple[str, str, str], str] = {}
        teams = []
        for key in zip(oid, ip, dep, strict=True):
            if key not in memo:
                hit = match_rule(rules, *key)
                memo[key] = hit[1].team if hit else ""
            teams.append(memo[key])
        return pd.Series(teams, index=frame.index, dtype=object)

    def frame(self, frame: pd.DataFrame, rules: Sequence[AttributionRule]) -> pd.DataFrame:
        """Any result frame, scoped: caller rows to the scope's attributed callers, Team rows to its teams."""
        if self.teams is None or frame is None:
            return frame
        keep = pd.Series(True, index=frame.index)
        if "ObjectId" in frame.columns or "CallerIP" in frame.columns:
            keep &= self.caller_teams(frame, rules).isin(self.teams)
        if "Team" in frame.columns:
            keep &= frame["Team"].fillna("").astype(str).isin(self.teams)
        if "Category" in frame.columns:
            keep &= frame["Category"].astype(str) == ALLOCATED
        return frame[keep].reset_index(drop=True)

    def settings(self, settings: Settings) -> Settings:
        """Settings as the scope sees them: its own budgets and attribution rules only (allocation runs on
        the whole Lens's settings, so it still sees every rule)."""
        if self.teams is None:
            return settings
        feature_team = {r.feature: r.team for r in settings.attribution}
        budgets = [
            b
            for b in settings.budgets
            if (b.scope == "team" and b.name in self.teams)
            or (b.scope == "feature" and feature_team.get(b.name) in self.teams)
        ]
        rules = [r for r in settings.attribution if r.team in self.teams]
        return settings.model_copy(update={"budgets": budgets, "attribution": rules})


def features_of(teams: Iterable[str], rules: Sequence[AttributionRule]) -> frozenset[str]:
    wanted = set(teams)
    return frozenset(r.feature for r in rules if r.team in wanted)


WHOLE_ESTATE_RULES = frozenset({"billing_drift"})


def alert_rule_visible(scope: Scope, rule: Any, rules: Sequence[AttributionRule]) -> bool:
    """Whether a scoped user may see an alert rule's states: rules about another team's spend are hidden,
    and so are rules about the whole bill (`billing_drift`: Azure bills accounts, not teams)."""
    if scope.teams is None or rule is None:
        return True
    if getattr(rule, "kind", None) in WHOLE_ESTATE_RULES:
        return False
    if getattr(rule, "team", None) and rule.team not in scope.teams:
        return False
    return not getattr(rule, "feature", None) or rule.feature in features_of(scope.teams, rules)


# ---- who a caller is -----------------------------------------------------------------------------------


PROBE_CALLER = "(probes)"


def rule_label(rule: AttributionRule) -> str:
    """How a caller an attribution rule claims is named: its display name, else what the rule matches."""
    return rule.display_name or rule.object_id or rule.ip_range or rule.feature


def caller_label(name: str, object_id: str, caller_ip: str, probe_object_id: str | None = None) -> str:
    """One caller's name for people (alerts, the 429 explainer): `name` is `describe_callers`' Caller.
    Callers no rule claims are named by their object id, or by their IP when they used an API key."""
    oid = (object_id or "").lower()
    if probe_object_id and oid == probe_object_id.lower():
        return PROBE_CALLER
    if name == NO_RULE:
        return f"{NO_RULE} {short_id(oid)}" if oid else f"{API_KEY_CALLER} {caller_ip}"
    return name


def describe_callers(
    frame: pd.DataFrame, rules: Sequence[AttributionRule], directory: CallerNames | None = None
) -> pd.DataFrame:
    """Next to ObjectId, the caller's name (`Caller`) and `Feature`, so a page never shows a bare Entra
    object id: the directory's name (Graph), else the attribution rule's, else `NO_RULE` (the id is the
    last resort, `caller_label`). API-key callers (empty ObjectId) are labelled as such."""
    if frame is None or "ObjectId" not in frame.columns:
        return frame
    out = frame.copy()
    names, features = [], []
    ips = out["CallerIP"].fillna("").astype(str) if "CallerIP" in out.columns else [""] * len(out)
    deps = out["Deployment"].fillna("").astype(str) if "Deployment" in out.columns else [""] * len(out)
    for oid, ip, dep in zip(out["ObjectId"].fillna("").astype(str), ips, deps, strict=True):
        hit = match_rule(rules, oid, ip, dep)
        known = directory.get(oid) if directory is not None and oid else None
        if hit is None:
            names.append(known or NO_RULE)
            features.append("")
        else:
            r = hit[1]
            names.append(known or r.display_name or (short_id(oid) if oid else rule_label(r)))
            features.append(r.feature)
    pos = list(out.columns).index("ObjectId") + 1
    out.insert(pos, "Caller", names)
    if "Feature" not in out.columns:
        out.insert(pos + 1, "Feature", features)
    return out


def name_callers_frame(
    frame: pd.DataFrame,
    rules: Sequence[AttributionRule],
    directory: CallerNames | None,
    probe_object_id: str | None = None,
) -> pd.DataFrame:
    """`frame` with a `Caller` column (before ObjectId) naming each row's caller for a person: the
    directory's name, else the attribution rule's, else `(no rule)` and the short id, or `(API key)` and
    the IP. ObjectId stays (a CSV keeps the full id)."""
    if frame is None or "ObjectId" not in frame.columns:
        return frame
    named = describe_callers(frame.drop(columns=["Caller"], errors="ignore"), rules, directory)
    ips = named["CallerIP"].fillna("").astype(str) if "CallerIP" in named.columns else [""] * len(named)
    labels = [
        caller_label(str(n), str(o), str(ip), probe_object_id)
        for n, o, ip in zip(named["Caller"], named["ObjectId"].fillna("").astype(str), ips, strict=True)
    ]
    out = frame.drop(columns=["Caller"], errors="ignore").copy()
    out.insert(list(out.columns).index("ObjectId"), "Caller", labels)
    return out
