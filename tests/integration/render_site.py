# SPDX-License-Identifier: MIT
"""The site module the render node tests load (`--site-module tests/integration/render_site.py`)."""

from __future__ import annotations

import time

import gevent

from zeromesh.nodes import Part, Site

site = Site("test")
renders = {"frag": 0}


@site.page("parts.html")
def parts(req, gather):
    """?slow=S: the optional part "extra" (service slow) takes S seconds; ?need=SERVICE adds a required part."""
    wanted = {
        "meta": Part("meta", {"id": req.params.get("id", "0")}),
        "extra": Part("slow", req.args.get("slow", "0"), optional=True, default={"nap": "default"}, feature="extras"),
    }
    if "need" in req.args:
        wanted["needed"] = Part(req.args["need"], req.args.get("need_body", ""))
    got = gather(**wanted)
    return {"meta": got["meta"], "extra": got["extra"], "degraded": sorted(req.degraded)}, [f"item:{got['meta']['id']}"]


@site.page("frag.html")
def frag(req, gather):
    def render() -> str:
        renders["frag"] += 1
        return req.render("_counter.html", n=renders["frag"])

    box = req.fragment("counter", ["t:1"], render)
    return {"box": box}, ["page"]


@site.page("napping.html")
def napping(req, gather):
    """Waits on a slow service: many of these must run at once."""
    return {"got": gather(nap=Part("nap", "0.3", decode="text"))["nap"]}


@site.page("burn.html")
def burn(req, gather):
    """Holds the hub for ?s= seconds without yielding."""
    end = time.perf_counter() + float(req.args.get("s", "1"))
    n = 0
    while time.perf_counter() < end:
        n += 1
    return {"n": n}


@site.page("sleepy.html")
def sleepy(req, gather):
    gevent.sleep(float(req.args.get("s", "0.3")))
    return {}
