# SPDX-License-Identifier: MIT
"""The demo ecard site's page functions (`zeromesh node render --site-module zeromesh.nodes.demo.site`).

The same functions serve every template set (default, holiday): only the
templates differ between co-branded sites. Besides the pages: the send form's
answer (sent.html: the card is checked before its job is queued) and the
site's 404 page for URLs no route knows.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from zeromesh.nodes import PageRequest, Part, Site

from .catalog import BadSend, parse_send

site = Site("ecards")

HOUSE_AD = {
    "headline": "Make someone's day",
    "text": "Every card on this site is free to send.",
    "card_id": "",
    "title": "",
    "symbol": "✉",
}
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


SCHEDULED_TOPIC = "cards.scheduled"
"""A card scheduled for later (deliver on): the live page lists it until it goes."""

SEND_QUEUE = "send"
"""Where a checked send form goes: the send worker (Python or Ruby) records, publishes and invalidates."""


@site.page("sent.html")
def sent(req: PageRequest, gather: Any) -> dict[str, Any]:
    """POST /send: check the form, queue the job only for a card that exists, and answer in the client's
    language: an HTML page to a browser (JavaScript off), else 202 {"id": job id} in JSON (fetch, curl)."""
    as_json = "text/html" not in req.headers.get("accept", "")
    if as_json:
        req.response_headers["Content-Type"] = "application/json"
    try:
        fields = parse_send(req.body, req.headers.get("content-type", ""))
    except BadSend as exc:
        return _send_refused(req, as_json, 400, f"The form is incomplete: {exc}.")
    card = gather(card=Part("cards", {"op": "get", "id": fields["card_id"]}))["card"]
    if card is None:
        return _send_refused(req, as_json, 404, f"There is no card {fields['card_id']}: nothing was sent.")
    # The job carries the request's http.* headers: the send worker reads the body's content type there.
    at = datetime.datetime.fromisoformat(fields["deliver_at"]) if fields["deliver_at"] else None
    job_id = req.push(SEND_QUEUE, req.body, headers=dict(req.job.headers), at=at)
    if at is not None:  # the live page shows it as scheduled; the send worker's cards.sent says when it went
        event = {"job": job_id, "card_id": card["id"], "title": card["title"], "symbol": card["symbol"],
                 "to": fields["to"], "from": fields["from"], "deliver_at": fields["deliver_at"]}  # fmt: skip
        req.publish(SCHEDULED_TOPIC, json.dumps(event).encode())
    req.status = 202 if as_json else 200
    return {
        "as_json": as_json,
        "payload": {"id": job_id},
        "card": card,
        "sent": fields,
        "job_id": job_id,
        "error": None,
    }


def _send_refused(req: PageRequest, as_json: bool, status: int, error: str) -> dict[str, Any]:
    req.status = status
    return {"as_json": as_json, "payload": {"error": error}, "error": error, "card": None}


@site.page("404.html")
def not_found(req: PageRequest, gather: Any) -> dict[str, Any]:
    """Any GET no other route takes (the last route of routes.toml): the site's own page, status 404."""
    req.status = 404
    return {}
