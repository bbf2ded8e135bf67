# SPDX-License-Identifier: MIT
"""The console in headless Chromium (Debian's chromium and chromium-driver): every page loads, the
Overview's figures move with traffic without a reload, and clicks act on the mesh. Screenshots of each
page go to the test's tmp_path; with ZEROMESH_SCREENSHOTS=docs the Overview's also to docs/console.png
(README's picture: `ZEROMESH_SCREENSHOTS=docs .venv/bin/pytest tests/integration/test_console_browser.py`)."""

from __future__ import annotations

import base64
import os
import shutil
import threading
import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from zeromesh import Client, DeadLetter

from ..conftest import ROOT, scaled, wait_until
from .chromium import chromium
from .test_console import PASSWORD, console_factory  # noqa: F401 - console_factory is a fixture

PAGES = ["/", "/queues", "/queues/cards", "/services", "/workers", "/dead-letters", "/dead-letters/mail"]
PAGES += ["/scheduled", "/features", "/trace"]


@pytest.fixture
def browser():
    for drv in chromium(window="1280,900"):
        # The admin password on every request, as a browser that was asked for it once sends it.
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
        yield drv


def text_of(drv, css: str) -> str:
    return drv.find_element(By.CSS_SELECTOR, css).text


def test_pages_live_figures_and_clicks(broker, console_factory, start_worker, browser, tmp_path):  # noqa: F811
    ran: list[bytes] = []
    first_time = threading.Event()

    def mail(job):
        if job.body == b"refused once" and not first_time.is_set():
            first_time.set()
            raise DeadLetter("cannot parse")
        ran.append(job.body)

    start_worker(broker.endpoint, {"mail": mail, "cards": lambda job: None, "echo": lambda job: job.body})
    with Client(broker.endpoint, green=False) as client:
        client.push("mail", b"refused once")
        client.push("cards", b"hello")
        wait_until(lambda: len(client.dead_letters("mail")) == 1, 5, 0.05, "a dead letter")
        console = console_factory(broker)
        wait = WebDriverWait(browser, scaled(10))

        for path in PAGES:
            browser.get(console.base + path)
            assert browser.find_element(By.CSS_SELECTOR, "nav a[href='/queues']").text == "Queues", path
            assert "Not found" not in browser.title, path
            browser.save_screenshot(str(tmp_path / f"console{path.replace('/', '_') or '_'}.png"))

        # Overview: the pushed total moves while traffic runs, without a reload.
        browser.get(console.base + "/")
        marker = browser.execute_script("window.notReloaded = true; return 1")
        before = int(text_of(browser, "#total-enqueued"))
        for _ in range(25):
            client.push("cards", b"tick")
            client.request("echo", b"ping")
        wait.until(lambda d: int(text_of(d, "#total-enqueued")) >= before + 25)
        # A few more seconds of traffic, so that the graph (and the README's picture) has a shape.
        until = time.monotonic() + 3
        while time.monotonic() < until:
            client.push_many("cards", [b"tick"] * 20)
            client.request("echo", b"ping")
            time.sleep(0.05)
        assert browser.execute_script("return window.notReloaded") == marker
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg#rates polyline"))
        shot = tmp_path / "console_overview_live.png"
        browser.save_screenshot(str(shot))
        if os.environ.get("ZEROMESH_SCREENSHOTS") == "docs":
            shutil.copyfile(shot, ROOT / "docs" / "console.png")

        # Pause cards by clicking; the broker reports it paused.
        browser.get(console.base + "/queues")
        browser.find_element(By.CSS_SELECTOR, "#queue-cards button[data-action='pause']").click()
        wait.until(lambda d: "paused cards" in text_of(d, "#outcome"))
        assert client.status()["queues"]["cards"]["paused"] is True

        # Replay the dead letter by its row's button; the job runs.
        browser.get(console.base + "/dead-letters/mail")
        browser.find_element(By.CSS_SELECTOR, "button[data-action='replay-one']").click()
        wait.until(lambda d: "replayed 1" in text_of(d, "#outcome"))
        wait_until(lambda: b"refused once" in ran, 5, 0.05, "the replayed job to run")
        assert client.dead_letters("mail") == []

        # The Queues page follows the mesh: a queue that appears, and a pause made elsewhere,
        # show up (with the right button) without anyone reloading.
        browser.get(console.base + "/queues")
        client.resume("cards")
        client.push("late-queue", b"new")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queue-late-queue"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queue-cards button[data-action='pause']"))
