# SPDX-License-Identifier: MIT
"""The demo site end to end, without the edge: demo workers and a render node with the demo's templates."""

from __future__ import annotations

import datetime
import json
import time
import zoneinfo

from ..conftest import wait_until
from .render_helpers import DEMO, render, render_headers

DEMO_NODE = ("--templates", str(DEMO / "templates"), "--site-module", "zeromesh.nodes.demo.site")


def test_demo_pages_gather_cards_reco_and_ads_per_site(client, spawn):
    spawn("demo", "demo-workers", "--ads-delay", "0.2")
    spawn("render", "demo-render", *DEMO_NODE)

    started = time.monotonic()
    card = render(client, "card.html", params={"id": "3"}, path="/cards/3")
    elapsed = time.monotonic() - started
    assert card.headers["http.status"] == 200 and "X-Degraded" not in card.headers["http.headers"]
    html = card.text
    assert "<h1>Congratulations</h1>" in html and "Mesh Greetings" in html
    assert 'id="reco"' in html and "You might also like" in html  # reco
    assert "Sponsored" in html  # ads (0.2 s)
    assert elapsed < 0.6, f"parts were not gathered in parallel ({elapsed:.2f}s)"
    assert card.headers["cache.tags"] == ["card:3", "feature:ads", "feature:recommendations"]

    holiday = render(client, "card.html", site="holiday", params={"id": "5"}).text
    assert "Holiday Greetings" in holiday and "<h1>Happy Holidays</h1>" in holiday

    missing = render(client, "card.html", params={"id": "99"})
    assert missing.headers["http.status"] == 404 and "No such card" in missing.text

    home = render(client, "home.html")
    assert home.text.count('class="tile"') == 8 and "0 sent so far" in home.text
    assert {"home", "cards", "card:1", "card:8"} <= set(home.headers["cache.tags"])
    assert "EventSource" in home.text and 'action="/send"' in home.text


def test_sending_a_card_records_publishes_and_invalidates(client, spawn, redis_server, mesh_env):
    spawn("demo", "demo-workers")
    spawn("render", "demo-render", *DEMO_NODE)
    assert "sent 0 times" in render(client, "home.html").text  # the grid fragment is now cached

    with client.subscribe("cards.", "zeromesh.invalidate.") as sub:
        time.sleep(0.3)  # the SUB connects before the job is pushed (slow joiner)
        job_id = client.push(
            "send",
            b"card_id=2&to=Ada&from=Grace&message=Hello%21",
            headers={"http.headers": {"content-type": "application/x-www-form-urlencoded"}},
        )
        seen = {}
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            event = sub.next(0.5)
            if event is not None:
                seen[event.topic] = event.body
    sent = json.loads(seen["cards.sent"])
    assert sent["job"] == job_id and (sent["card_id"], sent["to"], sent["from"], sent["message"]) == (
        "2",
        "Ada",
        "Grace",
        "Hello!",
    )
    assert seen["zeromesh.invalidate.tag"] == b"card:2" and seen["zeromesh.invalidate.path"] == b"/"
    kept = [json.loads(x) for x in redis_server.client().lrange("zeromesh:demo:sent", 0, -1)]
    assert [k["job"] for k in kept] == [job_id]

    # The node dropped the grid fragment tagged card:2: the home page shows the new count.
    wait_until(
        lambda: "1 sent so far" in render(client, "home.html").text,
        5,
        interval=0.05,
        message="home page re-rendered with the sent card",
    )
    assert "sent 1 time<" in render(client, "card.html", params={"id": "2"}).text


def test_switching_recommendations_off_hides_them_at_once(client, spawn, redis_server):
    redis_server.client().hset("zeromesh:features", "recommendations", "off")
    spawn("demo", "demo-workers", "--ads-delay", "0")
    spawn("render", "demo-render", *DEMO_NODE)
    html = render(client, "card.html", params={"id": "1"}).text
    assert "<h1>Happy Birthday</h1>" in html and 'id="reco"' not in html

    def switched() -> bool:
        # Republished until seen: the node's subscription may still be on its way to the broker.
        client.publish("zeromesh.feature", b'{"name": "ads", "on": false}')
        return "From us" in render(client, "card.html", params={"id": "1"}).text

    wait_until(switched, 5, interval=0.05, message="ads switched off: the house ad")


def test_the_sent_log_line_counts_in_words(client, spawn, start_worker, broker):
    lines: list[str] = []
    start_worker(broker.endpoint, {"sentlog": lambda job: lines.append(job.text)})
    spawn("demo", "demo-workers", "--sent-log", "sentlog")
    for n in (1, 2):
        client.push(
            "send",
            b"card_id=4&to=Ada&from=Grace",
            headers={"http.headers": {"content-type": "application/x-www-form-urlencoded"}},
        )
        wait_until(lambda n=n: len(lines) == n, 10, message=f"sent-log line {n}")
    assert ", sent 1 time, job " in lines[0] and ", sent 2 times, job " in lines[1], lines


def test_a_card_for_later_is_scheduled_announced_and_sent_at_its_time(client, spawn, redis_server):
    """The send form's "deliver on": the page schedules the job in the recipient's zone, the live
    page hears cards.scheduled, and the send worker records it only once it is due."""
    spawn("demo", "demo-workers")
    spawn("render", "demo-render", *DEMO_NODE)
    due = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=2)).replace(microsecond=0)
    local = due.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo")).strftime("%Y-%m-%dT%H:%M:%S")
    form = f"card_id=5&to=Ada&from=Grace&deliver_on={local}&timezone=Asia/Tokyo".encode()
    headers = render_headers("sent.html", path="/send")
    headers["http.method"] = "POST"
    headers["http.headers"] = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    with client.subscribe("cards.") as sub:
        time.sleep(0.3)  # the SUB connects first (slow joiner)
        answer = client.request_full("render", form, timeout=3, headers=headers)
        assert answer.headers["http.status"] == 202, answer.body
        job_id = json.loads(answer.body)["id"]
        assert client.trace(job_id)["state"] == "scheduled"
        scheduled = sub.next(2)
        assert scheduled is not None and scheduled.topic == "cards.scheduled"
        assert json.loads(scheduled.body)["job"] == job_id
        sent = sub.next(5)
    assert sent is not None and sent.topic == "cards.sent" and json.loads(sent.body)["job"] == job_id
    assert json.loads(sent.body)["at"] >= due.timestamp() - 0.001
