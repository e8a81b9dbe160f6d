"""The demo organisation's directory: the display names Microsoft Graph would return for its callers.

Every identity in `world` has a name here, including the ones no attribution rule knows (an unregistered
service principal) and the probes' managed identity, so the demo shows names wherever a real estate
with Graph access would. API-key callers have no identity, hence no name (they are shown by IP).
"""

from __future__ import annotations

from collections.abc import Sequence

from queries.demo import world

# identities the workload calls with that no Feature describes: the names Graph holds for them
OTHER_IDENTITIES = {
    "a4f2e3d1-0b5c-4f6a-8e7d-9c1b2a3f4e5d": "sp-finance-forecast-notebook",
    world.PROBE_OBJECT_ID: "mi-aoai-lens-probes",
}


def directory() -> dict[str, str]:
    """Lower-cased object id -> display name, for every identity of the demo world."""
    names = {f.object_id.lower(): f.display_name for f in world.FEATURES if f.object_id}
    names.update({k.lower(): v for k, v in OTHER_IDENTITIES.items()})
    return names


class DemoDirectory:
    """A `queries.names.NameResolver` over the demo world (what `GraphNames` is against a real tenant)."""

    source = "demo directory"

    def __init__(self) -> None:
        self._names = directory()
        self.calls = 0

    def resolve(self, object_ids: Sequence[str]) -> dict[str, str]:
        self.calls += 1
        return {i.lower(): self._names[i.lower()] for i in object_ids if i.lower() in self._names}
