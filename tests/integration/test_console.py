# SPDX-License-Identifier: MIT
"""`zeromesh console` over real HTTP on loopback, against a real broker, worker and Redis: every page,
the SSE stream, each action and what it did on the mesh, the guards (password, CSRF, origin), bad
input, and a broker that goes away."""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import sys
import time
from urllib.parse import urlencode

import pytest

from zeromesh import Client, DeadLetter

from ..conftest import free_port, scaled, wait_until
from ..curve_keys import KeySet
from ..processes import ChildProcess

PASSWORD = "console-test-password"
PAGES = ["/", "/queues", "/queues/cards", "/services", "/workers", "/dead-letters", "/dead-letters/cards"]
PAGES += ["/scheduled", "/features", "/trace", "/trace?q=nothing-known&by=id", "/trace?q=t-1&by=trace"]


class ConsoleProcess(ChildProcess):
    """`zeromesh console` on a free loopback port, ready once its Overview answers."""

    def __init__(
        self, tmp_path, broker, redis_url: str, *, password: str | None = PASSWORD, args=(), env: dict | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(broker.env, ZEROMESH_REDIS_URL=redis_url, **(env or {}))
        env.pop("ZEROMESH_CONSOLE_PASSWORD", None)
        if password is not None:
            env["ZEROMESH_CONSOLE_PASSWORD"] = password
        cmd = [sys.executable, "-m", "zeromesh", "console", "--http", f"127.0.0.1:{self.port}", *args]
        super().__init__(f"console on {self.port}", cmd, tmp_path / f"console-{self.port}.log", env=env, ready=self.up)

    def up(self) -> bool:
        try:
            return self.get("/")[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=scaled(10))
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read().decode("utf-8", "replace"), dict(resp.getheaders())
        finally:
            conn.close()

    def get(self, path: str, **headers: str):
        return self.request("GET", path, headers=headers)

    def token(self, path: str = "/features") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path)[1])
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def post(self, fields: dict | list, *, password: str | None = PASSWORD, origin: str | None = "", csrf=True):
        """POST /act as a browser on a page of the console would (each guard can be left out)."""
        pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if csrf is True:
            pairs.append(("csrf", self.token()))
        elif csrf:
            pairs.append(("csrf", csrf))
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if password is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        if origin is not None:
            headers["Origin"] = origin or self.base
        return self.request("POST", "/act", urlencode(pairs).encode(), headers)


@pytest.fixture
def console_factory(tmp_path, redis_server):
    started: list[ConsoleProcess] = []

    def make(broker, **kw) -> ConsoleProcess:
        c = ConsoleProcess(tmp_path, broker, redis_server.url, **kw)
        started.append(c)
        return c.start(timeout=15)

    yield make
    for c in started:
        c.stop()


def snapshots(console: ConsoleProcess, count: int) -> list[dict]:
    """The first `count` snapshots of one SSE stream, then it hangs up."""
    conn = http.client.HTTPConnection("127.0.0.1", console.port, timeout=scaled(5))
    resp = None
    try:
        conn.request("GET", "/events")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type").startswith("text/event-stream")
        found = []
        while len(found) < count:
            line = resp.fp.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                found.append(json.loads(line[6:]))
        return found
    finally:
        if resp is not None:
            resp.close()  # the response holds the socket open too
        conn.close()


def open_stream(console: ConsoleProcess) -> socket.socket | None:
    """A raw connection reading /events, or None when the console answered 503 (no free slot)."""
    s = socket.create_connection(("127.0.0.1", console.port), timeout=scaled(5))
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    # A 503's status line, or the end of the chunk holding the first snapshot ("data: {...}\n\n\r\n").
    while not got.startswith(b"HTTP/1.1 503") and not (b"\ndata: " in got and got.endswith(b"\n\n\r\n")):
        chunk = s.recv(65536)  # up to the first snapshot, all of it, as a browser reads
        if not chunk:
            break
        got += chunk
    if got.startswith(b"HTTP/1.1 200"):
        return s
    s.close()
    return None


def queue_status(client: Client, queue: str) -> dict:
    return client.status()["queues"].get(queue, {})


