# SPDX-License-Identifier: MIT
"""The demo's ads service with no delay answers in the loop turn it started in.

The three parts of a card page reach the demo workers together; answers finished in one
turn of the hub leave as one REPLY. An ads handler that yielded (gevent.sleep(0)) finished a
turn later and cost the page a second REPLY through the broker and a second wake-up of the
render node. Run in a child process: importing the demo workers monkey-patches everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ..conftest import ROOT

CHILD = r"""
import json, sys
from zeromesh.nodes.demo import workers
from zeromesh.nodes.demo.catalog import Catalog
from zeromesh import Job
import gevent

services = workers.DemoServices(Catalog(), client=None, ads_delay=float(sys.argv[1]))
others_ran = []
gevent.spawn(others_ran.append, True)  # runs as soon as the handler lets the hub run
job = Job("request", "ads", {"id": "a1"}, b'{"id": "3", "site": "default"}', None, lambda _: None)
ad = json.loads(services.ads(job))
print(json.dumps({"yielded": bool(others_ran), "headline": ad["headline"]}))
"""


@pytest.mark.parametrize(("delay", "yields"), [("0", False), ("0.01", True)])
def test_ads_without_delay_does_not_yield(delay: str, yields: bool) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, delay], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    ).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["yielded"] is yields
    assert got["headline"]  # a real ad either way
