"""Callers' names: msgraph-sdk against a local Graph (getByIds shape, batches of 1000, 429 with Retry-After,
403 naming the permission), the cache's lifetime on a fake clock, the fallback chain (Graph name → rule
name → id), scoping (a team-scoped view never looks up or names a caller outside its teams), the demo's
directory, and the FOCUS export's x_CallerName."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import pandas as pd
import pytest

from queries.cache import MemoryCache
from queries.config import AttributionRule, Settings
from queries.cost import focus_export
from queries.cost.attribution import caller_names_column
from queries.demo import world
from queries.demo.directory import DemoDirectory
from queries.lens import Lens
from queries.names import GRAPH_BATCH, CallerNames, NamesError, display_name, lookup, short_id
from queries.scope import Scope, name_callers_frame
from queries.scoped import ScopedLens
from queries.sources.graph import PERMISSION, GraphNames
from tests.fakes.credential import FakeCredential
from tests.fakes.doubles import FakeClock
from tests.fakes.graph_server import DirectoryObject, GraphServer

SP = "1b6f0a52-8c3d-4e71-b2a9-5d0e7f3c8a16"
USER = "2c7a1b63-9d4e-4f82-83ba-6e1f8a4d9b27"
GONE = "0b0b0b0b-0000-4000-8000-000000000000"  # deleted: Graph leaves it out


def _ids(n: int) -> list[str]:
    return [str(uuid.UUID(int=i + 1)) for i in range(n)]


class Recording:
    """A resolver that names every id it is asked for, and records each call."""

    source = "test directory"

    def __init__(self, names: dict[str, str] | None = None, fail: str | None = None) -> None:
        self.names = names
        self.fail = fail
        self.calls: list[list[str]] = []

    def resolve(self, object_ids: Sequence[str]) -> dict[str, str]:
        self.calls.append(list(object_ids))
        if self.fail:
            raise NamesError(self.fail)
        if self.names is not None:
            return {i: self.names[i] for i in object_ids if i in self.names}
        return {i: f"name-{i[:4]}" for i in object_ids}


# ---- msgraph-sdk against a local Graph -------------------------------------------------------------------


@pytest.fixture
def graph() -> GraphServer:
    objects = [DirectoryObject(SP, "mi-support-chat"), DirectoryObject(USER, "Dana Whitfield", "user")]
    objects += [DirectoryObject(i, f"sp-{i[-4:]}") for i in _ids(2500)]
    with GraphServer(objects) as server:
        yield server


def test_graph_names_service_principals_and_users(graph: GraphServer) -> None:
    cred = FakeCredential()
    got = GraphNames(graph.url, cred, sleep=lambda s: pytest.fail("no wait expected")).resolve([SP, USER.upper(), GONE])
    assert got == {SP: "mi-support-chat", USER: "Dana Whitfield"}
    req = graph.last_request
    assert (req.method, req.path, req.authorized) == ("POST", "/v1.0/directoryObjects/getByIds", True)
    assert req.body["types"] == ["servicePrincipal", "user"]
    assert cred.scopes == [(f"{graph.url}/.default",)]


def test_more_than_1000_ids_go_in_several_calls(graph: GraphServer) -> None:
    ids = _ids(2500)
    got = GraphNames(graph.url, FakeCredential()).resolve(ids)
    sizes = [len(r.body["ids"]) for r in graph.requests]
    assert sizes == [GRAPH_BATCH, GRAPH_BATCH, 500]
    assert len(got) == 2500 and got[ids[-1]] == f"sp-{ids[-1][-4:]}"


def test_429_waits_retry_after_then_answers(graph: GraphServer) -> None:
    waits: list[float] = []
    graph.throttle(retry_after=7)
    r = GraphNames(graph.url, FakeCredential(), sleep=waits.append)
    assert r.resolve([SP]) == {SP: "mi-support-chat"}
    assert waits == [7.0] and len(graph.requests) == 2


def test_429_asking_longer_than_allowed_is_reported_without_waiting(graph: GraphServer) -> None:
    graph.throttle(retry_after=600)
    r = GraphNames(graph.url, FakeCredential(), max_wait_s=30, sleep=lambda s: pytest.fail("must not wait"))
    with pytest.raises(NamesError, match="429"):
        r.resolve([SP])
    assert len(graph.requests) == 1


def test_403_names_the_permission(graph: GraphServer) -> None:
    graph.forbid()
    with pytest.raises(NamesError) as e:
        GraphNames(graph.url, FakeCredential()).resolve([SP])
    assert PERMISSION == "Directory.Read.All" and PERMISSION in str(e.value) and "403" in str(e.value)
    assert "fake-token" not in str(e.value)


# ---- the cache's lifetime ------------------------------------------------------------------------------------


def test_names_are_kept_for_their_lifetime(clock: FakeClock) -> None:
    cache = MemoryCache(clock=clock)
    resolver = Recording({SP: "mi-support-chat"})
    first = lookup(cache, resolver, [SP, GONE, "not-a-guid", ""], ttl_s=3600, error_ttl_s=60)
    assert first.get(SP) == "mi-support-chat" and first.get(GONE) is None and first.notice is None
    assert resolver.calls == [[GONE, SP]]  # only GUIDs are sent
    clock.advance(3599)
    assert lookup(cache, resolver, [SP.upper(), GONE], ttl_s=3600, error_ttl_s=60).get(SP) == "mi-support-chat"
    assert len(resolver.calls) == 1  # a name and a "no such object" are both kept
    clock.advance(2)
    lookup(cache, resolver, [SP, GONE], ttl_s=3600, error_ttl_s=60)
    assert resolver.calls[1:] == [[GONE, SP]]


def test_a_failed_lookup_falls_back_for_the_error_lifetime_and_says_why(clock: FakeClock) -> None:
    cache = MemoryCache(clock=clock)
    failing = Recording(fail=f"Graph refused (403): needs {PERMISSION}")
    got = lookup(cache, failing, [SP], ttl_s=3600, error_ttl_s=300)
    assert got.names == {} and got.notice and PERMISSION in got.notice
    again = lookup(cache, Recording(), [SP], ttl_s=3600, error_ttl_s=300)
    assert again.names == {} and again.notice and PERMISSION in again.notice  # kept, not asked again
    clock.advance(301)
    assert lookup(cache, Recording(), [SP], ttl_s=3600, error_ttl_s=300).get(SP) == f"name-{SP[:4]}"


def test_batches_through_the_cache() -> None:
    resolver = Recording()
    got = lookup(MemoryCache(max_entries=10_000), resolver, _ids(2001), ttl_s=60, error_ttl_s=60)
    assert [len(c) for c in resolver.calls] == [1000, 1000, 1] and len(got.names) == 2001


# ---- the fallback chain ------------------------------------------------------------------------------------


RULES = [
    AttributionRule(object_id=SP, display_name="support chat (rule)", feature="support-chat", team="support"),
    AttributionRule(object_id=USER, feature="notebooks", team="growth"),  # a rule without a name
    AttributionRule(ip_range="10.20.2.0/24", display_name="triage (API key)", feature="triage", team="support"),
]


def test_graph_name_then_rule_name_then_id() -> None:
    assert display_name(SP, CallerNames({SP: "mi-support-chat"}), "rule") == "mi-support-chat"
    assert display_name(SP, CallerNames({}), "rule") == "rule"
    assert display_name(SP, None, None) == "1b6f0a52…" == short_id(SP)
    frame = pd.DataFrame(
        {
            "Deployment": ["d"] * 5,
            "ObjectId": [SP, USER, GONE, "", "a4f2e3d1-0b5c-4f6a-8e7d-9c1b2a3f4e5d"],
            "CallerIP": ["10.1.1.***", "10.1.1.***", "10.1.1.***", "10.20.2.***", "10.9.9.***"],
            "Requests": [1, 2, 3, 4, 5],
        }
    )
    directory = CallerNames({SP: "mi-support-chat", "a4f2e3d1-0b5c-4f6a-8e7d-9c1b2a3f4e5d": "sp-finance"})
    named = name_callers_frame(frame, RULES, directory)
    assert list(named["Caller"]) == [
        "mi-support-chat",  # Graph's name before the rule's
        "2c7a1b63…",  # a rule without a name, unknown to Graph: the short id
        "(no rule) 0b0b0b0b…",  # neither
        "triage (API key)",  # an API-key caller a rule names
        "sp-finance",  # no rule, but Graph knows it
    ]
    assert list(named["ObjectId"]) == list(frame["ObjectId"])  # the full id stays for the CSV
    without = name_callers_frame(frame, RULES, None)
    assert list(without["Caller"])[:2] == ["support chat (rule)", "2c7a1b63…"]


# ---- the Lens, scoping and the demo ----------------------------------------------------------------------


def _lens(settings: Settings, resolver: object) -> Lens:
    lens = Lens.from_settings(settings)
    lens.names = resolver  # type: ignore[assignment]
    lens.cache = MemoryCache()
    return lens


def test_a_scoped_view_names_only_its_own_callers(demo_settings: Settings) -> None:
    resolver = Recording()
    lens = _lens(demo_settings, resolver)
    support = world.feature("support-chat").object_id
    growth = world.feature("marketing-copy").object_id
    stranger = world.UNKNOWN_CALLERS[1][0]
    frame = pd.DataFrame({"ObjectId": [support, growth, stranger], "CallerIP": ["", "", ""], "Deployment": [""] * 3})
    view = ScopedLens(lens, Scope.of(["support"]), demo_settings.attribution)
    got = view.caller_names(frame)
    assert set(got.names) == {support} and resolver.calls == [[support]]
    assert set(lens.caller_names(frame).names) == {support, growth, stranger}


def test_names_can_be_turned_off(demo_settings: Settings) -> None:
    off = demo_settings.model_copy(update={"names": demo_settings.names.model_copy(update={"enabled": False})})
    resolver = Recording()
    lens = _lens(off, resolver)
    assert lens.caller_names(pd.DataFrame({"ObjectId": [SP]})).names == {} and resolver.calls == []


def test_the_alert_lens_keeps_the_names_cache(demo_settings: Settings) -> None:
    resolver = Recording()
    lens = _lens(demo_settings, resolver)
    lens.caller_names(pd.DataFrame({"ObjectId": [SP]}))
    fresh = lens.with_fresh_cache()
    assert fresh.caller_names(pd.DataFrame({"ObjectId": [SP]})).get(SP) and len(resolver.calls) == 1


def test_the_demo_directory_names_every_identity(demo_settings: Settings) -> None:
    lens = Lens.from_settings(demo_settings)
    assert isinstance(lens.names, DemoDirectory)
    ids = [f.object_id for f in world.FEATURES if f.object_id] + [world.UNKNOWN_CALLERS[1][0], world.PROBE_OBJECT_ID]
    got = lens.caller_names(pd.DataFrame({"ObjectId": ids}))
    assert set(got.names) == {i.lower() for i in ids}
    assert got.get(world.UNKNOWN_CALLERS[1][0]) == "sp-finance-forecast-notebook"


def test_focus_export_names_callers(demo_settings: Settings, demo_end: datetime) -> None:
    ledger = pd.DataFrame(
        {
            "ObjectId": [SP, USER, GONE, ""],
            "Rule": ["1:support chat (rule)", "2:" + USER, "", "3:triage (API key)"],
        }
    )
    ctx = focus_export.context_from(
        demo_settings.model_copy(update={"attribution": RULES}), pd.DataFrame(), demo_end, demo_end, {SP: "mi-sc"}
    )
    names = caller_names_column(ledger, ctx.caller_names, ctx.rule_names)
    assert list(names) == ["mi-sc", "", "", "triage (API key)"]  # empty becomes null in the file


def test_the_graph_endpoint_is_https_unless_loopback(clean_env: object) -> None:
    from queries.config import load_settings
    from queries.errors import ConfigError

    with pytest.raises(ConfigError, match="graph_endpoint"):
        load_settings(environ={"AOAI_LENS_NAMES__GRAPH_ENDPOINT": "http://graph.example.com"})
    ok = load_settings(environ={"AOAI_LENS_NAMES__GRAPH_ENDPOINT": "http://127.0.0.1:8123/"})
    assert ok.names.graph_endpoint == "http://127.0.0.1:8123" and ok.names.ttl_minutes == 360


def test_many_names_never_evict_the_page_answers(demo_settings: Settings) -> None:
    lens = Lens.from_settings(demo_settings)
    lens.names = Recording()
    lens.cache.set("a page's answer", "kept", 600)
    got = lens.caller_names(pd.DataFrame({"ObjectId": _ids(2000)}))  # more than the answers cache holds (512)
    assert len(got.names) == 2000 and lens.cache.get("a page's answer") == "kept"
    assert len(lens.caller_names(pd.DataFrame({"ObjectId": _ids(2000)})).names) == 2000
    assert len(lens.names.calls) == 2  # type: ignore[union-attr]  # 1000 + 1000, then every name from the cache
