"""Who a caller is: an Entra object id turned into the name a person knows it by.

The logs name a caller by its object id only. A `NameResolver` asks the directory (Microsoft Graph's
`directoryObjects/getByIds` in `queries.sources.graph`; the demo's directory in `queries.demo.directory`)
for display names, at most `GRAPH_BATCH` ids a call. `lookup` keeps every answer in the Lens's cache for
`names.ttl_minutes`, including "the directory has no such object", so a page asks only for ids it has not
seen; a failed lookup (throttled, a missing permission) is kept for `names.error_ttl_minutes` with its
reason, and the ids fall back meanwhile.

The fallback chain, everywhere a caller is shown: the directory's name, else the attribution rule's name,
else the id (shortened on a page by `short_id`; the full id stays in the CSV and the FOCUS export).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from queries.cache import Cache

GRAPH_BATCH = 1000  # Graph's limit: "You can specify up to 1000 IDs" per getByIds call
KEY = "caller-name:"  # cache key prefix, one entry per (lower-cased) object id
_NOT_FOUND = ""  # cached: the directory has no such object, or one without a name
_FAILED = "\x00"  # cached prefix: the lookup failed; the rest is why
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class NamesError(Exception):
    """The directory could not be asked (throttled past the wait we allow, refused, unreachable). The
    message says why for a person, e.g. which Graph permission is missing."""


class NameResolver(Protocol):
    """A directory of display names."""

    source: str  # "Microsoft Graph", "demo directory": where a name came from, for notices

    def resolve(self, object_ids: Sequence[str]) -> dict[str, str]:
        """Lower-cased object id -> display name for the ids the directory knows (at most `GRAPH_BATCH`
        ids a call); ids it does not know are left out. Raises `NamesError`."""
        ...


@dataclass(frozen=True)
class CallerNames:
    """Directory names of some callers (lower-cased object id -> name), and why some are missing."""

    names: Mapping[str, str] = field(default_factory=dict)
    notice: str | None = None

    def get(self, object_id: str | None) -> str | None:
        return self.names.get((object_id or "").strip().lower()) or None


def short_id(object_id: str) -> str:
    """An object id as a page shows it when nothing names it: its first 8 characters and an ellipsis."""
    oid = (object_id or "").strip()
    return oid[:8] + "…" if len(oid) > 9 else oid


def display_name(object_id: str | None, directory: CallerNames | None, rule_name: str | None) -> str:
    """The fallback chain: the directory's name, else the attribution rule's name, else the short id."""
    return (directory.get(object_id) if directory else None) or rule_name or short_id(object_id or "")


def object_ids(values: Iterable[object]) -> list[str]:
    """The distinct lower-cased GUIDs among `values` (an id the logs garbled is never sent to Graph,
    where one bad id would fail the whole batch)."""
    out = {str(v).strip().lower() for v in values if v is not None}
    return sorted(v for v in out if _GUID.match(v))


def lookup(
    cache: Cache,
    resolver: NameResolver | None,
    ids: Iterable[object],
    *,
    ttl_s: float,
    error_ttl_s: float,
    lock: threading.Lock | None = None,
) -> CallerNames:
    """Names of `ids` from the cache, asking `resolver` for the rest in batches of `GRAPH_BATCH`; every
    answer is cached (`ttl_s`), and a failed batch's ids are cached as failed (`error_ttl_s`) with why."""
    wanted = object_ids(ids)
    if resolver is None or not wanted:
        return CallerNames()
    names: dict[str, str] = {}
    failures: list[str] = []

    def from_cache(todo: list[str]) -> list[str]:
        missing = []
        for oid in todo:
            hit = cache.get(KEY + oid)
            if hit is None:
                missing.append(oid)
            elif hit.startswith(_FAILED):
                failures.append(hit[len(_FAILED) :])
            elif hit != _NOT_FOUND:
                names[oid] = hit
        return missing

    missing = from_cache(wanted)
    if missing:
        with lock or threading.Lock():  # one lookup at a time: a second page waits and reads the first's answer
            missing = from_cache(missing)
            for i in range(0, len(missing), GRAPH_BATCH):
                batch = missing[i : i + GRAPH_BATCH]
                try:
                    got = {k.lower(): v for k, v in resolver.resolve(batch).items()}
                except NamesError as e:
                    why = f"{resolver.source}: {e}"
                    failures.append(why)
                    for oid in batch:
                        cache.set(KEY + oid, _FAILED + why, error_ttl_s)
                    continue
                for oid in batch:
                    name = (got.get(oid) or "").strip()
                    cache.set(KEY + oid, name or _NOT_FOUND, ttl_s)
                    if name:
                        names[oid] = name
    notice = None
    if failures:
        notice = f"callers shown by attribution rule or id: {sorted(set(failures))[0]}"
    return CallerNames(names, notice)
