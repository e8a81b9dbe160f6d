"""The global filters, kept in the URL query string so a view can be shared.

    /reliability?range=7d&resource=contoso-oai-eastus&deployment=chat-gpt4o,rag-gpt41&team=support
    /cost?range=custom&start=2026-11-01&end=2026-11-15

Dash pages pass the query string to `layout(**query)`; `Filters.from_query` reads it leniently (an
unknown preset or a bad date falls back to the default rather than breaking the page) and
`Filters.to_search` writes it back. The page stores `Filters.to_store()` in a dcc.Store that its data
callback listens to, so the shell renders at once and the data arrives after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

PRESETS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "24h"
FILTER_KEYS = ("range", "start", "end", "resource", "deployment", "team")


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out.extend(v.strip() for v in str(item).split(",") if v.strip())
    return out


# Dates a custom range may use: logs are no older than this, and nothing is logged in the future. A
# date outside (year 9999, year -5000) is a typo or a probe, answered with a notice and the last 24h.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
SHOWN_CHARS = 40  # how much of a bad value a notice repeats


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…")


def _parse_day(value: str | None) -> datetime | None:
    """A date or time from the URL (UTC unless it says otherwise); None when it does not parse."""
    if not value:
        return None
    try:
        t = pd.Timestamp(str(value))
        if pd.isna(t):
            return None
        dt = t.to_pydatetime()
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, ArithmeticError):  # out of pandas' or Python's range too
        return None


def _in_range(t: datetime, now: datetime) -> bool:
    return EARLIEST <= t <= now + FUTURE_SLACK


@dataclass(frozen=True)
class Filters:
    range: str = DEFAULT_RANGE  # a preset key or "custom"
    start: datetime | None = None  # custom range only
    end: datetime | None = None
    resource: str = ""
    deployments: tuple[str, ...] = ()
    team: str = ""
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, query: Mapping[str, str | list[str]], now: datetime | None = None) -> Filters:
        """Filters from a URL query string's values. Never raises: a value it cannot use is named in
        `problems` (shown above the page) and the default, the last 24h, is used instead."""
        try:
            return cls._from_query(query, now or datetime.now(UTC))
        except Exception:  # whatever arrives in a URL, the page renders with the defaults and says so
            return cls(problems=("could not read the filters in the address; showing the last 24h",))

    @classmethod
    def _from_query(cls, query: Mapping[str, str | list[str]], now: datetime) -> Filters:
        problems: list[str] = []
        rng = str(_as_list(query.get("range"))[0]) if _as_list(query.get("range")) else DEFAULT_RANGE
        start = end = None
        if rng == "custom":
            start_text, end_text = _first(query.get("start")), _first(query.get("end"))
            start, end = _parse_day(start_text), _parse_day(end_text)
            if start_text and start is None:
                problems.append(f"start date {_shown(start_text)} is not a date; showing the last 24h")
                start, end = None, None  # the date picker stays open for a start date
            elif end_text and end is None:
                problems.append(f"end date {_shown(end_text)} is not a date; showing the last 24h")
                rng, start = DEFAULT_RANGE, None
            elif start is None:  # the date picker is showing: wait for a start date
                problems.append("pick a start date for the custom range; showing the last 24h until then")
                end = None
            elif not _in_range(start, now) or (end is not None and not _in_range(end, now + timedelta(days=366))):
                problems.append(
                    f"custom range {_shown(start_text)} to {_shown(end_text or 'now')} is outside "
                    f"{EARLIEST:%Y-%m-%d} to today; showing the last 24h"
                )
                rng, start, end = DEFAULT_RANGE, None, None
            elif end is not None and end <= start:
                problems.append("custom range ends before it starts; showing the last 24h")
                rng, start, end = DEFAULT_RANGE, None, None
            elif end is not None and len(str(end_text)) <= 10:
                end = end + timedelta(days=1)  # an end *date* includes that whole day
        elif rng not in PRESETS:
            problems.append(f"unknown range {_shown(rng)}; showing the last 24h")
            rng = DEFAULT_RANGE
        return cls(
            range=rng,
            start=start if rng == "custom" else None,
            end=end if rng == "custom" else None,
            resource=_first(query.get("resource")) or "",
            deployments=tuple(dict.fromkeys(_as_list(query.get("deployment")))),
            team=_first(query.get("team")) or "",
            problems=tuple(problems),
        )

    # ---- the URL ----------------------------------------------------------------------------
    def query(self) -> dict[str, str]:
        q: dict[str, str] = {"range": self.range}  # always explicit: pages may default differently
        if self.range == "custom" and self.start is not None:
            q["start"] = self.start.strftime("%Y-%m-%d")
            if self.end is not None:
                q["end"] = (self.end - timedelta(days=1)).strftime("%Y-%m-%d")
        if self.resource:
            q["resource"] = self.resource
        if self.deployments:
            q["deployment"] = ",".join(self.deployments)
        if self.team:
            q["team"] = self.team
        return q

    def to_search(self) -> str:
        q = self.query()
        return "?" + urlencode(q, safe=",") if q else ""

    # ---- a dcc.Store round trip -------------------------------------------------------------
    def to_store(self) -> dict[str, object]:
        d = asdict(self)
        d["start"] = self.start.isoformat() if self.start else None
        d["end"] = self.end.isoformat() if self.end else None
        d["deployments"] = list(self.deployments)
        d["problems"] = list(self.problems)
        return d

    @classmethod
    def from_store(cls, data: object) -> Filters:
        """Filters back from the page's dcc.Store. The store's value comes from the browser, so anything
        may arrive: what is not a filter this module wrote gives the defaults and a problem, never an
        exception."""
        if not data:
            return cls()
        try:
            if not isinstance(data, Mapping):
                raise TypeError(type(data).__name__)
            rng = str(data.get("range") or DEFAULT_RANGE)
            start, end = data.get("start"), data.get("end")
            deployments, problems = data.get("deployments") or [], data.get("problems") or []
            if rng not in (*PRESETS, "custom") or not isinstance(deployments, list) or not isinstance(problems, list):
                raise ValueError("not a filter")
            f = cls(
                range=rng,
                start=datetime.fromisoformat(str(start)) if start else None,
                end=datetime.fromisoformat(str(end)) if end else None,
                resource=str(data.get("resource") or ""),
                deployments=tuple(str(d) for d in deployments),
                team=str(data.get("team") or ""),
                problems=tuple(str(p) for p in problems),
            )
            for t in (f.start, f.end):
                if t is not None and (t.tzinfo is None or not _in_range(t, datetime.now(UTC) + timedelta(days=366))):
                    raise ValueError("time out of range")
            return f
        except (TypeError, ValueError, OverflowError):
            return cls(problems=("could not read the page's filters; showing the last 24h",))

    # ---- what queries get -------------------------------------------------------------------
    def time_kwargs(self) -> dict[str, object]:
        """`since=` for a preset, `start=`/`end=` for a custom range: what Lens.run takes."""
        if self.range == "custom" and self.start is not None:
            return {"start": self.start, "end": self.end} if self.end else {"start": self.start}
        return {"since": PRESETS.get(self.range, PRESETS[DEFAULT_RANGE])}

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """The absolute range, for sources that want one (the alerts store, the cost model)."""
        if self.range == "custom" and self.start is not None:
            return self.start, min(self.end, now) if self.end else now
        return now - PRESETS.get(self.range, PRESETS[DEFAULT_RANGE]), now

    def scoped_deployments(self, known: pd.DataFrame | None) -> list[str]:
        """The deployments the filters select, checked against the management plane's list
        (Deployment, Resource columns). [] means all; a resource filter selects its deployments."""
        if known is None or known.empty or "Deployment" not in known.columns:
            return list(self.deployments)
        names = set(known["Deployment"].astype(str))
        chosen = [d for d in self.deployments if d in names]
        if self.resource and "Resource" in known.columns:
            in_res = known.loc[known["Resource"].astype(str) == self.resource, "Deployment"].astype(str).tolist()
            chosen = [d for d in chosen if d in in_res] if chosen else sorted(in_res)
            if not chosen:
                return ["(none)"]  # a resource with no deployment selects nothing
        return chosen

    def describe(self) -> str:
        if self.range == "custom" and self.start is not None:
            end = self.end.strftime("%Y-%m-%d %H:%M") if self.end else "now"
            span = f"{self.start:%Y-%m-%d %H:%M} → {end} UTC"
        elif self.range == "custom":
            span = "last 24h (custom range: pick a start date)"
        else:
            span = f"last {self.range}"
        parts = [span]
        if self.resource:
            parts.append(f"resource {self.resource}")
        if self.deployments:
            parts.append("deployments " + ", ".join(self.deployments))
        if self.team:
            parts.append(f"team {self.team}")
        return " · ".join(parts)


def _first(value: str | list[str] | None) -> str | None:
    items = _as_list(value)
    return items[0] if items else None


def from_controls(
    range_: str | None,
    start: str | None,
    end: str | None,
    resource: str | None,
    deployments: Iterable[str] | None,
    team: str | None,
) -> Filters:
    """Filters from the filter bar's control values (dates as YYYY-MM-DD strings)."""
    q: dict[str, str | list[str]] = {"range": range_ or DEFAULT_RANGE}
    if range_ == "custom":
        if start:
            q["start"] = str(start)[:10]
        if end:
            q["end"] = str(end)[:10]
    if resource:
        q["resource"] = resource
    if deployments and isinstance(deployments, list | tuple):
        q["deployment"] = [str(d) for d in deployments]
    if team:
        q["team"] = team
    return Filters.from_query(q)