def test_every_page_renders_and_the_stream_follows_traffic(broker, console_factory, start_worker):
    ran = []
    start_worker(broker.endpoint, {"echo": lambda job: job.body, "cards": lambda job: ran.append(job.id)})
    with Client(broker.endpoint, green=False) as client:
        client.push("cards", b"first")
        console = console_factory(broker)
        assert client.request("echo", b"hi") == b"hi"  # after the console's first poll: in its last minute
        for path in PAGES:
            status, body, headers = console.get(path)
            assert status == 200, (path, body[-500:])
            assert headers["Content-Type"].startswith("text/html") and 'href="/queues"' in body
        assert console.get("/queues/nope")[0] == 404 and "no queue named" in console.get("/queues/nope")[1]
        assert console.get("/nowhere")[0] == 404
        assert console.get("/static/console.js")[0] == 200 and console.get("/static/none.js")[0] == 404
        p50 = r'data-fig="s\.main\.echo\.p50_ms">[0-9.]+<'
        wait_until(lambda: re.search(p50, console.get("/services")[1]), 5, 0.2, "p50 of echo on the Services page")
        first = snapshots(console, 1)[0]
        assert first["totals"]["enqueued"] >= 1 and first["brokers"][0]["name"] == "main"
        for _ in range(20):
            client.push("cards", b"more")
        wait_until(lambda: snapshots(console, 1)[0]["totals"]["enqueued"] >= 21, 5, 0.2, "the pushes in a snapshot")
        later = snapshots(console, 2)
        assert later[1]["t"] > later[0]["t"]
        # At most 16 streams at once; a browser that read its snapshot and left frees its slot within 250 ms
        # (without watching the socket it would hold it until the second write after, 1 to 2 s).
        held: list[socket.socket] = []
        try:
            for _ in range(16):
                held.append(wait_until(lambda: open_stream(console), 2, 0.05, "a free stream slot"))
            assert console.get("/events")[0] == 503
        finally:
            for s in held:
                s.close()
        again = []
        try:
            for _ in range(16):
                again.append(wait_until(lambda: open_stream(console), 0.8, 0.05, "a slot freed by a hang-up"))
        finally:
            for s in again:
                s.close()
        assert console.get("/trace?q=" + "x" * 300)[0] == 200
        # The state of a job and its events.
        job = client.push("cards", b"traced")
        page = console.get(f"/trace?q={job}&by=id")[1]
        assert re.search(r"<td>main</td><td>(queued|in_flight|done)</td>", page), page[-2000:]
        assert re.search(rf"<td>main</td><td>{job}</td><td>accepted</td>", page), page[-2000:]
        assert "events are not available" not in page


