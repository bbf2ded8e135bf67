# SPDX-License-Identifier: MIT
"""The demo site in a real browser: headless Chromium (Debian's) through the edge, nodes, workers and broker."""
from __future__ import annotations

import shutil
import tempfile

import pytest

from ..conftest import scaled, wait_until
from .render_support import DEMO, mesh_env, spawn  # noqa: F401 - fixtures
from .test_edge_support import edge_factory  # noqa: F401 - fixture

DEMO_NODE = ("--templates", str(DEMO / "templates"), "--site-module", "zeromesh.nodes.demo.site")


@pytest.fixture
def demo_mesh(spawn, edge_factory):
    spawn("demo", "demo-workers", "--ads-delay", "0.05")
    spawn("render", "demo-render-1", *DEMO_NODE)
    spawn("render", "demo-render-2", *DEMO_NODE)
    return edge_factory((DEMO / "routes.toml").read_text())


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("Debian's chromium and chromium-driver are needed (make test installs them as root)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="zeromesh-chromium-")
    # The flags keep Chromium off the network it cannot reach here, and quiet.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,1000"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.set_page_load_timeout(scaled(20))
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_home_page_send_a_card_and_see_the_live_event(demo_mesh, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = f"http://127.0.0.1:{demo_mesh.port}"
    browser.get(base + "/")
    assert "Send a little joy" in browser.page_source
    assert len(browser.find_elements(By.CSS_SELECTOR, ".tile")) == 8
    # the live list subscribes over SSE; give EventSource its moment to connect
    WebDriverWait(browser, scaled(10)).until(
        lambda d: d.execute_script("return document.readyState") == "complete")
    wait_until(lambda: demo_mesh.metric("zeromesh_edge_sse_streams") >= 1, 10, message="the page's SSE stream open")
    form = browser.find_element(By.CSS_SELECTOR, "form.send")
    Select(form.find_element(By.NAME, "card_id")).select_by_index(2)
    form.find_element(By.NAME, "to").send_keys("Ada")
    form.find_element(By.NAME, "from").send_keys("Grace")
    form.find_element(By.NAME, "message").send_keys("Sent from a real browser")
    form.find_element(By.CSS_SELECTOR, "button").click()
    WebDriverWait(browser, scaled(10)).until(lambda d: "Sent!" in form.find_element(By.CSS_SELECTOR, ".status").text)
    # The worker consumed the job and published cards.sent; the page shows it live.
    WebDriverWait(browser, scaled(15)).until(
        lambda d: "Grace sent" in d.find_element(By.ID, "live").text)
    assert "to Ada" in browser.find_element(By.ID, "live").text
    # And the home page was invalidated: a reload counts the sent card.
    browser.get(base + "/")
    assert "1 sent so far" in browser.page_source
