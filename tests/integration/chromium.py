# SPDX-License-Identifier: MIT
"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver), kept off the
network it cannot reach here, with a throwaway profile."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from ..conftest import scaled

FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium(window: str = "1280,1000", javascript: bool = True) -> Iterator[Any]:
    """A selenium driver for a fixture to yield from; quit and its profile removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert binary and driver, "Debian's chromium and chromium-driver are needed (make test installs them as root)"
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    profile = tempfile.mkdtemp(prefix="zeromesh-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={window}"):
        opts.add_argument(flag)
    if not javascript:
        opts.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    drv = webdriver.Chrome(service=Service(executable_path=driver), options=opts)
    drv.set_page_load_timeout(scaled(20))
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)