def test_actions_pause_resume_replay_purge_cancel_and_what_they_answer(broker, console_factory, start_worker):
    seen: list[bytes] = []

    def mail(job):
        if job.body == b"fail-once" and b"fail-once" not in seen:
            seen.append(job.body)
            raise DeadLetter("cannot parse")
        seen.append(b"ran:" + job.body)

    start_worker(broker.endpoint, {"mail": mail})
    console = console_factory(broker)
    with Client(broker.endpoint, green=False) as client:
        dead = client.push("mail", b"fail-once")
        wait_until(lambda: len(client.dead_letters("mail")) == 1, 5, 0.05, "a dead letter")
        wait_until(lambda: "mail" in str(snapshots(console, 1)[0]["queues"]), 5, 0.1, "mail in the console")

        status, body, _ = console.post({"action": "replay", "broker": "main", "queue": "mail", "ids": dead})
        assert status == 200 and "replayed 1" in body
        wait_until(lambda: b"ran:fail-once" in seen, 5, 0.05, "the replayed job to run")

        status, body, _ = console.post({"action": "pause", "broker": "main", "queue": "mail"})
        assert status == 200 and "paused mail" in body and queue_status(client, "mail")["paused"] is True
        client.push("mail", b"waits")
        status, body, _ = console.post({"action": "resume", "broker": "main", "queue": "mail"})
        assert status == 200 and "resumed mail" in body and queue_status(client, "mail")["paused"] is False
        wait_until(lambda: b"ran:waits" in seen, 5, 0.05, "the job pushed while paused to run after resume")

        # Purge: the queue page asks first; the form without its confirmation changes nothing.
        client.pause("mail")
        for _ in range(3):
            client.push("mail", b"dropped")
        page = console.get("/queues/mail?confirm=purge_queue&broker=main")[1]
        assert "Drop the <strong>3</strong> job(s)" in page and 'name="confirm" value="yes"' in page
        status, body, _ = console.post({"action": "purge_queue", "broker": "main", "queue": "mail"})
        assert status == 400 and "confirm" in body and queue_status(client, "mail")["depth"] == 3
        status, body, _ = console.post({"action": "purge_queue", "broker": "main", "queue": "mail", "confirm": "yes"})
        assert (
            status == 200 and "purged 3 waiting job(s) of mail" in body and queue_status(client, "mail")["depth"] == 0
        )

        # A scheduled job, listed and cancelled.
        later = client.push("reports", b"monthly", delay=600)
        # status lists a queue that holds scheduled jobs only: the page finds it at the next poll
        wait_until(lambda: later in console.get("/scheduled")[1], 5, 0.1, "the scheduled job listed")
        assert later in console.get("/scheduled?queue=reports")[1]
        status, body, _ = console.post({"action": "cancel", "broker": "main", "queue": "reports", "id": later})
        assert status == 200 and f"cancelled {later} on reports" in body
        assert client.scheduled("reports") == []
        # The broker's refusal is shown with its code, not as a success.
        status, body, _ = console.post({"action": "cancel", "broker": "main", "queue": "reports", "id": later})
        assert status == 502 and "not_found" in body and "Not done" in body


def test_dead_letters_show_when_they_died_and_the_ticked_ones_are_deleted(broker, console_factory, start_worker):
    def bounce(job):
        raise DeadLetter("no such address")

    start_worker(broker.endpoint, {"bounce": bounce})
    console = console_factory(broker)
    with Client(broker.endpoint, green=False) as client:
        ids = client.push_many("bounce", [b"a", b"b", b"c"])
        wait_until(lambda: len(client.dead_letters("bounce")) == 3, 5, 0.05, "three dead letters")
        wait_until(lambda: "bounce" in str(snapshots(console, 1)[0]["queues"]), 5, 0.1, "bounce in the console")
        page = console.get("/dead-letters/bounce")[1]
        for dead in client.dead_letters("bounce"):
            died = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(dead["dead_ms"] / 1000))
            assert f"<td>{died}</td>" in page, page[-3000:]
        # Without the box that confirms, nothing is deleted.
        status, body, _ = console.post({"action": "purge", "broker": "main", "queue": "bounce", "ids": ids[0]})
        assert status == 400 and "confirm" in body and len(client.dead_letters("bounce")) == 3
        fields = [("action", "purge"), ("broker", "main"), ("queue", "bounce"), ("confirm", "yes")]
        status, body, _ = console.post([*fields, ("ids", ids[0]), ("ids", ids[2])])
        assert status == 200 and "deleted 2 dead letter(s) of bounce" in body, body
        assert [d["id"] for d in client.dead_letters("bounce")] == [ids[1]]


def test_flipping_a_switch_writes_redis_and_announces_it(broker, console_factory, redis_server):
    console = console_factory(broker)
    r = redis_server.client()
    with (
        Client(broker.endpoint, broker.pub_endpoint, green=False) as client,
        client.subscribe("zeromesh.feature") as sub,
    ):
        heard = []
        # The first events can reach the PUB before the subscription does (slow joiner): flip until heard.
        deadline = time.monotonic() + scaled(5)
        while not heard and time.monotonic() < deadline:
            status, body, _ = console.post({"action": "feature", "name": "ads", "state": "off"})
            assert status == 200 and "feature ads off: written to Redis and announced" in body
            event = sub.next(0.3)
            if event is not None:
                heard.append(json.loads(event.body))
        assert heard == [{"name": "ads", "on": False}]
    assert r.hget("zeromesh:features", "ads") == b"off"
    page = console.get("/features")[1]
    assert re.search(r"<td>ads</td><td>off</td>", page) and "Turn on" in page
    assert console.post({"action": "feature", "name": "ads", "state": "maybe"})[0] == 400
    assert r.hget("zeromesh:features", "ads") == b"off"