def filter_bar(
    f: Filters,
    *,
    resources: Iterable[str] = (),
    deployments: Iterable[str] = (),
    teams: Iterable[str] = (),
    show: tuple[str, ...] = ("range", "resource", "deployment", "team"),
) -> html.Div:
    """The filter controls, initialised from the URL. One global callback (in app.py) writes changes back
    to the URL, which re-renders the page with the new query string."""

    def ctl(name: str, component: object, width: int) -> dbc.Col:
        style = {} if name in show else {"display": "none"}
        return dbc.Col(component, md=width, style=style)

    range_options = [{"label": f"Last {k}", "value": k} for k in PRESETS] + [{"label": "Custom…", "value": "custom"}]
    return html.Div(
        [
            dbc.Row(
                [
                    ctl(
                        "range",
                        dbc.Select(
                            id={"type": "filter", "name": "range"}, options=range_options, value=f.range, size="sm"
                        ),
                        2,
                    ),
                    dbc.Col(
                        dcc.DatePickerRange(
                            id={"type": "filter-dates", "name": "custom"},
                            start_date=f.start.date().isoformat() if f.start else None,
                            end_date=(f.end - timedelta(days=1)).date().isoformat() if f.end else None,
                            display_format="YYYY-MM-DD",
                            clearable=False,
                            minimum_nights=0,
                        ),
                        md=3,
                        style={} if f.range == "custom" else {"display": "none"},
                        className="filter-dates",
                    ),
                    ctl(
                        "resource",
                        dcc.Dropdown(
                            id={"type": "filter", "name": "resource"},
                            options=[{"label": r, "value": r} for r in sorted(set(resources))],
                            value=f.resource or None,
                            placeholder="All resources",
                            clearable=True,
                        ),
                        2,
                    ),
                    ctl(
                        "deployment",
                        dcc.Dropdown(
                            id={"type": "filter", "name": "deployment"},
                            options=[{"label": d, "value": d} for d in sorted(set(deployments))],
                            value=list(f.deployments),
                            multi=True,
                            placeholder="All deployments",
                        ),
                        3,
                    ),
                    ctl(
                        "team",
                        dcc.Dropdown(
                            id={"type": "filter", "name": "team"},
                            options=[{"label": t, "value": t} for t in sorted(set(teams))],
                            value=f.team or None,
                            placeholder="All teams",
                            clearable=True,
                        ),
                        2,
                    ),
                ],
                className="g-2 align-items-center",
            ),
            *[dbc.Alert(p, color="warning", className="py-1 my-2 small filter-problem") for p in f.problems],
        ],
        className="filter-bar mb-3",
    )
