# SPDX-License-Identifier: MIT
"""The render node's pure parts: fragment cache, feature switches, control events, template errors, gather."""

from __future__ import annotations

import json
import time

import gevent
import pytest

from zeromesh import Reply
from zeromesh.nodes.control import ControlListener
from zeromesh.nodes.features import FeatureSwitches, event_body, parse_event, parse_switch
from zeromesh.nodes.fragments import FragmentCache
from zeromesh.nodes.gather import Part, PartFailed, gather
from zeromesh.nodes.templating import TemplateSets, describe
from zeromesh.protocol.errors import NoRespondersError, RemoteError

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- fragments -------------------------------------------------------------------


def test_fragments_cache_until_their_tag_is_invalidated():
    cache = FragmentCache()
    calls = []
    render = lambda: calls.append(1) or f"v{len(calls)}"  # noqa: E731
    assert cache.get_or_render("a", ["t1", "t2"], render) == "v1"
    assert cache.get_or_render("a", ["t1", "t2"], render) == "v1"
    cache.put("b", "other", ["t3"])
    assert cache.invalidate_tag("nobody") == 0
    assert cache.invalidate_tag("t2") == 1
    assert cache.get("b") == "other"
    assert cache.get_or_render("a", ["t1"], render) == "v2"
    assert (cache.hits, cache.misses) == (1, 2)
    assert cache.clear() == 2 and len(cache) == 0 and cache.invalidate_tag("t1") == 0


def test_a_fragment_may_name_its_tags_after_fetching():
    cache = FragmentCache()
    fetched = []

    def render():
        fetched.append(1)
        return "grid", ["card:1", "card:2"]

    assert cache.get_or_render_tagged("g", ["home"], render) == ("grid", frozenset({"home", "card:1", "card:2"}))
    assert cache.get_or_render_tagged("g", ["home"], render)[1] == {"home", "card:1", "card:2"}
    assert len(fetched) == 1  # a hit does not fetch
    cache.invalidate_tag("card:2")
    assert cache.get_or_render("g", ["home"], render) == "grid" and len(fetched) == 2


def test_fragments_expire_and_stay_bounded():
    clock = Clock()
    cache = FragmentCache(max_entries=2, default_ttl=10, clock=clock)
    cache.put("a", "1", ["x"])
    cache.put("b", "2", ["x"], ttl=1)
    clock.now += 2
    assert cache.get("b") is None and cache.get("a") == "1"
    cache.put("c", "3")
    cache.put("d", "4")  # "a" is the least recently used
    assert cache.get("a") is None and len(cache) == 2
    assert cache.invalidate_tag("x") == 0  # the index forgot evicted keys


# -- features --------------------------------------------------------------------


def test_feature_events_and_values():
    assert parse_event(event_body("reco", False)) == ("reco", False)
    assert parse_event(b'{"name": "reco", "on": "on"}') == ("reco", True)
    for bad in (b"nope", b"[]", b'{"on": true}', b'{"name": "x", "on": "maybe"}', b'{"name": ""}'):
        assert parse_event(bad) is None
    assert [parse_switch(v) for v in (b"off", "ON", "0", True, "maybe")] == [False, True, False, True, None]


def test_features_load_from_the_hash_and_default_on():
    class FakeRedis:
        hash = {b"reco": b"off", b"ads": b"on", b"odd": b"perhaps"}

        def hgetall(self, key):
            assert key == "zeromesh:features"
            return self.hash

    features = FeatureSwitches({"gone": False})
    features.load(FakeRedis())
    assert features.loaded
    assert (features.is_on("reco"), features.is_on("ads"), features.is_on("odd"), features.is_on("never")) == (
        False,
        True,
        True,
        True,
    )
    assert features.is_on("gone")  # no longer in the hash: back to on
    assert features.apply_event(b'{"name": "ads", "on": false}') == ("ads", False) and not features("ads")


def test_control_events_drop_fragments_and_switch_features():
    fragments, features = FragmentCache(), FeatureSwitches()
    control = ControlListener(client=None, fragments=fragments, features=features)
    for key, tag in (("a", "card:1"), ("b", "card:2"), ("c", "card:3")):
        fragments.put(key, key, [tag])
    control.apply("zeromesh.invalidate.tag", b"card:1")
    control.apply("zeromesh.invalidate.path", b"/")  # fragments are not URLs
    assert fragments.get("a") is None and fragments.get("b") == "b"
    control.apply("zeromesh.invalidate.tag", b"card:9", gap=True)  # missed some: drop everything
    assert len(fragments) == 0
    fragments.put("d", "d", ["x"])
    control.apply("zeromesh.invalidate.all", b"")
    assert len(fragments) == 0
    control.apply("zeromesh.feature", b'{"name": "reco", "on": false}')
    assert not features.is_on("reco") and control.applied == 5


# -- templates -------------------------------------------------------------------


@pytest.fixture
def sets(tmp_path):
    (tmp_path / "default").mkdir()
    (tmp_path / "blue").mkdir()
    (tmp_path / "default" / "base.html").write_text("base {% block b %}{% endblock %}")
    (tmp_path / "default" / "page.html").write_text('{% extends "base.html" %}{% block b %}\n{{ x }}{% endblock %}')
    (tmp_path / "blue" / "base.html").write_text("blue {% block b %}{% endblock %}")
    (tmp_path / "default" / "bad.html").write_text("ok\n{% if %}")
    (tmp_path / "default" / "evil.html").write_text("1\n2\n{{ x.__class__ }}")
    return TemplateSets(tmp_path, bytecode_dir=str(tmp_path / "bytecode"))