def test_refused_posts_change_nothing(broker, console_factory):
    console = console_factory(broker)
    with Client(broker.endpoint, green=False) as client:
        client.push("cards", b"x")
        wait_until(lambda: "cards" in str(snapshots(console, 1)[0]["queues"]), 5, 0.1, "cards in the console")
        pause = {"action": "pause", "broker": "main", "queue": "cards"}
        status, body, headers = console.post(pause, password=None)
        assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic")
        assert console.post(pause, password="wrong")[0] == 401
        status, body, _ = console.post(pause, csrf=None)
        assert status == 403 and "CSRF" in body
        assert console.post(pause, csrf="123.abc")[0] == 403
        status, body, _ = console.post(pause, origin="http://evil.example")
        assert status == 403 and "Origin" in body
        assert console.post(pause, origin=None)[0] == 403  # neither Origin nor Referer
        assert queue_status(client, "cards")["paused"] is False
        # Malformed forms: 400, and the console stays up.
        assert console.post({"action": "explode", "broker": "main"})[0] == 400
        assert console.post({"action": "pause", "broker": "nobody", "queue": "cards"})[0] == 400
        assert (
            console.post([("action", "pause"), ("action", "resume"), ("broker", "main"), ("queue", "cards")])[0] == 400
        )
        assert console.post({"action": "replay", "broker": "main", "queue": "cards"})[0] == 400
        assert console.request("PUT", "/queues")[0] == 405
        assert queue_status(client, "cards")["paused"] is False and console.running


def test_a_random_password_is_printed_once_and_a_broker_that_goes_away_gets_a_banner(broker_factory, console_factory):
    broker = broker_factory()
    console = console_factory(broker, password=None)
    printed = re.findall(r"admin password for this run \(user admin\): (\S+)", console.log())
    assert len(printed) == 1
    assert console.post({"action": "pause", "broker": "main", "queue": "cards"}, password=PASSWORD)[0] == 401
    status, body, _ = console.post({"action": "pause", "broker": "main", "queue": "cards"}, password=printed[0])
    assert status in (200, 502) and "cards" in body  # past the guards: the broker answered
    broker.stop()
    banner = f"broker at {broker.endpoint} not answering since"
    wait_until(lambda: banner in console.get("/")[1], 5, 0.2, "the banner")
    for path in ("/queues", "/services", "/trace?q=abc", "/scheduled"):
        status, body, _ = console.get(path)
        assert status == 200 and banner in body, path
    assert "missing" in " ".join(snapshots(console, 1)[0]["alarms"]) and console.running


def test_brokers_of_the_registry_are_polled_labelled_and_missed(broker_factory, console_factory):
    east, west = (broker_factory(args=["--name", name]) for name in ("east", "west"))
    console = console_factory(east)  # given east only: west comes from the registry

    def both() -> dict | None:
        snap = snapshots(console, 1)[0]
        return snap if sorted(b["name"] for b in snap["brokers"] if b["up"]) == ["east", "west"] else None

    wait_until(both, 10, 0.2, "east and west in the console")
    with Client(west.endpoint, green=False) as client:
        client.push("westward", b"x")

    def labelled() -> bool:
        return any(q["name"] == "westward" and q["broker"] == "west" for q in snapshots(console, 1)[0]["queues"])

    wait_until(labelled, 5, 0.2, "west's queue labelled west")
    assert "westward" in console.get("/queues/westward")[1]
    west.stop()
    banner = f"broker at {west.endpoint} not answering since"
    wait_until(lambda: banner in console.get("/queues")[1], 5, 0.2, "west's banner")
    snap = snapshots(console, 1)[0]
    assert any(a.startswith(f"broker west at {west.endpoint} missing") for a in snap["alarms"])
    assert [b["name"] for b in snap["brokers"] if b["up"]] == ["east"]


