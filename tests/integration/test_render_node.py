# SPDX-License-Identifier: MIT
"""`zeromesh node render` as a real process: gather, degradation, features, errors, sandbox, fragments, load."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import zeromesh
from zeromesh import Job

from ..conftest import ROOT, scaled, wait_until
from .render_helpers import TEST_SITE, TEST_TEMPLATES, render

NODE_ARGS = ("--templates", str(TEST_TEMPLATES), "--site-module", str(TEST_SITE))


def meta(job: Job) -> bytes:
    item = json.loads(job.body)["id"]
    return json.dumps({"id": item, "name": f"item {item}"}).encode()


def slow(job: Job) -> bytes:
    time.sleep(float(job.body or 0))
    return json.dumps({"nap": job.text}).encode()


def broken(job: Job) -> bytes:
    raise ValueError("the database is on fire")


@pytest.fixture
def backends(broker, start_worker):
    """meta, slow and broken services in this process (threads), counting calls to slow."""
    calls = {"slow": 0}

    def counted_slow(job: Job) -> bytes:
        calls["slow"] += 1
        return slow(job)

    start_worker(broker.endpoint, {"meta": meta, "slow": counted_slow, "broken": broken}, concurrency=8)
    return calls


def zeromesh_cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zeromesh", *args],
        env=env,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=scaled(20),
    )


def test_page_gathers_its_parts_and_templates_render_params_per_site(client, backends, spawn):
    spawn("render", "r1", *NODE_ARGS)
    reply = render(client, "parts.html", params={"id": "7"}, query="slow=0.05")
    assert reply.text.strip().endswith("meta=item 7 extra=0.05 degraded=")
    assert reply.headers["http.status"] == 200
    assert reply.headers["http.headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["cache.tags"] == ["feature:extras", "item:7"]
    assert "cache.ttl" not in reply.headers
    # No page function: the path parameters are the context; a site without a folder falls back to default.
    assert render(client, "plain.html", params={"name": "Ada"}).text == "hello Ada from default"
    assert render(client, "plain.html", site="nowhere", params={"name": "Ada"}).text == "hello Ada from nowhere"
    # A site overrides base.html only.
    assert render(client, "parts.html", site="blue", params={"id": "1"}).text.startswith("BLUE meta=item 1")


def test_a_late_optional_part_takes_its_default_within_the_deadline(client, backends, spawn):
    spawn("render", "r1", *NODE_ARGS)
    started = time.monotonic()
    reply = render(client, "parts.html", params={"id": "1"}, query="slow=1.5", timeout=1.0)
    elapsed = time.monotonic() - started
    assert "meta=item 1 extra=default degraded=extra" in reply.text
    assert reply.headers["http.status"] == 200
    assert reply.headers["cache.ttl"] == 5  # a degraded page is cached briefly
    assert reply.headers["http.headers"]["X-Degraded"] == "extra"
    assert elapsed < 1.0, f"the page waited {elapsed:.2f}s, past its own deadline"


def test_a_failed_required_part_fails_the_page_at_once(client, backends, spawn):
    spawn("render", "r1", *NODE_ARGS)
    started = time.monotonic()
    with pytest.raises(zeromesh.RemoteError) as info:
        render(client, "parts.html", params={"id": "1"}, query="slow=1&need=broken", timeout=3.0)
    assert time.monotonic() - started < 0.8, "a failed required part must not wait for the slow optional one"
    assert info.value.code == "remote"
    assert "required part 'needed' (service 'broken') failed" in str(info.value)
    assert "the database is on fire" in str(info.value)
    # Nobody serves it: fails at once too; late: fails at the deadline, not after.
    with pytest.raises(zeromesh.RemoteError, match="service 'nobody'.*NoRespondersError"):
        render(client, "parts.html", params={"id": "1"}, query="need=nobody")
    started = time.monotonic()
    with pytest.raises(zeromesh.RemoteError, match="service 'slow'.*(late|TimeoutError)"):
        render(client, "parts.html", params={"id": "1"}, query="need=slow&need_body=1.5", timeout=1.0)
    assert time.monotonic() - started < 1.0


def test_feature_switches_from_redis_and_events_skip_parts_at_once(client, backends, spawn, redis_server, mesh_env):
    redis_server.client().hset("zeromesh:features", "extras", "off")
    spawn("render", "r1", *NODE_ARGS)
    started = time.monotonic()
    reply = render(client, "parts.html", params={"id": "2"}, query="slow=1")
    assert time.monotonic() - started < 0.5, "a part switched off must not be requested"
    assert "extra=default degraded=" in reply.text and "degraded=extra" not in reply.text
    assert backends["slow"] == 0
    assert "feature:extras" in reply.headers["cache.tags"]  # so switching it invalidates this page

    out = zeromesh_cli(mesh_env, "feature", "on", "extras")
    assert out.returncode == 0, out.stderr
    assert redis_server.client().hget("zeromesh:features", "extras") == b"on"
    # The node applies the event as it arrives (it subscribed at start, so no slow-joiner loss here).
    wait_until(
        lambda: "extra=0" in render(client, "parts.html", params={"id": "2"}, query="slow=0").text,
        5,
        interval=0.05,
        message="feature on applied",
    )
    assert backends["slow"] >= 1

    out = zeromesh_cli(mesh_env, "feature", "off", "extras")
    assert out.returncode == 0 and "feature extras off" in out.stdout, out.stderr
    wait_until(
        lambda: "extra=default" in render(client, "parts.html", params={"id": "2"}, query="slow=0").text,
        5,
        interval=0.05,
        message="feature off applied",
    )


def test_template_errors_name_the_template_and_line(client, backends, spawn):
    spawn("render", "r1", *NODE_ARGS)
    for template, where, kind in [
        ("syntax.html", "syntax.html line 4", "TemplateSyntaxError: Unexpected end of template"),
        ("undefined.html", "undefined.html line 2", "UndefinedError: 'missing_variable' is undefined"),
        ("includes_broken.html", "syntax.html line 4 (rendering includes_broken.html)", "TemplateSyntaxError"),
        ("absent.html", "absent.html", "TemplateNotFound"),
    ]:
        with pytest.raises(zeromesh.RemoteError) as info:
            render(client, template)
        assert info.value.code == "remote" and info.value.name == "TemplateFailure"
        assert info.value.message.startswith(f"{where}: {kind}"), info.value.message
    assert render(client, "plain.html", params={"name": "still up"}).text.startswith("hello still up")


def test_sandbox_escapes_are_refused_with_the_template_and_line(client, backends, spawn):
    spawn("render", "r1", *NODE_ARGS)
    for template, line, attr in [
        ("escape_mro.html", 3, "__class__"),
        ("escape_format.html", 1, "__class__"),
        ("escape_attr.html", 1, "__class__"),
    ]:
        with pytest.raises(zeromesh.RemoteError) as info:
            render(client, template, params={"name": "x"})
        message = info.value.message
        assert message.startswith(f"{template} line {line}: SecurityError: access to attribute '{attr}'"), message
        assert "<class" not in message  # nothing of the object graph leaked
    assert render(client, "plain.html", params={"name": "safe"}).text.startswith("hello safe")


def test_fragment_cache_drops_entries_on_tag_invalidation(client, backends, spawn, mesh_env):
    spawn("render", "r1", *NODE_ARGS)
    first = render(client, "frag.html").text
    assert first == "box=<b>render #1</b>"
    assert render(client, "frag.html").text == first  # cached
    assert render(client, "frag.html").headers["cache.tags"] == ["page", "t:1"]
    out = zeromesh_cli(mesh_env, "invalidate", "--tag", "other")
    assert out.returncode == 0, out.stderr
    time.sleep(0.3)
    assert render(client, "frag.html").text == first  # another tag: kept
    out = zeromesh_cli(mesh_env, "invalidate", "--tag", "t:1")
    assert out.returncode == 0 and out.stdout.startswith("zeromesh.invalidate.tag t:1 "), out.stdout
    wait_until(
        lambda: "render #2" in render(client, "frag.html").text,
        5,
        interval=0.05,
        message="fragment re-rendered after invalidation",
    )
    zeromesh_cli(mesh_env, "invalidate", "--all")
    wait_until(
        lambda: "render #3" in render(client, "frag.html").text,
        5,
        interval=0.05,
        message="fragment re-rendered after invalidate --all",
    )


def test_a_node_renders_many_slow_pages_at_once(client, spawn):
    spawn("green", "napper", "--concurrency", "100")
    spawn("render", "r1", *NODE_ARGS, "--concurrency", "100")
    results: list[str] = []

    def one() -> None:
        # Each thread gets its own socket from the shared thread-mode client.
        results.append(render(client, "napping.html", timeout=5).text)

    started = time.monotonic()
    threads = [threading.Thread(target=one) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=scaled(10))
    elapsed = time.monotonic() - started
    assert results == ["got=0.3"] * 100
    assert elapsed < scaled(2.5), f"100 pages waiting 0.3 s each took {elapsed:.2f}s"


def test_a_cpu_heavy_render_does_not_starve_heartbeats(client, spawn):
    spawn("render", "r1", *NODE_ARGS)
    first = next(w for w in client.status()["workers"] if w["label"] == "r1")
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(r=render(client, "burn.html", query="s=4.5", timeout=15)))
    caller.start()
    worst_idle = 0.0
    deadline = time.monotonic() + scaled(12)
    while caller.is_alive() and time.monotonic() < deadline:
        mine = [w for w in client.status()["workers"] if w["label"] == "r1"]
        assert [w["peer"] for w in mine] == [first["peer"]], "the render node was dropped or registered again"
        worst_idle = max(worst_idle, mine[0]["idle_s"])
        time.sleep(0.2)
    caller.join(timeout=scaled(5))
    assert result["r"].text.startswith("burnt ")
    assert worst_idle < 2.0, f"the broker heard nothing from the node for {worst_idle}s"


def test_a_request_given_up_by_its_caller_stops_its_page(client, spawn):
    spawn("render", "r1", *NODE_ARGS)
    started = time.monotonic()
    with pytest.raises(zeromesh.TimeoutError):
        client.request_full(
            "render", b"", timeout=0.3, headers={"render.template": "sleepy.html", "http.query": "s=10"}
        )
    # The broker cancelled it at the node, which killed the page's greenlet and answered: nothing held.
    wait_until(
        lambda: next(w for w in client.status()["workers"] if w["label"] == "r1")["held"] == 0,
        2,
        interval=0.05,
        message="the cancelled page released",
    )
    assert time.monotonic() - started < 3
    assert render(client, "plain.html", params={"name": "next"}).text == "hello next from default"