def test_template_sets_fall_back_to_default(sets):
    assert sets.env("blue").get_template("page.html").render(x=1) == "blue 1"
    assert sets.env("default").get_template("page.html").render(x=1) == "base 1"
    for name in ("nosuch", "../default", "", None, "a/b"):
        assert sets.site_for(name) == "default"
    assert sets.env("blue") is sets.env("blue")
    assert sets.env("x").autoescape is not False and sets.env("x").is_safe_attribute("x", "__class__", 1) is False


def test_template_errors_are_described_with_template_and_line(sets):
    def failure(template, **ctx):
        with pytest.raises(Exception) as info:
            sets.env("blue").get_template(template).render(**ctx)
        return str(describe(info.value, template, sets.search_path("blue")))

    assert failure("bad.html").startswith("bad.html line 2: TemplateSyntaxError: ")
    assert failure("page.html") == "page.html line 2: UndefinedError: 'x' is undefined"
    assert (
        failure("evil.html", x="s")
        == "evil.html line 3: SecurityError: access to attribute '__class__' of 'str' object is unsafe."
    )
    assert failure("missing.html") == "missing.html: TemplateNotFound: template 'missing.html' not found"


def test_a_template_set_needs_a_default_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="default"):
        TemplateSets(tmp_path)


# -- gather ------------------------------------------------------------------------


class FakeGreenClient:
    """request_full by service: a delay, then a body or an exception."""

    green = True

    def __init__(self, services: dict) -> None:
        self.services = services
        self.calls: list[tuple[str, bytes, float]] = []
        self.closed = False

    def request_full(self, service, body, timeout, headers=None, trace=None, parent=None):
        self.calls.append((service, body, timeout))
        delay, answer = self.services[service]
        gevent.sleep(delay)
        if isinstance(answer, Exception):
            raise answer
        return Reply(answer if isinstance(answer, bytes) else json.dumps(answer).encode(), {})


def test_gather_runs_parts_in_parallel_under_one_deadline():
    client = FakeGreenClient({"a": (0.05, {"v": 1}), "b": (0.05, [1, 2]), "slow": (5, {}), "text": (0, b"hi")})
    started = time.monotonic()
    got = gather(
        client,
        {
            "a": Part("a", {"id": 1}),
            "b": Part("b"),
            "t": Part("text", "x", decode="text"),
            "late": Part("slow", optional=True, default="dflt"),
        },
        deadline=started + 0.2,
    )
    elapsed = time.monotonic() - started
    assert got["a"] == {"v": 1} and got.b == [1, 2] and got.get("t") == "hi" and got["late"] == "dflt"
    assert got.degraded == {"late": "late: no answer by the deadline"}
    assert 0.18 < elapsed < 0.4
    assert client.calls[0][1] == '{"id":1}' and all(c[2] <= 0.2 for c in client.calls)


def test_gather_fails_at_once_on_a_failed_required_part_and_degrades_optional_ones():
    client = FakeGreenClient(
        {
            "boom": (0.01, RemoteError("remote", "fire", "ValueError")),
            "slow": (5, {}),
            "gone": (0, NoRespondersError("no_responders", "nobody")),
            "junk": (0, b"{not json"),
        }
    )
    started = time.monotonic()
    with pytest.raises(PartFailed, match="required part 'x' \\(service 'boom'\\) failed: RemoteError"):
        gather(client, {"x": Part("boom"), "y": Part("slow", optional=True)}, deadline=started + 2)
    assert time.monotonic() - started < 0.2
    got = gather(
        client,
        {"g": Part("gone", optional=True, default=0), "j": Part("junk", optional=True)},
        deadline=time.monotonic() + 1,
    )
    assert got.values == {"g": 0, "j": None}
    assert got.degraded["g"].startswith("NoRespondersError") and got.degraded["j"].startswith("JSONDecodeError")


def test_gather_skips_parts_whose_feature_is_off_without_a_request():
    client = FakeGreenClient({"reco": (1, ["r"]), "a": (0, 1)})
    features = FeatureSwitches({"recommendations": False})
    started = time.monotonic()
    got = gather(
        client,
        {"a": Part("a"), "r": Part("reco", optional=True, default=[], feature="recommendations")},
        deadline=started + 2,
        features=features,
    )
    assert time.monotonic() - started < 0.1
    assert got.values == {"a": 1, "r": []} and got.skipped == ["r"] and got.features == {"recommendations"}
    assert [c[0] for c in client.calls] == ["a"] and not got.degraded


def test_gather_with_no_time_left_requests_nothing():
    client = FakeGreenClient({"a": (0, 1)})
    got = gather(client, {"a": Part("a", optional=True, default=-1)}, deadline=time.monotonic() - 1)
    assert got.values == {"a": -1} and client.calls == []
    with pytest.raises(PartFailed, match="no time left"):
        gather(client, {"a": Part("a")}, deadline=time.monotonic() - 1)
    with pytest.raises(ValueError, match="decode"):
        Part("a", decode="yaml").decoder()