def test_bound_beyond_loopback_every_page_needs_the_password():
    """In-process through wsgiref's validator (binding a non-loopback address is not for tests)."""
    from wsgiref.util import setup_testing_defaults
    from wsgiref.validate import validator

    from zeromesh.console.app import Settings
    from zeromesh.console.auth import new_secret
    from zeromesh.console.server import ConsoleOptions, make_app

    opts = ConsoleOptions("10.0.0.5", 8090, ["tcp://127.0.0.1:1"], Settings(PASSWORD, new_secret(), True))
    app, poller = make_app(opts)  # never started: no poll, the figures are the empty first snapshot
    try:
        wsgi = validator(app)
        good = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        for path, auth, expected in (
            ("/", None, "401"),
            ("/queues", "Basic " + base64.b64encode(b"admin:nope").decode(), "401"),
            ("/events", None, "401"),
            ("/", good, "200"),
            ("/queues/none", good, "404"),
        ):
            environ: dict = {"PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": ""}
            setup_testing_defaults(environ)
            if auth:
                environ["HTTP_AUTHORIZATION"] = auth
            status, body = _call(wsgi, environ)
            assert status.startswith(expected), (path, status, body[:200])
    finally:
        poller.stop()


def _call(wsgi, environ: dict) -> tuple[str, bytes]:
    """(status, body) of one WSGI call, its result closed as a server would."""
    seen: list[str] = []
    result = wsgi(environ, lambda status, headers, *exc: seen.append(status))
    try:
        return seen[0], b"".join(result)
    finally:
        result.close()


def _first_broker_up(console: ConsoleProcess) -> bool:
    """The console's first broker answers; False while its poller has not yet polled (no broker listed)."""
    brokers = snapshots(console, 1)[0]["brokers"]
    return bool(brokers) and brokers[0]["up"]


def test_with_curve_the_console_is_a_client_with_its_own_key(broker_factory, console_factory, tmp_path):
    keys = KeySet(tmp_path / "keys")
    broker = broker_factory(args=keys.broker_args(), curve=keys.curve("admin"))
    console = console_factory(broker)  # ZEROMESH_CURVE_SERVER / ZEROMESH_CURVE_SECRET of the admin key
    wait_until(lambda: _first_broker_up(console), 5, 0.2, "the secured broker answering")
    status, body, _ = console.post({"action": "pause", "broker": "main", "queue": "cards"})
    assert status == 200 and "paused cards" in body
    # A key that may only read status: the pages work, an action says what the broker refused.
    reader = console_factory(broker, env={"ZEROMESH_CURVE_SECRET": keys.secret("status-reader")})
    wait_until(lambda: _first_broker_up(reader), 5, 0.2, "status with the reader's key")
    status, body, _ = reader.post({"action": "resume", "broker": "main", "queue": "cards"})
    assert status == 502 and "forbidden" in body
    with Client(
        broker.endpoint, green=False, curve_server=keys.curve("admin")[0], curve_secret=keys.secret("admin")
    ) as c:
        assert c.status()["queues"]["cards"]["paused"] is True


def test_the_trace_page_shows_a_trace_as_a_tree_by_parent(broker, console_factory, start_worker):
    """A job pushed from a handler is a child of the handler's job: the page nests it under it."""
    console = console_factory(broker)
    children: list[str] = []

    def parent_job(job):
        with Client(broker.endpoint) as inner:  # in the handler: it carries the job's trace and id
            children.append(inner.push("tree-child", b"child"))

    start_worker(broker.endpoint, {"tree-parent": parent_job, "tree-child": lambda job: None})
    with Client(broker.endpoint) as client:
        root = client.push("tree-parent", b"root", trace="tree-trace-1")
        wait_until(lambda: children and client.trace(children[0])["state"] == "done", scaled(10), 0.05, "the child")
    page = console.get("/trace?q=tree-trace-1&by=trace")[1]
    tree = re.findall(r'<li class="d(\d)"><a href="/trace\?q=([^"]+)">', page)
    assert [(depth, mid) for depth, mid in tree] == [("0", root), ("1", children[0])], page[-3000:]
    assert re.search(rf"<td>{children[0]}</td><td>acked</td>", page), page[-3000:]
