# SPDX-License-Identifier: MIT
"""The console's actions: a posted form -> one admin op (or a feature flip) -> what the broker said.

Every answer is built from the broker's reply ("replayed 3", "paused cards"); a broker error is
shown with its code and message; nothing is reported done that was not seen done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .poller import Poller

NEEDS_CONFIRM = {"purge_queue", "purge"}
"""Actions that drop data: the form must carry confirm=yes (from the confirmation page, or the
"yes, delete" box next to Delete selected)."""


class BadForm(Exception):
    """A malformed form (HTTP 400)."""


class Outcome:
    """What an action did: `ok` is False when the broker (or Redis) refused or did not answer."""

    def __init__(self, ok: bool, message: str, back: str) -> None:
        self.ok, self.message, self.back = ok, message, back


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or []
    if len(values) != 1 or not values[0].strip():
        raise BadForm(f"the form needs exactly one non-empty '{name}'")
    return values[0].strip()


def _queue_action(op: str) -> Callable[[Any, dict], str]:
    def act(client: Any, form: dict) -> str:
        queue = _one(form, "queue")
        if op == "pause":
            answer = client.admin("pause", queue=queue)
            return f"paused {answer.get('queue', queue)}" if answer.get("paused") else f"not paused: {answer}"
        if op == "resume":
            answer = client.admin("resume", queue=queue)
            return (
                f"resumed {answer.get('queue', queue)}" if answer.get("paused") is False else f"not resumed: {answer}"
            )
        if op == "purge_queue":
            answer = client.admin("purge_queue", queue=queue)
            return (
                f"purged {answer.get('purged', 0)} waiting job(s) of {queue} "
                f"({answer.get('in_memory', 0)} in memory, {answer.get('in_redis', 0)} in Redis)"
            )
        if op == "purge":  # the ids ticked, or (from the confirmation page) all of them
            ids = [i for i in form.get("ids", []) if i.strip()]
            if not ids and form.get("all") != ["yes"]:
                raise BadForm("delete needs the ids of the dead letters, or all=yes")
            return f"deleted {client.purge(queue, ids or None)} dead letter(s) of {queue}"
        if op == "replay":
            ids = [i for i in form.get("ids", []) if i.strip()]
            everything = form.get("all") == ["yes"]
            if not ids and not everything:
                raise BadForm("replay needs the ids of the dead letters, or all=yes")
            return f"replayed {client.replay(queue, None if everything else ids)}"
        raise BadForm(f"unknown action {op!r}")

    return act


def _cancel(client: Any, form: dict) -> str:
    job = _one(form, "id")
    answer = client.admin("cancel", id=job, queue=_one(form, "queue"))
    return (
        f"cancelled {answer.get('id', job)} on {answer.get('queue', '?')}" if answer.get("cancelled") else str(answer)
    )


ACTIONS: dict[str, Callable[[Any, dict], str]] = {
    "pause": _queue_action("pause"),
    "resume": _queue_action("resume"),
    "purge_queue": _queue_action("purge_queue"),
    "purge": _queue_action("purge"),
    "replay": _queue_action("replay"),
    "cancel": _cancel,
}


def run(poller: Poller, switches: Any, form: dict[str, list[str]]) -> Outcome:
    """Do the form's action; BadForm for a form that names none, or not properly."""
    from zeromesh.errors import RemoteError, ZeromeshError

    action = _one(form, "action")
    if action == "feature":
        return _feature(poller, switches, form)
    if action not in ACTIONS:
        raise BadForm(f"unknown action {action!r}; known: feature, {', '.join(sorted(ACTIONS))}")
    if action in NEEDS_CONFIRM and form.get("confirm") != ["yes"]:
        raise BadForm(f"{action} drops data: confirm it from its confirmation page (confirm=yes)")
    broker = _one(form, "broker")
    back = _back(form)
    try:
        client = poller.client_for(broker)
    except KeyError:
        raise BadForm(f"no broker named {broker!r} known to this console") from None
    try:
        return Outcome(True, ACTIONS[action](client, form), back)
    except RemoteError as exc:
        return Outcome(False, f"{broker} refused {action}: {exc.code}: {exc.message}", back)
    except ZeromeshError as exc:
        return Outcome(False, f"{broker} did not answer {action}: {exc}", back)


def _feature(poller: Poller, switches: Any, form: dict) -> Outcome:
    name, state = _one(form, "name"), _one(form, "state")
    if state not in ("on", "off"):
        raise BadForm("state must be on or off")
    flipped = switches.flip(poller.any_client(), name, state == "on")
    switch = f"feature {name} {state}"
    if flipped.done:
        return Outcome(True, f"{switch}: written to Redis and announced", "/features")
    if flipped.not_kept is not None and flipped.not_announced is not None:
        return Outcome(
            False,
            f"{switch} NOT switched: not written to Redis ({flipped.not_kept}); "
            f"not announced ({flipped.not_announced})",
            "/features",
        )
    if flipped.not_announced is not None:
        return Outcome(False, f"{switch}: written to Redis, not announced ({flipped.not_announced})", "/features")
    return Outcome(False, f"{switch}: announced, not written to Redis ({flipped.not_kept})", "/features")


def _back(form: dict) -> str:
    """Where the result page links back to: a path of this console only."""
    back = (form.get("back") or ["/"])[0]
    return back if back.startswith("/") and not back.startswith("//") else "/"
