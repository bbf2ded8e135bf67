# SPDX-License-Identifier: MIT
"""inline_choice.InlineChoice: when a thread worker's handler moves to its I/O thread and back."""

from __future__ import annotations

import logging

import pytest

from zeromesh.inline_choice import PROMOTE_AFTER, QUICK_S, SLOW_S, InlineChoice

pytestmark = pytest.mark.unit

QUICK = QUICK_S / 4
SLOW = SLOW_S * 2


def test_a_watched_handler_moves_after_enough_quick_runs_in_a_row():
    choice = InlineChoice()
    choice.register("echo", None)
    for _ in range(PROMOTE_AFTER - 1):
        choice.ran_pooled("echo", QUICK)
    assert "echo" not in choice.inline
    choice.ran_pooled("echo", QUICK_S * 2)  # one run that is not quick starts the count again
    for _ in range(PROMOTE_AFTER - 1):
        choice.ran_pooled("echo", QUICK)
    assert "echo" not in choice.inline
    choice.ran_pooled("echo", QUICK)
    assert choice.inline == {"echo"}


def test_one_slow_run_on_the_io_thread_moves_it_back_for_good(caplog):
    choice = InlineChoice()
    choice.register("echo", None)
    for _ in range(PROMOTE_AFTER):
        choice.ran_pooled("echo", QUICK)
    choice.ran_inline("echo", SLOW_S)  # at the limit: stays
    assert "echo" in choice.inline
    with caplog.at_level(logging.INFO, logger="zeromesh.worker"):
        choice.ran_inline("echo", SLOW)
    assert "echo" not in choice.inline
    assert "handler 'echo' took 10.0 ms on the worker's I/O thread" in caplog.text
    for _ in range(PROMOTE_AFTER * 2):
        choice.ran_pooled("echo", QUICK)
    assert "echo" not in choice.inline  # for good


def test_pinned_handlers_do_not_move():
    choice = InlineChoice()
    choice.register("always", True)
    choice.register("never", False)
    for _ in range(PROMOTE_AFTER * 2):
        choice.ran_pooled("never", QUICK)
    choice.ran_inline("always", SLOW)
    assert choice.inline == {"always"}


def test_registering_again_starts_afresh():
    choice = InlineChoice()
    choice.register("echo", True)
    choice.register("echo", None)
    assert choice.inline == set() and choice.watched == {"echo"}
    for _ in range(PROMOTE_AFTER - 1):
        choice.ran_pooled("echo", QUICK)
    choice.register("echo", None)  # a new function under the name: its evidence is its own
    choice.ran_pooled("echo", QUICK)
    assert choice.inline == set()
