"""caller_spend's subjects name callers as a page does: the directory's name for an identity no
attribution rule claims (the demo's unregistered service principal), not its object id."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.data import LensData
from queries.config import Settings
from queries.demo import world
from queries.demo.directory import OTHER_IDENTITIES
from queries.lens import Lens


def test_caller_cost_names_an_unknown_identity_by_the_directory(demo_settings: Settings, demo_end: datetime) -> None:
    lens = Lens.from_settings(demo_settings).with_fresh_cache()
    lens.now = lambda: demo_end
    stranger = world.UNKNOWN_CALLERS[1][0]
    cost = LensData(lens).caller_cost(demo_end - timedelta(days=1), demo_end)
    callers = set(cost["Caller"])
    assert OTHER_IDENTITIES[stranger] in callers
    assert not [c for c in callers if stranger in c or stranger[:8] in c]
    assert "mi-marketing-copy" in callers and "(API key) 172.16.8.***" in callers

    off = demo_settings.model_copy(update={"names": demo_settings.names.model_copy(update={"enabled": False})})
    lens_off = Lens.from_settings(off).with_fresh_cache()
    lens_off.now = lambda: demo_end
    without = set(LensData(lens_off).caller_cost(demo_end - timedelta(days=1), demo_end)["Caller"])
    assert f"(no rule) {stranger[:8]}…" in without  # the fallback: the short id
