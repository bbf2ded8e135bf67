# SPDX-License-Identifier: MIT
"""The demo ecard site's page functions (`zeromesh node render --site-module zeromesh.nodes.demo.site`).

The same functions serve every template set (default, holiday): only the
templates differ between co-branded sites.
"""
from __future__ import annotations

from typing import Any

from zeromesh.nodes import PageRequest, Part, Site

site = Site("ecards")

HOUSE_AD = {"headline": "Make someone's day", "text": "Every card on this site is free to send.",
            "card_id": "", "title": "", "symbol": "✉"}
"""Shown when the ads service is slow, down, or switched off."""


@site.page("home.html")
def home(req: PageRequest, gather: Any) -> tuple[dict[str, Any], list[str]]:
    def body() -> tuple[str, list[str]]:
        # Only on a miss: fetch the cards and render the page body, tagged by every card shown,
        # so sending any of them (invalidate tag card:<id>) drops it.
        cards = gather(cards=Part("cards", {"op": "list"}))["cards"]
        html = req.render("_home.html", cards=cards, sent_total=sum(c["sent"] for c in cards))
        return html, ["cards"] + [f"card:{c['id']}" for c in cards]

    return {"body": req.fragment("home", ["home"], body)}, ["home"]


@site.page("card.html")
def card(req: PageRequest, gather: Any) -> tuple[dict[str, Any], list[str]]:
    card_id = req.params.get("id", "")
    got = gather(
        card=Part("cards", {"op": "get", "id": card_id}),
        reco=Part("reco", {"id": card_id}, optional=True, default=[], feature="recommendations"),
        ad=Part("ads", {"id": card_id, "site": req.template_set}, optional=True, default=HOUSE_AD, feature="ads"),
    )
    if got["card"] is None:
        req.status = 404
    context = {"card": got["card"], "reco": got["reco"], "ad": got["ad"], "degraded": sorted(req.degraded)}
    return context, [f"card:{card_id}"]
