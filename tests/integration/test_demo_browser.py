# SPDX-License-Identifier: MIT
"""The demo site in a real browser: headless Chromium (Debian's) through the edge, nodes, workers and broker."""

from __future__ import annotations

import pytest

from ..conftest import scaled, wait_until
from .chromium import chromium
from .render_helpers import DEMO

DEMO_NODE = ("--templates", str(DEMO / "templates"), "--site-module", "zeromesh.nodes.demo.site")


@pytest.fixture
def demo_mesh(spawn, edge_factory):
    spawn("demo", "demo-workers", "--ads-delay", "0.05")
    spawn("render", "demo-render-1", *DEMO_NODE)
    spawn("render", "demo-render-2", *DEMO_NODE)
    return edge_factory((DEMO / "routes.toml").read_text())


@pytest.fixture
def browser():
    yield from chromium(javascript=True)


@pytest.fixture
def browser_without_js():
    yield from chromium(javascript=False)


def test_home_page_send_a_card_and_see_the_live_event(demo_mesh, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = f"http://127.0.0.1:{demo_mesh.port}"
    browser.get(base + "/")
    assert "Send a little joy" in browser.page_source
    assert len(browser.find_elements(By.CSS_SELECTOR, ".tile")) == 8
    # the live list subscribes over SSE; give EventSource its moment to connect
    WebDriverWait(browser, scaled(10)).until(lambda d: d.execute_script("return document.readyState") == "complete")
    wait_until(lambda: demo_mesh.metric("zeromesh_edge_sse_streams") >= 1, 10, message="the page's SSE stream open")
    form = browser.find_element(By.CSS_SELECTOR, "form.send")
    Select(form.find_element(By.NAME, "card_id")).select_by_index(2)
    form.find_element(By.NAME, "to").send_keys("Ada")
    form.find_element(By.NAME, "from").send_keys("Grace")
    form.find_element(By.NAME, "message").send_keys("Sent from a real browser")
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, scaled(10)).until(lambda d: "Sent!" in form.find_element(By.CSS_SELECTOR, ".status").text)
    # The worker consumed the job and published cards.sent; the page shows it live.
    WebDriverWait(browser, scaled(15)).until(lambda d: "Grace sent" in d.find_element(By.ID, "live").text)
    assert "to Ada" in browser.find_element(By.ID, "live").text
    # And the home page was invalidated: a reload counts the sent card.
    browser.get(base + "/")
    assert "1 sent so far" in browser.page_source


def _fill(form, to: str = "Ada") -> None:
    from selenium.webdriver.common.by import By

    form.find_element(By.NAME, "to").send_keys(to)
    form.find_element(By.NAME, "from").send_keys("Grace")


def _sends(client) -> int:
    return client.status()["queues"].get("send", {}).get("enqueued", 0)


def test_card_page_send_counts_and_refuses_a_card_that_does_not_exist(demo_mesh, browser, client):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    base = f"http://127.0.0.1:{demo_mesh.port}"
    browser.get(base + "/cards/3")
    count = browser.find_element(By.CSS_SELECTOR, "[data-sent-card='3']")
    assert count.text == "sent 0 times"
    wait_until(lambda: demo_mesh.metric("zeromesh_edge_sse_streams") >= 1, 10, message="the page's SSE stream open")
    form = browser.find_element(By.CSS_SELECTOR, "form.send")
    _fill(form)
    form.find_element(By.CSS_SELECTOR, "button").click()
    status = form.find_element(By.CSS_SELECTOR, ".status")
    WebDriverWait(browser, scaled(10)).until(lambda d: "Sent!" in status.text)
    # The count follows once the send worker has recorded the card (its cards.sent event), singular.
    WebDriverWait(browser, scaled(15)).until(lambda d: count.text == "sent 1 time")

    # The same form for a card that does not exist: refused, said so, and nothing queued.
    queued = _sends(client)
    assert queued == 1
    browser.execute_script("arguments[0].value = '99'", form.find_element(By.NAME, "card_id"))
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, scaled(10)).until(lambda d: "Not sent" in status.text)
    assert "There is no card 99" in status.text and "Sent!" not in status.text
    assert _sends(client) == queued


def test_without_javascript_the_form_answers_a_page(demo_mesh, browser_without_js, client):
    from selenium.webdriver.common.by import By

    base = f"http://127.0.0.1:{demo_mesh.port}"
    browser = browser_without_js
    browser.get(base + "/cards/2")
    form = browser.find_element(By.CSS_SELECTOR, "form.send")
    _fill(form, to="Ann")
    form.find_element(By.CSS_SELECTOR, "button").click()  # a plain form POST: no script runs
    wait_until(lambda: "<h1>Sent!</h1>" in browser.page_source, 10, message="the Sent! page")
    assert "is on its way to Ann" in browser.find_element(By.ID, "send-done").text
    assert not browser.find_element(By.TAG_NAME, "body").text.lstrip().startswith("{")  # a page, not JSON
    assert _sends(client) == 1

    # A card that does not exist: a page that says so, status 404, nothing queued.
    browser.get(base + "/cards/2")
    form = browser.find_element(By.CSS_SELECTOR, "form.send")
    browser.execute_script("arguments[0].setAttribute('value', '99')", form.find_element(By.NAME, "card_id"))
    _fill(form)
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_until(lambda: "<h1>Not sent</h1>" in browser.page_source, 10, message="the Not sent page")
    assert "There is no card 99: nothing was sent." in browser.find_element(By.ID, "send-error").text
    r = demo_mesh.request(
        "POST",
        "/send",
        body=b"card_id=99&to=A&from=B",
        headers={"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 404 and "<h1>Not sent</h1>" in r.text
    assert _sends(client) == 1


def test_an_unknown_url_gets_the_sites_own_404_page(demo_mesh, browser):
    from selenium.webdriver.common.by import By

    base = f"http://127.0.0.1:{demo_mesh.port}"
    browser.get(base + "/no/such/page")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Page not found"
    assert "Mesh Greetings" in browser.title and "/no/such/page" in browser.page_source
    r = demo_mesh.get("/no/such/page")
    assert r.status == 404 and r.headers["content-type"].startswith("text/html")
    holiday = demo_mesh.get("/nowhere", headers={"Host": "holiday.localhost"})
    assert holiday.status == 404 and "Holiday Greetings" in holiday.text
