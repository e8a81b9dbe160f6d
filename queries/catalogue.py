"""The query catalogue: one question per `.kql` file in `queries/kql/`, with a parsed header.

A file starts with `//` header lines, then the KQL body, which stays pasteable into the Log Analytics
editor once the `let` lines the renderer writes are in front of it:

    // title: Requests by status class per deployment
    // description: what it answers, in a sentence
    // tables: AzureDiagnostics
    // param: deployments: names(deployment) = []
    // param: top: long = 10
    // returns: TimeGenerated:datetime, Deployment:string, StatusClass:string, Requests:long
    // cache: 5m
    // range: 24h

Parameter types: name, names (lists), string, long, real, bool, timespan, datetime; `(deployment)` names
the allow-list a name is checked against. The body reads `_start`, `_end`, `_bin` and `_<param>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from queries.render import Param, parse_duration

KQL_DIR = Path(__file__).parent / "kql"
KUSTO_TYPES = {"string", "bool", "datetime", "int", "long", "real", "dynamic", "guid", "timespan", "decimal"}
PARAM_TYPES = {"name", "names", "string", "long", "real", "bool", "timespan", "datetime"}


class CatalogueError(ValueError):
    """A catalogue file whose header is wrong; the message names the file and line."""


@dataclass(frozen=True)
class QuerySpec:
    name: str
    title: str
    description: str
    tables: tuple[str, ...]
    params: tuple[Param, ...]
    returns: tuple[tuple[str, str], ...]  # (column, kusto type)
    cache: timedelta
    range: timedelta
    body: str
    path: Path = field(compare=False)

    @property
    def columns(self) -> list[str]:
        return [c for c, _ in self.returns]


_PARAM_RE = re.compile(
    r"^(?P<name>[a-z][a-z0-9_]*)\s*:\s*(?P<type>[a-z]+)(?:\((?P<allow>[a-z_]+)\))?\s*(?:=\s*(?P<default>.*))?$"
)


def parse_file(path: Path) -> QuerySpec:
    text = path.read_text()
    header: dict[str, list[tuple[int, str]]] = {}
    body_lines: list[str] = []
    in_header = True
    for no, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^//\s*([a-z]+)\s*:\s*(.*)$", line) if in_header else None
        if m:
            header.setdefault(m.group(1), []).append((no, m.group(2).strip()))
            continue
        if in_header and (not line.strip() or line.startswith("//")):
            continue
        in_header = False
        body_lines.append(line)

    def one(key: str, required: bool = True) -> tuple[int, str]:
        if key not in header:
            if required:
                raise CatalogueError(f"{path.name}: header has no '// {key}:' line")
            return (0, "")
        return header[key][0]

    known = {"title", "description", "tables", "param", "returns", "cache", "range"}
    for key, entries in header.items():
        if key not in known:
            raise CatalogueError(f"{path.name}:{entries[0][0]}: unknown header field {key!r}")
    params = []
    for no, spec in header.get("param", []):
        m = _PARAM_RE.match(spec)
        if not m or m.group("type") not in PARAM_TYPES:
            raise CatalogueError(f"{path.name}:{no}: cannot parse parameter {spec!r} (name: type[(allow)] [= default])")
        default = m.group("default")
        params.append(
            Param(m.group("name"), m.group("type"), default.strip() if default is not None else None, m.group("allow"))
        )
    no, returns_text = one("returns")
    returns = []
    for col in returns_text.split(","):
        name, _, typ = col.strip().partition(":")
        if not name or typ.strip() not in KUSTO_TYPES:
            raise CatalogueError(f"{path.name}:{no}: bad returned column {col.strip()!r} (Name:kustotype)")
        returns.append((name.strip(), typ.strip()))
    try:
        cache = parse_duration(one("cache")[1]) if one("cache")[1] != "0" else timedelta(0)
        range_ = parse_duration(one("range", required=False)[1] or "24h")
    except ValueError as e:
        raise CatalogueError(f"{path.name}: {e}") from None
    body = "\n".join(body_lines).strip()
    if not body:
        raise CatalogueError(f"{path.name}: no query body")
    used = set(re.findall(r"\b_([a-z][a-z0-9_]*)\b", body)) - {"start", "end", "bin"}
    declared = {p.name for p in params}
    if used - declared:
        raise CatalogueError(f"{path.name}: body uses undeclared parameter(s) {sorted(used - declared)}")
    return QuerySpec(
        name=path.stem,
        title=one("title")[1],
        description=one("description", required=False)[1],
        tables=tuple(t.strip() for t in one("tables")[1].split(",") if t.strip()),
        params=tuple(params),
        returns=tuple(returns),
        cache=cache,
        range=range_,
        body=body,
        path=path,
    )


@lru_cache(maxsize=1)
def load_catalogue(directory: Path = KQL_DIR) -> dict[str, QuerySpec]:
    """Every query in the catalogue, by name (the file's stem)."""
    return {p.stem: parse_file(p) for p in sorted(directory.glob("*.kql"))}


def get(name: str) -> QuerySpec:
    catalogue = load_catalogue()
    if name not in catalogue:
        close = [n for n in catalogue if name.lower() in n or n in name.lower()]
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(catalogue))}"
        raise KeyError(f"no query named {name!r} in the catalogue{hint}")
    return catalogue[name]
