"""The only module that turns values into KQL text.

Log Analytics takes no query parameters, so values are bound in a `let` prefix as literals: datetimes
as `datetime(...)`, timespans as `1h`-style literals, numbers as numbers, strings as verbatim literals
`@'...'` with every quote doubled, lists as `dynamic([...])` of such strings. User-chosen names are
checked before that: a character outside the allow-listed set, a newline, or an over-long value is
refused with `RenderError`, and where the caller knows the real names (the deployments a workspace
has), anything else is refused too. Nothing else in the project formats values into KQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Names users choose: Azure deployment, resource, model and team names, object ids, IP prefixes.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/@*()+-]{0,127}$")
MAX_NAME = 128

# Bins a chart may use, smallest first; the renderer picks the smallest giving at most MAX_POINTS.
BINS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
)
MAX_POINTS = 500


class RenderError(ValueError):
    """A value that cannot be bound safely; the message says which parameter and why."""


def kql_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return f"datetime({value.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z)"


def kql_timespan(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds <= 0 or not math.isfinite(seconds):
        raise RenderError(f"timespan must be positive, got {value}")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds * 1000)}ms"


def kql_string(value: str) -> str:
    """A verbatim string literal; quotes doubled. Newlines are refused (they end a verbatim literal)."""
    if "\n" in value or "\r" in value:
        raise RenderError("strings may not contain line breaks")
    return "@'" + value.replace("'", "''") + "'"


def kql_string_list(values: Iterable[str]) -> str:
    return "dynamic([" + ", ".join(kql_string(v) for v in values) + "])"


def check_name(param: str, value: str, allowed: Iterable[str] | None = None) -> str:
    """Validate one user-chosen name: allow-listed characters, then membership when known."""
    if not isinstance(value, str):
        raise RenderError(f"{param}: expected a name, got {type(value).__name__}")
    if len(value) > MAX_NAME:
        raise RenderError(f"{param}: name longer than {MAX_NAME} characters")
    if not NAME_RE.fullmatch(value):  # fullmatch: `$` alone would let a trailing newline through
        raise RenderError(f"{param}: {value[:40]!r} has characters a name may not have")
    if allowed is not None:
        known = set(allowed)
        if value not in known:
            raise RenderError(f"{param}: {value!r} is not one of the known values")
    return value


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `6h`, `7d`, `2w` -> timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not m:
        raise RenderError(f"{text!r} is not a duration like 15m, 6h or 7d")
    n, unit = int(m.group(1)), m.group(2)
    if n <= 0:
        raise RenderError(f"{text!r}: a duration must be positive")
    return {
        "s": timedelta(seconds=n),
        "m": timedelta(minutes=n),
        "h": timedelta(hours=n),
        "d": timedelta(days=n),
        "w": timedelta(weeks=n),
    }[unit]


def auto_bin(start: datetime, end: datetime, max_points: int = MAX_POINTS) -> timedelta:
    """The smallest standard bin that keeps a series to at most `max_points` points."""
    span = end - start
    for b in BINS:
        if span / b <= max_points:
            return b
    return timedelta(days=max(1, math.ceil(span / timedelta(days=1) / max_points)))


@dataclass(frozen=True)
class Param:
    """A declared catalogue parameter: name, type and default (as text from the header)."""

    name: str
    type: str  # string, name, names, long, real, timespan, datetime, bool
    default: str | None = None
    allow: str | None = None  # which allow-list names of this parameter come from (deployment, team, ...)


def _coerce(p: Param, value: object, allowed: Mapping[str, Iterable[str]]) -> str:
    """One parameter value -> KQL literal."""
    known = allowed.get(p.allow) if p.allow else None
    if p.type == "names":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip(" ")]
        if not isinstance(value, Sequence):
            raise RenderError(f"{p.name}: expected a list of names")
        # only spaces are trimmed ("a, b" on a command line); other whitespace is refused with the name
        return kql_string_list(check_name(p.name, str(v).strip(" "), known) for v in value)
    if p.type == "name":
        return kql_string(check_name(p.name, str(value), known))
    if p.type == "string":
        text = str(value)
        if len(text) > 1000:
            raise RenderError(f"{p.name}: longer than 1000 characters")
        return kql_string(text)
    if p.type == "long":
        try:
            return str(int(str(value)))
        except ValueError:
            raise RenderError(f"{p.name}: {value!r} is not a whole number") from None
    if p.type == "real":
        try:
            f = float(str(value))
        except ValueError:
            raise RenderError(f"{p.name}: {value!r} is not a number") from None
        if not math.isfinite(f):
            raise RenderError(f"{p.name}: must be finite")
        return repr(f)
    if p.type == "bool":
        text = str(value).lower()
        if text not in ("true", "false", "1", "0"):
            raise RenderError(f"{p.name}: {value!r} is not true or false")
        return "true" if text in ("true", "1") else "false"
    if p.type == "timespan":
        return kql_timespan(value if isinstance(value, timedelta) else parse_duration(str(value)))
    if p.type == "datetime":
        if isinstance(value, datetime):
            return kql_datetime(value)
        try:
            return kql_datetime(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
        except ValueError:
            raise RenderError(f"{p.name}: {value!r} is not an ISO 8601 time") from None
    raise RenderError(f"{p.name}: unknown parameter type {p.type!r}")


def render(
    body: str,
    params: Sequence[Param],
    values: Mapping[str, object],
    *,
    start: datetime,
    end: datetime,
    bin: timedelta | None = None,
    allowed: Mapping[str, Iterable[str]] | None = None,
) -> str:
    """The query as it will be sent: a `let` prefix binding `_start`, `_end`, `_bin` and every
    declared parameter (`_<name>`), then the body unchanged."""
    declared = {p.name: p for p in params}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise RenderError(
            f"unknown parameter(s): {', '.join(unknown)}; this query takes: {', '.join(declared) or 'none'}"
        )
    if end <= start:
        raise RenderError("the end of the time range must be after its start")
    lets = [
        f"let _start = {kql_datetime(start)};",
        f"let _end = {kql_datetime(end)};",
        f"let _bin = {kql_timespan(bin or auto_bin(start, end))};",
    ]
    for p in params:
        if p.name in values and values[p.name] is not None:
            literal = _coerce(p, values[p.name], allowed or {})
        elif p.default is not None:
            literal = (
                _coerce(p, p.default, {})
                if p.type not in ("names",)
                else (kql_string_list([]) if p.default in ("", "[]") else _coerce(p, p.default, {}))
            )
        else:
            raise RenderError(f"parameter {p.name} is required")
        lets.append(f"let _{p.name} = {literal};")
    return "\n".join(lets) + "\n" + body.strip() + "\n"
